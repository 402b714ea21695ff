"""Terminal rendering of reports; shared by `check`, `report` and the HTML page.

The report fits WIDTH columns: the checked features' bounds once, each split's
counts and findings, the features that were not checked as one table, and the
verdict last, on one line with the coverage. Every renderer counts problems the
same way: one ERROR finding per root cause, as the report holds them.

Every data-derived string (feature, split and raw values) goes through
`printable`, so a value holding an ANSI escape cannot drive the terminal.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import textwrap
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

from embedding_guard.errors import InputError
from embedding_guard.verdict.locations import first_location
from embedding_guard.verdict.reasons import Severity

if TYPE_CHECKING:
    from embedding_guard.verdict.core import FeatureBounds
    from embedding_guard.verdict.report_model import (
        FeatureReport,
        Finding,
        SplitReport,
        UncheckedFeature,
    )

# The terminal report's width, in columns.
WIDTH = 100


def write_out(text: str) -> None:
    """Writes text and a newline to standard output, now.

    Raises:
      InputError: Standard output cannot be written (a full disk, a closed
        pipe): what a command printed would be lost, so it must not look done.
    """
    out = sys.stdout
    if out is None:
        # Python's own print() does the same when the process has no stdout at all.
        return
    try:
        out.write(text + "\n")
        out.flush()
    except OSError as error:
        process_stdout = sys.__stdout__
        if process_stdout is not None and out is process_stdout:
            # What is left in its buffer would fail again, noisily, at the exit's flush.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, process_stdout.fileno())
            os.close(devnull)
        raise InputError(
            f"standard output cannot be written ({error.strerror or error}); free space, or "
            "send it somewhere that can take it."
        ) from error


def printable(text: object) -> str:
    """Renders data-derived text for a terminal with control characters escaped.

    Vocabulary entries and raw values come from user data; an ANSI escape in one
    must not be able to rewrite the terminal.
    """
    text = str(text)
    if text.isprintable():
        return text
    return "".join(
        char if char.isprintable() else char.encode("unicode_escape").decode("ascii")
        for char in text
    )


def _count(value: int | None) -> str:
    return "-" if value is None else str(value)


def _wrap(text: str, indent: str = "", hanging: str = "      ") -> list[str]:
    """Wraps text at WIDTH; a word longer than a line (a path, a value) is cut."""
    return textwrap.wrap(
        text,
        WIDTH,
        initial_indent=indent,
        subsequent_indent=hanging,
        break_long_words=True,
        break_on_hyphens=False,
    ) or [indent.rstrip()]


# What each role of UncheckedFeature is called, in every renderer.
ROLE_WORDS = {
    "not_checked": "not checked",
    "excluded": "excluded",
    "not_looked_up": "not looked up by the model",
}


def role_words(unchecked: UncheckedFeature) -> str:
    """The role of an unchecked feature in words: 'not checked', 'excluded', ..."""
    return ROLE_WORDS.get(unchecked.role, unchecked.role.replace("_", " "))


def dim_source(bounds: FeatureBounds) -> str:
    """Where the embedding input_dim came from, or "" when the bound source says it.

    A feature that only the model bounds has the model's table as its bound, so
    its bound source already names that table: said twice, it reads as two
    sources.
    """
    source = bounds.embedding_dim_source
    if not source or source in bounds.bound_source:
        return ""
    return source


def bound_sources(bounds: FeatureBounds) -> str:
    """The valid range's source and, unless the same, the input_dim's, in one text."""
    where = dim_source(bounds)
    if bounds.embedding_dim_source and not where:
        return f"{bounds.bound_source} (the same table gives input_dim)"
    return f"{bounds.bound_source}; input_dim: {where}" if where else bounds.bound_source


def finding_summary(finding: Finding) -> str:
    """The finding's description without its lookup sentence and fix.

    The description carries both so that it reads whole in the JSON and the
    Anomalies proto; renderers that show `lookup` and `fix` on their own lines
    take them out here rather than say them twice.
    """
    text = finding.description
    if finding.lookup is not None:
        text = text.replace(f" {finding.lookup.sentence()}", "", 1)
    if finding.fix:
        text = text.replace(f" {finding.fix}", "", 1)
    return text


def lookup_lines(finding: Finding) -> list[tuple[str, str]]:
    """(label, text) of what the finding's lookup does: which lookup, on CPU, on GPU."""
    lookup = finding.lookup
    if lookup is None:
        return []
    # Without evidence the words are what lookups do in general: no model said which.
    which = lookup.lookup + (
        f" ({lookup.evidence})" if lookup.evidence else " (no model checked: lookups in general)"
    )
    if lookup.on_cpu == lookup.on_gpu:
        return [("lookup", which), ("on CPU and GPU", lookup.on_cpu)]
    return [("lookup", which), ("on CPU", lookup.on_cpu), ("on GPU", lookup.on_gpu)]


