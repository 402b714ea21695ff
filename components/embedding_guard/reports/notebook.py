"""Shows an anomalies artifact's index report inline in a Jupyter notebook.

    import embedding_guard
    embedding_guard.display(validator.outputs["anomalies"].get()[0])
    embedding_guard.display("gs://bucket/root/EmbeddingIndexValidator/anomalies/12")

The page is the one the executor writes as `Split-<name>/index_report.html`,
with every split in one view. Outside a notebook (a script, a terminal)
`display` prints the text summary instead. `summary_text`, `short_repr` and
`first_screen_html` are what `embedding_guard.check(...)`'s result shows.

The artifact's `SchemaDiff.pb` files are standard TFDV Anomalies protos, so
TFDV shows them too:

    from tensorflow_data_validation.utils.anomalies_util import load_anomalies_binary
    tfdv.display_anomalies(load_anomalies_binary(f"{uri}/Split-eval/SchemaDiff.pb"))
"""

from __future__ import annotations

import os
import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

from embedding_guard.reports import html_report, report_io
from embedding_guard.reports.text import WIDTH, printable, role_words, verdict_line
from embedding_guard.verdict.report_model import SplitReport

# Feature names shown at the most in the summary's unchecked line.
_NAMES_SHOWN = 12


def _wrap(text: str, first: str, rest: str) -> list[str]:
    return textwrap.wrap(
        text, WIDTH, initial_indent=first, subsequent_indent=rest, break_on_hyphens=False
    )


def summary_text(reports: Mapping[str, SplitReport]) -> str:
    """The run in a few lines of at most 100 columns: problems, unchecked, verdict last.

    Each problem (the same finding in several splits is one) says where, what,
    how many values and the fix; the features that were not checked are named
    in one line by role; the last line is the verdict with the coverage, as
    `embedding-guard check` ends.
    """
    lines = []
    for problem in html_report.problems(reports):
        finding = problem[0][0]
        splits = ", ".join(printable(f.split) for f, _ in problem)
        where = f"split{'s' if len(problem) > 1 else ''} {splits}"
        if finding.feature:
            where += f", feature {printable(finding.feature)}"
        counts = "; ".join(
            f"{printable(f.split)}: {f.count:,} of "
            + (
                f"{feature.stats.num_values:,} values"
                if feature
                else f"{report.num_examples:,} examples"
            )
            for f, report in problem
            for feature in [report.feature(f.feature)]
        )
        head = f"{finding.severity.value:<7} {where}: {finding.reason.value} ({counts})"
        lines += _wrap(head, "", " " * 8)
        lines += _wrap(f"fix: {html_report.fix(finding, problem[0][1])}", " " * 8, " " * 10)
    first = reports[min(reports)] if reports else None
    by_role: dict[str, list[str]] = {}
    for unchecked in first.unchecked_features if first else ():
        by_role.setdefault(role_words(unchecked), []).append(printable(unchecked.name))
    for role, names in by_role.items():
        more = f", ... ({len(names) - _NAMES_SHOWN} more)" if len(names) > _NAMES_SHOWN else ""
        lines += _wrap(f"{role} ({len(names)}): {', '.join(names[:_NAMES_SHOWN])}{more}", "", "  ")
    lines += _wrap(verdict_line(reports), "", "  ")
    return "\n".join(lines)


def short_repr(reports: Mapping[str, SplitReport], output: str | None) -> str:
    """One line: the verdict, the splits, the counts of problems, where the files are."""
    errors = sum(r.num_errors for r in reports.values())
    warnings = sum(r.num_warnings for r in reports.values())
    blessed = all(r.blessed for r in reports.values())
    first = reports[min(reports)] if reports else None
    checked = f"; {first.coverage}" if first else ""
    return (
        f"<CheckResult {'OK' if blessed else 'BLOCKED'}: "
        f"splits {', '.join(printable(s) for s in sorted(reports)) or '-'}; "
        f"{len(html_report.problems(reports))} problem(s): {errors} error(s), "
        f"{warnings} warning(s){checked}; "
        + (f"reports in {printable(output)}; " if output else "")
        + ".summary() says more>"
    )


