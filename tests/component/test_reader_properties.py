"""Property test: reader + core count random tf.Examples exactly as a pure-Python decode does.

Random examples (int64, float and bytes values, empty lists, absent features,
kinds that vary between examples) are written to TFRecord shards, gzip or not,
read back in small batches by the DoFn the Beam pipeline runs, and merged in a
random order. The counts must equal a brute-force count over the Python values
the examples were built from, whatever the batch size, shard cuts and merge order.
(tests/unit/test_core_properties.py checks the core alone on numpy arrays.) Every
test runs twice: records parsed in C (`example_parsing`) and by TensorFlow.
"""

from __future__ import annotations

import collections
import struct
import tempfile
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from component_testlib import VALUE_COUNT_KEYS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from embedding_guard.read import example_parsing, framing, reader
from embedding_guard.run import beam_pipeline, validation
from embedding_guard.run.examples_kind import ExamplesKind
from embedding_guard.run.options import ValidatorOptions
from embedding_guard.verdict import core

INT64 = np.iinfo(np.int64)
FEATURES = ("a_xf", "b_xf")


@pytest.fixture(scope="module", autouse=True, params=["compiled", "tensorflow"])
def parser(request):
    """Every test here on both parsers: the compiled one, and TensorFlow's that it falls back to."""
    with pytest.MonkeyPatch.context() as patch:
        if request.param == "tensorflow":
            patch.setattr(example_parsing, "_tfrecord_framing", None)
        else:
            assert example_parsing.compiled()
        yield request.param


# Every case writes and parses TFRecords, so fewer cases than the core's own test.
BOUNDED = settings(
    max_examples=40,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)

int64_values = st.one_of(
    st.integers(-3, 16),
    st.sampled_from([int(INT64.min), -1, 0, int(INT64.max)]),
    st.integers(int(INT64.min), int(INT64.max)),
)
# -0.0 becomes 0.0: the core labels a float batch's -0.0 and 0.0 as one sample
# value ("0.0" x2) but a batch mixing kinds as two, so only those labels (never
# the counts) would depend on how examples fall into batches.
floats = st.floats(width=32).map(lambda value: 0.0 if value == 0 else value)
# A feature of an example: absent (None), or its kind and values (maybe none).
feature_values = st.one_of(
    st.none(),
    st.tuples(st.just("int64"), st.lists(int64_values, max_size=5)),
    st.tuples(st.just("float"), st.lists(floats, max_size=3)),
    st.tuples(st.just("bytes"), st.lists(st.binary(max_size=4), max_size=3)),
)
examples_strategy = st.lists(
    st.fixed_dictionaries({name: feature_values for name in (*FEATURES, "unchecked")}),
    min_size=0,
    max_size=30,
)


@st.composite
def bounds_strategy(draw):
    vocab_size = draw(st.integers(1, 10))
    with_vocabulary = core.FeatureBounds(
        feature="a_xf",
        upper_bound=vocab_size + (oov := draw(st.integers(0, 3))),
        embedding_input_dim=draw(st.one_of(st.integers(1, 15), st.just(vocab_size + oov))),
        vocab_size=vocab_size,
        num_oov_buckets=oov,
    )
    upper_bound = draw(st.integers(1, 12))
    without_vocabulary = core.FeatureBounds(
        feature="b_xf",
        upper_bound=upper_bound,
        embedding_input_dim=draw(st.one_of(st.integers(1, 15), st.just(upper_bound))),
    )
    return with_vocabulary, without_vocabulary


def _to_example(row: dict) -> tf.train.Example:
    example = tf.train.Example()
    for name, entry in row.items():
        if entry is None:
            continue
        kind, values = entry
        getattr(example.features.feature[name], f"{kind}_list").value.extend(values)
    return example


def _float32(value: float) -> float:
    return struct.unpack("<f", struct.pack("<f", value))[0]


def _text(kind: str, value) -> str:
    return value.decode("utf-8", "backslashreplace") if kind == "bytes" else repr(_float32(value))


def _top(counter: collections.Counter) -> tuple:
    return tuple(sorted(counter.items(), key=lambda item: (-item[1], item[0]))[:10])


