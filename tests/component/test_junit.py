"""JUnit XML from typed split reports, read back by a JUnit consumer and by xml.etree.

The reports come from the pure core on hand-made indices, checked against
city_xf [0, 4) (3 vocabulary entries + 1 OOV bucket) and product_xf [0, 10):

  train    city_xf 0 1 2 0, product_xf 0 1 2 3: clean.
  eval     city_xf -1 0 3 3 7: -1 is negative (ERROR, 1), 7 is out of range
           (ERROR, 1), the two 3s are OOV-bucket hits (INFO), so the OOV rate
           rose from 0 % in train to 40 % (WARNING, 2); product_xf 0..4: clean.
  serving  no examples: a split-level EMPTY_SPLIT warning.

Every split also lists three integer features that were not checked: month_xf
(not checked: no bound) and store_xf (excluded by `features`) are skipped
testcases; label (never looked up by the model) is no testcase at all.

The file is parsed with junitparser, a JUnit XML reader from PyPI, and its
structure is checked with xml.etree against the elements and attributes CI
systems read (testsuites > testsuite > testcase > failure, system-out).
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ElementTree

import junitparser
import numpy as np
import pytest
import report_page

from embedding_guard.reports import html_report, junit, report_io, text
from embedding_guard.verdict import core, findings, reasons, report_model

CITY = core.FeatureBounds(
    feature="city_xf", upper_bound=4, embedding_input_dim=4, vocab_size=3, num_oov_buckets=1
)
PRODUCT = core.FeatureBounds(
    feature="product_xf", upper_bound=10, embedding_input_dim=10, vocab_size=8, num_oov_buckets=2
)
INDICES = {
    "train": {"city_xf": [0, 1, 2, 0], "product_xf": [0, 1, 2, 3]},
    "eval": {"city_xf": [-1, 0, 3, 3, 7], "product_xf": [0, 1, 2, 3, 4]},
    "serving": {},
}
# Tab, newline and carriage return aside, XML 1.0 cannot hold C0 controls, lone
# surrogates or U+FFFE/U+FFFF; ESC, BEL, DEL and C1 controls would drive a CI console.
HOSTILE = "x\x00\x1b[31m\x07\x7f\x85\ud800\ufffe<&>\"'\t]]>"


UNCHECKED = (
    report_model.UncheckedFeature(
        "month_xf", "a pass-through integer", "embedding_input_dims={'month_xf': N}"
    ),
    report_model.UncheckedFeature(
        "store_xf", "left out by features", "features", role=report_model.UncheckedFeature.EXCLUDED
    ),
    report_model.UncheckedFeature(
        "label", "the model never looks it up", "", role=report_model.UncheckedFeature.NOT_LOOKED_UP
    ),
)


def _reports(
    indices, bounds=(CITY, PRODUCT), unchecked=(), **options
) -> list[report_model.SplitReport]:
    accumulators = {}
    for split, columns in indices.items():
        accumulator = core.SplitAccumulator(bounds)
        accumulator.add_examples(max((len(v) for v in columns.values()), default=0))
        for feature, values in columns.items():
            accumulator.features[feature].add_batch(
                np.array(values, dtype=np.int64), np.ones(len(values), dtype=np.int64)
            )
        accumulators[split] = accumulator
    return list(
        findings.build_reports(accumulators, unchecked_features=unchecked, **options).values()
    )


@pytest.fixture(scope="module")
def reports() -> list[report_model.SplitReport]:
    reports = _reports(INDICES, unchecked=UNCHECKED)
    # The hand counts of the module docstring, so the XML checks below rest on them.
    assert {
        r.split: [(f.feature, f.reason.value, f.severity.value, f.count) for f in r.findings]
        for r in reports
    } == {
        "train": [],
        "eval": [
            ("city_xf", "NEGATIVE_INDEX", "ERROR", 1),
            ("city_xf", "INDEX_OUT_OF_RANGE", "ERROR", 1),
            ("city_xf", "OOV_BUCKET_HITS", "INFO", 2),
            ("city_xf", "OOV_RATE_INCREASE", "WARNING", 2),
        ],
        "serving": [("", "EMPTY_SPLIT", "WARNING", 0)],
    }
    return reports


@pytest.fixture(scope="module")
def junit_path(reports, tmp_path_factory) -> str:
    path = str(tmp_path_factory.mktemp("junit") / "ci" / "embedding-guard.xml")
    junit.write_junit_xml(reports, path)
    return path


def _descriptions(reports, split, feature, severity) -> list[str]:
    (report,) = [r for r in reports if r.split == split]
    return [
        f.description for f in report.findings if f.feature == feature and f.severity is severity
    ]


def test_junit_consumer_reads_one_testcase_per_split_and_feature(junit_path):
    document = junitparser.JUnitXml.fromfile(junit_path)
    cases = {(suite.name, case.classname, case.name): case for suite in document for case in suite}
    assert list(cases) == [
        ("train", "train", "city_xf"),
        ("train", "train", "product_xf"),
        ("train", "train", "month_xf"),
        ("train", "train", "store_xf"),
        ("eval", "eval", "city_xf"),
        ("eval", "eval", "product_xf"),
        ("eval", "eval", "month_xf"),
        ("eval", "eval", "store_xf"),
        ("serving", "serving", "city_xf"),
        ("serving", "serving", "product_xf"),
        ("serving", "serving", "month_xf"),
        ("serving", "serving", "store_xf"),
        ("serving", "serving", junit.SPLIT_TESTCASE_NAME),
    ]
    failed = [key for key, case in cases.items() if not case.is_passed and not case.is_skipped]
    assert failed == [("eval", "eval", "city_xf")]
    # One failure per problem: city_xf's -1 and its 7 are two, as the terminal counts them.
    assert [(s.name, s.tests, s.failures, s.errors, s.skipped) for s in document] == [
        ("train", 4, 0, 0, 2),
        ("eval", 4, 2, 0, 2),
        ("serving", 5, 0, 0, 2),
    ]
    assert (document.tests, document.failures, document.errors, document.skipped) == (13, 2, 0, 6)


def test_the_written_counts_are_those_a_junit_consumer_counts(junit_path):
    document = junitparser.JUnitXml.fromfile(junit_path)
    written = [(s.tests, s.failures, s.errors, s.skipped) for s in document]

    for suite in document:
        suite.update_statistics()

    # junitparser recounts from the testcases: each <failure> and <skipped> once.
    assert [(s.tests, s.failures, s.errors, s.skipped) for s in document] == written


def test_features_not_checked_are_skipped_with_what_would_check_them(junit_path):
    document = junitparser.JUnitXml.fromfile(junit_path)
    (month,) = [c for s in document if s.name == "eval" for c in s if c.name == "month_xf"]
    (store,) = [c for s in document if s.name == "eval" for c in s if c.name == "store_xf"]

    ((month_skipped,), (store_skipped,)) = month.result, store.result
    assert isinstance(month_skipped, junitparser.Skipped)
    assert month_skipped.message == (
        "not checked: a pass-through integer; embedding_input_dims={'month_xf': N} would check it"
    )
    assert store_skipped.message == "excluded: left out by features; features would check it"
    assert "label" not in {c.name for s in document for c in s}


def test_a_feature_failed_for_not_being_checked_is_not_also_skipped(tmp_path):
    path = str(tmp_path / "strict.xml")
    reports = _reports(
        {"eval": {"city_xf": [0]}},
        bounds=(CITY,),
        unchecked=UNCHECKED[:1],
        unchecked_severity=reasons.Severity.ERROR,
    )
    junit.write_junit_xml(reports, path)

    (suite,) = junitparser.JUnitXml.fromfile(path)
    (month,) = [c for c in suite if c.name == "month_xf"]
    (failure,) = month.result
    assert isinstance(failure, junitparser.Failure)
    assert failure.message == "FEATURE_NOT_CHECKED: count 0"
    assert (suite.tests, suite.failures, suite.skipped) == (2, 1, 0)


def test_a_problem_failure_carries_the_lookup_and_the_fix(tmp_path):
    # The model's Keras 3 Embedding of 25 rows for [0, 26): the 25 is past it.
    bounds = core.FeatureBounds(
        feature="city_xf",
        upper_bound=26,
        embedding_input_dim=25,
        vocab_size=25,
        num_oov_buckets=1,
        embedding_dim_kind="model",
        embedding_dim_source="model layer 'city_emb' (Embedding, table 25 x 4)",
        model_lookup_kind="Embedding",
        model_layer="city_emb",
        model_on_negative="wraps",
        model_on_too_large="raises",
        model_bad_index_behaviour="GatherV2 with no Assert",
    )
    path = str(tmp_path / "model.xml")
    junit.write_junit_xml(_reports({"eval": {"city_xf": [25, 1]}}, bounds=(bounds,)), path)

    ((case,),) = [list(s) for s in junitparser.JUnitXml.fromfile(path)]
    (failure,) = case.result
    assert failure.message == "EMBEDDING_TABLE_TOO_SMALL: count 1, 1 past the table"
    lines = failure.text.splitlines()
    assert lines[1:] == [
        "lookup: the model's Embedding 'city_emb' (GatherV2 with no Assert)",
        "on CPU: raises InvalidArgumentError",
        "on GPU: silently returns an all-zero row",
        "fix: " + reasons.fix_text(reasons.Reason.EMBEDDING_TABLE_TOO_SMALL, 26),
    ]
    # The lookup and the fix are said once, on their own lines.
    assert "InvalidArgumentError" not in lines[0]
    assert "retrain" not in lines[0]


def test_error_findings_fail_the_testcase_with_reasons_and_counts(junit_path, reports):
    document = junitparser.JUnitXml.fromfile(junit_path)
    (city,) = [c for s in document if s.name == "eval" for c in s if c.name == "city_xf"]
    negative, out_of_range = city.result
    assert isinstance(negative, junitparser.Failure)
    assert negative.message == "NEGATIVE_INDEX: count 1, 1 past the table"
    assert out_of_range.message == "INDEX_OUT_OF_RANGE: count 1, 1 past the table"
    assert negative.type == out_of_range.type == junit.FAILURE_TYPE
    assert negative.text.startswith("NEGATIVE_INDEX (count 1): 1 of 5 values of 'city_xf' in ")
    assert out_of_range.text.startswith("INDEX_OUT_OF_RANGE (count 1): 1 of 5 values of ")
    for failure, reason in ((negative, "NEGATIVE_INDEX"), (out_of_range, "INDEX_OUT_OF_RANGE")):
        assert failure.text.splitlines()[-1] == "fix: " + reasons.fix_text(
            reasons.Reason(reason), 4
        )
        assert "on GPU: tf.gather returns an all-zero row" in failure.text


def test_warnings_go_to_system_out_and_info_is_left_out(junit_path, reports):
    document = junitparser.JUnitXml.fromfile(junit_path)
    outputs = {(c.classname, c.name): c.system_out for s in document for c in s}
    (drift,) = _descriptions(reports, "eval", "city_xf", reasons.Severity.WARNING)
    (empty,) = _descriptions(reports, "serving", "", reasons.Severity.WARNING)
    assert {key: text for key, text in outputs.items() if text} == {
        ("eval", "city_xf"): f"WARNING OOV_RATE_INCREASE (count 2): {drift}",
        ("serving", junit.SPLIT_TESTCASE_NAME): f"WARNING EMPTY_SPLIT (count 0): {empty}",
    }
    with open(junit_path, encoding="utf-8") as junit_file:
        assert "OOV_BUCKET_HITS" not in junit_file.read()


def test_document_has_the_structure_ci_systems_read(junit_path):
    root = ElementTree.parse(junit_path).getroot()
    assert root.tag == "testsuites"
    assert root.get("name") == junit.SUITES_NAME
    for suite in root:
        assert suite.tag == "testsuite"
        assert {"name", "tests", "failures", "errors"} <= set(suite.attrib)
        assert int(suite.get("tests")) == len(suite.findall("testcase")) == len(suite)
        assert int(suite.get("failures")) == len(suite.findall("testcase/failure"))
        assert int(suite.get("skipped")) == len(suite.findall("testcase/skipped"))
        for case in suite:
            assert {"classname", "name"} <= set(case.attrib)
            # The schema's order: results first, then the captured output.
            tags = [child.tag for child in case]
            results = [tag for tag in tags if tag != "system-out"]
            assert tags == results + ["system-out"] * ("system-out" in tags)
            assert results in ([], ["skipped"]) or set(results) == {"failure"}
            for failure in case.findall("failure"):
                assert failure.get("message") and failure.get("type")


def test_control_characters_in_names_are_escaped_into_valid_xml(tmp_path):
    feature = f"{HOSTILE}_xf"
    bounds = core.FeatureBounds(feature=feature, upper_bound=4, embedding_input_dim=4)
    path = str(tmp_path / "hostile.xml")
    junit.write_junit_xml(_reports({HOSTILE: {feature: [-1, 1]}}, bounds=(bounds,)), path)

    # Both readers reject a character XML 1.0 cannot hold.
    root = ElementTree.parse(path).getroot()
    (case,) = [c for s in junitparser.JUnitXml.fromfile(path) for c in s]
    escaped = "x\\x00\\x1b[31m\\x07\\x7f\\x85\\ud800\\ufffe<&>\"'\t]]>"
    assert root.find("testsuite").get("name") == escaped
    assert (case.classname, case.name) == (escaped, f"{escaped}_xf")
    (failure,) = case.result
    assert failure.message == "NEGATIVE_INDEX: count 1, 1 past the table"
    with open(path, encoding="utf-8") as junit_file:
        text = junit_file.read()
    for character in ("\x00", "\x1b", "\x07", "\x7f", "\x85", "\ufffe"):
        assert character not in text, repr(character)


def test_written_atomically_and_deterministically(reports, junit_path):
    folder = os.path.dirname(junit_path)
    assert os.listdir(folder) == [os.path.basename(junit_path)]
    with open(junit_path, "rb") as junit_file:
        first = junit_file.read()
    junit.write_junit_xml(reports, junit_path)
    with open(junit_path, "rb") as junit_file:
        assert junit_file.read() == first
    assert first.startswith(b"<?xml version='1.0' encoding='utf-8'?>")
    assert os.listdir(folder) == [os.path.basename(junit_path)]


def test_every_renderer_counts_the_same_problems(junit_path, reports):
    by_split = {r.split: r for r in reports}
    document = junitparser.JUnitXml.fromfile(junit_path)
    page = report_page.read(html_report.render_document(by_split, "t"))
    eval_anomalies = report_io.anomalies_proto(by_split["eval"])

    # By hand (module docstring): 2 errors, both city_xf's in eval; 2 warnings.
    assert document.failures == 2
    assert text.verdict_line(by_split).startswith("BLOCKED: 2 errors in 1 of 3 splits (eval); ")
    assert page.verdict.startswith("BLOCKED: 2 errors in split eval.")
    # One anomaly reason per ERROR or WARNING finding: city_xf's 2 errors and its drift.
    (city,) = eval_anomalies.anomaly_info.values()
    assert [r.description.split("]")[0] for r in city.reason] == [
        "[NEGATIVE_INDEX",
        "[INDEX_OUT_OF_RANGE",
        "[OOV_RATE_INCREASE",
    ]
    assert city.severity == city.ERROR
