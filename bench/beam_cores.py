"""Benchmark: the Beam path's steady-state examples/s per core, against the in-process reader.

Usage (from the repository root):

    .venv/bin/python bench/beam_cores.py                                   # 1M and 4M, 3 reps
    .venv/bin/python bench/beam_cores.py --sizes 4000000 16000000 --reps 3
    .venv/bin/python bench/beam_cores.py --sizes 200000 --reps 1           # smoke

Every measurement is a fresh process (bench/beam_measure.py MODE) on the cached
data of bench/synthetic_data.py, on every CPU this process may use. Modes:

  inproc         validation.run_in_process, what `check` runs (the reference)
  beam_mp        the component's Beam pipeline on DirectRunner multi_processing, 2 workers
  beam_portable  the same on PortableRunner, embedded job service, LOOPBACK worker
  beam_inmem     the same on DirectRunner in-memory (with --inmem)

Each worker's start-up (its imports, unpickling the DoFn) and the runner's
teardown are left out: the counting DoFn records each bundle's counting as Beam
distributions (beam_pipeline.COUNT_TIME_DISTRIBUTIONS), and the figures are

  per core (CPU)   examples / the CPU seconds the counting processes spent while
                   counting: what a CPU-bound worker does per vCPU, steady on a
                   shared machine;
  per core (wall)  examples / (first bundle's start to last bundle's end) / CPUs:
                   what this machine gave, shrunk by every other process on it;
  slope            between two sizes, the extra examples over the extra CPU
                   seconds, which leaves out any fixed cost per bundle too.

Repetitions are interleaved over the modes; counts are compared with truth.json
in every run. Results: --output (JSON) and a Markdown summary on stdout and in
--markdown.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import run_bench
import synthetic_data

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
MEASURE = os.path.join(BENCH_DIR, "beam_measure.py")
REFERENCE = "inproc"
BEAM_MODES = ("beam_mp", "beam_portable")
# issue 30: the Beam path at >= 0.7x the in-process figure per core.
TARGET_PER_CORE = 0.7
METRICS = ("work_s", "counting_s", "count_span_s", "count_busy_s", "count_cpu_s", "peak_rss_mb")


def run_one(mode: str, examples: str, graph: str, log_dir: str) -> dict:
    """Runs beam_measure.py MODE in a fresh process; returns its figures and peak RSS."""
    scratch = tempfile.mkdtemp(prefix=f"eg-beam-{mode}-")
    result_path = os.path.join(scratch, "result.json")
    command = [sys.executable, MEASURE, mode, "--examples", examples]
    command += ["--transform-graph", graph, "--result", result_path, "--scratch", scratch]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONWARNINGS="ignore")
    log_path = os.path.join(log_dir, f"{mode}-{os.path.basename(os.path.dirname(examples))}.log")
    load = run_bench._load()
    with open(log_path, "w") as log:
        started = time.perf_counter()
        child = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0 or not os.path.exists(result_path):
        with open(log_path) as f:
            raise RuntimeError(f"{mode} failed:\n{f.read()[-3000:]}")
    with open(result_path) as f:
        result = json.load(f)
    shutil.rmtree(scratch, ignore_errors=True)
    result.update(wall_s=wall, peak_rss_mb=usage.ru_maxrss / 1024, load=load)
    return result


def _rates(run: dict, cpus: int) -> dict:
    n = run["num_examples"]
    return {
        "per_core_cpu": n / run["count_cpu_s"],
        "per_core_wall": n / run["count_span_s"] / cpus,
    }


def summarize(results: dict) -> dict:
    cpus = results["cpus"]
    summary = {}
    for n, by_mode in results["runs"].items():
        medians = {}
        for mode, runs in by_mode.items():
            median = {m: statistics.median(r[m] for r in runs) for m in METRICS}
            for key in ("per_core_cpu", "per_core_wall"):
                median[key] = statistics.median(_rates(r, cpus)[key] for r in runs)
            median["bundles"] = statistics.median(r["bundles"] for r in runs)
            median["exact"] = all(r["counts_exact"] for r in runs)
            medians[mode] = median
        reference = medians.get(REFERENCE)
        ratios = {}
        if reference:
            for mode, median in medians.items():
                ratios[mode] = {
                    key: median[key] / reference[key] for key in ("per_core_cpu", "per_core_wall")
                }
        summary[n] = {"medians": medians, "ratios": ratios}
    sizes = sorted(results["runs"], key=int)
    if len(sizes) >= 2:
        small, large = sizes[0], sizes[-1]
        extra = int(large) - int(small)
        slopes = {}
        for mode in results["runs"][large]:
            if mode not in results["runs"][small]:
                continue
            cpu_small = summary[small]["medians"][mode]["count_cpu_s"]
            cpu_large = summary[large]["medians"][mode]["count_cpu_s"]
            slopes[mode] = extra / (cpu_large - cpu_small) if cpu_large > cpu_small else None
        summary["slopes"] = {"sizes": [small, large], "per_core_cpu": slopes}
    return summary


def _fmt(value, digits: int = 2) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def markdown(results: dict, summary: dict) -> str:
    lines = [
        f"{results['cpus']} CPUs; medians of {results['reps']} interleaved repetitions, each a "
        f"fresh process; {results['started']} to {results['finished']} UTC; load average "
        f"before/after {results['load_before']} / {results['load_after']}.",
        "",
    ]
    for n in sorted(results["runs"], key=int):
        lines += [
            f"N = {int(n):,}:",
            "",
            "| mode | work s | first count to end s | count span s | count CPU s | "
            "examples/s per core (CPU) | ratio | examples/s per core (wall) | ratio | "
            "peak RSS MB | counts exact |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for mode, m in summary[n]["medians"].items():
            ratio = summary[n]["ratios"].get(mode, {})
            lines.append(
                f"| {mode} | {_fmt(m['work_s'])} | {_fmt(m['counting_s'])} | "
                f"{_fmt(m['count_span_s'])} | {_fmt(m['count_cpu_s'])} | "
                f"{_fmt(m['per_core_cpu'], 0)} | {_fmt(ratio.get('per_core_cpu'))} | "
                f"{_fmt(m['per_core_wall'], 0)} | {_fmt(ratio.get('per_core_wall'))} | "
                f"{_fmt(m['peak_rss_mb'], 0)} | {'yes' if m['exact'] else 'NO'} |"
            )
        lines.append("")
    slopes = summary.get("slopes")
    if slopes:
        small, large = slopes["sizes"]
        reference = slopes["per_core_cpu"].get(REFERENCE)
        parts = []
        for mode, rate in slopes["per_core_cpu"].items():
            ratio = rate / reference if rate and reference else None
            parts.append(f"{mode} {_fmt(rate, 0)} ({_fmt(ratio)}x)")
        lines += [
            f"Slope of count CPU from {int(small):,} to {int(large):,}, examples per CPU "
            f"second: {', '.join(parts)}.",
            "",
        ]
    loads = [
        f"{r['mode']} {r['load'].split()[0]}"
        for by in results["runs"].values()
        for runs in by.values()
        for r in runs
    ]
    lines += [f"Load average (1 min) at each start: {', '.join(loads)}.", ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[1_000_000, 4_000_000])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--inmem", action="store_true", help="also DirectRunner in-memory")
    parser.add_argument("--data-dir", default=run_bench.DEFAULT_DATA_DIR)
    parser.add_argument("--output", default=os.path.join(BENCH_DIR, "beam_cores_results.json"))
    parser.add_argument("--markdown", help="also write the Markdown summary here")
    args = parser.parse_args(argv)
    command = [sys.executable, os.path.join(BENCH_DIR, "generate.py"), "--data-dir"]
    command += [args.data_dir, "--sizes", *map(str, args.sizes)]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    data = json.loads(done.stdout.strip().splitlines()[-1])
    modes = (REFERENCE, *BEAM_MODES, *(("beam_inmem",) if args.inmem else ()))
    log_dir = tempfile.mkdtemp(prefix="eg-beam-logs-")
    results = {
        "cpus": len(os.sched_getaffinity(0)),
        "reps": args.reps,
        "load_before": run_bench._load(),
        "started": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
        "runs": {},
    }
    for _ in range(args.reps):
        for n in args.sizes:
            size = data["sizes"][str(n)]
            truth = size["truth"]
            for mode in modes:
                run = run_one(mode, size["examples"], data["transform_graph"], log_dir)
                run["counts_exact"] = all(
                    run["counts"][name][key] == truth[name][key]
                    for name in truth
                    for key in synthetic_data.TRUTH_KEYS
                )
                rates = _rates(run, results["cpus"])
                print(
                    f"{mode:13s} N={n:>10,}: work {run['work_s']:.2f} s, counting "
                    f"{run['counting_s']:.2f} s, span {run['count_span_s']:.2f} s, CPU "
                    f"{run['count_cpu_s']:.2f} s, {rates['per_core_cpu']:,.0f}/CPU-s, "
                    f"{rates['per_core_wall']:,.0f}/s per core, bundles {run['bundles']}, "
                    f"exact {run['counts_exact']}, load {run['load']}",
                    file=sys.stderr,
                    flush=True,
                )
                results["runs"].setdefault(str(n), {}).setdefault(mode, []).append(run)
    results["load_after"] = run_bench._load()
    results["finished"] = time.strftime("%H:%M", time.gmtime())
    summary = summarize(results)
    text = markdown(results, summary)
    run_bench.write_results(
        args.output, args.markdown, {"results": results, "summary": summary}, text
    )
    shutil.rmtree(log_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
