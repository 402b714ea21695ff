"""Turns counts into findings, and applies the OOV policy across splits.

Each finding's severity and fix come from the `reasons` registry; its
description adds the counts and the most frequent values behind it. Pure Python
and numpy; no TensorFlow or TFX.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from embedding_guard.verdict.core import FeatureBounds, FeatureStats, SplitAccumulator
from embedding_guard.verdict.lookup import (
    LookupConsequence,
    Outcome,
    general_consequence,
    model_consequence,
)
from embedding_guard.verdict.reasons import REASONS, Reason, Severity, fix_text
from embedding_guard.verdict.report_model import (
    FeatureReport,
    Finding,
    OovDrift,
    SplitReport,
    UncheckedFeature,
)


def _describe_samples(samples: Sequence[tuple[Any, int]]) -> str:
    if not samples:
        return ""
    shown = ", ".join(f"{value!r} x{count}" for value, count in samples)
    return f" Most frequent: {shown}."


def _describe_raw(bounds: FeatureBounds, stats: FeatureStats) -> str:
    if bounds.num_oov_buckets or not stats.top_raw_oov_values:
        return ""
    shown = ", ".join(f"{value!r} x{count}" for value, count in stats.top_raw_oov_values)
    return f" Raw values that mapped to {bounds.oov_default_value}: {shown}."


def _describe_default(bounds: FeatureBounds, stats: FeatureStats) -> str:
    """Says how many values are the lookup's default_value for unseen tokens."""
    default = bounds.oov_default_value
    if default is None or not stats.at_default:
        return ""
    return (
        f" {stats.at_default} of them are values missing from vocabulary "
        f"{bounds.vocabulary!r}, mapped to default_value {default}."
    )


def _rate(count: int, total: int) -> float:
    return count / total if total else 0.0


def _finding(
    split: str,
    feature: str,
    reason: Reason,
    count: int,
    rate: float,
    text: str,
    samples: Iterable[tuple[Any, int]] = (),
    severity: Severity | None = None,
    *,
    upper_bound: int | None = None,
    values_past_table: int | None = None,
    lookup: LookupConsequence | None = None,
    detail: str = "",
) -> Finding:
    """One finding: text, then what the lookup does, the fix, then detail."""
    samples = tuple(samples)
    fix = fix_text(reason, upper_bound)
    consequence = f" {lookup.sentence()}" if lookup is not None else ""
    return Finding(
        split,
        feature,
        reason,
        REASONS[reason].severity if severity is None else severity,
        count,
        rate,
        f"{text}{consequence} {fix}{detail}{_describe_samples(samples)}",
        samples,
        fix=fix,
        values_past_table=values_past_table,
        lookup=lookup,
    )


def _outcome(word: str) -> Outcome:
    try:
        return Outcome(word)
    except ValueError:
        return Outcome.UNKNOWN


def lookup_consequence(bounds: FeatureBounds, negative: bool) -> LookupConsequence:
    """What the lookup the feature meets does with its negative or too-large values."""
    if bounds.embedding_dim_kind == "model" and bounds.model_lookup_kind:
        word = bounds.model_on_negative if negative else bounds.model_on_too_large
        return model_consequence(
            bounds.model_lookup_kind,
            bounds.model_layer,
            _outcome(word),
            bounds.model_lookup_guarded,
            bounds.model_bad_index_behaviour,
        )
    return general_consequence(negative)


