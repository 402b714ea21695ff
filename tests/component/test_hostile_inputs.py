"""Bad inputs: each one gives a finding in the report or an error that says what to do.

Never a bare traceback, never a silent pass. Every bad input is made in tmp_path
from the checked-in good testdata (see component_testlib). Errors are checked
through the command line (`embedding-guard check` exits 2 with one
`embedding-guard: error:` line naming the file, feature or parameter), through
the executor on fake artifacts (an InputError) or at component construction.
Cases that give findings share Beam runs, since each run costs a second or two.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import pytest
import tensorflow as tf
import tfx
from component_testlib import (
    COUNT_KEYS,
    EXAMPLES_DIR,
    TRANSFORM_GRAPH_DIR,
    expected_counts,
    file_digests,
)
from tfx.components.util import examples_utils
from tfx.dsl.io import fileio
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils, channel, standard_artifacts

from embedding_guard.cli import main as cli
from embedding_guard.component import EmbeddingIndexValidator
from embedding_guard.component.executor import Executor
from embedding_guard.errors import InputError
from embedding_guard.run.options import ValidatorOptions

I64_MIN, I64_MAX = -(2**63), 2**63 - 1
ASSETS = Path("transform_fn", "assets")
EVAL_SHARD = EXAMPLES_DIR / "Split-eval" / "transformed_examples-00000-of-00001.gz"
TRAIN_SHARD = EXAMPLES_DIR / "Split-train" / "transformed_examples-00000-of-00002.gz"
CHECKED = ["--feature", "city_xf", "--feature", "product_xf"]


# --- helpers -------------------------------------------------------------------------------


@dataclasses.dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str


def run_cli(capsys, *argv: str) -> CliResult:
    capsys.readouterr()
    code = cli.main([str(arg) for arg in argv])
    captured = capsys.readouterr()
    return CliResult(code, captured.out, captured.err)


def check(capsys, examples, *extra, graph=TRANSFORM_GRAPH_DIR) -> CliResult:
    return run_cli(capsys, "check", "--transform-graph", graph, "--examples", examples, *extra)


def assert_usage_error(result: CliResult, *fragments: str) -> None:
    """Exit 2, one clean error line on stderr holding every fragment, nothing on stdout."""
    assert result.code == cli.EXIT_USAGE, result
    assert result.stderr.startswith("embedding-guard: error: "), result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in result.stderr, (fragment, result.stderr)


def feature(values: list) -> tf.train.Feature:
    """An int64, float or bytes feature, by the type of the first value (int64 if empty)."""
    if values and isinstance(values[0], float):
        return tf.train.Feature(float_list=tf.train.FloatList(value=values))
    if values and isinstance(values[0], bytes):
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=values))
    return tf.train.Feature(int64_list=tf.train.Int64List(value=values))


def example(**features: list) -> tf.train.Example:
    return tf.train.Example(
        features=tf.train.Features(feature={k: feature(v) for k, v in features.items()})
    )


def write_shard(path: Path, records, gzip: bool = True) -> Path:
    """Writes protos (or raw bytes) as one TFRecord file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tf.io.TFRecordWriter(str(path), "GZIP" if gzip else "") as writer:
        for record in records:
            writer.write(record if isinstance(record, bytes) else record.SerializeToString())
    return path


def copy_graph(tmp_path: Path, name: str = "transform_graph") -> Path:
    graph = tmp_path / name
    shutil.copytree(TRANSFORM_GRAPH_DIR, graph)
    return graph


def _console_check(transform_graph: Path, examples: Path) -> subprocess.CompletedProcess:
    """Runs `embedding-guard check` as its own process (the console script), with a timeout."""
    command = Path(sys.executable).with_name("embedding-guard")
    return subprocess.run(
        [command, "check", "--transform-graph", transform_graph, "--examples", examples],
        capture_output=True,
        text=True,
        timeout=300,
    )


def copy_split(tmp_path: Path, split: str = "eval", name: str | None = None) -> Path:
    """Copies a checked-in split into tmp_path/examples/Split-<name>; returns the examples dir."""
    examples = tmp_path / "examples"
    shutil.copytree(EXAMPLES_DIR / f"Split-{split}", examples / f"Split-{name or split}")
    return examples


def report(output: Path, split: str) -> dict:
    return json.loads((output / f"Split-{split}" / "index_report.json").read_text())


def feature_report(output: Path, split: str, name: str) -> dict:
    (found,) = [f for f in report(output, split)["features"] if f["feature"] == name]
    return found


def findings(output: Path, split: str, name: str) -> list[tuple[str, str]]:
    return [(f["reason"], f["severity"]) for f in feature_report(output, split, name)["findings"]]


# --- transform_graph artifacts -------------------------------------------------------------


def test_transform_graph_without_transformed_metadata(tmp_path, capsys):
    graph = copy_graph(tmp_path)
    shutil.rmtree(graph / "transformed_metadata")

    result = check(capsys, EXAMPLES_DIR, graph=graph)

    assert_usage_error(
        result,
        repr(str(graph / "transformed_metadata" / "schema.pbtxt")),
        "Pass the `transform_graph` output of a Transform component",
    )


def test_transform_graph_with_unparsable_schema(tmp_path, capsys):
    graph = copy_graph(tmp_path)
    (graph / "transformed_metadata" / "schema.pbtxt").write_text("feature { name: ")

    result = check(capsys, EXAMPLES_DIR, graph=graph)

    assert_usage_error(
        result,
        repr(str(graph / "transformed_metadata" / "schema.pbtxt")),
        "is not a text Schema proto",
        "re-run Transform",
    )


def test_missing_vocabulary_file_names_the_vocabulary_and_folder(tmp_path, capsys):
    graph = copy_graph(tmp_path)
    (graph / ASSETS / "city").unlink()

    result = check(capsys, EXAMPLES_DIR, graph=graph)

    assert_usage_error(
        result,
        "Vocabulary 'city'",
        f"has no file in {str(graph / ASSETS)!r}",
        "restore the transform_fn/assets folder",
    )


def test_empty_vocabulary_file_is_an_error(tmp_path, capsys):
    # Read as 0 entries, the 25 rows of city_xf's int_domain would pass as 25 OOV buckets.
    graph = copy_graph(tmp_path)
    (graph / ASSETS / "city").write_bytes(b"")

    result = check(capsys, EXAMPLES_DIR, graph=graph)

    assert_usage_error(
        result, f"Vocabulary 'city' ({str(graph / ASSETS / 'city')!r}) is empty", "re-run Transform"
    )


def _write_tfrecord_vocabulary(graph: Path, name: str, entries: list[bytes]) -> Path:
    # As tft.vocabulary(file_format='tfrecord_gzip') writes it: one record per
    # entry, and asset_map pointing at the .tfrecord.gz file.
    (graph / ASSETS / name).unlink()
    path = write_shard(graph / ASSETS / f"{name}.tfrecord.gz", entries)
    asset_map = graph / "transformed_metadata" / "asset_map"
    mapping = json.loads(asset_map.read_text())
    mapping[name] = f"{name}.tfrecord.gz"
    asset_map.write_text(json.dumps(mapping))
    return path


@pytest.mark.parametrize("file_format", ["text", "tfrecord_gzip"])
def test_duplicate_vocabulary_entry_is_an_error_naming_the_first_one(tmp_path, capsys, file_format):
    # product has 2 OOV buckets, so a 41st line would silently shift the bounds to
    # 41 entries + 1 bucket; TensorFlow cannot build a lookup table from it at all.
    graph = copy_graph(tmp_path)
    lines = (graph / ASSETS / "product").read_bytes().splitlines()
    entries = [*lines[:10], lines[3], *lines[10:]]
    if file_format == "text":
        path = graph / ASSETS / "product"
        path.write_bytes(b"\n".join(entries) + b"\n")
        unit = "lines"
    else:
        path = _write_tfrecord_vocabulary(graph, "product", entries)
        unit = "records"

    result = check(capsys, EXAMPLES_DIR, graph=graph)

    assert_usage_error(
        result,
        f"Vocabulary 'product' ({str(path)!r}) holds {lines[3]!r} twice ({unit} 4 and 11)",
        "HashTable has different value for same key",
        "re-run Transform",
    )


@pytest.fixture(scope="module")
def odd_vocabulary_run(tmp_path_factory):
    """city with non-UTF-8 entries (text), product as a tfrecord_gzip vocabulary."""
    tmp_path = tmp_path_factory.mktemp("odd_vocabularies")
    graph = copy_graph(tmp_path)
    city = (graph / ASSETS / "city").read_bytes().splitlines()
    city[0], city[7] = b"\xff\xfe caf\xe9", b"\x80"
    (graph / ASSETS / "city").write_bytes(b"\n".join(city) + b"\n")
    product = (graph / ASSETS / "product").read_bytes().splitlines()
    _write_tfrecord_vocabulary(graph, "product", product)
    output = tmp_path / "reports"
    code = cli.main(
        ["check", "--transform-graph", str(graph), "--examples", str(EXAMPLES_DIR)]
        + ["--split", "train", "--output", str(output)]
    )
    return code, output


