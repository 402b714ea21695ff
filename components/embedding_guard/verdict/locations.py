"""Where offending values are, and how much of each shard was read.

A `Location` points at the first occurrence of a sample value: the shard (its
name in the split folder), the record's index in that shard and the value's
index in the record's list, all counted from 0 as `tf.data`'s `skip()` counts.
`ReadCounts` holds the records and bytes read from each shard of a split, the
proof that every record was read. Pure Python; no TensorFlow or TFX.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from embedding_guard.verdict.report_format import ReportFormatError

# The kinds of sample values a feature keeps, each with its own first locations.
NEGATIVE = "negative"
TOO_LARGE = "too_large"
NON_INTEGER = "non_integer"
RAW_OOV = "raw_oov"
KINDS = (NEGATIVE, TOO_LARGE, NON_INTEGER, RAW_OOV)
# Longest text kept of a locator feature's value.
LOCATOR_VALUE_MAX_CHARS = 200


@dataclasses.dataclass(frozen=True)
class Location:
    """The first occurrence of a sample value.

    Attributes:
      shard: The shard's path relative to its split folder.
      record_index: The record's index in the shard, counting from 0
        (`tf.data.TFRecordDataset(shard).skip(record_index)` starts at it).
      value_index: The value's index in the record's list of the feature,
        counting from 0; above 0 only for multivalent features.
      locator_value: The value of the locator feature in that record, as text
        (several values joined by ", "); None when no locator feature was given
        or the record lacks it.
      locator_feature: The locator feature's name, when one was given.
    """

    shard: str
    record_index: int
    value_index: int = 0
    locator_value: str | None = None
    locator_feature: str | None = None

    @property
    def key(self) -> tuple[str, int, int]:
        """The order of occurrence: shards by name, then records, then list positions."""
        return (self.shard, self.record_index, self.value_index)

    def text(self, split: str | None = None) -> str:
        """'Split-eval/x.gz record 1,204' (list position and locator value when known)."""
        where = f"Split-{split}/{self.shard}" if split else self.shard
        words = f"{where} record {self.record_index:,}"
        if self.value_index:
            words += f", list position {self.value_index:,}"
        if self.locator_value is not None:
            words += f", {self.locator_feature or 'locator'}={self.locator_value}"
        return words

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, document: Any, source: str) -> Location:
        fields = _require(document, {"shard": str, "record_index": int}, source)
        value_index = document.get("value_index", 0)
        locator_value = document.get("locator_value")
        locator_feature = document.get("locator_feature")
        if not _typed(value_index, int) or not all(
            text is None or isinstance(text, str) for text in (locator_value, locator_feature)
        ):
            raise _error(
                source,
                "value_index must be an integer, locator_value and locator_feature strings or "
                f"null, got {value_index!r}, {locator_value!r} and {locator_feature!r}",
            )
        return cls(
            fields["shard"], fields["record_index"], value_index, locator_value, locator_feature
        )


@dataclasses.dataclass(frozen=True)
class SampleLocation:
    """Where one kept sample value of a feature first occurs.

    Attributes:
      kind: Which samples the value belongs to: NEGATIVE, TOO_LARGE,
        NON_INTEGER or RAW_OOV.
      value: The sample value, as the findings' sample_values give it.
      location: Its first occurrence.
    """

    kind: str
    value: int | str
    location: Location

    def to_json(self) -> dict[str, Any]:
        # As dataclasses.asdict writes it, which FeatureStats.to_json uses.
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, document: Any, source: str) -> SampleLocation:
        fields = _require(document, {"kind": str}, source)
        value = document.get("value")
        if fields["kind"] not in KINDS or not (_typed(value, int) or isinstance(value, str)):
            raise _error(
                source,
                f"kind must be one of {list(KINDS)!r} and value an integer or a string, got "
                f"{fields['kind']!r} and {value!r}",
            )
        return cls(fields["kind"], value, Location.from_json(document.get("location"), source))


@dataclasses.dataclass(frozen=True)
class ShardRead:
    """What was read of one shard.

    Attributes:
      shard: The shard's path relative to its split folder.
      records: TFRecords framed in it (each one tf.Example).
      file_bytes: Bytes read from the file: its size on disk, compressed for a
        gzip shard.
      record_bytes: Bytes of TFRecord data framed, decompressed: every
        record's serialized example plus its 16 bytes of length and checksums.
    """

    shard: str
    records: int
    file_bytes: int
    record_bytes: int

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, document: Any, source: str) -> ShardRead:
        kinds = {"shard": str, "records": int, "file_bytes": int, "record_bytes": int}
        return cls(**_require(document, kinds, source))


@dataclasses.dataclass(frozen=True)
class ReadCounts:
    """The records and bytes read from every shard of a split, and their sums.

    Attributes:
      shards: One entry per shard, by shard name.
    """

    shards: tuple[ShardRead, ...] = ()

    @property
    def records(self) -> int:
        """Records read from every shard: the split's examples, counted by framing."""
        return sum(s.records for s in self.shards)

    @property
    def file_bytes(self) -> int:
        """Bytes read from every shard's file, as stored (compressed for gzip)."""
        return sum(s.file_bytes for s in self.shards)

    @property
    def record_bytes(self) -> int:
        """Decompressed TFRecord bytes framed in every shard."""
        return sum(s.record_bytes for s in self.shards)

    def to_json(self) -> dict[str, Any]:
        return {
            "records": self.records,
            "file_bytes": self.file_bytes,
            "record_bytes": self.record_bytes,
            "shards": [s.to_json() for s in self.shards],
        }

    @classmethod
    def from_report(cls, report: Mapping[str, Any], source: str) -> ReadCounts | None:
        """The read counts of a split report's JSON document, None when it has none."""
        document = report.get("read_counts")
        if document is None:
            return None
        shards = document.get("shards") if isinstance(document, Mapping) else None
        if not isinstance(shards, list):
            raise _error(f"{source}, read_counts", f"'shards' must be a list, got {shards!r}")
        return cls(tuple(ShardRead.from_json(s, f"{source}, read_counts") for s in shards))

    @classmethod
    def of(cls, shards: Mapping[str, ShardRead]) -> ReadCounts:
        """The counts of shards (name -> what was read), ordered by shard name."""
        return cls(tuple(shards[name] for name in sorted(shards)))


