"""The HTML reports render in a real browser: headless Chromium, offline.

Chromium comes from Debian, installed by `make browser-deps` (which `make test`
and CI run first); without it the tests fail, nothing is skipped. Each test
keeps its screenshot as `report.png` in its temp dir.
"""

from __future__ import annotations

import os
import pathlib
import re
import subprocess

import numpy as np
import pytest
import report_page
import tfx_taxi
import validator_runs

from embedding_guard.cli import main as cli
from embedding_guard.reports import html_report
from embedding_guard.verdict import core, findings

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
RENDER_TIMEOUT_SECONDS = 120
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="session")
def chromium() -> str:
    """Path of Debian's chromium."""
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: run `make browser-deps`.")
    return CHROMIUM


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> validator_runs.ValidatorRuns:
    return validator_runs.shared_runs(tmp_path_factory)


def render(chromium: str, page, out_dir) -> tuple[report_page.ReportPage, str]:
    """Renders an HTML file headless; returns the rendered DOM and the screenshot path."""
    profile = out_dir / "chromium-profile"
    screenshot = out_dir / "report.png"
    base = [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}"]
    dump = subprocess.run(
        [*base, "--dump-dom", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=RENDER_TIMEOUT_SECONDS,
    )
    assert dump.returncode == 0, f"chromium --dump-dom failed:\n{dump.stderr[-3000:]}"
    shot = subprocess.run(
        [*base, f"--screenshot={screenshot}", "--window-size=1280,2000", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=RENDER_TIMEOUT_SECONDS,
    )
    assert shot.returncode == 0, f"chromium --screenshot failed:\n{shot.stderr[-3000:]}"
    with open(screenshot, "rb") as f:
        png = f.read()
    assert png.startswith(PNG_MAGIC), f"{screenshot} is not a PNG"
    # A blank 1280x2000 page compresses to a few KB; text, tables and bars do not.
    assert len(png) > 30_000, f"{screenshot} holds only {len(png)} bytes: is it blank?"
    return report_page.read(dump.stdout), str(screenshot)


# Counts of the blocked run's eval split, by hand from testdata/make_examples.py
# (month_xf checked with embedding input_dim 12). Its 3 errors: city_xf
# NEGATIVE_INDEX, month_xf and product_xf INDEX_OUT_OF_RANGE; the values over the
# input_dim are those out of range (input_dim = bound), so they get no finding of their own.
EVAL_COUNTS = {
    "age_xf": {"in_range": "20", "negative": "0", "out_of_range": "0", "over_embedding_dim": "0"},
    "city_xf": {"in_vocab": "16", "negative": "3", "out_of_range": "0", "over_embedding_dim": "0"},
    "month_xf": {"in_range": "18", "negative": "0", "out_of_range": "2", "over_embedding_dim": "2"},
    "product_xf": {
        "in_vocab": "18",
        "oov_bucket": "3",
        "negative": "0",
        "out_of_range": "3",
        "over_embedding_dim": "3",
    },
}
# Valid values: in the vocabulary, or only "in range" for the features without one.
TRAIN_VALID = {
    "age_xf": {"in_range": "20"},
    "city_xf": {"in_vocab": "20"},
    "month_xf": {"in_range": "20"},
    "product_xf": {"in_vocab": "21"},
}


def _valid(counts: dict) -> dict:
    return {
        feature: {k: v for k, v in rows.items() if k in ("in_vocab", "in_range")}
        for feature, rows in counts.items()
    }


def test_report_command_html_renders_verdict_and_counts(chromium, runs, tmp_path, capsys):
    out = tmp_path / "run.html"
    blocked_run = runs.run_ids[1]

    exit_code = cli.main(["report", str(runs.pipeline_root), "--html", str(out)])

    assert exit_code == 0, capsys.readouterr().err
    page, screenshot = render(chromium, out, tmp_path)
    assert page.verdict.startswith(
        "BLOCKED: 3 errors in split eval. These indices would fail an embedding lookup"
    )
    assert "split eval, feature city_xf: NEGATIVE_INDEX, 3 of 19 values (15.79%)" in page.verdict
    assert "split eval, feature month_xf: INDEX_OUT_OF_RANGE, 2 of 20 values" in page.verdict
    # month_xf is the off-by-one identity feature; the fix names it.
    assert "an identity feature off by one: months 1..12 need month - 1" in page.verdict
    assert "INDEX_OVER_EMBEDDING_DIM" not in page.verdict
    # The most frequent value says where it first occurs (when the run located it).
    assert re.search(
        r"most frequent: 42 ×2 (\(first at [^)]+ record [0-9,]+\))?, 57 ×1", (page.verdict)
    )
    assert f"embedding-guard: EmbeddingIndexValidator run {blocked_run}" in page.text
    assert f"Compared with run {runs.run_ids[0]}" in page.text
    assert page.counts["eval"] == EVAL_COUNTS
    assert _valid(page.counts["train"]) == TRAIN_VALID
    assert os.path.exists(screenshot)


def test_executor_split_pages_render(chromium, runs, tmp_path):
    blocked_eval = os.path.join(runs.blocked_anomalies, "Split-eval", "index_report.html")
    blessed_train = os.path.join(runs.blessed_anomalies, "Split-train", "index_report.html")
    (tmp_path / "eval").mkdir()
    (tmp_path / "train").mkdir()

    eval_page, _ = render(chromium, pathlib.Path(blocked_eval), tmp_path / "eval")
    train_page, _ = render(chromium, pathlib.Path(blessed_train), tmp_path / "train")

    assert eval_page.verdict.startswith("BLOCKED: 3 errors in split eval.")
    assert eval_page.counts == {"eval": EVAL_COUNTS}
    # Checked: age_xf city_xf product_xf, and month_xf given input_dim 12; clicked is not.
    assert train_page.verdict == (
        "OK: no checked index would fail an embedding lookup in split train. Coverage: 4 of 5 "
        "categorical integer feature(s) checked, 1 not checked (listed below)."
    )
    assert "Not checked: 1 integer feature" in train_page.text
    assert _valid(train_page.counts["train"]) == TRAIN_VALID


def test_hostile_data_renders_as_text(chromium, tmp_path):
    hostile_feature = "<img src=x onerror=alert(1)>"
    hostile_value = b"</td><script>alert(2)</script>"
    bounds = core.FeatureBounds(
        feature=hostile_feature,
        upper_bound=4,
        embedding_input_dim=4,
        bound_source="<b>bold</b> & friends",
    )
    report = findings.check_arrays(
        "<i>split</i>",
        [bounds],
        {hostile_feature: (np.asarray([hostile_value, b"ok"], dtype=object), [1, 1])},
    )
    page_path = tmp_path / "hostile.html"
    document = html_report.render_document({report.split: report}, "<script>alert(3)</script>")
    page_path.write_text(document, encoding="utf-8")

    page, _ = render(chromium, page_path, tmp_path)

    assert not page.tags & {"script", "img", "i"}
    assert page.verdict.startswith("BLOCKED: 1 error in split <i>split</i>.")
    assert hostile_feature in page.text
    assert "<b>bold</b> & friends" in page.text
    assert repr(hostile_value.decode()) in page.text


def lay_out(chromium: str, document: str, out_dir, width: int) -> report_page.Layout:
    """Lays the page out in a width x 800 window; returns what the layout probe measured."""
    out_dir.mkdir(parents=True, exist_ok=True)
    page = out_dir / f"probed-{width}.html"
    page.write_text(report_page.with_layout_probe(document), encoding="utf-8")
    dump = subprocess.run(
        [
            chromium,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={out_dir / 'chromium-profile'}",
            f"--window-size={width},800",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=RENDER_TIMEOUT_SECONDS,
    )
    assert dump.returncode == 0, f"chromium --dump-dom failed:\n{dump.stderr[-3000:]}"
    layout = report_page.layout(dump.stdout)
    assert layout.viewport[0] == width, layout
    return layout


def _taxi_page(result) -> str:
    return html_report.render_document(result.reports, "embedding-guard: TFX taxi")


# A vocabulary name with no place to break, the kind that ran into the bar chart.
LONG_VOCABULARY = "vocab_compute_and_apply_vocabulary_1_vocabulary" * 3


def _long_names_page() -> str:
    bounds = core.FeatureBounds(
        feature="company_" + "x" * 60,
        upper_bound=63,
        embedding_input_dim=53,
        vocab_size=53,
        num_oov_buckets=10,
        vocabulary=LONG_VOCABULARY,
        bound_source=f"vocabulary {LONG_VOCABULARY!r} (53 entries) + 10 OOV bucket(s)",
        embedding_dim_source="embedding_input_dims parameter",
    )
    values = np.asarray([0, 5, 55, 60, -1, 70], dtype=np.int64)
    report = findings.check_arrays("eval", [bounds], {bounds.feature: (values, np.ones(6))})
    return html_report.render_document({"eval": report}, "long names")


@pytest.mark.parametrize("width", [1280, 800])
@pytest.mark.parametrize("page", ["taxi clean", "taxi blocked", "long names"])
def test_nothing_overlaps_or_runs_off_the_page(chromium, tmp_path, page, width):
    document = {
        "taxi clean": lambda: _taxi_page(tfx_taxi.clean()),
        "taxi blocked": lambda: _taxi_page(tfx_taxi.blocked()),
        "long names": _long_names_page,
    }[page]()

    layout = lay_out(chromium, document, tmp_path, width)

    assert layout.overlaps == []
    assert layout.wide == []
    assert layout.page[0] <= width
    if page != "long names":
        # The taxi tables fit without scrolling sideways, even at 800 px.
        assert layout.clipped == []


@pytest.mark.parametrize("result", [tfx_taxi.clean, tfx_taxi.blocked], ids=["clean", "blocked"])
def test_the_first_screen_holds_verdict_problems_coverage_and_change(chromium, tmp_path, result):
    document = _taxi_page(result())

    layout = lay_out(chromium, document, tmp_path, 1280)
    page = report_page.read(document)

    # Everything above the feature table is on the first screen of a 1280x800 window.
    assert layout.marks["first-screen"] <= layout.viewport[1]
    first_screen = page.text[: page.text.index("Checked features: 6")]
    assert "Coverage: 6 of 14 categorical integer feature(s) checked, 8 not checked" in (
        first_screen
    )
    assert "Checked (6) company_xf, dropoff_latitude_xf" in first_screen
    assert "Not checked (8) dropoff_census_tract_xf" in first_screen
    assert "Change no earlier run compared" in first_screen
    if result is tfx_taxi.blocked:
        assert page.verdict.startswith("BLOCKED: 2 errors in splits eval, train.")
        assert (
            "ERROR splits eval, train, feature company_xf: INDEX_OVER_EMBEDDING_DIM, "
            "eval: 1,787 of 5,091 values (35.10%)"
        ) in page.verdict
        assert "Fix: Size the Embedding as 63" in page.verdict


def test_a_clean_page_fits_in_two_screens(chromium, tmp_path):
    layout = lay_out(chromium, _taxi_page(tfx_taxi.clean()), tmp_path, 1280)

    assert layout.page[1] <= 2 * layout.viewport[1], layout