def test_non_utf8_and_tfrecord_gzip_vocabularies_are_read(odd_vocabulary_run):
    code, output = odd_vocabulary_run
    bounds = {
        name: feature_report(output, "train", name)["bounds"] for name in ("city_xf", "product_xf")
    }
    assert [(b["vocab_size"], b["num_oov_buckets"], b["upper_bound"]) for b in bounds.values()] == [
        (25, 0, 25),
        (40, 2, 42),
    ]
    # The train split is clean (test_executor.py), whatever the vocabularies' encoding.
    assert code == cli.EXIT_CLEAN
    assert report(output, "train")["num_errors"] == 0


def test_transform_graph_of_another_pipeline_is_an_error_listing_both_sides(tmp_path, capsys):
    graph = copy_graph(tmp_path)
    for schema in (graph / "transformed_metadata", graph / "metadata"):
        text = (schema / "schema.pbtxt").read_text()
        (schema / "schema.pbtxt").write_text(text.replace('name: "', 'name: "other_'))

    result = check(capsys, EXAMPLES_DIR, graph=graph)

    assert_usage_error(
        result,
        "The examples hold neither the transformed nor the raw features of this transform graph",
        "'other_city_xf'",
        "'city_xf'",
    )


def test_a_first_example_with_no_features_is_checked_not_refused(tmp_path, capsys):
    # Zero configuration decides raw or transformed from the first example; one
    # whose every value is null says nothing either way, and is no bad input.
    records = [example().SerializeToString()] + [
        record.numpy() for record in tf.data.TFRecordDataset(str(EVAL_SHARD), "GZIP")
    ]
    examples = tmp_path / "examples"
    write_shard(examples / "Split-eval" / "shard.gz", records)
    plain = tmp_path / "plain"
    write_shard(plain / "Split-eval" / "shard.gz", records[1:])
    output = tmp_path / "out"

    first_empty = check(capsys, examples, "--output", output, *CHECKED)
    as_shipped = check(capsys, plain, "--output", tmp_path / "plain_out", *CHECKED)

    assert first_empty.code == as_shipped.code != cli.EXIT_USAGE, first_empty
    assert report(output, "eval")["num_examples"] == len(records)
    shipped = feature_report(tmp_path / "plain_out", "eval", "city_xf")["counts"]
    assert feature_report(output, "eval", "city_xf")["counts"]["missing"] == shipped["missing"] + 1


def test_a_schema_holding_none_of_the_features_is_an_error_naming_the_schema(tmp_path, capsys):
    schema = tmp_path / "schema.pbtxt"
    text = (TRANSFORM_GRAPH_DIR / "transformed_metadata" / "schema.pbtxt").read_text()
    schema.write_text(text.replace('name: "', 'name: "other_'))

    result = run_cli(capsys, "check", "--schema", schema, "--examples", EXAMPLES_DIR)

    assert_usage_error(
        result, "The examples hold none of the schema's features", "'other_city_xf'", "'city_xf'"
    )


def test_feature_of_the_graph_absent_from_the_examples_is_a_blocking_finding(tmp_path, capsys):
    graph = copy_graph(tmp_path)
    schema = graph / "transformed_metadata" / "schema.pbtxt"
    schema.write_text(schema.read_text().replace('"city_xf"', '"town_xf"'))
    output = tmp_path / "reports"

    result = check(capsys, EXAMPLES_DIR, "--split", "train", "--output", output, graph=graph)

    assert result.code == cli.EXIT_BLOCKED
    assert findings(output, "train", "town_xf") == [("FEATURE_MISSING_FROM_SPLIT", "ERROR")]
    assert feature_report(output, "train", "town_xf")["counts"]["missing"] == 20
    assert "FEATURE_MISSING_FROM_SPLIT" in result.stdout


# --- examples artifacts --------------------------------------------------------------------


def test_examples_folder_without_splits(tmp_path, capsys):
    (tmp_path / "examples" / "train").mkdir(parents=True)

    result = check(capsys, tmp_path / "examples")

    assert_usage_error(result, "holds no Split-<name> folders")


def test_split_holding_only_an_empty_shard_is_a_warning_finding(tmp_path, capsys):
    write_shard(tmp_path / "examples" / "Split-serving" / "part-00000.gz", [])
    output = tmp_path / "reports"

    result = check(capsys, tmp_path / "examples", "--output", output)

    split_report = report(output, "serving")
    assert split_report["num_examples"] == 0
    assert [(f["reason"], f["severity"]) for f in split_report["split_findings"]] == [
        ("EMPTY_SPLIT", "WARNING")
    ]
    assert "WARNING EMPTY_SPLIT: Split 'serving' has no examples" in result.stdout
    assert result.code == cli.EXIT_CLEAN


def test_split_folder_without_shards_is_an_error(tmp_path, capsys):
    examples = copy_split(tmp_path, "train")
    empty = examples / "Split-eval"
    empty.mkdir()

    result = check(capsys, examples)

    assert_usage_error(result, f"Split folder {str(empty)!r} holds no shard files")


def test_folder_among_the_shards_is_an_error(tmp_path, capsys):
    # TFX's Trainer globs `<split>/*` and fails on a folder there ("Is a directory").
    examples = copy_split(tmp_path, "eval")
    (examples / "Split-eval" / "part-00001.gz").mkdir()

    result = check(capsys, examples)

    assert_usage_error(
        result, "holds entries that are not regular files: 'part-00001.gz' (a folder)"
    )


def _truncated(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 2 // 3])


def _flipped(path: Path) -> None:
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 16] = bytes(16)
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    ("damage", "expected"),
    [(_truncated, "is truncated or corrupt"), (_flipped, "is truncated or corrupt")],
)
def test_damaged_gzip_shard_is_named(tmp_path, capsys, damage, expected):
    # The damaged shard comes second, after a good one of the same split.
    examples = copy_split(tmp_path, "train")
    bad = examples / "Split-train" / "transformed_examples-00001-of-00002.gz"
    bad.unlink(missing_ok=True)
    shutil.copy(EVAL_SHARD, bad)
    damage(bad)

    result = check(capsys, examples)

    assert_usage_error(result, f"Shard {str(bad)!r} {expected}", "Re-run the component")


def test_installed_command_prints_one_error_line_for_a_damaged_shard(tmp_path):
    # Beam logs every exception raised in a DoFn with its traceback; the command
    # must show the user the one line that names the shard, nothing else.
    examples = copy_split(tmp_path, "train")
    bad = examples / "Split-train" / "z.gz"
    shutil.copy(EVAL_SHARD, bad)
    _truncated(bad)

    done = _console_check(TRANSFORM_GRAPH_DIR, examples)

    assert done.returncode == cli.EXIT_USAGE
    assert done.stderr.startswith(f"embedding-guard: error: Shard {str(bad)!r} is truncated")
    assert done.stderr.count("\n") == 1, done.stderr


def test_file_that_is_not_tfrecords_is_named(tmp_path, capsys):
    examples = copy_split(tmp_path, "train")
    bad = examples / "Split-train" / "notes.txt"
    bad.write_text("these are not the examples you are looking for\n" * 20)

    result = check(capsys, examples)

    assert_usage_error(result, f"Shard {str(bad)!r} cannot be read as TFRecords")


def test_shard_that_cannot_be_opened_is_named(tmp_path, capsys):
    examples = copy_split(tmp_path, "train")
    dangling = examples / "Split-train" / "transformed_examples-00002-of-00002.gz"
    dangling.symlink_to(tmp_path / "deleted.gz")

    result = check(capsys, examples)

    assert_usage_error(result, f"Shard {str(dangling)!r} cannot be opened")


# Records that are not protocol buffers; TensorFlow's error message for the
# second one is not UTF-8.
NOT_PROTOS = [b"garbage!", b"\xff\xff\xff"]


@pytest.mark.parametrize("record", NOT_PROTOS)
def test_first_record_that_is_not_an_example_is_named(tmp_path, capsys, record):
    bad = write_shard(tmp_path / "examples" / "Split-train" / "part-0.gz", [record])

    result = check(capsys, tmp_path / "examples")

    assert_usage_error(result, f"The first record of shard {str(bad)!r} is not a serialized")


@pytest.mark.parametrize("record", NOT_PROTOS)
def test_later_record_that_is_not_an_example_is_named(tmp_path, capsys, record):
    bad = write_shard(
        tmp_path / "examples" / "Split-train" / "part-0.gz",
        [example(city_xf=[1], product_xf=[1]), record],
    )

    result = check(capsys, tmp_path / "examples", *CHECKED)

    assert_usage_error(
        result, f"Shard {str(bad)!r}: record 1 of a batch is not a serialized tf.Example"
    )


