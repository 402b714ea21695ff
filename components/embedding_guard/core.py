"""Pure validation core: counts categorical indices against their bounds.

Nothing here imports TensorFlow or TFX. The executor, the CLI and the benchmark
feed it numpy arrays, one batch at a time, and combine the partial results.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Iterable, Mapping

import numpy as np

# How many distinct offending values each accumulator tracks. Beyond this the
# least frequent are dropped, and the report says its sample counts are partial.
OFFENDING_VALUES_CAPACITY = 1000
TOP_OFFENDING_VALUES = 10


class Reason(str, enum.Enum):
    """Stable reason codes; they appear in reports and must never be renamed."""

    NEGATIVE_INDEX = "NEGATIVE_INDEX"
    INDEX_OUT_OF_RANGE = "INDEX_OUT_OF_RANGE"
    INDEX_OVER_EMBEDDING_DIM = "INDEX_OVER_EMBEDDING_DIM"
    NON_INTEGER_VALUES = "NON_INTEGER_VALUES"
    FEATURE_MISSING_FROM_SPLIT = "FEATURE_MISSING_FROM_SPLIT"
    EMPTY_SPLIT = "EMPTY_SPLIT"
    OOV_BUCKET_HITS = "OOV_BUCKET_HITS"
    OOV_RATE_ABOVE_MAX = "OOV_RATE_ABOVE_MAX"
    OOV_RATE_INCREASE = "OOV_RATE_INCREASE"


class Severity(str, enum.Enum):
    """How a finding affects the verdict: any ERROR blocks the Trainer."""

    ERROR = "ERROR"
    WARNING = "WARNING"
    INFO = "INFO"


@dataclasses.dataclass(frozen=True)
class FeatureBounds:
    """The valid index range of one transformed feature and where it came from.

    Attributes:
      feature: Transformed feature name.
      upper_bound: Exclusive upper bound of valid indices, [0, upper_bound):
        vocab_size + num_oov_buckets, or int_domain.max + 1.
      embedding_input_dim: The Trainer's Embedding(input_dim=...); indices at or
        above it fail the lookup even when they are inside upper_bound.
      vocab_size: Entries in the linked vocabulary, without OOV buckets; None
        when the feature has no vocabulary (bucketized or identity features).
      num_oov_buckets: OOV buckets after the vocabulary; 0 without vocabulary.
      vocabulary: Name of the linked vocabulary, if any.
      bound_source: Human-readable origin of upper_bound.
      embedding_dim_source: Human-readable origin of embedding_input_dim.
      bound_kind: Where upper_bound came from, as a stable word: "vocabulary",
        "hash" or "bucketize" (read from the transform graph),
        "feature_vocabularies", "vocabulary_name" (linked by name),
        "int_domain" or "embedding_input_dims".
      raw_features: Raw features the transform graph computes the feature from.
      raw_feature: The raw feature whose values stand behind each index, when
        there is exactly one; None otherwise.
      default_value: The lookup's value for unknown keys when it has no OOV
        bucket, read from the graph; None when unknown or not a lookup.
      vocabulary_file: The vocabulary's asset file, when linked.
      schema_disagreement: A sentence saying how the transform graph and the
        schema's int_domain disagree, or None when they agree.
    """

    feature: str
    upper_bound: int
    embedding_input_dim: int
    vocab_size: int | None = None
    num_oov_buckets: int = 0
    vocabulary: str | None = None
    bound_source: str = ""
    embedding_dim_source: str = ""
    bound_kind: str = ""
    raw_features: tuple[str, ...] = ()
    raw_feature: str | None = None
    default_value: int | None = None
    vocabulary_file: str | None = None
    schema_disagreement: str | None = None

    def __post_init__(self):
        if self.upper_bound <= 0:
            raise ValueError(
                f"upper_bound of feature {self.feature!r} must be positive, "
                f"got {self.upper_bound!r}"
            )
        if self.embedding_input_dim <= 0:
            raise ValueError(
                f"embedding_input_dim of feature {self.feature!r} must be positive, "
                f"got {self.embedding_input_dim!r}"
            )
        if self.vocab_size is not None and not 0 <= self.vocab_size <= self.upper_bound:
            raise ValueError(
                f"vocab_size of feature {self.feature!r} must be in [0, upper_bound="
                f"{self.upper_bound!r}], got {self.vocab_size!r}"
            )
        if self.num_oov_buckets < 0:
            raise ValueError(
                f"num_oov_buckets of feature {self.feature!r} must be >= 0, "
                f"got {self.num_oov_buckets!r}"
            )

    @property
    def in_vocab_bound(self) -> int:
        """Exclusive end of the vocabulary part of the range."""
        return self.upper_bound if self.vocab_size is None else self.vocab_size

    def to_json(self) -> dict:
        fields = dataclasses.asdict(self)
        # JSON has no tuples; a list makes to_json() equal its own round trip.
        fields["raw_features"] = list(self.raw_features)
        return fields


@dataclasses.dataclass(frozen=True)
class FeatureStats:
    """Exact counts for one feature over one split.

    Value counts are over every element, so a multivalent feature contributes
    each of its values. top_offending_values holds the most frequent values that
    are negative, out of range or over the embedding dim, as (value, count), most
    frequent first; top_non_integer_values holds float or bytes values as text.
    """

    num_examples: int
    num_values: int
    missing: int
    negative: int
    in_vocab: int
    oov_bucket: int
    out_of_range: int
    over_embedding_dim: int
    non_integer: int
    min: int | None
    max: int | None
    top_offending_values: tuple[tuple[int, int], ...]
    top_non_integer_values: tuple[tuple[str, int], ...]
    offending_values_complete: bool
    at_default: int = 0
    vocab_entries_unseen: int | None = None
    raw_values_checked: bool = False
    raw_empty_or_missing: int = 0
    top_raw_oov_values: tuple[tuple[str, int], ...] = ()
    top_negative_values: tuple[tuple[int, int], ...] = ()
    top_out_of_range_values: tuple[tuple[int, int], ...] = ()
    top_over_embedding_dim_values: tuple[tuple[int, int], ...] = ()

    @property
    def oov(self) -> int:
        """Values that were not in the vocabulary: OOV-bucket hits plus default (-1) values."""
        return self.oov_bucket + self.at_default

    @property
    def oov_rate(self) -> float:
        return self.oov / self.num_values if self.num_values else 0.0

    def to_json(self) -> dict:
        result = dataclasses.asdict(self)
        result["oov"] = self.oov
        result["oov_rate"] = self.oov_rate
        for name in (
            "top_raw_oov_values",
            "top_negative_values",
            "top_out_of_range_values",
            "top_over_embedding_dim_values",
        ):
            result[name] = [
                {"value": value, "count": count} for value, count in getattr(self, name)
            ]
        result["top_offending_values"] = [
            {"value": value, "count": count} for value, count in self.top_offending_values
        ]
        result["top_non_integer_values"] = [
            {"value": value, "count": count} for value, count in self.top_non_integer_values
        ]
        return result


def _add_counts(target: dict, values: np.ndarray, keys=None) -> None:
    uniques, counts = np.unique(values, return_counts=True)
    for value, count in zip(
        uniques.tolist() if keys is None else keys(uniques), counts.tolist(), strict=True
    ):
        target[value] = target.get(value, 0) + count


def _bounded(counts: dict) -> tuple[dict, bool]:
    if len(counts) <= OFFENDING_VALUES_CAPACITY:
        return counts, True
    kept = sorted(counts.items(), key=_rank)[:OFFENDING_VALUES_CAPACITY]
    return dict(kept), False


def _rank(item):
    value, count = item
    return (-count, value)


def _top(counts: dict) -> tuple:
    return tuple(sorted(counts.items(), key=_rank)[:TOP_OFFENDING_VALUES])


def _raw_text(value) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="backslashreplace")
    return str(value)


def _raw_keys(uniques: np.ndarray) -> list[str]:
    return [_raw_text(value) for value in uniques.tolist()]


def _non_integer_text(uniques: np.ndarray) -> list[str]:
    texts = []
    for value in uniques.tolist():
        if isinstance(value, bytes):
            texts.append(value.decode("utf-8", errors="backslashreplace"))
        else:
            texts.append(repr(value))
    return texts


# Plain counts: merging adds them.
_COUNT_FIELDS = (
    "num_examples",
    "num_values",
    "missing",
    "negative",
    "in_vocab",
    "oov_bucket",
    "out_of_range",
    "over_embedding_dim",
    "non_integer",
    "at_default",
    "raw_empty_or_missing",
)


class FeatureAccumulator:
    """Mutable partial counts for one feature; merge() makes it a Beam combiner.

    Args:
      bounds: The bounds the values are checked against.
    """

    __slots__ = (
        "bounds",
        *_COUNT_FIELDS,
        "min",
        "max",
        "negative_values",
        "large_values",
        "non_integer_values",
        "complete",
        "seen",
        "raw_values_checked",
        "raw_oov_values",
    )

    def __init__(self, bounds: FeatureBounds):
        self.bounds = bounds
        for name in _COUNT_FIELDS:
            setattr(self, name, 0)
        self.min: int | None = None
        self.max: int | None = None
        # Negative and too-large values are tracked apart, so that many distinct
        # values of one kind cannot crowd the other out of the bounded samples.
        self.negative_values: dict[int, int] = {}
        self.large_values: dict[int, int] = {}
        self.non_integer_values: dict[str, int] = {}
        self.complete = True
        # Which vocabulary entries occur: the rest are embedding rows that never train.
        self.seen = None if bounds.vocab_size is None else np.zeros(bounds.vocab_size, dtype=bool)
        self.raw_values_checked = False
        self.raw_oov_values: dict[str, int] = {}

    def __getstate__(self):
        state = {name: getattr(self, name) for name in self.__slots__}
        # Beam pickles one accumulator per shard; a bit per vocabulary entry keeps a
        # 1M-entry vocabulary at 125 KB instead of 1 MB.
        if self.seen is not None:
            state["seen"] = (self.seen.size, np.packbits(self.seen))
        return state

    def __setstate__(self, state):
        seen = state.pop("seen")
        if seen is not None:
            size, packed = seen
            seen = np.unpackbits(packed, count=size).astype(bool)
        state["seen"] = seen
        for name, value in state.items():
            setattr(self, name, value)

    def add_missing(self, num_examples: int) -> None:
        """Counts examples in which the feature does not occur at all."""
        self.num_examples += num_examples
        self.missing += num_examples

    def add_batch(
        self,
        values: np.ndarray,
        row_lengths: np.ndarray,
        raw_values: np.ndarray | None = None,
        raw_row_lengths: np.ndarray | None = None,
    ) -> None:
        """Counts one batch of a feature.

        Args:
          values: Every value of the batch, flattened across examples. Integer
            dtypes are checked against the bounds; any other dtype (float,
            bytes, object) counts as non-integer.
          row_lengths: Number of values of each example in the batch; 0 means
            the example has no value.
          raw_values: In raw mode, the raw values the indices were made from,
            flattened the same way; they name the values that fell into OOV.
          raw_row_lengths: Values per example of raw_values.
        """
        if raw_values is not None:
            self._add_raw(values, row_lengths, raw_values, raw_row_lengths)
        row_lengths = np.asarray(row_lengths)
        self.num_examples += int(row_lengths.size)
        self.missing += int(np.count_nonzero(row_lengths == 0))
        values = np.asarray(values)
        if values.size == 0:
            return
        self.num_values += int(values.size)
        if values.dtype == object:
            # The reader's per-example fallback mixes ints with floats or bytes in one
            # array when a feature's kind varies between examples: the ints are still
            # indices to check, and only the rest is non-integer.
            is_integer = np.array([isinstance(v, int) for v in values.tolist()], dtype=bool)
            self._add_non_integer(values[~is_integer])
            if not is_integer.any():
                return
            values = values[is_integer].astype(np.int64)
        elif not np.issubdtype(values.dtype, np.integer):
            self._add_non_integer(values)
            return
        # uint64 stays as it is: casting it would wrap values >= 2**63 to negatives.
        if values.dtype != np.int64 and np.can_cast(values.dtype, np.int64):
            values = values.astype(np.int64)
        bounds = self.bounds
        below_zero = int(np.count_nonzero(values < 0))
        below_vocab_end = int(np.count_nonzero(values < bounds.in_vocab_bound))
        below_upper = int(np.count_nonzero(values < bounds.upper_bound))
        over_dim = int(np.count_nonzero(values >= bounds.embedding_input_dim))
        self.negative += below_zero
        self.in_vocab += below_vocab_end - below_zero
        self.oov_bucket += below_upper - below_vocab_end
        out_of_range = int(values.size) - below_upper
        self.out_of_range += out_of_range
        self.over_embedding_dim += over_dim
        batch_min, batch_max = int(values.min()), int(values.max())
        self.min = batch_min if self.min is None else min(self.min, batch_min)
        self.max = batch_max if self.max is None else max(self.max, batch_max)
        if bounds.vocab_size is not None:
            if bounds.num_oov_buckets == 0 and below_zero:
                # compute_and_apply_vocabulary's default_value for unseen values.
                self.at_default += int(np.count_nonzero(values == -1))
            in_vocab_values = values[(values >= 0) & (values < bounds.vocab_size)]
            self.seen[in_vocab_values] = True
        if below_zero:
            _add_counts(self.negative_values, values[values < 0])
            self.negative_values, complete = _bounded(self.negative_values)
            self.complete &= complete
        if out_of_range or over_dim:
            lowest_bad = min(bounds.upper_bound, bounds.embedding_input_dim)
            _add_counts(self.large_values, values[values >= lowest_bad])
            self.large_values, complete = _bounded(self.large_values)
            self.complete &= complete

    def _add_non_integer(self, values: np.ndarray) -> None:
        if values.size == 0:
            return
        self.non_integer += int(values.size)
        if values.dtype == object:
            # Floats and bytes cannot be sorted together, their texts can.
            values = np.array(_non_integer_text(values), dtype=object)
            _add_counts(self.non_integer_values, values)
        else:
            _add_counts(self.non_integer_values, values, _non_integer_text)
        self.non_integer_values, complete = _bounded(self.non_integer_values)
        self.complete &= complete

    def _add_raw(self, values, row_lengths, raw_values, raw_row_lengths) -> None:
        self.raw_values_checked = True
        raw_values = np.asarray(raw_values)
        raw_row_lengths = np.asarray(raw_row_lengths)
        self.raw_empty_or_missing += int(np.count_nonzero(raw_row_lengths == 0))
        if raw_values.dtype == object:
            self.raw_empty_or_missing += sum(1 for v in raw_values.tolist() if v in (b"", ""))
        values = np.asarray(values)
        bounds = self.bounds
        # Raw and transformed values line up only for element-wise transforms such
        # as a vocabulary lookup; otherwise no raw value can be named.
        if (
            bounds.vocab_size is None
            or raw_values.shape != values.shape
            or not np.array_equal(raw_row_lengths, np.asarray(row_lengths))
            or not np.issubdtype(values.dtype, np.integer)
        ):
            return
        is_oov = (values >= bounds.vocab_size) & (values < bounds.upper_bound)
        if bounds.num_oov_buckets == 0:
            is_oov |= values == -1
        if is_oov.any():
            _add_counts(self.raw_oov_values, raw_values[is_oov], _raw_keys)
            self.raw_oov_values, complete = _bounded(self.raw_oov_values)
            self.complete &= complete

    def merge(self, other: FeatureAccumulator) -> FeatureAccumulator:
        """Adds other's counts into self and returns self."""
        for name in _COUNT_FIELDS:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.raw_values_checked = self.raw_values_checked or other.raw_values_checked
        if self.seen is not None:
            self.seen |= other.seen
        if other.min is not None:
            self.min = other.min if self.min is None else min(self.min, other.min)
            self.max = other.max if self.max is None else max(self.max, other.max)
        self.complete = self.complete and other.complete
        for name in ("negative_values", "large_values", "non_integer_values", "raw_oov_values"):
            mine = getattr(self, name)
            for value, count in getattr(other, name).items():
                mine[value] = mine.get(value, 0) + count
            bounded, complete = _bounded(mine)
            setattr(self, name, bounded)
            self.complete = self.complete and complete
        return self

    def result(self) -> FeatureStats:
        return FeatureStats(
            num_examples=self.num_examples,
            num_values=self.num_values,
            missing=self.missing,
            negative=self.negative,
            in_vocab=self.in_vocab,
            oov_bucket=self.oov_bucket,
            out_of_range=self.out_of_range,
            over_embedding_dim=self.over_embedding_dim,
            non_integer=self.non_integer,
            min=self.min,
            max=self.max,
            top_offending_values=_top({**self.negative_values, **self.large_values}),
            top_non_integer_values=_top(self.non_integer_values),
            offending_values_complete=self.complete,
            at_default=self.at_default,
            vocab_entries_unseen=(
                None if self.seen is None else int(self.seen.size - np.count_nonzero(self.seen))
            ),
            raw_values_checked=self.raw_values_checked,
            raw_empty_or_missing=self.raw_empty_or_missing,
            top_raw_oov_values=_top(self.raw_oov_values),
            # Per reason, so frequent too-large values cannot crowd out the negatives.
            top_negative_values=_top(self.negative_values),
            top_out_of_range_values=_top(
                {v: c for v, c in self.large_values.items() if v >= self.bounds.upper_bound}
            ),
            top_over_embedding_dim_values=_top(
                {v: c for v, c in self.large_values.items() if v >= self.bounds.embedding_input_dim}
            ),
        )


