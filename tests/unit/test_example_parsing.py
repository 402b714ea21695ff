"""The compiled example parser gives TensorFlow's int64 values, or hands the batch back.

`example_parsing.parse_problem` (C, `parse_int64_features`, without the GIL)
must give exactly what `tf.io.parse_example` with an int64 RaggedFeature gives
wherever it gives values, and hand back (reason 1) every batch where a checked
feature holds floats or bytes, which the reader then parses with TensorFlow,
as before. Records are built here byte by byte, so that they hold what
TensorFlow's own serializer never writes but its parser reads: a feature named
twice (the last entry wins, checked below on TensorFlow itself), unpacked
int64 lists, unknown fields, entries with the value before the key, several
Features messages in one record.
"""

from __future__ import annotations

import struct

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_tfrecord_framing import lets_other_threads_run

from embedding_guard.read import example_parsing, reader

CHECKED = ("a", "b_xf")
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
BOUNDED = settings(
    max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)


def varint(value: int) -> bytes:
    value &= 2**64 - 1
    out = bytearray()
    while True:
        low, value = value & 0x7F, value >> 7
        if not value:
            return bytes(out) + bytes([low])
        out.append(low | 0x80)


def field(number: int, payload: bytes) -> bytes:
    """A length-delimited field."""
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def int64_feature(values: list[int], packed: bool = True) -> bytes:
    if packed:
        return field(3, field(1, b"".join(map(varint, values))))
    return field(3, b"".join(varint(1 << 3) + varint(value) for value in values))


FLOAT_FEATURE = field(2, field(1, b"\x00\x00\x80\x3f"))
BYTES_FEATURE = field(1, field(1, b"x"))


def entry(key: bytes, feature: bytes, value_first: bool = False) -> bytes:
    parts = [field(1, key), field(2, feature)]
    return field(1, b"".join(parts[::-1] if value_first else parts))


def example(*entries: bytes) -> bytes:
    return field(1, b"".join(entries))


def tensorflow_columns(records: list[bytes]) -> dict[str, tuple[list, list]]:
    """What tf.io.parse_example gives for the checked features as int64 (raises if it fails)."""
    parsed = tf.io.parse_example(
        tf.constant(records, dtype=tf.string, shape=[len(records)]),
        {name: tf.io.RaggedFeature(tf.int64, row_splits_dtype=tf.int64) for name in CHECKED},
    )
    return {
        name: (
            parsed[name].flat_values.numpy().tolist(),
            parsed[name].row_lengths().numpy().tolist(),
        )
        for name in CHECKED
    }


def compiled_parse(records: list[bytes]) -> tuple[dict | None, tuple | None]:
    buffer = b"".join(records)
    lengths = np.array([len(record) for record in records], dtype=np.int64)
    starts = np.cumsum(lengths) - lengths
    columns, problem = example_parsing.parse_problem(buffer, starts, lengths, CHECKED)
    if columns is None:
        return None, problem
    return {
        name: (values.tolist(), row_lengths.tolist())
        for name, (values, row_lengths) in columns.items()
    }, None


def test_the_install_built_the_compiled_parser():
    assert example_parsing.compiled()


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        # A feature named twice: the last entry wins, whatever the earlier one held.
        (example(entry(b"a", int64_feature([1])), entry(b"a", int64_feature([2, 3]))), [2, 3]),
        (example(entry(b"a", FLOAT_FEATURE), entry(b"a", int64_feature([5]))), [5]),
        (example(entry(b"a", int64_feature([1])), entry(b"a", b"")), []),
        # ... even across two Features messages of one record.
        (example(entry(b"a", int64_feature([1]))) + example(entry(b"a", int64_feature([7]))), [7]),
        (example(entry(b"a", int64_feature([1, -1], packed=False))), [1, -1]),
        (example(entry(b"a", int64_feature([INT64_MIN, INT64_MAX, 0]))), [INT64_MIN, INT64_MAX, 0]),
        (example(entry(b"a", int64_feature([4]), value_first=True)), [4]),
        (example(entry(b"a", b"")), []),
        (example(entry(b"a", field(3, b""))), []),
        (b"", []),
        # Fields an Example does not have are skipped: a varint, fixed32 and fixed64,
        # a field 2 (a SequenceExample's feature_lists), a two-byte tag.
        (
            varint(5 << 3) + varint(9)
            + example(entry(b"a", int64_feature([6])))
            + varint(6 << 3 | 5) + b"abcd"
            + varint(7 << 3 | 1) + b"abcdefgh"
            + field(2, b"whatever")
            + field(300, b"x"),
            [6],
        ),
    ],
)  # fmt: skip
def test_hand_built_records_parse_as_tensorflow_parses_them(record, expected):
    assert tensorflow_columns([record])["a"] == (expected, [len(expected)])
    assert compiled_parse([record]) == (
        {"a": (expected, [len(expected)]), "b_xf": ([], [0])},
        None,
    )


