"""The self-contained HTML report: verdict, counts, escaping, and the executor's files."""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import re

import numpy as np
import pytest
import report_page

from embedding_guard.errors import InputError
from embedding_guard.reports import html_report, mlmd_runs, report_io, text
from embedding_guard.verdict import core, findings, locations
from embedding_guard.verdict.reasons import REASONS, Reason, Severity, fix_text
from embedding_guard.verdict.report_model import Finding, SplitReport, UncheckedFeature


def _item_bounds() -> core.FeatureBounds:
    """8-entry vocabulary plus 2 OOV buckets, Embedding(input_dim=9): valid [0, 9)."""
    return core.FeatureBounds(
        feature="item_xf",
        upper_bound=10,
        embedding_input_dim=9,
        vocab_size=8,
        num_oov_buckets=2,
        vocabulary="item",
        bound_source="vocabulary 'item' (8 entries) + 2 OOV bucket(s)",
        embedding_dim_source="embedding_input_dims parameter",
    )


def _report(values, split="eval") -> SplitReport:
    values = np.asarray(values, dtype=np.int64)
    return findings.check_arrays(
        split, [_item_bounds()], {"item_xf": (values, np.ones(values.size))}
    )


# By hand against [0, 8) vocabulary, [8, 10) OOV, input_dim 9:
#   negative -1 -1 -> 2; in vocabulary 0 3 7 3 7 -> 5; OOV 8 9 -> 2;
#   out of range 13 10 13 -> 3; >= input_dim 9: 13 9 10 13 -> 4. 12 values in all.
BLOCKED_VALUES = [0, -1, 3, 8, 13, 7, 9, 10, -1, 13, 3, 7]


def test_blocked_report_states_verdict_fix_and_counts():
    page = report_page.read(
        html_report.render_document({"eval": _report(BLOCKED_VALUES)}, "eval report")
    )

    assert page.verdict.startswith(
        "BLOCKED: 3 errors in split eval. These indices would fail an embedding lookup, "
        "so the Trainer must not run."
    )
    assert "split eval, feature item_xf: NEGATIVE_INDEX, 2 of 12 values (16.67%)" in page.verdict
    assert "set num_oov_buckets >= 1" in page.verdict
    assert "INDEX_OUT_OF_RANGE, 3 of 12 values (25.00%); most frequent: 13 ×2, 10 ×1" in (
        page.verdict
    )
    assert "Size the Embedding as 10 (vocabulary plus OOV buckets)" in page.verdict
    assert page.counts == {
        "eval": {
            "item_xf": {
                "in_vocab": "5",
                "oov_bucket": "2",
                "negative": "2",
                "out_of_range": "3",
                "over_embedding_dim": "4",
            }
        }
    }


def test_blocked_report_shows_bounds_and_their_sources():
    page = report_page.read(html_report.render_document({"eval": _report(BLOCKED_VALUES)}, "t"))

    assert "valid range[0, 10)" in page.text
    assert "fromvocabulary 'item' (8 entries) + 2 OOV bucket(s)" in page.text
    assert "embedding input_dim9input_dim fromembedding_input_dims parameter" in page.text
    assert "observedmin -1, max 13" in page.text
    assert "Offending values (most frequent first)valuecount-12132" in page.text


def test_clean_report_is_blessed():
    page = report_page.read(
        html_report.render_document({"train": _report([0, 1, 2, 7], "train")}, "t")
    )

    assert page.verdict == (
        "OK: no checked index would fail an embedding lookup in split train. "
        "Coverage: 1 of 1 categorical integer feature(s) checked."
    )
    assert page.counts["train"]["item_xf"]["in_vocab"] == "4"
    assert "Offending values" not in page.text


def test_every_data_value_is_escaped():
    hostile = '<img src=x onerror="alert(1)">'
    bounds = core.FeatureBounds(
        feature=hostile,
        upper_bound=3,
        embedding_input_dim=3,
        bound_source=f"int_domain of {hostile}",
        embedding_dim_source="'quoted' & \"double\"",
    )
    report = findings.check_arrays(
        "</h2><script>",
        [bounds],
        {hostile: (np.asarray([b"<script>x</script>", 1.5], dtype=object), np.ones(2))},
    )
    document = html_report.render_document(
        {report.split: report}, "<title>", run_info=[("<dt>", "</dd><a href=x>")]
    )

    page = report_page.read(document)
    assert page.tags == {
        "html", "head", "meta", "title", "style", "body", "div", "h1", "p", "ol", "li",
        "span", "b", "code", "br", "section", "h2", "h3", "table", "tr", "th", "td", "ul",
    }  # fmt: skip
    assert hostile in page.text
    assert "'<script>x</script>'" in page.text
    assert "</dd><a href=x>" in page.text
    assert "'quoted' & \"double\"" in page.text
    assert page.verdict.startswith("BLOCKED: 1 error in split </h2><script>.")


