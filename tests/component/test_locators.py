"""Locators point at the record that holds each sample value; offending examples are the records.

The shards are written here: two gzip and one uncompressed, with a multivalent
feature whose values are drawn at random (seeded), and a feature stored as
floats in some records. Every claim is checked against a brute-force scan of the
shards with tf.data: reopen the shard, skip to the record, find the value there;
the offending examples read back with tf.data are exactly the first offending
records, byte for byte.
"""

from __future__ import annotations

import functools
import os
import random

import apache_beam as beam
import pytest
import tensorflow as tf
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.options.pipeline_options import PipelineOptions
from component_testlib import TESTDATA, TRANSFORM_GRAPH_DIR
from tensorflow_metadata.proto.v0 import schema_pb2

from embedding_guard.cli import main as cli
from embedding_guard.errors import InputError
from embedding_guard.run import beam_pipeline, offending_examples, orchestration
from embedding_guard.run.options import ValidatorOptions
from embedding_guard.verdict import locations

BOUND = 10  # idx and mixed: int_domain [0, 9]
LIMIT = 4
SHARDS = {"part-a.gz": 230, "part-b": 190, "part-c.gz": 170}
SPLITS = ("train", "eval")


def _example(split: str, shard: str, index: int, rng: random.Random) -> tf.train.Example:
    # Mostly valid; about one value in ten negative or past the bound.
    def value() -> int:
        roll = rng.random()
        return (
            rng.randrange(-3, 0)
            if roll < 0.05
            else rng.randrange(BOUND, 14)
            if roll < 0.1
            else rng.randrange(BOUND)
        )

    features = {
        "record_id": tf.train.Feature(
            bytes_list=tf.train.BytesList(value=[f"{split}/{shard}/{index}".encode()])
        ),
        "idx": tf.train.Feature(
            int64_list=tf.train.Int64List(value=[value() for _ in range(rng.randrange(4))])
        ),
    }
    if rng.random() < 0.03:
        # Stored as floats: non-integer values of an index feature.
        features["mixed"] = tf.train.Feature(
            float_list=tf.train.FloatList(value=[rng.choice([0.5, 2.25])])
        )
    else:
        features["mixed"] = tf.train.Feature(int64_list=tf.train.Int64List(value=[value()]))
    return tf.train.Example(features=tf.train.Features(feature=features))


@pytest.fixture(scope="module")
def examples(tmp_path_factory) -> str:
    root = tmp_path_factory.mktemp("located_examples")
    rng = random.Random(28)  # noqa: S311 - test data, not secrets
    for split in SPLITS:
        folder = root / f"Split-{split}"
        folder.mkdir()
        for shard, count in SHARDS.items():
            options = "GZIP" if shard.endswith(".gz") else None
            with tf.io.TFRecordWriter(str(folder / shard), options=options) as writer:
                for index in range(count):
                    writer.write(_example(split, shard, index, rng).SerializeToString())
    return str(root)


def _schema() -> schema_pb2.Schema:
    schema = schema_pb2.Schema()
    for name in ("idx", "mixed"):
        feature = schema.feature.add(name=name, type=schema_pb2.INT)
        feature.int_domain.min, feature.int_domain.max = 0, BOUND - 1
        feature.int_domain.is_categorical = True
    return schema


def _records(path: str) -> list[bytes]:
    compression = "GZIP" if path.endswith(".gz") else ""
    return [r.numpy() for r in tf.data.TFRecordDataset(path, compression_type=compression)]


def _values(record: bytes, feature: str) -> list:
    kind = tf.train.Example.FromString(record).features.feature[feature]
    return list(getattr(kind, kind.WhichOneof("kind")).value) if kind.WhichOneof("kind") else []


def _offending(value: object) -> bool:
    return not isinstance(value, int) or not 0 <= value < BOUND


@functools.cache
def _scan(split_dir: str, feature: str) -> list[tuple[str, int, bytes, list]]:
    """(shard, record index, record bytes, values) in reading order, by brute force."""
    return [
        (shard, index, record, _values(record, feature))
        for shard in sorted(os.listdir(split_dir))
        for index, record in enumerate(_records(os.path.join(split_dir, shard)))
    ]