class SplitAccumulator:
    """Partial counts of every checked feature of one split.

    Args:
      bounds: The checked features' bounds.
    """

    def __init__(self, bounds: Iterable[FeatureBounds]):
        self.features = {b.feature: FeatureAccumulator(b) for b in bounds}
        self.num_examples = 0

    def add_examples(self, num_examples: int) -> None:
        self.num_examples += num_examples

    def merge(self, other: SplitAccumulator) -> SplitAccumulator:
        self.num_examples += other.num_examples
        for name, accumulator in other.features.items():
            self.features[name].merge(accumulator)
        return self


@dataclasses.dataclass(frozen=True)
class Finding:
    """One reason a split's feature passes, warns or blocks.

    Attributes:
      split: Split name.
      feature: Transformed feature name; empty for split-level findings.
      reason: Stable reason code.
      severity: ERROR blocks the Trainer; WARNING and INFO only report.
      count: Number of values (or examples, for missing features) concerned.
      rate: count over the values (or examples) of the split, in [0, 1].
      description: Sentence with the counts and the fix.
      sample_values: The most frequent values behind the finding, with counts.
    """

    split: str
    feature: str
    reason: Reason
    severity: Severity
    count: int
    rate: float
    description: str
    sample_values: tuple[tuple[int | str, int], ...] = ()

    def to_json(self) -> dict:
        return {
            "split": self.split,
            "feature": self.feature,
            "reason": self.reason.value,
            "severity": self.severity.value,
            "count": self.count,
            "rate": self.rate,
            "description": self.description,
            "sample_values": [{"value": v, "count": c} for v, c in self.sample_values],
        }


