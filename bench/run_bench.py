"""Benchmark: embedding-guard against decoding every feature and against TFDV.

Usage (from the repository root):

    make bench                                   # full: N = 10k, 100k, 1M, 4M
    .venv/bin/python bench/run_bench.py --quick  # smoke run: N = 10k, 100k

Seeded synthetic Transform output (bench/synthetic_data.py) is generated once and
cached under bench/_data/. Every measurement runs in a fresh process
(bench/measure.py) on the same files:

  (a) decode       tfx_bsl TFXIO RecordBatches over every feature, no Beam
  (b) tfdv         generate_statistics_from_tfrecord + validate_statistics
  (c) executor     our Executor.Do, DirectRunner in-memory
  (d) executor_mp  our Executor.Do, DirectRunner multi_processing, 2 workers
      cli          `embedding-guard check --schema` once, as a cross-check
      vocab        loading a 1,000,000-entry vocabulary and resolving bounds

The parent measures wall time, CPU time and peak RSS of each process (wait4) and
samples the whole process tree's RSS; the child reports import and work time.
Results: bench/results.json (all runs) and bench/RESULTS.md (the tables).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import atomic_files
import numpy as np
import synthetic_data

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_DIR = os.path.dirname(BENCH_DIR)
MEASURE = os.path.join(BENCH_DIR, "measure.py")
DEFAULT_DATA_DIR = os.path.join(BENCH_DIR, "_data")
DEFAULT_RESULTS = os.path.join(BENCH_DIR, "results.json")
DEFAULT_RESULTS_MD = os.path.join(BENCH_DIR, "RESULTS.md")

FULL_SIZES = (10_000, 100_000, 1_000_000, 4_000_000)
QUICK_SIZES = (10_000, 100_000)
FULL_HEADLINE = 1_000_000
QUICK_HEADLINE = 100_000
# (d) at 4M shows whether the fixed cost of worker processes is paid back.
MULTI_PROCESSING_SIZES = (1_000_000, 4_000_000)
# TFDV takes minutes at 4M; detection is shown where it runs.
TFDV_MAX_SIZE = 1_000_000
VOCAB_FEATURE = synthetic_data.VOCAB_FEATURE

LABELS = {
    "decode": "(a) TFXIO RecordBatches, all features, no Beam",
    "tfdv": "(b) TFDV generate_statistics + validate_statistics",
    "executor": "(c) embedding-guard Executor, DirectRunner in-memory",
    "executor_mp": "(d) embedding-guard Executor, DirectRunner multi_processing x2",
    "cli": "embedding-guard check --schema (cross-check)",
}
TARGETS = {
    "c_over_a": 1.0,
    "b_over_c": 8.0,
    "rss_growth": 0.10,
    "vocab_load_s": 2.0,
}
SAMPLE_INTERVAL_S = 0.1
# What `make bench` runs.
PLAIN_COMMAND = ".venv/bin/python bench/run_bench.py"


_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def _children_by_parent() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        # The command name may hold spaces and parentheses; the parent id follows
        # the last ")" and the state letter.
        parent = int(stat[stat.rindex(")") + 2 :].split()[1])
        children.setdefault(parent, []).append(int(entry))
    return children


def _tree_rss(pid: int) -> int:
    """Resident bytes of a process and all its descendants, from /proc."""
    children = _children_by_parent()
    total, pending = 0, [pid]
    while pending:
        member = pending.pop()
        pending.extend(children.get(member, []))
        with contextlib.suppress(OSError), open(f"/proc/{member}/statm") as f:
            total += int(f.read().split()[1]) * _PAGE_SIZE
    return total


def run_measurement(
    mode: str, examples: str, graph: str, log_dir: str, prefix: tuple[str, ...] = ()
) -> dict:
    """Runs measure.py MODE in a fresh process and returns its numbers.

    prefix goes before the command, e.g. ("taskset", "-c", "0") to pin it to one CPU.

    Raises:
      RuntimeError: The process failed; the message holds its log's tail.
    """
    scratch = tempfile.mkdtemp(prefix=f"eg-bench-{mode}-")
    result_path = os.path.join(scratch, "result.json")
    command = [*prefix, sys.executable, MEASURE, mode, "--examples", examples]
    command += ["--transform-graph", graph]
    command += ["--result", result_path, "--scratch", scratch]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONWARNINGS="ignore")
    pinned = "-pinned" if prefix else ""
    log_name = f"{mode}{pinned}-{os.path.basename(os.path.dirname(examples))}.log"
    log_path = os.path.join(log_dir, log_name)
    peak_tree = 0
    with open(log_path, "w") as log:
        started = time.perf_counter()
        child = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
        done = threading.Event()

        def sample():
            nonlocal peak_tree
            while not done.is_set():
                peak_tree = max(peak_tree, _tree_rss(child.pid))
                done.wait(SAMPLE_INTERVAL_S)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - started
        done.set()
        sampler.join()
        child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0 or not os.path.exists(result_path):
        with open(log_path) as f:
            tail = f.read()[-3000:]
        raise RuntimeError(f"{shlex.join(command)} failed ({child.returncode}):\n{tail}")
    with open(result_path) as f:
        result = json.load(f)
    shutil.rmtree(scratch, ignore_errors=True)
    result.update(
        {
            "wall_s": wall,
            "cpu_s": usage.ru_utime + usage.ru_stime,
            # Linux reports ru_maxrss in KiB: the largest single process of the tree.
            "peak_rss_mb": usage.ru_maxrss / 1024,
            "tree_peak_rss_mb": peak_tree / 2**20,
        }
    )
    return result


METRICS = (
    "wall_s",
    "import_s",
    "work_s",
    "work_cpu_s",
    "cpu_s",
    "peak_rss_mb",
    "tree_peak_rss_mb",
)
RATIO_METRICS = ("work_s", "work_cpu_s", "wall_s")


def write_results(output: str, markdown_path: str | None, document: dict, text: str) -> None:
    """Writes a bench script's JSON document and its Markdown table, and prints the table."""
    atomic_files.write_json(output, document, indent=1, sort_keys=True)
    print(text)
    if markdown_path:
        atomic_files.write_text(markdown_path, text if text.endswith("\n") else text + "\n")


