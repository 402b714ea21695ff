"""Parses the checked int64 features of a batch of tf.Examples in C, as TensorFlow does.

`_tfrecord_framing.parse_int64_features` walks the records without the GIL
and gives, per feature, the values and the values per example that
TensorFlow's ParseExampleV2 gives (`reader.parse_batch`). It takes only the
records it reads exactly as TensorFlow does. A batch with a checked feature
holding floats or bytes is read here too (`columns_without_tensorflow`), the
int64 features in C and the others in Python by the same walk, up to
PYTHON_PARSE_MAX_RECORDS records a read. For any other batch (past that
allowance, or a record the C parser does not read) it gives None, and the
reader parses that batch with TensorFlow, which stays the reference and the
fallback, and the only parser of an install without a C compiler. Nothing here
imports TensorFlow.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from google.protobuf import message

from embedding_guard.errors import InputError
from embedding_guard.read import example_protos

try:
    from embedding_guard.read import _tfrecord_framing
except ImportError:  # Installed without a C compiler: TensorFlow parses instead.
    _tfrecord_framing = None  # type: ignore[assignment]

# The reasons parse_int64_features gives for handing a batch back.
NOT_INT64 = 1
NOT_READ = 2


def compiled() -> bool:
    """Whether the compiled parser is installed (and not switched off by a test)."""
    return _tfrecord_framing is not None


def parse_problem(
    buffer: bytes, starts: np.ndarray, lengths: np.ndarray, features: Sequence[str]
) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]] | None, tuple[int, int, int] | None]:
    """Parses the records' int64 features in C; the columns or why not.

    Args:
      buffer: The bytes the records lie in.
      starts: Where each record starts in buffer.
      lengths: Each record's length.
      features: The checked feature names, each once.

    Returns:
      (columns, None): feature -> (flat int64 values, values per example), the
      arrays TensorFlow's parse gives; or (None, (reason, record, feature
      index)): the first record the C parser hands back, because the feature
      at that index holds floats or bytes (NOT_INT64), or because the record
      is not one it reads as TensorFlow does (NOT_READ, feature index -1).

    Raises:
      RuntimeError: The compiled parser is not installed.
    """
    if _tfrecord_framing is None:
        raise RuntimeError("the compiled example parser is not installed")
    columns, problem = _tfrecord_framing.parse_int64_features(
        buffer,
        np.ascontiguousarray(starts, dtype=np.int64),
        np.ascontiguousarray(lengths, dtype=np.int64),
        tuple(name.encode() for name in features),
    )
    if columns is None:
        return None, problem
    return {
        name: (np.frombuffer(values, dtype=np.int64), np.frombuffer(row_lengths, dtype=np.int64))
        for name, (values, row_lengths) in zip(features, columns, strict=True)
    }, None


# Records a read (reader.read_shards) may parse in Python when the compiled
# parser hands their batch back for floats or bytes: 40 us a record of a dozen
# features, some 0.8 s in all, below TensorFlow's 3-5 s import. Past that, or
# for a larger batch, TensorFlow parses, faster than Python once imported.
PYTHON_PARSE_MAX_RECORDS = 20_000
_FIELD1_DELIMITED, _FIELD2_DELIMITED, _FIELD3_DELIMITED = 0x0A, 0x12, 0x1A
# A Feature's kind: bytes_list, float_list, int64_list.
_KIND_TAGS = (_FIELD1_DELIMITED, _FIELD2_DELIMITED, _FIELD3_DELIMITED)
_FLOAT32 = np.dtype("<f4")


class _HandBack(Exception):
    """A record this walk does not read exactly as TensorFlow does: TensorFlow parses it."""


def _varint(record: bytes, pos: int, end: int) -> tuple[int, int]:
    """The varint at pos and the position after it, by read_varint's rules in the C parser."""
    value = 0
    for index in range(10):
        if pos >= end:
            raise _HandBack
        byte = record[pos]
        pos += 1
        if index == 9 and byte > 1:
            raise _HandBack
        value |= (byte & 0x7F) << (7 * index)
        if byte < 0x80:
            return value, pos
    raise _HandBack