def first_screen_html(
    reports: Mapping[str, SplitReport], title: str, run_info: Sequence[tuple[str, object]]
) -> str:
    """The report page's first screen alone, with its style: small enough for a notebook."""
    return html_report.render_fragment(reports, title, run_info, details=False)


def _uri_and_splits(anomalies: Any) -> tuple[str, list[str] | None, list[tuple[str, object]]]:
    if isinstance(anomalies, (str, os.PathLike)):
        return os.fspath(anomalies), None, [("anomalies", os.fspath(anomalies))]
    if isinstance(anomalies, Sequence) and len(anomalies) == 1:
        anomalies = anomalies[0]
    if hasattr(anomalies, "uri") and hasattr(anomalies, "split_names"):
        from tfx.types import artifact_utils

        from embedding_guard import spec

        info: list[tuple[str, object]] = [("anomalies", anomalies.uri)]
        if anomalies.has_custom_property(spec.BLESSED_PROPERTY):
            info.append(("blessed", anomalies.get_int_custom_property(spec.BLESSED_PROPERTY)))
        splits = (
            artifact_utils.decode_split_names(anomalies.split_names)
            if anomalies.split_names
            else None
        )
        return anomalies.uri, splits, info
    raise TypeError(
        "display() takes an ExampleAnomalies artifact of EmbeddingIndexValidator (or a "
        f"one-element list of it) or its URI, got {type(anomalies).__name__} {anomalies!r}."
    )


def report_html(anomalies: Any) -> Any:
    """Builds the inline report of an anomalies artifact.

    Args:
      anomalies: A TFX ExampleAnomalies artifact written by EmbeddingIndexValidator,
        a one-element list of it, or its URI.

    Returns:
      An `IPython.display.HTML` object with every split's report.

    Raises:
      TypeError: anomalies is neither an artifact nor a URI.
      report_io.ReportNotFoundError: A split's index_report.json is missing.
      report_model.ReportFormatError: A report is truncated, damaged or of an
        unknown format_version; the message names the file.
    """
    from IPython.display import HTML

    return HTML(_page(*_load(anomalies)))


_TITLE = "embedding-guard index report"


def _load(anomalies: Any) -> tuple[dict[str, SplitReport], list[tuple[str, object]]]:
    uri, split_names, run_info = _uri_and_splits(anomalies)
    return report_io.read_split_reports(uri, split_names), run_info


def _page(reports: Mapping[str, SplitReport], run_info: Sequence[tuple[str, object]]) -> str:
    return html_report.render_fragment(reports, _TITLE, run_info)


def display(anomalies: Any) -> None:
    """Displays an anomalies artifact's index report in the running notebook.

    Outside a notebook (a script, a terminal IPython) it prints the text summary.

    Args:
      anomalies: A TFX ExampleAnomalies artifact written by EmbeddingIndexValidator,
        a one-element list of it, or its URI.

    Raises:
      TypeError: anomalies is neither an artifact nor a URI.
      report_io.ReportNotFoundError: A split's index_report.json is missing.
      report_model.ReportFormatError: A report is truncated, damaged or of an
        unknown format_version.
    """
    from IPython import display as ipython_display

    reports, run_info = _load(anomalies)
    ipython_display.display(_Shown(_page(reports, run_info), summary_text(reports)))


class _Shown:
    """A report IPython shows as HTML in a notebook and as the text summary elsewhere.

    Outside IPython, `IPython.display.display` prints its argument: an
    `IPython.display.HTML` prints as `<IPython.core.display.HTML object>`.
    """

    def __init__(self, html: str, text: str) -> None:
        self._html = html
        self._text = text

    def _repr_html_(self) -> str:
        return self._html

    def __repr__(self) -> str:
        return self._text
