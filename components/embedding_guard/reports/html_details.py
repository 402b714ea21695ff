"""The HTML report below its first screen: every feature in one table, then the details.

One compact table holds every checked feature of every split (a row each);
only a feature with an ERROR or WARNING finding in a split gets a detail card
(its bounds and their sources, a bar of where its values fall, the offending
values and where each first occurs); the other features' bound sources are
folded into one `<details>`. The features that were not checked have a table
of their own. Every count cell carries `data-count` (and its row `data-split`
and `data-feature`), so tests read the numbers a reader sees.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from embedding_guard.reports.html_parts import badge, esc, name, num, percent, plural
from embedding_guard.reports.text import bound_sources, dim_source, finding_summary, role_words
from embedding_guard.verdict.core import FeatureStats
from embedding_guard.verdict.report_model import (
    FeatureReport,
    Finding,
    SplitReport,
    UncheckedFeature,
)

# A single bad value among millions must still show as a bar.
_MIN_BAR_PERCENT = 0.8

# (count key, column heading) of the table; a count is red when not zero.
_BAD_COLUMNS = (
    ("negative", "< 0"),
    ("out_of_range", "past range"),
    ("over_embedding_dim", "\u2265 dim"),
)


def _status(feature: FeatureReport, text: str | None = None) -> str:
    """A badge coloured by the feature's worst finding, saying text (default: that status)."""
    status = "OK" if feature.status is None else feature.status.value
    return badge(text or status, status)


def _count_cell(key: str, count: int | None, bad: bool = False) -> str:
    css = "eg-num eg-bad" if bad and count else "eg-num"
    return f"<td class='{css}' data-count='{key}'>{num(count)}</td>"


def _feature_rows(
    feature_name: str,
    by_split: Sequence[FeatureReport],
    splits: Sequence[str],
    non_integer: bool,
) -> str:
    """The rows of one feature, a row per split; the bounds are said once."""
    first = by_split[0]
    bounds = first.bounds
    span = f" rowspan='{len(by_split)}'" if len(by_split) > 1 else ""
    vocabulary = (
        f"{num(bounds.vocab_size)} + {bounds.num_oov_buckets}" if first.has_vocabulary else "-"
    )
    rows = []
    for index, (split, feature) in enumerate(zip(splits, by_split, strict=True)):
        stats = feature.stats
        cells = []
        if index == 0:
            cells.append(f"<td{span}>{name(feature_name)}</td>")
            cells.append(
                f"<td{span} class='eg-num'>[0, {num(bounds.upper_bound)})</td>"
                f"<td{span} class='eg-num'>{num(bounds.embedding_input_dim)}</td>"
                f"<td{span} class='eg-num'>{esc(vocabulary)}</td>"
            )
        valid_key = "in_vocab" if feature.has_vocabulary else "in_range"
        cells.append(f"<td>{_status(feature, split)}</td>")
        cells.append(f"<td class='eg-num'>{num(stats.num_values)}</td>")
        cells.append(_count_cell(valid_key, getattr(stats, valid_key)))
        cells.append(
            _count_cell("oov_bucket", stats.oov_bucket)
            if bounds.num_oov_buckets
            else "<td class='eg-num eg-muted'>-</td>"
        )
        cells += [_count_cell(key, getattr(stats, key), bad=True) for key, _ in _BAD_COLUMNS]
        if non_integer:
            cells.append(_count_cell("non_integer", stats.non_integer, bad=True))
        oov = "-" if stats.oov_rate is None else f"{stats.oov_rate:.2%}"
        cells.append(f"<td class='eg-num'>{oov}</td>")
        css = " class='eg-first'" if index == 0 else ""
        rows.append(
            f"<tr{css} data-split='{esc(split)}' data-feature='{esc(feature_name)}'>"
            f"{''.join(cells)}</tr>"
        )
    return "".join(rows)


