"""VOCABULARY_REMAPPED on real Transform spans and real models (issue #27).

Every count is checked against an independent count made here from the vocabulary
files: each value's index under the current graph and under the old one, a hash
bucket (tf.strings.to_hash_bucket_fast, as TensorFlow's lookup tables hash unknown
keys) where a key is in no vocabulary.

* Small spans: tft_graphs.preprocessing_fn on its 12 rows (span 1, TF1 and TF2,
  shared with the graph-analysis tests) and on span 2, where payment's order flips
  (TF1: text and tfrecord_gzip vocabularies, with and without OOV buckets).
* Taxi spans (TF2): TFX's taxi preprocessing_fn on data.csv (span 1) and on span 2 with
  most Cash and Taxi Affiliation Services rows gone; models trained on span 1 in
  tf_keras and Keras 3, saved with their transform layer.
"""

import json

import numpy as np
import pytest
import remap_builders
import tensorflow as tf
import tft_graphs
from component_testlib import EXAMPLES_DIR, TRANSFORM_GRAPH_DIR, check_testdata, run_executor
from model_builders import build_keras_lookup

from embedding_guard import api, warm_start_embeddings
from embedding_guard.bounds import graph_analysis, remap_sources, transform_graph
from embedding_guard.cli import main as cli
from embedding_guard.errors import InputError
from embedding_guard.verdict.reasons import Reason

pytestmark = pytest.mark.slow

REMAPPED = Reason.VOCABULARY_REMAPPED


# --- the independent count -----------------------------------------------------------------


def _lookup(graph: str, feature: str) -> tuple[list[bytes], int, int]:
    """(the vocabulary file's keys, OOV buckets, default_value) of a feature's lookup."""
    derivation = transform_graph.load_transform_graph(graph).derivations[feature]
    path = derivation.vocabulary_file
    if derivation.file_format == graph_analysis.TFRECORD_GZIP:
        keys = [bytes(r) for r in tf.data.TFRecordDataset(path, "GZIP").as_numpy_iterator()]
    else:
        with open(path, "rb") as f:
            keys = f.read().splitlines()
    default = -1 if derivation.default_value is None else derivation.default_value
    return keys, derivation.num_oov_buckets, default


def _index(token: bytes, lookup: tuple[list[bytes], int, int]) -> int:
    keys, buckets, default = lookup
    if token in keys:
        return keys.index(token)
    if buckets:
        return len(keys) + int(tf.strings.to_hash_bucket_fast([token], buckets).numpy()[0])
    return default


def _expected(tokens, old, new, *, raw: bool, table_rows: int | None = None) -> int:
    """Values that reach, inside the old table, a row the old graph gave another token.

    A token new to a vocabulary grown past the old one's rows is no remap; in raw
    mode every value counts, transformed examples only show the vocabulary's rows.
    """
    old_keys, new_keys = old[0], new[0]
    rows = len(old_keys) + old[1] if table_rows is None else table_rows
    count = 0
    for token in tokens:
        new_index = _index(token, new)
        if new_index >= rows or (not raw and not 0 <= new_index < len(new_keys)):
            continue
        if token not in old_keys and token in new_keys and new_index >= len(old_keys):
            continue
        count += _index(token, old) != new_index
    return count


def _counts(result) -> dict[tuple[str, str], int]:
    return {
        (split, f.feature): f.remap.remapped_values
        for split, report in result.reports.items()
        for f in report.features
        if f.remap is not None
    }


def _remap_findings(result) -> dict[tuple[str, str], int]:
    return {
        (split, f.feature): f.count
        for split, report in result.reports.items()
        for f in report.findings
        if f.reason is REMAPPED
    }


# --- small spans, TF1 and TF2 --------------------------------------------------------------


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    return remap_builders.built_small_spans(str(tmp_path_factory.mktemp("tft_graphs")))