def _run(examples: str, output: str, pipeline=None, parallelism: int = 2):
    options = ValidatorOptions(
        locator_feature="record_id", offending_examples_limit=LIMIT, parallelism=parallelism
    ).validate()
    split_uris = {split: os.path.join(examples, f"Split-{split}") for split in SPLITS}
    output_dirs = {split: os.path.join(output, f"Split-{split}") for split in SPLITS}
    return orchestration.validate(
        split_uris, output_dirs, options, schema=_schema(), pipeline=pipeline
    )


@pytest.fixture(scope="module")
def in_process(examples, tmp_path_factory):
    output = str(tmp_path_factory.mktemp("located_in_process"))
    return _run(examples, output), output


@pytest.fixture(scope="module")
def with_beam(examples, tmp_path_factory):
    output = str(tmp_path_factory.mktemp("located_beam"))
    pipeline = beam.Pipeline(options=PipelineOptions(["--runner=DirectRunner"]))
    result = _run(examples, output, pipeline)
    counters: dict[str, int] = {}
    query = MetricsFilter().with_namespace(beam_pipeline.METRICS_NAMESPACE)
    for counter in pipeline.result.metrics().query(query)["counters"]:
        counters[counter.key.metric.name] = (
            counters.get(counter.key.metric.name, 0) + counter.committed
        )
    return result, output, counters


@pytest.fixture(params=["in_process", "beam"])
def run(request, in_process, with_beam):
    return in_process[:2] if request.param == "in_process" else with_beam[:2]


def test_every_sample_value_is_found_where_its_locator_points(run, examples):
    result, _ = run
    checked = 0
    for split, report in result.reports.items():
        split_dir = os.path.join(examples, f"Split-{split}")
        for feature in report.features:
            assert feature.stats.sample_locations, (split, feature.feature)
            for sample in feature.stats.sample_locations:
                where = sample.location
                path = os.path.join(split_dir, where.shard)
                compression = "GZIP" if path.endswith(".gz") else ""
                dataset = tf.data.TFRecordDataset(path, compression_type=compression)
                record = next(iter(dataset.skip(where.record_index).take(1))).numpy()
                value = _values(record, feature.feature)[where.value_index]
                shown = value if isinstance(value, int) else repr(value)
                assert shown == sample.value, (split, feature.feature, sample)
                # The first occurrence: no earlier record or list position holds it.
                first = next(
                    (shard, index, position)
                    for shard, index, _, values in _scan(split_dir, feature.feature)
                    for position, candidate in enumerate(values)
                    if (candidate if isinstance(candidate, int) else repr(candidate))
                    == sample.value
                )
                assert first == (where.shard, where.record_index, where.value_index)
                assert where.locator_feature == "record_id"
                assert where.locator_value == f"{split}/{where.shard}/{where.record_index}"
                checked += 1
    # Both compressions, list positions past the first, and floats were located.
    located = [
        s.location
        for r in result.reports.values()
        for f in r.features
        for s in f.stats.sample_locations
    ]
    assert {loc.shard for loc in located} >= {"part-a.gz"}
    assert any(loc.value_index > 0 for loc in located)
    kinds = {
        s.kind
        for r in result.reports.values()
        for f in r.features
        for s in f.stats.sample_locations
    }
    assert kinds == {locations.NEGATIVE, locations.TOO_LARGE, locations.NON_INTEGER}
    assert checked > 20


def test_findings_carry_the_locations_of_their_samples(run):
    result, _ = run
    for report in result.reports.values():
        for feature in report.features:
            where = {(s.value, s.location) for s in feature.stats.sample_locations}
            for finding in feature.findings:
                if finding.reason.value in ("NEGATIVE_INDEX", "INDEX_OUT_OF_RANGE"):
                    assert len(finding.sample_locations) == len(finding.sample_values)
                    for (value, _), location in zip(
                        finding.sample_values, finding.sample_locations, strict=True
                    ):
                        assert (value, location) in where


def test_offending_examples_are_the_first_offending_records_byte_for_byte(run, examples):
    result, output = run
    for split in SPLITS:
        split_dir = os.path.join(examples, f"Split-{split}")
        for feature in ("idx", "mixed"):
            expected = [
                record
                for _, _, record, values in _scan(split_dir, feature)
                if any(_offending(v) for v in values)
            ][:LIMIT]
            path = os.path.join(
                output,
                f"Split-{split}",
                offending_examples.OFFENDING_EXAMPLES_DIR,
                offending_examples.file_name(feature),
            )
            written = [r.numpy() for r in tf.data.TFRecordDataset(path, compression_type="GZIP")]
            assert len(expected) == LIMIT
            assert written == expected, (split, feature)


