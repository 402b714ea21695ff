"""Runs the demo pipeline under a TFX runner and reads each run back from MLMD.

conftest.py makes the runs once per test session; the tests read them through
DemoRun: executions and output artifacts keyed by node id.
"""

from __future__ import annotations

import csv
import json
import os
import pathlib

import demo_pipeline
from ml_metadata.proto import metadata_store_pb2

from embedding_guard.reports import mlmd_runs

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
DATA_ROOT = REPO_ROOT / "pipeline" / "data"
SCHEMA_PATH = REPO_ROOT / "schemas" / "raw_schema.pbtxt"
PIPELINE_NAME = "embedding-guard-e2e"
CONFIGS = ("clean", "broken", "small_table")
VALIDATOR_ID = "EmbeddingIndexValidator"
MODEL_VALIDATOR_ID = demo_pipeline.MODEL_VALIDATOR_ID


class DemoRun:
    """What one pipeline run left in MLMD: executions and outputs keyed by node id."""

    def __init__(self, store, run_context, pipeline_name=PIPELINE_NAME):
        self.run_id = run_context.name
        self.executions = {}
        self.outputs = {}
        node_prefix = pipeline_name + "."
        for execution in store.get_executions_by_context(run_context.id):
            (node_context,) = (
                context
                for context in store.get_contexts_by_execution(execution.id)
                if context.type == "node"
            )
            node_id = node_context.name.removeprefix(node_prefix)
            output_ids = [
                event.artifact_id
                for event in store.get_events_by_execution_ids([execution.id])
                if event.type == metadata_store_pb2.Event.OUTPUT
            ]
            self.executions[node_id] = execution
            self.outputs[node_id] = store.get_artifacts_by_id(output_ids)

    def output(self, node_id, type_name):
        (artifact,) = (a for a in self.outputs[node_id] if a.type == type_name)
        return artifact

    def anomalies(self, node_id=VALIDATOR_ID):
        return self.output(node_id, "ExampleAnomalies")

    def report(self, split, node_id=VALIDATOR_ID):
        path = os.path.join(self.anomalies(node_id).uri, f"Split-{split}", "index_report.json")
        with open(path) as report_file:
            return json.load(report_file)

    def feature_report(self, split, feature, node_id=VALIDATOR_ID):
        (feature_report,) = (
            f for f in self.report(split, node_id)["features"] if f["feature"] == feature
        )
        return feature_report


def read_csv(split: str) -> list[dict[str, str]]:
    """The demo's raw rows of one split (pipeline/data/<split>/<split>.csv)."""
    with open(DATA_ROOT / split / f"{split}.csv", newline="") as csv_file:
        return list(csv.DictReader(csv_file))


def unseen_in_train(csv_rows, column: str) -> int:
    """Eval rows whose `column` value no train row has (what lands in OOV)."""
    train_values = {row[column] for row in csv_rows["train"]}
    unseen = sum(row[column] not in train_values for row in csv_rows["eval"])
    # Guards the data itself: with no unseen values these tests would pass vacuously.
    assert unseen > 0, f"eval.csv has no {column!r} values unseen in train.csv"
    return unseen


def store_at(metadata_path: pathlib.Path):
    return mlmd_runs.open_store(str(metadata_path))


def run_demo_config(runner, root: pathlib.Path, config: str) -> DemoRun:
    """Runs one demo config with runner into root (MLMD in root/metadata.sqlite).

    Args:
      runner: A TFX runner with `run(pipeline)`.
      root: Folder of the pipeline root and the MLMD database; earlier runs in it
        stay, as in the demo.
      config: One of CONFIGS.

    Returns:
      The new run, read back from MLMD.
    """
    metadata_path = root / "metadata.sqlite"
    known_run_ids = (
        {c.name for c in store_at(metadata_path).get_contexts_by_type("pipeline_run")}
        if metadata_path.exists()
        else set()
    )
    runner.run(
        demo_pipeline.create_pipeline(
            pipeline_name=PIPELINE_NAME,
            pipeline_root=str(root / "pipeline_root"),
            data_root=str(DATA_ROOT),
            schema_path=str(SCHEMA_PATH),
            metadata_path=str(metadata_path),
            config=config,
        )
    )
    store = store_at(metadata_path)
    (new_run_context,) = (
        context
        for context in store.get_contexts_by_type("pipeline_run")
        if context.name not in known_run_ids
    )
    return DemoRun(store, new_run_context)