def test_small_tf1_spans_remapped_counts_equal_the_independent_count(small):
    old_graph, new_graph = small["span1_tf1"], small["span2_tf1"]
    result = api.check(small["raw"], new_graph, baseline_transform_graph=old_graph)

    rows = {"train": remap_builders.span2_of_rows(tft_graphs.ROWS), "eval": tft_graphs.ROWS}
    for feature in ("payment_xf", "payment_gz_xf", "company_xf"):
        raw = tft_graphs.EXPECTED_VOCABULARY[feature][0][0]
        old, new = _lookup(old_graph, feature), _lookup(new_graph, feature)
        for split, split_rows in rows.items():
            tokens = [row[raw].encode() for row in split_rows]
            assert _counts(result)[(split, feature)] == _expected(tokens, old, new, raw=True), (
                split,
                feature,
            )
    # payment's two vocabularies (text, and tfrecord_gzip behind 2 buckets) flipped:
    # every value of span 2 reaches another row. company's order did not change.
    assert _counts(result)[("train", "payment_xf")] == 12
    assert _counts(result)[("train", "company_xf")] == 0
    assert sorted(_remap_findings(result)) == [
        (split, feature)
        for split in ("eval", "train")
        for feature in ("payment_gz_xf", "payment_xf")
    ]
    payment = result.reports["train"].feature("payment_xf").remap
    assert [(m.token, m.old_row, m.new_row, m.count) for m in payment.top_moved] == [
        ("card", 1, 0, 7),
        ("cash", 0, 1, 4),
        ("chip", None, 2, 1),
    ]
    assert (payment.added_sample, payment.removed_sample) == (("chip",), ("coin",))
    assert not result.blessed


def test_vocabulary_remapped_severity_warning_reports_without_blocking(small, capsys):
    args = ["check", "--examples", small["raw"], "--transform-graph", small["span2_tf1"]]
    args += ["--baseline-transform-graph", small["span1_tf1"], "--split", "train", "--json"]
    capsys.readouterr()
    code = cli.main([*args, "--vocabulary-remapped-severity", "WARNING"])
    report = json.loads(capsys.readouterr().out)["train"]

    remapped = [
        f for r in report["features"] for f in r["findings"] if f["reason"] == "VOCABULARY_REMAPPED"
    ]
    assert {f["severity"] for f in remapped} == {"WARNING"} and len(remapped) == 2
    assert code == cli.EXIT_CLEAN


@pytest.mark.parametrize("mode", ["tf1", "tf2"])
def test_an_identical_transform_rerun_remaps_nothing(small, mode):
    graph = small[f"span1_{mode}"]
    result = api.check(small["raw"], graph, baseline_transform_graph=graph)

    assert _counts(result) and set(_counts(result).values()) == {0}
    assert _remap_findings(result) == {}
    assert all(not f.remap.changed for r in result.reports.values() for f in r.features if f.remap)


def test_store_frequency_vocabularies_compare_their_tokens_not_their_lines(tmp_path_factory):
    shapes = tft_graphs.built_lookup_shapes(str(tmp_path_factory.mktemp("lookup_shapes")))
    # "freq token" lines, a space inside a token written as __SPACE__: the table's keys.
    keys = tuple(t.replace(" ", "__SPACE__").encode() for t in tft_graphs.LOOKUP_VOCABULARY)
    for mode in ("tf1", "tf2"):
        derivations = transform_graph.load_transform_graph(shapes[mode]["graph"]).derivations
        for shape in ("store_frequency", "store_frequency_oov2"):
            assert remap_sources.tokens_of(derivations[shape]) == keys, (mode, shape)


def test_a_baseline_without_a_current_graph_is_an_input_error(small, capsys):
    code = cli.main(
        [
            "check",
            "--schema",
            str(TRANSFORM_GRAPH_DIR / "transformed_metadata" / "schema.pbtxt"),
            "--examples",
            str(EXAMPLES_DIR),
            "--baseline-transform-graph",
            small["span1_tf2"],
        ]
    )
    assert code == 2
    # The fix names the flag as the CLI spells it, not the API's parameter.
    assert "pass --transform-graph too" in capsys.readouterr().err


# --- the taxi spans and models -------------------------------------------------------------


@pytest.fixture(scope="module")
def taxi(tmp_path_factory):
    return remap_builders.built_taxi_spans(str(tmp_path_factory.mktemp("taxi_tft")))


@pytest.fixture(scope="module", params=["keras3", "tf_keras"])
def span1_model(request, taxi, tmp_path_factory):
    path = str(tmp_path_factory.mktemp("span1_models") / request.param)
    return remap_builders.train_span1_model(taxi["span1_graph"], path, request.param)


