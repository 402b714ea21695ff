"""Terminal rendering of reports; shared by `check`, `report` and the HTML page.

Every data-derived string (feature, split and raw values) goes through
`printable`, so a value holding an ANSI escape cannot drive the terminal.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING

from embedding_guard.errors import InputError
from embedding_guard.verdict.reasons import Severity

if TYPE_CHECKING:
    from embedding_guard.verdict.report_model import SplitReport


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


# (header, cell of a FeatureReport), in table order.
_COLUMNS = (
    ("feature", lambda f: printable(f.feature)),
    ("range", lambda f: f"[0,{f.bounds.upper_bound})"),
    ("emb_dim", lambda f: str(f.bounds.embedding_input_dim)),
    ("values", lambda f: _count(f.stats.num_values)),
    ("missing", lambda f: _count(f.stats.missing)),
    ("negative", lambda f: _count(f.stats.negative)),
    ("in_range", lambda f: _count(f.stats.in_range)),
    ("in_vocab", lambda f: _count(f.stats.in_vocab)),
    ("oov_bkt", lambda f: _count(f.stats.oov_bucket)),
    ("out_rng", lambda f: _count(f.stats.out_of_range)),
    ("over_dim", lambda f: _count(f.stats.over_embedding_dim)),
    ("non_int", lambda f: _count(f.stats.non_integer)),
    ("min", lambda f: _count(f.stats.min)),
    ("max", lambda f: _count(f.stats.max)),
    ("oov%", lambda f: "-" if f.stats.oov_rate is None else f"{f.stats.oov_rate:.2%}"),
    ("drift", lambda f: f"{f.oov_drift.difference:+.2%}" if f.oov_drift else "-"),
    (
        "unused_vocab",
        lambda f: (
            "-"
            if f.stats.vocab_entries_unseen is None
            else f"{f.stats.vocab_entries_unseen}/{f.bounds.vocab_size}"
        ),
    ),
    (
        "verdict",
        lambda f: {Severity.ERROR: "ERROR", Severity.WARNING: "warn", None: "ok"}[f.status],
    ),
)


def report_table(reports: Mapping[str, SplitReport]) -> str:
    """Formats split reports (split -> report) as terminal tables, then their findings.

    The bounds and the unchecked features are the same in every split of a run,
    so they come once, first: each checked range with where it came from.
    """
    lines = []
    first = next((reports[split] for split in sorted(reports)), None)
    if first is not None:
        for feature in first.features:
            b = feature.bounds
            lines.append(
                f"{printable(b.feature)} [0, {b.upper_bound}): {printable(b.bound_source)}; "
                f"input_dim {b.embedding_input_dim}: {printable(b.embedding_dim_source)}"
            )
        for unchecked in first.unchecked_features:
            lines.append(
                f"not checked: {printable(unchecked.name)}: {printable(unchecked.why)}; "
                f"{printable(unchecked.parameter_that_would_check_it)} would check it"
            )
    for split, report in sorted(reports.items()):
        verdict = "ok" if report.blessed else "BLOCKED"
        lines.append(
            f"split {printable(split)}: {report.num_examples} examples, "
            f"{report.num_errors} error(s), {report.num_warnings} warning(s) -> {verdict}"
        )
        rows = [[name for name, _ in _COLUMNS]]
        rows += [[cell(feature) for _, cell in _COLUMNS] for feature in report.features]
        widths = [max(len(row[i]) for row in rows) for i in range(len(_COLUMNS))]
        for row in rows:
            lines.append(
                "  " + "  ".join(cell.rjust(width) for cell, width in zip(row, widths, strict=True))
            )
        for finding in report.findings:
            lines.append(
                f"  {finding.severity.value} {finding.reason.value}: "
                f"{printable(finding.description)}"
            )
    return "\n".join(lines)
