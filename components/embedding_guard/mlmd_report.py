"""`embedding-guard report`: reviews the validator's runs recorded in ML Metadata.

Runs are found through MLMD, never by walking folders: the executions whose type
is the component's class name, their `pipeline`, `pipeline_run` and `node`
contexts (as TFX's portable runtime records them), and the `anomalies` artifact
their OUTPUT event points to. Only the per-split `index_report.json` files are
read from the artifact store, through `tfx.dsl.io.fileio`.

Where the MLMD database is: `--metadata PATH`, or by convention from
PIPELINE_ROOT, the first of `PIPELINE_ROOT/metadata.sqlite`,
`PIPELINE_ROOT/metadata.db`, and the same two names in PIPELINE_ROOT's parent
folder (the demo keeps `pipeline/_runs/metadata.sqlite` next to
`pipeline/_runs/root`).
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import sqlite3
import sys
import urllib.parse
from collections.abc import Mapping, Sequence

from embedding_guard.errors import InputError

# The same per-split table `check` prints.
from embedding_guard.text import printable, report_table

# What TFX records as the execution type: BaseNode.get_class_type() of the
# component class. Written out so that listing runs does not import Beam; a
# component test checks it against EmbeddingIndexValidator.get_class_type().
VALIDATOR_TYPE_NAME = "embedding_guard.component.EmbeddingIndexValidator"
METADATA_FILE_NAMES = ("metadata.sqlite", "metadata.db")
# How long to wait for a pipeline that is writing to the database. MLMD itself
# retries for about 45 s before it gives up on a locked database.
LOCK_TIMEOUT_SECONDS = 3.0
DEFAULT_LIMIT = 20

# TFX's portable runtime names these context types (tfx/orchestration/portable/
# mlmd/context_lib.py).
_PIPELINE_CONTEXT = "pipeline"
_PIPELINE_RUN_CONTEXT = "pipeline_run"
_NODE_CONTEXT = "node"


class ReportError(InputError):
    """The database or a run cannot be read; the message says which and what to do."""


@dataclasses.dataclass(frozen=True)
class ValidatorRun:
    """One EmbeddingIndexValidator execution and the anomalies artifact it published.

    Attributes:
      execution_id: MLMD execution id.
      run_id: Name of the execution's `pipeline_run` context; "" without one.
      pipeline: Pipeline name; "" without a `pipeline` context.
      node_id: The component's id in the pipeline.
      state: MLMD execution state, e.g. COMPLETE, CACHED, FAILED, RUNNING.
      create_time_ms: Execution creation time, ms since the epoch.
      anomalies_uri: URI of the output artifact; None when none was published
        (a failed or still running execution).
      blessed: The artifact's `blessed` property; None without artifact.
      split_names: The validated splits.
      artifact: The output as a TFX ExampleAnomalies artifact, or None.
    """

    execution_id: int
    run_id: str
    pipeline: str
    node_id: str
    state: str
    create_time_ms: int
    anomalies_uri: str | None
    blessed: int | None
    split_names: tuple[str, ...]
    artifact: object = dataclasses.field(default=None, compare=False, repr=False)

    @property
    def started(self) -> str:
        """Creation time in UTC, to the second."""
        moment = datetime.datetime.fromtimestamp(
            self.create_time_ms / 1000, tz=datetime.timezone.utc
        )
        return moment.strftime("%Y-%m-%d %H:%M:%S")

    @property
    def label(self) -> str:
        """The run id, or the execution id for executions outside a pipeline run."""
        return self.run_id or f"execution {self.execution_id}"

    def to_json(self) -> dict:
        return {
            "execution_id": self.execution_id,
            "run_id": self.run_id,
            "pipeline": self.pipeline,
            "node_id": self.node_id,
            "state": self.state,
            "create_time_ms": self.create_time_ms,
            "started_utc": self.started,
            "anomalies_uri": self.anomalies_uri,
            "blessed": self.blessed,
            "split_names": list(self.split_names),
        }


def find_metadata(pipeline_root: str) -> str:
    """Finds the MLMD sqlite file of a pipeline root by the module's convention.

    Args:
      pipeline_root: The pipeline root folder.

    Returns:
      Path of the database file.

    Raises:
      ReportError: The root does not exist or no database is where expected.
    """
    if not os.path.isdir(pipeline_root):
        raise ReportError(
            f"PIPELINE_ROOT {pipeline_root!r} is not a folder. Pass the pipeline_root the "
            "pipeline ran with, or the MLMD database with --metadata PATH."
        )
    root = os.path.abspath(pipeline_root)
    candidates = [
        os.path.join(folder, name)
        for folder in (root, os.path.dirname(root))
        for name in METADATA_FILE_NAMES
    ]
    for candidate in candidates:
        if os.path.isfile(candidate):
            return candidate
    raise ReportError(
        f"No MLMD database found for PIPELINE_ROOT {pipeline_root!r}; looked for "
        f"{candidates!r}. Pass the sqlite file the pipeline's metadata_connection_config "
        "names with --metadata PATH."
    )


def check_database(path: str) -> None:
    """Fails fast, with the reason, when path is not a readable MLMD sqlite file.

    Args:
      path: The database file.

    Raises:
      ReportError: The file is missing, locked, not sqlite, or not MLMD.
    """
    if not os.path.isfile(path):
        raise ReportError(
            f"MLMD database {path!r} does not exist. Pass the sqlite file named by the "
            "pipeline's metadata_connection_config (sqlite_metadata_connection_config)."
        )
    uri = f"file:{urllib.parse.quote(os.path.abspath(path))}?mode=ro"
    try:
        with sqlite3.connect(uri, uri=True, timeout=LOCK_TIMEOUT_SECONDS) as connection:
            tables = {
                row[0]
                for row in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")
            }
    except sqlite3.OperationalError as error:
        if "locked" in str(error):
            raise ReportError(
                f"MLMD database {path!r} is locked: another process (probably a running "
                f"pipeline) has held a write lock for over {LOCK_TIMEOUT_SECONDS:g} s. "
                "Retry when it finishes."
            ) from error
        raise ReportError(f"MLMD database {path!r} cannot be read: {error}.") from error
    except sqlite3.DatabaseError as error:
        raise ReportError(
            f"{path!r} is not an sqlite database ({error}); pass the MLMD sqlite file."
        ) from error
    if not {"Execution", "Context", "Event", "Artifact"} <= tables:
        raise ReportError(
            f"{path!r} is an sqlite file but not an ML Metadata database (it has no "
            "Execution, Context, Event and Artifact tables); pass the MLMD sqlite file."
        )


def open_store(path: str):
    """Opens an MLMD sqlite database read-only, so a report never alters it."""
    from ml_metadata.metadata_store import metadata_store
    from ml_metadata.proto import metadata_store_pb2

    check_database(path)
    config = metadata_store_pb2.ConnectionConfig()
    config.sqlite.filename_uri = path
    config.sqlite.connection_mode = metadata_store_pb2.SqliteMetadataSourceConfig.READONLY
    try:
        return metadata_store.MetadataStore(config)
    except RuntimeError as error:
        raise ReportError(f"MLMD cannot open {path!r}: {error}") from error


def validator_runs(store) -> list[ValidatorRun]:
    """Lists every EmbeddingIndexValidator execution in a store, newest first.

    Args:
      store: An MLMD MetadataStore.

    Returns:
      The runs, newest first.

    Raises:
      ReportError: MLMD fails to answer (e.g. the database got locked).
    """
    try:
        return _validator_runs(store)
    except RuntimeError as error:
        raise ReportError(f"MLMD query failed: {error}") from error


def _validator_runs(store) -> list[ValidatorRun]:
    from ml_metadata.proto import metadata_store_pb2
    from tfx.types import artifact_utils

    from embedding_guard import spec

    executions = store.get_executions_by_type(VALIDATOR_TYPE_NAME)
    if not executions:
        return []
    context_types = {t.id: t.name for t in store.get_context_types()}
    output_ids: dict[int, int] = {}
    for event in store.get_events_by_execution_ids([e.id for e in executions]):
        steps = event.path.steps
        if (
            event.type == metadata_store_pb2.Event.OUTPUT
            and steps
            and steps[0].key == spec.ANOMALIES_KEY
        ):
            output_ids[event.execution_id] = event.artifact_id
    mlmd_artifacts = {a.id: a for a in store.get_artifacts_by_id(list(set(output_ids.values())))}
    artifact_types = {
        t.id: t
        for t in store.get_artifact_types_by_id(list({a.type_id for a in mlmd_artifacts.values()}))
    }

    runs = []
    for execution in executions:
        names = {_PIPELINE_CONTEXT: "", _PIPELINE_RUN_CONTEXT: "", _NODE_CONTEXT: ""}
        for context in store.get_contexts_by_execution(execution.id):
            kind = context_types.get(context.type_id)
            if kind in names:
                names[kind] = context.name
        pipeline = names[_PIPELINE_CONTEXT]
        node = names[_NODE_CONTEXT]
        if pipeline and node.startswith(pipeline + "."):
            node = node[len(pipeline) + 1 :]
        artifact = None
        mlmd_artifact = mlmd_artifacts.get(output_ids.get(execution.id))
        if mlmd_artifact is not None:
            artifact = artifact_utils.deserialize_artifact(
                artifact_types[mlmd_artifact.type_id], mlmd_artifact
            )
        blessed = None
        split_names: tuple[str, ...] = ()
        if artifact is not None:
            if artifact.has_custom_property(spec.BLESSED_PROPERTY):
                blessed = artifact.get_int_custom_property(spec.BLESSED_PROPERTY)
            split_names = tuple(artifact_utils.decode_split_names(artifact.split_names or "[]"))
        runs.append(
            ValidatorRun(
                execution_id=execution.id,
                run_id=names[_PIPELINE_RUN_CONTEXT],
                pipeline=pipeline,
                node_id=node,
                state=metadata_store_pb2.Execution.State.Name(execution.last_known_state),
                create_time_ms=execution.create_time_since_epoch,
                anomalies_uri=None if artifact is None else artifact.uri,
                blessed=blessed,
                split_names=split_names,
                artifact=artifact,
            )
        )
    runs.sort(key=lambda run: (run.create_time_ms, run.execution_id), reverse=True)
    return runs


def select_run(runs: Sequence[ValidatorRun], run: str | None) -> ValidatorRun:
    """Picks the run to show: by run id, else by execution id; default the newest.

    Raises:
      ReportError: No run matches.
    """
    if run is None:
        return runs[0]
    for candidate in runs:
        if candidate.run_id == run:
            return candidate
    for candidate in runs:
        if str(candidate.execution_id) == run:
            return candidate
    known = ", ".join(repr(r.label) for r in runs[:5])
    raise ReportError(
        f"--run {run!r} matches no EmbeddingIndexValidator run id or execution id; "
        f"the newest are {known}. Run without --run to list them."
    )


def load_reports(run: ValidatorRun) -> dict[str, dict]:
    """Reads a run's split reports.

    Raises:
      ReportError: The run published no artifact, or a report file is missing.
    """
    from embedding_guard import report_io

    if run.anomalies_uri is None:
        raise ReportError(
            f"Run {run.label!r} (execution {run.execution_id}, state {run.state}) published "
            "no anomalies artifact, so it has no reports. A FAILED validator raised (e.g. "
            "fail_on_block=True when blocked): its message is in the pipeline's log."
        )
    return report_io.read_split_reports(run.anomalies_uri, list(run.split_names))


def _problems(reports: Mapping[str, Mapping]) -> dict[tuple[str, str, str], tuple[str, int]]:
    problems = {}
    for split, report in reports.items():
        findings = list(report.get("split_findings", []))
        for feature in report["features"]:
            findings += feature["findings"]
        for finding in findings:
            if finding["severity"] in ("ERROR", "WARNING"):
                key = (split, finding["feature"], finding["reason"])
                problems[key] = (finding["severity"], finding["count"])
    return problems


def _count(problems: Mapping, key: tuple[str, str, str], reports: Mapping) -> int | None:
    if key in problems:
        return problems[key][1]
    return 0 if key[0] in reports else None


def compare(
    reports: Mapping[str, Mapping], previous: ValidatorRun, previous_reports: Mapping[str, Mapping]
) -> dict:
    """Compares a run's ERROR and WARNING findings with an earlier run's.

    Args:
      reports: The shown run's split reports.
      previous: The earlier run.
      previous_reports: Its split reports.

    Returns:
      `previous_run_id`, `previous_execution_id`, `summary` and `changes`: one
      entry per (split, feature, reason) with a finding in either run, holding
      `count` and `previous_count` (None when that run did not check the split).
    """
    now, before = _problems(reports), _problems(previous_reports)
    changes = []
    for key in sorted(set(now) | set(before)):
        split, feature, reason = key
        changes.append(
            {
                "split": split,
                "feature": feature,
                "reason": reason,
                "severity": (now.get(key) or before[key])[0],
                "count": _count(now, key, reports),
                "previous_count": _count(before, key, previous_reports),
            }
        )
    errors_now = sum(report["num_errors"] for report in reports.values())
    errors_before = sum(report["num_errors"] for report in previous_reports.values())
    unchecked = sorted(set(reports) - set(previous_reports))
    summary = (
        f"{errors_now} ERROR finding(s) now, {errors_before} in run {previous.label} "
        f"(execution {previous.execution_id}, blessed={previous.blessed})."
    )
    if unchecked:
        summary += f" That run did not check split(s) {', '.join(unchecked)}."
    return {
        "previous_run_id": previous.label,
        "previous_execution_id": previous.execution_id,
        "summary": summary,
        "changes": changes,
    }


def _previous_run(runs: Sequence[ValidatorRun], run: ValidatorRun) -> ValidatorRun | None:
    older = runs[runs.index(run) + 1 :]
    for candidate in older:
        if (
            candidate.pipeline == run.pipeline
            and candidate.node_id == run.node_id
            and candidate.anomalies_uri is not None
        ):
            return candidate
    return None


def _counts(run: ValidatorRun) -> tuple[int | None, int | None]:
    if run.anomalies_uri is None:
        return None, None
    try:
        reports = load_reports(run)
    except InputError:
        return None, None
    return (
        sum(r["num_errors"] for r in reports.values()),
        sum(r["num_warnings"] for r in reports.values()),
    )


def _blessed_text(blessed: int | None) -> str:
    return {None: "-", 0: "no", 1: "yes"}.get(blessed, str(blessed))


def format_runs(runs: Sequence[dict], show_pipeline: bool) -> str:
    """Formats listed runs (their JSON form) as an aligned table."""
    header = ["run id", "started (UTC)", "exec", "state", "blessed", "splits", "errors", "warnings"]
    if show_pipeline:
        header.insert(0, "pipeline")
    rows = [header]
    for run in runs:
        row = [
            printable(run["run_id"] or "-"),
            run["started_utc"],
            str(run["execution_id"]),
            run["state"],
            _blessed_text(run["blessed"]),
            printable(",".join(run["split_names"]) or "-"),
            "?" if run["num_errors"] is None else str(run["num_errors"]),
            "?" if run["num_warnings"] is None else str(run["num_warnings"]),
        ]
        if show_pipeline:
            row.insert(0, printable(run["pipeline"]))
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


def _format_comparison(comparison: Mapping) -> str:
    lines = [f"Compared with the previous run: {printable(comparison['summary'])}"]
    for change in comparison["changes"]:
        count, previous = change["count"], change["previous_count"]
        if previous is None:
            trend = "split not checked before"
        elif count is None:
            trend = f"was {previous}, split not checked now"
        else:
            trend = "worse" if count > previous else "better" if count < previous else "same"
            trend = f"was {previous}, {trend}"
        lines.append(
            f"  {change['severity']:<7} split {printable(change['split'])} "
            f"{printable(change['feature']) or '-'} {change['reason']}: "
            f"{'-' if count is None else count} ({trend})"
        )
    return "\n".join(lines)


def html_document(
    run: ValidatorRun, reports: Mapping[str, Mapping], comparison: Mapping | None
) -> str:
    """Renders a run's reports as one self-contained HTML page."""
    from embedding_guard import html_report

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


