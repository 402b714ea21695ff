"""Offending examples are written as TFRecords without TensorFlow, in TensorFlow's format."""

from __future__ import annotations

import gzip

import tensorflow as tf
from hypothesis import given, settings
from hypothesis import strategies as st

from embedding_guard.run import offending_examples

RECORD_LISTS = st.lists(st.binary(max_size=300), max_size=20)


def _tensorflow_bytes(path: str, records: list[bytes]) -> bytes:
    with tf.io.TFRecordWriter(path) as writer:
        for record in records:
            writer.write(record)
    with open(path, "rb") as f:
        return f.read()


@settings(max_examples=60, deadline=None)
@given(records=RECORD_LISTS)
def test_framing_equals_tensorflows_writer_byte_for_byte(tmp_path_factory, records):
    path = str(tmp_path_factory.mktemp("tfrecord") / "reference.tfrecord")

    assert offending_examples.tfrecord_bytes(records) == _tensorflow_bytes(path, records)


def test_a_written_file_reads_back_with_tf_data_and_nothing_else_is_left(tmp_path):
    records = [b"", b"\x00" * 70_000, bytes(range(256)), b"last"]
    path = tmp_path / "city_xf.tfrecord.gz"

    offending_examples.write_records_atomically(str(path), records)

    read = [r.numpy() for r in tf.data.TFRecordDataset(str(path), compression_type="GZIP")]
    assert read == records
    assert [p.name for p in tmp_path.iterdir()] == ["city_xf.tfrecord.gz"]
    # Written twice, the same records give the same bytes (no time in the gzip header).
    first = path.read_bytes()
    offending_examples.write_records_atomically(str(path), records)
    assert path.read_bytes() == first
    assert gzip.decompress(first) == offending_examples.tfrecord_bytes(records)
