"""Hash and bucket load: how many distinct raw values share each hash bucket.

A hashed feature (`tft.hash_strings`, `tf.strings.to_hash_bucket*`) or a
vocabulary's OOV buckets (`num_oov_buckets`) gives one embedding row to every
raw value that lands in a bucket; values sharing a bucket are indistinguishable
to the model. In raw mode the raw value behind each index is known, so the load
is counted exactly: distinct raw values per bucket, and the share of distinct
values whose bucket holds another distinct value. `expected_collision_share`
says what uniform hashing gives for that many values in that many buckets, and
`buckets_for_share` how many buckets bring it under a threshold. Numpy only.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from embedding_guard.verdict.core import FeatureBounds, SplitAccumulator

HASH = "hash"
OOV_BUCKETS = "oov_buckets"

# Distinct raw values tracked per feature and split. A tracked value costs about
# 100 bytes in the dict (key, bucket, count); past this the figures are those of
# the first values seen, and the load says so.
MAX_TRACKED_VALUES = 1_000_000


def expected_collision_share(num_values: int, num_buckets: int) -> float:
    """The expected share of distinct values that share their bucket with another one.

    With n distinct values hashed uniformly and independently into m buckets, a
    given value is alone in its bucket when each of the other n - 1 values lands
    in one of the other m - 1 buckets, which happens with probability
    (1 - 1/m)^(n - 1). By linearity of expectation the expected number of values
    that are not alone is n * (1 - (1 - 1/m)^(n - 1)), so the expected share is

        E[share] = 1 - (1 - 1/m)^(n - 1)

    (0 for n <= 1; 1 for m == 1 and n >= 2). Computed as -expm1((n - 1) *
    log1p(-1/m)) so that it stays exact for large m and small shares.

    Args:
      num_values: n, the distinct values hashed.
      num_buckets: m, the buckets; at least 1.

    Returns:
      The expected share, in [0, 1].
    """
    if num_buckets < 1:
        raise ValueError(f"num_buckets must be >= 1, got {num_buckets!r}")
    if num_values <= 1:
        return 0.0
    if num_buckets == 1:
        return 1.0
    return -math.expm1((num_values - 1) * math.log1p(-1.0 / num_buckets))


def buckets_for_share(num_values: int, max_share: float) -> int:
    """The fewest buckets whose expected collision share is at most max_share.

    Inverting E[share] = 1 - (1 - 1/m)^(n - 1) <= t gives
    m >= 1 / (1 - (1 - t)^(1 / (n - 1))); the result is that bound rounded up,
    then moved by one where floating point put it on the wrong side.

    Args:
      num_values: n, the distinct values to hash.
      max_share: t, in (0, 1].

    Returns:
      The bucket count.
    """
    if not 0 < max_share <= 1:
        raise ValueError(f"max_share must be in (0, 1], got {max_share!r}")
    if num_values <= 1 or max_share >= 1:
        return 1
    # 1 - (1 - t)^(1/(n-1)), computed without cancellation.
    step = -math.expm1(math.log1p(-max_share) / (num_values - 1))
    buckets = max(1, math.ceil(1.0 / step))
    while buckets > 1 and expected_collision_share(num_values, buckets - 1) <= max_share:
        buckets -= 1
    while expected_collision_share(num_values, buckets) > max_share:
        buckets += 1
    return buckets


@dataclasses.dataclass(frozen=True)
class HashedRange:
    """The index range of a feature where raw values are hashed into buckets.

    Attributes:
      feature: The transformed feature.
      kind: HASH (every index is a hash bucket) or OOV_BUCKETS (the indices
        after a vocabulary, where unknown values are hashed).
      low: The first bucket's index.
      num_buckets: The buckets, indices [low, low + num_buckets).
    """

    feature: str
    kind: str
    low: int
    num_buckets: int


@dataclasses.dataclass(frozen=True)
class HashLoad:
    """How crowded a feature's hash buckets are in one split, from its raw values.

    Attributes:
      kind: HASH or OOV_BUCKETS.
      num_buckets: The buckets.
      distinct_values: Distinct raw values that landed in a bucket.
      buckets_used: Buckets holding at least one of them.
      max_per_bucket: Most distinct values in one bucket.
      mean_per_used_bucket: distinct_values / buckets_used.
      colliding_share: Share of the distinct values whose bucket holds another
        distinct value.
      expected_colliding_share: That share under uniform hashing
        (expected_collision_share).
      colliding_occurrence_share: Share of the values read (each occurrence)
        that sit in a bucket with another distinct value.
      complete: False when more than MAX_TRACKED_VALUES distinct values came,
        so the figures are those of the first ones.
    """

    kind: str
    num_buckets: int
    distinct_values: int
    buckets_used: int
    max_per_bucket: int
    mean_per_used_bucket: float
    colliding_share: float
    expected_colliding_share: float
    colliding_occurrence_share: float
    complete: bool = True

    def to_json(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def read_optional(cls, parent: Any, where: str) -> HashLoad | None:
        """Reads a feature report's `hash_load`; parent is report_model's field reader."""
        document = parent.get("hash_load", default=None)
        if document is None:
            return None
        fields = type(parent)(document, f"{where}, hash_load")
        return cls(
            kind=fields.text("kind"),
            num_buckets=fields.integer("num_buckets"),
            distinct_values=fields.integer("distinct_values"),
            buckets_used=fields.integer("buckets_used"),
            max_per_bucket=fields.integer("max_per_bucket"),
            mean_per_used_bucket=fields.number("mean_per_used_bucket"),
            colliding_share=fields.number("colliding_share"),
            expected_colliding_share=fields.number("expected_colliding_share"),
            colliding_occurrence_share=fields.number("colliding_occurrence_share"),
            complete=fields.flag("complete", default=True),
        )

    def sentence(self) -> str:
        """E.g. "1,000 distinct values in 17 hash buckets: ... (expected 100.0%)"."""
        where = "hash buckets" if self.kind == HASH else "OOV buckets"
        partial = "" if self.complete else f" (the first {self.distinct_values:,} tracked)"
        return (
            f"{self.distinct_values:,} distinct raw values{partial} in {self.num_buckets:,} "
            f"{where} ({self.buckets_used:,} used): up to {self.max_per_bucket:,} per bucket, "
            f"{self.mean_per_used_bucket:.2f} on average; {self.colliding_share:.1%} share "
            f"their bucket with another value (uniform hashing: "
            f"{self.expected_colliding_share:.1%})"
        )


class FeatureHashLoad:
    """Mutable load of one hashed range: raw value -> (bucket, occurrences); merges.

    Args:
      hashed: The range whose indices are buckets.
    """

    def __init__(self, hashed: HashedRange):
        self.hashed = hashed
        self.values: dict[Any, list[int]] = {}
        self.complete = True

    def add(self, indices: np.ndarray, raw_values: np.ndarray) -> None:
        """Adds the raw values behind indices (aligned, flattened the same way)."""
        indices = np.asarray(indices)
        raw_values = np.asarray(raw_values)
        low, high = self.hashed.low, self.hashed.low + self.hashed.num_buckets
        inside = (indices >= low) & (indices < high)
        if not inside.any():
            return
        buckets, raws = indices[inside], raw_values[inside]
        keys, first, counts = np.unique(raws, return_index=True, return_counts=True)
        for key, bucket, count in zip(
            keys.tolist(), buckets[first].tolist(), counts.tolist(), strict=True
        ):
            self._count(key, int(bucket), int(count))

    def _count(self, key: Any, bucket: int, count: int) -> None:
        entry = self.values.get(key)
        if entry is not None:
            entry[1] += count
        elif len(self.values) < MAX_TRACKED_VALUES:
            self.values[key] = [bucket, count]
        else:
            self.complete = False

    def merge(self, other: FeatureHashLoad) -> FeatureHashLoad:
        for key, (bucket, count) in other.values.items():
            self._count(key, bucket, count)
        self.complete = self.complete and other.complete
        return self

    def result(self) -> HashLoad | None:
        """The load; None when no raw value landed in a bucket."""
        if not self.values:
            return None
        entries = np.array(list(self.values.values()), dtype=np.int64).reshape(-1, 2)
        return load_of(
            entries[:, 0] - self.hashed.low,
            entries[:, 1],
            self.hashed.num_buckets,
            self.hashed.kind,
            self.complete,
        )


def load_of(
    buckets: np.ndarray, occurrences: np.ndarray, num_buckets: int, kind: str, complete: bool
) -> HashLoad:
    """The load of distinct values, given each one's bucket (0-based) and occurrences."""
    per_bucket = np.bincount(buckets, minlength=num_buckets)
    crowded = per_bucket[buckets] > 1
    used = int(np.count_nonzero(per_bucket))
    distinct = int(buckets.size)
    total = int(occurrences.sum())
    return HashLoad(
        kind=kind,
        num_buckets=num_buckets,
        distinct_values=distinct,
        buckets_used=used,
        max_per_bucket=int(per_bucket.max()),
        mean_per_used_bucket=distinct / used,
        colliding_share=float(np.count_nonzero(crowded)) / distinct,
        expected_colliding_share=expected_collision_share(distinct, num_buckets),
        colliding_occurrence_share=float(occurrences[crowded].sum()) / total if total else 0.0,
        complete=complete,
    )


