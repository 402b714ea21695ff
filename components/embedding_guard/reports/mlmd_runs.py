"""ML Metadata queries for the validator's runs, and the comparison of two runs.

Runs are found through MLMD, never by walking folders: the executions whose type
is the component's class name, their `pipeline`, `pipeline_run` and `node`
contexts (as TFX's portable runtime records them), and the `anomalies` artifact
their OUTPUT event points to. Only the per-split `index_report.json` files are
read from the artifact store, through `tfx.dsl.io.fileio`.

`open_store` is the one read-only MLMD opener of the package: the `report`
command, notebooks, tests and the demo use it, so none of them can alter a
pipeline's database.

Where the MLMD database is: `--metadata PATH`, or by convention from
PIPELINE_ROOT, the first of `PIPELINE_ROOT/metadata.sqlite`,
`PIPELINE_ROOT/metadata.db`, the same two names in PIPELINE_ROOT's parent
folder (the demo keeps `pipeline/_runs/metadata.sqlite` next to
`pipeline/_runs/root`), and, for a root `<tfx_root>/pipelines/<name>`, the same
two names in `<tfx_root>/metadata/<name>/` (the layout of TFX's own examples,
e.g. chicago_taxi_pipeline: `~/tfx/pipelines/chicago_taxi_native_keras` and
`~/tfx/metadata/chicago_taxi_native_keras/metadata.db`).
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import sqlite3
import urllib.parse
from collections.abc import Mapping, Sequence
from typing import Any

from embedding_guard.errors import InputError
from embedding_guard.reports.comparison import FindingChange, RunComparison
from embedding_guard.reports.text import printable
from embedding_guard.verdict.reasons import Reason, Severity
from embedding_guard.verdict.report_model import SplitReport

# What TFX records as the execution type: BaseNode.get_class_type() of the
# component class. Written out so that listing runs does not import Beam; a
# component test checks it against EmbeddingIndexValidator.get_class_type().
VALIDATOR_TYPE_NAME = "embedding_guard.component.EmbeddingIndexValidator"
METADATA_FILE_NAMES = ("metadata.sqlite", "metadata.db")
# TFX's examples' layout: <tfx_root>/pipelines/<name> is the pipeline root and
# <tfx_root>/metadata/<name>/metadata.db its database.
_TFX_PIPELINES_FOLDER = "pipelines"
_TFX_METADATA_FOLDER = "metadata"
# How long to wait for a pipeline that is writing to the database. MLMD itself
# retries for about 45 s before it gives up on a locked database.
LOCK_TIMEOUT_SECONDS = 3.0
DEFAULT_LIMIT = 20

# TFX's portable runtime names these context types (tfx/orchestration/portable/
# mlmd/context_lib.py).
_PIPELINE_CONTEXT = "pipeline"
_PIPELINE_RUN_CONTEXT = "pipeline_run"
_NODE_CONTEXT = "node"
# The state MLMD records for an execution TFX's cache answered.
_CACHED = "CACHED"


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
    """Finds the MLMD sqlite file of a pipeline root by the module's conventions.

    See the module docstring: in the root, in its parent folder, or in
    `<tfx_root>/metadata/<name>/` for a root `<tfx_root>/pipelines/<name>`.

    Args:
      pipeline_root: The pipeline root folder.

    Returns:
      Path of the database file.

    Raises:
      ReportError: The root does not exist or no database is where expected.
    """
    if not os.path.isdir(pipeline_root):
        kind = (
            "does not exist"
            if not os.path.exists(pipeline_root)
            else "is a file, not a folder"
            if os.path.isfile(pipeline_root)
            else "is not a folder"
        )
        raise ReportError(
            f"PIPELINE_ROOT {pipeline_root!r} {kind}. Pass the pipeline_root the "
            "pipeline ran with, or the MLMD database with --metadata PATH."
        )
    root = os.path.abspath(pipeline_root)
    folders = [root, os.path.dirname(root)]
    tfx_root, pipelines = os.path.split(os.path.dirname(root))
    if pipelines == _TFX_PIPELINES_FOLDER:
        # TFX's examples keep MLMD beside the pipeline roots, not under one.
        folders.append(os.path.join(tfx_root, _TFX_METADATA_FOLDER, os.path.basename(root)))
    candidates = [os.path.join(folder, name) for folder in folders for name in METADATA_FILE_NAMES]
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
    if os.path.isdir(path):
        inside = [
            os.path.join(path, name)
            for name in METADATA_FILE_NAMES
            if os.path.isfile(os.path.join(path, name))
        ]
        hint = f" It holds {inside[0]!r}: pass that." if inside else ""
        raise ReportError(
            f"MLMD database {path!r} is a folder, not an sqlite file. Pass the sqlite file "
            "named by the pipeline's metadata_connection_config, or the pipeline root as "
            f"PIPELINE_ROOT.{hint}"
        )
    if not os.path.exists(path):
        raise ReportError(
            f"MLMD database {path!r} does not exist. Pass the sqlite file named by the "
            "pipeline's metadata_connection_config (sqlite_metadata_connection_config)."
        )
    if not os.path.isfile(path):
        raise ReportError(
            f"MLMD database {path!r} is not a regular file (a FIFO, socket or device); pass "
            "the sqlite file named by the pipeline's metadata_connection_config."
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
        raise ReportError(f"MLMD database {path!r} cannot be read: {printable(error)}.") from error
    except sqlite3.DatabaseError as error:
        raise ReportError(
            f"{path!r} is not an sqlite database ({printable(error)}); pass the MLMD sqlite file."
        ) from error
    if not {"Execution", "Context", "Event", "Artifact"} <= tables:
        raise ReportError(
            f"{path!r} is an sqlite file but not an ML Metadata database (it has no "
            "Execution, Context, Event and Artifact tables); pass the MLMD sqlite file."
        )


def open_store(path: str) -> Any:
    """Opens an MLMD sqlite database read-only, so a reader never alters it.

    Args:
      path: The sqlite file.

    Returns:
      An `ml_metadata` MetadataStore in READONLY mode.

    Raises:
      ReportError: The file is missing, a folder, locked, not sqlite or not MLMD.
    """
    from ml_metadata.metadata_store import metadata_store
    from ml_metadata.proto import metadata_store_pb2

    check_database(path)
    config = metadata_store_pb2.ConnectionConfig()
    config.sqlite.filename_uri = path
    config.sqlite.connection_mode = metadata_store_pb2.SqliteMetadataSourceConfig.READONLY
    try:
        return metadata_store.MetadataStore(config)
    except RuntimeError as error:
        raise ReportError(f"MLMD cannot open {path!r}: {printable(error)}") from error


def validator_runs(store: Any) -> list[ValidatorRun]:
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
        raise ReportError(f"MLMD query failed: {printable(error)}") from error


def _validator_runs(store: Any) -> list[ValidatorRun]:
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
            split_names = _split_names(artifact)
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


def _split_names(artifact: Any) -> tuple[str, ...]:
    """The artifact's split_names property, a JSON list of names, as TFX writes it.

    Raises:
      ReportError: The property is not a JSON list of strings.
    """
    text = artifact.split_names or "[]"
    try:
        names = json.loads(text)
    except ValueError:
        names = None
    if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
        # repr escapes control characters: the text came from the database.
        raise ReportError(
            f"The anomalies artifact {artifact.id} at {artifact.uri!r} has the property "
            f"split_names {text!r}, not a JSON list of split names such as "
            '\'["train", "eval"]\'. The MLMD database was altered or written by another '
            "tool; re-run the validator, or set the property to the Split-<name> folders it holds."
        )
    return tuple(names)


def select_runs(
    runs: Sequence[ValidatorRun], run: str | None = None, node: str | None = None
) -> list[ValidatorRun]:
    """Picks the runs to show: one pipeline run's execution of every validator node.

    A pipeline can hold several validator nodes (the README's
    EmbeddingIndexValidator before the Trainer and ModelIndexValidator after
    it): each is shown, unless `node` names one.

    Args:
      runs: Every validator run, newest first.
      run: A pipeline run id or an execution id; None for the newest pipeline run.
      node: The validator's node id; None for every node of that run.

    Returns:
      The newest execution of each node in the chosen pipeline run, by node id.

    Raises:
      ReportError: No run matches, or node names no validator node.
    """
    if node is not None:
        nodes = sorted({r.node_id for r in runs})
        runs = [r for r in runs if r.node_id == node]
        if not runs:
            raise ReportError(
                f"--node {node!r} names no EmbeddingIndexValidator node in this database; "
                f"its validator nodes are {nodes!r}."
            )
    if run is None:
        newest = runs[0]
        matches = [r for r in runs if newest.run_id and r.run_id == newest.run_id] or [newest]
    else:
        matches = [r for r in runs if r.run_id == run] or [
            r for r in runs if str(r.execution_id) == run
        ]
    if not matches:
        known = ", ".join(repr(r.label) for r in runs[:5])
        where = "" if node is None else f" of node {node!r}"
        raise ReportError(
            f"--run {run!r} matches no EmbeddingIndexValidator run id or execution id{where}; "
            f"the newest are {known}. Run without --run to list them."
        )
    # Several executions of one node in one run are retries: the newest counts.
    newest_per_node: dict[str, ValidatorRun] = {}
    for match in matches:
        newest_per_node.setdefault(match.node_id, match)
    return [newest_per_node[name] for name in sorted(newest_per_node)]


def cached_from(runs: Sequence[ValidatorRun], run: ValidatorRun) -> ValidatorRun | None:
    """For a CACHED execution, the execution that wrote the artifact it republished.

    TFX's cache publishes the earlier execution's artifact again rather than
    checking anything, so the two must not be compared as two checks.

    Returns:
      The oldest other execution that published the same artifact, or None when
      run is not CACHED or that execution is not in runs.
    """
    if run.state != _CACHED or run.anomalies_uri is None:
        return None
    for candidate in reversed(runs):
        if candidate is not run and candidate.anomalies_uri == run.anomalies_uri:
            return candidate
    return None


def load_reports(run: ValidatorRun) -> dict[str, SplitReport]:
    """Reads a run's split reports.

    Raises:
      ReportError: The run published no artifact.
      InputError: A report file is missing, truncated or of an unknown version.
    """
    from embedding_guard.reports import report_io

    if run.anomalies_uri is None:
        raise ReportError(
            f"Run {run.label!r} (execution {run.execution_id}, state {run.state}) published "
            "no anomalies artifact, so it has no reports. A FAILED validator raised (e.g. "
            "fail_on_block=True when blocked): its message is in the pipeline's log."
        )
    return report_io.read_split_reports(run.anomalies_uri, list(run.split_names))


def previous_run(runs: Sequence[ValidatorRun], run: ValidatorRun) -> ValidatorRun | None:
    """The newest run older than run, of its pipeline and node, that published other reports."""
    older = runs[runs.index(run) + 1 :]
    for candidate in older:
        if (
            candidate.pipeline == run.pipeline
            and candidate.node_id == run.node_id
            and candidate.anomalies_uri is not None
            # A cached execution's artifact is the same check, not an earlier one.
            and candidate.anomalies_uri != run.anomalies_uri
        ):
            return candidate
    return None


def pipeline_root_of(run: ValidatorRun) -> str | None:
    """The pipeline root a run's artifact lies under, when its URI has TFX's layout.

    TFX places outputs at `<pipeline_root>/<node_id>/<output key>/<execution id>`.
    """
    if run.anomalies_uri is None or "://" in run.anomalies_uri:
        return None
    execution_dir = os.path.normpath(run.anomalies_uri)
    key_dir = os.path.dirname(execution_dir)
    node_dir = os.path.dirname(key_dir)
    if os.path.basename(key_dir) != "anomalies" or os.path.basename(node_dir) != run.node_id:
        return None
    return os.path.dirname(node_dir)


def _problems(
    reports: Mapping[str, SplitReport],
) -> dict[tuple[str, str, Reason], tuple[Severity, int]]:
    return {
        (split, finding.feature, finding.reason): (finding.severity, finding.count)
        for split, report in reports.items()
        for finding in report.problems()
    }


def _count(problems: Mapping, key: tuple[str, str, Reason], reports: Mapping) -> int | None:
    if key in problems:
        return problems[key][1]
    return 0 if key[0] in reports else None


def compare(
    reports: Mapping[str, SplitReport],
    previous: ValidatorRun,
    previous_reports: Mapping[str, SplitReport],
) -> RunComparison:
    """Compares a run's ERROR and WARNING findings with an earlier run's.

    Args:
      reports: The shown run's split reports.
      previous: The earlier run.
      previous_reports: Its split reports.

    Returns:
      One change per (split, feature, reason) with a finding in either run.
    """
    now, before = _problems(reports), _problems(previous_reports)
    changes = tuple(
        FindingChange(
            split=key[0],
            feature=key[1],
            reason=key[2],
            severity=(now.get(key) or before[key])[0],
            count=_count(now, key, reports),
            previous_count=_count(before, key, previous_reports),
        )
        for key in sorted(set(now) | set(before))
    )
    errors_now = sum(report.num_errors for report in reports.values())
    errors_before = sum(report.num_errors for report in previous_reports.values())
    unchecked = sorted(set(reports) - set(previous_reports))
    summary = (
        f"{errors_now} ERROR finding(s) now, {errors_before} in run {previous.label} "
        f"(execution {previous.execution_id}, blessed={previous.blessed})."
    )
    if unchecked:
        summary += f" That run did not check split(s) {', '.join(unchecked)}."
    return RunComparison(previous.label, previous.execution_id, summary, changes)