def reference_stats(rows: list[dict], bounds: core.FeatureBounds) -> dict:
    """Counts one feature value by value, in plain Python."""
    stats = collections.Counter()
    offending, non_integer = collections.Counter(), collections.Counter()
    negative, out_of_range, over_dim = (collections.Counter() for _ in range(3))
    seen, ints = set(), []
    lowest_bad = min(bounds.upper_bound, bounds.embedding_input_dim)
    for row in rows:
        entry = row[bounds.feature]
        if entry is None or not entry[1]:
            stats["missing"] += 1
            continue
        kind, values = entry
        stats["num_values"] += len(values)
        for value in values:
            if kind != "int64":
                stats["non_integer"] += 1
                non_integer[_text(kind, value)] += 1
                continue
            ints.append(value)
            if value < 0:
                stats["negative"] += 1
                negative[value] += 1
            elif value < bounds.in_vocab_bound:
                stats["in_range"] += 1
                stats["in_vocab"] += 1
                seen.add(value)
            elif value < bounds.upper_bound:
                stats["in_range"] += 1
                stats["oov_bucket"] += 1
            else:
                stats["out_of_range"] += 1
                out_of_range[value] += 1
            if value >= bounds.embedding_input_dim:
                stats["over_embedding_dim"] += 1
                over_dim[value] += 1
            if bounds.vocab_size is not None and bounds.num_oov_buckets == 0:
                stats["at_default"] += value == -1
            if value < 0 or value >= lowest_bad:
                offending[value] += 1
    # The report's value counts (num_examples is counted below), and at_default.
    counts = {key: stats[key] for key in (*VALUE_COUNT_KEYS[1:], "at_default")}
    if bounds.vocab_size is None:
        # No vocabulary: "in range" only, and no OOV counts at all (not zeros).
        counts.update(in_vocab=None, oov_bucket=None, at_default=None)
    return {
        "num_examples": len(rows),
        **counts,
        "min": min(ints, default=None),
        "max": max(ints, default=None),
        "top_offending_values": _top(offending),
        "top_negative_values": _top(negative),
        "top_out_of_range_values": _top(out_of_range),
        "top_over_embedding_dim_values": _top(over_dim),
        "top_non_integer_values": _top(non_integer),
        "offending_values_complete": True,
        "vocab_entries_unseen": (
            None if bounds.vocab_size is None else bounds.vocab_size - len(seen)
        ),
    }


def counted_stats(stats: core.FeatureStats, reference: dict) -> dict:
    return {key: getattr(stats, key) for key in reference}


@BOUNDED
@given(
    rows=examples_strategy,
    bounds=bounds_strategy(),
    batch_size=st.integers(1, 7),
    # Down to one byte: every record then makes a batch of its own.
    max_batch_bytes=st.one_of(st.integers(1, 200), st.just(framing.DEFAULT_MAX_BATCH_BYTES)),
    parallelism=st.integers(1, 4),
    data=st.data(),
)
def test_reader_and_core_count_like_a_python_decode(
    rows, bounds, batch_size, max_batch_bytes, parallelism, data
):
    cuts = sorted(data.draw(st.lists(st.integers(0, len(rows)), max_size=2), label="cuts"))
    shards_rows = [
        rows[start:end] for start, end in zip([0, *cuts], [*cuts, len(rows)], strict=True)
    ]
    gzipped = data.draw(
        st.lists(st.booleans(), min_size=len(shards_rows), max_size=len(shards_rows)),
        label="gzip",
    )
    with tempfile.TemporaryDirectory() as folder:
        paths = []
        for index, (shard_rows, gzip) in enumerate(zip(shards_rows, gzipped, strict=True)):
            path = str(Path(folder, f"shard-{index}{'.gz' if gzip else ''}"))
            with tf.io.TFRecordWriter(path, "GZIP" if gzip else "") as writer:
                for row in shard_rows:
                    writer.write(_to_example(row).SerializeToString())
            paths.append(path)
        count_shards = beam_pipeline._CountShard(
            validation.Plan(tuple(bounds), ExamplesKind.TRANSFORMED, None),
            ValidatorOptions(parallelism=parallelism),
            batch_size,
            max_batch_bytes=max_batch_bytes,
        )
        counted = [accumulator for _, accumulator in count_shards.count(paths)]

    merge = beam_pipeline._MergeSplit(bounds)
    merged = merge.create_accumulator()
    for accumulator in data.draw(st.permutations(counted), label="merge order"):
        merged = merge.add_input(merged, accumulator)

    assert merged.num_examples == len(rows)
    for feature_bounds in bounds:
        reference = reference_stats(rows, feature_bounds)
        stats = merged.features[feature_bounds.feature].result()
        assert counted_stats(stats, reference) == reference, feature_bounds.feature


