"""Paths and helpers shared by the component tests.

The expected numbers in the tests are counted by hand from the rows listed in
testdata/make_examples.py; the transform graph is a real Transform output (the
demo's "broken" configuration).
"""

import hashlib
import os
from pathlib import Path

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
