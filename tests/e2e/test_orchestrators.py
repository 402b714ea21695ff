"""The blocked demo behaves alike under LocalDagRunner and TFX's Beam orchestrator.

The broken config's runs come from conftest.py: `demo["broken"]` (LocalDagRunner)
and `beam_blocked_run` (tfx.orchestration.beam.beam_dag_runner.BeamDagRunner, which
runs each node as a Beam DoFn). Each gets the same MLMD assertions: every node up
to the validator completes, the Trainer under its Cond has no execution and no
Model is published, the anomalies artifact has blessed = 0, and the model validator
runs without a model, blocks too, and so the Pusher never runs.
"""

import json

import pytest
from e2e_runs import MODEL_VALIDATOR_ID, VALIDATOR_ID
from google.protobuf import json_format
from ml_metadata.proto import metadata_store_pb2

RUNNERS = ("LocalDagRunner", "BeamDagRunner")
SPLITS = ("train", "eval")
# The nodes of the broken config outside the Conds on `blessed`.
UNGATED_NODES = (
    "CsvExampleGen",
    "StatisticsGen",
    "ImportSchemaGen",
    "Transform",
    VALIDATOR_ID,
    MODEL_VALIDATOR_ID,
)


@pytest.fixture(params=RUNNERS)
def blocked_run(request):
    if request.param == "LocalDagRunner":
        return request.getfixturevalue("demo")["broken"]
    return request.getfixturevalue("beam_blocked_run")


def test_blocked_run_completes_every_node_but_the_gated_trainer(blocked_run):
    assert {node: e.last_known_state for node, e in blocked_run.executions.items()} == {
        node: metadata_store_pb2.Execution.COMPLETE for node in UNGATED_NODES
    }
    assert not {"Trainer", "Pusher"} & set(blocked_run.executions)
    published_types = {a.type for artifacts in blocked_run.outputs.values() for a in artifacts}
    assert "Model" not in published_types
    assert {"Examples", "TransformGraph", "ExampleAnomalies"} <= published_types


def test_blocked_run_publishes_blessed_0(blocked_run):
    anomalies = blocked_run.anomalies()
    assert anomalies.custom_properties["blessed"].int_value == 0
    by_split = json_format.MessageToDict(
        anomalies.custom_properties["blessed_by_split"].struct_value
    )
    assert by_split == {"train": 1, "eval": 0}


def test_blocked_run_model_validator_runs_without_a_model_and_blocks_the_pusher(blocked_run):
    anomalies = blocked_run.anomalies(MODEL_VALIDATOR_ID)
    assert anomalies.custom_properties["blessed"].int_value == 0
    eval_report = blocked_run.report("eval", MODEL_VALIDATOR_ID)
    errors = {
        (feature["feature"], finding["reason"])
        for feature in eval_report["features"]
        for finding in feature["findings"]
        if finding["severity"] == "ERROR"
    }
    assert errors == {("city_xf", "NEGATIVE_INDEX")}
    assert all(
        feature["bounds"]["embedding_dim_kind"] != "model" for feature in eval_report["features"]
    )


def _run_independent(report: dict) -> dict:
    """The report without what differs between two pipeline runs of the same data.

    Each run's Transform writes its own gzip shards (their compressed size differs)
    and its own statistics artifact (another path); the counts must not differ.
    """
    report = json.loads(json.dumps(report))
    for shard in [report["read_counts"], *report["read_counts"]["shards"]]:
        shard.pop("file_bytes")
    report["example_count"].pop("path")
    return report


def test_beam_orchestrator_run_reports_what_the_local_run_reports(demo, beam_blocked_run):
    for split in SPLITS:
        assert _run_independent(beam_blocked_run.report(split)) == _run_independent(
            demo["broken"].report(split)
        )
