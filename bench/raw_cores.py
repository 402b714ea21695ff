"""Benchmark: raw mode's work on one CPU and on every CPU, on TFX's taxi graph.

Usage (from the repository root):

    .venv/bin/python bench/raw_cores.py --scale 1000000 --reps 3
    .venv/bin/python bench/raw_cores.py --scale 1000000 --reps 3 --data-dir /tmp/data

`check --transform-graph` on csv_example_gen's train split repeated into N
examples (bench/tfx_testdata.scaled_raw_examples), in a fresh process each time,
run pinned to one CPU (`taskset -c 0`, as bench/cores.py does) and on every CPU,
interleaved. The child imports TensorFlow, TensorFlow Transform and the CLI
first, so that work is the check itself: loading and tracing the graph, reading,
parsing, applying the graph, counting and writing the reports. Peak RSS is the
child's own (`wait4`). company_xf's counts must equal the ones the bench counts
from the records; the run stops if they do not.
"""

from __future__ import annotations

import time

START = time.perf_counter()

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402

import atomic_files  # noqa: E402

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
PINNED = ("taskset", "-c", "0")
# issue 30: raw-mode work on 2 CPUs at least 1.6x faster than on 1.
TARGET_SPEEDUP = 1.6


def child(examples: str, graph: str, output: str, result_path: str) -> None:
    import contextlib
    import io

    import tensorflow  # noqa: F401
    import tensorflow_transform  # noqa: F401

    from embedding_guard.cli import main as cli

    imported, imported_cpu = time.perf_counter(), time.process_time()
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        exit_code = cli.main(
            ["check", "--transform-graph", graph, "--examples", examples, "--json"]
            + ["--output", output]
        )
    done, done_cpu = time.perf_counter(), time.process_time()
    reports = json.loads(stdout.getvalue())
    feature = next(f for f in reports["train"]["features"] if f["feature"] == "company_xf")
    result = {
        "exit_code": exit_code,
        "import_s": imported - START,
        "work_s": done - imported,
        "work_cpu_s": done_cpu - imported_cpu,
        "company": [feature["counts"]["in_vocab"], feature["counts"]["oov"]],
    }
    atomic_files.write_json(result_path, result)


def measure(examples: str, graph: str, prefix: tuple[str, ...], components: str) -> dict:
    with tempfile.TemporaryDirectory(prefix="eg-bench-raw-") as scratch:
        result_path = os.path.join(scratch, "result.json")
        command = [*prefix, sys.executable, os.path.abspath(__file__), "--child", examples]
        command += ["--graph", graph, "--output", os.path.join(scratch, "out")]
        command += ["--result", result_path]
        env = dict(
            os.environ, PYTHONPATH=components, TF_CPP_MIN_LOG_LEVEL="3", PYTHONWARNINGS="ignore"
        )
        load = os.getloadavg()[0]
        started = time.perf_counter()
        with open(os.path.join(scratch, "log"), "w+") as log:
            process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
            _, status, usage = os.wait4(process.pid, 0)
            wall = time.perf_counter() - started
            if os.waitstatus_to_exitcode(status) != 0 or not os.path.exists(result_path):
                log.seek(0)
                raise RuntimeError(f"{command} failed: {log.read()[-3000:]}")
        with open(result_path) as f:
            result = json.load(f)
    result.update(wall_s=wall, peak_rss_mb=usage.ru_maxrss / 1024, load=load)
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", metavar="EXAMPLES", help=argparse.SUPPRESS)
    parser.add_argument("--graph", help=argparse.SUPPRESS)
    parser.add_argument("--output", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    parser.add_argument("--scale", type=int, default=1_000_000)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--data-dir", help="where the scaled examples are cached")
    parser.add_argument("--json", dest="json_output", help="write every run here")
    parser.add_argument(
        "--components",
        nargs="*",
        default=[os.path.join(os.path.dirname(BENCH_DIR), "components")],
        help="components/ folders whose embedding_guard to run, interleaved (an A/B)",
    )
    args = parser.parse_args(argv)
    if args.child:
        child(args.child, args.graph, args.output, args.result)
        return 0
    import tfx_testdata

    if args.data_dir:
        tfx_testdata.DATA_DIR = args.data_dir
    examples, truth = tfx_testdata.scaled_raw_examples(args.scale)
    runs: dict[tuple[str, str], list[dict]] = {
        (c, k): [] for c in args.components for k in ("1", "all")
    }
    cpus = len(os.sched_getaffinity(0))
    load_before = " ".join(f"{v:.2f}" for v in os.getloadavg())
    started = time.strftime("%Y-%m-%d %H:%M", time.gmtime())
    for _ in range(args.reps):
        for components, cores, prefix in (
            (c, k, p) for c in args.components for k, p in (("1", PINNED), ("all", ()))
        ):
            run = measure(examples, tfx_testdata.GRAPH, prefix, components)
            if tuple(run["company"]) != tuple(truth):
                raise RuntimeError(f"company_xf {run['company']}, the records give {truth}")
            runs[components, cores].append(run)
            print(
                f"{components}: {cores:>3s} CPU: work {run['work_s']:.2f} s, work CPU {run['work_cpu_s']:.2f} s, "
                f"wall {run['wall_s']:.2f} s, RSS {run['peak_rss_mb']:.0f} MB, "
                f"load {run['load']:.2f}",
                file=sys.stderr,
                flush=True,
            )
    load_after = " ".join(f"{v:.2f}" for v in os.getloadavg())
    keys = ("work_s", "work_cpu_s", "wall_s", "peak_rss_mb")
    median = {
        key: {k: statistics.median(r[k] for r in rs) for k in keys} for key, rs in runs.items()
    }
    print(
        f"raw mode, {args.scale:,} taxi examples; {cpus} CPUs; medians of {args.reps}, "
        f"{started} UTC; load average before/after {load_before} / {load_after}.\n\n"
        "| components | CPUs | work s | work CPU s | wall s | peak RSS MB | company_xf |\n"
        "|---|---|---|---|---|---|---|"
    )
    for (components, cores), m in median.items():
        print(
            f"| {components} | {1 if cores == '1' else cpus} | {m['work_s']:.2f} | "
            f"{m['work_cpu_s']:.2f} | {m['wall_s']:.2f} | {m['peak_rss_mb']:.0f} | "
            f"{truth[0]:,} / {truth[1]:,} |"
        )
    speedups = {}
    for components in args.components:
        one, every = runs[components, "1"], runs[components, "all"]
        speedup = median[components, "1"]["work_s"] / median[components, "all"]["work_s"]
        pairs = [a["work_s"] / b["work_s"] for a, b in zip(one, every, strict=True)]
        speedups[components] = speedup
        print(
            f"\n{components}: work speed-up, 1 CPU -> {cpus}: {speedup:.2f} (target >= "
            f"{TARGET_SPEEDUP}); per pair: {', '.join(f'{p:.2f}' for p in pairs)}"
        )
    if args.json_output:
        atomic_files.write_json(
            args.json_output,
            {
                "runs": {f"{c}/{k}": rs for (c, k), rs in runs.items()},
                "speedups": speedups,
                "load_before": load_before,
                "load_after": load_after,
            },
            indent=1,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
