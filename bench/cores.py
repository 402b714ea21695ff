"""Benchmark: every core and start-up against the parallel-read limit, and flat memory.

Usage (from the repository root):

    .venv/bin/python bench/cores.py                       # N = 1M, 3 repetitions
    .venv/bin/python bench/cores.py --sizes 1000000 4000000 --reps 5
    .venv/bin/python bench/cores.py --sizes 200000 --reps 1 --large-sizes 4000  # smoke

Every measurement is a fresh process (bench/measure.py MODE) on the cached data
of bench/synthetic_data.py, run once on every CPU this process may use and once
pinned to CPU 0 (`taskset -c 0`):

  limit      the parallel-read limit: tf.data interleave + parallel parse_example
             of only the checked features + a numpy pass over every value
  cli        `embedding-guard check --schema` in-process
  executor   the component's Executor.Do, DirectRunner in-memory
  executor_mp  the same on DirectRunner multi_processing with 2 workers (all
             CPUs only)
  import_tf  `import tensorflow` alone, the start-up floor

With --large-sizes, `check` also runs on examples of 60 KB each
(synthetic_data.write_large_examples) at each size: its peak RSS must stay flat
as the size grows, since a batch is bounded by bytes.

Repetitions are interleaved over the modes. Results: --output (JSON, default
bench/cores_results.json) and a Markdown summary on stdout and in --markdown.
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

import run_bench
import synthetic_data

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
DEFAULT_RESULTS = os.path.join(BENCH_DIR, "cores_results.json")
PINNED = ("taskset", "-c", "0")
MODES = ("limit", "cli", "executor")
# The executor on DirectRunner with 2 worker processes: all CPUs only, since
# pinning both workers to one CPU measures nothing a user would run.
MULTI_PROCESSING = "executor_mp"
METRICS = ("wall_s", "import_s", "work_s", "work_cpu_s", "peak_rss_mb")
# issue 14, "Done when".
TARGET_CHECK_OVER_LIMIT = 1.25
TARGET_SPEEDUP = 1.7
TARGET_IMPORT_ABOVE_TF_S = 1.0


def _generate(data_dir: str, sizes: list[int], large_sizes: list[int]) -> dict:
    command = [sys.executable, os.path.join(BENCH_DIR, "generate.py"), "--data-dir", data_dir]
    command += ["--sizes", *map(str, sizes)]
    if large_sizes:
        command += ["--large-sizes", *map(str, large_sizes)]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def _counts_match(run: dict, truth: dict) -> bool:
    if run["mode"] == "limit":
        return all(
            run["bad"][name] == counts["negative"] + counts["out_of_range"]
            for name, counts in truth.items()
        )
    return run_bench._check_counts(run, truth)


def _median(runs: list[dict]) -> dict:
    return {metric: statistics.median(run[metric] for run in runs) for metric in METRICS}


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return numerator / denominator


def _fmt(value, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def summarize(results: dict) -> dict:
    """Medians per (N, mode, cores) and the ratios the issue's targets are judged on."""
    summary = {"import_tf": _median(results["import_tf"]) if results["import_tf"] else None}
    for n, by_key in results["runs"].items():
        medians = {key: _median(runs) for key, runs in by_key.items()}
        derived = {}
        limit = medians.get("limit/all")
        check = medians.get("cli/all")
        if limit and check:
            derived["check_over_limit_wall"] = check["wall_s"] / limit["wall_s"]
            derived["check_over_limit_work"] = check["work_s"] / limit["work_s"]
        for mode in MODES:
            one, every = medians.get(f"{mode}/1"), medians.get(f"{mode}/all")
            if one and every:
                derived[f"{mode}_speedup_work"] = one["work_s"] / every["work_s"]
        in_memory, multi = medians.get("executor/all"), medians.get(f"{MULTI_PROCESSING}/all")
        if in_memory and multi:
            derived["multi_processing_over_in_memory_work"] = multi["work_s"] / in_memory["work_s"]
            derived["multi_processing_over_in_memory_wall"] = multi["wall_s"] / in_memory["wall_s"]
        if check and summary["import_tf"]:
            derived["check_import_above_tf_s"] = (
                check["import_s"] - summary["import_tf"]["import_s"]
            )
        summary[n] = {"medians": medians, "derived": derived}
    summary["large"] = {n: _median(runs) for n, runs in results["large"].items()}
    return summary