def _sequence_example(context: dict, feature_lists: dict) -> tf.train.SequenceExample:
    sequence = tf.train.SequenceExample()
    for name, values in context.items():
        sequence.context.feature[name].CopyFrom(feature(values))
    for name, steps in feature_lists.items():
        for values in steps:
            sequence.feature_lists.feature_list[name].feature.add().CopyFrom(feature(values))
    return sequence


def test_sequence_examples_with_indices_in_feature_lists_are_an_error(tmp_path, capsys):
    shard = write_shard(
        tmp_path / "examples" / "Split-train" / "part-0.gz",
        [_sequence_example({"city_xf": [3]}, {"product_xf": [[1], [2, 99]]})] * 3,
    )

    result = check(capsys, tmp_path / "examples", *CHECKED)

    assert_usage_error(
        result,
        f"Shard {str(shard)!r} holds tf.SequenceExample records",
        "the checked features ['product_xf'] are in their feature_lists",
    )


def _executor_artifacts(tmp_path: Path, split_names: list[str], examples_uri=EXAMPLES_DIR):
    examples = standard_artifacts.Examples()
    examples.uri = str(examples_uri)
    examples.split_names = json.dumps(split_names)
    graph = standard_artifacts.TransformGraph()
    graph.uri = str(TRANSFORM_GRAPH_DIR)
    anomalies = standard_artifacts.ExampleAnomalies()
    anomalies.uri = str(tmp_path / "anomalies")
    return examples, graph, anomalies


def _do(examples, graph, anomalies, **exec_properties) -> None:
    properties = {key: json.dumps(value) for key, value in exec_properties.items()}
    Executor().Do(
        {"examples": [examples], "transform_graph": [graph]},
        {"anomalies": [anomalies]},
        properties,
    )


def test_sequence_example_payload_format_is_refused_by_the_executor(tmp_path):
    examples, graph, anomalies = _executor_artifacts(tmp_path, ["train"])
    examples_utils.set_payload_format(examples, example_gen_pb2.FORMAT_TF_SEQUENCE_EXAMPLE)

    with pytest.raises(InputError, match="holds FORMAT_TF_SEQUENCE_EXAMPLE.*tf.Example"):
        _do(examples, graph, anomalies)
    assert not (tmp_path / "anomalies").exists()


def test_examples_artifact_without_splits_is_refused_by_the_executor(tmp_path):
    examples, graph, anomalies = _executor_artifacts(tmp_path, [])

    with pytest.raises(
        InputError, match=r"examples artifact .* \(split_names '\[\]'\) has no splits"
    ):
        _do(examples, graph, anomalies)


@pytest.mark.parametrize("split", ["../../elsewhere", "with space", "-dash", "Split-train/x"])
def test_split_names_tfx_rejects_are_refused_by_the_executor(tmp_path, split):
    # The names become output folder names: "../../elsewhere" must not be written to.
    examples, graph, anomalies = _executor_artifacts(tmp_path, ["train", split])

    with pytest.raises(InputError) as raised:
        _do(examples, graph, anomalies)

    assert f"examples artifact {str(EXAMPLES_DIR)!r} has split_names" in str(raised.value)
    assert repr(split) in str(raised.value)
    assert "Split names are expected to be alphanumeric" in str(raised.value)
    assert not (tmp_path / "anomalies").exists()


def test_split_names_tfx_rejects_are_read_and_escaped_by_the_cli(tmp_path, capsys):
    # Outside TFX a folder name is just data: it is validated, and shown escaped.
    examples = copy_split(tmp_path, "eval", name="new span \x1b[2J")

    result = check(capsys, examples)

    assert result.code == cli.EXIT_BLOCKED
    assert "split new span \\x1b[2J: 20 examples" in result.stdout
    assert "\x1b" not in result.stdout


# --- values --------------------------------------------------------------------------------

# Split -> shards, each (file name, records). Expected counts below are worked
# out by hand against city_xf [0, 25) (no OOV bucket) and product_xf [0, 42)
# (40 entries + 2 OOV buckets).
VALUE_SPLITS = {
    "extremes": [
        (
            "part-0.gz",
            [
                example(city_xf=[I64_MIN, 0, I64_MAX], product_xf=[I64_MAX]),
                example(city_xf=[24], product_xf=[I64_MIN, 41]),
            ],
        )
    ],
    # Kinds vary between the examples of one batch: the reader falls back to
    # parsing them one by one, and the int64 values are still checked.
    "kinds": [
        (
            "part-0.gz",
            [
                example(city_xf=[3], product_xf=[1.5]),
                example(city_xf=[b"7"], product_xf=[2.5, 2.5]),
                example(city_xf=[7.0], product_xf=[b"x"]),
                example(city_xf=[30], product_xf=[5]),
            ],
        )
    ],
    "partial": [
        (
            "part-0.gz",
            [
                example(city_xf=[1]),
                example(product_xf=[1]),
                example(),
                example(city_xf=[], product_xf=[]),
            ],
        )
    ],
    "huge": [
        (
            "part-0.gz",
            [
                example(city_xf=list(range(25)) * 10_000, product_xf=[0]),
                example(city_xf=[-1, -1, -1, 25], product_xf=[0]),
            ],
        )
    ],
    "mixed_compression": [
        ("part-0.gz", [example(city_xf=[1], product_xf=[40])]),
        ("part-1", [example(city_xf=[2], product_xf=[41])]),
        ("part-2.gz", []),
    ],
    # A SequenceExample's context is read as tf.Example features; the sequence
    # feature (not a checked one) is invisible.
    "sequence_context": [
        (
            "part-0",
            [_sequence_example({"city_xf": [5], "product_xf": [6]}, {"history_xf": [[1], [2]]})]
            * 2,
        )
    ],
}