def feature_table(reports: Mapping[str, SplitReport]) -> str:
    """Every checked feature of every split in one table; bounds once per feature."""
    splits = sorted(reports)
    names: list[str] = []
    for split in splits:
        names += [f.feature for f in reports[split].features if f.feature not in names]
    if not names:
        return ""
    # The non-integer column only when a value was not an integer (raw mode).
    non_integer = any(f.stats.non_integer for r in reports.values() for f in r.features)
    body = []
    for feature_name in sorted(names):
        present = [(s, reports[s].feature(feature_name)) for s in splits]
        shown = [(s, f) for s, f in present if f is not None]
        rows = _feature_rows(
            feature_name, [f for _, f in shown], [s for s, _ in shown], non_integer
        )
        body.append(rows)
    bad_heads = "".join(f"<th class='eg-num'>{esc(head)}</th>" for _, head in _BAD_COLUMNS)
    head = (
        "<tr><th>feature</th><th class='eg-num'>valid range</th>"
        "<th class='eg-num'>input_dim</th><th class='eg-num'>vocab + OOV</th><th>split</th>"
        "<th class='eg-num'>values</th><th class='eg-num'>valid</th>"
        f"<th class='eg-num'>in OOV bucket</th>{bad_heads}"
        + ("<th class='eg-num'>non-integer</th>" if non_integer else "")
        + "<th class='eg-num'>OOV rate</th></tr>"
    )
    splits_line = " \u00b7 ".join(
        f"<b>{esc(split)}</b> {num(reports[split].num_examples)} examples, "
        f"{plural(reports[split].num_errors, 'error')}, "
        f"{plural(reports[split].num_warnings, 'warning')}"
        for split in splits
    )
    return (
        f"<h2>Checked features: {len(names)}</h2><p class='eg-facts'>{splits_line}</p>"
        "<div class='eg-scroll'><table class='eg-grid'>"
        f"{head}{''.join(body)}</table></div>"
        "<p class='eg-muted'>valid: in the vocabulary, or in range without one; &lt; 0: "
        "negative; \u2265 dim: at or past input_dim. A red (ERROR) or amber (WARNING) split "
        "has a card below.</p>"
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
            f"<tr><td>{esc(label)}</td><td><div class='eg-track'><span class='eg-bar eg-{key}' "
            f"style='width:{width:.2f}%'></span></div></td>"
            f"<td class='eg-num' data-count='{key}'>{num(count)}</td>"
            f"<td class='eg-num eg-muted'>{percent(count, total)}</td></tr>"
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
                f"{bounds.vocabulary!r}: {num(bounds.vocab_size)} entries + "
                f"{bounds.num_oov_buckets} OOV bucket(s)",
            )
        )
    rows += [
        ("examples", num(stats.num_examples)),
        ("values", num(stats.num_values)),
        ("examples without a value", num(stats.missing)),
        ("observed", f"min {num(stats.min)}, max {num(stats.max)}"),
    ]
    if stats.oov_rate is not None:
        rows.append(("OOV rate", f"{stats.oov_rate:.2%} ({num(stats.oov)} values)"))
    else:
        rows.append(("OOV rate", "- (no vocabulary, so no value is out of vocabulary)"))
    if stats.vocab_entries_unseen is not None:
        rows.append(("vocabulary rows unseen", num(stats.vocab_entries_unseen)))
    load = getattr(feature, "hash_load", None)
    if load is not None:
        rows.append(("hash buckets", load.sentence()))
    drift = feature.oov_drift
    if drift:
        rows.append(
            (
                "OOV drift",
                f"{drift.oov_rate:.2%} against {drift.baseline_oov_rate:.2%} in split "
                f"{drift.baseline_split!r}",
            )
        )
    cells = "".join(f"<tr><th>{esc(label)}</th><td>{esc(value)}</td></tr>" for label, value in rows)
    return f"<table class='eg-bounds'>{cells}</table>"


def _value_table(heading: str, samples: Sequence[tuple[int | str, int]], places: dict) -> str:
    """Sample values and counts; a "first at" column when the run located them."""
    located = any(value in places for value, _ in samples)
    rows = "".join(
        f"<tr><td class='eg-num eg-mono'>{esc(repr(value))}</td><td class='eg-num'>{num(count)}</td>"
        + (f"<td>{esc(places.get(value, '-'))}</td>" if located else "")
        + "</tr>"
        for value, count in samples
    )
    where = "<th>first at</th>" if located else ""
    return (
        f"<div><b>{esc(heading)}</b> (most frequent first)"
        f"<table class='eg-bounds'><tr><th>value</th><th>count</th>{where}</tr>{rows}</table></div>"
    )