def test_document_is_self_contained_and_deterministic():
    reports = {"eval": _report(BLOCKED_VALUES), "train": _report([0, 1], "train")}

    document = html_report.render_document(reports, "t")

    for reference in ("http:", "https:", "//", "src=", "href=", "url(", "@import", "<script"):
        assert reference not in document.replace("<!DOCTYPE html>", "")
    assert datetime.date.today().isoformat() not in document
    assert html_report.render_document(reports, "t") == document


def test_fragment_style_is_scoped_to_the_report():
    fragment = html_report.render_fragment({"eval": _report([0])}, "t")

    style = fragment[fragment.index("<style>") + 7 : fragment.index("</style>")]
    selectors = [rule.split("{")[0].strip() for rule in style.split("}") if rule.strip()]
    assert selectors
    for selector in selectors:
        for part in selector.split(","):
            assert part.strip().startswith(".eg-report"), part


def test_small_counts_still_get_a_visible_bar():
    values = [0] * 9999 + [-1]

    document = html_report.render_document({"eval": _report(values)}, "t")

    assert "class='eg-bar eg-negative' style='width:0.80%'" in document
    assert "class='eg-bar eg-in_vocab' style='width:99.99%'" in document
    assert "class='eg-bar eg-out_of_range' style='width:0.00%'" in document


def test_comparison_says_worse_and_unchecked_splits():
    comparison = mlmd_runs.RunComparison(
        previous_run_id="run-1",
        previous_execution_id=4,
        summary="3 ERROR finding(s) now, 1 in run run-1.",
        changes=(
            mlmd_runs.FindingChange("eval", "item_xf", Reason.NEGATIVE_INDEX, Severity.ERROR, 5, 2),
            mlmd_runs.FindingChange(
                "test", "item_xf", Reason.INDEX_OUT_OF_RANGE, Severity.ERROR, 1, None
            ),
        ),
    )

    page = report_page.read(
        html_report.render_document({"eval": _report([0])}, "t", comparison=comparison)
    )

    assert "Compared with run run-1" in page.text
    assert "evalitem_xfNEGATIVE_INDEX25worse" in page.text
    assert "testitem_xfINDEX_OUT_OF_RANGE-1split not checked" in page.text


def test_split_report_files_include_html_next_to_json(tmp_path):
    values = np.asarray(BLOCKED_VALUES, dtype=np.int64)
    report = findings.check_arrays("eval", [_item_bounds()], {"item_xf": (values, np.ones(12))})
    split_dir = str(tmp_path / "Split-eval")

    paths = report_io.write_split_report(split_dir, report)

    assert sorted(os.listdir(split_dir)) == [
        "SchemaDiff.pb",
        "index_report.html",
        "index_report.json",
    ]
    assert paths["html"] == os.path.join(split_dir, "index_report.html")
    with open(paths["html"], encoding="utf-8") as f:
        page = report_page.read(f.read())
    assert page.verdict.startswith("BLOCKED: 3 errors in split eval.")
    assert page.counts["eval"]["item_xf"]["negative"] == "2"
    assert report_io.read_split_reports(str(tmp_path)) == {"eval": report}


def test_reading_a_split_without_report_names_the_file(tmp_path):
    (tmp_path / "Split-eval").mkdir()

    with pytest.raises(report_io.ReportNotFoundError) as raised:
        report_io.read_split_reports(str(tmp_path), ["eval"])

    assert repr(str(tmp_path / "Split-eval" / "index_report.json")) in str(raised.value)


def _month_report() -> SplitReport:
    """Identity months [0, 12) without vocabulary: 0 5 11 in range, 12 out of range."""
    bounds = core.FeatureBounds("month_xf", upper_bound=12, embedding_input_dim=12)
    values = np.asarray([0, 5, 11, 12], dtype=np.int64)
    return findings.check_arrays("eval", [bounds], {"month_xf": (values, np.ones(4))})


def test_feature_without_vocabulary_is_in_range_not_in_vocabulary():
    page = report_page.read(html_report.render_document({"eval": _month_report()}, "t"))

    assert page.counts["eval"]["month_xf"] == {
        "in_range": "3",
        "negative": "0",
        "out_of_range": "1",
        "over_embedding_dim": "1",
    }
    assert "in range [0, 12)" in page.text
    assert "in vocabulary" not in page.text
    assert "OOV rate- (no vocabulary, so no value is out of vocabulary)" in page.text


