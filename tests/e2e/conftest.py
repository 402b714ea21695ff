"""The demo pipeline runs the e2e tests share, made once per test session.

demo              LocalDagRunner: the clean, broken and small_table configs, in
                  that order, into one pipeline root and one sqlite MLMD database;
                  keys "clean", "broken", "small_table" (DemoRun), "store" (that
                  MLMD store) and "pipeline_root".
beam_blocked_run  BeamDagRunner (TFX's Beam orchestrator): the broken config, in a
                  root and database of its own.
csv_rows          The demo's raw train and eval rows, the expectations' source.
"""

from __future__ import annotations

import pytest
from e2e_runs import CONFIGS, DemoRun, read_csv, run_demo_config, store_at


def pytest_collection_modifyitems(items):
    # Every test here runs on real pipeline runs: `-m "not e2e"` leaves them out.
    for item in items:
        if "tests/e2e/" in str(item.path):
            item.add_marker(pytest.mark.e2e)
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def demo(tmp_path_factory):
    """LocalDagRunner runs of every config, one after another, into one root and MLMD."""
    from tfx import v1 as tfx

    root = tmp_path_factory.mktemp("demo_pipeline")
    runs = {
        config: run_demo_config(tfx.orchestration.LocalDagRunner(), root, config)
        for config in CONFIGS
    }
    runs["store"] = store_at(root / "metadata.sqlite")
    runs["pipeline_root"] = root / "pipeline_root"
    return runs


@pytest.fixture(scope="session")
def beam_blocked_run(tmp_path_factory) -> DemoRun:
    """A BeamDagRunner run of the broken config, in its own root and MLMD database."""
    from tfx.orchestration.beam.beam_dag_runner import BeamDagRunner

    return run_demo_config(BeamDagRunner(), tmp_path_factory.mktemp("beam_dag_runner"), "broken")


@pytest.fixture(scope="session")
def csv_rows() -> dict[str, list[dict[str, str]]]:
    """The demo's raw rows by split ("train", "eval"), as the pipeline reads them."""
    return {split: read_csv(split) for split in ("train", "eval")}
