"""A check of transformed examples runs without importing TensorFlow (issue #30).

Each case runs in a fresh process and lists which heavy libraries it imported.
TensorFlow stays the reference and the fallback: raw examples, which need the
transform graph applied, still import it, and the last case shows this test
sees that.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from component_testlib import EXAMPLES_DIR, TESTDATA, TRANSFORM_GRAPH_DIR

COMPONENTS = Path(__file__).resolve().parents[2] / "components"
HEAVY = ("tensorflow", "tensorflow_transform", "keras", "tf_keras", "apache_beam")
CHECK = ["check", "--transform-graph", str(TRANSFORM_GRAPH_DIR), "--examples"]

# Runs a command's main() or embedding_guard.check, then prints the exit code
# (or the verdict) and the heavy modules it imported.
RUN = """
import json, sys
how, args = sys.argv[1], json.loads(sys.argv[2])
if how == "cli":
    from embedding_guard.cli import main
    outcome = main.main(args)
else:
    import embedding_guard
    outcome = embedding_guard.check(**args).blessed
heavy = [m for m in sys.argv[3:] if m in sys.modules]
print(json.dumps({"outcome": outcome, "heavy": heavy}))
"""


def _run(how: str, args: object) -> dict:
    env = dict(os.environ, PYTHONPATH=str(COMPONENTS), TF_CPP_MIN_LOG_LEVEL="3")
    done = subprocess.run(
        [sys.executable, "-c", RUN, how, json.dumps(args), *HEAVY],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_blocked_check_with_reports_and_offending_examples_imports_no_tensorflow(tmp_path):
    output = tmp_path / "reports"

    ran = _run("cli", [*CHECK, str(EXAMPLES_DIR), "--output", str(output)])

    assert ran == {"outcome": 1, "heavy": []}
    # It wrote what it writes with TensorFlow: reports and offending examples.
    assert (output / "Split-eval" / "index_report.json").is_file()
    assert list((output / "Split-eval" / "offending_examples").glob("*.tfrecord.gz"))


def test_the_python_api_imports_no_tensorflow():
    ran = _run(
        "api",
        {"transform_graph": str(TRANSFORM_GRAPH_DIR), "examples": str(EXAMPLES_DIR)},
    )

    assert ran == {"outcome": False, "heavy": []}


def test_a_check_against_a_schema_imports_no_tensorflow():
    schema = TRANSFORM_GRAPH_DIR / "transformed_metadata" / "schema.pbtxt"

    ran = _run("cli", ["check", "--schema", str(schema), "--examples", str(EXAMPLES_DIR)])

    assert ran["heavy"] == []


def test_raw_examples_still_import_tensorflow_to_apply_the_graph():
    ran = _run("cli", [*CHECK, str(TESTDATA / "raw_examples")])

    assert ran["outcome"] in (0, 1)
    assert "tensorflow" in ran["heavy"]
