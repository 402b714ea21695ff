"""tf.Example's protos built without TensorFlow read every record as TensorFlow's do.

`example_protos` gives the reader tf.train.SequenceExample, FeatureLists and
Example without importing TensorFlow. They must accept and refuse exactly the
records TensorFlow's classes accept and refuse, with the same error text (the
reader's message quotes it), and read the same features from them: checked
here on arbitrary bytes, on records built field by field (unknown fields,
wrong wire types, groups, truncated and overlong varints, empty), and on
serialized SequenceExamples cut or changed.
"""

from __future__ import annotations

import pytest
import tensorflow as tf
from google.protobuf import message
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_example_parsing import varint

from embedding_guard.read import example_protos

BOUNDED = settings(
    max_examples=400, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
NAMES = ("SequenceExample", "FeatureLists", "Example", "Features", "Feature")


def _tensorflow_class(name: str):
    return getattr(tf.train, name)


def _read(cls, record: bytes) -> tuple[str, object]:
    """("ok", the message's canonical bytes) or ("error", the DecodeError's text)."""
    try:
        parsed = cls.FromString(record)
    except message.DecodeError as error:
        return "error", str(error)
    return "ok", parsed.SerializeToString(deterministic=True)


def _assert_read_alike(record: bytes) -> None:
    for name in NAMES:
        ours = _read(example_protos.message_class(name), record)
        theirs = _read(_tensorflow_class(name), record)
        assert ours == theirs, (name, record)


def _fields(payloads: st.SearchStrategy[bytes]) -> st.SearchStrategy[bytes]:
    """One field of any number (0 and unknown ones too) and any wire type, well-formed or not."""
    tags = st.builds(
        lambda number, wire: varint(number << 3 | wire), st.integers(0, 4), st.integers(0, 7)
    )
    return st.one_of(
        st.builds(lambda tag, value: tag + varint(value), tags, st.integers(0, 2**64 - 1)),
        st.builds(lambda tag, payload: tag + varint(len(payload)) + payload, tags, payloads),
        st.builds(lambda tag, raw: tag + raw, tags, st.binary(max_size=9)),
        # A group of field 3 (start, fields, end), and a lone end-group tag.
        st.builds(lambda inner: b"\x1b" + inner + b"\x1c", payloads),
        st.just(b"\x1c"),
        # A truncated varint, an overlong one, a length past the end.
        st.just(b"\x08\xff"),
        st.just(b"\x08" + b"\xff" * 10 + b"\x01"),
        st.just(b"\x0a\x05ab"),
    )


wire_records = st.recursive(
    st.just(b""),
    lambda inner: st.lists(_fields(inner), max_size=4).map(b"".join),
    max_leaves=12,
)


def _feature(kind: str, values: list) -> tf.train.Feature:
    feature = tf.train.Feature()
    getattr(feature, kind).value.extend(values)
    return feature


features = st.one_of(
    st.builds(
        _feature, st.just("int64_list"), st.lists(st.integers(-(2**63), 2**63 - 1), max_size=3)
    ),
    st.builds(_feature, st.just("float_list"), st.lists(st.floats(width=32), max_size=3)),
    st.builds(_feature, st.just("bytes_list"), st.lists(st.binary(max_size=4), max_size=3)),
    st.just(tf.train.Feature()),
)
keys = st.one_of(st.sampled_from(["a", "b_xf", ""]), st.text(max_size=4))


def _sequence_example(context: dict, lists: dict) -> bytes:
    proto = tf.train.SequenceExample()
    for key, feature in context.items():
        proto.context.feature[key].CopyFrom(feature)
    for key, steps in lists.items():
        proto.feature_lists.feature_list[key].feature.extend(steps)
    return proto.SerializeToString()


sequence_examples = st.builds(
    _sequence_example,
    st.dictionaries(keys, features, max_size=3),
    st.dictionaries(keys, st.lists(features, max_size=3), max_size=3),
)


@BOUNDED
@given(record=st.binary(max_size=64))
def test_arbitrary_bytes_are_read_alike(record):
    _assert_read_alike(record)


@BOUNDED
@given(record=wire_records)
def test_records_built_field_by_field_are_read_alike(record):
    _assert_read_alike(record)


@BOUNDED
@given(record=sequence_examples, data=st.data())
def test_sequence_examples_whole_cut_or_changed_are_read_alike(record, data):
    _assert_read_alike(record)
    changed = bytearray(record)
    if changed and data.draw(st.booleans()):
        changed[data.draw(st.integers(0, len(changed) - 1))] = data.draw(st.integers(0, 255))
    else:
        del changed[data.draw(st.integers(0, len(changed))) :]
    _assert_read_alike(bytes(changed) + data.draw(st.sampled_from([b"", b"\x80", b"\x12\x00"])))


@pytest.mark.parametrize(
    "record",
    [
        b"",
        b"\x0a\x00\x12\x00",
        # A map key that is not UTF-8, in the context and in the feature_lists.
        b"\x0a\x06\x0a\x04\x0a\x02\xff\xfe",
        b"\x12\x06\x0a\x04\x0a\x02\xff\xfe",
        b"\x08",
        b"\x0c",
    ],
)
def test_edge_records_are_read_alike(record):
    _assert_read_alike(record)


def test_a_sequence_example_reads_its_context_and_feature_lists_without_tensorflow():
    record = _sequence_example(
        {"a": _feature("int64_list", [3])}, {"b_xf": [_feature("float_list", [1.5])]}
    )

    parsed = example_protos.message_class("SequenceExample").FromString(record)

    assert set(parsed.context.feature) == {"a"}
    assert set(parsed.feature_lists.feature_list) == {"b_xf"}
    assert type(parsed).DESCRIPTOR.full_name == "tensorflow.SequenceExample"