def _status(feature: FeatureReport) -> str:
    return {Severity.ERROR: "ERROR", Severity.WARNING: "warn", None: "ok"}[feature.status]


def _percent(rate: float) -> str:
    return f"{rate:.1%}"


@dataclasses.dataclass(frozen=True)
class _Column:
    header: str
    cell: Callable[[FeatureReport], str]
    # Columns that do not fit WIDTH are left out, highest first; 0 always stays.
    drop_rank: int = 0


_COLUMNS = (
    _Column("values", lambda f: _count(f.stats.num_values)),
    _Column("missing", lambda f: _count(f.stats.missing), 3),
    _Column("negative", lambda f: _count(f.stats.negative)),
    _Column(">=range", lambda f: _count(f.stats.out_of_range)),
    _Column(">=dim", lambda f: _count(f.stats.over_embedding_dim)),
    _Column("non_int", lambda f: _count(f.stats.non_integer)),
    _Column(
        "min..max",
        lambda f: "-" if f.stats.min is None else f"{f.stats.min}..{f.stats.max}",
        2,
    ),
    _Column("oov%", lambda f: "-" if f.stats.oov_rate is None else _percent(f.stats.oov_rate), 4),
    _Column("drift", lambda f: f"{f.oov_drift.difference:+.1%}" if f.oov_drift else "-", 5),
    _Column("status", _status),
)
_LEGEND = (
    "  >=range: values at or past the valid range; >=dim: at or past the embedding input_dim; "
    "drift: OOV rate minus the baseline split's"
)
_MIN_FEATURE_WIDTH = 12


