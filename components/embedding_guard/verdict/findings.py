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
    return f" Raw values that mapped to -1: {shown}."


def _rate(count: int, total: int) -> float:
    return count / total if total else 0.0


def _finding(
    split: str,
    feature: str,
    reason: Reason,
    count: int,
    rate: float,
    description: str,
    samples: Iterable[tuple[Any, int]] = (),
    severity: Severity | None = None,
) -> Finding:
    return Finding(
        split,
        feature,
        reason,
        REASONS[reason].severity if severity is None else severity,
        count,
        rate,
        description,
        tuple(samples),
    )


def feature_findings(split: str, bounds: FeatureBounds, stats: FeatureStats) -> tuple[Finding, ...]:
    """Turns one feature's counts into findings.

    Args:
      split: Split name, for the findings.
      bounds: The bounds the counts were made against.
      stats: The feature's counts over the split.

    Returns:
      Findings in a fixed order: ERRORs first, then INFO.
    """
    feature = bounds.feature
    where = f"{feature!r} in split {split!r}"
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
                f"examples of split {split!r}. {fix_text(Reason.FEATURE_MISSING_FROM_SPLIT)}",
            )
        )
    total = stats.num_values
    if stats.negative:
        findings.append(
            _finding(
                split,
                feature,
                Reason.NEGATIVE_INDEX,
                stats.negative,
                _rate(stats.negative, total),
                f"{stats.negative} of {total} values of {where} are negative; an embedding "
                "lookup fails on CPU, returns zeros on GPU and Keras 3 wraps -1 to the last "
                f"row. {fix_text(Reason.NEGATIVE_INDEX)}"
                + _describe_samples(stats.top_negative_values)
                + _describe_raw(bounds, stats),
                stats.top_negative_values,
            )
        )
    if stats.out_of_range:
        findings.append(
            _finding(
                split,
                feature,
                Reason.INDEX_OUT_OF_RANGE,
                stats.out_of_range,
                _rate(stats.out_of_range, total),
                f"{stats.out_of_range} of {total} values of {where} are >= "
                f"{bounds.upper_bound} ({bounds.bound_source}), so no embedding of that size "
                f"can look them up. {fix_text(Reason.INDEX_OUT_OF_RANGE)}"
                + _describe_samples(stats.top_out_of_range_values),
                stats.top_out_of_range_values,
            )
        )
    # With input_dim >= upper_bound every such value is already out of range; one
    # finding per cause reads better than two for the same values.
    if stats.over_embedding_dim and bounds.embedding_input_dim < bounds.upper_bound:
        findings.append(
            _finding(
                split,
                feature,
                Reason.INDEX_OVER_EMBEDDING_DIM,
                stats.over_embedding_dim,
                _rate(stats.over_embedding_dim, total),
                f"{stats.over_embedding_dim} of {total} values of {where} are >= the "
                f"embedding input_dim {bounds.embedding_input_dim} "
                f"({bounds.embedding_dim_source}). "
                f"{fix_text(Reason.INDEX_OVER_EMBEDDING_DIM, bounds.upper_bound)}"
                + _describe_samples(stats.top_over_embedding_dim_values),
                stats.top_over_embedding_dim_values,
            )
        )
    if stats.non_integer:
        findings.append(
            _finding(
                split,
                feature,
                Reason.NON_INTEGER_VALUES,
                stats.non_integer,
                _rate(stats.non_integer, total),
                f"{stats.non_integer} of {total} values of {where} are stored as float or "
                f"bytes, not int64. {fix_text(Reason.NON_INTEGER_VALUES)}"
                + _describe_samples(stats.top_non_integer_values),
                stats.top_non_integer_values,
            )
        )
    findings.extend(_model_findings(split, bounds, stats))
    if bounds.schema_disagreement:
        findings.append(
            _finding(
                split,
                feature,
                Reason.SCHEMA_DOMAIN_MISMATCH,
                0,
                0.0,
                f"Feature {feature!r}: {bounds.schema_disagreement} The values were checked "
                f"against the transform graph's bound. {fix_text(Reason.SCHEMA_DOMAIN_MISMATCH)}",
            )
        )
    if stats.oov_bucket:
        findings.append(
            _finding(
                split,
                feature,
                Reason.OOV_BUCKET_HITS,
                stats.oov_bucket,
                _rate(stats.oov_bucket, total),
                f"{stats.oov_bucket} of {total} values of {where} "
                f"({_rate(stats.oov_bucket, total):.2%}) fall in the "
                f"{bounds.num_oov_buckets} OOV bucket(s) after the "
                f"{bounds.vocab_size}-entry vocabulary {bounds.vocabulary!r}."
                + _describe_samples(stats.top_raw_oov_values),
                stats.top_raw_oov_values,
            )
        )
    return tuple(findings)


