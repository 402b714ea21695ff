"""`embedding-guard report`: lists the validator's runs from MLMD and shows one.

The MLMD queries and the run comparison are in `mlmd_runs`; this module only
decides what to show and formats it. Everything that came from a database or an
artifact passes through `printable` before it reaches the terminal.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import os
import re
from collections.abc import Iterable, Sequence
from typing import Any

from embedding_guard.errors import InputError
from embedding_guard.reports import mlmd_runs
from embedding_guard.reports.comparison import vocabulary_changes
from embedding_guard.reports.mlmd_runs import ReportError, RunComparison, ValidatorRun
from embedding_guard.reports.text import printable, report_table, write_out
from embedding_guard.verdict.report_model import SplitReport

DEFAULT_LIMIT = 20
EXIT_SHOWN = 0
EXIT_BLOCKED = 1


def _blessed_text(blessed: int | None) -> str:
    return {None: "-", 0: "no", 1: "yes"}.get(blessed, printable(blessed))


def format_runs(runs: Sequence[dict], show_pipeline: bool) -> str:
    """Formats listed runs (their JSON form plus error and warning counts) as a table."""
    header = [
        "run id",
        "started (UTC)",
        "exec",
        "node",
        "state",
        "blessed",
        "splits",
        "errors",
        "warnings",
    ]
    if show_pipeline:
        header.insert(0, "pipeline")
    rows = [header]
    for run in runs:
        row = [
            printable(run["run_id"] or "-"),
            run["started_utc"],
            str(run["execution_id"]),
            printable(run["node_id"] or "-"),
            printable(run["state"]),
            _blessed_text(run["blessed"]),
            printable(",".join(run["split_names"]) or "-"),
            "?" if run["num_errors"] is None else str(run["num_errors"]),
            "?" if run["num_warnings"] is None else str(run["num_warnings"]),
        ]
        if show_pipeline:
            row.insert(0, printable(run["pipeline"] or "-"))
        rows.append(row)
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    numeric = {"exec", "errors", "warnings"}
    return "\n".join(
        "  "
        + "  ".join(
            cell.rjust(width) if name in numeric else cell.ljust(width)
            for name, cell, width in zip(header, row, widths, strict=True)
        ).rstrip()
        for row in rows
    )


def format_comparison(comparison: RunComparison) -> str:
    """Formats a run comparison for the terminal."""
    lines = [f"Compared with the previous run: {printable(comparison.summary)}"]
    for change in comparison.changes:
        count, previous = change.count, change.previous_count
        if previous is None:
            trend = "split not checked before"
        elif count is None:
            trend = f"was {previous}, split not checked now"
        else:
            trend = "worse" if count > previous else "better" if count < previous else "same"
            trend = f"was {previous}, {trend}"
        lines.append(
            f"  {change.severity.value:<7} split {printable(change.split)} "
            f"{printable(change.feature) or '-'} {change.reason.value}: "
            f"{'-' if count is None else count} ({trend})"
        )
    return "\n".join(lines)


def html_document(
    run: ValidatorRun, reports: dict[str, SplitReport], comparison: RunComparison | None
) -> str:
    """Renders a run's reports as one self-contained HTML page."""
    from embedding_guard.reports import html_report

    run_info = [
        ("pipeline", run.pipeline or "-"),
        ("run id", run.run_id or "-"),
        ("execution", f"{run.execution_id} ({run.state})"),
        ("node", run.node_id or "-"),
        ("started (UTC)", run.started),
        ("blessed", _blessed_text(run.blessed)),
        ("anomalies", run.anomalies_uri),
    ]
    return html_report.render_document(
        reports,
        f"embedding-guard: {run.node_id or 'EmbeddingIndexValidator'} run {run.label}",
        run_info,
        comparison,
    )