@dataclasses.dataclass(frozen=True)
class OovDrift:
    """A feature's OOV rate in a split against the baseline split's."""

    baseline_split: str
    baseline_oov_rate: float
    oov_rate: float

    @property
    def difference(self) -> float:
        return self.oov_rate - self.baseline_oov_rate

    @property
    def ratio(self) -> float | None:
        return self.oov_rate / self.baseline_oov_rate if self.baseline_oov_rate else None

    def to_json(self) -> dict:
        return {
            "baseline_split": self.baseline_split,
            "baseline_oov_rate": self.baseline_oov_rate,
            "oov_rate": self.oov_rate,
            "difference": self.difference,
            "ratio": self.ratio,
        }


@dataclasses.dataclass(frozen=True)
class FeatureReport:
    bounds: FeatureBounds
    stats: FeatureStats
    findings: tuple[Finding, ...]
    oov_drift: OovDrift | None = None

    def to_json(self) -> dict:
        return {
            "feature": self.bounds.feature,
            "bounds": self.bounds.to_json(),
            "counts": self.stats.to_json(),
            "oov_drift": None if self.oov_drift is None else self.oov_drift.to_json(),
            "findings": [f.to_json() for f in self.findings],
        }


@dataclasses.dataclass(frozen=True)
class SplitReport:
    """Everything the validator found in one split."""

    split: str
    num_examples: int
    features: tuple[FeatureReport, ...]
    findings: tuple[Finding, ...]

    @property
    def blessed(self) -> bool:
        return not any(f.severity is Severity.ERROR for f in self.findings)

    def to_json(self) -> dict:
        return {
            "split": self.split,
            "num_examples": self.num_examples,
            "blessed": self.blessed,
            "num_errors": sum(f.severity is Severity.ERROR for f in self.findings),
            "num_warnings": sum(f.severity is Severity.WARNING for f in self.findings),
            "split_findings": [f.to_json() for f in self.findings if not f.feature],
            "features": [f.to_json() for f in self.features],
        }