def _taxi_tokens() -> dict[str, dict[str, list[bytes]]]:
    _, rows = tft_graphs.taxi_rows()
    rows2 = remap_builders.span2_rows(rows)
    parts = {"train": rows2[:5000], "eval": rows2[5000:]}
    return {
        split: {
            raw: [row[raw][0] if row[raw] else b"" for row in part]
            for raw in ("payment_type", "company")
        }
        for split, part in parts.items()
    }


@pytest.mark.parametrize("kind", ["span2_transformed", "span2_raw"])
def test_taxi_span2_blocks_with_exact_counts_from_the_baseline_graph(taxi, kind):
    result = api.check(
        taxi[kind], taxi["span2_graph"], baseline_transform_graph=taxi["span1_graph"]
    )

    tokens = _taxi_tokens()
    expected = {}
    for feature in remap_builders.REMAP_FEATURES:
        old = _lookup(taxi["span1_graph"], feature)
        new = _lookup(taxi["span2_graph"], feature)
        raw = feature.removesuffix("_xf")
        for split in ("train", "eval"):
            expected[(split, feature)] = _expected(
                tokens[split][raw], old, new, raw=kind == "span2_raw"
            )
    assert _remap_findings(result) == expected
    assert all(count > 100 for count in expected.values())
    assert not result.blessed
    payment = result.reports["train"].feature("payment_type_xf")
    (finding,) = [f for f in payment.findings if f.reason is REMAPPED]
    assert "'Credit Card' row 1 -> row 0" in finding.description
    assert "'Cash' row 0 -> row 1" in finding.description
    assert "warm_start_embeddings" in finding.description
    company = result.reports["train"].feature("company_xf").remap
    moved = {m.token: (m.old_row, m.new_row) for m in company.top_moved}
    assert moved["Taxi Affiliation Services"] == (0, 3)


def test_taxi_span2_with_the_span1_model_blocks_as_the_baseline_graph_does(
    taxi, span1_model, capsys
):
    model, _ = span1_model
    args = ["check", "--examples", taxi["span2_transformed"], "--transform-graph"]
    capsys.readouterr()
    code = cli.main([*args, taxi["span2_graph"], "--model", model, "--json"])
    by_model = json.loads(capsys.readouterr().out)
    code_baseline = cli.main(
        [*args, taxi["span2_graph"], "--baseline-transform-graph", taxi["span1_graph"], "--json"]
    )
    by_baseline = json.loads(capsys.readouterr().out)

    assert code == code_baseline == cli.EXIT_BLOCKED

    def remapped(document):
        return {
            (split, f["feature"]): f["vocabulary_remap"]["remapped_values"]
            for split, report in document.items()
            if isinstance(report, dict) and "features" in report
            for f in report["features"]
            if f.get("vocabulary_remap")
        }

    assert remapped(by_model) == remapped(by_baseline)
    assert remapped(by_model)[("train", "payment_type_xf")] > 0
    for report in (by_model["train"], by_baseline["train"]):
        reasons = {f["feature"]: f["reason"] for f in report["features"] for f in f["findings"]}
        assert reasons.get("payment_type_xf") == "VOCABULARY_REMAPPED"


def test_a_baseline_sharing_no_vocabulary_with_the_current_graph_is_an_input_error(taxi, capsys):
    # The taxi graph derives payment_type_xf and company_xf, the testdata graph city_xf
    # and product_xf: another pipeline's graph, as a wrong Resolver would give.
    capsys.readouterr()
    code = check_testdata("--baseline-transform-graph", taxi["span1_graph"])
    err = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert code == 2
    (line,) = err
    assert (
        f"--baseline-transform-graph {taxi['span1_graph']!r} has none of the vocabularies" in line
    )
    assert "['city_xf', 'product_xf']" in line and "'payment_type_xf'" in line


def test_span1_with_its_own_model_passes(taxi, span1_model):
    model, _ = span1_model
    result = api.check(taxi["span1_raw"], taxi["span1_graph"], model=model)

    assert _remap_findings(result) == {}
    assert set(_counts(result)) >= {("train", f) for f in remap_builders.REMAP_FEATURES}
    assert set(_counts(result).values()) == {0}
    assert result.blessed, result.summary()