def feature_findings(split: str, bounds: FeatureBounds, stats: FeatureStats) -> tuple[Finding, ...]:
    """Turns one feature's counts into findings, one per problem.

    One root cause gives one finding: a table smaller than the feature's range
    is EMBEDDING_TABLE_TOO_SMALL (the model's) or INDEX_OVER_EMBEDDING_DIM (the
    Trainer's input_dim), values past the range are INDEX_OUT_OF_RANGE, and what
    the lookup then does (raise, wrap, zero row; on CPU and GPU) is the finding's
    `lookup`, never a finding of its own.

    Args:
      split: Split name, for the findings.
      bounds: The bounds the counts were made against.
      stats: The feature's counts over the split.

    Returns:
      Findings in a fixed order: ERRORs first, then WARNING and INFO.
    """
    feature = bounds.feature
    where = f"{feature!r} in split {split!r}"
    total = stats.num_values
    findings = []
    if stats.num_examples and stats.missing == stats.num_examples:
        findings.append(
            _finding(
                split,
                feature,
                Reason.FEATURE_MISSING_FROM_SPLIT,
                stats.missing,
                1.0,
                f"Feature {feature!r} has no value in any of the {stats.num_examples} "
                f"examples of split {split!r}.",
            )
        )
    if stats.negative:
        findings.append(
            _finding(
                split,
                feature,
                Reason.NEGATIVE_INDEX,
                stats.negative,
                _rate(stats.negative, total),
                f"{stats.negative} of {total} values of {where} are negative."
                + _describe_default(bounds, stats),
                stats.top_negative_values,
                values_past_table=stats.negative,
                lookup=lookup_consequence(bounds, negative=True),
                detail=_describe_raw(bounds, stats),
            )
        )
    if stats.out_of_range:
        past_table = min(stats.out_of_range, stats.over_embedding_dim)
        findings.append(
            _finding(
                split,
                feature,
                Reason.INDEX_OUT_OF_RANGE,
                stats.out_of_range,
                _rate(stats.out_of_range, total),
                f"{stats.out_of_range} of {total} values of {where} are >= "
                f"{bounds.upper_bound} ({bounds.bound_source})." + _describe_default(bounds, stats),
                stats.top_out_of_range_values,
                values_past_table=past_table,
                lookup=lookup_consequence(bounds, negative=False) if past_table else None,
            )
        )
    if bounds.embedding_input_dim < bounds.upper_bound:
        findings.extend(_table_too_small(split, bounds, stats))
    if stats.non_integer:
        findings.append(
            _finding(
                split,
                feature,
                Reason.NON_INTEGER_VALUES,
                stats.non_integer,
                _rate(stats.non_integer, total),
                f"{stats.non_integer} of {total} values of {where} are stored as float or "
                "bytes, not int64.",
                stats.top_non_integer_values,
            )
        )
    if bounds.schema_disagreement:
        findings.append(
            _finding(
                split,
                feature,
                Reason.SCHEMA_DOMAIN_MISMATCH,
                0,
                0.0,
                f"Feature {feature!r}: {bounds.schema_disagreement} The values were checked "
                "against the transform graph's bound.",
            )
        )
    in_range_oov = (stats.oov_bucket or 0) + (
        (stats.at_default or 0) if bounds.default_in_range else 0
    )
    if in_range_oov:
        findings.append(
            _finding(
                split,
                feature,
                Reason.OOV_BUCKET_HITS,
                in_range_oov,
                _rate(in_range_oov, total),
                f"{in_range_oov} of {total} values of {where} "
                f"({_rate(in_range_oov, total):.2%}) are not in the "
                f"{bounds.vocab_size}-entry vocabulary {bounds.vocabulary!r}: "
                + _oov_words(bounds, stats)
                + ".",
                stats.top_raw_oov_values,
            )
        )
    return tuple(findings)


def _oov_words(bounds: FeatureBounds, stats: FeatureStats) -> str:
    """Where a feature's in-range OOV values went: buckets, default_value or both."""
    parts = []
    if stats.oov_bucket:
        parts.append(f"{stats.oov_bucket} fall in its {bounds.num_oov_buckets} OOV bucket(s)")
    if bounds.default_in_range and stats.at_default:
        parts.append(f"{stats.at_default} were mapped to default_value {bounds.oov_default_value}")
    return " and ".join(parts)


def _table_too_small(split: str, bounds: FeatureBounds, stats: FeatureStats) -> list[Finding]:
    """The one finding of a lookup table smaller than the feature's valid range.

    The model's table is a problem before any value reaches it (the next unseen
    value fails), so it is reported even with no value past it; a Trainer
    input_dim given as a parameter only when values land past it.
    """
    feature = bounds.feature
    total = stats.num_values
    # Every out-of-range value is also past the smaller table; those are
    # INDEX_OUT_OF_RANGE's, so this finding counts the rest.
    past_table = max(stats.over_embedding_dim - stats.out_of_range, 0)
    lookup = lookup_consequence(bounds, negative=False) if past_table else None
    if bounds.embedding_dim_kind == "model":
        return [
            _finding(
                split,
                feature,
                Reason.EMBEDDING_TABLE_TOO_SMALL,
                past_table,
                _rate(past_table, total),
                f"The model's table for {feature!r} has room for values below "
                f"{bounds.embedding_input_dim} ({bounds.embedding_dim_source}), but the "
                f"feature's valid range is [0, {bounds.upper_bound}) ({bounds.bound_source}); "
                f"{past_table} of {total} values in split {split!r} already fall past the "
                "table, and any later value that does meets a lookup past its table.",
                _samples_below(stats.top_over_embedding_dim_values, bounds.upper_bound),
                upper_bound=bounds.upper_bound,
                values_past_table=past_table,
                lookup=lookup,
            )
        ]
    if not past_table:
        return []
    return [
        _finding(
            split,
            feature,
            Reason.INDEX_OVER_EMBEDDING_DIM,
            past_table,
            _rate(past_table, total),
            f"{past_table} of {total} values of {feature!r} in split {split!r} are >= the "
            f"embedding input_dim {bounds.embedding_input_dim} ({bounds.embedding_dim_source}) "
            f"but inside the feature's range [0, {bounds.upper_bound}).",
            _samples_below(stats.top_over_embedding_dim_values, bounds.upper_bound),
            upper_bound=bounds.upper_bound,
            values_past_table=past_table,
            lookup=lookup,
        )
    ]


