"""Pure counting core: counts categorical indices against their bounds.

Nothing here imports TensorFlow or TFX. The executor, the CLI and the benchmark
feed it numpy arrays, one batch at a time, and combine the partial results.
Findings and the OOV policy live in `findings`, the report model in
`report_model`, and what each reason means in `reasons`.
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from embedding_guard.verdict import offenders
from embedding_guard.verdict.locations import BatchPlace, SampleLocation, ShardRead
from embedding_guard.verdict.lookup import Outcome
from embedding_guard.verdict.remap import RemapCounter, VocabularyRemap
from embedding_guard.verdict.samples import SAMPLE_VALUE_MAX_CHARS as SAMPLE_VALUE_MAX_CHARS
from embedding_guard.verdict.samples import non_integer_text, raw_keys
from embedding_guard.verdict.samples import sample_text as sample_text

# How many distinct offending values each accumulator tracks. Beyond this the
# least frequent are dropped, and the report says its sample counts are partial.
OFFENDING_VALUES_CAPACITY = 1000
TOP_OFFENDING_VALUES = 10


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
      vocabulary_file: The name of the vocabulary's file in transform_fn/assets,
        when linked.
      schema_disagreement: A sentence saying how the transform graph and the
        schema's int_domain disagree, or None when they agree.
      embedding_dim_kind: Where embedding_input_dim came from, as a stable word:
        "bound" (the feature's own bound), "embedding_input_dims" or "model".
      model_lookup_kind: The model's lookup of the feature (Embedding, OneHot,
        ResourceGather, ...), when a model was given.
      model_layer: The model's layer (or op) that looks the feature up.
      model_bad_index_behaviour: How the model analysis decided what that lookup
        does with a bad index (the ops it saw, or what a probe measured).
      model_on_negative: What that lookup does on CPU with a negative index, an
        `Outcome` word ("raises", "wraps", "zero_row", ...); "" without a model.
      model_on_too_large: The same for an index at or past its table.
      model_lookup_guarded: Whether an Assert guards the lookup, so that it
        raises on every device.
      remap: The old vocabulary the feature's rows were trained on against the
        current one, when a baseline graph or a model gives it; not in to_json.
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
    embedding_dim_kind: str = "bound"
    model_lookup_kind: str = ""
    model_layer: str = ""
    model_bad_index_behaviour: str = ""
    model_on_negative: str = ""
    model_on_too_large: str = ""
    model_lookup_guarded: bool = False
    remap: VocabularyRemap | None = dataclasses.field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
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
    def model_lookup_silent(self) -> bool:
        """Whether the model's lookup gives a wrong row or zeros for some bad index."""
        return any(
            outcome and Outcome(outcome).silent
            for outcome in (self.model_on_negative, self.model_on_too_large)
        )

    @property
    def oov_default_value(self) -> int | None:
        """The index a vocabulary lookup gives unseen values, when it is not a valid row.

        TFT's `compute_and_apply_vocabulary` gives -1 (its default_value) when it
        has no OOV bucket; the graph may say another value. A default inside the
        vocabulary's rows cannot be told from the token on that row, so it is not
        counted as OOV.
        """
        if self.vocab_size is None or self.num_oov_buckets:
            return None
        default = -1 if self.default_value is None else self.default_value
        return None if 0 <= default < self.vocab_size else default

    @property
    def default_in_range(self) -> bool:
        """Whether oov_default_value lies in [vocab_size, upper_bound), a valid index."""
        default = self.oov_default_value
        return default is not None and self.in_vocab_bound <= default < self.upper_bound

    @property
    def in_vocab_bound(self) -> int:
        """Exclusive end of the vocabulary part of the range."""
        return self.upper_bound if self.vocab_size is None else self.vocab_size

    def to_json(self) -> dict:
        fields = dataclasses.asdict(dataclasses.replace(self, remap=None))
        del fields["remap"]  # The report holds its counts, not the vocabularies.
        # JSON has no tuples; a list makes to_json() equal its own round trip.
        fields["raw_features"] = list(self.raw_features)
        return fields