def _describe_samples(samples) -> str:
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
    findings = []
    if stats.num_examples and stats.missing == stats.num_examples:
        findings.append(
            Finding(
                split,
                feature,
                Reason.FEATURE_MISSING_FROM_SPLIT,
                Severity.ERROR,
                stats.missing,
                1.0,
                f"Feature {feature!r} has no value in any of the {stats.num_examples} "
                f"examples of split {split!r}. Check that the examples were produced by "
                "this transform graph, or remove the feature from `features` / "
                "`embedding_input_dims`.",
            )
        )
    total = stats.num_values
    if stats.negative:
        findings.append(
            Finding(
                split,
                feature,
                Reason.NEGATIVE_INDEX,
                Severity.ERROR,
                stats.negative,
                _rate(stats.negative, total),
                f"{stats.negative} of {total} values of {feature!r} in split {split!r} are "
                "negative; an embedding lookup fails on CPU, returns zeros on GPU and "
                "Keras 3 wraps -1 to the last row. A -1 usually is "
                "compute_and_apply_vocabulary's default_value for values missing from "
                "the vocabulary: set num_oov_buckets >= 1 and size the Embedding with "
                "embedding_guard.embedding_input_dim()."
                + _describe_samples(stats.top_negative_values)
                + _describe_raw(bounds, stats),
                stats.top_negative_values,
            )
        )
    if stats.out_of_range:
        findings.append(
            Finding(
                split,
                feature,
                Reason.INDEX_OUT_OF_RANGE,
                Severity.ERROR,
                stats.out_of_range,
                _rate(stats.out_of_range, total),
                f"{stats.out_of_range} of {total} values of {feature!r} in split {split!r} "
                f"are >= {bounds.upper_bound} ({bounds.bound_source}), so no embedding of "
                "that size can look them up. Either the values are wrong (examples not made "
                "by this transform graph, or an identity feature off by one: months 1..12 "
                "need month - 1) or the bound is (re-run Transform, fix the feature's "
                "int_domain, or size the Embedding and embedding_input_dims to fit)."
                + _describe_samples(stats.top_out_of_range_values),
                stats.top_out_of_range_values,
            )
        )
    # With input_dim >= upper_bound every such value is already out of range; one
    # finding per cause reads better than two for the same values.
    if stats.over_embedding_dim and bounds.embedding_input_dim < bounds.upper_bound:
        findings.append(
            Finding(
                split,
                feature,
                Reason.INDEX_OVER_EMBEDDING_DIM,
                Severity.ERROR,
                stats.over_embedding_dim,
                _rate(stats.over_embedding_dim, total),
                f"{stats.over_embedding_dim} of {total} values of {feature!r} in split "
                f"{split!r} are >= the embedding input_dim {bounds.embedding_input_dim} "
                f"({bounds.embedding_dim_source}). Size the Embedding as "
                f"{bounds.upper_bound} (vocabulary plus OOV buckets), e.g. with "
                "embedding_guard.embedding_input_dim()."
                + _describe_samples(stats.top_over_embedding_dim_values),
                stats.top_over_embedding_dim_values,
            )
        )
    if stats.non_integer:
        findings.append(
            Finding(
                split,
                feature,
                Reason.NON_INTEGER_VALUES,
                Severity.ERROR,
                stats.non_integer,
                _rate(stats.non_integer, total),
                f"{stats.non_integer} of {total} values of {feature!r} in split {split!r} "
                "are stored as float or bytes, not int64; an embedding needs integer "
                "indices. Cast or look them up in preprocessing_fn."
                + _describe_samples(stats.top_non_integer_values),
                stats.top_non_integer_values,
            )
        )
    if stats.oov_bucket:
        findings.append(
            Finding(
                split,
                feature,
                Reason.OOV_BUCKET_HITS,
                Severity.INFO,
                stats.oov_bucket,
                _rate(stats.oov_bucket, total),
                f"{stats.oov_bucket} of {total} values of {feature!r} in split {split!r} "
                f"({_rate(stats.oov_bucket, total):.2%}) fall in the "
                f"{bounds.num_oov_buckets} OOV bucket(s) after the "
                f"{bounds.vocab_size}-entry vocabulary {bounds.vocabulary!r}."
                + _describe_samples(stats.top_raw_oov_values),
                stats.top_raw_oov_values,
            )
        )
    return tuple(findings)


