"""Two real LocalDagRunner runs of EmbeddingIndexValidator, shared by the report tests.

Importer nodes register the checked-in testdata (transformed examples with splits
train, eval, test and the transform graph) and the validator checks them, twice
under one pipeline name and one sqlite MLMD database:

  run 1: exclude_splits=["eval", "test"] -> validates train only -> blessed 1
  run 2: exclude_splits=["test"]         -> validates train and eval -> blessed 0

The database sits next to the pipeline root, as the demo keeps it
(`<dir>/metadata.sqlite` beside `<dir>/root`). The runs happen once per test
session, whichever test module asks first.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import pathlib

TESTDATA = pathlib.Path(__file__).resolve().parent / "testdata"
PIPELINE_NAME = "eg-report-test"
VALIDATOR_ID = "EmbeddingIndexValidator"
SPLIT_NAMES = '["train", "eval", "test"]'
EMBEDDING_INPUT_DIMS = {"month_xf": 12}


@dataclasses.dataclass(frozen=True)
class ValidatorRuns:
    """Where the two runs went.

    Attributes:
      pipeline_root: The pipeline root both runs used.
      metadata: The sqlite MLMD database, next to the root.
      blessed_anomalies: URI of run 1's anomalies artifact (train only).
      blocked_anomalies: URI of run 2's anomalies artifact (train and eval).
      run_ids: The two pipeline_run context names, in run order.
    """

    pipeline_root: pathlib.Path
    metadata: pathlib.Path
    blessed_anomalies: str
    blocked_anomalies: str
    run_ids: tuple[str, str]


def _pipeline(root: pathlib.Path, metadata: pathlib.Path, exclude_splits: list[str]):
    from tfx import v1 as tfx

    from embedding_guard import EmbeddingIndexValidator

    examples = tfx.dsl.Importer(
        source_uri=str(TESTDATA / "transformed_examples"),
        artifact_type=tfx.types.standard_artifacts.Examples,
        properties={"split_names": SPLIT_NAMES},
    ).with_id("ImportExamples")
    transform_graph = tfx.dsl.Importer(
        source_uri=str(TESTDATA / "transform_graph"),
        artifact_type=tfx.types.standard_artifacts.TransformGraph,
    ).with_id("ImportTransformGraph")
    validator = EmbeddingIndexValidator(
        examples=examples.outputs["result"],
        transform_graph=transform_graph.outputs["result"],
        exclude_splits=exclude_splits,
        embedding_input_dims=EMBEDDING_INPUT_DIMS,
    ).with_id(VALIDATOR_ID)
    return tfx.dsl.Pipeline(
        pipeline_name=PIPELINE_NAME,
        pipeline_root=str(root),
        metadata_connection_config=tfx.orchestration.metadata.sqlite_metadata_connection_config(
            str(metadata)
        ),
        components=[examples, transform_graph, validator],
        enable_cache=False,
    )


@functools.cache
def run_twice(directory: pathlib.Path) -> ValidatorRuns:
    """Runs the validator pipeline twice under `directory` (once per process)."""
    from tfx import v1 as tfx

    directory.mkdir(parents=True, exist_ok=True)
    root, metadata = directory / "root", directory / "metadata.sqlite"
    for exclude_splits in (["eval", "test"], ["test"]):
        tfx.orchestration.LocalDagRunner().run(_pipeline(root, metadata, exclude_splits))

    from embedding_guard import mlmd_runs

    store = mlmd_runs.open_store(str(metadata))
    run_ids = tuple(
        c.name for c in sorted(store.get_contexts_by_type("pipeline_run"), key=lambda c: c.id)
    )
    anomalies = sorted(store.get_artifacts_by_type("ExampleAnomalies"), key=lambda a: a.id)
    if len(run_ids) != 2 or len(anomalies) != 2:
        raise AssertionError(
            f"expected 2 pipeline runs and 2 anomalies artifacts in {metadata}, got "
            f"{run_ids!r} and {[a.uri for a in anomalies]!r}"
        )
    return ValidatorRuns(
        pipeline_root=root,
        metadata=metadata,
        blessed_anomalies=anomalies[0].uri,
        blocked_anomalies=anomalies[1].uri,
        run_ids=run_ids,
    )


def shared_runs(tmp_path_factory) -> ValidatorRuns:
    """The session's two runs, under pytest's base temp dir."""
    return run_twice(pathlib.Path(os.fspath(tmp_path_factory.getbasetemp())) / "validator_runs")