def _with_unchecked(report: SplitReport) -> SplitReport:
    return dataclasses.replace(
        report,
        unchecked_features=(
            UncheckedFeature(
                "trip_start_hour_xf",
                "a pass-through <integer>",
                "feature_vocabularies or an int_domain",
            ),
            UncheckedFeature(
                "tips_xf", "the model never looks it up", "", role=UncheckedFeature.NOT_LOOKED_UP
            ),
        ),
    )


def test_unchecked_features_are_listed_once_with_their_role():
    reports = {"eval": _with_unchecked(_month_report()), "train": _with_unchecked(_month_report())}

    page = report_page.read(html_report.render_document(reports, "t"))

    # Once for the run, not once per split: named in the coverage, then in the table.
    assert page.text.count("trip_start_hour_xf") == 2
    assert "Not checked (1) trip_start_hour_xf (why, and what would check them: below)" in (
        page.text
    )
    assert "Not looked up by the model (1) tips_xf" in page.text
    assert (
        "Not checked: 2 integer features"
        "featurerolewhywhat would check it"
        "trip_start_hour_xfnot checkeda pass-through <integer>feature_vocabularies or an int_domain"
        "tips_xfnot looked up by the modelthe model never looks it up-"
    ) in page.text


def test_the_banner_states_the_coverage_counted_as_the_terminal_does():
    reports = {"eval": _with_unchecked(_month_report())}

    page = report_page.read(html_report.render_document(reports, "t"))

    # 1 checked (month_xf), 1 not checked; tips_xf is a label, not a categorical feature.
    coverage = (
        "Coverage: 1 of 2 categorical integer feature(s) checked, 1 not checked; "
        "1 the model never looks up (labels, weights) (listed below)."
    )
    assert coverage in page.verdict
    assert text.verdict_line(reports).startswith("BLOCKED: 1 error in split eval; ")


def test_a_model_gate_banner_names_the_pusher():
    report = dataclasses.replace(_month_report(), gate="Pusher")

    page = report_page.read(html_report.render_document({"eval": report}, "t"))

    assert page.verdict.startswith(
        "BLOCKED: 1 error in split eval. These indices would fail an embedding lookup, "
        "so the Pusher must not push."
    )
    assert "Trainer" not in page.verdict
    assert text.verdict_line({"eval": report}).endswith("; the Pusher must not push.")


def test_each_problem_shows_its_values_past_the_table_and_the_lookup():
    page = report_page.read(html_report.render_document({"eval": _report(BLOCKED_VALUES)}, "t"))

    # By hand (BLOCKED_VALUES): -1 x2 negative; 13 10 13 past the range [0, 10),
    # so past the 9-row table too; 9 inside the range but past the table. Three problems.
    problems = page.verdict.split("ERROR split eval, feature item_xf: ")[1:]
    assert [p.split(",")[0] for p in problems] == [
        "NEGATIVE_INDEX",
        "INDEX_OUT_OF_RANGE",
        "INDEX_OVER_EMBEDDING_DIM",
    ]
    for problem, past in zip(problems, (2, 3, 1), strict=True):
        assert f"Values past the table: {past} " in problem
        assert "Lookup: an embedding lookup (no model checked: lookups in general)" in problem
        assert "On GPU: tf.gather returns an all-zero row" in problem
    assert "On CPU: tf.nn.embedding_lookup and a tf_keras Embedding raise" in problems[0]


def test_a_bound_from_the_models_table_is_named_once():
    # month_xf: a pass-through integer only the model's 12-row table bounds.
    table = "model layer 'month_emb' (Embedding, table 12 x 4), by graph tracing"
    bounds = core.FeatureBounds(
        "month_xf",
        upper_bound=12,
        embedding_input_dim=12,
        bound_kind="model",
        bound_source=f"the model's table only: {table}",
        embedding_dim_kind="model",
        embedding_dim_source=table,
    )
    values = np.asarray([0, 11], dtype=np.int64)
    report = findings.check_arrays("eval", [bounds], {"month_xf": (values, np.ones(2))})

    page = report_page.read(html_report.render_document({"eval": report}, "t"))
    terminal = text.report_table({"eval": report})

    # A clean feature has no card: its bounds are in the folded list, once.
    assert page.text.count(table) == 1
    assert f"month_xf: [0, 12) from the model's table only: {table} (the same table gives " in (
        page.text
    )
    assert terminal.count("by graph") == 1
    assert "(the same table gives input_dim)" in terminal


