"""Where a feature's offending values first occur, and which whole examples hold them.

The counting core (`core.FeatureAccumulator`) hands `Located.add` every batch
that comes with a `BatchPlace`. Only the offending
values are looked at: a batch without any costs two comparisons over its values.
`FirstSeen` keeps the first location of every sample value the core keeps;
`ExampleSample` keeps up to a limit of whole offending records, byte-identical.
Both merge like the core's counts, so shards can be counted apart (Beam) and
combined: the earliest location, and the earliest records, win. Pure numpy.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np

from embedding_guard.verdict import samples
from embedding_guard.verdict.locations import (
    NEGATIVE,
    NON_INTEGER,
    RAW_OOV,
    TOO_LARGE,
    BatchPlace,
    Location,
    SampleLocation,
)

# The most bytes of offending examples kept per split and feature: with the
# default limit of 10, room for ten 1.6 MiB records. A record that would pass
# it is left out; the examples written for a run are therefore at most
# 16 MiB x checked features x splits.
MAX_EXAMPLE_BYTES = 16 * 1024 * 1024

# (shard, record index, value index, locator text, locator feature): a Location's fields.
_Spot = tuple[str, int, int, "str | None", "str | None"]


class _Rows:
    """Maps flat value positions of a batch to (record in batch, position in its list)."""

    def __init__(self, row_lengths: np.ndarray):
        self._lengths = np.asarray(row_lengths, dtype=np.int64)
        self._ends = np.cumsum(self._lengths)

    def of(self, flat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        rows = np.searchsorted(self._ends, flat, side="right")
        return rows, flat - (self._ends[rows] - self._lengths[rows])


class FirstSeen:
    """The first location of each kept sample value, per kind of sample."""

    __slots__ = ("spots",)

    def __init__(self) -> None:
        self.spots: dict[str, dict[Any, _Spot]] = {}

    def add(
        self,
        kind: str,
        values: list,
        flat: np.ndarray,
        rows: _Rows,
        place: BatchPlace,
        key_of: Callable[[list], list] | None = None,
    ) -> None:
        """Notes where each distinct value first occurs, unless an earlier batch has it.

        Args:
          kind: The kind of sample.
          values: The offending values, in batch order.
          flat: Each one's position among the batch's flat values.
          rows: The batch's rows.
          place: Where the batch lies.
          key_of: The core's sample keys of distinct values (their text), if
            they are not the values themselves.
        """
        spots = self.spots.setdefault(kind, {})
        # Reversed, so that the first occurrence of a value is the one left standing.
        firsts = dict(zip(reversed(values), reversed(range(len(values))), strict=True))
        keys = list(firsts) if key_of is None else key_of(list(firsts))
        earliest: dict[Any, int] = {}
        # Two long values can share a (cut) key: the key's first occurrence is their first.
        for key, at in zip(keys, firsts.values(), strict=True):
            if key not in spots and (key not in earliest or at < earliest[key]):
                earliest[key] = at
        if not earliest:
            return
        new = list(earliest.items())
        record, position = rows.of(flat[[at for _, at in new]])
        # One call for the batch's new values: the locator feature is parsed at once.
        texts = [None] * len(new) if place.locate is None else place.locate(record.tolist())
        for (key, _), row, value_index, text in zip(
            new, record.tolist(), position.tolist(), texts, strict=True
        ):
            spots[key] = (
                place.shard,
                place.first_record + row,
                value_index,
                text,
                place.locator_feature if place.locate is not None else None,
            )

    def prune(self, kind: str, kept: Mapping[Any, int]) -> None:
        """Forgets the locations of values the core no longer keeps (its samples are bounded)."""
        spots = self.spots.get(kind)
        if spots is not None and len(spots) > len(kept):
            self.spots[kind] = {key: spot for key, spot in spots.items() if key in kept}

    def merge(self, other: FirstSeen) -> None:
        """Keeps, per value, the earlier of the two locations."""
        for kind, theirs in other.spots.items():
            mine = self.spots.setdefault(kind, {})
            for key, spot in theirs.items():
                if key not in mine or spot[:3] < mine[key][:3]:
                    mine[key] = spot

    def sample_locations(
        self, samples: Mapping[str, Iterable[tuple[Any, int]]]
    ) -> tuple[SampleLocation, ...]:
        """The locations of the sample values shown in a report: kind -> (value, count)."""
        result = []
        for kind, values in samples.items():
            spots = self.spots.get(kind, {})
            for value, _ in values:
                spot = spots.get(value)
                if spot is not None:
                    result.append(SampleLocation(kind, value, Location(*spot)))
        return tuple(result)


class ExampleSample:
    """Up to `limit` whole offending records, the earliest first, at most MAX_EXAMPLE_BYTES.

    Attributes:
      limit: The most records kept; 0 keeps none.
      records: (shard, record index, serialized record), in order of occurrence.
    """

    __slots__ = ("limit", "records")

    def __init__(self, limit: int = 0):
        self.limit = limit
        self.records: list[tuple[str, int, bytes]] = []

    @property
    def wanted(self) -> bool:
        return len(self.records) < self.limit

    def add(self, rows: np.ndarray, place: BatchPlace) -> None:
        """Keeps the records at batch rows (sorted, distinct) while there is room."""
        if place.records is None:
            return
        candidates = [
            (place.shard, place.first_record + row, bytes(place.records[row]))
            for row in rows[: self.limit - len(self.records)].tolist()
        ]
        self._keep(self.records + candidates)

    def merge(self, other: ExampleSample) -> None:
        self.limit = max(self.limit, other.limit)
        self._keep(self.records + other.records)

    def _keep(self, records: list[tuple[str, int, bytes]]) -> None:
        kept: list[tuple[str, int, bytes]] = []
        total = 0
        seen = set()
        for shard, index, record in sorted(records, key=lambda r: (r[0], r[1])):
            if len(kept) == self.limit:
                break
            if (shard, index) in seen or total + len(record) > MAX_EXAMPLE_BYTES:
                continue
            seen.add((shard, index))
            kept.append((shard, index, record))
            total += len(record)
        self.records = kept


def _offending_rows(rows: _Rows, flats: list[np.ndarray]) -> np.ndarray:
    flat = np.concatenate(flats) if len(flats) > 1 else flats[0]
    return np.unique(rows.of(flat)[0])


class Located:
    """A feature's first locations and offending records; the core holds one per feature.

    Args:
      examples_limit: How many whole offending records to keep.
    """

    __slots__ = ("first_seen", "examples")

    def __init__(self, examples_limit: int = 0):
        self.first_seen = FirstSeen()
        self.examples = ExampleSample(examples_limit)

    def merge(self, other: Located) -> None:
        self.first_seen.merge(other.first_seen)
        self.examples.merge(other.examples)

    def stats(self, stats: Any) -> Any:
        """The core's FeatureStats with the locations of its top sample values."""
        too_large = stats.top_out_of_range_values + stats.top_over_embedding_dim_values
        located = self.first_seen.sample_locations(
            {
                NEGATIVE: stats.top_negative_values,
                TOO_LARGE: dict(too_large).items(),
                NON_INTEGER: stats.top_non_integer_values,
                RAW_OOV: stats.top_raw_oov_values,
            }
        )
        return dataclasses.replace(stats, sample_locations=located)

    def add(
        self,
        accumulator: Any,
        values: np.ndarray,
        row_lengths: np.ndarray,
        raw_values: np.ndarray | None,
        raw_row_lengths: np.ndarray | None,
        place: BatchPlace,
    ) -> None:
        """Notes first locations and offending records of one batch of a feature.

        Args:
          accumulator: The feature's `core.FeatureAccumulator`, after it counted
            the batch (its sample dicts say which values it keeps).
          values: The batch's flat values, as the core received them.
          row_lengths: Values per record.
          raw_values: In raw mode, the raw values behind them.
          raw_row_lengths: Values per record of raw_values.
          place: Where the batch lies.
        """
        values = np.asarray(values)
        if values.size == 0:
            return
        rows = _Rows(row_lengths)
        offending = self._locate_values(accumulator, values, rows, place)
        if offending and self.examples.wanted:
            self.examples.add(_offending_rows(rows, offending), place)
        if raw_values is not None:
            self._locate_raw_oov(
                accumulator, values, row_lengths, raw_values, raw_row_lengths, rows, place
            )

    def _locate_values(
        self, accumulator: Any, values: np.ndarray, rows: _Rows, place: BatchPlace
    ) -> list[np.ndarray]:
        """Locates negative, too large and non-integer values; returns their flat positions."""
        bounds = accumulator.bounds
        first_seen = self.first_seen
        offending: list[np.ndarray] = []
        integers: np.ndarray | None
        if values.dtype == object:
            is_integer = np.array([isinstance(v, int) for v in values.tolist()], dtype=bool)
            other, integers = np.flatnonzero(~is_integer), np.flatnonzero(is_integer)
        elif np.issubdtype(values.dtype, np.integer):
            other, integers = np.empty(0, dtype=np.int64), None
        else:
            other, integers = np.arange(values.size), np.empty(0, dtype=np.int64)
        if other.size:
            first_seen.add(
                NON_INTEGER, values[other].tolist(), other, rows, place, samples.non_integer_text
            )
            first_seen.prune(NON_INTEGER, accumulator.non_integer_values)
            offending.append(other)
        if integers is not None and not integers.size:
            return offending
        ints = values if integers is None else values[integers].astype(np.int64)
        lowest_bad = min(bounds.upper_bound, bounds.embedding_input_dim)
        for kind, mask, kept in (
            (NEGATIVE, ints < 0, accumulator.negative_values),
            (TOO_LARGE, ints >= lowest_bad, accumulator.large_values),
        ):
            at = np.flatnonzero(mask)
            if not at.size:
                continue
            flat = at if integers is None else integers[at]
            first_seen.add(kind, ints[at].tolist(), flat, rows, place)
            first_seen.prune(kind, kept)
            offending.append(flat)
        return offending

    def _locate_raw_oov(
        self,
        accumulator: Any,
        values: np.ndarray,
        row_lengths: np.ndarray,
        raw_values: np.ndarray,
        raw_row_lengths: np.ndarray | None,
        rows: _Rows,
        place: BatchPlace,
    ) -> None:
        """Locates the raw values that fell into OOV (raw mode), as the core counts them."""
        bounds = accumulator.bounds
        raw_values = np.asarray(raw_values)
        # The core's own test of whether raw values line up with the indices.
        if (
            bounds.vocab_size is None
            or raw_values.shape != values.shape
            or not np.array_equal(np.asarray(raw_row_lengths), np.asarray(row_lengths))
            or not np.issubdtype(values.dtype, np.integer)
        ):
            return
        is_oov = (values >= bounds.vocab_size) & (values < bounds.upper_bound)
        if bounds.oov_default_value is not None:
            is_oov |= values == bounds.oov_default_value
        flat = np.flatnonzero(is_oov)
        if flat.size:
            self.first_seen.add(
                RAW_OOV, raw_values[flat].tolist(), flat, rows, place, samples.raw_keys
            )
            self.first_seen.prune(RAW_OOV, accumulator.raw_oov_values)
