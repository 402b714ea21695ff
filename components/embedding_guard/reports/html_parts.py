"""The pieces every part of the HTML report shares: its style and its escaping.

`html_report` lays out the page (its first screen, then the details of
`html_details`); both build their markup from these helpers so that every
data-derived string passes through `esc`.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

from embedding_guard.reports.text import printable

# Every selector is scoped to this class, so the style cannot leak into a
# Jupyter notebook that shows the fragment inline.
ROOT_CLASS = "eg-report"

# Long names (vocabulary files, features, paths) wrap rather than run out of
# their cell into the next one: feature names may break after an underscore
# (`name`), the bounds table's cells anywhere, and flex children get
# `min-width: 0`, without which they never shrink below their content.
STYLE = """
.eg-report { font: 14px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  color: #1d2327; max-width: 1180px; }
.eg-report * { box-sizing: border-box; }
.eg-report h1 { font-size: 19px; margin: 0 0 2px; overflow-wrap: anywhere; }
.eg-report h2 { font-size: 16px; margin: 14px 0 6px; padding-bottom: 3px;
  border-bottom: 2px solid #d0d7de; }
.eg-report h3 { font-size: 14px; margin: 0 0 6px; font-family: ui-monospace, monospace;
  overflow-wrap: anywhere; }
.eg-report code, .eg-report .eg-mono { font-family: ui-monospace, SFMono-Regular, Menlo,
  monospace; font-size: 12.5px; overflow-wrap: anywhere; }
.eg-report .eg-run { margin: 0 0 8px; color: #57606a; font-size: 12.5px;
  overflow-wrap: anywhere; }
.eg-report .eg-run b { font-weight: 600; }
.eg-report .eg-verdict { border-radius: 6px; padding: 10px 14px; margin: 6px 0 10px; }
.eg-report .eg-verdict p { margin: 0 0 4px; }
.eg-report .eg-verdict ol { margin: 6px 0 0; padding-left: 22px; }
.eg-report .eg-verdict li { margin-bottom: 6px; overflow-wrap: anywhere; }
.eg-report .eg-headline { font-size: 17px; font-weight: 700; }
.eg-report .eg-blocked { background: #ffebe9; border: 1px solid #cf222e; }
.eg-report .eg-blessed { background: #dafbe1; border: 1px solid #1a7f37; }
.eg-report .eg-detail { color: #57606a; }
.eg-report .eg-coverage { font-weight: 600; }
.eg-report .eg-facts { margin: 4px 0; overflow-wrap: anywhere; }
.eg-report .eg-label { display: inline-block; min-width: 110px; font-weight: 700; }
.eg-report .eg-badge { display: inline-block; padding: 0 6px; border-radius: 9px;
  font-size: 11.5px; font-weight: 700; color: #fff; vertical-align: 1px; white-space: nowrap; }
.eg-report .eg-ERROR { background: #cf222e; }
.eg-report .eg-WARNING { background: #9a6700; }
.eg-report .eg-INFO { background: #0969da; }
.eg-report .eg-OK { background: #1a7f37; }
.eg-report .eg-scroll { max-width: 100%; overflow-x: auto; }
.eg-report table { border-collapse: collapse; max-width: 100%; }
.eg-report td, .eg-report th { padding: 2px 10px 2px 0; text-align: left; vertical-align: top;
  overflow-wrap: break-word; }
.eg-report .eg-bounds td { overflow-wrap: anywhere; }
.eg-report .eg-bounds th { white-space: nowrap; }
.eg-report th { font-weight: 600; color: #57606a; }
.eg-report td.eg-num, .eg-report th.eg-num { text-align: right;
  font-variant-numeric: tabular-nums; }
.eg-report td.eg-num { white-space: nowrap; }
.eg-report table.eg-grid { font-size: 13px; line-height: 1.3; }
.eg-report table.eg-unchecked { width: 100%; }
.eg-report .eg-grid td, .eg-report .eg-grid code { overflow-wrap: normal; }
.eg-report .eg-grid th { border-bottom: 1px solid #d0d7de; vertical-align: bottom; }
.eg-report .eg-grid tr.eg-first td { border-top: 1px solid #eaeef2; }
.eg-report .eg-bad { color: #cf222e; font-weight: 700; }
.eg-report .eg-feature { border: 1px solid #d0d7de; border-radius: 6px; padding: 8px 12px;
  margin: 8px 0; }
.eg-report .eg-columns { display: flex; flex-wrap: wrap; gap: 16px; }
.eg-report .eg-columns > div { flex: 1 1 420px; min-width: 0; }
.eg-report .eg-chart td { padding-top: 1px; padding-bottom: 1px; }
.eg-report .eg-track { width: 200px; max-width: 30vw; height: 12px; background: #eaeef2;
  border-radius: 2px; }
.eg-report .eg-bar { display: block; height: 12px; border-radius: 2px; }
.eg-report .eg-in_vocab, .eg-report .eg-in_range { background: #57ab5a; }
.eg-report .eg-oov_bucket { background: #54aeff; }
.eg-report .eg-negative, .eg-report .eg-out_of_range { background: #cf222e; }
.eg-report .eg-over_embedding_dim { background: #bc4c00; }
.eg-report .eg-non_integer { background: #8250df; }
.eg-report .eg-muted { color: #57606a; }
.eg-report summary { cursor: pointer; color: #57606a; }
.eg-report ul.eg-findings { margin: 6px 0 0; padding-left: 18px; }
.eg-report ul.eg-findings li { margin-bottom: 3px; overflow-wrap: anywhere; }
.eg-report .eg-worse { color: #cf222e; font-weight: 600; }
.eg-report .eg-better { color: #1a7f37; font-weight: 600; }
"""


def esc(value: object) -> str:
    """The text of value, HTML-escaped, control characters shown escaped.

    Control characters (ESC, BEL) are escaped as in the terminal, so a report
    that is printed with `cat` cannot drive the terminal.
    """
    return html.escape(printable(value), quote=True)


def name(value: object) -> str:
    """A feature name in code type that may wrap after each underscore."""
    return f"<code>{esc(value).replace('_', '_<wbr>')}</code>"


def num(value: int | None) -> str:
    """A count with thousands separators; "-" for None."""
    return "-" if value is None else f"{value:,}"


def percent(count: int, total: int) -> str:
    """count of total as a percentage with two decimals."""
    return f"{count / total:.2%}" if total else "0.00%"


def badge(text: str, kind: str | None = None) -> str:
    """A coloured label; kind (ERROR, WARNING, INFO, OK) picks the colour."""
    return f"<span class='eg-badge eg-{esc(kind or text)}'>{esc(text)}</span>"


def samples_text(
    samples: Sequence[tuple[int | str, int]], places: Sequence[str | None] = ()
) -> str:
    """The most frequent values, e.g. "42 ×2 (first at Split-eval/data.gz record 7), 57 ×1".

    Args:
      samples: (value, count) pairs.
      places: Where each value first occurs, as text, or None where unknown.
    """
    parts = []
    for index, (value, count) in enumerate(samples):
        place = places[index] if index < len(places) else None
        parts.append(f"{value!r} \u00d7{count:,}" + (f" (first at {place})" if place else ""))
    return ", ".join(parts)


def plural(count: int, word: str) -> str:
    """ "1 error", "2 errors"."""
    return f"{count} {word}{'' if count == 1 else 's'}"
