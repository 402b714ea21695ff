"""Renders index reports as one self-contained HTML page.

The page carries its own CSS and draws its bars with CSS widths: no script, no
font, no image and no network request, so it opens offline straight from an
artifact store. It is built from the `index_report.json` documents (not from
core objects), so the executor, the `report` command and notebooks render the
same thing. Every data-derived string passes through `html.escape`; vocabulary
entries and raw values come from user data.

Output is deterministic: it depends only on its arguments.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence

from embedding_guard.core import Reason, Severity
from embedding_guard.text import printable

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
.eg-report .eg-in_vocab { background: #57ab5a; }
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

# What to change for each blocking reason; the finding's own description
# (shown per feature) carries the counts.
_FIXES = {
    Reason.NEGATIVE_INDEX: (
        "A -1 is compute_and_apply_vocabulary's default_value for values missing from the "
        "vocabulary: set num_oov_buckets >= 1 and size the Embedding with "
        "embedding_guard.embedding_input_dim()."
    ),
    Reason.INDEX_OUT_OF_RANGE: (
        "Either the values are wrong (examples not made by this transform graph, or an "
        "identity feature off by one: months 1..12 need month - 1) or the bound is: re-run "
        "Transform, fix the feature's int_domain, or size the Embedding and "
        "embedding_input_dims to fit."
    ),
    Reason.INDEX_OVER_EMBEDDING_DIM: (
        "Size the Embedding as input_dim={upper_bound} (vocabulary plus OOV buckets), e.g. "
        "with embedding_guard.embedding_input_dim()."
    ),
    Reason.NON_INTEGER_VALUES: (
        "An embedding needs int64 indices: cast the feature or look it up in preprocessing_fn."
    ),
    Reason.FEATURE_MISSING_FROM_SPLIT: (
        "Check that the examples were produced by this transform graph, or stop checking "
        "the feature."
    ),
    Reason.EMPTY_SPLIT: "Check the upstream ExampleGen or Transform output.",
    Reason.OOV_RATE_ABOVE_MAX: (
        "Re-run Transform on newer data to refresh the vocabulary, or raise max_oov_rate."
    ),
    Reason.OOV_RATE_INCREASE: (
        "The data has drifted from the vocabulary: re-run Transform on newer data, or raise "
        "max_oov_rate_increase."
    ),
}

# (counts key, label) of the chart rows; the first five partition the values.
_CHART_ROWS = (
    ("in_vocab", "in vocabulary"),
    ("oov_bucket", "OOV buckets"),
    ("negative", "negative"),
    ("out_of_range", "out of range"),
    ("non_integer", "non-integer"),
    ("over_embedding_dim", "over embedding dim"),
)
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


def _samples_text(samples: Sequence[Mapping]) -> str:
    return ", ".join(f"{sample['value']!r} \u00d7{sample['count']:,}" for sample in samples)


def _bounds_by_feature(report: Mapping) -> dict[str, Mapping]:
    return {feature["feature"]: feature["bounds"] for feature in report["features"]}


def _problem_findings(report: Mapping) -> list[Mapping]:
    """The split's ERROR findings, then its WARNING ones, each in report order."""
    findings = list(report.get("split_findings", []))
    for feature in report["features"]:
        findings += feature["findings"]
    return [
        f
        for severity in (Severity.ERROR.value, Severity.WARNING.value)
        for f in findings
        if f["severity"] == severity
    ]


def _fix(finding: Mapping, bounds: Mapping | None) -> str:
    try:
        template = _FIXES[Reason(finding["reason"])]
    except (KeyError, ValueError):
        return ""
    upper_bound = bounds["upper_bound"] if bounds else "vocab_size + num_oov_buckets"
    return template.format(upper_bound=upper_bound)


def _finding_headline(finding: Mapping, report: Mapping) -> str:
    feature = finding["feature"]
    where = f"split <code>{_e(finding['split'])}</code>"
    if feature:
        where += f", feature <code>{_e(feature)}</code>"
    if finding["reason"] == Reason.EMPTY_SPLIT.value:
        measure = "no examples"
    elif finding["reason"] == Reason.FEATURE_MISSING_FROM_SPLIT.value:
        measure = f"missing from all {_n(finding['count'])} examples"
    else:
        total = next(
            (f["counts"]["num_values"] for f in report["features"] if f["feature"] == feature), 0
        )
        measure = (
            f"{_n(finding['count'])} of {_n(total)} values ({_percent(finding['count'], total)})"
        )
    samples = finding.get("sample_values") or []
    if samples:
        measure += f"; most frequent: <span class='eg-mono'>{_e(_samples_text(samples))}</span>"
    return (
        f"<span class='eg-badge eg-{_e(finding['severity'])}'>{_e(finding['severity'])}</span> "
        f"{where}: <b>{_e(finding['reason'])}</b>, {measure}."
    )