def _field_end(record: bytes, pos: int, end: int) -> tuple[int, int]:
    """(where a length-delimited field's bytes start, where they end), which must be by end."""
    length, pos = _varint(record, pos, end)
    if length > end - pos:
        raise _HandBack
    return pos, pos + length


def _last_features(record: bytes, wanted: frozenset[bytes]) -> dict[bytes, tuple[int, int]]:
    """name -> (start, end) of the last Feature named so, as the C parser's walk_example finds it."""
    last: dict[bytes, tuple[int, int]] = {}
    pos, end = 0, len(record)
    while pos < end:
        if record[pos] != _FIELD1_DELIMITED:
            tag_start = pos
            tag, pos = _varint(record, pos, end)
            if (pos - tag_start > 1 and tag < 0x80) or tag >> 3 == 0:
                raise _HandBack
            wire_type = tag & 7
            if wire_type == 0:
                _, pos = _varint(record, pos, end)
            elif wire_type in (1, 5):
                pos += 8 if wire_type == 1 else 4
                if pos > end:
                    raise _HandBack
            elif wire_type == 2:
                pos = _field_end(record, pos, end)[1]
            else:
                raise _HandBack
            continue
        pos, features_end = _field_end(record, pos + 1, end)
        while pos < features_end:
            if record[pos] != _FIELD1_DELIMITED:
                raise _HandBack
            pos, entry_end = _field_end(record, pos + 1, features_end)
            keys, features = [], []
            while pos < entry_end:
                tag = record[pos]
                start, pos = _field_end(record, pos + 1, entry_end)
                if tag == _FIELD1_DELIMITED:
                    keys.append(record[start:pos])
                elif tag == _FIELD2_DELIMITED:
                    features.append((start, pos))
                else:
                    raise _HandBack
            if len(keys) != 1 or len(features) != 1:
                raise _HandBack
            if keys[0] in wanted:
                start, end_ = features[0]
                # TensorFlow reads the kind of every Feature under a checked name,
                # the ones a later entry replaces too (the C parser's walk does so).
                if start < end_ and record[start] not in _KIND_TAGS:
                    raise _HandBack
                last[keys[0]] = features[0]
    return last


def _int64_values(record: bytes, pos: int, end: int) -> list[int]:
    """The packed varints between pos and end, as int64s (two's complement)."""
    values = []
    while pos < end:
        value, pos = _varint(record, pos, end)
        values.append(value - (1 << 64) if value >> 63 else value)
    return values