def _python_records(data: bytes) -> list[bytes]:
    """Decodes uncompressed TFRecord framing in plain Python, checksums ignored."""
    records, pos = [], 0
    while pos < len(data):
        (length,) = struct.unpack_from("<Q", data, pos)
        records.append(data[pos + 12 : pos + 12 + length])
        pos += 16 + length
    return records


@BOUNDED
@given(
    records=st.lists(st.binary(max_size=300), max_size=40),
    gzip=st.booleans(),
    batch_size=st.integers(1, 9),
    max_batch_bytes=st.integers(1, 1000),
)
def test_batches_hold_every_record_in_order_within_both_bounds(
    records, gzip, batch_size, max_batch_bytes
):
    with tempfile.TemporaryDirectory() as folder:
        path = str(Path(folder, "shard.gz" if gzip else "shard"))
        with tf.io.TFRecordWriter(path, "GZIP" if gzip else "") as writer:
            for record in records:
                writer.write(record)
        plain = str(Path(folder, "plain"))
        with tf.io.TFRecordWriter(plain) as writer:
            for record in records:
                writer.write(record)
        batches = list(framing.serialized_batches(path, batch_size, max_batch_bytes))
        expected = _python_records(Path(plain).read_bytes())

    assert [record for batch in batches for record in batch] == expected == records
    for batch in batches:
        assert 1 <= len(batch) <= batch_size
        assert len(batch) == 1 or sum(map(len, batch)) <= max_batch_bytes
    # A batch ends only where the next record would break a bound.
    for batch, following in zip(batches[:-1], batches[1:], strict=True):
        assert (
            len(batch) == batch_size or sum(map(len, batch)) + len(following[0]) > max_batch_bytes
        )


@BOUNDED
@given(
    shard_sizes=st.lists(st.integers(0, 12), min_size=1, max_size=5),
    batch_size=st.integers(1, 5),
    parallelism=st.integers(2, 4),
)
def test_parallel_read_gives_each_shard_its_batches_in_file_order_then_its_end(
    shard_sizes, batch_size, parallelism
):
    with tempfile.TemporaryDirectory() as folder:
        paths, start = [], 0
        for index, size in enumerate(shard_sizes):
            path = str(Path(folder, f"shard-{index}.gz"))
            with tf.io.TFRecordWriter(path, "GZIP") as writer:
                for value in range(start, start + size):
                    writer.write(_to_example({"a_xf": ("int64", [value])}).SerializeToString())
            start += size
            paths.append(path)

        def per_shard(parallel: int) -> list[list]:
            read = reader.read_shards(paths, ["a_xf"], batch_size=batch_size, parallelism=parallel)
            streams: dict[str, list] = {path: [] for path in paths}
            for path, batch in read:
                assert "end" not in streams[path], "a batch after its shard's end"
                streams[path].append("end" if batch is None else batch.columns["a_xf"][0].tolist())
            return list(streams.values())

        sequential = per_shard(1)
        parallel = per_shard(parallelism)

    assert parallel == sequential
    assert all(stream[-1] == "end" and stream.count("end") == 1 for stream in sequential)
    values = [value for stream in sequential for batch in stream[:-1] for value in batch]
    assert values == list(range(sum(shard_sizes)))


def test_parse_batch_stays_on_tensorflows_fast_path(monkeypatch):
    # The slow path converted every argument on each call, holding the GIL.
    from tensorflow.python.ops import gen_parsing_ops

    def slow_path(*args, **kwargs):
        raise AssertionError("ParseExampleV2 took TensorFlow's eager fallback")

    monkeypatch.setattr(gen_parsing_ops, "parse_example_v2_eager_fallback", slow_path)
    serialized = [_to_example({"a_xf": ("int64", [3, 4])}).SerializeToString()] * 2
    batch = reader.parse_batch(tf.constant(serialized), ["a_xf", "b_xf"])

    assert batch.columns["a_xf"][0].tolist() == [3, 4, 3, 4]
    assert batch.columns["a_xf"][1].tolist() == [2, 2]
    assert batch.columns["b_xf"][1].tolist() == [0, 0]