def _feature_table(features: Sequence[FeatureReport]) -> list[str]:
    """The counts of one split's features, WIDTH wide: columns that do not fit are left out.

    A feature name too long for its column gets a line of its own above its row.
    """
    columns = list(_COLUMNS)
    cells = [[column.cell(f) for column in columns] for f in features]

    def widths() -> list[int]:
        return [
            max([len(c.header)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)
        ]

    # Two spaces of indent, two between columns.
    while 2 + _MIN_FEATURE_WIDTH + sum(w + 2 for w in widths()) > WIDTH:
        droppable = [i for i, c in enumerate(columns) if c.drop_rank]
        if not droppable:
            break
        drop = max(droppable, key=lambda i: columns[i].drop_rank)
        del columns[drop]
        for row in cells:
            del row[drop]
    column_widths = widths()
    room = WIDTH - 2 - sum(w + 2 for w in column_widths)
    names = [printable(f.feature) for f in features]
    name_width = max(min(max([len("feature")] + [len(n) for n in names]), room), 7)
    lines = ["  " + "feature".ljust(name_width) + _row([c.header for c in columns], column_widths)]
    for name, row in zip(names, cells, strict=True):
        if len(name) > name_width:
            lines.extend(_wrap(name, "  ", "  "))
            name = ""
        lines.append("  " + name.ljust(name_width) + _row(row, column_widths))
    return lines


def _row(cells: Sequence[str], widths: Sequence[int]) -> str:
    return "".join("  " + cell.rjust(width) for cell, width in zip(cells, widths, strict=True))


def _finding_lines(finding: Finding) -> list[str]:
    """One finding, WIDTH wide: what, then (for a problem) its values, lookup and fix."""
    lines = _wrap(
        f"  {finding.severity.value} {finding.reason.value}: {printable(finding_summary(finding))}"
    )
    if finding.severity is Severity.INFO:
        return lines
    details: list[tuple[str, str]] = []
    if finding.values_past_table is not None:
        details.append(("values past the table", str(finding.values_past_table)))
    details += lookup_lines(finding)
    if finding.fix:
        details.append(("fix", finding.fix))
    for label, text in details:
        lines += _wrap(f"{label}: {printable(text)}", "      ", "        ")
    return lines + first_at_lines(finding)


def first_at_text(finding: Finding) -> str | None:
    """'first at Split-eval/x.gz record 1,204 (value -1; ...)': the earliest sample value's place."""
    first = first_location(finding.sample_locations)
    if first is None:
        return None
    value = finding.sample_values[finding.sample_locations.index(first)][0]
    return f"first at {first.text(finding.split)} (value {value!r}; records count from 0)"


def first_at_lines(finding: Finding) -> list[str]:
    """first_at_text, wrapped under the finding; none when its samples have no location."""
    text = first_at_text(finding)
    return [] if text is None else _wrap(printable(text), "      ", "        ")


def _bounds_lines(first: SplitReport) -> list[str]:
    if not first.features:
        return []
    lines = ["Checked features and their bounds (the same in every split):"]
    for feature in first.features:
        b = feature.bounds
        lines += _wrap(
            f"{printable(b.feature)} [0, {b.upper_bound}), input_dim {b.embedding_input_dim}: "
            f"{printable(bound_sources(b))}",
            "  ",
            "      ",
        )
    return lines


def unchecked_table(unchecked: Sequence[UncheckedFeature]) -> list[str]:
    """The features that were not checked as one table: feature, role, what would check it."""
    if not unchecked:
        return []
    names = [printable(u.name) for u in unchecked]
    roles = [role_words(u) for u in unchecked]
    name_width = min(max(len("feature"), *map(len, names)), 30)
    role_width = max(len("role"), *map(len, roles))
    indent = 2 + name_width + 2 + role_width + 2
    lines = [
        f"Not checked ({len(unchecked)} integer feature(s)):",
        "  "
        + "feature".ljust(name_width)
        + "  "
        + "role".ljust(role_width)
        + "  what would check it",
    ]
    for name, role, feature in zip(names, roles, unchecked, strict=True):
        if len(name) > name_width:
            lines.extend(_wrap(name, "  ", "  "))
            name = ""
        prefix = "  " + name.ljust(name_width) + "  " + role.ljust(role_width) + "  "
        would_check = printable(feature.parameter_that_would_check_it) or "-"
        lines += _wrap(would_check, prefix, " " * indent)
    return lines


def _splits_words(splits: Sequence[str]) -> str:
    shown = ", ".join(printable(s) for s in splits)
    return f"split {shown}" if len(splits) == 1 else f"{len(splits)} splits ({shown})"


def gate_words(report: SplitReport) -> str:
    """What a blocked verdict stops: 'the Trainer must not run' or 'the Pusher must not push'."""
    return "the Pusher must not push" if report.gate == "Pusher" else "the Trainer must not run"


def verdict_line(reports: Mapping[str, SplitReport], where_listed: str = "above") -> str:
    """The run's verdict in one sentence, with the coverage.

    Args:
      reports: Split name -> report, all of one run.
      where_listed: Where the features that were not checked are listed.

    Returns:
      "OK: ..." or "BLOCKED: N error(s) in ...; the Trainer must not run", each
      saying how many categorical integer features were checked and how many not.
    """
    if not reports:
        return "No split reports were found."
    splits = sorted(reports)
    first = reports[splits[0]]
    coverage = first.coverage
    if first.unchecked_features:
        coverage += f" (listed {where_listed})"
    blocked = [s for s in splits if not reports[s].blessed]
    errors = sum(reports[s].num_errors for s in splits)
    warnings = sum(reports[s].num_warnings for s in splits)
    warned = f"; {warnings} warning{'s' if warnings != 1 else ''}" if warnings else ""
    if blocked:
        where = _splits_words(blocked)
        if len(splits) > 1:
            shown = ", ".join(printable(s) for s in blocked)
            where = f"{len(blocked)} of {len(splits)} splits ({shown})"
        return (
            f"BLOCKED: {errors} error{'s' if errors != 1 else ''} in {where}{warned}; "
            f"{coverage}; {gate_words(first)}."
        )
    return (
        f"OK: no checked index would fail an embedding lookup in {_splits_words(splits)}{warned}; "
        f"{coverage}."
    )


def report_table(reports: Mapping[str, SplitReport]) -> str:
    """Formats split reports (split -> report) for a terminal, at most WIDTH columns wide.

    The bounds come once, first (they are the same in every split of a run);
    then each split's counts and findings; then the features that were not
    checked, as one table; the verdict with the coverage is the last line.
    """
    lines: list[str] = []
    first = next((reports[split] for split in sorted(reports)), None)
    if first is not None:
        lines += _bounds_lines(first)
    legend = False
    for split, report in sorted(reports.items()):
        verdict = "ok" if report.blessed else "BLOCKED"
        lines += _wrap(
            f"split {printable(split)}: {report.num_examples} examples, "
            f"{report.num_errors} error(s), {report.num_warnings} warning(s) -> {verdict}",
            "",
            "  ",
        )
        if report.example_count is not None:
            lines += _wrap(printable(report.example_count.sentence()) + ".", "  ", "    ")
        if report.features:
            lines += _feature_table(report.features)
            if not legend:
                lines += _wrap(_LEGEND, "", "    ")
                legend = True
        for feature in report.features:
            if feature.hash_load is not None:
                lines += _wrap(f"{feature.feature}: {feature.hash_load.sentence()}.", "  ", "    ")
        for finding in report.findings:
            lines += _finding_lines(finding)
    if first is not None:
        lines += unchecked_table(first.unchecked_features)
    lines += _wrap(verdict_line(reports), "", "  ")
    return "\n".join(lines)
