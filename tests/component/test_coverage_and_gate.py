"""Coverage, the gated stage and hints in the caller's syntax, on the checked-in testdata.

From testdata/make_examples.py: the transformed schema has five integer
features. age_xf, city_xf and product_xf have bounds in the transform graph;
month_xf passes through with none, and clicked is the label. So a plain run
checks 3 of 5 and leaves 2 not checked. The demo model (model_builders) looks up
the four *_xf features and never the label.
"""

from __future__ import annotations

import json
import logging

import pytest
from component_testlib import EXAMPLES_DIR, TRANSFORM_GRAPH_DIR, run_executor
from model_builders import DEMO_EMBEDDING_DIMS

from embedding_guard.cli import main as cli

CHECK = ["check", "--transform-graph", str(TRANSFORM_GRAPH_DIR), "--examples", str(EXAMPLES_DIR)]
PLAIN_COVERAGE = "3 of 5 categorical integer feature(s) checked, 2 not checked"


def _check(capsys, *flags: str) -> tuple[int, str]:
    capsys.readouterr()
    code = cli.main([*CHECK, *flags])
    return code, capsys.readouterr().out


def _check_json(capsys, *flags: str) -> tuple[int, dict]:
    code, out = _check(capsys, *flags, "--json")
    return code, json.loads(out)


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> str:
    """The demo Trainer's export alone (not every test model): about 20 s on 2 busy cores."""
    import model_builders

    path = str(tmp_path_factory.mktemp("models") / "demo")
    model_builders._BUILDERS["demo"](path)  # noqa: SLF001
    return path


# --- --json's verdict ------------------------------------------------------------------------


def test_json_has_the_runs_verdict_beside_the_split_reports(capsys):
    code, document = _check_json(capsys, "--split", "train")

    assert code == cli.EXIT_CLEAN
    assert sorted(document) == ["_verdict", "train"]
    assert document["train"]["num_examples"] == 20
    assert document["_verdict"] == {
        "verdict": "OK",
        "blessed": True,
        "gate": "Trainer",
        "problems": 0,
        "errors": 0,
        "warnings": 0,
        "blocked_splits": [],
        "coverage": PLAIN_COVERAGE,
        "checked_features": ["age_xf", "city_xf", "product_xf"],
        "not_checked_features": ["clicked", "month_xf"],
        "excluded_features": [],
        "not_looked_up_features": [],
        "model": None,
        "model_sized_features": [],
    }


def test_json_verdict_counts_the_problems_of_every_split(capsys):
    code, document = _check_json(capsys, "--embedding-dim", "month_xf=12")

    verdict = document.pop("_verdict")
    assert code == cli.EXIT_BLOCKED
    assert (verdict["verdict"], verdict["blessed"]) == ("BLOCKED", False)
    assert verdict["blocked_splits"] == ["eval", "test"]
    findings = [f for report in document.values() for f in _all_findings(report)]
    errors = sum(f["severity"] == "ERROR" for f in findings)
    warnings = sum(f["severity"] == "WARNING" for f in findings)
    assert (verdict["errors"], verdict["warnings"]) == (errors, warnings)
    assert verdict["problems"] == errors + warnings > 0
    assert verdict["coverage"] == "4 of 5 categorical integer feature(s) checked, 1 not checked"


def _all_findings(report: dict) -> list[dict]:
    return report["split_findings"] + [
        f for feature in report["features"] for f in feature["findings"]
    ]


# --- unchecked_severity ----------------------------------------------------------------------


def test_unchecked_severity_error_blocks_a_split_that_is_otherwise_clean(capsys):
    code, document = _check_json(capsys, "--split", "train", "--unchecked-severity", "ERROR")

    findings = [
        (f["reason"], f["feature"], f["severity"]) for f in document["train"]["split_findings"]
    ]
    assert code == cli.EXIT_BLOCKED
    assert findings == [
        ("FEATURE_NOT_CHECKED", "clicked", "ERROR"),
        ("FEATURE_NOT_CHECKED", "month_xf", "ERROR"),
    ]


def test_unchecked_severity_warning_reports_without_blocking(capsys):
    code, document = _check_json(capsys, "--split", "train", "--unchecked-severity", "WARNING")

    assert code == cli.EXIT_CLEAN
    assert document["_verdict"]["warnings"] == 2
    assert {f["severity"] for f in document["train"]["split_findings"]} == {"WARNING"}


def test_the_executor_takes_unchecked_severity_from_its_exec_properties(tmp_path):
    anomalies = tmp_path / "anomalies"
    run_executor(anomalies, {"unchecked_severity": "ERROR"}, splits=("train",))

    report = json.loads((anomalies / "Split-train" / "index_report.json").read_text())
    assert report["blessed"] is False
    assert [f["reason"] for f in report["split_findings"]] == ["FEATURE_NOT_CHECKED"] * 2


# --- the caller's syntax ---------------------------------------------------------------------