@pytest.mark.parametrize(
    "record",
    [
        example(entry(b"a", FLOAT_FEATURE)),
        example(entry(b"a", BYTES_FEATURE)),
        example(entry(b"a", int64_feature([1])), entry(b"a", FLOAT_FEATURE)),
    ],
)
def test_floats_or_bytes_under_a_checked_name_hand_the_batch_back(record):
    with pytest.raises(tf.errors.InvalidArgumentError, match="Data types don't match"):
        tensorflow_columns([record])
    fine = example(entry(b"b_xf", int64_feature([1])))
    assert compiled_parse([fine, record]) == (None, (example_parsing.NOT_INT64, 1, 0))


@pytest.mark.parametrize(
    "record",
    [
        # TensorFlow reads these its own way (the first kind of a Feature, the first
        # packed run of a list, a 10th varint byte over 1); the C parser hands them back.
        example(entry(b"a", int64_feature([1]) + FLOAT_FEATURE)),
        example(entry(b"a", field(3, field(1, varint(4)) + varint(8) + varint(9)))),
        example(entry(b"a", field(3, field(1, b"\xff" * 9 + b"\x7f")))),
        example(entry(b"a", int64_feature([1]) + b"\x00")),
        # And these TensorFlow refuses: an entry without a value, an unknown
        # field in Features, an 11-byte varint, an unknown kind of Feature, even
        # in an entry a later one replaces (found by the damaged-records property).
        example(field(1, field(1, b"a"))),
        example(entry(b"a", int64_feature([1])) + varint(2 << 3) + varint(5)),
        example(entry(b"a", field(3, field(1, b"\xff" * 10 + b"\x01")))),
        example(entry(b"a", field(4, b""))),
        example(entry(b"a", b"\x00\x03\x0a\x01x"), entry(b"a", int64_feature([1]))),
    ],
)
def test_records_read_otherwise_than_the_protobuf_says_hand_the_batch_back(record):
    assert compiled_parse([record]) == (None, (example_parsing.NOT_READ, 0, -1))


int64s = st.one_of(
    st.integers(-3, 20),
    st.sampled_from([INT64_MIN, -1, 0, INT64_MAX]),
    st.integers(INT64_MIN, INT64_MAX),
)
features = st.one_of(
    st.builds(int64_feature, st.lists(int64s, max_size=5), st.booleans()),
    st.just(FLOAT_FEATURE),
    st.just(BYTES_FEATURE),
    st.just(b""),
)
entries = st.builds(
    entry, st.sampled_from([b"a", b"b_xf", b"unchecked", b"b"]), features, st.booleans()
)
unknown_fields = st.sampled_from(
    [
        varint(5 << 3) + varint(300),
        varint(6 << 3 | 5) + b"abcd",
        field(2, b"\x0a\x00"),
        field(99, b""),
    ]
)
records = st.lists(
    st.one_of(
        st.just(example()), st.lists(entries, max_size=6).map(lambda e: example(*e)), unknown_fields
    ),
    max_size=4,
).map(b"".join)


@BOUNDED
@given(batch=st.lists(records, max_size=8))
def test_every_batch_parses_as_tensorflow_parses_it_or_is_handed_back(batch):
    columns, problem = compiled_parse(batch)
    if columns is not None:
        assert columns == tensorflow_columns(batch)
        return
    reason, record, feature = problem
    # Only floats or bytes under a checked name: every record here is one TensorFlow reads.
    assert reason == example_parsing.NOT_INT64
    with pytest.raises(tf.errors.InvalidArgumentError, match="Data types don't match"):
        tensorflow_columns([batch[record]])
    assert compiled_parse(batch[:record])[0] == tensorflow_columns(batch[:record])


@BOUNDED
@given(batch=st.lists(records, min_size=1, max_size=4), data=st.data())
def test_damaged_records_never_parse_otherwise_than_tensorflow(batch, data):
    # Cut or changed bytes: any values the C parser gives are TensorFlow's.
    index = data.draw(st.integers(0, len(batch) - 1))
    record = bytearray(batch[index])
    if record and data.draw(st.booleans()):
        position = data.draw(st.integers(0, len(record) - 1))
        record[position] = data.draw(st.integers(0, 255))
    else:
        del record[data.draw(st.integers(0, len(record))) :]
    batch[index] = bytes(record)
    columns, _ = compiled_parse(batch)
    if columns is not None:
        assert columns == tensorflow_columns(batch)


