"""Writes split reports as JUnit XML, the test-report format CI systems show natively.

Each split is a <testsuite>; each checked feature of it is a <testcase> with
classname = split and name = feature. Each ERROR finding is one <failure> of its
feature's testcase (one per problem, as the terminal counts them: the message
names the reason, the count and the values past the table; the body adds what
the lookup does and the fix), and the suite's `failures` counts them. WARNING
findings go to the testcase's <system-out>. Split-level findings (such as an
empty split) belong to a testcase named SPLIT_TESTCASE_NAME. A feature that was
not checked (or that `features` excluded) is a testcase with <skipped>, counted
in `skipped`, unless a finding of its own fails it.

Feature and split names come from user data, so every string is made XML 1.0 safe:
characters XML cannot hold, and other control characters, are written as Python
escapes (`\\x1b`), as on the terminal.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterable

from embedding_guard.reports.report_io import write_named_file
from embedding_guard.reports.text import finding_summary, first_at_text, lookup_lines, role_words
from embedding_guard.verdict.reasons import Severity
from embedding_guard.verdict.report_model import Finding, SplitReport, UncheckedFeature

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


def _failure_message(finding: Finding) -> str:
    message = f"{_reason_name(finding)}: count {finding.count}"
    if finding.values_past_table is not None:
        message += f", {finding.values_past_table} past the table"
    return message


def _failure_text(finding: Finding) -> str:
    lines = [f"{_reason_name(finding)} (count {finding.count}): {finding_summary(finding)}"]
    lines += [f"{label}: {text}" for label, text in lookup_lines(finding)]
    if finding.fix:
        lines.append(f"fix: {finding.fix}")
    first_at = first_at_text(finding)
    if first_at is not None:
        lines.append(first_at)
    return "\n".join(lines)


def _skipped_message(unchecked: UncheckedFeature) -> str:
    would_check = unchecked.parameter_that_would_check_it
    return f"{role_words(unchecked)}: {unchecked.why}" + (
        f"; {would_check} would check it" if would_check else ""
    )


def _testcase(
    parent: ElementTree.Element,
    split: str,
    name: str,
    findings: list[Finding],
    skipped: UncheckedFeature | None = None,
) -> tuple[int, bool]:
    """Adds one testcase; returns its number of failures and whether it is skipped."""
    testcase = ElementTree.SubElement(
        parent, "testcase", {"classname": _xml_safe(split), "name": _xml_safe(name)}
    )
    errors = [f for f in findings if f.severity is Severity.ERROR]
    warnings = [f for f in findings if f.severity is Severity.WARNING]
    # One <failure> per problem: CI tools (junitparser, Jenkins) count each one.
    for finding in errors:
        failure = ElementTree.SubElement(
            testcase,
            "failure",
            {"message": _xml_safe(_failure_message(finding)), "type": FAILURE_TYPE},
        )
        failure.text = _xml_safe(_failure_text(finding))
    # A failed testcase ran and failed; only one with no failure is skipped.
    is_skipped = False
    if skipped is not None and not errors:
        is_skipped = True
        ElementTree.SubElement(
            testcase, "skipped", {"message": _xml_safe(_skipped_message(skipped))}
        )
    if warnings:
        system_out = ElementTree.SubElement(testcase, "system-out")
        system_out.text = _xml_safe("\n".join(f"WARNING {_finding_line(f)}" for f in warnings))
    return len(errors), is_skipped


# The unchecked features that are testcases: a label the model never looks up is
# no categorical feature, so it is no test either.
_SKIPPED_ROLES = (UncheckedFeature.NOT_CHECKED, UncheckedFeature.EXCLUDED)


def junit_document(reports: Iterable[SplitReport]) -> bytes:
    """Renders split reports as a UTF-8 JUnit XML document.

    Args:
      reports: One report per split, in the order the suites should appear.

    Returns:
      The document, with an XML declaration.
    """
    suites = ElementTree.Element("testsuites", {"name": SUITES_NAME})
    totals = {"tests": 0, "failures": 0, "skipped": 0}
    for report in reports:
        suite = ElementTree.SubElement(suites, "testsuite", {"name": _xml_safe(report.split)})
        by_feature: dict[str, list[Finding]] = {}
        for feature_report in report.features:
            by_feature.setdefault(feature_report.bounds.feature, []).extend(feature_report.findings)
        checked = set(by_feature)
        skipped = {u.name: u for u in report.unchecked_features if u.role in _SKIPPED_ROLES}
        for name in skipped:
            if name not in checked:
                by_feature.setdefault(name, [])
        for finding in report.findings:
            # A finding on a feature the report has no counts for still gets its testcase.
            if finding.feature and finding.feature not in checked:
                by_feature.setdefault(finding.feature, []).append(finding)
        split_findings = [f for f in report.findings if not f.feature]
        counts = {"tests": 0, "failures": 0, "skipped": 0}
        cases = [
            (feature, findings, None if feature in checked else skipped.get(feature))
            for feature, findings in by_feature.items()
        ]
        if split_findings:
            cases.append((SPLIT_TESTCASE_NAME, split_findings, None))
        for name, findings, unchecked in cases:
            failures, is_skipped = _testcase(suite, report.split, name, findings, unchecked)
            counts["tests"] += 1
            counts["failures"] += failures
            counts["skipped"] += is_skipped
        suite.attrib.update({key: str(value) for key, value in counts.items()})
        suite.attrib["errors"] = "0"
        for key, value in counts.items():
            totals[key] += value
    suites.attrib.update({key: str(value) for key, value in totals.items()})
    suites.attrib["errors"] = "0"
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