def test_the_cli_hints_name_flags_never_python_parameters(capsys):
    code, out = _check(capsys, "--split", "train")

    assert code == cli.EXIT_CLEAN
    assert "--embedding-dim month_xf=N" in out
    assert "--feature month_xf" in out
    assert "embedding_input_dims=" not in out
    assert "features=[" not in out


def test_features_left_out_by_feature_flags_are_excluded_not_unchecked(capsys):
    code, document = _check_json(
        capsys, "--split", "train", "--feature", "city_xf", "--unchecked-severity", "ERROR"
    )

    unchecked = document["train"]["unchecked_features"]
    assert code == cli.EXIT_CLEAN  # nothing is "not checked", so nothing blocks
    assert {u["name"]: u["role"] for u in unchecked} == {
        "age_xf": "excluded",
        "clicked": "excluded",
        "month_xf": "excluded",
        "product_xf": "excluded",
    }
    # age_xf has a bucketize bound: that is not why it went unchecked.
    age = next(u for u in unchecked if u["name"] == "age_xf")
    assert (age["why"], age["parameter_that_would_check_it"]) == (
        "excluded by --feature",
        "--feature age_xf",
    )
    assert document["_verdict"]["not_checked_features"] == []


# --- the TFX log -----------------------------------------------------------------------------


def test_the_tfx_log_gives_coverage_and_how_to_check_each_unchecked_feature(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="absl")
    run_executor(tmp_path / "anomalies", {}, splits=("train", "eval"))

    log = caplog.text
    assert f"Coverage: {PLAIN_COVERAGE}." in log
    assert "2 integer feature(s) were not checked" in log
    hint = (
        "; embedding_input_dims={'month_xf': N} (the Trainer's table size), a model that looks "
        "it up (the `model` input), or features=[..., 'month_xf'] with an int_domain in the "
        "schema would check it"
    )
    assert any(
        line.startswith("  month_xf: ") and line.endswith(hint) for line in log.splitlines()
    ), log
    assert "the Trainer is blocked" in log


# --- with a model: the Pusher is gated -------------------------------------------------------


@pytest.mark.slow
def test_with_a_model_the_executor_gates_the_pusher_and_names_the_label(tmp_path, caplog, model):
    caplog.set_level(logging.INFO, logger="absl")
    anomalies = run_executor(tmp_path / "anomalies", {}, splits=("train",), model_dir=model)

    report = json.loads((tmp_path / "anomalies" / "Split-train" / "index_report.json").read_text())
    # product_xf's table is 40 rows for a range of 42 (EMBEDDING_TABLE_TOO_SMALL).
    assert anomalies.get_int_custom_property("blessed") == 0
    assert report["gate"] == "Pusher"
    assert [(u["name"], u["role"]) for u in report["unchecked_features"]] == [
        ("clicked", "not_looked_up")
    ]
    assert "the Pusher is blocked" in caplog.text
    assert "the Trainer is blocked" not in caplog.text
    assert "Integer feature(s) never looked up by the model (labels, weights): clicked." in (
        caplog.text
    )


@pytest.mark.slow
def test_with_a_model_the_cli_verdict_names_the_pusher(capsys, model):
    code, document = _check_json(capsys, "--split", "train", "--model", model)

    verdict = document["_verdict"]
    assert code == cli.EXIT_BLOCKED
    assert (verdict["gate"], document["train"]["gate"]) == ("Pusher", "Pusher")
    assert verdict["checked_features"] == sorted(DEMO_EMBEDDING_DIMS)
    assert verdict["not_looked_up_features"] == ["clicked"]
    assert verdict["not_checked_features"] == []


# --- the Python API --------------------------------------------------------------------------


def test_the_python_api_takes_unchecked_severity_and_gives_coverage_and_gate():
    import embedding_guard

    result = embedding_guard.check(
        EXAMPLES_DIR, TRANSFORM_GRAPH_DIR, splits=["train"], unchecked_severity="ERROR"
    )

    assert result.blessed is False
    assert (result.gate, result.coverage) == ("Trainer", PLAIN_COVERAGE)
    # Python hints name parameters, not flags.
    (month,) = [u for u in result.reports["train"].unchecked_features if u.name == "month_xf"]
    assert month.parameter_that_would_check_it.startswith("embedding_input_dims={'month_xf': N}")


def test_a_feature_without_bound_named_by_feature_asks_for_flags(capsys):
    code = cli.main([*CHECK, "--split", "train", "--feature", "month_xf"])

    error = capsys.readouterr().err
    assert code == cli.EXIT_USAGE
    assert "Pass --embedding-dim month_xf=N, name its vocabulary with " in error
    assert "--feature-vocabulary month_xf=VOCAB" in error
    assert "embedding_input_dims" not in error


def test_an_unknown_vocabulary_is_named_as_the_flag_gave_it(capsys):
    code = cli.main([*CHECK, "--split", "train", "--feature-vocabulary", "city_xf=cities"])

    error = capsys.readouterr().err
    assert code == cli.EXIT_USAGE
    assert "--feature-vocabulary city_xf=cities is not a vocabulary of this transform graph" in (
        error
    )