def test_the_executor_counts_remaps_on_beam(taxi, tmp_path):
    anomalies = run_executor(
        tmp_path / "anomalies",
        {},
        examples_dir=taxi["span2_transformed"],
        splits=("train", "eval"),
        transform_graph_dir=taxi["span2_graph"],
        baseline_transform_graph_dir=taxi["span1_graph"],
    )
    assert anomalies.get_int_custom_property("blessed") == 0
    in_process = api.check(
        taxi["span2_transformed"],
        taxi["span2_graph"],
        baseline_transform_graph=taxi["span1_graph"],
    )
    for split in ("train", "eval"):
        document = json.loads(
            (tmp_path / "anomalies" / f"Split-{split}" / "index_report.json").read_text()
        )
        for feature in document["features"]:
            remap = feature["vocabulary_remap"]
            if remap is not None:
                report = in_process.reports[split].feature(feature["feature"])
                assert remap["remapped_values"] == report.remap.remapped_values


def test_warm_start_embeddings_puts_each_token_on_its_new_row(taxi, span1_model):
    model, trained = span1_model
    matrices = warm_start_embeddings(model, taxi["span2_graph"])

    dims = transform_graph.embedding_input_dims(taxi["span2_graph"])
    assert sorted(matrices) == sorted(remap_builders.REMAP_FEATURES)
    for feature, matrix in matrices.items():
        old_keys = _lookup(taxi["span1_graph"], feature)[0]
        new_keys = _lookup(taxi["span2_graph"], feature)[0]
        assert matrix.shape == (dims[feature], trained[feature].shape[1])
        for row, token in enumerate(new_keys):
            if token in old_keys:
                np.testing.assert_array_equal(matrix[row], trained[feature][old_keys.index(token)])
        # OOV rows get the initializer, not the old OOV rows.
        for row in range(len(new_keys), dims[feature]):
            assert not any(np.array_equal(matrix[row], old) for old in trained[feature])
    cash_old = _lookup(taxi["span1_graph"], "payment_type_xf")[0].index(b"Cash")
    cash_new = _lookup(taxi["span2_graph"], "payment_type_xf")[0].index(b"Cash")
    assert (cash_old, cash_new) == (0, 1)
    # A warm-started span-2 Embedding reads, for 'Cash', the span-1 model's 'Cash' row.
    import keras

    layer = keras.layers.Embedding(
        dims["payment_type_xf"],
        matrices["payment_type_xf"].shape[1],
        embeddings_initializer=keras.initializers.Constant(matrices["payment_type_xf"]),
    )
    np.testing.assert_allclose(
        layer(np.array([cash_new])).numpy()[0], trained["payment_type_xf"][cash_old]
    )


def test_warm_start_embeddings_from_a_model_without_embedding_tables_is_an_input_error():
    # A transform graph's transform_fn passed as the base model: it has a transform
    # layer but no table, and an empty result would cold-start the Trainer in silence.
    with pytest.raises(InputError, match=r"no embedding table of a vocabulary feature") as raised:
        warm_start_embeddings(str(TRANSFORM_GRAPH_DIR / "transform_fn"), str(TRANSFORM_GRAPH_DIR))
    assert "transform_fn'" in str(raised.value) and "['city_xf', 'product_xf']" in str(raised.value)


def test_warm_start_embeddings_from_a_file_says_it_is_a_file(tmp_path):
    a_file = tmp_path / "afile.txt"
    a_file.write_text("hello\n")
    with pytest.raises(InputError, match=r"afile.txt'\) is a file, not a model folder"):
        warm_start_embeddings(str(a_file), str(TRANSFORM_GRAPH_DIR))


def test_a_model_without_transform_layer_says_the_order_cannot_be_known(tmp_path, capsys):
    model = build_keras_lookup(
        str(tmp_path), "keras3", "embedding", feature="product_xf", num_tokens=42
    )
    capsys.readouterr()
    code = check_testdata("--split", "train", "--model", model, "--json")
    report = json.loads(capsys.readouterr().out)["train"]
    (finding,) = [f for f in report["split_findings"] if f["reason"] == "VOCABULARY_ORDER_UNKNOWN"]
    assert finding["severity"] == "INFO"
    assert "--baseline-transform-graph" in finding["description"]
    assert "no transform layer" in finding["description"]
    assert code in (cli.EXIT_CLEAN, cli.EXIT_BLOCKED)