def _feature_values(record: bytes, start: int, end: int) -> tuple[int | None, list[Any]]:
    """(kind tag or None when empty, values) of a Feature in canonical form.

    Only the form protobuf writes is taken: a FloatList and an Int64List as one
    packed field, a BytesList as its values; anything else is handed back.
    """
    if start == end:
        return None, []
    kind = record[start]
    pos, list_end = _field_end(record, start + 1, end)
    if list_end != end:
        raise _HandBack
    if kind in (_FIELD2_DELIMITED, _FIELD3_DELIMITED):
        if pos == end:
            return kind, []
        if record[pos] != _FIELD1_DELIMITED:
            raise _HandBack
        pos, packed_end = _field_end(record, pos + 1, end)
        if packed_end != end:
            raise _HandBack
        if kind == _FIELD3_DELIMITED:
            return kind, _int64_values(record, pos, end)
        if (end - pos) % 4:
            raise _HandBack
        return kind, np.frombuffer(record, _FLOAT32, (end - pos) // 4, pos).tolist()
    if kind == _FIELD1_DELIMITED:
        values = []
        while pos < end:
            if record[pos] != _FIELD1_DELIMITED:
                raise _HandBack
            value_start, pos = _field_end(record, pos + 1, end)
            values.append(record[value_start:pos])
        return kind, values
    raise _HandBack


def _python_column(records: list[bytes], name: str) -> tuple[np.ndarray, np.ndarray]:
    """A float or bytes feature's column as TensorFlow's parse gives it, or _HandBack."""
    wanted = name.encode()
    kinds: set[int] = set()
    empty_list = False
    values: list[Any] = []
    lengths = np.zeros(len(records), dtype=np.int64)
    for row, record in enumerate(records):
        place = _last_features(record, frozenset((wanted,))).get(wanted)
        if place is None:
            continue
        kind, row_values = _feature_values(record, *place)
        if kind is not None:
            kinds.add(kind)
            empty_list = empty_list or not row_values
        values.extend(row_values)
        lengths[row] = len(row_values)
    # One kind with values decides the parse's dtype as TensorFlow's does
    # (reader.parse_batch), and only empty lists are left to TensorFlow.
    if not values:
        raise _HandBack
    if kinds == {_FIELD2_DELIMITED}:
        return np.array(values, dtype=np.float32), lengths
    if kinds == {_FIELD1_DELIMITED}:
        return np.array(values, dtype=object), lengths
    # Kinds mixed (a few floats among integers): every typed parse fails, and
    # each record's values are taken in its own kind, as the reader then does.
    # An empty list of some kind is left to TensorFlow.
    if empty_list:
        raise _HandBack
    try:
        return column_per_example(records, name)
    except InputError:
        raise _HandBack from None


def column_per_example(serialized: Sequence[bytes], feature: str) -> tuple[np.ndarray, np.ndarray]:
    """A feature's values record by record, each in its own kind: a batch that mixes kinds.

    TensorFlow's typed parses all fail on such a batch; each record is read
    with tf.Example's protos (`example_protos`) instead.

    Raises:
      InputError: A record is not a serialized tf.Example.
    """
    values, lengths = [], []
    for index, record in enumerate(serialized):
        try:
            example = example_protos.parse("Example", record)
        except message.DecodeError as error:
            raise InputError(
                f"record {index} of a batch is not a serialized tf.Example ({error}); the "
                "shard holds other data. Pass Examples artifacts of tf.Example only."
            ) from error
        kind = example.features.feature.get(feature)
        row = (
            []
            if kind is None
            else list(getattr(kind, kind.WhichOneof("kind") or "int64_list").value)
        )
        values.extend(row)
        lengths.append(len(row))
    if all(isinstance(v, int) for v in values):
        return np.asarray(values, dtype=np.int64), np.asarray(lengths, dtype=np.int64)
    return np.asarray(values, dtype=object), np.asarray(lengths, dtype=np.int64)


def _within_default_allowance(records: int) -> bool:
    return records <= PYTHON_PARSE_MAX_RECORDS


def columns_without_tensorflow(
    buffer: bytes,
    starts: np.ndarray,
    lengths: np.ndarray,
    features: Sequence[str],
    python_allowed: Callable[[int], bool] = _within_default_allowance,
) -> dict[str, tuple[np.ndarray, np.ndarray]] | None:
    """The records' checked features as reader.parse_batch gives them, or None: use TensorFlow.

    The int64 features are read in C. A feature the C parser finds floats or
    bytes in is read in Python by the C parser's walk, when python_allowed
    grants the batch's records and the feature's lists are all of one kind in
    the form protobuf writes. Any other batch gives None.

    Args:
      buffer: The bytes the records lie in.
      starts: Where each record starts in buffer.
      lengths: Each record's length.
      features: The checked feature names, each once.
      python_allowed: Called with the batch's record count, at most once and
        only when Python would parse: whether it may (a read's allowance).
    """
    if _tfrecord_framing is None:
        return None
    int64_features = list(features)
    other: list[str] = []
    while True:
        columns, problem = parse_problem(buffer, starts, lengths, int64_features)
        if columns is not None:
            break
        if problem is None or problem[0] != NOT_INT64:
            return None
        if not other and not python_allowed(len(starts)):
            return None
        other.append(int64_features.pop(problem[2]))
    if other:
        records = [
            buffer[start : start + length]
            for start, length in zip(starts.tolist(), lengths.tolist(), strict=True)
        ]
        try:
            for name in other:
                columns[name] = _python_column(records, name)
        except _HandBack:
            return None
    return {name: columns[name] for name in features}