def _is_within(path: str, folder: str) -> bool:
    folder = os.path.realpath(folder)
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def check_html_output(
    html: str,
    metadata: str,
    protected: Iterable[tuple[str, str]],
    force: bool,
) -> None:
    """Refuses an --html path that would destroy or pollute data.

    Args:
      html: The --html path.
      metadata: The MLMD database.
      protected: (what, folder) pairs no file may be written into: pipeline
        roots and artifact folders.
      force: --force: an existing file outside those may be replaced.

    Raises:
      ReportError: html is the database, lies in a protected folder, is a
        folder, lies under a file, or exists and force is not set.
    """
    if "://" in html:
        return
    real = os.path.realpath(html)
    if os.path.exists(real) and os.path.samefile(real, metadata):
        raise ReportError(
            f"--html {html!r} is the MLMD database {metadata!r}; writing the page there would "
            "destroy the database. Pass another file, e.g. --html report.html."
        )
    # SQLite keeps its journal and write-ahead log beside the database.
    if real.startswith(os.path.realpath(metadata) + "-"):
        raise ReportError(
            f"--html {html!r} is a file of the MLMD database {metadata!r}; pass another file."
        )
    for what, folder in protected:
        if _is_within(real, folder):
            raise ReportError(
                f"--html {html!r} lies inside {what} {folder!r}; a page written there would "
                "be read as pipeline data. Pass a file outside it, e.g. --html report.html."
            )
    if os.path.isdir(real):
        raise ReportError(
            f"--html {html!r} is a folder; pass a file name, e.g. {html}/report.html."
        )
    ancestor = os.path.dirname(real)
    while ancestor and not os.path.exists(ancestor):
        ancestor = os.path.dirname(ancestor)
    if ancestor and not os.path.isdir(ancestor):
        raise ReportError(
            f"--html {html!r} lies under {ancestor!r}, which is a file, not a folder."
        )
    if os.path.exists(real) and not force:
        raise ReportError(
            f"--html {html!r} already exists; pass --force to replace it, or another file."
        )


def _counts(run: ValidatorRun) -> tuple[int | None, int | None]:
    if run.anomalies_uri is None:
        return None, None
    try:
        reports = mlmd_runs.load_reports(run)
    except InputError:
        return None, None
    return (
        sum(r.num_errors for r in reports.values()),
        sum(r.num_warnings for r in reports.values()),
    )


def _protected_folders(
    store: Any, runs: Sequence[ValidatorRun], pipeline_root: str | None
) -> list[tuple[str, str]]:
    # Most specific first, so the message names the artifact rather than its root.
    try:
        artifacts = store.get_artifacts()
    except RuntimeError as error:
        raise ReportError(f"MLMD query failed: {printable(error)}") from error
    folders = [
        ("artifact", artifact.uri)
        for artifact in artifacts
        if artifact.uri and "://" not in artifact.uri
    ]
    if pipeline_root:
        folders.append(("PIPELINE_ROOT", pipeline_root))
    for root in sorted({r for r in map(mlmd_runs.pipeline_root_of, runs) if r}):
        folders.append(("the pipeline root", root))
    return folders


@dataclasses.dataclass(frozen=True)
class _Shown:
    """One validator node's execution as the command shows it.

    Attributes:
      run: The execution.
      reports: Its split reports; None when they cannot be read.
      problem: Why there are no reports, or None.
      comparison: Against the node's previous run; None without one.
      cached_from: For a CACHED execution, the one whose artifact it republished.
    """

    run: ValidatorRun
    reports: dict[str, SplitReport] | None
    problem: str | None
    comparison: RunComparison | None
    cached_from: ValidatorRun | None

    @property
    def blocked(self) -> bool:
        """Blocked, or without a verdict (blessed is not set)."""
        return self.run.blessed != 1

    def to_json(self) -> dict:
        cached = self.cached_from
        return {
            **self.run.to_json(),
            "reports": None
            if self.reports is None
            else {split: report.to_json() for split, report in self.reports.items()},
            "comparison": None if self.comparison is None else self.comparison.to_json(),
            "cached_from": None
            if cached is None
            else {"run_id": cached.run_id, "execution_id": cached.execution_id},
            "problem": self.problem,
        }