@pytest.fixture(scope="module")
def value_run(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("values")
    for split, shards in VALUE_SPLITS.items():
        for name, records in shards:
            write_shard(
                tmp_path / "examples" / f"Split-{split}" / name, records, name.endswith("gz")
            )
    output = tmp_path / "reports"
    code = cli.main(
        ["check", "--transform-graph", str(TRANSFORM_GRAPH_DIR)]
        + ["--examples", str(tmp_path / "examples"), "--output", str(output), *CHECKED]
    )
    return code, output


def counts(output: Path, split: str, name: str) -> dict:
    """The COUNT_KEYS of a feature's report, to compare with expected_counts.

    The features checked here have vocabularies, so what is in range is what is in
    the vocabulary or in an OOV bucket.
    """
    actual = feature_report(output, split, name)["counts"]
    return {key: actual[key] for key in COUNT_KEYS}


def test_value_run_blocks(value_run):
    code, _ = value_run
    assert code == cli.EXIT_BLOCKED


def test_int64_min_and_max_are_counted_exactly(value_run):
    _, output = value_run
    assert counts(output, "extremes", "city_xf") == expected_counts(
        2, 4, 2, I64_MIN, I64_MAX, negative=1, out_of_range=1, over_embedding_dim=1
    )
    assert counts(output, "extremes", "product_xf") == expected_counts(
        2, 3, 0, I64_MIN, I64_MAX, negative=1, oov_bucket=1, out_of_range=1, over_embedding_dim=1
    )
    city = feature_report(output, "extremes", "city_xf")["counts"]
    assert city["top_offending_values"] == [
        {"value": I64_MIN, "count": 1},
        {"value": I64_MAX, "count": 1},
    ]
    # The embedding input_dim defaults to the range, so "over the dim" adds no finding.
    assert findings(output, "extremes", "city_xf") == [
        ("NEGATIVE_INDEX", "ERROR"),
        ("INDEX_OUT_OF_RANGE", "ERROR"),
    ]


def test_float_and_bytes_values_are_non_integer_findings_and_ints_beside_them_are_checked(
    value_run,
):
    _, output = value_run
    assert counts(output, "kinds", "city_xf") == expected_counts(
        4, 4, 1, 3, 30, out_of_range=1, over_embedding_dim=1, non_integer=2
    )
    assert counts(output, "kinds", "product_xf") == expected_counts(4, 5, 1, 5, 5, non_integer=4)
    product = feature_report(output, "kinds", "product_xf")["counts"]
    assert product["top_non_integer_values"] == [
        {"value": "2.5", "count": 2},
        {"value": "1.5", "count": 1},
        {"value": "x", "count": 1},
    ]
    assert findings(output, "kinds", "product_xf") == [("NON_INTEGER_VALUES", "ERROR")]


def test_features_present_in_some_examples_only_count_as_missing_there(value_run):
    _, output = value_run
    for name in ("city_xf", "product_xf"):
        assert counts(output, "partial", name) == expected_counts(4, 1, 1, 1, 1, missing=3)
        # Missing in some examples is not a finding; missing in all is (see below).
        assert findings(output, "partial", name) == []


def test_huge_multivalent_list_is_counted_exactly(value_run):
    _, output = value_run
    assert counts(output, "huge", "city_xf") == expected_counts(
        2, 250_004, 250_000, -1, 25, negative=3, out_of_range=1, over_embedding_dim=1
    )
    city = feature_report(output, "huge", "city_xf")["counts"]
    assert (city["at_default"], city["vocab_entries_unseen"]) == (3, 0)


def test_gzip_and_uncompressed_shards_of_one_split_are_read_together(value_run):
    _, output = value_run
    assert counts(output, "mixed_compression", "product_xf") == expected_counts(
        2, 2, 0, 40, 41, oov_bucket=2
    )
    assert report(output, "mixed_compression")["num_examples"] == 2


def test_sequence_example_context_features_are_checked(value_run):
    _, output = value_run
    assert counts(output, "sequence_context", "city_xf") == expected_counts(2, 2, 2, 5, 5)


# --- parameters ----------------------------------------------------------------------------


def _channels() -> dict:
    return {
        "examples": channel.Channel(type=standard_artifacts.Examples),
        "transform_graph": channel.Channel(type=standard_artifacts.TransformGraph),
    }


@pytest.mark.parametrize(
    ("kwargs", "error", "expected"),
    [
        ({"exclude_splits": "eval"}, TypeError, "exclude_splits must be a list of names"),
        ({"exclude_splits": [3]}, TypeError, "exclude_splits must hold non-empty strings"),
        ({"features": "city_xf"}, TypeError, "features must be a list of names"),
        ({"embedding_input_dims": [("city_xf", 25)]}, TypeError, "must be a dict of feature"),
        (
            {"embedding_input_dims": {"city_xf": 0}},
            ValueError,
            "['city_xf'] must be a positive int",
        ),
        ({"embedding_input_dims": {"city_xf": -25}}, ValueError, "must be a positive int, got -25"),
        ({"embedding_input_dims": {"city_xf": 2.5}}, ValueError, "must be a positive int, got 2.5"),
        (
            {"embedding_input_dims": {"city_xf": True}},
            ValueError,
            "must be a positive int, got True",
        ),
        ({"embedding_input_dims": {"city_xf": "25"}}, ValueError, "positive int, got '25'"),
        ({"feature_vocabularies": {"city_xf": ""}}, ValueError, "must be a vocabulary name"),
        ({"fail_on_block": "yes"}, TypeError, "fail_on_block must be True or False"),
        ({"exclude_splits": ["eval/../x"]}, ValueError, "exclude_splits: Split names are expected"),
        ({"exclude_splits": ["with space"]}, ValueError, "got 'with space' instead"),
        ({"baseline_split": "-train"}, ValueError, "baseline_split: Split names are expected"),
        ({"examples_kind": "parquet"}, ValueError, "examples_kind must be one of"),
    ],
)
def test_bad_parameters_fail_at_construction(kwargs, error, expected):
    with pytest.raises(error) as raised:
        EmbeddingIndexValidator(**_channels(), **kwargs)
    assert expected in str(raised.value)


@pytest.mark.parametrize(
    ("exec_properties", "expected"),
    [
        (
            {"features": ["city_xf", "cty_xf"]},
            "features names ['cty_xf'], which the transformed schema lacks; valid names: "
            "'age_xf', 'city_xf', 'clicked', 'month_xf', 'product_xf'.",
        ),
        (
            {"embedding_input_dims": {"cty_xf": 25}},
            "embedding_input_dims names ['cty_xf'], which the transformed schema lacks; valid "
            "names: 'age_xf',",
        ),
        (
            {"feature_vocabularies": {"city_xf": "cities"}},
            "feature_vocabularies['city_xf'] = 'cities' is not a vocabulary of this transform "
            "graph; valid names: 'city', 'product'.",
        ),
        (
            {"exclude_splits": ["train", "eval", "test"]},
            "exclude_splits=['train', 'eval', 'test'] leaves no split",
        ),
    ],
)
def test_names_only_the_artifacts_know_fail_at_run_time_listing_the_valid_ones(
    tmp_path, exec_properties, expected
):
    # The component cannot see the transform graph or the splits when it is built.
    examples, graph, anomalies = _executor_artifacts(tmp_path, ["train", "eval", "test"])

    with pytest.raises(InputError) as raised:
        _do(examples, graph, anomalies, **exec_properties)

    assert expected in str(raised.value)
    assert not (tmp_path / "anomalies").exists()


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--feature", "cty_xf"], "--feature names ['cty_xf'], which the transformed schema"),
        (["--embedding-dim", "cty_xf=25"], "--embedding-dim names ['cty_xf'], which the"),
        (["--feature-vocabulary", "cty_xf=city"], "--feature-vocabulary names ['cty_xf'], which"),
        (["--feature-vocabulary", "city_xf=cities"], "valid names: 'city', 'product'."),
        (["--split", "evl"], "--split ['evl'] not found"),
    ],
)
def test_unknown_names_on_the_command_line(capsys, argv, expected):
    assert_usage_error(check(capsys, EXAMPLES_DIR, *argv), expected)


@pytest.mark.parametrize("value", ["city_xf=0", "city_xf=-3", "city_xf=2.5", "city_xf"])
def test_bad_embedding_dim_on_the_command_line(capsys, value):
    assert_usage_error(
        check(capsys, EXAMPLES_DIR, "--embedding-dim", value),
        "argument --embedding-dim: --embedding-dim",
    )


def test_unknown_excluded_split_is_logged_and_the_others_are_validated(tmp_path, caplog):
    examples, graph, anomalies = _executor_artifacts(tmp_path, ["train", "eval"])

    _do(examples, graph, anomalies, exclude_splits=["eval", "tets"])

    assert "exclude_splits names ['tets'], which examples artifact" in caplog.text
    assert artifact_utils.decode_split_names(anomalies.split_names) == ["train"]


# --- non-local filesystems -----------------------------------------------------------------


def _copy_to(source: Path, target: str) -> None:
    for directory, _, names in os.walk(source):
        relative = os.path.relpath(directory, source)
        folder = target if relative == "." else f"{target}/{relative}"
        fileio.makedirs(folder)
        for name in names:
            fileio.copy(os.path.join(directory, name), f"{folder}/{name}", overwrite=True)


@pytest.fixture
def ram_root():
    # TensorFlow's in-memory filesystem: every read and write must go through
    # tfx.dsl.io.fileio (or TensorFlow) for a run on it to work at all.
    root = f"ram://embedding-guard-{uuid.uuid4().hex}"
    _copy_to(TRANSFORM_GRAPH_DIR, f"{root}/transform_graph")
    _copy_to(EXAMPLES_DIR, f"{root}/examples")
    yield root
    fileio.rmtree(root)


def test_cli_reads_and_writes_a_non_local_filesystem(ram_root, capsys):
    result = run_cli(
        capsys,
        "check",
        "--transform-graph",
        f"{ram_root}/transform_graph",
        "--examples",
        f"{ram_root}/examples",
        "--output",
        f"{ram_root}/reports",
    )

    assert result.code == cli.EXIT_BLOCKED
    assert sorted(fileio.listdir(f"{ram_root}/reports")) == [
        "Split-eval",
        "Split-test",
        "Split-train",
    ]
    with fileio.open(f"{ram_root}/reports/Split-eval/index_report.json") as f:
        eval_report = json.loads(f.read())
    (city,) = [f for f in eval_report["features"] if f["feature"] == "city_xf"]
    assert (city["counts"]["negative"], city["bounds"]["vocab_size"]) == (3, 25)


def test_executor_reads_and_writes_a_non_local_filesystem(ram_root):
    examples, graph, anomalies = _executor_artifacts(
        Path("unused"), ["train", "eval"], examples_uri=f"{ram_root}/examples"
    )
    graph.uri = f"{ram_root}/transform_graph"
    anomalies.uri = f"{ram_root}/anomalies"

    _do(examples, graph, anomalies)

    assert anomalies.get_json_value_custom_property("blessed_by_split") == {"train": 1, "eval": 0}
    assert sorted(fileio.listdir(f"{ram_root}/anomalies/Split-train")) == [
        "SchemaDiff.pb",
        "index_report.html",
        "index_report.json",
    ]


# --- inputs stay untouched -----------------------------------------------------------------


def test_failed_runs_leave_their_inputs_untouched(tmp_path, capsys):
    examples = copy_split(tmp_path, "train")
    shutil.copy(EVAL_SHARD, examples / "Split-train" / "z.gz")
    _truncated(examples / "Split-train" / "z.gz")
    graph = copy_graph(tmp_path)
    before = file_digests(examples, graph, base=tmp_path)

    result = check(capsys, examples, "--output", tmp_path / "reports", graph=graph)

    assert result.code == cli.EXIT_USAGE
    assert file_digests(examples, graph, base=tmp_path) == before
    assert len(before) > 10
    # No report is written for a run that failed.
    assert not list((tmp_path / "reports").rglob("index_report.json"))


# --- hostile strings: HTML, ANSI escapes and JSON breakers in data -------------------------

