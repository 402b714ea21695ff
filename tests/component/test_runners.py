"""The executor gives the same counts on every Beam runner it has to run on.

The checked-in testdata (splits train, eval, test; see component_testlib) goes
through `Executor.Do` with each runner's `beam_pipeline_args`:

  direct_in_memory         DirectRunner, bundles run in this process.
  direct_multi_processing  DirectRunner with 2 worker processes.
  portable_embed           PortableRunner with the embedded job service: the
                           pipeline crosses the Runner API and the SDK worker talks
                           the Fn API over gRPC, as on Dataflow, Flink and Spark.
                           LOOPBACK runs that worker in this process; the default
                           environment (DOCKER) needs a Docker engine.

Each runner's counts must match counts made here independently, record by record
with tf.train.Example, and equal in full (min, max, top offending values) those of
a run without beam_pipeline_args.
"""

from __future__ import annotations

import collections
import json

import pytest
import tensorflow as tf
from component_testlib import EXAMPLES_DIR, TRANSFORM_GRAPH_DIR, VALUE_COUNT_KEYS, run_executor

from embedding_guard.bounds import resolve as bounds_lib
from embedding_guard.bounds import transform_graph

SPLITS = ("train", "eval", "test")
EMBEDDING_INPUT_DIMS = {"month_xf": 12}
RUNNER_ARGS = {
    "direct_in_memory": ["--runner=DirectRunner", "--direct_running_mode=in_memory"],
    "direct_multi_processing": [
        "--runner=DirectRunner",
        "--direct_running_mode=multi_processing",
        "--direct_num_workers=2",
    ],
    "portable_embed": [
        "--runner=PortableRunner",
        "--job_endpoint=embed",
        "--environment_type=LOOPBACK",
    ],
}


def _validate(output_dir, beam_pipeline_args) -> dict[str, dict]:
    run_executor(
        output_dir,
        {"embedding_input_dims": json.dumps(EMBEDDING_INPUT_DIMS)},
        splits=SPLITS,
        beam_pipeline_args=beam_pipeline_args,
    )
    reports = {}
    for split in SPLITS:
        report_path = output_dir / f"Split-{split}" / "index_report.json"
        report = json.loads(report_path.read_text())
        reports[split] = {f["feature"]: f["counts"] for f in report["features"]}
    return reports


@pytest.fixture(scope="module", params=sorted(RUNNER_ARGS))
def runner_counts(request, tmp_path_factory):
    output_dir = tmp_path_factory.mktemp(request.param)
    return request.param, _validate(output_dir, RUNNER_ARGS[request.param])


def _records(split: str):
    split_dir = EXAMPLES_DIR / f"Split-{split}"
    for shard in sorted(split_dir.iterdir()):
        compression = "GZIP" if shard.read_bytes()[:2] == b"\x1f\x8b" else ""
        dataset = tf.data.TFRecordDataset(str(shard), compression_type=compression)
        for record in dataset.as_numpy_iterator():
            yield tf.train.Example.FromString(record)


@pytest.fixture(scope="module")
def expected_counts() -> dict[str, dict[str, collections.Counter]]:
    graph = transform_graph.load_transform_graph(str(TRANSFORM_GRAPH_DIR))
    feature_bounds = bounds_lib.resolve_bounds(
        graph.schema, graph.vocabulary_sizes, embedding_input_dims=EMBEDDING_INPUT_DIMS
    )
    expected = {}
    for split in SPLITS:
        counts = {b.feature: collections.Counter() for b in feature_bounds}
        for example in _records(split):
            for b in feature_bounds:
                feature = example.features.feature.get(b.feature)
                kind = None if feature is None else feature.WhichOneof("kind")
                values = list(getattr(feature, kind).value) if kind else []
                count = counts[b.feature]
                count["num_examples"] += 1
                count["num_values"] += len(values)
                count["missing"] += not values
                vocab_end = b.upper_bound if b.vocab_size is None else b.vocab_size
                for value in values:
                    if kind != "int64_list":
                        count["non_integer"] += 1
                        continue
                    if value < 0:
                        count["negative"] += 1
                    elif value < vocab_end:
                        count["in_range"] += 1
                        count["in_vocab"] += 1
                    elif value < b.upper_bound:
                        count["in_range"] += 1
                        count["oov_bucket"] += 1
                    else:
                        count["out_of_range"] += 1
                    count["over_embedding_dim"] += value >= b.embedding_input_dim
        for b in feature_bounds:
            if b.vocab_size is None:
                counts[b.feature]["in_vocab"] = counts[b.feature]["oov_bucket"] = None
        expected[split] = counts
    return expected


def test_counts_match_an_independent_count(runner_counts, expected_counts):
    runner, reports = runner_counts
    for split in SPLITS:
        assert set(reports[split]) == set(expected_counts[split]), (runner, split)
        for feature, expected in expected_counts[split].items():
            actual = {key: reports[split][feature][key] for key in VALUE_COUNT_KEYS}
            assert actual == {key: expected[key] for key in VALUE_COUNT_KEYS}, (
                runner,
                split,
                feature,
            )


def test_testdata_exercises_every_kind_of_value(expected_counts):
    # Guards the test above against data too clean to tell runners apart.
    totals = collections.Counter()
    for counts in expected_counts.values():
        for count in counts.values():
            totals.update({key: value for key, value in count.items() if value is not None})
    for key in ("missing", "negative", "oov_bucket", "out_of_range", "over_embedding_dim"):
        assert totals[key] > 0, key
    assert totals["non_integer"] > 0


@pytest.fixture(scope="module")
def default_counts(tmp_path_factory) -> dict[str, dict]:
    # No beam_pipeline_args: what a pipeline gets when it sets none.
    return _validate(tmp_path_factory.mktemp("default"), None)


def test_every_runner_reports_identical_counts(runner_counts, default_counts):
    runner, reports = runner_counts
    assert reports == default_counts, runner
