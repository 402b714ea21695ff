"""Turns remap counts into VOCABULARY_REMAPPED findings and adds them to the reports.

The counts come from each feature's accumulator (`core.FeatureAccumulator.remap`),
merged over shards like every other count; this module words them. Pure Python.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence

from embedding_guard.verdict.core import FeatureBounds, SplitAccumulator
from embedding_guard.verdict.reasons import REASONS, Reason, Severity, fix_text
from embedding_guard.verdict.remap import RemapStats
from embedding_guard.verdict.report_model import Finding, SplitReport

# How many moved tokens a finding's sentence names.
_WORST_TOKENS = 3


def _rate(count: int, total: int) -> float:
    return count / total if total else 0.0


def remap_finding(
    split: str,
    bounds: FeatureBounds,
    num_values: int,
    stats: RemapStats,
    severity: Severity = REASONS[Reason.VOCABULARY_REMAPPED].severity,
) -> Finding | None:
    """The VOCABULARY_REMAPPED finding of one feature in one split, or None.

    A finding when values reach rows trained for other tokens, or, unless the
    model's own table already gives EMBEDDING_TABLE_TOO_SMALL, when values reach
    past the old table because the vocabulary grew.
    """
    past_table = stats.values_past_old_table if bounds.embedding_dim_kind != "model" else 0
    if not stats.remapped_values and not past_table:
        return None
    feature = bounds.feature
    changes = (
        f"{stats.tokens_moved} token(s) moved, {stats.tokens_added} added, "
        f"{stats.tokens_removed} removed; {stats.old_vocab_size} -> {stats.new_vocab_size} "
        "entries"
    )
    text = (
        f"{stats.remapped_values} of {num_values} values of {feature!r} in split {split!r} "
        f"({_rate(stats.remapped_values, num_values):.2%}) reach another row than "
        f"{stats.old_source} gave their token ({changes})."
    )
    worst = stats.top_moved[:_WORST_TOKENS]
    if worst:
        text += " Worst: " + ", ".join(m.describe() for m in worst) + "."
    if stats.table_must_grow:
        text += (
            f" The table must grow: the vocabulary and its OOV buckets need "
            f"{stats.new_rows_needed} rows, the old table has {stats.old_table_rows}"
            + (f", and {past_table} values fall past it." if past_table else ".")
        )
    fix = fix_text(Reason.VOCABULARY_REMAPPED)
    return Finding(
        split,
        feature,
        Reason.VOCABULARY_REMAPPED,
        severity,
        stats.remapped_values,
        _rate(stats.remapped_values, num_values),
        f"{text} {fix}",
        tuple((m.token, m.count) for m in stats.top_moved),
        fix=fix,
        values_past_table=past_table or None,
    )


def with_remaps(
    reports: Mapping[str, SplitReport],
    accumulators: Mapping[str, SplitAccumulator],
    severity: Severity = REASONS[Reason.VOCABULARY_REMAPPED].severity,
) -> dict[str, SplitReport]:
    """Adds each compared feature's remap counts and finding to its split's report.

    Args:
      reports: Split name -> its report (findings.build_reports).
      accumulators: Split name -> the combined counts the reports were built from.
      severity: The vocabulary_remapped_severity setting.

    Returns:
      Split name -> the report with `remap` set on every compared feature.
    """
    result = {}
    for split, report in reports.items():
        features = []
        for feature_report in report.features:
            accumulator = accumulators[split].features.get(feature_report.feature)
            counter = None if accumulator is None else accumulator.remap
            if counter is None:
                features.append(feature_report)
                continue
            stats = counter.result()
            finding = remap_finding(
                split, feature_report.bounds, feature_report.stats.num_values, stats, severity
            )
            features.append(
                dataclasses.replace(
                    feature_report,
                    remap=stats,
                    findings=_ordered(feature_report.findings + ((finding,) if finding else ())),
                )
            )
        result[split] = dataclasses.replace(report, features=tuple(features))
    return result


def _ordered(findings: Sequence[Finding]) -> tuple[Finding, ...]:
    # ERRORs first, as feature_findings orders them; stable within a severity.
    rank = {Severity.ERROR: 0, Severity.WARNING: 1, Severity.INFO: 2}
    return tuple(sorted(findings, key=lambda f: rank[f.severity]))


def order_unknown_findings(
    splits: Iterable[str], features: Sequence[str], why: str, hint: str
) -> list[Finding]:
    """One VOCABULARY_ORDER_UNKNOWN finding per split: the old rows cannot be known.

    Args:
      splits: The validated splits.
      features: The vocabulary features whose old rows are unknown.
      why: Why, e.g. "the model holds no transform layer".
      hint: The input that would let the check know, as the caller spells it.
    """
    fix = fix_text(Reason.VOCABULARY_ORDER_UNKNOWN)
    return [
        Finding(
            split,
            "",
            Reason.VOCABULARY_ORDER_UNKNOWN,
            REASONS[Reason.VOCABULARY_ORDER_UNKNOWN].severity,
            0,
            0.0,
            f"Whether the tokens of {list(features)!r} moved rows since the model was trained "
            f"cannot be known: {why}. Pass {hint} to compare. {fix}",
            fix=fix,
        )
        for split in splits
    ]