def _samples_below(samples: Sequence[tuple[int, int]], bound: int) -> tuple[tuple[int, int], ...]:
    # The values past the table but inside the range; the rest are out of range.
    return tuple((value, count) for value, count in samples if value < bound)


def model_lookup_unchecked(splits: Iterable[str], feature: str, description: str) -> list[Finding]:
    """One MODEL_LOOKUP_UNCHECKED finding per split, for a model lookup no check covers."""
    return [
        _finding(split, feature, Reason.MODEL_LOOKUP_UNCHECKED, 0, 0.0, description)
        for split in splits
    ]


def split_report(split: str, accumulator: SplitAccumulator) -> SplitReport:
    """Builds the frozen report of one split from its combined counts."""
    features = []
    split_findings = []
    if accumulator.num_examples == 0:
        split_findings.append(
            _finding(
                split,
                "",
                Reason.EMPTY_SPLIT,
                0,
                0.0,
                f"Split {split!r} has no examples, so none of its indices were checked.",
            )
        )
    for name in sorted(accumulator.features):
        feature_accumulator = accumulator.features[name]
        stats = feature_accumulator.result()
        feature_level = feature_findings(split, feature_accumulator.bounds, stats)
        features.append(FeatureReport(feature_accumulator.bounds, stats, feature_level))
    return SplitReport(split, accumulator.num_examples, tuple(features), tuple(split_findings))


@dataclasses.dataclass(frozen=True)
class OovPolicy:
    """Thresholds on OOV rates; by default they only warn, nothing new blocks.

    Attributes:
      max_oov_rate: Highest accepted OOV rate, for every feature (a float) or per
        feature (a mapping); None checks nothing.
      max_oov_rate_severity: Severity of a finding above max_oov_rate.
      max_oov_rate_increase: Highest accepted rise of a split's OOV rate over the
        baseline split's (a difference of rates), global or per feature.
      max_oov_rate_increase_severity: Severity of a finding above it.
      baseline_split: The split the others are compared with.
    """

    max_oov_rate: float | Mapping[str, float] | None = None
    max_oov_rate_severity: Severity = REASONS[Reason.OOV_RATE_ABOVE_MAX].severity
    max_oov_rate_increase: float | Mapping[str, float] | None = 0.05
    max_oov_rate_increase_severity: Severity = REASONS[Reason.OOV_RATE_INCREASE].severity
    baseline_split: str = "train"

    @staticmethod
    def _threshold(setting: float | Mapping[str, float] | None, feature: str) -> float | None:
        if setting is None or isinstance(setting, (int, float)):
            return setting
        return setting.get(feature)


def _oov_findings(
    split: str, report: FeatureReport, drift: OovDrift | None, policy: OovPolicy
) -> list[Finding]:
    stats, feature = report.stats, report.bounds.feature
    findings: list[Finding] = []
    if stats.oov is None or stats.oov_rate is None or not stats.num_values:
        return findings
    max_rate = policy._threshold(policy.max_oov_rate, feature)
    if max_rate is not None and stats.oov_rate > max_rate:
        findings.append(
            _finding(
                split,
                feature,
                Reason.OOV_RATE_ABOVE_MAX,
                stats.oov,
                stats.oov_rate,
                f"OOV rate of {feature!r} in split {split!r} is {stats.oov_rate:.2%} "
                f"({stats.oov} of {stats.num_values} values not in vocabulary "
                f"{report.bounds.vocabulary!r}), above max_oov_rate {max_rate:.2%}.",
                stats.top_raw_oov_values,
                policy.max_oov_rate_severity,
            )
        )
    max_increase = policy._threshold(policy.max_oov_rate_increase, feature)
    if drift is not None and max_increase is not None and drift.difference > max_increase:
        ratio = "" if drift.ratio is None else f", {drift.ratio:.1f}x"
        findings.append(
            _finding(
                split,
                feature,
                Reason.OOV_RATE_INCREASE,
                stats.oov,
                stats.oov_rate,
                f"OOV rate of {feature!r} in split {split!r} is {drift.oov_rate:.2%} against "
                f"{drift.baseline_oov_rate:.2%} in {drift.baseline_split!r} "
                f"(+{drift.difference:.2%}{ratio}), above max_oov_rate_increase "
                f"{max_increase:.2%}.",
                stats.top_raw_oov_values,
                policy.max_oov_rate_increase_severity,
            )
        )
    return findings


