"""The executor on fake artifacts over checked-in Transform output and hand-made examples.

Each Beam run costs about a second, so a module-scoped fixture runs each
configuration once and several tests look at it. Expected numbers are counted
by hand from the rows in testdata/make_examples.py:

    train (2 shards, 10 + 10 examples, the second uncompressed): every index valid.
    eval (20 examples):
      city_xf     19 values (one example has none): -1 x3, 16 in vocabulary.
      product_xf  24 values (multivalent): 18 in vocabulary, 40 x2 and 41 x1 in the
                  OOV buckets, 42 x2 and 57 x1 beyond [0, 42).
      month_xf    20 values: 12 x2 at or over embedding_input_dims 12.
    month_xf's bound is its input_dim 12 and product_xf's input_dim defaults to its
    bound 42, so the values over the input_dim are already out of range: they count
    as over_embedding_dim too, but only INDEX_OUT_OF_RANGE is reported for them.
      age_xf      20 values, all in [0, 5).
    test (6 examples): product_xf stored as floats 2.5 x3, 3.0, 7.25, 11.0.
"""

import dataclasses
import importlib.util
import json
from pathlib import Path

import pytest
import tensorflow as tf
from component_testlib import (
    COUNT_KEYS,
    EXAMPLES_DIR,
    TESTDATA,
    TRANSFORM_GRAPH_DIR,
    expected_counts,
    file_digests,
    input_digests,
    tree,
)
from tensorflow_data_validation.utils import anomalies_util
from tensorflow_metadata.proto.v0 import anomalies_pb2
from tfx.types import artifact_utils, standard_artifacts

from embedding_guard.component.executor import Executor, IndexValidationBlockedError

ERROR = anomalies_pb2.AnomalyInfo.ERROR
SMALL_INT = anomalies_pb2.AnomalyInfo.INT_TYPE_SMALL_INT
BIG_INT = anomalies_pb2.AnomalyInfo.INT_TYPE_BIG_INT
UNEXPECTED_DATA_TYPE = anomalies_pb2.AnomalyInfo.UNEXPECTED_DATA_TYPE
# OOV drift against the train split (a WARNING) uses this TFDV type.
OOV_DRIFT = anomalies_pb2.AnomalyInfo.ENUM_TYPE_UNEXPECTED_STRING_VALUES

REPORT_FILES = ["SchemaDiff.pb", "index_report.html", "index_report.json"]
MONTH_DIM = {"month_xf": 12}


@dataclasses.dataclass
class Run:
    anomalies: standard_artifacts.ExampleAnomalies
    output_dir: Path
    inputs_before: dict[str, str]
    inputs_after: dict[str, str]
    error: Exception | None

    def report(self, split: str) -> dict:
        return json.loads((self.output_dir / f"Split-{split}" / "index_report.json").read_text())

    def feature(self, split: str, name: str) -> dict:
        (feature,) = [f for f in self.report(split)["features"] if f["feature"] == name]
        return feature

    def schema_diff(self, split: str) -> anomalies_pb2.Anomalies:
        return anomalies_util.load_anomalies_binary(
            str(self.output_dir / f"Split-{split}" / "SchemaDiff.pb")
        )


def _artifacts(output_dir: Path, split_names, examples_uri=EXAMPLES_DIR):
    examples = standard_artifacts.Examples()
    examples.uri = str(examples_uri)
    examples.split_names = artifact_utils.encode_split_names(list(split_names))
    examples.span = 7
    graph = standard_artifacts.TransformGraph()
    graph.uri = str(TRANSFORM_GRAPH_DIR)
    anomalies = standard_artifacts.ExampleAnomalies()
    anomalies.uri = str(output_dir)
    return examples, graph, anomalies


