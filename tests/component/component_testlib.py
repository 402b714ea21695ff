"""Paths and helpers shared by the component tests.

The expected numbers in the tests are counted by hand from the rows listed in
testdata/make_examples.py; the transform graph is a real Transform output (the
demo's "broken" configuration).
"""

import hashlib
import os
from pathlib import Path
from typing import Any

TESTDATA = Path(__file__).parent / "testdata"
EXAMPLES_DIR = TESTDATA / "transformed_examples"
TRANSFORM_GRAPH_DIR = TESTDATA / "transform_graph"
# The per-feature counts of index_report.json that tests compare with hand-computed
# or independently decoded values.
VALUE_COUNT_KEYS = (
    "num_examples",
    "num_values",
    "missing",
    "negative",
    "in_range",
    "in_vocab",
    "oov_bucket",
    "out_of_range",
    "over_embedding_dim",
    "non_integer",
)
COUNT_KEYS = (*VALUE_COUNT_KEYS, "min", "max")


def expected_counts(
    num_examples, num_values, in_vocab, min_, max_, vocabulary=True, **nonzero
) -> dict:
    """The COUNT_KEYS of one feature: zero but for those named.

    With a vocabulary, what is in range is what is in the vocabulary or an OOV
    bucket (unless in_range is named); without one, in_vocab is what is in range
    and there are no vocabulary counts at all.
    """
    counts = dict.fromkeys(COUNT_KEYS, 0)
    counts.update(
        num_examples=num_examples, num_values=num_values, in_vocab=in_vocab, min=min_, max=max_
    )
    counts.update(nonzero)
    if not vocabulary:
        counts.update(in_range=in_vocab, in_vocab=None, oov_bucket=None)
    elif "in_range" not in nonzero:
        counts["in_range"] = in_vocab + counts["oov_bucket"]
    return counts


def file_digests(*roots: Path, base: Path = TESTDATA) -> dict[str, str]:
    """Maps every file under roots (path relative to base) to its SHA-256."""
    digests = {}
    for root in roots:
        for directory, _, names in os.walk(root):
            for name in names:
                path = Path(directory, name)
                digests[str(path.relative_to(base))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return digests


def input_digests() -> dict[str, str]:
    """Digests of every input the component reads: the examples and the transform graph."""
    return file_digests(EXAMPLES_DIR, TRANSFORM_GRAPH_DIR)


def tree(root: Path) -> dict[str, list[str]]:
    """Maps each folder under root (relative path, "." for root) to its sorted file names."""
    return {
        os.path.relpath(directory, root): sorted(names) for directory, _, names in os.walk(root)
    }


def run_executor(
    anomalies_uri: Path,
    exec_properties: dict,
    *,
    examples_dir: Path = EXAMPLES_DIR,
    splits: tuple[str, ...] = ("train", "eval", "test"),
    beam_pipeline_args: list[str] | None = None,
    statistics_dir: Path | None = None,
    model_dir: str | None = None,
    transform_graph_dir: Path | str = TRANSFORM_GRAPH_DIR,
    baseline_transform_graph_dir: str | None = None,
) -> Any:
    """Runs the component's executor over examples and a transform graph (default: testdata's).

    statistics_dir, when given, is the `statistics` input (an ExampleStatistics);
    model_dir the `model` input (a Model); baseline_transform_graph_dir the
    `baseline_transform_graph` input (a TransformGraph). Returns the anomalies artifact.
    """
    from tfx.dsl.components.base import base_beam_executor
    from tfx.types import artifact_utils, standard_artifacts

    from embedding_guard.component.executor import Executor

    examples = standard_artifacts.Examples()
    examples.uri = str(examples_dir)
    examples.split_names = artifact_utils.encode_split_names(list(splits))
    graph = standard_artifacts.TransformGraph()
    graph.uri = str(transform_graph_dir)
    anomalies = standard_artifacts.ExampleAnomalies()
    anomalies.uri = str(anomalies_uri)
    inputs = {"examples": [examples], "transform_graph": [graph]}
    if statistics_dir is not None:
        statistics = standard_artifacts.ExampleStatistics()
        statistics.uri = str(statistics_dir)
        inputs["statistics"] = [statistics]
    if model_dir is not None:
        model = standard_artifacts.Model()
        model.uri = model_dir
        inputs["model"] = [model]
    if baseline_transform_graph_dir is not None:
        baseline = standard_artifacts.TransformGraph()
        baseline.uri = baseline_transform_graph_dir
        inputs["baseline_transform_graph"] = [baseline]
    context = base_beam_executor.BaseBeamExecutor.Context(beam_pipeline_args=beam_pipeline_args)
    Executor(context).Do(
        inputs,
        {"anomalies": [anomalies]},
        exec_properties,
    )
    return anomalies


def check_testdata(*flags: str) -> int:
    """Runs `embedding-guard check` on the checked-in graph and examples; returns the exit code."""
    from embedding_guard.cli import main as cli

    argv = ["check", "--transform-graph", str(TRANSFORM_GRAPH_DIR), "--examples"]
    return cli.main([*argv, str(EXAMPLES_DIR), *map(str, flags)])
