"""Notebook views of a real anomalies artifact: embedding_guard.display and TFDV's own."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import report_page
import tfx_taxi
import validator_runs
from IPython.core.interactiveshell import InteractiveShell
from IPython.display import HTML
from IPython.utils.capture import capture_output

import embedding_guard
from embedding_guard.reports import mlmd_runs, notebook, report_io


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> validator_runs.ValidatorRuns:
    return validator_runs.shared_runs(tmp_path_factory)


@pytest.fixture(scope="module")
def shell() -> InteractiveShell:
    """An IPython shell, so display() publishes rich output as in Jupyter."""
    return InteractiveShell.instance()


def _html_outputs(captured) -> list[str]:
    return [output.data["text/html"] for output in captured.outputs if "text/html" in output.data]


def test_display_of_a_tfx_artifact_shows_the_report(runs, shell):
    store = mlmd_runs.open_store(str(runs.metadata))
    blocked = mlmd_runs.validator_runs(store)[0].artifact
    assert blocked.uri == runs.blocked_anomalies

    with capture_output() as captured:
        result = embedding_guard.display(blocked)

    assert result is None
    (shown,) = _html_outputs(captured)
    page = report_page.read(shown)
    assert page.verdict.startswith("BLOCKED: 3 errors in split eval.")
    assert page.counts["eval"]["city_xf"]["negative"] == "3"
    assert page.counts["eval"]["month_xf"]["over_embedding_dim"] == "2"
    assert page.counts["train"]["product_xf"]["in_vocab"] == "21"
    assert f"anomalies {runs.blocked_anomalies} \u00b7 blessed 0" in page.text


def test_display_of_a_uri_shows_every_split_folder(runs, shell):
    with capture_output() as captured:
        embedding_guard.display(runs.blessed_anomalies)

    (shown,) = _html_outputs(captured)
    page = report_page.read(shown)
    # Checked: age_xf city_xf product_xf, and month_xf given input_dim 12; clicked is not.
    assert page.verdict == (
        "OK: no checked index would fail an embedding lookup in split train. Coverage: 4 of 5 "
        "categorical integer feature(s) checked, 1 not checked (listed below)."
    )
    assert sorted(page.counts) == ["train"]


def test_report_html_is_an_ipython_html_fragment(runs):
    shown = notebook.report_html(os.fspath(runs.blocked_anomalies))

    assert isinstance(shown, HTML)
    assert shown.data.startswith("<style>")
    assert "<html" not in shown.data


def test_display_rejects_other_objects():
    with pytest.raises(TypeError) as raised:
        embedding_guard.display(42)

    assert str(raised.value) == (
        "display() takes an ExampleAnomalies artifact of EmbeddingIndexValidator (or a "
        "one-element list of it) or its URI, got int 42."
    )


def test_tfdv_loads_and_displays_the_schema_diff(runs, shell):
    import tensorflow_data_validation as tfdv
    from tensorflow_data_validation.utils.anomalies_util import load_anomalies_binary

    anomalies = load_anomalies_binary(
        os.path.join(runs.blocked_anomalies, "Split-eval", "SchemaDiff.pb")
    )

    assert sorted(anomalies.anomaly_info) == ["city_xf", "month_xf", "product_xf"]
    city = anomalies.anomaly_info["city_xf"]
    assert city.severity == city.ERROR
    assert city.reason[0].short_description == "Negative embedding index"
    assert city.reason[0].description.startswith("[NEGATIVE_INDEX] 3 of 19 values of 'city_xf'")
    # month_xf's input_dim 12 is also its bound: its 12s are out of range, reported once.
    month_reasons = [r.short_description for r in anomalies.anomaly_info["month_xf"].reason]
    assert month_reasons == ["Index beyond the valid range"]
    with capture_output() as captured:
        tfdv.display_anomalies(anomalies)
    (shown,) = _html_outputs(captured)
    assert "city_xf" in shown
    # city_xf also has an OOV WARNING, so TFDV's convention names it "Multiple errors".
    assert "Multiple errors" in shown
    assert "[NEGATIVE_INDEX] 3 of 19 values of" in shown
    assert "[INDEX_OUT_OF_RANGE] 3 of 24 values of" in shown
    assert "INDEX_OVER_EMBEDDING_DIM" not in shown


def test_tfdv_sees_no_anomaly_in_a_clean_split(runs):
    from tensorflow_data_validation.utils.anomalies_util import load_anomalies_binary

    anomalies = load_anomalies_binary(
        os.path.join(runs.blessed_anomalies, "Split-train", "SchemaDiff.pb")
    )

    assert dict(anomalies.anomaly_info) == {}
    assert not anomalies.HasField("dataset_anomaly_info")


def test_display_says_in_range_for_features_without_vocabulary(runs, shell):
    with capture_output() as captured:
        embedding_guard.display(runs.blocked_anomalies)

    page = report_page.read(_html_outputs(captured)[0])
    # month_xf is an identity feature: its 18 valid values are in range, not "in vocab".
    assert page.counts["eval"]["month_xf"]["in_range"] == "18"
    assert "in_vocab" not in page.counts["eval"]["month_xf"]
    assert page.counts["eval"]["city_xf"]["in_vocab"] == "16"


def test_display_of_a_truncated_report_is_an_input_error(runs, tmp_path):
    import shutil

    from embedding_guard.errors import InputError

    copy = tmp_path / "anomalies"
    shutil.copytree(runs.blessed_anomalies, copy)
    report = copy / "Split-train" / "index_report.json"
    report.write_bytes(report.read_bytes()[:-40])

    with pytest.raises(InputError) as raised:
        notebook.report_html(str(copy))

    assert str(raised.value).startswith(f"{str(report)!r} is not complete JSON (")


def test_a_check_result_reprs_as_one_short_line():
    assert repr(tfx_taxi.blocked()) == (
        "<CheckResult BLOCKED: splits eval, train; 1 problem(s): 2 error(s), 0 warning(s); "
        "6 of 14 categorical integer feature(s) checked, 8 not checked; .summary() says more>"
    )
    assert repr(tfx_taxi.clean()).startswith(
        "<CheckResult OK: splits eval, train; 0 problem(s): 0 error(s), 0 warning(s); "
    )


def test_summary_says_the_problems_the_unchecked_and_the_verdict_last():
    summary = tfx_taxi.blocked().summary()

    # By hand: company_xf's OOV buckets are rows 53..62 of a 53-row table; eval has
    # 1,787 values in them of 5,091, train 3,361 of 9,909 (TFX's shipped data).
    assert summary.splitlines() == [
        "ERROR   splits eval, train, feature company_xf: INDEX_OVER_EMBEDDING_DIM (eval: 1,787 of 5,091",
        "        values; train: 3,361 of 9,909 values)",
        "        fix: Size the Embedding as 63 (vocabulary plus OOV buckets), e.g. with",
        "          embedding_guard.embedding_input_dim().",
        "not checked (8): dropoff_census_tract_xf, dropoff_community_area_xf, pickup_census_tract_xf,",
        "  pickup_community_area_xf, tips_xf, trip_start_day_xf, trip_start_hour_xf, trip_start_month_xf",
        "BLOCKED: 2 errors in 2 of 2 splits (eval, train); 6 of 14 categorical integer feature(s) checked, 8",
        "  not checked (listed above); the Trainer must not run.",
    ]  # fmt: skip
    assert tfx_taxi.clean().summary().splitlines()[-2:] == [
        "OK: no checked index would fail an embedding lookup in 2 splits (eval, train); 6 of 14 categorical",
        "  integer feature(s) checked, 8 not checked (listed above).",
    ]  # fmt: skip


@pytest.mark.parametrize("result", [tfx_taxi.clean, tfx_taxi.blocked], ids=["clean", "blocked"])
def test_the_notebook_view_is_the_first_screen_under_10_kb(result):
    shown = result()._repr_html_()

    assert len(shown.encode()) < 10_000
    page = report_page.read(shown)
    assert page.verdict.startswith("OK:" if result is tfx_taxi.clean else "BLOCKED:")
    assert "Checked (6) company_xf" in page.text
    # The first screen only: no feature table, no card.
    assert "Checked features" not in page.text
    assert page.counts == {}


def test_display_outside_a_notebook_prints_the_summary(runs):
    # A fresh interpreter: no IPython shell, as in a script.
    shown = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, embedding_guard; embedding_guard.display(sys.argv[1])",
            runs.blocked_anomalies,
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert shown.returncode == 0, shown.stderr[-3000:]
    reports = report_io.read_split_reports(runs.blocked_anomalies)
    assert shown.stdout == notebook.summary_text(reports) + "\n"
    assert "IPython" not in shown.stdout
    assert shown.stdout.splitlines()[-1].startswith("  ")  # the verdict, wrapped
    assert "BLOCKED: 3 errors in 1 of 2 splits (eval)" in shown.stdout