def _exec_properties(exclude_splits=(), embedding_input_dims=None, features=None, fail_on_block=0):
    # As EmbeddingIndexValidator serialises them.
    return {
        "exclude_splits": json.dumps(list(exclude_splits)),
        "embedding_input_dims": json.dumps(embedding_input_dims or {}),
        "feature_vocabularies": json.dumps({}),
        "features": json.dumps(features),
        "fail_on_block": fail_on_block,
    }


def _run(
    output_dir: Path,
    split_names,
    schema_dir: Path | None = None,
    examples_uri: Path = EXAMPLES_DIR,
    **properties,
) -> Run:
    examples, graph, anomalies = _artifacts(output_dir, split_names, examples_uri)
    input_dict = {"examples": [examples], "transform_graph": [graph]}
    if schema_dir is not None:
        schema = standard_artifacts.Schema()
        schema.uri = str(schema_dir)
        input_dict["schema"] = [schema]
    before = input_digests()
    error = None
    try:
        Executor().Do(input_dict, {"anomalies": [anomalies]}, _exec_properties(**properties))
    except IndexValidationBlockedError as blocked:
        error = blocked
    return Run(anomalies, output_dir, before, input_digests(), error)


def _month_run_fixture(name: str, split_names: list[str], exclude_splits: list[str]):
    """A module fixture: one run with month_xf's embedding input dim, excluding splits."""

    @pytest.fixture(scope="module", name=name)
    def month_run(tmp_path_factory):
        return _run(
            tmp_path_factory.mktemp(name),
            split_names,
            exclude_splits=exclude_splits,
            embedding_input_dims=MONTH_DIM,
        )

    return month_run


eval_run = _month_run_fixture("eval_run", ["train", "eval", "test"], ["test"])
# Same configuration, split_names in another order (Transform may write either).
eval_rerun = _month_run_fixture("eval_rerun", ["test", "eval", "train"], ["test"])
train_run = _month_run_fixture("train_run", ["train", "eval", "test"], ["eval", "test"])


@pytest.fixture(scope="module")
def blocked_run(tmp_path_factory):
    # Every split, default features (month_xf has no int_domain, so it is not checked).
    return _run(tmp_path_factory.mktemp("blocked_run"), ["train", "eval", "test"], fail_on_block=1)


# --- files and artifact properties -------------------------------------------------------


def test_writes_report_files_for_validated_splits_only(eval_run):
    assert eval_run.error is None
    assert tree(eval_run.output_dir) == {
        ".": [],
        "Split-train": REPORT_FILES,
        "Split-eval": REPORT_FILES,
    }


def test_output_split_names_leave_out_excluded_split_and_span_is_propagated(eval_run):
    assert artifact_utils.decode_split_names(eval_run.anomalies.split_names) == ["train", "eval"]
    assert eval_run.anomalies.span == 7


def test_bad_eval_split_is_not_blessed(eval_run):
    assert eval_run.anomalies.get_int_custom_property("blessed") == 0
    assert eval_run.anomalies.get_json_value_custom_property("blessed_by_split") == {
        "train": 1,
        "eval": 0,
    }


def test_train_only_is_blessed(train_run):
    assert train_run.error is None
    assert train_run.anomalies.get_int_custom_property("blessed") == 1
    assert train_run.anomalies.get_json_value_custom_property("blessed_by_split") == {"train": 1}
    assert artifact_utils.decode_split_names(train_run.anomalies.split_names) == ["train"]
    assert tree(train_run.output_dir) == {".": [], "Split-train": REPORT_FILES}


def test_no_temporary_files_are_left(eval_run, train_run, blocked_run):
    for run in (eval_run, train_run, blocked_run):
        for folder, names in tree(run.output_dir).items():
            hidden = [name for name in names if name.startswith(".")]
            assert not hidden, (run.output_dir, folder, hidden)


