"""Renders index reports as one self-contained HTML page.

The page carries its own CSS and draws its bars with CSS widths: no script, no
font, no image and no network request, so it opens offline straight from an
artifact store. It is built from typed split reports (`report_model`), as
written to and read back from `index_report.json`, so the executor, the `report`
command and notebooks render the same thing. Every data-derived string passes
through `html.escape`; vocabulary entries and raw values come from user data.

The first screen answers what a reader came for: the verdict, the problems
(one per root cause: a finding, or the same finding in several splits), the
coverage (what was checked and what not) and the change since the previous
run. Below it `html_details` lists every feature in one table, with a card
only for the features with a problem. Notebooks show the first screen alone.

Output is deterministic: it depends only on its arguments.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from embedding_guard.reports import html_details
from embedding_guard.reports.html_parts import (
    ROOT_CLASS,
    STYLE,
    badge,
    esc,
    num,
    percent,
    plural,
    samples_text,
)
from embedding_guard.reports.text import gate_words, lookup_lines, role_words
from embedding_guard.verdict.reasons import Reason, Severity, fix_text
from embedding_guard.verdict.report_model import Finding, SplitReport

if TYPE_CHECKING:
    from embedding_guard.reports.comparison import RunComparison

__all__ = ["ROOT_CLASS", "problems", "render_document", "render_fragment"]

_SAMPLES_SHOWN = 3


def _measure(finding: Finding, report: SplitReport) -> str:
    """How much of the split the finding concerns, with its most frequent values."""
    if finding.reason is Reason.EMPTY_SPLIT:
        measure = "no examples"
    elif finding.reason is Reason.FEATURE_MISSING_FROM_SPLIT:
        measure = f"missing from all {num(finding.count)} examples"
    else:
        feature = report.feature(finding.feature)
        total = feature.stats.num_values if feature is not None else 0
        measure = f"{num(finding.count)} of {num(total)} values ({percent(finding.count, total)})"
    if finding.sample_values:
        # The first screen shows the three most frequent; the card lists them all.
        more = ", …" if len(finding.sample_values) > _SAMPLES_SHOWN else ""
        # Where the most frequent value first occurs, when the run located it (the
        # card lists every value's place); the split is named already.
        first = getattr(finding, "sample_locations", ())[:1]
        places = [None if place is None else place.text() for place in first]
        shown = samples_text(finding.sample_values[:_SAMPLES_SHOWN], places)
        measure += f"; most frequent: <span class='eg-mono'>{esc(shown)}{more}</span>"
    return measure


def fix(finding: Finding, report: SplitReport) -> str:
    """The finding's fix; from the registry when the finding carries none."""
    feature = report.feature(finding.feature)
    return finding.fix or fix_text(
        finding.reason, None if feature is None else feature.bounds.upper_bound
    )


# One problem: the same finding (severity, feature, reason, fix) in one or more
# splits, with each split's report.
_Problem = list[tuple[Finding, SplitReport]]


def problems(
    reports: Mapping[str, SplitReport],
    severities: Sequence[Severity] = (Severity.ERROR, Severity.WARNING),
) -> list[_Problem]:
    """The findings of severities, in that order, the same one in several splits as one."""
    grouped: dict[tuple, _Problem] = {}
    for severity in severities:
        for split in sorted(reports):
            report = reports[split]
            for finding in report.findings:
                if finding.severity is severity:
                    key = (severity, finding.feature, finding.reason, fix(finding, report))
                    grouped.setdefault(key, []).append((finding, report))
    return list(grouped.values())