def test_read_counts_are_every_record_and_byte_of_every_shard(run, examples):
    result, _ = run
    for split, report in result.reports.items():
        split_dir = os.path.join(examples, f"Split-{split}")
        expected = {}
        for shard in sorted(SHARDS):
            path = os.path.join(split_dir, shard)
            records = _records(path)
            expected[shard] = (
                len(records),
                os.path.getsize(path),
                sum(len(r) + 16 for r in records),
            )
        counts = report.read_counts
        assert {
            s.shard: (s.records, s.file_bytes, s.record_bytes) for s in counts.shards
        } == expected
        assert counts.records == sum(SHARDS.values()) == report.num_examples
        assert counts.file_bytes == sum(v[1] for v in expected.values())


def test_beam_counts_reads_as_metrics_and_agrees_with_in_process(in_process, with_beam):
    beam_result, _, counters = with_beam
    in_process_result, _ = in_process
    for split in SPLITS:
        counts = beam_result.reports[split].read_counts
        assert counters[f"records_read[{split}]"] == counts.records
        assert counters[f"file_bytes_read[{split}]"] == counts.file_bytes
        assert counters[f"shards_read[{split}]"] == len(SHARDS)
        assert beam_result.reports[split].to_json() == in_process_result.reports[split].to_json()
    # Counted by the workers where the shards were read, not only after the combine.
    assert counters["records_read"] == len(SPLITS) * sum(SHARDS.values())


def test_one_thread_locates_as_many_threads_do(examples, in_process, tmp_path):
    sequential = _run(examples, str(tmp_path), parallelism=1)
    for split in SPLITS:
        assert sequential.reports[split].to_json() == in_process[0].reports[split].to_json()


RAW_CHECK = [
    "check",
    "--transform-graph",
    str(TRANSFORM_GRAPH_DIR),
    "--examples",
    str(TESTDATA / "raw_examples"),
    "--locator-feature",
    "product",
    "--offending-examples-limit",
    "3",
    "--split",
    "eval",
]


@pytest.mark.parametrize("runner", ["in_process", "beam"])
def test_raw_mode_locates_the_raw_record_and_writes_raw_examples(tmp_path, capsys, runner):
    # testdata/raw_examples, eval: records 2 and 3 are reykjavik, 4 tallinn, 5 the
    # empty city, 6 vienna: none in the 25-city vocabulary, so city_xf is -1.
    beam_args = ["--beam-pipeline-arg=--runner=DirectRunner"] if runner == "beam" else []
    code = cli.main([*RAW_CHECK, *beam_args, "--output", str(tmp_path / "out")])
    assert code == 1
    out = " ".join(capsys.readouterr().out.split())
    assert (
        "first at Split-eval/data_tfrecord-00000-of-00001.gz record 2, product=product_99 "
        "(value -1; records count from 0)"
    ) in out
    from embedding_guard.reports import report_io

    report = report_io.read_split_report(str(tmp_path / "out" / "Split-eval"))
    city = report.feature("city_xf")
    negative = next(f for f in city.findings if f.reason.value == "NEGATIVE_INDEX")
    assert negative.sample_values[0][0] == -1
    assert negative.sample_locations[0] == locations.Location(
        "data_tfrecord-00000-of-00001.gz", 2, 0, "product_99", "product"
    )
    raw = _records(
        str(TESTDATA / "raw_examples" / "Split-eval" / "data_tfrecord-00000-of-00001.gz")
    )
    written = _records(
        str(tmp_path / "out" / "Split-eval" / "offending_examples" / "city_xf.tfrecord.gz")
    )
    assert written == raw[2:5]


@pytest.fixture(scope="module")
def taxi_without_oov_buckets(tmp_path_factory):
    from tft_graphs import built_taxi_graph

    return built_taxi_graph(str(tmp_path_factory.mktemp("taxi_oov0")), num_oov_buckets=0)