def build_reports(
    accumulators: Mapping[str, SplitAccumulator],
    policy: OovPolicy | None = None,
    unchecked_features: Sequence[UncheckedFeature] = (),
    run_findings: Sequence[Finding] = (),
    *,
    gate: str = "Trainer",
    unchecked_severity: Severity = Severity.INFO,
) -> dict[str, SplitReport]:
    """Builds every split's report, with OOV thresholds and drift against the baseline.

    Args:
      accumulators: Split name -> the split's combined counts.
      policy: OOV thresholds; the default only warns.
      unchecked_features: Integer features that were not checked, with their
        role; every split's report lists them.
      run_findings: Findings about the run's configuration rather than its data
        (e.g. MODEL_LOOKUP_UNCHECKED), each added to the report of its split.
      gate: The stage the run gates, "Trainer" or "Pusher" (with a model).
      unchecked_severity: WARNING or ERROR makes each feature that is not checked
        a FEATURE_NOT_CHECKED finding of that severity; INFO only lists them.

    Returns:
      Split name -> report.
    """
    policy = policy or OovPolicy()
    reports = {name: split_report(name, acc) for name, acc in accumulators.items()}
    baseline = reports.get(policy.baseline_split)
    baseline_rates = (
        {f.feature: f.stats.oov_rate for f in baseline.features if f.stats.oov_rate is not None}
        if baseline is not None
        else {}
    )
    for name, report in reports.items():
        features = []
        for feature_report in report.features:
            feature = feature_report.feature
            drift = None
            rate = feature_report.stats.oov_rate
            if name != policy.baseline_split and feature in baseline_rates and rate is not None:
                drift = OovDrift(policy.baseline_split, baseline_rates[feature], rate)
            extra = _oov_findings(name, feature_report, drift, policy)
            features.append(
                dataclasses.replace(
                    feature_report,
                    findings=feature_report.findings + tuple(extra),
                    oov_drift=drift,
                )
            )
        split_run_findings = tuple(f for f in run_findings if f.split == name)
        reports[name] = dataclasses.replace(
            report,
            features=tuple(features),
            split_findings=report.split_findings
            + split_run_findings
            + _not_checked_findings(
                name, unchecked_features, split_run_findings, unchecked_severity
            ),
            unchecked_features=tuple(unchecked_features),
            gate=gate,
        )
    return reports


def _not_checked_findings(
    split: str,
    unchecked_features: Sequence[UncheckedFeature],
    run_findings: Sequence[Finding],
    severity: Severity,
) -> tuple[Finding, ...]:
    """FEATURE_NOT_CHECKED findings, when unchecked_severity asks for them.

    A feature the model looks up already has its MODEL_LOOKUP_UNCHECKED finding:
    one problem, one finding.
    """
    if severity is Severity.INFO:
        return ()
    covered = {f.feature for f in run_findings if f.reason is Reason.MODEL_LOOKUP_UNCHECKED}
    return tuple(
        _finding(
            split,
            unchecked.name,
            Reason.FEATURE_NOT_CHECKED,
            0,
            0.0,
            f"Feature {unchecked.name!r} was not checked: {unchecked.why}.",
            severity=severity,
        )
        for unchecked in unchecked_features
        if unchecked.role == UncheckedFeature.NOT_CHECKED and unchecked.name not in covered
    )


def check_arrays(
    split: str,
    bounds: Iterable[FeatureBounds],
    columns: Mapping[str, tuple[np.ndarray, np.ndarray]],
) -> SplitReport:
    """Checks one in-memory batch; a convenience for notebooks and tests.

    Args:
      split: Split name.
      bounds: Bounds of the checked features.
      columns: feature -> (flat values, row lengths). A checked feature absent
        from columns counts as missing from every example.

    Returns:
      The split's report.
    """
    bounds = list(bounds)
    num_examples = max((len(lengths) for _, lengths in columns.values()), default=0)
    accumulator = SplitAccumulator(bounds)
    accumulator.add_examples(num_examples)
    for b in bounds:
        if b.feature in columns:
            values, lengths = columns[b.feature]
            accumulator.features[b.feature].add_batch(values, lengths)
        else:
            accumulator.features[b.feature].add_missing(num_examples)
    return split_report(split, accumulator)