def _shown(runs: Sequence[ValidatorRun], run: ValidatorRun, strict: bool) -> _Shown:
    """Reads what to show of run; strict (--html) raises when its reports cannot be read."""
    reports, problem, comparison = None, None, None
    try:
        reports = mlmd_runs.load_reports(run)
    except InputError as error:
        # The listing still tells what is known about a failed or deleted run.
        if strict:
            raise
        problem = str(error)
    cached = mlmd_runs.cached_from(runs, run)
    previous = mlmd_runs.previous_run(runs, run)
    # A cached execution checked nothing: comparing it with the run whose
    # artifact it republished would call the same check a change.
    if reports is not None and previous is not None and cached is None:
        try:
            comparison = mlmd_runs.compare(reports, previous, mlmd_runs.load_reports(previous))
        except InputError:
            comparison = None
    return _Shown(run, reports, problem, comparison, cached)


def _node_name(run: ValidatorRun) -> str:
    return run.node_id or "EmbeddingIndexValidator"


def _names(names: Sequence[str]) -> str:
    """'A', 'A and B', 'A, B and C'."""
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def _verdict(run: ValidatorRun) -> str:
    return "BLOCKED" if run.blessed == 0 else "blessed" if run.blessed else "-"


def _format_shown(shown: _Shown, html: str | None) -> str:
    run = shown.run
    out = io.StringIO()
    print(
        f"Run {printable(run.label)} (execution {run.execution_id}, "
        f"pipeline {printable(run.pipeline or '-')}, node {printable(run.node_id or '-')}, "
        f"started {run.started} UTC): {_verdict(run)}",
        file=out,
    )
    if shown.cached_from is not None:
        origin = shown.cached_from
        print(
            f"CACHED: TFX reused the anomalies artifact of run {printable(origin.label)} "
            f"(execution {origin.execution_id}, started {origin.started} UTC) for the same "
            "inputs and parameters; nothing was checked again.",
            file=out,
        )
    if shown.reports is None:
        print(printable(shown.problem), file=out)
    else:
        print(f"anomalies: {printable(run.anomalies_uri)}", file=out)
        print(report_table(shown.reports), file=out)
        vocabularies = vocabulary_changes(shown.reports)
        if vocabularies:
            print("\n" + printable(vocabularies), file=out)
        if shown.comparison is not None:
            print("\n" + format_comparison(shown.comparison), file=out)
        if html:
            print(f"\nHTML report written to {printable(html)}", file=out)
    return out.getvalue().rstrip("\n")


def html_paths(html: str, nodes: Sequence[str]) -> dict[str, str]:
    """Each validator node's --html page: the path itself for one node, else one per node.

    Args:
      html: The --html path, e.g. report.html.
      nodes: The node ids of the run's validator nodes.

    Returns:
      Node id -> page path; with several nodes, report-<node>.html beside report.html.
    """
    if len(nodes) == 1:
        return {nodes[0]: html}
    stem, extension = os.path.splitext(html)
    return {
        node: f"{stem}-{re.sub(r'[^A-Za-z0-9_.-]', '_', node or 'node')}{extension or '.html'}"
        for node in nodes
    }


