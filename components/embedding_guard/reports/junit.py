"""Writes split reports as JUnit XML, the test-report format CI systems show natively.

Each split is a <testsuite>; each checked feature of it is a <testcase> with
classname = split and name = feature. ERROR findings make the testcase fail (one
<failure> whose message lists each reason with its count, the descriptions in its
body); WARNING findings go to the testcase's <system-out>. Split-level findings
(such as an empty split) belong to a testcase named SPLIT_TESTCASE_NAME.

Feature and split names come from user data, so every string is made XML 1.0 safe:
characters XML cannot hold, and other control characters, are written as Python
escapes (`\\x1b`), as on the terminal.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterable

from embedding_guard.reports.report_io import write_named_file
from embedding_guard.verdict.reasons import Severity
from embedding_guard.verdict.report_model import Finding, SplitReport

SUITES_NAME = "embedding-guard"
FAILURE_TYPE = "EmbeddingIndexError"
# The testcase of findings about a split as a whole; brackets keep it apart from
# any feature name a transform can produce, as TFDV's "[dataset anomaly]".
SPLIT_TESTCASE_NAME = "[split]"

# Characters XML 1.0 cannot hold (C0 controls but tab, newline and carriage
# return; surrogates; U+FFFE, U+FFFF) plus DEL and the C1 controls, which it can
# hold but which drive terminals that show CI logs.
_UNSAFE_CHARACTERS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")


def _xml_safe(text: object) -> str:
    return _UNSAFE_CHARACTERS.sub(
        lambda match: match.group().encode("unicode_escape", "backslashreplace").decode("ascii"),
        str(text),
    )


def _reason_name(finding: Finding) -> str:
    return str(getattr(finding.reason, "value", finding.reason))


def _finding_line(finding: Finding) -> str:
    return f"{_reason_name(finding)} (count {finding.count}): {finding.description}"


def _testcase(parent: ElementTree.Element, split: str, name: str, findings: list[Finding]) -> bool:
    """Adds one testcase; returns whether it failed."""
    testcase = ElementTree.SubElement(
        parent, "testcase", {"classname": _xml_safe(split), "name": _xml_safe(name)}
    )
    errors = [f for f in findings if f.severity is Severity.ERROR]
    warnings = [f for f in findings if f.severity is Severity.WARNING]
    if errors:
        failure = ElementTree.SubElement(
            testcase,
            "failure",
            {
                "message": _xml_safe(
                    "; ".join(f"{_reason_name(f)}: count {f.count}" for f in errors)
                ),
                "type": FAILURE_TYPE,
            },
        )
        failure.text = _xml_safe("\n".join(_finding_line(f) for f in errors))
    if warnings:
        system_out = ElementTree.SubElement(testcase, "system-out")
        system_out.text = _xml_safe("\n".join(f"WARNING {_finding_line(f)}" for f in warnings))
    return bool(errors)


def junit_document(reports: Iterable[SplitReport]) -> bytes:
    """Renders split reports as a UTF-8 JUnit XML document.

    Args:
      reports: One report per split, in the order the suites should appear.

    Returns:
      The document, with an XML declaration.
    """
    suites = ElementTree.Element("testsuites", {"name": SUITES_NAME})
    total_tests = total_failures = 0
    for report in reports:
        suite = ElementTree.SubElement(suites, "testsuite", {"name": _xml_safe(report.split)})
        by_feature: dict[str, list[Finding]] = {}
        for feature_report in report.features:
            by_feature.setdefault(feature_report.bounds.feature, []).extend(feature_report.findings)
        checked = set(by_feature)
        for finding in report.findings:
            # A finding on a feature the report has no counts for still gets its testcase.
            if finding.feature and finding.feature not in checked:
                by_feature.setdefault(finding.feature, []).append(finding)
        split_findings = [f for f in report.findings if not f.feature]
        failures = sum(
            _testcase(suite, report.split, feature, findings)
            for feature, findings in by_feature.items()
        )
        if split_findings:
            failures += _testcase(suite, report.split, SPLIT_TESTCASE_NAME, split_findings)
        tests = len(by_feature) + bool(split_findings)
        suite.attrib.update(
            {"tests": str(tests), "failures": str(failures), "errors": "0", "skipped": "0"}
        )
        total_tests += tests
        total_failures += failures
    suites.attrib.update(
        {"tests": str(total_tests), "failures": str(total_failures), "errors": "0"}
    )
    ElementTree.indent(suites)
    return ElementTree.tostring(suites, encoding="utf-8", xml_declaration=True) + b"\n"


def write_junit_xml(reports: Iterable[SplitReport], path: str, parameter: str = "path") -> None:
    """Writes split reports to path as JUnit XML (see junit_document), as write_atomically does.

    Args:
      reports: One report per split.
      path: The file to write; local, or any filesystem tfx.dsl.io.fileio supports.
      parameter: What the caller calls path, for the error message.

    Raises:
      InputError: path cannot be written.
    """
    write_named_file(parameter, path, junit_document(reports))