def first_location(
    locations: Sequence[Location | None],
) -> Location | None:
    """The earliest of locations (by shard name, record, list position), or None."""
    present = [location for location in locations if location is not None]
    return min(present, key=lambda location: location.key) if present else None


def locator_text(values: Sequence[Any]) -> str | None:
    """A locator feature's values in one record as text, or None when it has none."""
    if not len(values):
        return None
    parts = [
        value.decode("utf-8", errors="backslashreplace") if isinstance(value, bytes) else str(value)
        for value in values
    ]
    text = ", ".join(parts)
    if len(text) > LOCATOR_VALUE_MAX_CHARS:
        text = text[:LOCATOR_VALUE_MAX_CHARS] + f"... [truncated, {len(text)} chars]"
    return text


def samples_to_json(
    samples: Sequence[tuple[Any, int]], places: Sequence[Location | None]
) -> list[dict[str, Any]]:
    """A finding's sample_values as JSON, each with `first_at` when its location is known."""
    result = []
    for index, (value, count) in enumerate(samples):
        item: dict[str, Any] = {"value": value, "count": count}
        place = places[index] if index < len(places) else None
        if place is not None:
            item["first_at"] = place.to_json()
        result.append(item)
    return result


def sample_places_from_json(finding: Mapping[str, Any], source: str) -> tuple[Location | None, ...]:
    """The `first_at` of each of a finding document's sample_values (None where absent)."""
    samples = finding.get("sample_values")
    if not isinstance(samples, list) or not any(
        isinstance(s, Mapping) and "first_at" in s for s in samples
    ):
        return ()
    return tuple(
        Location.from_json(s["first_at"], f"{source}, sample_values")
        if isinstance(s, Mapping) and s.get("first_at") is not None
        else None
        for s in samples
    )


def sample_locations_from_json(
    counts: Mapping[str, Any], source: str
) -> tuple[SampleLocation, ...]:
    """The sample_locations of a feature's counts document; () in older reports."""
    items = counts.get("sample_locations", [])
    if not isinstance(items, list):
        raise _error(source, f"field 'sample_locations' must be a list, got {items!r}")
    return tuple(SampleLocation.from_json(item, f"{source}, sample_locations") for item in items)


def _error(source: str, detail: str) -> ReportFormatError:
    return ReportFormatError(
        f"{source}: {detail}; the file is damaged or not an embedding-guard report: re-run "
        "the validator to rewrite it."
    )


def _typed(value: Any, kind: type) -> bool:
    return isinstance(value, kind) and not isinstance(value, bool)


def _require(document: Any, kinds: Mapping[str, type], source: str) -> dict[str, Any]:
    if not isinstance(document, Mapping):
        raise _error(source, f"expected a JSON object, got {document!r}")
    fields = {}
    for name, kind in kinds.items():
        value = document.get(name)
        if not _typed(value, kind):
            raise _error(source, f"field {name!r} must be a {kind.__name__}, got {value!r}")
        fields[name] = value
    return fields


@dataclasses.dataclass(frozen=True)
class BatchPlace:
    """Where a batch of examples lies, for the counting core's locators and examples.

    Attributes:
      shard: The shard's path relative to its split folder.
      first_record: The index in the shard of the batch's first record, from 0.
      records: The batch's serialized records, when offending examples are
        kept; None otherwise.
      locate: Batch rows -> the locator feature's value in each of those
        records as text (None where absent); None without a locator feature.
      locator_feature: The locator feature's name.
    """

    shard: str
    first_record: int
    records: Sequence[bytes] | None = None
    locate: Callable[[list[int]], list[str | None]] | None = None
    locator_feature: str | None = None