HOSTILE = '<script>alert("x")</script>\x1b[31m\x1b]0;pwned\x07"},{"forged": 1} \\'
HOSTILE_FEATURE = f"{HOSTILE}_xf"
HOSTILE_SPLIT = "span <img src=x onerror=alert(1)> \x1b[2J"
# Control characters (tab, newline and carriage return aside) and DEL.
CONTROL = {chr(code) for code in [*range(32), 127]} - {"\t", "\n", "\r"}


def _assert_no_control_characters(text: str) -> None:
    assert not CONTROL & set(text), sorted(CONTROL & set(text))


def _raw_example(city: bytes) -> tf.train.Example:
    return example(product=[b"product_00"], city=[city], age=[30.0], month=[1])


@pytest.fixture(scope="module")
def hostile_runs(tmp_path_factory):
    """Hostile strings as a feature name, a split name, non-integer values and raw values."""
    from google.protobuf import text_format
    from tensorflow_metadata.proto.v0 import schema_pb2

    tmp_path = tmp_path_factory.mktemp("hostile")
    # 1. Transformed examples checked against a schema: a hostile feature name,
    #    split name and stored values (bytes, some not UTF-8).
    schema = schema_pb2.Schema()
    hostile_feature = schema.feature.add(name=HOSTILE_FEATURE, type=schema_pb2.INT)
    hostile_feature.int_domain.min, hostile_feature.int_domain.max = 0, 9
    hostile_feature.int_domain.is_categorical = True
    (tmp_path / "schema.pbtxt").write_text(text_format.MessageToString(schema))
    values = [[3], [HOSTILE.encode()], [HOSTILE.encode() + b"\xff"], [12]]
    write_shard(
        tmp_path / "examples" / f"Split-{HOSTILE_SPLIT}" / "part-0.gz",
        [example(**{HOSTILE_FEATURE: value}) for value in values],
    )
    output = tmp_path / "reports"
    argv = ["check", "--schema", tmp_path / "schema.pbtxt", "--examples", tmp_path / "examples"]
    stdout, stderr = [], []
    for extra in (["--output", output], ["--json"], ["--feature", "nope"]):
        with _captured() as (out, err):
            code = cli.main([str(arg) for arg in argv + extra])
        stdout.append((code, out.getvalue()))
        stderr.append(err.getvalue())
    # 2. Raw examples with a hostile, non-UTF-8 city: the transform graph maps it
    #    to -1, and the report names the raw value.
    raw = tmp_path / "raw_examples"
    shutil.copytree(EXAMPLES_DIR.parent / "raw_examples" / "Split-train", raw / "Split-train")
    write_shard(
        raw / "Split-serving" / "part-0.gz",
        [_raw_example(HOSTILE.encode()), _raw_example(b"\xfe" + HOSTILE.encode())],
    )
    raw_output = tmp_path / "raw_reports"
    with _captured() as (out, err):
        raw_code = cli.main(
            ["check", "--transform-graph", str(TRANSFORM_GRAPH_DIR), "--examples", str(raw)]
            + ["--output", str(raw_output), "--feature", "city_xf"]
        )
    stdout.append((raw_code, out.getvalue()))
    stderr.append(err.getvalue())
    return {"output": output, "raw_output": raw_output, "stdout": stdout, "stderr": stderr}


def _captured():
    import contextlib
    import io

    @contextlib.contextmanager
    def captured():
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            yield out, err

    return captured()


def test_hostile_runs_block_as_expected(hostile_runs):
    codes = [code for code, _ in hostile_runs["stdout"]]
    assert codes == [cli.EXIT_BLOCKED, cli.EXIT_BLOCKED, cli.EXIT_USAGE, cli.EXIT_BLOCKED]


def test_hostile_strings_survive_the_json_report_unchanged(hostile_runs):
    path = hostile_runs["output"] / f"Split-{HOSTILE_SPLIT}" / "index_report.json"
    data = path.read_bytes()
    assert data.isascii()
    _assert_no_control_characters(data.decode())
    document = json.loads(data)
    assert document["split"] == HOSTILE_SPLIT
    (feature_doc,) = document["features"]
    assert feature_doc["feature"] == HOSTILE_FEATURE
    samples = feature_doc["counts"]["top_non_integer_values"]
    assert samples == [
        {"value": HOSTILE, "count": 1},
        {"value": HOSTILE + "\\xff", "count": 1},
    ]
    assert "forged" not in {key for sample in samples for key in sample}
    # --json prints the same document.
    printed = json.loads(hostile_runs["stdout"][1][1])
    assert printed[HOSTILE_SPLIT]["features"][0]["feature"] == HOSTILE_FEATURE


def test_hostile_raw_values_survive_the_json_report_unchanged(hostile_runs):
    document = json.loads(
        (hostile_runs["raw_output"] / "Split-serving" / "index_report.json").read_text()
    )
    (city,) = document["features"]
    assert city["counts"]["negative"] == 2
    assert city["counts"]["top_raw_oov_values"] == [
        {"value": HOSTILE, "count": 1},
        {"value": "\\xfe" + HOSTILE, "count": 1},
    ]


def test_terminal_output_shows_control_characters_escaped(hostile_runs):
    outputs = [text for _, text in hostile_runs["stdout"]] + hostile_runs["stderr"]
    for text in outputs:
        _assert_no_control_characters(text)
    table = hostile_runs["stdout"][0][1]
    assert "split span <img src=x onerror=alert(1)> \\x1b[2J: 4 examples" in table
    assert '<script>alert("x")</script>\\x1b[31m\\x1b]0;pwned\\x07' in table
    raw_table = hostile_runs["stdout"][3][1]
    assert "\\x1b[31m\\x1b]0;pwned\\x07" in raw_table
    # Error messages quote data-derived names with repr().
    assert 'valid names: \'<script>alert("x")</script>\\x1b[31m' in hostile_runs["stderr"][2]


@pytest.mark.parametrize(("which", "split"), [("output", HOSTILE_SPLIT), ("raw_output", "serving")])
def test_html_report_escapes_hostile_strings(hostile_runs, which, split):
    html = (hostile_runs[which] / f"Split-{split}" / "index_report.html").read_text()
    assert "<script" not in html.lower()
    assert "<img" not in html.lower()
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html
    # Control characters are shown escaped, as on the terminal, so `cat` is safe too.
    assert "\x1b" not in html and "\x07" not in html
    assert "\\x1b[31m\\x1b]0;pwned\\x07" in html


def test_schema_diff_holds_the_hostile_feature_name_as_data(hostile_runs):
    from tensorflow_metadata.proto.v0 import anomalies_pb2

    path = hostile_runs["output"] / f"Split-{HOSTILE_SPLIT}" / "SchemaDiff.pb"
    anomalies = anomalies_pb2.Anomalies.FromString(path.read_bytes())
    # Keyed as TFDV keys it: the name has parentheses and dots, so it is quoted.
    key = "'" + HOSTILE_FEATURE.replace("'", "''") + "'"
    assert list(anomalies.anomaly_info) == [key]
    assert list(anomalies.anomaly_info[key].path.step) == [HOSTILE_FEATURE]
    assert [r.short_description for r in anomalies.anomaly_info[key].reason] == [
        "Index beyond the valid range",
        "Non-integer values in an index feature",
    ]


# --- the failure contract: outputs apart from inputs, one verdict per run, exit codes -------


@pytest.mark.parametrize(
    "where",
    ["examples", "split", "parent-of-examples", "graph"],
)
def test_output_overlapping_an_input_is_refused_before_anything_is_written(tmp_path, capsys, where):
    examples = copy_split(tmp_path, "eval")
    graph = copy_graph(tmp_path)
    output = {
        "examples": examples,
        "split": examples / "Split-eval",
        "parent-of-examples": tmp_path,
        "graph": graph / "transform_fn",
    }[where]
    before = file_digests(tmp_path, base=tmp_path)

    result = check(capsys, examples, "--output", output, graph=graph)

    assert_usage_error(result, f"--output {str(output)!r} overlaps", "Pick a path outside")
    assert file_digests(tmp_path, base=tmp_path) == before


def test_a_split_folder_in_the_output_linked_into_an_input_is_refused(tmp_path, capsys):
    # The overlap check resolved --output alone; publishing then followed the link
    # and wrote SchemaDiff.pb and the reports among the input's shards.
    examples = copy_split(tmp_path, "eval")
    output = tmp_path / "reports"
    output.mkdir()
    (output / "Split-eval").symlink_to(examples / "Split-eval")
    before = file_digests(examples, base=tmp_path)

    result = check(capsys, examples, "--output", output)

    assert_usage_error(result, "holds 'Split-eval', which is a link")
    assert file_digests(examples, base=tmp_path) == before