def run_command(args) -> int:
    """Runs `embedding-guard report`; returns the exit code.

    Args:
      args: Parsed arguments: pipeline_root, metadata, run, json, html, limit.

    Returns:
      0 once the runs are listed and the chosen run is shown, or why it has no
      reports (a FAILED execution publishes no artifact).

    Raises:
      ReportError: No database, no validator run, unknown run, unreadable report.
    """
    from embedding_guard import report_io

    if args.metadata:
        metadata = args.metadata
    elif args.pipeline_root:
        metadata = find_metadata(args.pipeline_root)
    else:
        raise ReportError(
            "report needs PIPELINE_ROOT or --metadata PATH (the MLMD sqlite file); e.g. "
            "embedding-guard report pipeline/_runs/root"
        )
    if args.limit is not None and args.limit < 1:
        raise ReportError(f"--limit must be at least 1, got {args.limit!r}.")
    store = open_store(metadata)
    runs = validator_runs(store)
    if not runs:
        where = f"PIPELINE_ROOT {args.pipeline_root!r}" if args.pipeline_root else "it"
        raise ReportError(
            f"MLMD database {metadata!r} records no {VALIDATOR_TYPE_NAME} execution, so "
            f"{where} has no validator run to report. Run a pipeline with "
            "EmbeddingIndexValidator first, or pass the database it used."
        )
    chosen = select_run(runs, args.run)
    reports, comparison, problem = None, None, None
    try:
        reports = load_reports(chosen)
    except InputError as error:
        # The listing still tells what is known about a failed or deleted run.
        if args.html:
            raise
        problem = str(error)
    previous = _previous_run(runs, chosen)
    if reports is not None and previous is not None:
        try:
            comparison = compare(reports, previous, load_reports(previous))
        except InputError:
            comparison = None
    if args.html:
        report_io.write_atomically(args.html, html_document(chosen, reports, comparison))

    shown = runs[: args.limit or DEFAULT_LIMIT]
    listed = []
    for run in shown:
        num_errors, num_warnings = _counts(run)
        listed.append({**run.to_json(), "num_errors": num_errors, "num_warnings": num_warnings})
    if args.json:
        document = {
            "metadata": metadata,
            "runs": listed,
            "runs_not_listed": len(runs) - len(shown),
            "run": {
                **chosen.to_json(),
                "reports": reports,
                "comparison": comparison,
                "problem": problem,
            },
            "html": args.html,
        }
        print(json.dumps(document, sort_keys=True, indent=2))
        return 0

    out = sys.stdout
    print(f"EmbeddingIndexValidator runs in {printable(metadata)}, newest first:", file=out)
    print(format_runs(listed, len({run.pipeline for run in runs}) > 1), file=out)
    if len(runs) > len(shown):
        print(f"  ... and {len(runs) - len(shown)} older run(s); see --limit", file=out)
    verdict = "BLOCKED" if chosen.blessed == 0 else "blessed" if chosen.blessed else "-"
    print(
        f"\nRun {printable(chosen.label)} (execution {chosen.execution_id}, "
        f"pipeline {printable(chosen.pipeline or '-')}, node {printable(chosen.node_id or '-')}, "
        f"started {chosen.started} UTC): {verdict}",
        file=out,
    )
    if problem is not None:
        print(printable(problem), file=out)
        return 0
    print(f"anomalies: {printable(chosen.anomalies_uri)}", file=out)
    print(report_table(reports), file=out)
    if comparison is not None:
        print("\n" + _format_comparison(comparison), file=out)
    if args.html:
        print(f"\nHTML report written to {printable(args.html)}", file=out)
    return 0