def test_inputs_are_never_modified(eval_run, train_run, blocked_run):
    for run in (eval_run, train_run, blocked_run):
        assert run.inputs_after == run.inputs_before
    # The digests cover the shards and the graph, not an empty dict.
    assert "transformed_examples/Split-train/transformed_examples-00001-of-00002" in (
        eval_run.inputs_before
    )
    assert "transform_graph/transform_fn/saved_model.pb" in eval_run.inputs_before


# --- counts --------------------------------------------------------------------------------


def _counts(run: Run, split: str, feature: str) -> dict:
    counts = run.feature(split, feature)["counts"]
    return {key: counts[key] for key in COUNT_KEYS}


def test_eval_split_counts(eval_run):
    report = eval_run.report("eval")
    assert report["split"] == "eval"
    assert report["num_examples"] == 20
    assert [f["feature"] for f in report["features"]] == [
        "age_xf",
        "city_xf",
        "month_xf",
        "product_xf",
    ]
    assert _counts(eval_run, "eval", "age_xf") == expected_counts(
        20, 20, 20, 0, 4, vocabulary=False
    )
    assert _counts(eval_run, "eval", "city_xf") == expected_counts(
        20, 19, 16, -1, 24, missing=1, negative=3
    )
    assert _counts(eval_run, "eval", "month_xf") == expected_counts(
        20, 20, 18, 0, 12, vocabulary=False, out_of_range=2, over_embedding_dim=2
    )
    assert _counts(eval_run, "eval", "product_xf") == expected_counts(
        20, 24, 18, 0, 57, oov_bucket=3, out_of_range=3, over_embedding_dim=3
    )


def test_eval_offending_values_and_vocabulary_coverage(eval_run):
    city = eval_run.feature("eval", "city_xf")["counts"]
    product = eval_run.feature("eval", "product_xf")["counts"]
    month = eval_run.feature("eval", "month_xf")["counts"]
    assert city["top_offending_values"] == [{"value": -1, "count": 3}]
    assert product["top_offending_values"] == [
        {"value": 42, "count": 2},
        {"value": 57, "count": 1},
    ]
    assert month["top_offending_values"] == [{"value": 12, "count": 2}]
    # The same values per reason.
    per_reason = {
        name: (
            counts["top_negative_values"],
            counts["top_out_of_range_values"],
            counts["top_over_embedding_dim_values"],
        )
        for name, counts in (("city_xf", city), ("product_xf", product), ("month_xf", month))
    }
    assert per_reason == {
        "city_xf": ([{"value": -1, "count": 3}], [], []),
        "product_xf": (
            [],
            [{"value": 42, "count": 2}, {"value": 57, "count": 1}],
            [{"value": 42, "count": 2}, {"value": 57, "count": 1}],
        ),
        "month_xf": ([], [{"value": 12, "count": 2}], [{"value": 12, "count": 2}]),
    }
    # -1 is the vocabulary's default value (num_oov_buckets=0), so it counts as OOV.
    assert (city["at_default"], city["oov"]) == (3, 3)
    assert (product["at_default"], product["oov"]) == (0, 3)
    # Distinct in-vocabulary values: city 16 of 25, product 18 of 40.
    assert city["vocab_entries_unseen"] == 9
    assert product["vocab_entries_unseen"] == 22


def test_eval_bounds_come_from_the_transform_graph(eval_run):
    bounds = {f["feature"]: f["bounds"] for f in eval_run.report("eval")["features"]}
    picked = {
        name: (b["upper_bound"], b["embedding_input_dim"], b["vocab_size"], b["num_oov_buckets"])
        for name, b in bounds.items()
    }
    assert picked == {
        "age_xf": (5, 5, None, 0),
        "city_xf": (25, 25, 25, 0),
        "month_xf": (12, 12, None, 0),
        "product_xf": (42, 42, 40, 2),
    }
    assert (bounds["city_xf"]["vocabulary"], bounds["product_xf"]["vocabulary"]) == (
        "city",
        "product",
    )


