"""Renders index reports as one self-contained HTML page.

The page carries its own CSS and draws its bars with CSS widths: no script, no
font, no image and no network request, so it opens offline straight from an
artifact store. It is built from typed split reports (`report_model`), as
written to and read back from `index_report.json`, so the executor, the `report`
command and notebooks render the same thing. Every data-derived string passes through `html.escape`; vocabulary
entries and raw values come from user data.

Output is deterministic: it depends only on its arguments.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from embedding_guard.reports.text import (
    dim_source,
    gate_words,
    lookup_lines,
    printable,
    role_words,
)
from embedding_guard.verdict.core import FeatureStats
from embedding_guard.verdict.reasons import Reason, Severity, fix_text
from embedding_guard.verdict.report_model import (
    FeatureReport,
    Finding,
    SplitReport,
    UncheckedFeature,
)

if TYPE_CHECKING:
    from embedding_guard.reports.comparison import RunComparison

# Every selector is scoped to this class, so the style cannot leak into a
# Jupyter notebook that shows the fragment inline.
ROOT_CLASS = "eg-report"

_STYLE = """
.eg-report { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  color: #1d2327; max-width: 1180px; }
.eg-report h1 { font-size: 20px; margin: 0 0 6px; }
.eg-report h2 { font-size: 17px; margin: 26px 0 8px; padding-bottom: 4px;
  border-bottom: 2px solid #d0d7de; }
.eg-report h3 { font-size: 15px; margin: 0 0 8px; font-family: ui-monospace, monospace; }
.eg-report code, .eg-report .eg-mono { font-family: ui-monospace, SFMono-Regular, Menlo,
  monospace; font-size: 13px; }
.eg-report .eg-run { margin: 0 0 12px; color: #57606a; }
.eg-report .eg-run dt { float: left; clear: left; width: 120px; font-weight: 600; }
.eg-report .eg-run dd { margin: 0 0 2px 128px; word-break: break-all; }
.eg-report .eg-verdict { border-radius: 6px; padding: 12px 16px; margin: 8px 0 16px; }
.eg-report .eg-verdict p { margin: 0 0 6px; }
.eg-report .eg-verdict ol { margin: 6px 0 0; padding-left: 22px; }
.eg-report .eg-verdict li { margin-bottom: 6px; }
.eg-report .eg-headline { font-size: 17px; font-weight: 700; }
.eg-report .eg-blocked { background: #ffebe9; border: 1px solid #cf222e; }
.eg-report .eg-blessed { background: #dafbe1; border: 1px solid #1a7f37; }
.eg-report .eg-fix { color: #1d2327; }
.eg-report .eg-detail { color: #57606a; }
.eg-report .eg-coverage { font-weight: 600; }
.eg-report .eg-badge { display: inline-block; padding: 0 7px; border-radius: 10px;
  font-size: 12px; font-weight: 700; color: #fff; vertical-align: middle; }
.eg-report .eg-ERROR { background: #cf222e; }
.eg-report .eg-WARNING { background: #9a6700; }
.eg-report .eg-INFO { background: #0969da; }
.eg-report .eg-OK { background: #1a7f37; }
.eg-report .eg-feature { border: 1px solid #d0d7de; border-radius: 6px; padding: 10px 14px;
  margin: 10px 0; }
.eg-report .eg-columns { display: flex; flex-wrap: wrap; gap: 18px; }
.eg-report .eg-columns > div { flex: 1 1 340px; min-width: 300px; }
.eg-report table { border-collapse: collapse; }
.eg-report td, .eg-report th { padding: 2px 8px 2px 0; text-align: left; vertical-align: top; }
.eg-report th { font-weight: 600; color: #57606a; white-space: nowrap; }
.eg-report td.eg-num { text-align: right; font-variant-numeric: tabular-nums; }
.eg-report .eg-chart td { padding-top: 1px; padding-bottom: 1px; }
.eg-report .eg-track { width: 220px; height: 12px; background: #eaeef2; border-radius: 2px; }
.eg-report .eg-bar { display: block; height: 12px; border-radius: 2px; }
.eg-report .eg-in_vocab, .eg-report .eg-in_range { background: #57ab5a; }
.eg-report .eg-oov_bucket { background: #54aeff; }
.eg-report .eg-negative, .eg-report .eg-out_of_range { background: #cf222e; }
.eg-report .eg-over_embedding_dim { background: #bc4c00; }
.eg-report .eg-non_integer { background: #8250df; }
.eg-report .eg-missing { background: #8c959f; }
.eg-report .eg-muted { color: #57606a; }
.eg-report ul.eg-findings { margin: 8px 0 0; padding-left: 18px; }
.eg-report ul.eg-findings li { margin-bottom: 4px; }
.eg-report .eg-worse { color: #cf222e; font-weight: 600; }
.eg-report .eg-better { color: #1a7f37; font-weight: 600; }
"""

# A single bad value among millions must still show as a bar.
_MIN_BAR_PERCENT = 0.8


def _e(value: object) -> str:
    # Control characters (ESC, BEL) are shown escaped too, as in the terminal, so a
    # report that is printed with `cat` cannot drive the terminal.
    return html.escape(printable(value), quote=True)


def _n(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def _percent(count: int, total: int) -> str:
    return f"{count / total:.2%}" if total else "0.00%"


def _samples_text(samples: Sequence[tuple[int | str, int]]) -> str:
    return ", ".join(f"{value!r} \u00d7{count:,}" for value, count in samples)


def _finding_headline(finding: Finding, report: SplitReport) -> str:
    where = f"split <code>{_e(finding.split)}</code>"
    if finding.feature:
        where += f", feature <code>{_e(finding.feature)}</code>"
    if finding.reason is Reason.EMPTY_SPLIT:
        measure = "no examples"
    elif finding.reason is Reason.FEATURE_MISSING_FROM_SPLIT:
        measure = f"missing from all {_n(finding.count)} examples"
    else:
        feature = report.feature(finding.feature)
        total = feature.stats.num_values if feature is not None else 0
        measure = f"{_n(finding.count)} of {_n(total)} values ({_percent(finding.count, total)})"
    if finding.sample_values:
        measure += (
            f"; most frequent: <span class='eg-mono'>{_e(_samples_text(finding.sample_values))}"
            "</span>"
        )
    severity = _e(finding.severity.value)
    return (
        f"<span class='eg-badge eg-{severity}'>{severity}</span> "
        f"{where}: <b>{_e(finding.reason.value)}</b>, {measure}."
    )


def _problem_item(finding: Finding, report: SplitReport) -> str:
    """One problem of the verdict box: what, the values past the table, the lookup, the fix."""
    feature = report.feature(finding.feature)
    fix = finding.fix or fix_text(
        finding.reason, None if feature is None else feature.bounds.upper_bound
    )
    details = []
    if finding.values_past_table is not None:
        details.append(("Values past the table", f"{finding.values_past_table:,}"))
    details += [(label[0].upper() + label[1:], text) for label, text in lookup_lines(finding)]
    details.append(("Fix", fix))
    return (
        f"<li>{_finding_headline(finding, report)}"
        + "".join(
            f"<br><span class='eg-detail'>{_e(label)}: {_e(text)}</span>"
            for label, text in details[:-1]
        )
        + f"<br><span class='eg-fix'>Fix: {_e(fix)}</span></li>"
    )


def _verdict(reports: Mapping[str, SplitReport]) -> str:
    blocked = sorted(split for split, report in reports.items() if not report.blessed)
    num_errors = sum(report.num_errors for report in reports.values())
    num_warnings = sum(report.num_warnings for report in reports.values())
    splits = ", ".join(sorted(reports))
    first = reports[min(reports)] if reports else None
    if blocked and first is not None:
        headline = (
            f"BLOCKED: {num_errors} error{'s' if num_errors != 1 else ''} in split"
            f"{'s' if len(blocked) != 1 else ''} {_e(', '.join(blocked))}. "
            f"These indices would fail an embedding lookup, so {gate_words(first)}."
        )
    elif reports:
        headline = (
            f"OK: no index would fail an embedding lookup in split"
            f"{'s' if len(reports) != 1 else ''} {_e(splits)}."
        )
    else:
        headline = "No split reports were found."
    items = [
        _problem_item(finding, reports[split])
        for split in sorted(reports)
        for finding in reports[split].problems()
    ]
    if num_warnings and not blocked:
        headline += f" {num_warnings} warning{'s' if num_warnings != 1 else ''} below."
    coverage = ""
    if first is not None:
        listed = " (listed below)" if first.unchecked_features else ""
        coverage = f"<p class='eg-coverage'>Coverage: {_e(first.coverage)}{listed}.</p>"
    css = "eg-blocked" if blocked or not reports else "eg-blessed"
    return (
        f"<div class='eg-verdict {css}'><p class='eg-headline'>{headline}</p> {coverage}"
        + (f"<ol>{''.join(items)}</ol>" if items else "")
        + "</div>"
    )


def _run_info(run_info: Sequence[tuple[str, object]]) -> str:
    rows = "".join(f"<dt>{_e(label)}</dt><dd>{_e(value)}</dd>" for label, value in run_info)
    return f"<dl class='eg-run'>{rows}</dl>"


def _comparison(comparison: RunComparison) -> str:
    """Renders how the shown run's problems compare with an earlier run's."""
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
            f"<tr><td><code>{_e(change.split)}</code></td>"
            f"<td><code>{_e(change.feature)}</code></td><td>{_e(change.reason.value)}</td>"
            f"<td class='eg-num'>{_n(previous)}</td>"
            f"<td class='eg-num'>{_n(count)}</td><td>{trend}</td></tr>"
        )
    body = (
        "<table><tr><th>split</th><th>feature</th><th>reason</th><th>before</th>"
        f"<th>now</th><th></th></tr>{''.join(rows)}</table>"
        if rows
        else "<p class='eg-muted'>Neither run has an ERROR or WARNING finding.</p>"
    )
    return (
        f"<h2>Compared with run {_e(comparison.previous_run_id)}</h2>"
        f"<p>{_e(comparison.summary)}</p>{body}"
    )


def _chart(feature: FeatureReport) -> str:
    bounds, stats = feature.bounds, feature.stats
    total = stats.num_values
    if feature.has_vocabulary:
        rows_shown = [("in_vocab", "in vocabulary", stats.in_vocab)]
        if bounds.num_oov_buckets:
            rows_shown.append(("oov_bucket", "OOV buckets", stats.oov_bucket))
    else:
        # Without a vocabulary no value is "in vocabulary": it is only in range.
        rows_shown = [("in_range", f"in range [0, {bounds.upper_bound:,})", stats.in_range)]
    rows_shown += [
        ("negative", "negative", stats.negative),
        ("out_of_range", "out of range", stats.out_of_range),
    ]
    if stats.non_integer:
        rows_shown.append(("non_integer", "non-integer", stats.non_integer))
    rows_shown.append(
        (
            "over_embedding_dim",
            f"\u2265 embedding dim {bounds.embedding_input_dim:,}",
            stats.over_embedding_dim,
        )
    )
    rows = []
    for key, label, count in rows_shown:
        count = count or 0
        width = 0.0 if not count or not total else max(100 * count / total, _MIN_BAR_PERCENT)
        rows.append(
            f"<tr><td>{_e(label)}</td><td><div class='eg-track'><span class='eg-bar eg-{key}' "
            f"style='width:{width:.2f}%'></span></div></td>"
            f"<td class='eg-num' data-count='{key}'>{_n(count)}</td>"
            f"<td class='eg-num eg-muted'>{_percent(count, total)}</td></tr>"
        )
    return f"<table class='eg-chart'>{''.join(rows)}</table>"


def _bounds_table(feature: FeatureReport) -> str:
    bounds, stats = feature.bounds, feature.stats
    rows = [
        ("valid range", f"[0, {bounds.upper_bound:,})"),
        ("from", bounds.bound_source or "-"),
        ("embedding input_dim", f"{bounds.embedding_input_dim:,}"),
        # The model's table as the only bound is the input_dim's source too: said once.
        (
            "input_dim from",
            dim_source(bounds) or ("the same table" if bounds.embedding_dim_source else "-"),
        ),
    ]
    if bounds.vocabulary is not None:
        rows.append(
            (
                "vocabulary",
                f"{bounds.vocabulary!r}: {_n(bounds.vocab_size)} entries + "
                f"{bounds.num_oov_buckets} OOV bucket(s)",
            )
        )
    rows += [
        ("examples", _n(stats.num_examples)),
        ("values", _n(stats.num_values)),
        ("examples without a value", _n(stats.missing)),
        ("observed", f"min {_n(stats.min)}, max {_n(stats.max)}"),
    ]
    if stats.oov_rate is not None:
        rows.append(("OOV rate", f"{stats.oov_rate:.2%} ({_n(stats.oov)} values)"))
    else:
        rows.append(("OOV rate", "- (no vocabulary, so no value is out of vocabulary)"))
    if stats.vocab_entries_unseen is not None:
        rows.append(("vocabulary rows unseen", _n(stats.vocab_entries_unseen)))
    drift = feature.oov_drift
    if drift:
        rows.append(
            (
                "OOV drift",
                f"{drift.oov_rate:.2%} against {drift.baseline_oov_rate:.2%} in split "
                f"{drift.baseline_split!r}",
            )
        )
    cells = "".join(f"<tr><th>{_e(label)}</th><td>{_e(value)}</td></tr>" for label, value in rows)
    return f"<table>{cells}</table>"


def _value_table(heading: str, samples: Sequence[tuple[int | str, int]]) -> str:
    rows = "".join(
        f"<tr><td class='eg-num eg-mono'>{_e(repr(value))}</td>"
        f"<td class='eg-num'>{_n(count)}</td></tr>"
        for value, count in samples
    )
    return (
        f"<div><b>{_e(heading)}</b> (most frequent first)"
        f"<table><tr><th>value</th><th>count</th></tr>{rows}</table></div>"
    )


def _offending_values(stats: FeatureStats) -> str:
    parts = []
    offending = list(stats.top_offending_values) + list(stats.top_non_integer_values)
    if offending:
        parts.append(_value_table("Offending values", offending))
    if stats.top_raw_oov_values:
        parts.append(_value_table("Raw values not in the vocabulary", stats.top_raw_oov_values))
    if parts and not stats.offending_values_complete:
        parts.append(
            "<p class='eg-muted'>Too many distinct values: these counts are a partial sample.</p>"
        )
    return "".join(parts)


def _finding_items(findings: Sequence[Finding]) -> str:
    return "".join(
        f"<li><span class='eg-badge eg-{_e(f.severity.value)}'>{_e(f.severity.value)}</span> "
        f"<b>{_e(f.reason.value)}</b> {_e(f.description)}</li>"
        for f in findings
    )


def _feature_section(feature: FeatureReport) -> str:
    status = "OK" if feature.status is None else feature.status.value
    findings = _finding_items(feature.findings)
    return (
        f"<section class='eg-feature' data-feature='{_e(feature.feature)}'>"
        f"<h3>{_e(feature.feature)} <span class='eg-badge eg-{status}'>{status}</span></h3>"
        f"<div class='eg-columns'><div>{_bounds_table(feature)}</div>"
        f"<div><b>Where the values fall</b>{_chart(feature)}"
        f"{_offending_values(feature.stats)}</div></div>"
        + (f"<ul class='eg-findings'>{findings}</ul>" if findings else "")
        + "</section>"
    )


def _unchecked_section(unchecked: Sequence[UncheckedFeature]) -> str:
    """The features that were not checked, once for the run: the same in every split."""
    if not unchecked:
        return ""
    rows = "".join(
        f"<tr data-unchecked='{_e(u.name)}'><td><code>{_e(u.name)}</code></td>"
        f"<td>{_e(role_words(u))}</td><td>{_e(u.why)}</td>"
        f"<td>{_e(u.parameter_that_would_check_it or '-')}</td></tr>"
        for u in unchecked
    )
    return (
        f"<h2>Not checked: {len(unchecked)} integer feature{'s' if len(unchecked) != 1 else ''}"
        "</h2><div class='eg-feature eg-unchecked'>None of their values were checked."
        "<table><tr><th>feature</th><th>role</th><th>why</th><th>what would check it</th></tr>"
        f"{rows}</table></div>"
    )


def _split_section(report: SplitReport) -> str:
    status = "BLOCKED" if not report.blessed else "OK"
    badge = Severity.ERROR.value if not report.blessed else "OK"
    split_findings = _finding_items(report.split_findings)
    return (
        f"<section class='eg-split' data-split='{_e(report.split)}'>"
        f"<h2>Split {_e(report.split)} <span class='eg-badge eg-{badge}'>{status}</span> "
        f"<span class='eg-muted'>{_n(report.num_examples)} examples, "
        f"{report.num_errors} error(s), {report.num_warnings} warning(s)</span></h2>"
        + (f"<ul class='eg-findings'>{split_findings}</ul>" if split_findings else "")
        + "".join(_feature_section(feature) for feature in report.features)
        + "</section>"
    )


def render_fragment(
    reports: Mapping[str, SplitReport],
    title: str,
    run_info: Sequence[tuple[str, object]] = (),
    comparison: RunComparison | None = None,
) -> str:
    """Renders split reports as an HTML fragment with its own scoped style.

    Args:
      reports: Split name -> that split's report.
      title: Heading of the report.
      run_info: (label, value) pairs shown under the heading, e.g. run id and URI.
      comparison: Optional comparison with an earlier run.

    Returns:
      A `<div>` preceded by its `<style>`; safe to embed in a notebook.
    """
    return (
        f"<style>{_STYLE}</style><div class='{ROOT_CLASS}'>"
        f"<h1>{_e(title)}</h1>"
        + (_run_info(run_info) if run_info else "")
        + _verdict(reports)
        + (_comparison(comparison) if comparison else "")
        + (_unchecked_section(reports[min(reports)].unchecked_features) if reports else "")
        + "".join(_split_section(reports[split]) for split in sorted(reports))
        + "</div>"
    )


def render_document(
    reports: Mapping[str, SplitReport],
    title: str,
    run_info: Sequence[tuple[str, object]] = (),
    comparison: RunComparison | None = None,
) -> str:
    """Renders split reports as a complete, self-contained HTML page.

    Args:
      reports: Split name -> that split's report.
      title: Page title and heading.
      run_info: (label, value) pairs shown under the heading.
      comparison: Optional comparison with an earlier run (see render_fragment).

    Returns:
      The page, ending in a newline.
    """
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{_e(title)}</title></head>\n<body>"
        f"{render_fragment(reports, title, run_info, comparison)}</body></html>\n"
    )