def _verdict(reports: Mapping[str, Mapping]) -> str:
    blocked = sorted(split for split, report in reports.items() if not report["blessed"])
    num_errors = sum(report["num_errors"] for report in reports.values())
    num_warnings = sum(report["num_warnings"] for report in reports.values())
    splits = ", ".join(sorted(reports))
    if blocked:
        headline = (
            f"BLOCKED: {num_errors} error{'s' if num_errors != 1 else ''} in split"
            f"{'s' if len(blocked) != 1 else ''} {_e(', '.join(blocked))}. "
            "These indices would fail an embedding lookup, so the Trainer must not run."
        )
    elif reports:
        headline = (
            f"OK: no index would fail an embedding lookup in split"
            f"{'s' if len(reports) != 1 else ''} {_e(splits)}."
        )
    else:
        headline = "No split reports were found."
    items = []
    for split in sorted(reports):
        report = reports[split]
        bounds = _bounds_by_feature(report)
        for finding in _problem_findings(report):
            fix = _fix(finding, bounds.get(finding["feature"]))
            items.append(
                f"<li>{_finding_headline(finding, report)}"
                + (f"<br><span class='eg-fix'>Fix: {_e(fix)}</span>" if fix else "")
                + "</li>"
            )
    if num_warnings and not blocked:
        headline += f" {num_warnings} warning{'s' if num_warnings != 1 else ''} below."
    css = "eg-blocked" if blocked or not reports else "eg-blessed"
    return (
        f"<div class='eg-verdict {css}'><p class='eg-headline'>{headline}</p>"
        + (f"<ol>{''.join(items)}</ol>" if items else "")
        + "</div>"
    )


def _run_info(run_info: Sequence[tuple[str, object]]) -> str:
    rows = "".join(f"<dt>{_e(label)}</dt><dd>{_e(value)}</dd>" for label, value in run_info)
    return f"<dl class='eg-run'>{rows}</dl>"


def _comparison(comparison: Mapping) -> str:
    """Renders how the shown run's problems compare with an earlier run's."""
    rows = []
    for change in comparison["changes"]:
        count, previous = change["count"], change["previous_count"]
        if previous is None or count is None:
            trend = "split not checked"
        elif count > previous:
            trend = "<span class='eg-worse'>worse</span>"
        elif count < previous:
            trend = "<span class='eg-better'>better</span>"
        else:
            trend = "same"
        rows.append(
            f"<tr><td><code>{_e(change['split'])}</code></td>"
            f"<td><code>{_e(change['feature'])}</code></td><td>{_e(change['reason'])}</td>"
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
        f"<h2>Compared with run {_e(comparison['previous_run_id'])}</h2>"
        f"<p>{_e(comparison['summary'])}</p>{body}"
    )


def _chart(counts: Mapping, bounds: Mapping) -> str:
    total = counts["num_values"]
    rows = []
    for key, label in _CHART_ROWS:
        count = counts[key]
        if key == "in_vocab" and bounds["vocab_size"] is None:
            label = f"in range [0, {bounds['upper_bound']:,})"
        elif (
            key == "oov_bucket"
            and not bounds["num_oov_buckets"]
            or key == "non_integer"
            and not count
        ):
            continue
        elif key == "over_embedding_dim":
            label = f"\u2265 embedding dim {bounds['embedding_input_dim']:,}"
        width = 0.0 if not count or not total else max(100 * count / total, _MIN_BAR_PERCENT)
        rows.append(
            f"<tr><td>{_e(label)}</td><td><div class='eg-track'><span class='eg-bar eg-{key}' "
            f"style='width:{width:.2f}%'></span></div></td>"
            f"<td class='eg-num' data-count='{key}'>{_n(count)}</td>"
            f"<td class='eg-num eg-muted'>{_percent(count, total)}</td></tr>"
        )
    return f"<table class='eg-chart'>{''.join(rows)}</table>"


def _bounds_table(feature: Mapping) -> str:
    bounds, counts = feature["bounds"], feature["counts"]
    rows = [
        ("valid range", f"[0, {bounds['upper_bound']:,})"),
        ("from", bounds["bound_source"] or "-"),
        ("embedding input_dim", f"{bounds['embedding_input_dim']:,}"),
        ("input_dim from", bounds["embedding_dim_source"] or "-"),
    ]
    if bounds["vocabulary"] is not None:
        rows.append(
            (
                "vocabulary",
                f"{bounds['vocabulary']!r}: {_n(bounds['vocab_size'])} entries + "
                f"{bounds['num_oov_buckets']} OOV bucket(s)",
            )
        )
    rows += [
        ("examples", _n(counts["num_examples"])),
        ("values", _n(counts["num_values"])),
        ("examples without a value", _n(counts["missing"])),
        ("observed", f"min {_n(counts['min'])}, max {_n(counts['max'])}"),
    ]
    # Fields added after format version 1 reports were first written.
    if counts.get("vocab_entries_unseen") is not None:
        rows.append(("vocabulary rows unseen", _n(counts["vocab_entries_unseen"])))
    drift = feature.get("oov_drift")
    if drift:
        rows.append(
            (
                "OOV rate",
                f"{drift['oov_rate']:.2%} against {drift['baseline_oov_rate']:.2%} in split "
                f"{drift['baseline_split']!r}",
            )
        )
    cells = "".join(f"<tr><th>{_e(label)}</th><td>{_e(value)}</td></tr>" for label, value in rows)
    return f"<table>{cells}</table>"