@pytest.mark.parametrize("compression", ["GZIP", ""])
def test_first_record_frames_one_small_window_not_the_whole_shard_start(
    monkeypatch, tmp_path, compression
):
    records = [
        _to_example({"a_xf": ("int64", [index] * 100)}).SerializeToString()
        for index in range(30_000)
    ]
    path = tmp_path / "Split-train" / ("shard.gz" if compression else "shard")
    path.parent.mkdir()
    with tf.io.TFRecordWriter(str(path), compression) as writer:
        for record in records:
            writer.write(record)
    framed: list[int] = []
    for framer in (framing._GzipFramer, framing._CheckedFramer):
        monkeypatch.setattr(
            framer,
            "__call__",
            lambda self, data, frame=framer.__call__: framed.append(len(data)) or frame(self, data),
        )

    assert framing.first_record([str(path)]) == (str(path), records[0])
    # The shard holds over 6 MB; the default window is 4 MiB.
    assert sum(len(record) for record in records) > 6_000_000
    assert 0 < sum(framed) < 2 * 1024 * 1024


@pytest.mark.parametrize(
    ("compression", "name"),
    [("GZIP", "shard.gz"), ("", "shard"), ("GZIP", "gzip_named_plain"), ("", "plain.gz")],
)
def test_reading_a_shard_opens_it_once(monkeypatch, tmp_path, compression, name):
    # On GCS or S3 every open is a round trip; deciding the compression (by the
    # name, then by the other guess) must reuse the bytes the read starts with.
    from embedding_guard.read import storage

    records = [
        _to_example({"a_xf": ("int64", [index])}).SerializeToString() for index in range(500)
    ]
    path = tmp_path / name
    with tf.io.TFRecordWriter(str(path), compression) as writer:
        for record in records:
            writer.write(record)
    opened: list[str] = []
    monkeypatch.setattr(
        storage,
        "open_file",
        lambda path, *args, open_=storage.open_file: opened.append(path) or open_(path, *args),
    )

    read = [
        bytes(record) for batch in framing.serialized_batches(str(path), 64) for record in batch
    ]

    assert read == records
    assert opened == [str(path)]


# --- the first-record check reads records as TensorFlow's protos do ------------------------


def _first_record_verdict(path: str, features: list[str]) -> tuple[str, object]:
    """("ok", the first example's feature names) or ("refused", the ShardError's message)."""
    try:
        return "ok", reader.check_record_format({"train": [path]}, features)
    except framing.ShardError as error:
        return "refused", str(error)


def _sequence_example_record(context: list[str], lists: list[str], kind: str) -> bytes:
    proto = tf.train.SequenceExample()
    for name in context:
        getattr(proto.context.feature[name], kind).value.extend([1] if kind == "int64_list" else [])
    for name in lists:
        proto.feature_lists.feature_list[name].feature.add().int64_list.value.append(2)
    return proto.SerializeToString()


_names = st.lists(st.sampled_from(["a_xf", "b_xf", "other", "é"]), max_size=3, unique=True)
_first_records = st.one_of(
    st.binary(max_size=40),
    st.builds(
        _sequence_example_record,
        _names,
        _names,
        st.sampled_from(["int64_list", "float_list", "bytes_list"]),
    ),
    st.builds(lambda example: example.SerializeToString(), st.just(tf.train.Example())),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(record=_first_records, cut=st.integers(0, 60), junk=st.sampled_from([b"", b"\x80", b"\x1c"]))
def test_the_first_record_check_accepts_and_refuses_as_with_tensorflows_protos(record, cut, junk):
    from embedding_guard.read import example_protos

    record = record[: max(0, len(record) - cut % 4)] + junk
    with tempfile.TemporaryDirectory() as folder:
        path = str(Path(folder) / "shard")
        with tf.io.TFRecordWriter(path) as writer:
            writer.write(record)
        ours = _first_record_verdict(path, ["a_xf", "b_xf"])
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(example_protos, "message_class", lambda name: getattr(tf.train, name))
            theirs = _first_record_verdict(path, ["a_xf", "b_xf"])
    assert ours == theirs