def test_train_split_counts_cover_both_shards(eval_run):
    # 10 examples per shard; city 20..24 and month 10, 11 are only in the
    # uncompressed shard, product 39 only in the gzip one.
    assert eval_run.report("train")["num_examples"] == 20
    assert _counts(eval_run, "train", "city_xf") == expected_counts(20, 20, 20, 0, 24)
    assert _counts(eval_run, "train", "product_xf") == expected_counts(20, 21, 21, 0, 39)
    assert _counts(eval_run, "train", "month_xf") == expected_counts(
        20, 20, 20, 0, 11, vocabulary=False
    )
    assert _counts(eval_run, "train", "age_xf") == expected_counts(
        20, 20, 20, 0, 4, vocabulary=False
    )
    # Seen: city 0..14 and 20..24; product 0..19 and 39.
    assert eval_run.feature("train", "city_xf")["counts"]["vocab_entries_unseen"] == 5
    assert eval_run.feature("train", "product_xf")["counts"]["vocab_entries_unseen"] == 19


def _findings(run: Run, split: str, feature: str) -> list[tuple]:
    return [
        (f["reason"], f["severity"], f["count"]) for f in run.feature(split, feature)["findings"]
    ]


def _samples(run: Run, split: str, feature: str) -> dict[str, list[tuple]]:
    """Reason -> the finding's sample values as (value, count)."""
    return {
        f["reason"]: [(s["value"], s["count"]) for s in f["sample_values"]]
        for f in run.feature(split, feature)["findings"]
    }


def test_eval_findings(eval_run):
    assert _findings(eval_run, "eval", "age_xf") == []
    assert _findings(eval_run, "eval", "city_xf") == [
        ("NEGATIVE_INDEX", "ERROR", 3),
        ("OOV_RATE_INCREASE", "WARNING", 3),
    ]
    # No INDEX_OVER_EMBEDDING_DIM: each input_dim equals its feature's bound, so the
    # values over it are out of range, reported once; the counts still hold them.
    assert _findings(eval_run, "eval", "month_xf") == [("INDEX_OUT_OF_RANGE", "ERROR", 2)]
    assert _findings(eval_run, "eval", "product_xf") == [
        ("INDEX_OUT_OF_RANGE", "ERROR", 3),
        ("OOV_BUCKET_HITS", "INFO", 3),
        ("OOV_RATE_INCREASE", "WARNING", 3),
    ]
    assert eval_run.feature("eval", "month_xf")["counts"]["over_embedding_dim"] == 2
    assert eval_run.feature("eval", "product_xf")["counts"]["over_embedding_dim"] == 3
    assert _samples(eval_run, "eval", "city_xf")["NEGATIVE_INDEX"] == [(-1, 3)]
    assert _samples(eval_run, "eval", "month_xf")["INDEX_OUT_OF_RANGE"] == [(12, 2)]
    assert _samples(eval_run, "eval", "product_xf")["INDEX_OUT_OF_RANGE"] == [(42, 2), (57, 1)]
    report = eval_run.report("eval")
    # city_xf NEGATIVE_INDEX, month_xf and product_xf INDEX_OUT_OF_RANGE; OOV drift warns.
    assert (report["blessed"], report["num_errors"], report["num_warnings"]) == (False, 3, 2)
    assert eval_run.feature("eval", "product_xf")["oov_drift"]["difference"] == 3 / 24


def test_train_has_no_findings(eval_run):
    report = eval_run.report("train")
    assert (report["blessed"], report["num_errors"], report["num_warnings"]) == (True, 0, 0)
    assert all(f["findings"] == [] for f in report["features"])
    assert report["split_findings"] == []


# --- SchemaDiff.pb -------------------------------------------------------------------------


