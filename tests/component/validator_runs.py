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


def importers(examples_dir: pathlib.Path = TESTDATA / "transformed_examples"):
    """Importer nodes of examples (splits train, eval, test) and the testdata transform graph."""
    from tfx import v1 as tfx

    examples = tfx.dsl.Importer(
        source_uri=str(examples_dir),
        artifact_type=tfx.types.standard_artifacts.Examples,
        properties={"split_names": SPLIT_NAMES},
    ).with_id("ImportExamples")
    transform_graph = tfx.dsl.Importer(
        source_uri=str(TESTDATA / "transform_graph"),
        artifact_type=tfx.types.standard_artifacts.TransformGraph,
    ).with_id("ImportTransformGraph")
    return examples, transform_graph


def sqlite_pipeline(
    name: str, root: pathlib.Path, metadata: pathlib.Path, components: list, **options
):
    """A pipeline under root whose MLMD is the sqlite database metadata."""
    from tfx import v1 as tfx

    return tfx.dsl.Pipeline(
        pipeline_name=name,
        pipeline_root=str(root),
        metadata_connection_config=tfx.orchestration.metadata.sqlite_metadata_connection_config(
            str(metadata)
        ),
        components=components,
        **options,
    )


def _pipeline(root: pathlib.Path, metadata: pathlib.Path, exclude_splits: list[str]):

    from embedding_guard import EmbeddingIndexValidator

    examples, transform_graph = importers()
    validator = EmbeddingIndexValidator(
        examples=examples.outputs["result"],
        transform_graph=transform_graph.outputs["result"],
        exclude_splits=exclude_splits,
        embedding_input_dims=EMBEDDING_INPUT_DIMS,
    ).with_id(VALIDATOR_ID)
    return sqlite_pipeline(
        PIPELINE_NAME,
        root,
        metadata,
        [examples, transform_graph, validator],
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

    from embedding_guard.reports import mlmd_runs

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


TWO_VALIDATORS_PIPELINE = "eg-two-validators"
# The README's two node ids; no model input here, only the names and verdicts matter.
TRAIN_VALIDATOR_ID = "EmbeddingIndexValidator"
EVAL_VALIDATOR_ID = "ModelIndexValidator"


@dataclasses.dataclass(frozen=True)
class TwoValidatorRun:
    """One pipeline run with two validator nodes.

    Attributes:
      pipeline_root: The run's pipeline root.
      metadata: Its sqlite MLMD database, next to the root.
      run_id: The pipeline_run context name both nodes share.
    """

    pipeline_root: pathlib.Path
    metadata: pathlib.Path
    run_id: str


@functools.cache
def run_two_validators(directory: pathlib.Path) -> TwoValidatorRun:
    """Runs one pipeline whose two validators check train (blessed) and eval (blocked).

    EmbeddingIndexValidator checks train and is blessed; ModelIndexValidator
    checks eval and is blocked.
    """
    from tfx import v1 as tfx

    from embedding_guard import EmbeddingIndexValidator
    from embedding_guard.reports import mlmd_runs

    directory.mkdir(parents=True, exist_ok=True)
    root, metadata = directory / "root", directory / "metadata.sqlite"
    examples, transform_graph = importers()
    validators = [
        EmbeddingIndexValidator(
            examples=examples.outputs["result"],
            transform_graph=transform_graph.outputs["result"],
            exclude_splits=excluded,
            embedding_input_dims=EMBEDDING_INPUT_DIMS,
        ).with_id(node_id)
        for node_id, excluded in (
            (TRAIN_VALIDATOR_ID, ["eval", "test"]),
            (EVAL_VALIDATOR_ID, ["train", "test"]),
        )
    ]
    tfx.orchestration.LocalDagRunner().run(
        sqlite_pipeline(
            TWO_VALIDATORS_PIPELINE,
            root,
            metadata,
            [examples, transform_graph, *validators],
            enable_cache=False,
        )
    )
    store = mlmd_runs.open_store(str(metadata))
    (run_context,) = store.get_contexts_by_type("pipeline_run")
    return TwoValidatorRun(root, metadata, run_context.name)


def shared_two_validator_run(tmp_path_factory) -> TwoValidatorRun:
    """The session's run with two validator nodes, under pytest's base temp dir."""
    return run_two_validators(
        pathlib.Path(os.fspath(tmp_path_factory.getbasetemp())) / "two_validators"
    )


CACHED_PIPELINE = "eg-cached"


@dataclasses.dataclass(frozen=True)
class CachedRuns:
    """Two runs of one pipeline with the cache on: the second execution is CACHED.

    Attributes:
      pipeline_root: The runs' pipeline root.
      metadata: Their sqlite MLMD database, next to the root.
      run_ids: The two pipeline_run context names, in run order.
    """

    pipeline_root: pathlib.Path
    metadata: pathlib.Path
    run_ids: tuple[str, str]


@functools.cache
def run_cached(directory: pathlib.Path) -> CachedRuns:
    """Runs the blocked validator (train and eval) twice with enable_cache=True."""
    from tfx import v1 as tfx

    from embedding_guard import EmbeddingIndexValidator
    from embedding_guard.reports import mlmd_runs

    directory.mkdir(parents=True, exist_ok=True)
    root, metadata = directory / "root", directory / "metadata.sqlite"
    for _ in range(2):
        examples, transform_graph = importers()
        validator = EmbeddingIndexValidator(
            examples=examples.outputs["result"],
            transform_graph=transform_graph.outputs["result"],
            exclude_splits=["test"],
            embedding_input_dims=EMBEDDING_INPUT_DIMS,
        ).with_id(VALIDATOR_ID)
        tfx.orchestration.LocalDagRunner().run(
            sqlite_pipeline(
                CACHED_PIPELINE,
                root,
                metadata,
                [examples, transform_graph, validator],
                enable_cache=True,
            )
        )
    store = mlmd_runs.open_store(str(metadata))
    run_ids = tuple(
        c.name for c in sorted(store.get_contexts_by_type("pipeline_run"), key=lambda c: c.id)
    )
    states = [run.state for run in mlmd_runs.validator_runs(store)]
    if len(run_ids) != 2 or states != ["CACHED", "COMPLETE"]:
        raise AssertionError(f"expected a COMPLETE then a CACHED run, got {run_ids!r} {states!r}")
    return CachedRuns(root, metadata, run_ids)


def shared_cached_runs(tmp_path_factory) -> CachedRuns:
    """The session's cached runs, under pytest's base temp dir."""
    return run_cached(pathlib.Path(os.fspath(tmp_path_factory.getbasetemp())) / "cached_runs")


def copy_runs(runs: ValidatorRuns, directory: pathlib.Path) -> ValidatorRuns:
    """Copies the two runs' root and database; the copy's artifacts point into the copy.

    Tests that damage a report do it in a copy, so the shared runs stay intact.
    """
    import shutil
    import sqlite3

    source = runs.pipeline_root.parent
    shutil.copytree(source, directory)
    metadata = directory / runs.metadata.name
    with sqlite3.connect(metadata) as connection:
        connection.execute(
            "UPDATE Artifact SET uri = replace(uri, ?, ?)", (str(source), str(directory))
        )
    connection.close()

    def moved(uri: str) -> str:
        return uri.replace(str(source), str(directory))

    return ValidatorRuns(
        pipeline_root=directory / runs.pipeline_root.name,
        metadata=metadata,
        blessed_anomalies=moved(runs.blessed_anomalies),
        blocked_anomalies=moved(runs.blocked_anomalies),
        run_ids=runs.run_ids,
    )