def test_every_reason_in_the_verdict_has_the_registry_fix():
    for reason in Reason:
        if REASONS[reason].severity is Severity.INFO:
            continue
        finding = Finding("eval", "month_xf", reason, REASONS[reason].severity, 1, 0.25, "d")
        feature = _month_report().features[0]
        report = SplitReport("eval", 4, (dataclasses.replace(feature, findings=(finding,)),))

        page = report_page.read(html_report.render_document({"eval": report}, "t"))

        assert f"Fix: {fix_text(reason, 12)}" in page.verdict, reason


def test_truncated_report_file_is_an_input_error_naming_it(tmp_path):
    split_dir = tmp_path / "Split-eval"
    paths = report_io.write_split_report(str(split_dir), _month_report())
    with open(paths["json"], "r+", encoding="utf-8") as f:
        f.truncate(100)

    with pytest.raises(InputError) as raised:
        report_io.read_split_reports(str(tmp_path))

    assert str(raised.value).startswith(f"{paths['json']!r} is not complete JSON (")


def test_report_file_missing_a_key_is_an_input_error_naming_it(tmp_path):
    split_dir = tmp_path / "Split-eval"
    paths = report_io.write_split_report(str(split_dir), _month_report())
    with open(paths["json"], encoding="utf-8") as f:
        document = json.load(f)
    del document["features"][0]["counts"]["num_values"]
    with open(paths["json"], "w", encoding="utf-8") as f:
        json.dump(document, f)

    with pytest.raises(InputError) as raised:
        report_io.read_split_report(str(split_dir))

    assert str(raised.value).startswith(
        f"{paths['json']!r}, split 'eval', feature 'month_xf', counts lacks field 'num_values'"
    )


def test_write_split_report_writes_the_json_of_the_typed_report(tmp_path):
    report = _month_report()

    paths = report_io.write_split_report(str(tmp_path / "Split-eval"), report)

    with open(paths["json"], encoding="utf-8") as f:
        text = f.read()
    document = json.loads(text)
    # Deterministic text: sorted keys, 2-space indent, ASCII, a final newline.
    assert text == json.dumps(document, sort_keys=True, indent=2, ensure_ascii=True) + "\n"
    # By hand from _month_report: 0 5 11 in [0, 12), 12 out of range and over the dim.
    assert (document["split"], document["blessed"], document["num_examples"]) == ("eval", False, 4)
    assert (document["num_errors"], document["num_warnings"]) == (1, 0)
    ((feature,),) = [document["features"]]
    assert feature["feature"] == "month_xf"
    assert (feature["bounds"]["upper_bound"], feature["bounds"]["embedding_input_dim"]) == (12, 12)
    counts = feature["counts"]
    assert {name: counts[name] for name in ("num_values", "in_range", "negative", "min", "max")} == {
        "num_values": 4, "in_range": 3, "negative": 0, "min": 0, "max": 12,
    }  # fmt: skip
    assert (counts["out_of_range"], counts["over_embedding_dim"]) == (1, 1)
    assert counts["top_out_of_range_values"] == [{"value": 12, "count": 1}]
    ((finding,),) = [feature["findings"]]
    assert {name: finding[name] for name in ("reason", "severity", "count", "rate")} == {
        "reason": "INDEX_OUT_OF_RANGE", "severity": "ERROR", "count": 1, "rate": 0.25,
    }  # fmt: skip
    assert finding["sample_values"] == [{"value": 12, "count": 1}]
    assert report_io.read_split_report(str(tmp_path / "Split-eval")) == report


def _two_features(split: str, item_values) -> SplitReport:
    """item_xf (see _item_bounds) and month_xf [0, 12) without vocabulary, all in range."""
    month = core.FeatureBounds("month_xf", upper_bound=12, embedding_input_dim=12)
    item = np.asarray(item_values, dtype=np.int64)
    months = np.asarray([0, 5, 11], dtype=np.int64)
    return findings.check_arrays(
        split,
        [_item_bounds(), month],
        {"item_xf": (item, np.ones(item.size)), "month_xf": (months, np.ones(3))},
    )


