"""Adds the completeness proof and the hash load to built reports, with their findings.

`with_proofs` takes findings.build_reports' reports and adds each split's
`ExampleCountCheck` (an EXAMPLE_COUNT_MISMATCH ERROR when the counts differ)
and each hashed feature's `HashLoad` (a HASH_BUCKETS_CROWDED WARNING when more
of its distinct values collide than max_hash_collision_share allows). Pure
Python and numpy.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from embedding_guard.verdict import hash_load, reasons
from embedding_guard.verdict.example_count import ExampleCountCheck
from embedding_guard.verdict.hash_load import HashLoad
from embedding_guard.verdict.reasons import Reason
from embedding_guard.verdict.report_model import Finding, SplitReport

# Warn when more than half of a hashed feature's distinct values share a bucket:
# "most values collide".
DEFAULT_MAX_HASH_COLLISION_SHARE = 0.5


def count_mismatch(split: str, check: ExampleCountCheck) -> Finding | None:
    """The EXAMPLE_COUNT_MISMATCH finding of a split's check; None when the counts agree.

    A count over several splits that disagrees puts each of them in doubt: no
    figure says which split lost or gained examples, so each one's report
    carries the finding.
    """
    if check.expected is None or check.matches:
        return None
    difference = check.counted - check.expected
    entry = reasons.spec(Reason.EXAMPLE_COUNT_MISMATCH)
    scope = (
        f"split {split!r}"
        if len(check.splits) == 1
        else "splits " + ", ".join(repr(s) for s in check.splits)
    )
    return Finding(
        split=split,
        feature="",
        reason=Reason.EXAMPLE_COUNT_MISMATCH,
        severity=entry.severity,
        count=abs(difference),
        rate=abs(difference) / check.expected if check.expected else 1.0,
        description=(
            f"This run read {check.counted:,} examples of {scope}, but {check.who} "
            f"({check.path}) count {check.expected:,}: {abs(difference):,} "
            f"{'fewer' if difference < 0 else 'more'}. {entry.fix}"
        ),
        fix=entry.fix,
    )


def crowded_buckets(
    split: str, feature: str, load: HashLoad, max_share: float | None
) -> Finding | None:
    """The HASH_BUCKETS_CROWDED finding of a hashed feature's load; None when not crowded.

    Only a hash (hash_strings, to_hash_bucket*) warns. OOV buckets hold values
    missing from the vocabulary, which the OOV findings already report, and are
    a catch-all by design: a few unseen values in one or two buckets are no
    problem to fix with more buckets. Their load is still reported.
    """
    if max_share is None or load.kind != hash_load.HASH or load.colliding_share <= max_share:
        return None
    entry = reasons.spec(Reason.HASH_BUCKETS_CROWDED)
    needed = hash_load.buckets_for_share(load.distinct_values, max_share)
    colliding = round(load.colliding_share * load.distinct_values)
    fix = (
        f"{entry.fix} With {load.distinct_values:,} distinct values, {needed:,} hash buckets "
        f"(now {load.num_buckets:,}) would bring the expected share that collides under "
        f"{max_share:.0%}."
    )
    return Finding(
        split=split,
        feature=feature,
        reason=Reason.HASH_BUCKETS_CROWDED,
        severity=entry.severity,
        count=colliding,
        rate=load.colliding_share,
        description=(
            f"{colliding:,} of {load.distinct_values:,} distinct raw values "
            f"({load.colliding_share:.1%}, above max_hash_collision_share {max_share:.0%}) "
            f"share their bucket with another value: {load.sentence()}. {fix}"
        ),
        fix=fix,
    )


def with_proofs(
    reports: Mapping[str, SplitReport],
    count_checks: Mapping[str, ExampleCountCheck],
    hash_loads: Mapping[str, Mapping[str, HashLoad]],
    max_hash_collision_share: float | None = DEFAULT_MAX_HASH_COLLISION_SHARE,
) -> dict[str, SplitReport]:
    """The reports with each split's count check and each hashed feature's load added.

    Args:
      reports: Split name -> its report (findings.build_reports).
      count_checks: Split name -> its check against statistics, when compared.
      hash_loads: Split name -> feature -> its load (raw mode only).
      max_hash_collision_share: The share of colliding distinct values above
        which a load is a finding; None never warns.

    Returns:
      Split name -> the report with the proofs and their findings.
    """
    result = {}
    for split, report in reports.items():
        loads = hash_loads.get(split, {})
        features = []
        for feature_report in report.features:
            load = loads.get(feature_report.feature)
            if load is None:
                features.append(feature_report)
                continue
            crowded = crowded_buckets(split, feature_report.feature, load, max_hash_collision_share)
            features.append(
                dataclasses.replace(
                    feature_report,
                    hash_load=load,
                    findings=feature_report.findings + ((crowded,) if crowded else ()),
                )
            )
        check = count_checks.get(split)
        mismatch = None if check is None else count_mismatch(split, check)
        result[split] = dataclasses.replace(
            report,
            features=tuple(features),
            example_count=check,
            # Ahead of the rest: a report built on missing examples is in doubt whole.
            split_findings=((mismatch,) if mismatch else ()) + report.split_findings,
        )
    return result