def test_a_stale_staging_link_in_the_output_is_removed_not_followed(tmp_path, capsys):
    # A killed run's staging folders are removed at the next run's start; rmtree
    # through a link named so emptied the folder it pointed to, here the examples.
    examples = copy_split(tmp_path, "eval")
    output = tmp_path / "reports"
    output.mkdir()
    (output / ".staging-0").symlink_to(examples)
    before = file_digests(examples, base=tmp_path)

    result = check(capsys, examples, "--output", output)

    assert result.code == cli.EXIT_BLOCKED, result
    assert file_digests(examples, base=tmp_path) == before
    assert not (output / ".staging-0").exists()


@pytest.mark.parametrize("where", ["link-into-examples", "file", "split-file", "examples-file"])
def test_a_bad_offending_examples_folder_is_refused_before_reading(tmp_path, capsys, where):
    # A Split-eval link led the examples' writes into the input split; a file there
    # was exit 3 (internal error) after the whole run.
    examples = copy_split(tmp_path, "eval")
    target = tmp_path / "offending"
    if where == "file":
        target.write_text("x")
    else:
        (target / "Split-eval").parent.mkdir()
        if where == "link-into-examples":
            (target / "Split-eval").symlink_to(examples / "Split-eval")
        elif where == "split-file":
            (target / "Split-eval").write_text("x")
        else:
            (target / "Split-eval").mkdir()
            (target / "Split-eval" / "offending_examples").write_text("x")
    before = file_digests(examples, base=tmp_path)
    expected = {
        "link-into-examples": "holds 'Split-eval', which is a link",
        "file": "is a file, not a folder",
        "split-file": "holds 'Split-eval', which is not a folder",
        "examples-file": "holds 'Split-eval/offending_examples', which is not a folder",
    }[where]

    result = check(capsys, examples, "--offending-examples", target)

    assert_usage_error(result, f"--offending-examples {str(target)!r}", expected)
    assert file_digests(examples, base=tmp_path) == before


def test_a_bad_hash_collision_share_names_the_flag_not_a_function(capsys):
    result = check(capsys, EXAMPLES_DIR, "--max-hash-collision-share", "nan")

    assert_usage_error(result, "--max-hash-collision-share 'nan': a rate must be between 0 and 1")
    assert "_from_text" not in result.stderr


def test_a_file_where_a_split_report_goes_is_refused_before_any_split_is_written(tmp_path, capsys):
    # It was exit 3 (internal error) after Split-eval and Split-test had been published.
    output = tmp_path / "reports"
    output.mkdir()
    (output / "Split-train").write_text("x")

    result = check(capsys, EXAMPLES_DIR, "--output", output)

    assert_usage_error(
        result, f"--output {str(output)!r} holds 'Split-train', which is not a folder"
    )
    assert sorted(p.name for p in output.iterdir()) == ["Split-train"]


def test_a_failed_run_leaves_no_empty_output_folder_it_made(tmp_path, capsys):
    output = tmp_path / "new" / "reports"

    result = check(capsys, EXAMPLES_DIR, "--feature", "cty_xf", "--output", output)

    assert_usage_error(result, "--feature names ['cty_xf']")
    assert not output.exists()


def test_a_signal_while_reports_are_published_waits_until_they_all_are(
    tmp_path, capsys, monkeypatch
):
    # A signal between two splits' moves left --output holding a mix of two runs,
    # while the message said it kept the reports it had before.
    from embedding_guard.reports import report_io

    output = tmp_path / "reports"
    assert check(capsys, EXAMPLES_DIR, "--output", output).code == cli.EXIT_BLOCKED
    discard = report_io.discard_report
    moved = []

    def discard_then_interrupt(split_dir):
        if ".staging-" in split_dir:  # the run writing its own reports, not publishing
            return discard(split_dir)
        moved.append(split_dir)
        if len(moved) == 1:
            os.kill(os.getpid(), signal.SIGINT)  # lands while the first split moves
        discard(split_dir)

    monkeypatch.setattr(report_io, "discard_report", discard_then_interrupt)
    examples = copy_split(tmp_path, "eval", name="train")
    shutil.copytree(EXAMPLES_DIR / "Split-test", examples / "Split-test")
    shutil.copytree(EXAMPLES_DIR / "Split-eval", examples / "Split-eval")

    result = check(capsys, examples, "--output", output)

    assert result.code == cli.EXIT_INTERRUPTED
    assert result.stderr == (
        "embedding-guard: interrupted; --output holds this run's complete reports.\n"
    )
    assert len(moved) == 3
    # Every split is this run's: train now holds eval's 20 examples, not train's.
    assert report(output, "train")["num_examples"] == report(output, "eval")["num_examples"]


def test_output_in_use_by_another_run_is_refused(tmp_path, capsys):
    import fcntl

    output = tmp_path / "reports"
    output.mkdir()
    handle = os.open(output, os.O_RDONLY)
    fcntl.flock(handle, fcntl.LOCK_EX)
    try:
        result = check(capsys, EXAMPLES_DIR, "--output", output)
    finally:
        os.close(handle)

    assert_usage_error(result, f"--output {str(output)!r} is in use by another embedding-guard run")
    assert list(output.iterdir()) == []


def test_verdict_comes_from_this_run_not_from_reports_already_in_the_output(tmp_path, capsys):
    # A clean run's reports sit in --output (as a concurrent run would leave them);
    # a run on bad data into the same folder must still exit 1 with its own table.
    output = tmp_path / "reports"
    clean = check(capsys, EXAMPLES_DIR, "--split", "train", "--output", output)
    assert clean.code == cli.EXIT_CLEAN
    examples = copy_split(tmp_path, "eval", name="train")

    blocked = check(capsys, examples, "--output", output)

    assert blocked.code == cli.EXIT_BLOCKED
    assert "split train: 20 examples, 2 error(s)" in blocked.stdout
    assert report(output, "train")["blessed"] is False
    assert [p.name for p in output.iterdir()] == ["Split-train"]


def test_output_under_a_file_is_a_usage_error_before_beam_starts(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")

    result = check(capsys, EXAMPLES_DIR, "--output", blocker / "reports")

    assert_usage_error(result, f"--output {str(blocker / 'reports')!r} cannot be written")


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--baseline-split", "trian"], "--baseline-split 'trian' is not a validated split"),
        (["--max-oov-rate", "cty_xf=0.1"], "--max-oov-rate names ['cty_xf']"),
        (["--embedding-dim", "city_xf=3", "--embedding-dim", "city_xf=4"], "names 'city_xf' twice"),
        (["--parallelism", "0"], "--parallelism must be a positive int"),
    ],
)
def test_misspelled_or_contradicting_settings_fail_instead_of_switching_checks_off(
    capsys, argv, expected
):
    assert_usage_error(check(capsys, EXAMPLES_DIR, *argv), expected)


def test_misspelled_baseline_split_fails_in_the_executor_too(tmp_path):
    examples, graph, anomalies = _executor_artifacts(tmp_path, ["train", "eval"])
    options = ValidatorOptions(baseline_split="trian").validate()

    with pytest.raises(InputError, match=r"baseline_split 'trian' is not a validated split"):
        Executor().Do(
            {"examples": [examples], "transform_graph": [graph]},
            {"anomalies": [anomalies]},
            options.to_exec_properties(),
        )


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda p: p.write_text("x"), "is a file, not a folder"),
        (lambda p: None, "does not exist"),
    ],
    ids=["file", "missing"],
)
def test_examples_path_of_the_wrong_kind_says_so(tmp_path, capsys, make, expected):
    path = tmp_path / "examples"
    make(path)

    assert_usage_error(check(capsys, path), f"--examples {str(path)!r} {expected}")


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda p: p.mkdir(), "is a folder; pass the schema.pbtxt file inside it"),
        (lambda p: os.mkfifo(p), "is not a regular file (a FIFO, socket or device)"),
        (lambda p: p.write_bytes(b"\xff\xfe\x00garbage"), "is neither a text Schema proto"),
        (lambda p: p.write_text("feature { nme: 'x' }"), "is not a text Schema proto"),
    ],
    ids=["folder", "fifo", "binary-garbage", "unparsable"],
)
def test_unusable_schema_file_is_one_error_line(tmp_path, capsys, make, expected):
    schema = tmp_path / "schema.pbtxt"
    make(schema)

    result = run_cli(capsys, "check", "--schema", schema, "--examples", EXAMPLES_DIR)

    assert_usage_error(result, f"--schema {str(schema)!r} {expected}")


def test_binary_schema_proto_is_read(tmp_path, capsys):
    from google.protobuf import text_format
    from tensorflow_metadata.proto.v0 import schema_pb2

    text = (TRANSFORM_GRAPH_DIR / "transformed_metadata" / "schema.pbtxt").read_text()
    schema = tmp_path / "schema.pb"
    schema.write_bytes(text_format.Parse(text, schema_pb2.Schema()).SerializeToString())

    result = run_cli(capsys, "check", "--schema", schema, "--examples", EXAMPLES_DIR, *CHECKED)

    assert result.code == cli.EXIT_BLOCKED, result