def split_report(split: str, accumulator: SplitAccumulator) -> SplitReport:
    """Builds the frozen report of one split from its combined counts."""
    features = []
    findings = []
    if accumulator.num_examples == 0:
        findings.append(
            Finding(
                split,
                "",
                Reason.EMPTY_SPLIT,
                Severity.WARNING,
                0,
                0.0,
                f"Split {split!r} has no examples, so none of its indices were checked. "
                "Check the upstream ExampleGen or Transform output.",
            )
        )
    for name in sorted(accumulator.features):
        feature_accumulator = accumulator.features[name]
        stats = feature_accumulator.result()
        feature_level = feature_findings(split, feature_accumulator.bounds, stats)
        features.append(FeatureReport(feature_accumulator.bounds, stats, feature_level))
        findings.extend(feature_level)
    return SplitReport(split, accumulator.num_examples, tuple(features), tuple(findings))


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
    max_oov_rate_severity: Severity = Severity.WARNING
    max_oov_rate_increase: float | Mapping[str, float] | None = 0.05
    max_oov_rate_increase_severity: Severity = Severity.WARNING
    baseline_split: str = "train"

    @staticmethod
    def _threshold(setting, feature: str) -> float | None:
        if setting is None or isinstance(setting, (int, float)):
            return setting
        return setting.get(feature)