def test_eval_schema_diff_names_exactly_the_failing_features(eval_run):
    anomalies = eval_run.schema_diff("eval")
    assert set(anomalies.anomaly_info) == {"city_xf", "month_xf", "product_xf"}
    reasons = {
        feature: [reason.type for reason in info.reason]
        for feature, info in anomalies.anomaly_info.items()
    }
    assert reasons == {
        "city_xf": [SMALL_INT, OOV_DRIFT],
        "month_xf": [BIG_INT],
        "product_xf": [BIG_INT, OOV_DRIFT],
    }
    assert {info.severity for info in anomalies.anomaly_info.values()} == {ERROR}
    assert list(anomalies.anomaly_info["city_xf"].path.step) == ["city_xf"]
    assert "NEGATIVE_INDEX" in anomalies.anomaly_info["city_xf"].reason[0].description
    assert not anomalies.HasField("dataset_anomaly_info")
    # The baseline is the transformed schema the split was checked against.
    assert [f.name for f in anomalies.baseline.feature] == [
        "age_xf",
        "city_xf",
        "clicked",
        "month_xf",
        "product_xf",
    ]


def test_train_schema_diff_is_empty(eval_run):
    anomalies = eval_run.schema_diff("train")
    assert len(anomalies.anomaly_info) == 0
    assert not anomalies.HasField("dataset_anomaly_info")


# --- fail_on_block and the test split ------------------------------------------------------


def test_fail_on_block_raises_with_split_feature_reason_and_top_value(blocked_run):
    assert isinstance(blocked_run.error, IndexValidationBlockedError)
    lines = str(blocked_run.error).splitlines()
    assert "fail_on_block" in lines[0]
    # product_xf's 42 x2 and 57 x1 are also over its default input_dim 42: one line.
    assert lines[1:] == [
        "  split 'eval' feature 'city_xf': NEGATIVE_INDEX 3 of 19 values (top: -1 x3)",
        "  split 'eval' feature 'product_xf': INDEX_OUT_OF_RANGE 3 of 24 values "
        "(top: 42 x2, 57 x1)",
        "  split 'test' feature 'product_xf': NON_INTEGER_VALUES 6 of 6 values "
        "(top: '2.5' x3, '11.0' x1, '3.0' x1, '7.25' x1)",
    ]
    assert blocked_run.feature("eval", "product_xf")["counts"]["over_embedding_dim"] == 3


def test_only_categorical_features_are_checked_by_default(blocked_run):
    features = [f["feature"] for f in blocked_run.report("eval")["features"]]
    assert features == ["age_xf", "city_xf", "product_xf"]


def test_float_stored_indices_block_the_test_split(blocked_run):
    assert _counts(blocked_run, "test", "product_xf") == expected_counts(
        6, 6, 0, None, None, non_integer=6
    )
    counts = blocked_run.feature("test", "product_xf")["counts"]
    assert counts["top_non_integer_values"] == [
        {"value": "2.5", "count": 3},
        {"value": "11.0", "count": 1},
        {"value": "3.0", "count": 1},
        {"value": "7.25", "count": 1},
    ]
    anomalies = blocked_run.schema_diff("test")
    assert set(anomalies.anomaly_info) == {"product_xf"}
    info = anomalies.anomaly_info["product_xf"]
    assert [r.type for r in info.reason] == [UNEXPECTED_DATA_TYPE]
    assert info.severity == ERROR


# --- determinism and the generator ---------------------------------------------------------


def test_reports_are_byte_identical_across_runs(eval_run, eval_rerun):
    for split in ("train", "eval"):
        for name in ("index_report.json", "SchemaDiff.pb", "index_report.html"):
            first = (eval_run.output_dir / f"Split-{split}" / name).read_bytes()
            second = (eval_rerun.output_dir / f"Split-{split}" / name).read_bytes()
            assert first == second, (split, name)


def test_checked_in_examples_match_their_generator(tmp_path):
    spec = importlib.util.spec_from_file_location("make_examples", TESTDATA / "make_examples.py")
    make_examples = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_examples)

    make_examples.write(str(tmp_path / "transformed_examples"))

    regenerated = file_digests(tmp_path / "transformed_examples", base=tmp_path)
    assert regenerated == file_digests(EXAMPLES_DIR)
    assert len(regenerated) == 4