@dataclasses.dataclass(frozen=True)
class FeatureStats:
    """Exact counts for one feature over one split.

    Value counts are over every element, so a multivalent feature contributes
    each of its values. in_range counts the valid values, [0, upper_bound); with
    a vocabulary they split into in_vocab and oov_bucket. Without vocabulary
    there is nothing to be in or out of, so in_vocab, oov_bucket, at_default,
    oov and oov_rate are None. top_offending_values holds the most frequent values
    that are negative, out of range or over the embedding dim, as (value, count),
    most frequent first; top_non_integer_values holds float or bytes values as
    text, at most SAMPLE_VALUE_MAX_CHARS long; sample_locations where they occur first.
    """

    num_examples: int
    num_values: int
    missing: int
    negative: int
    in_range: int
    in_vocab: int | None
    oov_bucket: int | None
    out_of_range: int
    over_embedding_dim: int
    non_integer: int
    min: int | None
    max: int | None
    top_offending_values: tuple[tuple[int, int], ...]
    top_non_integer_values: tuple[tuple[str, int], ...]
    offending_values_complete: bool
    at_default: int | None = None
    vocab_entries_unseen: int | None = None
    raw_values_checked: bool = False
    raw_empty_or_missing: int = 0
    top_raw_oov_values: tuple[tuple[str, int], ...] = ()
    top_negative_values: tuple[tuple[int, int], ...] = ()
    top_out_of_range_values: tuple[tuple[int, int], ...] = ()
    top_over_embedding_dim_values: tuple[tuple[int, int], ...] = ()
    sample_locations: tuple[SampleLocation, ...] = ()

    @property
    def oov(self) -> int | None:
        """Values that were not in the vocabulary: OOV-bucket hits plus default_value ones."""
        if self.oov_bucket is None:
            return None
        return self.oov_bucket + (self.at_default or 0)

    @property
    def oov_rate(self) -> float | None:
        oov = self.oov
        if oov is None:
            return None
        return oov / self.num_values if self.num_values else 0.0

    def to_json(self) -> dict:
        result = dataclasses.asdict(self)
        result["oov"] = self.oov
        result["oov_rate"] = self.oov_rate
        for name in (
            "top_offending_values",
            "top_non_integer_values",
            "top_raw_oov_values",
            "top_negative_values",
            "top_out_of_range_values",
            "top_over_embedding_dim_values",
        ):
            result[name] = [
                {"value": value, "count": count} for value, count in getattr(self, name)
            ]
        result["sample_locations"] = [s.to_json() for s in self.sample_locations]
        return result


def _add_counts(
    target: dict, values: np.ndarray, keys: Callable[[list], list[str]] | None = None
) -> None:
    if values.dtype == object:
        # np.unique sorts Python objects one comparison at a time: 122 ms for
        # 339,000 raw taxi companies, against 14 ms to hash them. Nor can it order
        # floats and bytes in one array.
        counted = collections.Counter(values.tolist())
        distinct, counts = list(counted), list(counted.values())
    else:
        uniques, array_counts = np.unique(values, return_counts=True)
        distinct, counts = uniques.tolist(), array_counts.tolist()
    for value, count in zip(distinct if keys is None else keys(distinct), counts, strict=True):
        target[value] = target.get(value, 0) + count


def _bounded(counts: dict) -> tuple[dict, bool]:
    if len(counts) <= OFFENDING_VALUES_CAPACITY:
        return counts, True
    kept = sorted(counts.items(), key=_rank)[:OFFENDING_VALUES_CAPACITY]
    return dict(kept), False


def _rank(item: tuple[Any, int]) -> tuple[int, Any]:
    value, count = item
    return (-count, value)


