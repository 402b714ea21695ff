"""JUnit XML from typed split reports, read back by a JUnit consumer and by xml.etree.

The reports come from the pure core on hand-made indices, checked against
city_xf [0, 4) (3 vocabulary entries + 1 OOV bucket) and product_xf [0, 10):

  train    city_xf 0 1 2 0, product_xf 0 1 2 3: clean.
  eval     city_xf -1 0 3 3 7: -1 is negative (ERROR, 1), 7 is out of range
           (ERROR, 1), the two 3s are OOV-bucket hits (INFO), so the OOV rate
           rose from 0 % in train to 40 % (WARNING, 2); product_xf 0..4: clean.
  serving  no examples: a split-level EMPTY_SPLIT warning.

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

from embedding_guard.reports import junit
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


def _reports(indices, bounds=(CITY, PRODUCT)) -> list[report_model.SplitReport]:
    accumulators = {}
    for split, columns in indices.items():
        accumulator = core.SplitAccumulator(bounds)
        accumulator.add_examples(max((len(v) for v in columns.values()), default=0))
        for feature, values in columns.items():
            accumulator.features[feature].add_batch(
                np.array(values, dtype=np.int64), np.ones(len(values), dtype=np.int64)
            )
        accumulators[split] = accumulator
    return list(findings.build_reports(accumulators).values())


@pytest.fixture(scope="module")
def reports() -> list[report_model.SplitReport]:
    reports = _reports(INDICES)
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
        ("eval", "eval", "city_xf"),
        ("eval", "eval", "product_xf"),
        ("serving", "serving", "city_xf"),
        ("serving", "serving", "product_xf"),
        ("serving", "serving", junit.SPLIT_TESTCASE_NAME),
    ]
    failed = [key for key, case in cases.items() if not case.is_passed]
    assert failed == [("eval", "eval", "city_xf")]
    assert [(s.name, s.tests, s.failures, s.errors) for s in document] == [
        ("train", 2, 0, 0),
        ("eval", 2, 1, 0),
        ("serving", 3, 0, 0),
    ]
    assert (document.tests, document.failures, document.errors) == (7, 1, 0)


def test_error_findings_fail_the_testcase_with_reasons_and_counts(junit_path, reports):
    document = junitparser.JUnitXml.fromfile(junit_path)
    (city,) = [c for s in document if s.name == "eval" for c in s if c.name == "city_xf"]
    (failure,) = city.result
    assert isinstance(failure, junitparser.Failure)
    assert failure.message == "NEGATIVE_INDEX: count 1; INDEX_OUT_OF_RANGE: count 1"
    assert failure.type == junit.FAILURE_TYPE
    negative, out_of_range = _descriptions(reports, "eval", "city_xf", reasons.Severity.ERROR)
    assert failure.text.splitlines() == [
        f"NEGATIVE_INDEX (count 1): {negative}",
        f"INDEX_OUT_OF_RANGE (count 1): {out_of_range}",
    ]


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
        for case in suite:
            assert {"classname", "name"} <= set(case.attrib)
            # The schema's order: a result first, then the captured output.
            assert [child.tag for child in case] in (
                [],
                ["failure"],
                ["system-out"],
                ["failure", "system-out"],
            )
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
    assert failure.message == "NEGATIVE_INDEX: count 1"
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