def _problem_item(problem: _Problem, details: bool = True) -> str:
    """One problem: where, what and how much, the values past the table, the lookup, the fix.

    Without details, only where, what and how much.
    """
    finding, report = problem[0]
    splits = ", ".join(f"<code>{esc(f.split)}</code>" for f, _ in problem)
    where = f"split{'s' if len(problem) > 1 else ''} {splits}"
    if finding.feature:
        where += f", feature <code>{esc(finding.feature)}</code>"
    if len(problem) == 1:
        measure = _measure(finding, report)
    else:
        measure = "; ".join(f"{esc(f.split)}: {_measure(f, r)}" for f, r in problem)
    headline = (
        f"<li>{badge(finding.severity.value)} {where}: <b>{esc(finding.reason.value)}</b>, "
        f"{measure}."
    )
    if not details:
        return headline + "</li>"
    lines = []
    past = [(f.split, f.values_past_table) for f, _ in problem if f.values_past_table is not None]
    if past:
        text = ", ".join(
            f"{value:,}" if len(problem) == 1 else f"{split} {value:,}" for split, value in past
        )
        lines.append(("Values past the table", text))
    lines += [(label[0].upper() + label[1:], text) for label, text in lookup_lines(finding)]
    return (
        headline
        + "".join(f"<br><span class='eg-detail'>{esc(k)}: {esc(v)}</span>" for k, v in lines)
        + f"<br><span>Fix: {esc(fix(finding, report))}</span></li>"
    )


def _notes(reports: Mapping[str, SplitReport]) -> str:
    """The INFO findings, one line each: nothing to fix, worth knowing."""
    items = "".join(
        _problem_item(problem, details=False) for problem in problems(reports, (Severity.INFO,))
    )
    return f"<h2>Notes</h2><ul class='eg-findings'>{items}</ul>" if items else ""


def _verdict(reports: Mapping[str, SplitReport]) -> str:
    blocked = sorted(split for split, report in reports.items() if not report.blessed)
    num_errors = sum(report.num_errors for report in reports.values())
    num_warnings = sum(report.num_warnings for report in reports.values())
    first = reports[min(reports)] if reports else None
    if blocked and first is not None:
        headline = (
            f"BLOCKED: {plural(num_errors, 'error')} in split"
            f"{'s' if len(blocked) != 1 else ''} {esc(', '.join(blocked))}. "
            f"These indices would fail an embedding lookup, so {gate_words(first)}."
        )
    elif reports:
        headline = (
            f"OK: no checked index would fail an embedding lookup in split"
            f"{'s' if len(reports) != 1 else ''} {esc(', '.join(sorted(reports)))}."
        )
    else:
        headline = "No split reports were found."
    if num_warnings and not blocked:
        headline += f" {plural(num_warnings, 'warning')} below."
    coverage = ""
    if first is not None:
        listed = " (listed below)" if first.unchecked_features else ""
        coverage = f"<p class='eg-coverage'>Coverage: {esc(first.coverage)}{listed}.</p>"
    items = "".join(_problem_item(problem) for problem in problems(reports))
    css = "eg-blocked" if blocked or not reports else "eg-blessed"
    return (
        f"<div class='eg-verdict {css}'><p class='eg-headline'>{headline}</p> {coverage}"
        + (f"<ol>{items}</ol>" if items else "")
        + "</div>"
    )


def _coverage(reports: Mapping[str, SplitReport]) -> str:
    """Which features were checked and which not, by name, in a line each."""
    if not reports:
        return ""
    first = reports[min(reports)]
    checked = sorted({f.feature for report in reports.values() for f in report.features})
    by_role: dict[str, list[str]] = {"Checked": checked}
    for unchecked in first.unchecked_features:
        role = role_words(unchecked)
        by_role.setdefault(role[0].upper() + role[1:], []).append(unchecked.name)
    # The unchecked lines end with a link to why, and what would check them.
    below = " <span class='eg-muted'>(why, and what would check them: below)</span>"
    return "".join(
        f"<p class='eg-facts'><span class='eg-label'>{esc(label)} ({len(names)})</span> "
        + (", ".join(f"<code>{esc(feature)}</code>" for feature in names) or "none")
        + (below if label != "Checked" else "")
        + "</p>"
        for label, names in by_role.items()
    )