def example_rows(floats: st.SearchStrategy[list[float]]) -> st.SearchStrategy[list[dict]]:
    """Rows of feature name -> (kind, values), a checked name holding any kind."""
    return st.lists(
        st.dictionaries(
            st.sampled_from(["a", "b_xf", "other"]),
            st.one_of(
                st.tuples(st.just("int64_list"), st.lists(int64s, max_size=4)),
                st.tuples(st.just("float_list"), floats),
                st.tuples(st.just("bytes_list"), st.lists(st.binary(max_size=3), max_size=2)),
            ),
        ),
        max_size=8,
    )


def tensorflow_serialized(rows: list[dict]) -> list[bytes]:
    """The rows as tf.train.Example serializes them."""
    batch = []
    for row in rows:
        proto = tf.train.Example()
        for name, (kind, values) in row.items():
            getattr(proto.features.feature[name], kind).value.extend(values)
        batch.append(proto.SerializeToString())
    return batch


@BOUNDED
@given(rows=example_rows(st.lists(st.floats(width=32), max_size=2)))
def test_what_tensorflow_serializes_is_never_handed_back_but_for_floats_or_bytes(rows):
    batch = tensorflow_serialized(rows)
    not_int64 = [
        index
        for index, row in enumerate(rows)
        if any(row.get(name, ("int64_list",))[0] != "int64_list" for name in CHECKED)
    ]
    columns, problem = compiled_parse(batch)
    if not not_int64:
        assert problem is None
        assert columns == tensorflow_columns(batch)
    else:
        assert columns is None
        assert problem[:2] == (example_parsing.NOT_INT64, not_int64[0])


def test_the_compiled_parser_lets_other_threads_run_while_it_parses():
    record = example(entry(b"a", int64_feature([1, 2, 3])), entry(b"b_xf", b""))
    count = (32 << 20) // len(record)
    data = bytearray(record * count)
    lengths = np.full(count, len(record), dtype=np.int64)
    starts = np.arange(count, dtype=np.int64) * len(record)

    def parse(data: bytearray) -> int:
        columns, _ = example_parsing.parse_problem(data, starts, lengths, CHECKED)
        return len(columns["a"][0])

    found = lets_other_threads_run(parse, data)
    assert found and set(found) == {3 * count}


def test_the_reader_parses_in_c_and_falls_back_to_tensorflow(monkeypatch):
    records = [example(entry(b"a", int64_feature([1, 2]))), example(entry(b"b_xf", FLOAT_FEATURE))]
    batch = reader._Parser(CHECKED, None)
    parsed = {}
    for path in ("compiled", "tensorflow"):
        if path == "tensorflow":
            monkeypatch.setattr(example_parsing, "_tfrecord_framing", None)
        for cut in (1, 2):
            serialized = _serialized_batch(records[:cut])
            result = batch("shard", serialized)
            parsed[path, cut] = {
                name: (values.tolist(), lengths.tolist())
                for name, (values, lengths) in result.columns.items()
            }
    assert (
        parsed["compiled", 1]
        == parsed["tensorflow", 1]
        == {
            "a": ([1, 2], [2]),
            "b_xf": ([], [0]),
        }
    )
    # The float under b_xf: the whole batch as TensorFlow and the core always had it.
    assert parsed["compiled", 2] == parsed["tensorflow", 2]
    assert parsed["compiled", 2]["b_xf"][1] == [0, 1]


def _serialized_batch(records: list[bytes]):
    from embedding_guard.read.framing import SerializedBatch

    lengths = np.array([len(record) for record in records], dtype=np.int64)
    return SerializedBatch(b"".join(records), np.cumsum(lengths) - lengths, lengths)


# --- floats and bytes of a small batch, read without TensorFlow ------------------------------


def float_feature(values: list[float], form: str = "packed") -> bytes:
    data = np.asarray(values, dtype="<f4").tobytes()
    if form == "packed":
        return field(2, field(1, data))
    if form == "unpacked":
        return field(
            2, b"".join(varint(1 << 3 | 5) + data[i : i + 4] for i in range(0, len(data), 4))
        )
    return field(2, field(1, data[:-1]))  # a packed run cut short


def bytes_feature(values: list[bytes]) -> bytes:
    return field(1, b"".join(field(1, value) for value in values))


def _comparable(value: object) -> object:
    # A float by its bits, so that a NaN equals itself; its type stays apart from an int's.
    return ("float", struct.pack("<d", value)) if isinstance(value, float) else value


def _as_compared(columns: dict) -> dict:
    # Bytes of numeric arrays, so that a NaN equals itself; the dtype too: the
    # core counts a float32 column as non-integer values.
    return {
        name: (
            str(values.dtype),
            [_comparable(v) for v in values.tolist()]
            if values.dtype == object
            else values.tobytes(),
            lengths.tolist(),
        )
        for name, (values, lengths) in columns.items()
    }