# --- the optional schema input -------------------------------------------------------------


def test_schema_input_replaces_the_transformed_schema(tmp_path):
    # month_xf gets int_domain [0, 12] (13 values) while the Trainer's Embedding
    # has 12 rows: 12 is inside the domain but over the embedding dim.
    schema_dir = tmp_path / "schema"
    schema_dir.mkdir()
    transformed = (TRANSFORM_GRAPH_DIR / "transformed_metadata" / "schema.pbtxt").read_text()
    (schema_dir / "schema.pbtxt").write_text(
        transformed.replace(
            'name: "month_xf"\n  type: INT\n',
            'name: "month_xf"\n  type: INT\n  int_domain {\n    min: 0\n    max: 12\n  }\n',
        )
    )
    run = _run(
        tmp_path / "anomalies",
        ["eval"],
        schema_dir=schema_dir,
        embedding_input_dims=MONTH_DIM,
    )

    month = run.feature("eval", "month_xf")
    assert (month["bounds"]["upper_bound"], month["bounds"]["embedding_input_dim"]) == (13, 12)
    assert _counts(run, "eval", "month_xf") == expected_counts(
        20, 20, 20, 0, 12, vocabulary=False, over_embedding_dim=2
    )
    assert _findings(run, "eval", "month_xf") == [("INDEX_OVER_EMBEDDING_DIM", "ERROR", 2)]
    assert _samples(run, "eval", "month_xf") == {"INDEX_OVER_EMBEDDING_DIM": [(12, 2)]}
    assert [r.type for r in run.schema_diff("eval").anomaly_info["month_xf"].reason] == [BIG_INT]


def test_input_dim_below_the_vocabulary_range_reports_values_over_it(tmp_path):
    # The Trainer sized product_xf's Embedding as the 40-entry vocabulary and forgot
    # the 2 OOV buckets. Eval's product_xf values >= 40: the OOV-bucket hits 40 x2 and
    # 41 x1 are in [0, 42) but over input_dim 40; 42 x2 and 57 x1 are over both.
    run = _run(
        tmp_path / "anomalies",
        ["eval"],
        features=["product_xf"],
        embedding_input_dims={"product_xf": 40},
    )

    product = run.feature("eval", "product_xf")
    assert (product["bounds"]["upper_bound"], product["bounds"]["embedding_input_dim"]) == (42, 40)
    assert _counts(run, "eval", "product_xf") == expected_counts(
        20, 24, 18, 0, 57, oov_bucket=3, out_of_range=3, over_embedding_dim=6
    )
    counts = product["counts"]
    assert counts["top_negative_values"] == []
    assert counts["top_out_of_range_values"] == [
        {"value": 42, "count": 2},
        {"value": 57, "count": 1},
    ]
    # Count descending, then value ascending.
    assert counts["top_over_embedding_dim_values"] == [
        {"value": 40, "count": 2},
        {"value": 42, "count": 2},
        {"value": 41, "count": 1},
        {"value": 57, "count": 1},
    ]
    # One finding per problem: 42 and 57 are INDEX_OUT_OF_RANGE's; the too-small
    # input_dim is the 40 x2 and 41 x1 inside the range.
    assert _findings(run, "eval", "product_xf") == [
        ("INDEX_OUT_OF_RANGE", "ERROR", 3),
        ("INDEX_OVER_EMBEDDING_DIM", "ERROR", 3),
        ("OOV_BUCKET_HITS", "INFO", 3),
    ]
    samples = _samples(run, "eval", "product_xf")
    assert samples["INDEX_OUT_OF_RANGE"] == [(42, 2), (57, 1)]
    assert samples["INDEX_OVER_EMBEDDING_DIM"] == [(40, 2), (41, 1)]
    (over_dim,) = [f for f in product["findings"] if f["reason"] == "INDEX_OVER_EMBEDDING_DIM"]
    assert over_dim["description"].startswith(
        "3 of 24 values of 'product_xf' in split 'eval' are >= the embedding input_dim 40 "
        "(embedding_input_dims parameter) but inside the feature's range [0, 42)."
    )
    report = run.report("eval")
    assert (report["blessed"], report["num_errors"], report["num_warnings"]) == (False, 2, 0)
    product_diff = run.schema_diff("eval").anomaly_info["product_xf"]
    assert [r.type for r in product_diff.reason] == [BIG_INT, BIG_INT]