def _value_table(heading: str, samples: Sequence[Mapping]) -> str:
    rows = "".join(
        f"<tr><td class='eg-num eg-mono'>{_e(repr(s['value']))}</td>"
        f"<td class='eg-num'>{_n(s['count'])}</td></tr>"
        for s in samples
    )
    return (
        f"<div><b>{_e(heading)}</b> (most frequent first)"
        f"<table><tr><th>value</th><th>count</th></tr>{rows}</table></div>"
    )


def _offending_values(counts: Mapping) -> str:
    parts = []
    offending = list(counts["top_offending_values"]) + list(counts["top_non_integer_values"])
    if offending:
        parts.append(_value_table("Offending values", offending))
    raw_oov = counts.get("top_raw_oov_values") or []
    if raw_oov:
        parts.append(_value_table("Raw values not in the vocabulary", raw_oov))
    if parts and not counts["offending_values_complete"]:
        parts.append(
            "<p class='eg-muted'>Too many distinct values: these counts are a partial sample.</p>"
        )
    return "".join(parts)


def _feature_section(feature: Mapping) -> str:
    severities = {f["severity"] for f in feature["findings"]}
    status = next(
        (s.value for s in (Severity.ERROR, Severity.WARNING) if s.value in severities), "OK"
    )
    findings = "".join(
        f"<li><span class='eg-badge eg-{_e(f['severity'])}'>{_e(f['severity'])}</span> "
        f"<b>{_e(f['reason'])}</b> {_e(f['description'])}</li>"
        for f in feature["findings"]
    )
    return (
        f"<section class='eg-feature' data-feature='{_e(feature['feature'])}'>"
        f"<h3>{_e(feature['feature'])} <span class='eg-badge eg-{status}'>{status}</span></h3>"
        f"<div class='eg-columns'><div>{_bounds_table(feature)}</div>"
        f"<div><b>Where the values fall</b>{_chart(feature['counts'], feature['bounds'])}"
        f"{_offending_values(feature['counts'])}</div></div>"
        + (f"<ul class='eg-findings'>{findings}</ul>" if findings else "")
        + "</section>"
    )


def _split_section(report: Mapping) -> str:
    status = "BLOCKED" if not report["blessed"] else "OK"
    badge = Severity.ERROR.value if not report["blessed"] else "OK"
    split_findings = "".join(
        f"<li><span class='eg-badge eg-{_e(f['severity'])}'>{_e(f['severity'])}</span> "
        f"<b>{_e(f['reason'])}</b> {_e(f['description'])}</li>"
        for f in report.get("split_findings", [])
    )
    return (
        f"<section class='eg-split' data-split='{_e(report['split'])}'>"
        f"<h2>Split {_e(report['split'])} <span class='eg-badge eg-{badge}'>{status}</span> "
        f"<span class='eg-muted'>{_n(report['num_examples'])} examples, "
        f"{report['num_errors']} error(s), {report['num_warnings']} warning(s)</span></h2>"
        + (f"<ul class='eg-findings'>{split_findings}</ul>" if split_findings else "")
        + "".join(_feature_section(feature) for feature in report["features"])
        + "</section>"
    )


def render_fragment(
    reports: Mapping[str, Mapping],
    title: str,
    run_info: Sequence[tuple[str, object]] = (),
    comparison: Mapping | None = None,
) -> str:
    """Renders split reports as an HTML fragment with its own scoped style.

    Args:
      reports: Split name -> that split's `index_report.json` document.
      title: Heading of the report.
      run_info: (label, value) pairs shown under the heading, e.g. run id and URI.
      comparison: Optional comparison with an earlier run: `previous_run_id`,
        `summary` and `changes` (dicts with split, feature, reason, count and
        previous_count; a count is None when that run did not check the split).

    Returns:
      A `<div>` preceded by its `<style>`; safe to embed in a notebook.
    """
    return (
        f"<style>{_STYLE}</style><div class='{ROOT_CLASS}'>"
        f"<h1>{_e(title)}</h1>"
        + (_run_info(run_info) if run_info else "")
        + _verdict(reports)
        + (_comparison(comparison) if comparison else "")
        + "".join(_split_section(reports[split]) for split in sorted(reports))
        + "</div>"
    )


def render_document(
    reports: Mapping[str, Mapping],
    title: str,
    run_info: Sequence[tuple[str, object]] = (),
    comparison: Mapping | None = None,
) -> str:
    """Renders split reports as a complete, self-contained HTML page.

    Args:
      reports: Split name -> that split's `index_report.json` document.
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