class SplitCounts(SplitAccumulator):
    """A split's counts plus the hash load of its hashed ranges (raw mode only).

    Args:
      bounds: The checked features' bounds.
      hashed: The hashed ranges to load; empty outside raw mode.
      examples_limit: Whole offending records to keep per feature.
    """

    def __init__(
        self,
        bounds: Iterable[FeatureBounds],
        hashed: Iterable[HashedRange] = (),
        examples_limit: int = 0,
    ):
        super().__init__(bounds, examples_limit)
        self.hash_loads = {h.feature: FeatureHashLoad(h) for h in hashed}

    def add_raw(
        self,
        feature: str,
        values: np.ndarray,
        row_lengths: np.ndarray,
        raw_values: np.ndarray | None,
        raw_row_lengths: np.ndarray | None,
    ) -> None:
        """Adds a batch's raw values behind a hashed feature's indices.

        Raw and transformed values line up only for an element-wise transform (a
        hash or a lookup of one raw feature); otherwise nothing is added.
        """
        load = self.hash_loads.get(feature)
        if load is None or raw_values is None:
            return
        values = np.asarray(values)
        raw_values = np.asarray(raw_values)
        if (
            raw_values.shape != values.shape
            or not np.array_equal(np.asarray(raw_row_lengths), np.asarray(row_lengths))
            or not np.issubdtype(values.dtype, np.integer)
        ):
            return
        load.add(values, raw_values)

    def merge(self, other: SplitAccumulator) -> SplitCounts:
        super().merge(other)
        for name, load in getattr(other, "hash_loads", {}).items():
            mine = self.hash_loads.setdefault(name, FeatureHashLoad(load.hashed))
            if mine is not load:
                mine.merge(load)
        return self

    def hash_load_results(self) -> Mapping[str, HashLoad]:
        """Feature -> its load, for the hashed features that met a raw value."""
        results = {name: load.result() for name, load in self.hash_loads.items()}
        return {name: result for name, result in results.items() if result is not None}