# --- a feature whose kind varies between examples ----------------------------------------


def _example(product_xf: list) -> bytes:
    if all(isinstance(v, int) for v in product_xf):
        feature = tf.train.Feature(int64_list=tf.train.Int64List(value=product_xf))
    elif all(isinstance(v, float) for v in product_xf):
        feature = tf.train.Feature(float_list=tf.train.FloatList(value=product_xf))
    else:
        feature = tf.train.Feature(bytes_list=tf.train.BytesList(value=product_xf))
    features = tf.train.Features(feature={"product_xf": feature})
    return tf.train.Example(features=features).SerializeToString()


def test_ints_are_checked_when_other_examples_store_floats_or_bytes(tmp_path):
    # One batch mixes int64, float and bytes in product_xf, so no single-type
    # parse fits it: the ints must still be checked, only the rest is non-integer.
    split_dir = tmp_path / "examples" / "Split-mixed"
    split_dir.mkdir(parents=True)
    with tf.io.TFRecordWriter(str(split_dir / "part-0")) as writer:
        for row in ([3], [50], [2.5], [b"x"], [7, 41], [2.5]):
            writer.write(_example(row))

    run = _run(
        tmp_path / "anomalies",
        ["mixed"],
        examples_uri=tmp_path / "examples",
        features=["product_xf"],
    )

    # ints 3, 7 in vocabulary, 41 in an OOV bucket, 50 beyond [0, 42) and so over
    # the default input_dim 42 too; 2.5 x2 and b"x" non-integer.
    assert _counts(run, "mixed", "product_xf") == expected_counts(
        6, 7, 2, 3, 50, oov_bucket=1, out_of_range=1, over_embedding_dim=1, non_integer=3
    )
    counts = run.feature("mixed", "product_xf")["counts"]
    assert counts["top_offending_values"] == [{"value": 50, "count": 1}]
    assert counts["top_out_of_range_values"] == [{"value": 50, "count": 1}]
    assert counts["top_over_embedding_dim_values"] == [{"value": 50, "count": 1}]
    assert counts["top_non_integer_values"] == [
        {"value": "2.5", "count": 2},
        {"value": "x", "count": 1},
    ]
    assert _findings(run, "mixed", "product_xf") == [
        ("INDEX_OUT_OF_RANGE", "ERROR", 1),
        ("NON_INTEGER_VALUES", "ERROR", 3),
        ("OOV_BUCKET_HITS", "INFO", 1),
    ]
    samples = _samples(run, "mixed", "product_xf")
    assert samples["INDEX_OUT_OF_RANGE"] == [(50, 1)]
    assert samples["NON_INTEGER_VALUES"] == [("2.5", 2), ("x", 1)]


# --- inputs that cannot be validated (fail before Beam starts) -----------------------------


def test_split_without_folder_raises_naming_the_folder(tmp_path):
    examples, graph, anomalies = _artifacts(tmp_path / "anomalies", ["train", "valid"])

    with pytest.raises(ValueError, match="Split-valid' does not exist"):
        Executor().Do(
            {"examples": [examples], "transform_graph": [graph]},
            {"anomalies": [anomalies]},
            _exec_properties(),
        )