def _oov_findings(
    split: str, report: FeatureReport, drift: OovDrift | None, policy: OovPolicy
) -> list[Finding]:
    stats, feature = report.stats, report.bounds.feature
    findings = []
    if report.bounds.vocab_size is None or not stats.num_values:
        return findings
    raw = _describe_samples(stats.top_raw_oov_values)
    max_rate = policy._threshold(policy.max_oov_rate, feature)
    if max_rate is not None and stats.oov_rate > max_rate:
        findings.append(
            Finding(
                split,
                feature,
                Reason.OOV_RATE_ABOVE_MAX,
                policy.max_oov_rate_severity,
                stats.oov,
                stats.oov_rate,
                f"OOV rate of {feature!r} in split {split!r} is {stats.oov_rate:.2%} "
                f"({stats.oov} of {stats.num_values} values), above max_oov_rate "
                f"{max_rate:.2%}. Re-run Transform on newer data to refresh vocabulary "
                f"{report.bounds.vocabulary!r}, or raise the threshold." + raw,
                stats.top_raw_oov_values,
            )
        )
    max_increase = policy._threshold(policy.max_oov_rate_increase, feature)
    if drift is not None and max_increase is not None and drift.difference > max_increase:
        ratio = "" if drift.ratio is None else f", {drift.ratio:.1f}x"
        findings.append(
            Finding(
                split,
                feature,
                Reason.OOV_RATE_INCREASE,
                policy.max_oov_rate_increase_severity,
                stats.oov,
                stats.oov_rate,
                f"OOV rate of {feature!r} in split {split!r} is {drift.oov_rate:.2%} against "
                f"{drift.baseline_oov_rate:.2%} in {drift.baseline_split!r} "
                f"(+{drift.difference:.2%}{ratio}), above max_oov_rate_increase "
                f"{max_increase:.2%}: the data has drifted from the vocabulary." + raw,
                stats.top_raw_oov_values,
            )
        )
    return findings


