"""`check --model`, the executor's `model` input and `inspect-model` on a Trainer-like export.

The model is the demo Trainer's own serving module over the checked-in transform
graph, with product_xf's Embedding sized to its 40-entry vocabulary: the graph's
bound is 40 + 2 OOV buckets = 42 (testdata/make_examples.py), so the table is two
rows short.
"""

import json

import pytest
from component_testlib import EXAMPLES_DIR, TRANSFORM_GRAPH_DIR, run_executor
from model_builders import DEMO_EMBEDDING_DIMS, build_keras_lookup, built_models

from embedding_guard.cli import main as cli

CHECK = ["check", "--transform-graph", str(TRANSFORM_GRAPH_DIR), "--examples", str(EXAMPLES_DIR)]


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> str:
    return built_models(str(tmp_path_factory.getbasetemp() / "models")).demo


def _json_check(capsys, *extra) -> tuple[int, dict]:
    capsys.readouterr()
    code = cli.main([*CHECK, "--split", "train", *extra, "--json"])
    return code, json.loads(capsys.readouterr().out)["train"]


def _feature(report: dict, name: str) -> dict:
    return next(f for f in report["features"] if f["feature"] == name)


def test_the_models_short_table_blocks_a_clean_split(capsys, model):
    code, report = _json_check(capsys, "--model", model)

    assert DEMO_EMBEDDING_DIMS["product_xf"] == 40
    product = _feature(report, "product_xf")
    assert product["bounds"]["upper_bound"] == 42
    assert product["bounds"]["embedding_input_dim"] == 40
    assert product["bounds"]["embedding_dim_kind"] == "model"
    assert (
        "model layer 'product_xf_embedding' (Embedding, table 40 x"
        in (product["bounds"]["embedding_dim_source"])
    )
    assert [f["reason"] for f in product["findings"]] == ["EMBEDDING_TABLE_TOO_SMALL"]
    assert code == cli.EXIT_BLOCKED


def test_the_month_table_from_the_model_checks_a_feature_nothing_else_bounds(capsys, model):
    # month_xf passes through the transform graph with no bound; the model's
    # 12-row table is the only size there is.
    _, report = _json_check(capsys, "--model", model)

    month = _feature(report, "month_xf")["bounds"]
    assert (month["upper_bound"], month["bound_kind"]) == (12, "model")
    assert month["bound_source"].startswith("the model's table only: model layer")
    assert "month_xf" not in {u["name"] for u in report["unchecked_features"]}


def test_embedding_input_dims_still_override_the_model(capsys, model):
    code, report = _json_check(capsys, "--model", model, "--embedding-dim", "product_xf=42")

    product = _feature(report, "product_xf")
    assert product["bounds"]["embedding_input_dim"] == 42
    assert product["findings"] == []
    assert code == cli.EXIT_CLEAN


def test_a_looked_up_feature_left_out_of_the_check_is_a_warning(capsys, model):
    _, report = _json_check(capsys, "--model", model, "--feature", "city_xf")

    unchecked = [(f["reason"], f["feature"], f["severity"]) for f in report["split_findings"]]
    assert ("MODEL_LOOKUP_UNCHECKED", "product_xf", "WARNING") in unchecked
    assert ("MODEL_LOOKUP_UNCHECKED", "age_xf", "WARNING") in unchecked


def test_the_executor_reads_the_model_artifact(tmp_path, model):
    anomalies = run_executor(tmp_path / "anomalies", {}, splits=("train",), model_dir=model)

    assert anomalies.get_int_custom_property("blessed") == 0
    report = json.loads((tmp_path / "anomalies" / "Split-train" / "index_report.json").read_text())
    reasons = {f["reason"] for f in _feature(report, "product_xf")["findings"]}
    assert reasons == {"EMBEDDING_TABLE_TOO_SMALL"}


def test_inspect_model_lists_every_embedding_with_its_size(capsys, model):
    code = cli.main(["inspect-model", model])

    shown = capsys.readouterr().out
    assert code == cli.EXIT_CLEAN
    for feature, size in DEMO_EMBEDDING_DIMS.items():
        line = next(line for line in shown.splitlines() if line.startswith(f"  {feature} -> "))
        assert f"table {size}" in line, shown


def test_inspect_model_on_a_folder_that_is_no_model_exits_2(capsys, tmp_path):
    code = cli.main(["inspect-model", str(tmp_path)])

    error = capsys.readouterr().err
    assert code == cli.EXIT_USAGE
    assert error.startswith("embedding-guard: error: ") and error.count("\n") == 1
    assert repr(str(tmp_path)) in error


@pytest.fixture(scope="module")
def short_category_encodings(tmp_path_factory) -> dict[str, str]:
    # age_xf has 5 buckets (0..4) in the checked-in data; a 4-token CategoryEncoding
    # puts bucket 4 past the table, as a 12-token month table does for month 12.
    base = str(tmp_path_factory.mktemp("short_category_encodings"))
    return {
        flavor: build_keras_lookup(base, flavor, "one_hot", feature="age_xf", num_tokens=4)
        for flavor in ("tf_keras", "keras3")
    }


@pytest.mark.slow
@pytest.mark.parametrize(
    ("flavor", "words", "silent"),
    [
        # tf_keras guards its DenseBincount with an Assert: loud on CPU and GPU.
        ("tf_keras", "raises InvalidArgumentError on CPU and GPU", False),
        # Keras 3 one_hot is a bare OneHot: a zero row, no error anywhere.
        ("keras3", "silently returns an all-zero row on CPU and GPU", True),
    ],
)
def test_one_error_per_split_saying_what_the_models_category_encoding_does(
    capsys, short_category_encodings, flavor, words, silent
):
    capsys.readouterr()
    code = cli.main([*CHECK, "--model", short_category_encodings[flavor], "--json"])
    reports = json.loads(capsys.readouterr().out)

    assert code == cli.EXIT_BLOCKED
    splits = sorted(name for name in reports if not name.startswith("_"))
    assert splits == ["eval", "test", "train"]
    for split in splits:
        age = _feature(reports[split], "age_xf")
        errors = [f for f in age["findings"] if f["severity"] == "ERROR"]
        assert [f["reason"] for f in errors] == ["EMBEDDING_TABLE_TOO_SMALL"], (split, errors)
        (error,) = errors
        assert (
            f"The model's {'DenseBincount' if flavor == 'tf_keras' else 'OneHot'} 'cat' "
            in (error["description"])
        )
        assert words in error["description"]
        assert error["lookup"]["silent"] is silent
        assert ("assertion failed" in error["lookup"]["evidence"]) is (flavor == "tf_keras")
        assert "SILENT_WRONG_LOOKUP" not in {f["reason"] for f in age["findings"]}