def _offending_values(stats: FeatureStats) -> str:
    # Where each sample first occurs, by (raw or not, value), when the run located them.
    places: dict[bool, dict] = {True: {}, False: {}}
    for sample in getattr(stats, "sample_locations", ()):
        is_raw = sample.kind == "raw_oov"
        places[is_raw].setdefault(sample.value, sample.location.text())
    parts = []
    offending = list(stats.top_offending_values) + list(stats.top_non_integer_values)
    if offending:
        parts.append(_value_table("Offending values", offending, places[False]))
    if stats.top_raw_oov_values:
        parts.append(
            _value_table("Raw values not in the vocabulary", stats.top_raw_oov_values, places[True])
        )
    if parts and not stats.offending_values_complete:
        parts.append(
            "<p class='eg-muted'>Too many distinct values: these counts are a partial sample.</p>"
        )
    return "".join(parts)


def finding_items(findings: Sequence[Finding]) -> str:
    """Findings as list items: severity, reason, and the description without its fix."""
    return "".join(
        f"<li>{badge(f.severity.value)} "
        + (f"split <code>{esc(f.split)}</code>" if f.split else "")
        + (f", feature <code>{esc(f.feature)}</code>" if f.feature else "")
        + f": <b>{esc(f.reason.value)}</b> {esc(finding_summary(f))}</li>"
        for f in findings
    )


def _card(split: str, feature: FeatureReport) -> str:
    return (
        f"<section class='eg-feature' data-split='{esc(split)}' "
        f"data-feature='{esc(feature.feature)}'>"
        f"<h3>{esc(feature.feature)} in split {esc(split)} {_status(feature)}</h3>"
        f"<div class='eg-columns'><div>{_bounds_table(feature)}</div>"
        f"<div><b>Where the values fall</b>{_chart(feature)}"
        f"{_offending_values(feature.stats)}</div></div>"
        f"<ul class='eg-findings'>{finding_items(feature.findings)}</ul></section>"
    )


def cards(reports: Mapping[str, SplitReport]) -> str:
    """A detail card for each feature and split with an ERROR or WARNING finding."""
    shown = [
        _card(split, feature)
        for split in sorted(reports)
        for feature in reports[split].features
        if feature.status is not None
    ]
    return "".join(shown)


def bound_sources_section(reports: Mapping[str, SplitReport]) -> str:
    """Where the bounds of the features without a card came from, folded away.

    A card shows its feature's bounds; the others are the same in every split,
    so each is said once, in a `<details>` that opens without a script.
    """
    with_card = {f.feature for r in reports.values() for f in r.features if f.status is not None}
    bounds = {
        f.feature: f.bounds
        for r in reports.values()
        for f in r.features
        if f.feature not in with_card
    }
    if not bounds:
        return ""
    items = "".join(
        f"<li>{name(feature)}: [0, {num(b.upper_bound)}) from {esc(bound_sources(b))}</li>"
        for feature, b in sorted(bounds.items())
    )
    return (
        f"<details><summary>Where the bounds of the {plural(len(bounds), 'feature')} "
        f"without a card came from</summary><ul class='eg-findings'>{items}</ul></details>"
    )


def unchecked_section(unchecked: Sequence[UncheckedFeature]) -> str:
    """The features that were not checked, once for the run: the same in every split."""
    if not unchecked:
        return ""
    # The role column only when the roles differ; the heading says the one role.
    roles = sorted({role_words(u) for u in unchecked})
    role_column = len(roles) > 1
    rows = "".join(
        f"<tr data-unchecked='{esc(u.name)}'><td><code>{esc(u.name)}</code></td>"
        + (f"<td>{esc(role_words(u))}</td>" if role_column else "")
        + f"<td>{esc(u.why)}</td><td>{esc(u.parameter_that_would_check_it or '-')}</td></tr>"
        for u in unchecked
    )
    heading = "Not checked" if role_column else roles[0][0].upper() + roles[0][1:]
    return (
        f"<h2 id='eg-unchecked'>{esc(heading)}: {plural(len(unchecked), 'integer feature')}</h2>"
        "<div class='eg-scroll'><table class='eg-grid eg-unchecked'><tr><th>feature</th>"
        + ("<th>role</th>" if role_column else "")
        + f"<th>why</th><th>what would check it</th></tr>{rows}</table></div>"
    )
