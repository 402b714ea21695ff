"""Benchmark: the `embedding-guard` console script, whole process, on TFX's shipped data.

Usage (from the repository root):

    .venv/bin/python bench/tfx_testdata.py                  # 5 repetitions
    .venv/bin/python bench/tfx_testdata.py --reps 3 --components /path/to/checkout/components

Zero configuration on the files inside the tfx wheel: the TF1-style taxi
transform_graph with its transformed_examples (transformed mode) and with the
raw csv_example_gen examples (raw mode: the graph applied to 12 + 12 gzip shards).
Each repetition is a fresh process started as the console script starts
(`console_main`), from process start to exit, which is what a user waits for.
The two runs are interleaved. --components runs another checkout's package, for
a before/after on the same machine; the counts must agree across checkouts.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import tfx

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
DEFAULT_COMPONENTS = os.path.join(os.path.dirname(BENCH_DIR), "components")
TESTDATA = os.path.join(os.path.dirname(tfx.__file__), "components", "testdata")
GRAPH = os.path.join(TESTDATA, "transform", "transform_graph")
RUNS = {
    "transformed": os.path.join(TESTDATA, "transform", "transformed_examples"),
    "raw": os.path.join(TESTDATA, "csv_example_gen"),
}
CONSOLE_SCRIPT = "from embedding_guard.cli import console_main; console_main()"


def _company_counts(stdout: str) -> dict:
    reports = json.loads(stdout)
    counts = {}
    for split, report in sorted(reports.items()):
        feature = next(f for f in report["features"] if f["feature"] == "company_xf")
        counts[split] = (feature["counts"]["in_vocab"], feature["counts"]["oov"])
    return counts


def measure(kind: str, components: str) -> tuple[float, dict]:
    """Runs one zero-configuration check; returns (wall seconds, company_xf counts)."""
    env = dict(os.environ, PYTHONPATH=components, TF_CPP_MIN_LOG_LEVEL="3")
    command = [sys.executable, "-c", CONSOLE_SCRIPT, "check", "--transform-graph", GRAPH]
    command += ["--examples", RUNS[kind], "--json"]
    with tempfile.TemporaryDirectory(prefix="eg-bench-tfx-") as scratch:
        started = time.perf_counter()
        done = subprocess.run(
            [*command, "--output", os.path.join(scratch, "out")],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        wall = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{kind} exited {done.returncode}: {done.stderr[-2000:]}")
    return wall, _company_counts(done.stdout)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument(
        "--components",
        default=DEFAULT_COMPONENTS,
        help="the components/ folder whose embedding_guard to run (default: this checkout's)",
    )
    args = parser.parse_args(argv)
    if args.reps < 1:
        parser.error(f"--reps must be at least 1, got {args.reps!r}")
    if not os.path.isdir(os.path.join(args.components, "embedding_guard")):
        parser.error(f"--components {args.components!r} holds no embedding_guard package")
    walls: dict[str, list[float]] = {kind: [] for kind in RUNS}
    counts: dict[str, dict] = {}
    for _ in range(args.reps):
        for kind in RUNS:
            wall, company = measure(kind, args.components)
            walls[kind].append(wall)
            counts[kind] = company
            print(f"{kind:12s} wall {wall:.2f} s  company_xf (in vocab, OOV) {company}", flush=True)
    print(f"\ncomponents: {args.components}; medians of {args.reps} fresh processes")
    print("| mode | wall s (median) | min-max | company_xf in vocab / OOV per split |")
    print("|---|---|---|---|")
    for kind, values in walls.items():
        print(
            f"| {kind} | {statistics.median(values):.2f} | {min(values):.2f}-{max(values):.2f} "
            f"| {counts[kind]} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
