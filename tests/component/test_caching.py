"""TFX caching: the same inputs reuse the validator's execution; changed inputs re-run it."""

import shutil

import pytest
import validator_runs
from ml_metadata.proto import metadata_store_pb2
from tfx import v1 as tfx

from embedding_guard import EmbeddingIndexValidator
from embedding_guard.reports import mlmd_runs

VALIDATOR_ID = "EmbeddingIndexValidator"


def _pipeline(root, metadata, examples_dir, embedding_input_dims):
    examples, transform_graph = validator_runs.importers(examples_dir)
    validator = EmbeddingIndexValidator(
        examples=examples.outputs["result"],
        transform_graph=transform_graph.outputs["result"],
        exclude_splits=["test"],
        embedding_input_dims=embedding_input_dims,
    ).with_id(VALIDATOR_ID)
    return validator_runs.sqlite_pipeline(
        "eg-cache-test",
        root,
        metadata,
        [examples, transform_graph, validator],
        enable_cache=True,
    )


def _validator_executions(metadata):
    store = mlmd_runs.open_store(str(metadata))
    executions = []
    for execution in sorted(store.get_executions(), key=lambda e: e.id):
        contexts = store.get_contexts_by_execution(execution.id)
        if any(c.type == "node" and c.name.endswith("." + VALIDATOR_ID) for c in contexts):
            outputs = [
                event.artifact_id
                for event in store.get_events_by_execution_ids([execution.id])
                if event.type
                in (metadata_store_pb2.Event.OUTPUT, metadata_store_pb2.Event.PENDING_OUTPUT)
            ]
            executions.append((execution.last_known_state, sorted(outputs)))
    return executions


@pytest.fixture(scope="module")
def cache_runs(tmp_path_factory):
    directory = tmp_path_factory.mktemp("cache")
    root, metadata = directory / "root", directory / "metadata.sqlite"
    first, second = directory / "examples_v1", directory / "examples_v2"
    shutil.copytree(validator_runs.TESTDATA / "transformed_examples", first)
    shutil.copytree(validator_runs.TESTDATA / "transformed_examples", second)
    dims = {"month_xf": 12}
    for examples_dir, embedding_input_dims in (
        (first, dims),  # first run
        (first, dims),  # same inputs and parameters: cached
        (second, dims),  # another examples artifact: re-run
        (second, {"month_xf": 13}),  # another parameter: re-run
    ):
        tfx.orchestration.LocalDagRunner().run(
            _pipeline(root, metadata, examples_dir, embedding_input_dims)
        )
    return _validator_executions(metadata)


def test_same_inputs_reuse_the_cached_execution(cache_runs):
    (first_state, first_outputs), (second_state, second_outputs) = cache_runs[:2]
    assert first_state == metadata_store_pb2.Execution.COMPLETE
    assert second_state == metadata_store_pb2.Execution.CACHED
    # A cached execution republishes the first run's anomalies artifact.
    assert second_outputs == first_outputs


def test_changed_inputs_re_run(cache_runs):
    assert len(cache_runs) == 4
    states = [state for state, _ in cache_runs[2:]]
    assert states == [metadata_store_pb2.Execution.COMPLETE] * 2
    outputs = [tuple(outputs) for _, outputs in cache_runs]
    assert len({outputs[0], outputs[2], outputs[3]}) == 3