# model_analysis.KIND_KERAS_EMBEDDING, restated: this module imports no TensorFlow.
_KERAS_EMBEDDING = "Embedding"


def _model_findings(split: str, bounds: FeatureBounds, stats: FeatureStats) -> list[Finding]:
    """Findings about the model's own lookup of the feature, when a model was given."""
    feature = bounds.feature
    found: list[Finding] = []
    if bounds.embedding_dim_kind != "model":
        return found
    total = stats.num_values
    if bounds.embedding_input_dim < bounds.upper_bound:
        # A latent failure: the next value in [input_dim, upper_bound), such as the
        # first one that falls in an OOV bucket the table forgot, fails the lookup.
        found.append(
            _finding(
                split,
                feature,
                Reason.EMBEDDING_TABLE_TOO_SMALL,
                stats.over_embedding_dim,
                _rate(stats.over_embedding_dim, total),
                f"The model's table for {feature!r} has room for values below "
                f"{bounds.embedding_input_dim} ({bounds.embedding_dim_source}), but the "
                f"feature's valid range is [0, {bounds.upper_bound}) ({bounds.bound_source}); "
                f"{stats.over_embedding_dim} of {total} values in split {split!r} already "
                "fall outside the table, and any later value that does fails the lookup. "
                f"{fix_text(Reason.EMBEDDING_TABLE_TOO_SMALL, bounds.upper_bound)}",
            )
        )
    # Keras 3's Embedding wraps negatives to the last rows but raises on CPU for a
    # value past its table (GPUs and XLA return zeros, INDEX_OVER_EMBEDDING_DIM
    # reports those); one-hot and bincount lookups zero both kinds of bad value.
    bad = stats.negative
    if bounds.model_lookup_kind != _KERAS_EMBEDDING:
        bad += stats.over_embedding_dim
    if bounds.model_lookup_silent and bad > 0:
        layer = bounds.model_layer or "(unnamed)"
        found.append(
            _finding(
                split,
                feature,
                Reason.SILENT_WRONG_LOOKUP,
                bad,
                _rate(bad, total),
                f"{bad} of {total} values of {feature!r} in split {split!r} are outside what "
                f"the model's {bounds.model_lookup_kind} layer {layer!r} can look up, and that "
                "lookup does not fail: it would silently use the wrong row or a zero vector "
                f"({bounds.model_bad_index_behaviour}). {fix_text(Reason.SILENT_WRONG_LOOKUP)}",
            )
        )
    return found


def model_lookup_unchecked(splits: Iterable[str], feature: str, description: str) -> list[Finding]:
    """One MODEL_LOOKUP_UNCHECKED finding per split, for a model lookup no check covers."""
    return [
        _finding(
            split,
            feature,
            Reason.MODEL_LOOKUP_UNCHECKED,
            0,
            0.0,
            f"{description} {fix_text(Reason.MODEL_LOOKUP_UNCHECKED)}",
        )
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
                f"Split {split!r} has no examples, so none of its indices were checked. "
                f"{fix_text(Reason.EMPTY_SPLIT)}",
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
    raw = _describe_samples(stats.top_raw_oov_values)
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
                f"{report.bounds.vocabulary!r}), above max_oov_rate {max_rate:.2%}. "
                f"{fix_text(Reason.OOV_RATE_ABOVE_MAX)}" + raw,
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
                f"{max_increase:.2%}. {fix_text(Reason.OOV_RATE_INCREASE)}" + raw,
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
) -> dict[str, SplitReport]:
    """Builds every split's report, with OOV thresholds and drift against the baseline.

    Args:
      accumulators: Split name -> the split's combined counts.
      policy: OOV thresholds; the default only warns.
      unchecked_features: Features that look categorical but have no bound; every
        split's report lists them.
      run_findings: Findings about the run's configuration rather than its data
        (e.g. MODEL_LOOKUP_UNCHECKED), each added to the report of its split.

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
        reports[name] = dataclasses.replace(
            report,
            features=tuple(features),
            split_findings=report.split_findings
            + tuple(f for f in run_findings if f.split == name),
            unchecked_features=tuple(unchecked_features),
        )
    return reports


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