def _comparison(comparison: RunComparison | None) -> str:
    """How the shown run's problems compare with an earlier run's."""
    if comparison is None:
        return (
            "<p class='eg-facts'><span class='eg-label'>Change</span> <span class='eg-muted'>"
            "no earlier run compared "
            "(<code>embedding-guard report</code> compares a pipeline's runs)</span></p>"
        )
    rows = []
    for change in comparison.changes:
        count, previous = change.count, change.previous_count
        if previous is None or count is None:
            trend = "split not checked"
        elif count > previous:
            trend = "<span class='eg-worse'>worse</span>"
        elif count < previous:
            trend = "<span class='eg-better'>better</span>"
        else:
            trend = "same"
        rows.append(
            f"<tr><td><code>{esc(change.split)}</code></td>"
            f"<td><code>{esc(change.feature)}</code></td><td>{esc(change.reason.value)}</td>"
            f"<td class='eg-num'>{num(previous)}</td>"
            f"<td class='eg-num'>{num(count)}</td><td>{trend}</td></tr>"
        )
    body = (
        "<div class='eg-scroll'><table><tr><th>split</th><th>feature</th><th>reason</th>"
        f"<th class='eg-num'>before</th><th class='eg-num'>now</th><th></th></tr>"
        f"{''.join(rows)}</table></div>"
        if rows
        else "<p class='eg-muted'>Neither run has an ERROR or WARNING finding.</p>"
    )
    return (
        f"<h2>Compared with run {esc(comparison.previous_run_id)}</h2>"
        f"<p>{esc(comparison.summary)}</p>{body}"
    )


def _first_screen(
    reports: Mapping[str, SplitReport],
    title: str,
    run_info: Sequence[tuple[str, object]],
    comparison: RunComparison | None,
) -> str:
    """The top of the page, without style (the arguments of render_fragment).

    The title and run, the verdict with the problems, the coverage, the change.
    """
    info = " \u00b7 ".join(f"<b>{esc(label)}</b> {esc(value)}" for label, value in run_info)
    return (
        f"<div data-layout='first-screen'><h1>{esc(title)}</h1>"
        + (f"<p class='eg-run'>{info}</p>" if info else "")
        + _verdict(reports)
        + _coverage(reports)
        + _comparison(comparison)
        + "</div>"
    )


def render_fragment(
    reports: Mapping[str, SplitReport],
    title: str,
    run_info: Sequence[tuple[str, object]] = (),
    comparison: RunComparison | None = None,
    *,
    details: bool = True,
) -> str:
    """Renders split reports as an HTML fragment with its own scoped style.

    Args:
      reports: Split name -> that split's report.
      title: Heading of the report.
      run_info: (label, value) pairs shown under the heading, e.g. run id and URI.
      comparison: Optional comparison with an earlier run.
      details: False renders the first screen alone (for notebooks).

    Returns:
      A `<div>` preceded by its `<style>`; safe to embed in a notebook.
    """
    body = _first_screen(reports, title, run_info, comparison)
    if details and reports:
        body += (
            html_details.feature_table(reports)
            + html_details.bound_sources_section(reports)
            + html_details.cards(reports)
            + _notes(reports)
            + html_details.unchecked_section(reports[min(reports)].unchecked_features)
        )
    return f"<style>{STYLE}</style><div class='{ROOT_CLASS}'>{body}</div>"


def render_document(
    reports: Mapping[str, SplitReport], title: str, *fragment: Any, **named: Any
) -> str:
    """Renders split reports as a complete, self-contained HTML page.

    Args:
      reports: Split name -> that split's report.
      title: Page title and heading.
      *fragment: run_info and comparison, as for render_fragment.
      **named: The same by name, and details.

    Returns:
      The page, ending in a newline.
    """
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{esc(title)}</title></head>\n<body>"
        f"{render_fragment(reports, title, *fragment, **named)}</body></html>\n"
    )