def _top(counts: dict) -> tuple:
    return tuple(sorted(counts.items(), key=_rank)[:TOP_OFFENDING_VALUES])


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
      examples_limit: Whole offending records to keep (`offenders`).
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
        "remap",
        "located",
    )
    # The plain counts, set from _COUNT_FIELDS in __init__.
    num_examples: int
    num_values: int
    missing: int
    negative: int
    in_vocab: int
    oov_bucket: int
    out_of_range: int
    over_embedding_dim: int
    non_integer: int
    at_default: int
    raw_empty_or_missing: int

    def __init__(self, bounds: FeatureBounds, examples_limit: int = 0):
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
        self.located = offenders.Located(examples_limit)
        self.remap = None if bounds.remap is None else RemapCounter(bounds.remap)

    def __getstate__(self) -> dict[str, Any]:
        state = {name: getattr(self, name) for name in self.__slots__}
        # Beam pickles one accumulator per shard; a bit per vocabulary entry keeps a
        # 1M-entry vocabulary at 125 KB instead of 1 MB.
        if self.seen is not None:
            state["seen"] = (self.seen.size, np.packbits(self.seen))
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
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
        place: BatchPlace | None = None,
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
          place: Where the batch lies: locates the offending values (`offenders`).
        """
        if place is not None:
            self.add_batch(values, row_lengths, raw_values, raw_row_lengths)
            self.located.add(self, values, row_lengths, raw_values, raw_row_lengths, place)
            return
        if raw_values is not None:
            self._add_raw(values, row_lengths, raw_values, raw_row_lengths)
        if self.remap is not None:
            self.remap.add(values, row_lengths, raw_values, raw_row_lengths)
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
        default = bounds.oov_default_value
        at_default = 0 if default is None else int(np.count_nonzero(values == default))
        self.at_default += at_default
        # A default inside the range (default_value=9 after a 5-entry vocabulary)
        # is no OOV bucket: its values count once, as at_default.
        in_range_default = at_default if bounds.default_in_range else 0
        self.oov_bucket += below_upper - below_vocab_end - in_range_default
        out_of_range = int(values.size) - below_upper
        self.out_of_range += out_of_range
        self.over_embedding_dim += over_dim
        batch_min, batch_max = int(values.min()), int(values.max())
        self.min = batch_min if self.min is None else min(self.min, batch_min)
        self.max = batch_max if self.max is None else max(self.max, batch_max)
        if bounds.vocab_size is not None:
            in_vocab_values = values[(values >= 0) & (values < bounds.vocab_size)]
            if self.seen is not None:
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
        _add_counts(self.non_integer_values, values, non_integer_text)
        self.non_integer_values, complete = _bounded(self.non_integer_values)
        self.complete &= complete

    def _add_raw(
        self,
        values: np.ndarray,
        row_lengths: np.ndarray,
        raw_values: np.ndarray,
        raw_row_lengths: np.ndarray | None,
    ) -> None:
        self.raw_values_checked = True
        raw_values = np.asarray(raw_values)
        raw_row_lengths = np.asarray(raw_row_lengths)
        self.raw_empty_or_missing += int(np.count_nonzero(raw_row_lengths == 0))
        if raw_values.dtype == object:
            self.raw_empty_or_missing += int(
                np.count_nonzero((raw_values == b"") | (raw_values == ""))
            )
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
        if bounds.oov_default_value is not None:
            is_oov |= values == bounds.oov_default_value
        if is_oov.any():
            _add_counts(self.raw_oov_values, raw_values[is_oov], raw_keys)
            self.raw_oov_values, complete = _bounded(self.raw_oov_values)
            self.complete &= complete

    def merge(self, other: FeatureAccumulator) -> FeatureAccumulator:
        """Adds other's counts into self and returns self."""
        for name in _COUNT_FIELDS:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.raw_values_checked = self.raw_values_checked or other.raw_values_checked
        self.located.merge(other.located)
        if self.remap is not None and other.remap is not None:
            self.remap.merge(other.remap)
        if self.seen is not None:
            self.seen |= other.seen
        if other.min is not None and other.max is not None:
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
        has_vocabulary = self.bounds.vocab_size is not None
        stats = FeatureStats(
            num_examples=self.num_examples,
            num_values=self.num_values,
            missing=self.missing,
            negative=self.negative,
            in_range=self.in_vocab
            + self.oov_bucket
            + (self.at_default if self.bounds.default_in_range else 0),
            in_vocab=self.in_vocab if has_vocabulary else None,
            oov_bucket=self.oov_bucket if has_vocabulary else None,
            out_of_range=self.out_of_range,
            over_embedding_dim=self.over_embedding_dim,
            non_integer=self.non_integer,
            min=self.min,
            max=self.max,
            top_offending_values=_top({**self.negative_values, **self.large_values}),
            top_non_integer_values=_top(self.non_integer_values),
            offending_values_complete=self.complete,
            at_default=self.at_default if has_vocabulary else None,
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
        return self.located.stats(stats)


class SplitAccumulator:
    """Partial counts of every checked feature of one split.

    Args:
      bounds: The checked features' bounds.
      examples_limit: Whole offending records to keep per feature.
    """

    def __init__(self, bounds: Iterable[FeatureBounds], examples_limit: int = 0):
        self.features = {b.feature: FeatureAccumulator(b, examples_limit) for b in bounds}
        self.num_examples = 0
        self.shards: dict[str, ShardRead] = {}  # Shard name -> what was read of it.

    def add_examples(self, num_examples: int) -> None:
        self.num_examples += num_examples

    def merge(self, other: SplitAccumulator) -> SplitAccumulator:
        self.num_examples += other.num_examples
        self.shards.update(other.shards)
        for name, accumulator in other.features.items():
            self.features[name].merge(accumulator)
        return self