def test_internal_error_is_one_line_exit_3_with_the_full_log(capsys, monkeypatch):
    from embedding_guard.run import orchestration

    def crash(*args, **kwargs):
        raise RuntimeError("boom\nsecond line")

    monkeypatch.setattr(orchestration, "validate", crash)

    result = check(capsys, EXAMPLES_DIR)

    assert result.code == cli.EXIT_INTERNAL_ERROR == 3
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith(
        "embedding-guard: internal error: RuntimeError: boom (full log: "
    )
    log = result.stderr.split("(full log: ")[1].split(";")[0]
    assert "Traceback" in Path(log).read_text()
    assert "second line" in Path(log).read_text()


def test_ctrl_c_exits_130_and_leaves_no_staging_folder_or_lock(tmp_path, capsys, monkeypatch):
    from embedding_guard.run import orchestration

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    output = tmp_path / "reports"
    with monkeypatch.context() as patch:
        patch.setattr(orchestration, "validate", interrupted)
        result = check(capsys, EXAMPLES_DIR, "--output", output)

    assert result.code == cli.EXIT_INTERRUPTED == 130
    assert result.stderr == (
        "embedding-guard: interrupted; --output keeps the reports it had before this run.\n"
    )
    # The folder this run made is gone with it, lock and all.
    assert not output.exists()
    # The folder's lock was released: the next run goes through.
    assert check(capsys, EXAMPLES_DIR, "--split", "train", "--output", output).code == 0


def test_command_line_side_effects_are_undone_after_main(capsys):
    import logging
    import warnings

    filters_before = list(warnings.filters)
    beam_filters_before = list(logging.getLogger("apache_beam.runners.common").filters)

    check(capsys, EXAMPLES_DIR, "--split", "train")

    assert warnings.filters == filters_before
    assert logging.getLogger("apache_beam.runners.common").filters == beam_filters_before


# --- inputs of the attack round (this round's own, beyond the issue's list) ---------------


def test_fifo_inside_the_transform_graph_is_refused_instead_of_blocking(tmp_path):
    # Run as a process with a timeout: a regression would block on the FIFO forever.
    graph = copy_graph(tmp_path)
    vocabulary = graph / ASSETS / "city"
    vocabulary.unlink()
    os.mkfifo(vocabulary)

    done = _console_check(graph, EXAMPLES_DIR)

    assert done.returncode == cli.EXIT_USAGE, done.stderr
    assert done.stderr.startswith(
        f"embedding-guard: error: The transform graph file {str(vocabulary)!r} is a FIFO"
    )
    assert done.stderr.count("\n") == 1


@pytest.mark.parametrize("where", ["transformed_metadata/asset_map", "metadata/schema.pbtxt"])
def test_any_special_file_of_the_transform_graph_is_named(tmp_path, where):
    from embedding_guard.read import files

    graph = copy_graph(tmp_path)
    (graph / where).unlink()
    os.mkfifo(graph / where)

    with pytest.raises(InputError, match=f"{str(graph / where)!r} is a FIFO"):
        files.check_regular_files(str(graph), "transform graph")


def test_vocabulary_that_is_a_folder_is_a_usage_error(tmp_path, capsys):
    graph = copy_graph(tmp_path)
    (graph / ASSETS / "city").unlink()
    (graph / ASSETS / "city").mkdir()

    result = check(capsys, EXAMPLES_DIR, graph=graph)

    assert_usage_error(result, "city' is a folder")


def test_asset_map_pointing_outside_the_assets_folder_is_refused(tmp_path, capsys):
    graph = copy_graph(tmp_path)
    asset_map = graph / "transformed_metadata" / "asset_map"
    mapping = json.loads(asset_map.read_text())
    mapping["city"] = "../../../../etc/passwd"
    asset_map.write_text(json.dumps(mapping))

    result = check(capsys, EXAMPLES_DIR, graph=graph)

    assert_usage_error(result, "['../../../../etc/passwd'], which are not file names inside")


def test_junit_xml_into_this_runs_own_output_is_refused(tmp_path, capsys):
    output = tmp_path / "reports"
    report_file = output / "Split-eval" / "index_report.json"

    result = check(capsys, EXAMPLES_DIR, "--output", output, "--junit-xml", report_file)

    assert_usage_error(result, f"--junit-xml {str(report_file)!r} overlaps --output")


def test_junit_xml_through_a_symbolic_link_replaces_the_file_and_keeps_the_link(tmp_path, capsys):
    target = tmp_path / "runs" / "junit-17.xml"
    target.parent.mkdir()
    target.write_text("the previous run's report")
    link = tmp_path / "latest.xml"
    link.symlink_to(target)

    result = check(capsys, EXAMPLES_DIR, "--junit-xml", link)

    assert result.code in (cli.EXIT_CLEAN, cli.EXIT_BLOCKED), result
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert target.read_bytes().startswith(b"<?xml")


def test_junit_xml_into_a_named_pipe_leaves_the_pipe(tmp_path, capsys):
    pipe = tmp_path / "junit.fifo"
    os.mkfifo(pipe)
    received: list[bytes] = []
    # A rename over the pipe would leave this reader waiting forever: a daemon.
    reader = threading.Thread(target=lambda: received.append(pipe.read_bytes()), daemon=True)
    reader.start()

    result = check(capsys, EXAMPLES_DIR, "--junit-xml", pipe)

    reader.join(timeout=30)
    assert result.code in (cli.EXIT_CLEAN, cli.EXIT_BLOCKED), result
    assert stat.S_ISFIFO(os.lstat(pipe).st_mode)
    assert received and received[0].startswith(b"<?xml")


def test_junit_xml_onto_a_full_device_is_a_one_line_error(tmp_path, capsys):
    # Through a link, so that code renaming over the path would replace the link, never /dev/full.
    link = tmp_path / "full.xml"
    link.symlink_to("/dev/full")

    result = check(capsys, EXAMPLES_DIR, "--junit-xml", link)

    assert_usage_error(
        result, f"--junit-xml {str(link)!r} cannot be written (No space left on device)"
    )
    assert link.is_symlink()


def test_standard_output_onto_a_full_device_is_a_one_line_error(tmp_path):
    command = [sys.executable, "-m", "embedding_guard.cli.main", "check", "--json"]
    command += ["--transform-graph", str(TRANSFORM_GRAPH_DIR), "--examples", str(EXAMPLES_DIR)]
    with open("/dev/full", "w") as full:
        done = subprocess.run(
            command,
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            timeout=300,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        )

    assert done.returncode == cli.EXIT_USAGE, (done.returncode, done.stderr[-2000:])
    # One line: nothing left in stdout's buffer to fail again at the exit.
    assert done.stderr == (
        "embedding-guard: error: standard output cannot be written (No space left on device); "
        "free space, or send it somewhere that can take it.\n"
    )


def test_embedding_dim_beyond_int64_is_a_usage_error(capsys):
    result = check(capsys, EXAMPLES_DIR, "--embedding-dim", "city_xf=99999999999999999999999")

    assert_usage_error(result, "must be in [1, 2**63 - 1]")


def test_schema_whose_int_domain_min_exceeds_its_max_is_an_error(tmp_path, capsys):
    schema = tmp_path / "schema.pbtxt"
    schema.write_text(
        'feature { name: "city_xf" type: INT int_domain { min: 10 max: 4 is_categorical: true } }'
    )

    result = run_cli(capsys, "check", "--schema", schema, "--examples", EXAMPLES_DIR)

    assert_usage_error(result, "'city_xf' has int_domain min 10 > max 4")


def test_ctrl_c_after_the_command_finished_keeps_its_exit_code(monkeypatch):

    monkeypatch.setattr(cli, "main", lambda: cli.EXIT_BLOCKED)
    # Not this test process's collector: it would stay paused and frozen.
    monkeypatch.setattr(cli, "console_start_up", lambda: None)
    monkeypatch.setattr(cli, "console_teardown", lambda: None)
    previous = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        with pytest.raises(SystemExit) as raised:
            cli.console_main()
        ignored = [signal.getsignal(number) is signal.SIG_IGN for number in previous]
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)

    assert raised.value.code == cli.EXIT_BLOCKED
    assert ignored == [True, True]