def summarize(runs: list[dict]) -> dict:
    """Medians of every metric over repetitions, plus examples/second of the work."""
    summary = {metric: statistics.median(run[metric] for run in runs) for metric in METRICS}
    summary["reps"] = len(runs)
    num_examples = runs[0]["num_examples"]
    summary["num_examples"] = num_examples
    summary["examples_per_s"] = num_examples / summary["work_s"] if num_examples else None
    if "executor_init_s" in runs[0]:
        summary["executor_init_s"] = statistics.median(r["executor_init_s"] for r in runs)
    return summary


def machine_facts() -> dict:
    import importlib.metadata as metadata

    cpu_model = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu_model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    packages = {}
    for name in (
        "apache-beam",
        "tensorflow",
        "tfx",
        "tfx-bsl",
        "tensorflow-data-validation",
        "tensorflow-transform",
        "numpy",
        "pyarrow",
    ):
        try:
            packages[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            packages[name] = None
    return {
        "cpus": os.cpu_count(),
        "cpu_model": cpu_model,
        "memory_gib": round(_PAGE_SIZE * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": packages,
    }


def code_version() -> dict:
    """The git commit measured, and a fingerprint of components/ as it is on disk."""

    def git(*args):
        try:
            return subprocess.run(
                ["git", *args], cwd=REPO_DIR, capture_output=True, text=True, check=True
            ).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            return None

    status = git("status", "--porcelain", "--", "components")
    return {
        "commit": git("rev-parse", "--short", "HEAD"),
        "components_modified": bool(status),
        # The committed tree plus any uncommitted change: equal fingerprints mean
        # the measured code did not change, whatever else was committed.
        "components_fingerprint": [
            git("rev-parse", "HEAD:components"),
            status,
            git("diff", "HEAD", "--", "components"),
        ],
    }


def _detection(truth: dict, counts: dict | None, tfdv_anomalies: dict | None) -> list[dict]:
    rows = []
    for spec in synthetic_data.CATEGORICAL_FEATURES:
        true = truth[spec.name]
        row = {
            "feature": spec.name,
            "vocab_size": spec.vocab_size,
            "upper_bound": spec.upper_bound,
            "multivalent": spec.multivalent,
            "true_negative": true["negative"],
            "true_out_of_range": true["out_of_range"],
        }
        if counts is not None:
            ours = counts[spec.name]
            row["ours_negative"] = ours["negative"]
            row["ours_out_of_range"] = ours["out_of_range"]
            row["ours_exact"] = all(ours[key] == true[key] for key in synthetic_data.TRUTH_KEYS)
        if tfdv_anomalies is not None:
            types = {reason["type"] for reason in tfdv_anomalies.get(spec.name, [])}
            row["tfdv_flags_negative"] = "INT_TYPE_SMALL_INT" in types
            row["tfdv_flags_out_of_range"] = "INT_TYPE_BIG_INT" in types
            row["tfdv_reasons"] = [r["description"] for r in tfdv_anomalies.get(spec.name, [])]
        rows.append(row)
    return rows


def _linear_fit(points: list[tuple[int, float]]) -> dict:
    sizes = np.array([n for n, _ in points], dtype=float)
    times = np.array([t for _, t in points], dtype=float)
    slope, intercept = np.polyfit(sizes, times, 1)
    predicted = slope * sizes + intercept
    residual = times - predicted
    r_squared = 1 - float(np.sum(residual**2)) / float(np.sum((times - times.mean()) ** 2))
    return {
        "seconds_per_million": slope * 1e6,
        "fixed_s": intercept,
        "r_squared": r_squared,
    }


def _ratio(numerator: dict | None, denominator: dict | None, metric: str) -> float | None:
    if not numerator or not denominator:
        return None
    return numerator[metric] / denominator[metric]


def _fmt(value, digits=2) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _table(header: list[str], rows: list[list]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(_fmt(cell) for cell in row) + " |" for row in rows]
    return lines


def _million(n: int) -> str:
    return f"{n / 1e6:g}M" if n >= 1_000_000 else f"{n // 1000}k"


def markdown(results: dict) -> str:
    """Renders the results as the tables pasted into the README."""
    headline = results["headline"]
    summary = results["summary"]
    ratios = results["ratios"]
    lines = [
        (
            f"Command: `make bench`, which runs `{results['command']}`  "
            if results["command"] == PLAIN_COMMAND
            else f"Command: `{results['command']}`  "
        ),
        f"Date: {results['date']}  ",
        (
            f"Machine: {results['machine']['cpus']} CPUs ({results['machine']['cpu_model']}), "
            f"{results['machine']['memory_gib']} GiB, Python {results['machine']['python']}, "
            + ", ".join(f"{k} {v}" for k, v in results["machine"]["packages"].items())
            + "  "
        ),
        (
            f"Code: commit {results['code']['commit']}"
            + (
                " with uncommitted changes in components/"
                if results["code"]["components_modified"]
                else ""
            )
            + ("; components/ CHANGED during the run" if results["code_changed_during_run"] else "")
            + ".  "
        ),
        (
            f"Load average before/after: {results['load_before']} / {results['load_after']}; "
            f"total benchmark time {results['total_s'] / 60:.1f} min, of which data "
            f"generation {results['generation_s']:.0f} s.  "
        ),
        (
            f"Data: seeded synthetic Transform output, {synthetic_data.NUM_SHARDS} gzip "
            "TFRecord shards per N, 8 int64 categorical features (6 single-valued, 2 "
            "multivalent with 0-5 values; vocabularies of 10 to 1,000,000 entries plus OOV "
            f"buckets; {synthetic_data.BAD_VALUE_RATE:g} of values negative or out of range), "
            "2 float and 1 string feature. Medians of "
            f"{results['reps']} repetitions, each in a fresh process. Work = everything after "
            "the imports; work CPU = CPU time of the work (all threads and worker "
            "processes), the steadiest number on a shared machine; wall = process start to "
            "exit; CPU = the whole process tree."
        ),
        "",
        f"### At N = {headline:,}",
        "",
    ]
    header = ["run", "wall s", "import s", "work s", "work CPU s", "CPU s", "examples/s (work)"]
    header += ["peak RSS MB", "process tree peak RSS MB"]
    rows = []
    for mode in ("decode", "tfdv", "executor", "executor_mp", "cli"):
        item = summary[str(headline)].get(mode)
        if item:
            rows.append(
                [
                    LABELS[mode],
                    item["wall_s"],
                    item["import_s"],
                    item["work_s"],
                    item["work_cpu_s"],
                    item["cpu_s"],
                    round(item["examples_per_s"]),
                    round(item["peak_rss_mb"]),
                    round(item["tree_peak_rss_mb"]),
                ]
            )
    lines += _table(header, rows)
    mp = summary[str(headline)].get("executor_mp")
    if mp and "executor_init_s" in mp:
        lines += [
            "",
            f"(d)'s work includes {mp['executor_init_s']:.1f} s in which TFX's BaseBeamExecutor "
            "builds an ephemeral TFX sdist for `--extra_package`, as it does for any "
            "`beam_pipeline_args` without `--setup_file`/`--extra_package`/a container image.",
        ]
    lines += ["", "### Ratios", ""]
    rows = []
    for name, label, target in (
        ("c_over_a", "c/a: executor vs decode", "<= 1.0"),
        ("b_over_c", "b/c: TFDV vs executor", ">= 8"),
        ("d_over_c", "d/c: multi_processing vs in-memory", ""),
    ):
        rows.append([label] + [ratios[name][metric] for metric in RATIO_METRICS] + [target])
    lines += _table(["ratio", "work time", "work CPU time", "wall time", "target"], rows)
    executor = summary[str(headline)].get("executor")
    if executor:
        lines += [
            "",
            "The targets are judged on work time. Wall time adds each process's start, "
            "imports and exit, "
            f"{executor['wall_s'] - executor['work_s']:.1f} s for the executor (TensorFlow, "
            "TFX and Beam), which is why the wall-time ratios are closer to 1.",
        ]

    lines += ["", "### Scaling with N (executor, DirectRunner in-memory unless noted)", ""]
    header = ["N", "decode work s", "executor work s", "executor work CPU s"]
    header += ["executor wall s", "c/a work", "executor examples/s (work)"]
    header += ["executor peak RSS MB", "multi_processing work s"]
    rows = []
    for n in results["sizes"]:
        item = summary[str(n)]
        decode, executor = item.get("decode"), item.get("executor")
        rows.append(
            [
                f"{n:,}",
                decode and decode["work_s"],
                executor["work_s"],
                executor["work_cpu_s"],
                executor["wall_s"],
                _ratio(executor, decode, "work_s"),
                round(executor["examples_per_s"]),
                round(executor["peak_rss_mb"]),
                item.get("executor_mp", {}).get("work_s"),
            ]
        )
    lines += _table(header, rows)
    fits = results.get("linear_fit")
    if fits:
        lines.append("")
        for metric, label in (("work_s", "work time"), ("work_cpu_s", "work CPU time")):
            fit = fits[metric]
            lines.append(
                f"Executor {label} fitted over N: {fit['fixed_s']:.2f} s fixed + "
                f"{fit['seconds_per_million']:.2f} s per million examples, R^2 = "
                f"{fit['r_squared']:.4f}."
            )
    growth = results.get("rss_growth")
    if growth is not None:
        lines.append(f"Executor peak RSS from N = 1M to N = 4M: {growth:+.1%} (target <= +10%).")
    vocab = results["vocab"]
    lines += [
        f"Loading a {VOCAB_FEATURE.vocab_size:,}-entry vocabulary (load_transform_graph + "
        f"resolving bounds): median {vocab['work_s']:.2f} s after {vocab['import_s']:.1f} s "
        "of imports (target < 2 s).",
    ]

    lines += ["", "### Detection of the injected bad values", ""]
    header = ["N", "feature", "vocab", "true neg", "ours neg", "true out", "ours out"]
    header += ["all our counts exact", "TFDV flags neg", "TFDV flags out"]
    rows = []
    for n in results["sizes"]:
        for row in results["detection"][str(n)]:
            rows.append(
                [
                    _million(n),
                    row["feature"],
                    f"{row['vocab_size']:,}" + (" multi" if row["multivalent"] else ""),
                    row["true_negative"],
                    row["ours_negative"],
                    row["true_out_of_range"],
                    row["ours_out_of_range"],
                    row["ours_exact"],
                    row.get("tfdv_flags_negative", "not run"),
                    row.get("tfdv_flags_out_of_range", "not run"),
                ]
            )
    lines += _table(header, rows)
    lines += [
        "",
        '"All our counts exact" compares num_values, missing, negative, in_vocab, '
        "oov_bucket and out_of_range with the generator's truth, in every repetition. "
        f"TFDV runs up to N = {_million(TFDV_MAX_SIZE)} and reports whether a feature has "
        "small/large values, never how many.",
    ]
    lines += ["", "### Targets", ""]
    lines += _table(
        ["target", "measured", "met"],
        [[t["name"], t["measured"], t["met"]] for t in results["targets"]],
    )
    return "\n".join(lines) + "\n"


def _targets(results: dict) -> list[dict]:
    ratios = results["ratios"]
    targets = []

    def add(name, measured, met):
        targets.append({"name": name, "measured": measured, "met": met})

    headline = _million(results["headline"])

    def measured(ratio):
        return "; ".join(_fmt(ratio[metric]) for metric in RATIO_METRICS)

    c_over_a = ratios["c_over_a"]
    add(
        f"c/a <= 1.0 at N = {headline} (work; work CPU; wall)",
        measured(c_over_a),
        c_over_a["work_s"] is not None and c_over_a["work_s"] <= TARGETS["c_over_a"],
    )
    b_over_c = ratios["b_over_c"]
    add(
        f"b/c >= 8 at N = {headline} (work; work CPU; wall)",
        measured(b_over_c),
        b_over_c["work_s"] is not None and b_over_c["work_s"] >= TARGETS["b_over_c"],
    )
    if results.get("rss_growth") is not None:
        add(
            "peak RSS grows <= 10% from 1M to 4M",
            f"{results['rss_growth']:+.1%}",
            results["rss_growth"] <= TARGETS["rss_growth"],
        )
    if results.get("linear_fit"):
        work, cpu = results["linear_fit"]["work_s"], results["linear_fit"]["work_cpu_s"]
        add(
            "time grows linearly with N (R^2 >= 0.99 of a linear fit; work; work CPU)",
            f"R^2 = {work['r_squared']:.4f}; {cpu['r_squared']:.4f}",
            work["r_squared"] >= 0.99,
        )
    vocab_s = results["vocab"]["work_s"]
    add("1,000,000-entry vocabulary loads in < 2 s", f"{vocab_s:.2f} s", vocab_s < 2.0)
    exact = all(
        row["ours_exact"] for rows in results["detection"].values() for row in rows
    ) and all(results["exact_every_rep"].values())
    add("100% of injected bad values found with exact counts at every N", exact, exact)
    return targets


# Bounds from a schema alone (the CLI's --schema) cannot tell vocabulary entries
# from OOV buckets, so only these counts are compared for it.
SCHEMA_ONLY_KEYS = ("num_values", "missing", "negative", "out_of_range")


def _check_counts(run: dict, truth: dict) -> bool:
    # `check --schema`, whichever parser: no vocabulary, so no in-vocab or OOV counts.
    keys = SCHEMA_ONLY_KEYS if run["mode"] in ("cli", "cli_tf_parse") else synthetic_data.TRUTH_KEYS
    return all(run["counts"][name][key] == truth[name][key] for name in truth for key in keys)


def _load() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: N = 10k and 100k, 1 repetition"
    )
    parser.add_argument("--reps", type=int, help="repetitions per measurement (default 5; quick 1)")
    parser.add_argument("--data-dir", default=DEFAULT_DATA_DIR, help="cache of generated data")
    parser.add_argument("--output", default=DEFAULT_RESULTS, help="JSON results file")
    parser.add_argument(
        "--markdown",
        help="write the tables here too (default: bench/RESULTS.md for a full run, "
        "nothing for --quick)",
    )
    args = parser.parse_args(argv)
    reps = args.reps or (1 if args.quick else 5)
    sizes = QUICK_SIZES if args.quick else FULL_SIZES
    headline = QUICK_HEADLINE if args.quick else FULL_HEADLINE
    markdown_path = args.markdown or (None if args.quick else DEFAULT_RESULTS_MD)
    command = shlex.join(
        [".venv/bin/python", "bench/run_bench.py", *(argv if argv is not None else sys.argv[1:])]
    )

    started = time.perf_counter()
    load_before = _load()
    code_before = code_version()
    if os.getloadavg()[0] > 1.0:
        print(
            f"Warning: load average {load_before}: other processes are using the CPUs, "
            "so times and ratios will be noisy. Results record the load.",
            flush=True,
        )
    args.data_dir = os.path.abspath(args.data_dir)
    os.makedirs(args.data_dir, exist_ok=True)
    log_dir = os.path.join(args.data_dir, "logs")
    os.makedirs(log_dir, exist_ok=True)

    print(f"Generating data under {args.data_dir} (cached) ...", flush=True)
    generation_started = time.perf_counter()
    generated = subprocess.run(
        [
            sys.executable,
            os.path.join(BENCH_DIR, "generate.py"),
            "--data-dir",
            args.data_dir,
            "--sizes",
            *map(str, sizes),
        ],
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONWARNINGS="ignore"),
        capture_output=True,
        text=True,
    )
    if generated.returncode != 0:
        print(generated.stdout, generated.stderr, file=sys.stderr)
        return 1
    data = json.loads(generated.stdout.strip().splitlines()[-1])
    generation_s = time.perf_counter() - generation_started
    print(f"  data ready in {generation_s:.0f} s", flush=True)

    runs: list[dict] = []

    def measure(mode: str, n: int | None, rep: int) -> dict:
        examples = (
            data["sizes"][str(n)]["examples"] if n else data["sizes"][str(sizes[0])]["examples"]
        )
        graph = data["vocab_graph"] if mode == "vocab" else data["transform_graph"]
        load = _load()
        result = run_measurement(mode, examples, graph, log_dir)
        result.update({"n": n, "rep": rep, "load_before": load, "load_after": _load()})
        runs.append(result)
        print(
            f"  {mode:<12} N={n or '-':>9} rep {rep + 1}: wall {result['wall_s']:7.2f} s  "
            f"work {result['work_s']:7.2f} s  work cpu {result['work_cpu_s']:7.2f} s  "
            f"rss {result['peak_rss_mb']:6.0f} MB  load {_load()}",
            flush=True,
        )
        return result

    print("Vocabulary load:", flush=True)
    for rep in range(reps):
        measure("vocab", None, rep)

    plan = []
    for n in sizes:
        modes = ["decode", "executor"]
        if n == headline:
            modes += ["tfdv"]
        if n == headline or (n in MULTI_PROCESSING_SIZES and not args.quick):
            modes += ["executor_mp"]
        plan.append((n, modes))
    for n, modes in plan:
        print(f"N = {n:,}:", flush=True)
        # Interleaved repetitions: a slow phase of the machine hits every mode alike.
        for rep in range(reps):
            for mode in modes:
                measure(mode, n, rep)
        if n == headline:
            measure("cli", n, 0)
        elif n < headline and n <= TFDV_MAX_SIZE:
            measure("tfdv", n, 0)

    summary: dict = {}
    for run in runs:
        if run["n"] is None:
            continue
        summary.setdefault(str(run["n"]), {}).setdefault(run["mode"], []).append(run)
    summary = {
        n: {mode: summarize(mode_runs) for mode, mode_runs in modes.items()}
        for n, modes in summary.items()
    }
    vocab_runs = [run for run in runs if run["mode"] == "vocab"]
    vocab = {metric: statistics.median(r[metric] for r in vocab_runs) for metric in METRICS}

    at_headline = summary[str(headline)]
    ratios = {}
    for name, numerator, denominator in (
        ("c_over_a", "executor", "decode"),
        ("b_over_c", "tfdv", "executor"),
        ("d_over_c", "executor_mp", "executor"),
    ):
        ratios[name] = {
            metric: _ratio(at_headline.get(numerator), at_headline.get(denominator), metric)
            for metric in RATIO_METRICS
        }

    detection = {}
    exact_every_rep = {}
    for n in sizes:
        truth = data["sizes"][str(n)]["truth"]
        executor_runs = [r for r in runs if r["n"] == n and r["mode"] in ("executor", "cli")]
        executor_runs += [r for r in runs if r["n"] == n and r["mode"] == "executor_mp"]
        exact_every_rep[str(n)] = all(_check_counts(r, truth) for r in executor_runs)
        tfdv_runs = [r for r in runs if r["n"] == n and r["mode"] == "tfdv"]
        first_executor = next(r for r in runs if r["n"] == n and r["mode"] == "executor")
        detection[str(n)] = _detection(
            truth, first_executor["counts"], tfdv_runs[0]["anomalies"] if tfdv_runs else None
        )

    linear_fit = None
    if len(sizes) >= 3:
        linear_fit = {
            metric: _linear_fit([(n, summary[str(n)]["executor"][metric]) for n in sizes])
            for metric in ("work_s", "work_cpu_s")
        }
    rss_growth = None
    if "1000000" in summary and "4000000" in summary:
        rss_growth = (
            summary["4000000"]["executor"]["peak_rss_mb"]
            / summary["1000000"]["executor"]["peak_rss_mb"]
            - 1
        )

    results = {
        "command": command,
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine_facts(),
        "code": code_before,
        "code_changed_during_run": (
            code_version()["components_fingerprint"] != code_before["components_fingerprint"]
        ),
        "load_before": load_before,
        "load_after": _load(),
        "reps": reps,
        "sizes": list(sizes),
        "headline": headline,
        "data": {
            n: {"bytes": item["bytes"], "generated_s": item.get("generated_s")}
            for n, item in data["sizes"].items()
        },
        "generation_s": generation_s,
        "summary": summary,
        "ratios": ratios,
        "linear_fit": linear_fit,
        "rss_growth": rss_growth,
        "vocab": vocab,
        "detection": detection,
        "exact_every_rep": exact_every_rep,
        "runs": [{k: v for k, v in run.items() if k != "counts"} for run in runs],
    }
    results["total_s"] = time.perf_counter() - started
    results["targets"] = _targets(results)
    atomic_files.write_json(args.output, results, indent=1, sort_keys=True)
    table = markdown(results)
    print()
    print(table)
    if markdown_path:
        atomic_files.write_text(
            markdown_path,
            "# embedding-guard benchmark results\n\n"
            "Produced by `bench/run_bench.py`; see bench/README.md for what each run "
            "measures.\n\n" + table,
        )
        print(f"Tables written to {markdown_path}")
    print(f"All runs written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