def parse_both(batch: list[bytes]) -> tuple[dict | None, dict | None]:
    """(columns_without_tensorflow's columns or None, reader.parse_batch's or None if it fails)."""
    buffer = b"".join(batch)
    lengths = np.array([len(record) for record in batch], dtype=np.int64)
    starts = np.cumsum(lengths) - lengths
    ours = example_parsing.columns_without_tensorflow(buffer, starts, lengths, CHECKED)
    try:
        theirs = reader.parse_batch(batch, CHECKED).columns
    except (tf.errors.InvalidArgumentError, reader.InputError):
        theirs = None
    return (
        None if ours is None else _as_compared(ours),
        None if theirs is None else _as_compared(theirs),
    )


float32s = st.floats(width=32, allow_nan=True)
any_features = st.one_of(
    features,
    st.builds(
        float_feature,
        st.lists(float32s, max_size=4),
        st.sampled_from(["packed", "packed", "unpacked", "cut"]),
    ),
    st.builds(bytes_feature, st.lists(st.binary(max_size=4), max_size=3)),
    st.just(field(2, b"")),
    st.just(field(1, b"")),
    st.just(bytes_feature([b"x"]) + FLOAT_FEATURE),
    st.just(field(1, field(1, b"x") + varint(2 << 3) + varint(1))),
)
any_entries = st.builds(
    entry, st.sampled_from([b"a", b"b_xf", b"unchecked"]), any_features, st.booleans()
)
any_records = st.lists(
    st.one_of(st.lists(any_entries, max_size=5).map(lambda e: example(*e)), unknown_fields),
    max_size=3,
).map(b"".join)


@BOUNDED
@given(batch=st.lists(any_records, max_size=8))
def test_a_small_batch_with_floats_or_bytes_parses_as_tensorflow_parses_it_or_is_handed_back(
    batch,
):
    ours, theirs = parse_both(batch)
    if ours is not None:
        assert ours == theirs


@BOUNDED
@given(rows=example_rows(st.lists(float32s, min_size=1, max_size=2)))
def test_what_tensorflow_serializes_is_read_without_it_unless_a_list_is_empty(rows):
    # A few floats among integers (kinds mixed across records) are read without
    # TensorFlow. Left to it: a feature of another kind with no value at all,
    # and mixed kinds with an empty list of some kind.
    batch = tensorflow_serialized(rows)
    ours, theirs = parse_both(batch)

    assert theirs is not None
    lists = {name: [row[name] for row in rows if name in row] for name in CHECKED}
    kinds = {name: {kind for kind, _ in lists[name]} for name in CHECKED}
    handed_back = any(
        (kinds[name] - {"int64_list"} and not any(values for _, values in lists[name]))
        or (len(kinds[name]) > 1 and not all(values for _, values in lists[name]))
        for name in CHECKED
    )
    assert (ours is None) == handed_back
    if ours is not None:
        assert ours == theirs


def test_a_large_batch_with_floats_is_left_to_tensorflow(monkeypatch):
    batch = [
        example(entry(b"a", float_feature([2.5]))),
        example(entry(b"b_xf", int64_feature([1]))),
    ]
    ours, theirs = parse_both(batch)
    assert ours == theirs
    assert ours["a"][0] == "float32"
    monkeypatch.setattr(example_parsing, "PYTHON_PARSE_MAX_RECORDS", 1)
    assert parse_both(batch) == (None, theirs)


def test_a_read_parses_floats_in_python_up_to_its_allowance_then_with_tensorflow(monkeypatch):
    monkeypatch.setattr(example_parsing, "PYTHON_PARSE_MAX_RECORDS", 4)
    by_tensorflow = []
    parse_batch = reader.parse_batch
    monkeypatch.setattr(
        reader,
        "parse_batch",
        lambda serialized, names: (
            by_tensorflow.append(len(serialized)) or parse_batch(serialized, names)
        ),
    )
    records = [example(entry(b"a", float_feature([float(i)]))) for i in range(2)]
    parser = reader._Parser(CHECKED, None)
    # Two batches of two records use up the allowance of 4; the third is TensorFlow's,
    # and so is a batch of only int64s in C whatever is left.
    columns = [_as_compared(parser("shard", _serialized_batch(records)).columns) for _ in range(3)]
    int64_only = parser("shard", _serialized_batch([example(entry(b"a", int64_feature([1])))]))

    assert by_tensorflow == [2]
    assert columns[0] == columns[1] == columns[2] == parse_both(records)[1]
    assert int64_only.columns["a"][0].tolist() == [1]