def build_reports(
    accumulators: Mapping[str, SplitAccumulator], policy: OovPolicy | None = None
) -> dict[str, SplitReport]:
    """Builds every split's report, with OOV thresholds and drift against the baseline.

    Args:
      accumulators: Split name -> the split's combined counts.
      policy: OOV thresholds; the default only warns.

    Returns:
      Split name -> report.
    """
    policy = policy or OovPolicy()
    reports = {name: split_report(name, acc) for name, acc in accumulators.items()}
    baseline = reports.get(policy.baseline_split)
    baseline_rates = (
        {f.bounds.feature: f.stats.oov_rate for f in baseline.features}
        if baseline is not None
        else {}
    )
    for name, report in reports.items():
        features, findings = [], list(report.findings)
        for feature_report in report.features:
            feature = feature_report.bounds.feature
            drift = None
            has_baseline = name != policy.baseline_split and feature in baseline_rates
            if has_baseline and feature_report.bounds.vocab_size is not None:
                drift = OovDrift(
                    policy.baseline_split, baseline_rates[feature], feature_report.stats.oov_rate
                )
            extra = _oov_findings(name, feature_report, drift, policy)
            findings.extend(extra)
            features.append(
                dataclasses.replace(
                    feature_report,
                    findings=feature_report.findings + tuple(extra),
                    oov_drift=drift,
                )
            )
        reports[name] = dataclasses.replace(
            report, features=tuple(features), findings=tuple(findings)
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