def test_one_table_row_per_feature_and_split_and_a_card_only_for_a_problem():
    reports = {"eval": _two_features("eval", BLOCKED_VALUES), "train": _two_features("train", [0])}

    document = html_report.render_document(reports, "t")
    page = report_page.read(document)

    rows = re.findall(r"<tr[^>]*data-split='(\w+)' data-feature='(\w+)'>", document)
    assert rows == [
        ("eval", "item_xf"),
        ("train", "item_xf"),
        ("eval", "month_xf"),
        ("train", "month_xf"),
    ]
    # The one card: item_xf in eval, the only feature and split with a finding.
    assert re.findall(
        r"<section class='eg-feature' data-split='(\w+)' data-feature='(\w+)'", (document)
    ) == [("eval", "item_xf")]
    assert "item_xf in split eval ERROR" in page.text
    # The table's counts equal the card's (both carry data-count).
    assert page.counts["train"] == {
        "item_xf": {"in_vocab": "1", "oov_bucket": "0", "negative": "0", "out_of_range": "0",
                    "over_embedding_dim": "0"},
        "month_xf": {"in_range": "3", "negative": "0", "out_of_range": "0",
                     "over_embedding_dim": "0"},
    }  # fmt: skip
    # The clean feature's bound is said once, folded away.
    assert "month_xf: [0, 12) from" in page.text


def test_the_first_screen_comes_before_the_table_and_stands_alone():
    reports = {"eval": _with_unchecked(_two_features("eval", BLOCKED_VALUES))}

    page = report_page.read(html_report.render_document(reports, "t"))
    whole = report_page.read(html_report.render_fragment(reports, "t"))
    alone = report_page.read(html_report.render_fragment(reports, "t", details=False))

    order = [
        "BLOCKED: 3 errors in split eval.",
        "Coverage: 2 of 3 categorical integer feature(s) checked",
        "Checked (2) item_xf, month_xf",
        "Not checked (1) trip_start_hour_xf",
        "Change no earlier run compared",
        "Checked features: 2",
        "Not checked: 2 integer features",
    ]
    assert [page.text.index(words) for words in order] == sorted(
        page.text.index(words) for words in order
    )
    assert alone.text == whole.text[: whole.text.index("Checked features: 2")].strip()


def test_the_same_problem_in_several_splits_is_one_item():
    reports = {"eval": _report(BLOCKED_VALUES), "test": _report(BLOCKED_VALUES, "test")}

    page = report_page.read(html_report.render_document(reports, "t"))

    assert page.verdict.startswith("BLOCKED: 6 errors in splits eval, test.")
    assert page.verdict.count("ERROR splits eval, test, feature item_xf: ") == 3
    assert (
        "NEGATIVE_INDEX, eval: 2 of 12 values (16.67%); most frequent: -1 ×2; "
        "test: 2 of 12 values (16.67%); most frequent: -1 ×2."
    ) in page.verdict
    assert "Values past the table: eval 3, test 3" in page.verdict


def test_a_located_sample_value_says_where_it_first_occurs():
    report = _report(BLOCKED_VALUES)
    feature = report.features[0]
    negative = next(f for f in feature.findings if f.reason is Reason.NEGATIVE_INDEX)
    place = locations.Location("data-00000-of-00001.gz", 1204)
    located = dataclasses.replace(negative, sample_locations=(place,))
    findings_now = tuple(located if f is negative else f for f in feature.findings)
    report = dataclasses.replace(
        report, features=(dataclasses.replace(feature, findings=findings_now),)
    )

    page = report_page.read(html_report.render_document({"eval": report}, "t"))

    assert (
        "NEGATIVE_INDEX, 2 of 12 values (16.67%); most frequent: "
        "-1 ×2 (first at data-00000-of-00001.gz record 1,204)."
    ) in page.verdict


def test_a_reason_without_a_feature_renders_from_the_registry_alone():
    # Every reason, also one a renderer has never heard of, shows its code, its
    # severity and its fix; a split-level one has no feature to name.
    for reason in Reason:
        spec = REASONS[reason]
        finding = Finding("eval", "", reason, spec.severity, 3, 0.5, "Something happened.")
        report = SplitReport("eval", 6, (), split_findings=(finding,))

        page = report_page.read(html_report.render_document({"eval": report}, "t"))

        shown = page.verdict if spec.severity is not Severity.INFO else page.text
        assert f"{spec.severity.value} split eval: {reason.value}, " in shown, reason


def test_the_check_commands_output_help_names_the_page_it_writes(capsys):
    from embedding_guard.cli import main as cli

    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["check", "--help"])

    shown = " ".join(capsys.readouterr().out.split())
    assert (
        "--output DIR write each split's index_report.html (the page to open), index_report.json "
        "and SchemaDiff.pb (TFDV Anomalies) under DIR/Split-<name>/"
    ) in shown