def test_sigterm_during_a_run_exits_143_with_one_line_and_no_staging_folder(
    tmp_path, capsys, monkeypatch
):
    import time

    from embedding_guard.run import orchestration

    def terminated_midway(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(10)  # the handler raises from here
        raise AssertionError("SIGTERM did not stop the run")

    def not_handled(signum, frame):
        # The default would end pytest itself; this turns a missing handler into a failure.
        raise AssertionError("the console script left SIGTERM to its default")

    output = tmp_path / "reports"
    monkeypatch.setattr(orchestration, "validate", terminated_midway)
    monkeypatch.setattr(cli, "console_start_up", lambda: None)
    monkeypatch.setattr(cli, "console_teardown", lambda: None)
    monkeypatch.setattr(
        sys,
        "argv",
        ["embedding-guard", "check", "--transform-graph", str(TRANSFORM_GRAPH_DIR)]
        + ["--examples", str(EXAMPLES_DIR), "--output", str(output)],
    )
    previous = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}
    signal.signal(signal.SIGTERM, not_handled)
    try:
        with pytest.raises(SystemExit) as raised:
            cli.console_main()
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)

    assert raised.value.code == cli.EXIT_TERMINATED == 143
    assert capsys.readouterr().err == (
        "embedding-guard: terminated (SIGTERM); --output keeps the reports it had before this "
        "run.\n"
    )
    assert not output.exists()


def test_python_api_with_a_non_path_argument_is_an_input_error():
    import embedding_guard

    with pytest.raises(InputError, match=r"check\(\) argument examples=5 must be a path"):
        embedding_guard.check(examples=5, transform_graph=TRANSFORM_GRAPH_DIR)


def test_a_transform_graph_on_an_unknown_filesystem_is_a_usage_error(capsys):
    # foo:// is no filesystem TensorFlow knows: it was exit 3, "internal error".
    result = check(capsys, EXAMPLES_DIR, graph="foo://bucket/transform_graph")

    assert_usage_error(result, "'foo://bucket/transform_graph' cannot be read", "foo")


@pytest.mark.parametrize("flag", ["--junit-xml", "--model"])
def test_an_empty_path_is_a_usage_error_not_a_flag_left_out(capsys, flag):
    # An empty --junit-xml had been taken as "not given": exit 1 and no file.
    result = check(capsys, EXAMPLES_DIR, flag, "")

    assert_usage_error(result, f"{flag} '' is an empty path")


def test_a_bad_beam_option_value_is_one_line_not_beams_usage(capsys):
    # Beam's argparse printed its 114-line usage before the error.
    result = check(capsys, EXAMPLES_DIR, "--beam-pipeline-arg=--direct_num_workers=abc")

    assert_usage_error(
        result,
        "--beam-pipeline-arg ['--direct_num_workers=abc'] is not a valid set of Beam options",
        "argument --direct_num_workers: invalid int value: 'abc'",
    )


def test_a_schema_on_an_unknown_filesystem_or_empty_is_a_usage_error(tmp_path, capsys):
    # foo:// was exit 3, "internal error"; an empty file said "No feature to check".
    unknown = run_cli(capsys, "check", "--examples", EXAMPLES_DIR, "--schema", "foo://b/s.pbtxt")
    empty = tmp_path / "schema.pbtxt"
    empty.write_text("")
    nothing = run_cli(capsys, "check", "--examples", EXAMPLES_DIR, "--schema", empty)

    assert_usage_error(unknown, "--schema 'foo://b/s.pbtxt' cannot be read", "'foo'")
    assert_usage_error(nothing, f"--schema {str(empty)!r} is empty")


def test_an_empty_transformed_schema_names_its_file(tmp_path, capsys):
    graph = copy_graph(tmp_path)
    schema = graph / "transformed_metadata" / "schema.pbtxt"
    schema.write_text("")

    result = check(capsys, EXAMPLES_DIR, graph=graph)

    assert_usage_error(result, f"The transformed schema {str(schema)!r} is empty")


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (
            ["--split", "train", "--exclude-split", "train"],
            "--exclude-split=['train'] leaves no split chosen by --split ['train'] of --examples",
        ),
        (["--split", "train", "--split", "train"], "--split names ['train'] more than once"),
        (["--junit-xml", "."], "--junit-xml '.' is a folder; pass a file name."),
    ],
)
def test_split_and_junit_flags_say_what_is_wrong(capsys, argv, expected):
    assert_usage_error(check(capsys, EXAMPLES_DIR, *argv), expected)


def test_a_model_without_tables_says_so_in_the_verdict_and_the_json(capsys):
    # A transform_fn passed as --model passed the Pusher gate saying nothing of it.
    model = TRANSFORM_GRAPH_DIR / "transform_fn"

    result = check(capsys, EXAMPLES_DIR, "--split", "train", "--model", model, "--json")

    verdict = json.loads(result.stdout)["_verdict"]
    assert verdict["gate"] == "Pusher"
    assert verdict["model"] == str(model)
    assert verdict["model_sized_features"] == []
    assert verdict["coverage"].endswith("; no model table sizes any of them")


def test_a_report_file_for_an_unknown_filesystem_is_refused_not_written_here(
    tmp_path, monkeypatch, capsys
):
    # "foo://j.xml" split into the folder "foo:", a local path: the report was
    # written to ./foo:/j.xml and the run said nothing.
    monkeypatch.chdir(tmp_path)

    result = check(capsys, EXAMPLES_DIR, "--junit-xml", "foo://j.xml")

    assert_usage_error(result, "--junit-xml 'foo://j.xml' cannot be written", "'foo'")
    assert list(tmp_path.iterdir()) == []


def test_reports_whose_paths_would_pass_path_max_are_a_usage_error(tmp_path, capsys):
    # The output folder itself fits in PATH_MAX (4,096 bytes); the files under
    # Split-eval/offending_examples/ do not. It was exit 3, "internal error".
    deep = tmp_path
    while len(str(deep)) < 3_900:
        deep /= "d" * 200
    deep.mkdir(parents=True)
    output = deep / ("o" * (4_030 - len(str(deep))))

    result = check(capsys, EXAMPLES_DIR, "--output", output)

    assert_usage_error(result, f"--output {str(output)!r} cannot be written", "File name too long")


TFX_TAXI = Path(tfx.__file__).parent / "components" / "testdata" / "transform"


def _damaged_graph(tmp_path: Path, damage: str) -> tuple[Path, Path]:
    """(a copy of a graph whose saved_model.pb is damaged as damage says, its examples)."""
    from tensorflow.core.protobuf import saved_model_pb2

    if damage == "constant_bytes":
        # TFX's TF1 taxi graph: its first Const holds the bucket boundaries of
        # a bucketized feature, as float32 tensor_content.
        graph, examples = tmp_path / damage, TFX_TAXI / "transformed_examples"
        shutil.copytree(TFX_TAXI / "transform_graph", graph)
    else:
        graph, examples = copy_graph(tmp_path, damage), EXAMPLES_DIR
    path = graph / "transform_fn" / "saved_model.pb"
    if damage == "end_group_tag":
        # protobuf warns of it before the parse gives nothing.
        path.write_bytes(b"\x0c")
        return graph, examples
    saved_model = saved_model_pb2.SavedModel.FromString(path.read_bytes())
    graph_def = saved_model.meta_graphs[0].graph_def
    if damage == "constant_bytes":
        tensor = next(node for node in graph_def.node if node.name == "Const").attr["value"]
        tensor.tensor.tensor_content = tensor.tensor.tensor_content[:-1]
    else:
        function = next(f for f in graph_def.library.function if "pruned" in f.signature.name)
        name = "compute_and_apply_vocabulary/apply_vocab/None_Lookup/hash_bucket"
        next(node for node in function.node_def if node.name == name).attr["num_buckets"].i = -5
    path.write_bytes(saved_model.SerializeToString())
    return graph, examples


@pytest.mark.parametrize(
    ("damage", "fragment"),
    [
        ("constant_bytes", "holds a damaged constant behind 'dropoff_longitude_xf'"),
        ("oov_buckets", "gives 'product_xf' -5 OOV buckets"),
        ("end_group_tag", "is not a SavedModel"),
    ],
)
def test_a_damaged_saved_model_is_one_line_naming_the_graph(tmp_path, damage, fragment):
    # The first two were exit 3 (a numpy or a bounds ValueError); the third
    # printed protobuf's RuntimeWarning and its source line before the error
    # (the console script shows it: pytest would capture the warning).
    graph, examples = _damaged_graph(tmp_path, damage)

    done = _console_check(graph, examples)

    assert_usage_error(CliResult(done.returncode, done.stdout, done.stderr), fragment)
    assert "e-run Transform" in done.stderr


def test_a_record_protobuf_warns_about_is_read_without_its_warning_on_stderr(tmp_path):
    # b"\x0c", an end-group tag, parses as an empty tf.Example (TensorFlow's
    # parser reads it so too), and protobuf printed a RuntimeWarning and its
    # source line on stderr while the first-record check read it. The console
    # script shows it: pytest would capture the warning.
    from embedding_guard.run.offending_examples import tfrecord_bytes

    split = tmp_path / "examples" / "Split-train"
    split.mkdir(parents=True)
    (split / "shard.tfrecord").write_bytes(tfrecord_bytes([b"\x0c"]))

    done = _console_check(TRANSFORM_GRAPH_DIR, tmp_path / "examples")

    assert done.returncode == cli.EXIT_BLOCKED
    assert "FEATURE_MISSING_FROM_SPLIT" in done.stdout
    assert done.stderr == ""