def markdown(results: dict, summary: dict) -> str:
    cpus = results["cpus"]
    lines = [
        "## Every core and start-up (bench/cores.py)",
        "",
        f"{cpus} CPUs available; `1` = pinned with `taskset -c 0`. Medians of "
        f"{results['reps']} repetitions, each a fresh process; load average before/after: "
        f"{results['load_before']} / {results['load_after']}.",
        "",
    ]
    if summary["import_tf"]:
        lines.append(f"`import tensorflow` alone: {summary['import_tf']['import_s']:.2f} s.")
        lines.append("")
    for n in results["runs"]:
        lines += [
            f"### N = {int(n):,}",
            "",
            "| mode | CPUs | wall s | import s | work s | work CPU s | peak RSS MB | counts exact |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for key, median in summary[n]["medians"].items():
            mode, cores = key.split("/")
            exact = all(run["counts_exact"] for run in results["runs"][n][key])
            lines.append(
                f"| {mode} | {cpus if cores == 'all' else 1} | {_fmt(median['wall_s'])} | "
                f"{_fmt(median['import_s'])} | {_fmt(median['work_s'])} | "
                f"{_fmt(median['work_cpu_s'])} | {_fmt(median['peak_rss_mb'], 0)} | "
                f"{'yes' if exact else 'NO'} |"
            )
        derived = summary[n]["derived"]
        lines += [
            "",
            "| measure | value | target |",
            "|---|---|---|",
            f"| check whole process / limit (wall, all CPUs) | "
            f"{_fmt(derived.get('check_over_limit_wall'))} | <= {TARGET_CHECK_OVER_LIMIT} |",
            f"| check work / limit work (all CPUs) | "
            f"{_fmt(derived.get('check_over_limit_work'))} | |",
            f"| check work speed-up, 1 CPU -> all | {_fmt(derived.get('cli_speedup_work'))} | "
            f">= {TARGET_SPEEDUP} on 2 CPUs |",
            f"| executor work speed-up, 1 CPU -> all | "
            f"{_fmt(derived.get('executor_speedup_work'))} | |",
            f"| limit work speed-up, 1 CPU -> all | {_fmt(derived.get('limit_speedup_work'))} | |",
            f"| check imports above `import tensorflow` (s) | "
            f"{_fmt(derived.get('check_import_above_tf_s'))} | <= {TARGET_IMPORT_ABOVE_TF_S} |",
            f"| executor work, multi_processing x2 / in-memory (all CPUs) | "
            f"{_fmt(derived.get('multi_processing_over_in_memory_work'))} | |",
            f"| executor whole process, multi_processing x2 / in-memory | "
            f"{_fmt(derived.get('multi_processing_over_in_memory_wall'))} | |",
            "",
        ]
        late = sorted(
            {
                name
                for run in results["runs"][n].get("cli/all", [])
                for name in run.get("imported_during_work", [])
            }
        )
        lines += [
            f"Packages `check` first imported during its work: {', '.join(late) or 'none'}.",
            "",
        ]
    if summary["large"]:
        lines += [
            f"### check on {synthetic_data.LARGE_RECORD_BYTES:,}-byte records (all CPUs)",
            "",
            "| examples | decompressed MB | wall s | work s | peak RSS MB | counts exact |",
            "|---|---|---|---|---|---|",
        ]
        for n, median in summary["large"].items():
            exact = all(run["counts_exact"] for run in results["large"][n])
            megabytes = int(n) * synthetic_data.LARGE_RECORD_BYTES / 1e6
            lines.append(
                f"| {int(n):,} | {megabytes:,.0f} | {_fmt(median['wall_s'])} | "
                f"{_fmt(median['work_s'])} | {_fmt(median['peak_rss_mb'], 0)} | "
                f"{'yes' if exact else 'NO'} |"
            )
        lines.append("")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[1_000_000])
    # 500 and 4,000 records of 60 KB per shard: 30 MB and 240 MB, one batch each
    # when batches were bounded by count only.
    parser.add_argument("--large-sizes", type=int, nargs="*", default=[4_000, 32_000])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--data-dir", default=run_bench.DEFAULT_DATA_DIR)
    parser.add_argument("--output", default=DEFAULT_RESULTS)
    parser.add_argument("--markdown", help="also write the Markdown summary here")
    args = parser.parse_args(argv)
    if shutil.which("taskset") is None:
        parser.error("taskset (util-linux) is needed to pin a run to one CPU")
    data = _generate(args.data_dir, args.sizes, args.large_sizes)
    graph = data["transform_graph"]
    log_dir = tempfile.mkdtemp(prefix="eg-cores-logs-")
    results = {
        "cpus": len(os.sched_getaffinity(0)),
        "reps": args.reps,
        "load_before": run_bench._load(),
        "import_tf": [],
        "runs": {},
        "large": {},
    }

    def measure(mode: str, examples: str, truth: dict, prefix=()) -> dict:
        run = run_bench.run_measurement(mode, examples, graph, log_dir, prefix)
        run["counts_exact"] = truth is None or _counts_match(run, truth)
        where = "1 CPU" if prefix else "all CPUs"
        print(
            f"{mode:9s} {where:8s} {os.path.basename(os.path.dirname(examples)):>12s}: "
            f"wall {run['wall_s']:.2f} s, import {run['import_s']:.2f} s, "
            f"work {run['work_s']:.2f} s, RSS {run['peak_rss_mb']:.0f} MB",
            file=sys.stderr,
            flush=True,
        )
        return run

    for _ in range(args.reps):
        if args.sizes:
            first = data["sizes"][str(args.sizes[0])]["examples"]
            results["import_tf"].append(measure("import_tf", first, None))
        for n in args.sizes:
            size = data["sizes"][str(n)]
            runs = results["runs"].setdefault(str(n), {})
            for mode in MODES:
                for cores, prefix in (("all", ()), ("1", PINNED)):
                    run = measure(mode, size["examples"], size["truth"], prefix)
                    runs.setdefault(f"{mode}/{cores}", []).append(run)
            run = measure(MULTI_PROCESSING, size["examples"], size["truth"])
            runs.setdefault(f"{MULTI_PROCESSING}/all", []).append(run)
        for n in args.large_sizes:
            size = data["large_sizes"][str(n)]
            run = measure("cli", size["examples"], size["truth"])
            results["large"].setdefault(str(n), []).append(run)
    results["load_after"] = run_bench._load()
    summary = summarize(results)
    text = markdown(results, summary)
    run_bench.write_results(
        args.output, args.markdown, {"results": results, "summary": summary}, text
    )
    shutil.rmtree(log_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