@pytest.mark.slow
def test_taxi_without_oov_buckets_names_the_first_minus_one_and_writes_it(
    taxi_without_oov_buckets, tmp_path, capsys
):
    # The "done when": TFX's taxi preprocessing_fn with num_oov_buckets=0,
    # so a company missing from the vocabulary (the empty one) becomes -1.
    taxi = taxi_without_oov_buckets
    code = cli.main(
        [
            "check",
            "--transform-graph",
            taxi["graph"],
            "--examples",
            taxi["examples"],
            "--split",
            "eval",
            "--offending-examples",
            str(tmp_path / "offending"),
        ]
    )
    out = capsys.readouterr().out
    assert code == 1

    from embedding_guard.bounds import transform_graph

    derivation = transform_graph.load_transform_graph(taxi["graph"]).derivations["company_xf"]
    assert derivation.num_oov_buckets == 0
    with open(derivation.vocabulary_file, "rb") as f:
        vocabulary = {line for line in f.read().split(b"\n") if line}
    split_dir = os.path.join(taxi["examples"], "Split-eval")
    (shard,) = os.listdir(split_dir)
    records = _records(os.path.join(split_dir, shard))

    def company(record: bytes) -> bytes:
        values = _values(record, "company")
        return values[0] if values else b""

    unseen = [i for i, record in enumerate(records) if company(record) not in vocabulary]
    assert unseen, "the eval split has companies the vocabulary lacks"
    line = f"first at Split-eval/{shard} record {unseen[0]:,} (value -1"
    company_block = out[out.index("'company_xf' in split 'eval'") :]
    assert line in " ".join(company_block.split()), out

    written = _records(
        str(tmp_path / "offending" / "Split-eval" / "offending_examples" / "company_xf.tfrecord.gz")
    )
    assert written == [records[i] for i in unseen[:10]]
    assert {company(record) for record in written} == {b""}


def test_junit_failures_name_the_first_place(in_process):
    from embedding_guard.reports import junit

    document = junit.junit_document(in_process[0].reports.values()).decode()
    assert "first at Split-eval/part-" in document


def test_the_component_writes_offending_examples_under_the_anomalies_artifact(tmp_path):
    from component_testlib import EXAMPLES_DIR, input_digests, run_executor

    before = input_digests()
    options = ValidatorOptions(offending_examples_limit=2, locator_feature="age_xf").validate()
    run_executor(tmp_path / "anomalies", options.to_exec_properties())

    # testdata/make_examples.py: eval city_xf is -1 in records 1, 4 and 8.
    shard = "transformed_examples-00000-of-00001.gz"
    eval_records = _records(str(EXAMPLES_DIR / "Split-eval" / shard))
    folder = tmp_path / "anomalies" / "Split-eval" / offending_examples.OFFENDING_EXAMPLES_DIR
    written = _records(str(folder / "city_xf.tfrecord.gz"))
    assert written == [eval_records[1], eval_records[4]]
    assert not (tmp_path / "anomalies" / "Split-train" / "offending_examples").exists()
    assert input_digests() == before


def test_offending_examples_inside_an_input_is_refused_before_reading(capsys):
    from component_testlib import EXAMPLES_DIR, check_testdata, input_digests

    before = input_digests()
    target = EXAMPLES_DIR / "Split-eval" / "mine"
    code = check_testdata("--offending-examples", target)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and "--offending-examples" in err[0] and "--examples" in err[0], err
    assert not target.exists()
    assert input_digests() == before


@pytest.mark.parametrize(
    ("examples_dir", "locator", "valid"),
    [
        # A transformed name in raw mode: raw examples hold only raw features.
        ("raw_examples", "city_xf", "'city'"),
        ("transformed_examples", "nosuch", "'city_xf'"),
    ],
)
def test_a_locator_feature_the_examples_lack_is_refused(capsys, examples_dir, locator, valid):
    code = cli.main(
        [
            "check",
            "--transform-graph",
            str(TRANSFORM_GRAPH_DIR),
            "--examples",
            str(TESTDATA / examples_dir),
            "--locator-feature",
            locator,
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and f"--locator-feature {locator!r}" in err[0] and valid in err[0], err


def test_the_api_refuses_a_misspelt_locator_feature(examples, tmp_path):
    options = ValidatorOptions(locator_feature="record_ld").validate()
    split_uris = {split: os.path.join(examples, f"Split-{split}") for split in SPLITS}
    with pytest.raises(InputError, match=r"locator_feature 'record_ld' .*'record_id'"):
        orchestration.validate(
            split_uris, {s: str(tmp_path / s) for s in SPLITS}, options, schema=_schema()
        )