def run_command(args: argparse.Namespace) -> int:
    """Runs `embedding-guard report`; returns the exit code.

    Shows the chosen pipeline run's execution of every validator node (of the
    --node given), each under its node name with its own verdict.

    Args:
      args: Parsed arguments: pipeline_root, metadata, run, node, json, html,
        force, limit, fail_on_blocked.

    Returns:
      0 once the runs are listed and the chosen ones shown, or why they have no
      reports; 1 with --fail-on-blocked when any shown node is not blessed.

    Raises:
      ReportError: No database, no validator run, unknown run or node, an
        unsafe --html path, or an unreadable report.
    """
    from embedding_guard.reports import report_io

    if args.metadata:
        metadata = args.metadata
    elif args.pipeline_root:
        metadata = mlmd_runs.find_metadata(args.pipeline_root)
    else:
        raise ReportError(
            "report needs PIPELINE_ROOT or --metadata PATH (the MLMD sqlite file); e.g. "
            "embedding-guard report pipeline/_runs/root"
        )
    if args.limit is not None and args.limit < 1:
        raise ReportError(f"--limit must be at least 1, got {args.limit!r}.")
    store = mlmd_runs.open_store(metadata)
    runs = mlmd_runs.validator_runs(store)
    if not runs:
        where = f"PIPELINE_ROOT {args.pipeline_root!r}" if args.pipeline_root else "it"
        raise ReportError(
            f"MLMD database {metadata!r} records no {mlmd_runs.VALIDATOR_TYPE_NAME} execution, "
            f"so {where} has no validator run to report. Run a pipeline with "
            "EmbeddingIndexValidator first, or pass the database it used."
        )
    chosen = mlmd_runs.select_runs(runs, args.run, args.node)
    if args.html and len(chosen) > 1 and os.path.isdir(args.html):
        # One node's page is refused there by check_html_output; several pages too.
        raise ReportError(
            f"--html {args.html!r} is a folder; pass a file name, e.g. {args.html}/report.html."
        )
    pages = html_paths(args.html, [run.node_id for run in chosen]) if args.html else {}
    for path in pages.values():
        check_html_output(
            path, metadata, _protected_folders(store, runs, args.pipeline_root), args.force
        )
    shown = [_shown(runs, run, strict=bool(args.html)) for run in chosen]
    for item in shown:
        if pages and item.reports is not None:
            page = html_document(item.run, item.reports, item.comparison)
            report_io.write_named_file("--html", pages[item.run.node_id], page)
    blocked = [item for item in shown if item.blocked]
    exit_code = EXIT_BLOCKED if args.fail_on_blocked and blocked else EXIT_SHOWN

    # With --node, only that node's runs: the listing is about the node shown.
    node_runs = [run for run in runs if args.node is None or run.node_id == args.node]
    listed_runs = node_runs[: args.limit or DEFAULT_LIMIT]
    listed = []
    for run in listed_runs:
        num_errors, num_warnings = _counts(run)
        listed.append({**run.to_json(), "num_errors": num_errors, "num_warnings": num_warnings})
    if args.json:
        document = {
            "metadata": metadata,
            "runs": listed,
            "runs_not_listed": len(node_runs) - len(listed_runs),
            # One entry per validator node of the chosen pipeline run.
            "shown": [item.to_json() for item in shown],
            # The shown execution when there is one node; null with several.
            "run": shown[0].to_json() if len(shown) == 1 else None,
            "blocked_nodes": [item.run.node_id for item in blocked],
            "html": args.html,
            # Node -> its page: --html itself for one node, <stem>-<node>.html for several.
            "html_files": pages,
        }
        write_out(json.dumps(document, sort_keys=True, indent=2))
        return exit_code

    # Written at once, so that a failed write is one error, not a half-printed report.
    out = io.StringIO()
    nodes = sorted({_node_name(run) for run in node_runs})
    print(f"{printable(_names(nodes))} runs in {printable(metadata)}, newest first:", file=out)
    print(format_runs(listed, len({run.pipeline for run in runs}) > 1), file=out)
    if len(node_runs) > len(listed_runs):
        print(f"  ... and {len(node_runs) - len(listed_runs)} older run(s); see --limit", file=out)
    for item in shown:
        # Each node under its own name when the run has several.
        heading = f"\n== {printable(_node_name(item.run))} ==" if len(shown) > 1 else ""
        print(f"{heading}\n{_format_shown(item, pages.get(item.run.node_id))}", file=out)
    if len(shown) > 1:
        verdicts = ", ".join(
            f"{printable(_node_name(item.run))} {_verdict(item.run)}" for item in shown
        )
        print(f"\nRun {printable(shown[0].run.label)}: {verdicts}", file=out)
    if exit_code == EXIT_BLOCKED:
        print(file=out)
        for item in blocked:
            reason = (
                "is blocked" if item.run.blessed == 0 else "has no verdict (blessed is not set)"
            )
            print(
                f"--fail-on-blocked: run {printable(item.run.label)} of node "
                f"{printable(item.run.node_id or '-')} {reason}; exit code 1.",
                file=out,
            )
    write_out(out.getvalue().rstrip("\n"))
    return exit_code
