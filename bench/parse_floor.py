"""`check` against its floors: the compiled parser, TensorFlow's parser, `gzip -dc`, start-up.

```sh
.venv/bin/python bench/parse_floor.py --reps 3 --markdown /tmp/parse_floor.md
```

On the cached 1M synthetic split (bench/synthetic_data.py, 8 gzip shards), each
repetition runs, interleaved and each in a fresh process:

- `gzip`: `gzip -dc` of the 8 shards, on every CPU (`xargs -P`), into /dev/null:
  the floor of any reader of these files;
- `limit`: TensorFlow's parse-only reader on every CPU (measure.py `limit`);
- `cli`: `check --schema` in-process, records parsed by the compiled parser;
- `cli_tf_parse`: the same with the compiled parser off (TensorFlow parses,
  imported on the first batch: its import falls in the work);

and on the 3-split test data (tests/component/testdata), each the console
script from start to exit, or a bare interpreter:

- `tiny`: `embedding-guard check --transform-graph ... --examples ...`;
- `import_tf`: `python -c "import tensorflow"`;
- `light_imports`: the main imports of a check, which imports no TensorFlow
  (numpy, absl, protobuf, tensorflow_metadata's Schema, tensorboard's GraphDef
  protos, TFX's local filesystem and the compiled parser).

Every figure goes with the 1-minute load average read just before it. Ratios
are taken against measurements of the same repetition, then their median.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import cores
import run_bench

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(BENCH_DIR)
TESTDATA = os.path.join(REPO, "tests", "component", "testdata")
CONSOLE_SCRIPT = os.path.join(os.path.dirname(sys.executable), "embedding-guard")
LIGHT_IMPORTS = (
    "import numpy, absl.logging, google.protobuf.text_format; "
    "from tensorflow_metadata.proto.v0 import schema_pb2; "
    "from tensorboard.compat.proto import meta_graph_pb2, graph_pb2; "
    "import tfx.dsl.io.plugins.local; "
    "from embedding_guard.read import example_parsing; "
    "import sys; assert 'tensorflow' not in sys.modules, 'TensorFlow was imported'"
)
SIZE = 1_000_000
TARGET_TINY_S = 1.0
TARGET_OVER_GZIP = 2.0


def _load() -> float:
    return os.getloadavg()[0]


def _timed(command: list[str], env: dict | None = None) -> dict:
    """Wall and CPU time of a fresh process; raises if it fails (exit 1 = blocked is fine)."""
    load = _load()
    started = time.perf_counter()
    child = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, text=True
    )
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - started
    code = os.waitstatus_to_exitcode(status)
    if code not in (0, 1):
        raise RuntimeError(f"{command} exited {code}: {child.stderr.read()[-2000:]}")
    child.stderr.close()
    return {"wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime, "load": load}


def gzip_floor(shards: list[str]) -> dict:
    cpus = str(len(os.sched_getaffinity(0)))
    command = ["sh", "-c", f"printf '%s\\n' \"$@\" | xargs -P {cpus} -n 1 gzip -dc > /dev/null"]
    return _timed([*command, "gzip_floor", *shards])


def measure(mode: str, examples: str, graph: str, log_dir: str, truth: dict) -> dict:
    load = _load()
    run = run_bench.run_measurement(mode, examples, graph, log_dir)
    run["load"] = load
    # Every count equal to the generator's truth, whichever parser read the examples.
    run["counts_exact"] = cores._counts_match(run, truth)
    return run


def _median(runs: list[dict], key: str) -> float:
    return statistics.median(run[key] for run in runs)


def summarize(results: dict) -> dict:
    reps = results["reps"]
    per_rep = [{mode: runs[i] for mode, runs in results["runs"].items()} for i in range(reps)]

    def ratio(numerator: str, denominator: str, key: str = "wall_s") -> float:
        return statistics.median(rep[numerator][key] / rep[denominator][key] for rep in per_rep)

    return {
        "cli_over_gzip_wall": ratio("cli", "gzip"),
        "cli_work_over_gzip_wall": statistics.median(
            rep["cli"]["work_s"] / rep["gzip"]["wall_s"] for rep in per_rep
        ),
        "cli_tf_parse_over_gzip_wall": ratio("cli_tf_parse", "gzip"),
        # CPU time varies far less than wall time on a shared machine.
        "cli_over_gzip_cpu": ratio("cli", "gzip", "cpu_s"),
        "cli_work_over_gzip_cpu": statistics.median(
            rep["cli"]["work_cpu_s"] / rep["gzip"]["cpu_s"] for rep in per_rep
        ),
        "cli_tf_parse_work_over_gzip_cpu": statistics.median(
            rep["cli_tf_parse"]["work_cpu_s"] / rep["gzip"]["cpu_s"] for rep in per_rep
        ),
        "cli_over_cli_tf_parse_work": ratio("cli", "cli_tf_parse", "work_s"),
        "cli_over_cli_tf_parse_work_cpu": ratio("cli", "cli_tf_parse", "work_cpu_s"),
        "cli_over_limit_wall": ratio("cli", "limit"),
        "tiny_wall": _median(results["runs"]["tiny"], "wall_s"),
        "tiny_over_import_tf": ratio("tiny", "import_tf"),
        "light_imports_wall": _median(results["runs"]["light_imports"], "wall_s"),
    }


def markdown(results: dict, summary: dict) -> str:
    lines = [
        f"{results['started']} - {results['ended']} UTC, {results['cpus']} CPUs, "
        f"{results['reps']} repetitions, interleaved; load average (1 min) before each "
        "measurement in the last column.",
        "",
        "| mode | what | wall s (median) | work s | work CPU s | CPU s | loads | counts exact |",
        "|---|---|---|---|---|---|---|---|",
    ]
    what = {
        "gzip": "`gzip -dc` of the 8 shards on every CPU",
        "limit": "TensorFlow's parse-only reader on every CPU",
        "cli": "`check --schema`, compiled parser",
        "cli_tf_parse": "`check --schema`, TensorFlow parses",
        "tiny": "`check --transform-graph` on the 3-split test data, console script",
        "import_tf": "`import tensorflow` alone",
        "light_imports": "the imports of a check without TensorFlow",
    }
    for mode, runs in results["runs"].items():
        cells = [
            f"{_median(runs, key):.2f}" if all(key in run for run in runs) else ""
            for key in ("wall_s", "work_s", "work_cpu_s", "cpu_s")
        ]
        loads = " ".join(f"{run['load']:.1f}" for run in runs)
        exact = (
            ("yes" if all(run["counts_exact"] for run in runs) else "NO")
            if "counts_exact" in runs[0]
            else ""
        )
        lines.append(f"| {mode} | {what[mode]} | {' | '.join(cells)} | {loads} | {exact} |")
    lines += [
        "",
        "| measure | value | target |",
        "|---|---|---|",
        f"| check whole process / gzip floor (wall) | {summary['cli_over_gzip_wall']:.2f} "
        f"| <= {TARGET_OVER_GZIP} |",
        f"| check work / gzip floor (wall) | {summary['cli_work_over_gzip_wall']:.2f} | |",
        f"| check whole process / gzip floor (CPU) | {summary['cli_over_gzip_cpu']:.2f} | |",
        f"| check work / gzip floor (CPU) | {summary['cli_work_over_gzip_cpu']:.2f} | |",
        f"| check work with TensorFlow parsing / gzip floor (CPU) | "
        f"{summary['cli_tf_parse_work_over_gzip_cpu']:.2f} | |",
        f"| check with TensorFlow parsing, whole process / gzip floor | "
        f"{summary['cli_tf_parse_over_gzip_wall']:.2f} | |",
        f"| check work, compiled / TensorFlow parser | {summary['cli_over_cli_tf_parse_work']:.2f}"
        " | |",
        f"| check work CPU, compiled / TensorFlow parser | "
        f"{summary['cli_over_cli_tf_parse_work_cpu']:.2f} | |",
        f"| check whole process / TensorFlow parse-only reader | "
        f"{summary['cli_over_limit_wall']:.2f} | |",
        f"| tiny check, whole process (s) | {summary['tiny_wall']:.2f} | < {TARGET_TINY_S} |",
        f"| tiny check / `import tensorflow` | {summary['tiny_over_import_tf']:.2f} | |",
        f"| imports of a check without TensorFlow (s) | {summary['light_imports_wall']:.2f} | |",
    ]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--data-dir", default=run_bench.DEFAULT_DATA_DIR)
    parser.add_argument("--output", default=os.path.join(BENCH_DIR, "results_parse_floor.json"))
    parser.add_argument("--markdown", help="also write the Markdown tables here")
    args = parser.parse_args(argv)
    command = [sys.executable, os.path.join(BENCH_DIR, "generate.py"), "--data-dir", args.data_dir]
    done = subprocess.run(
        [*command, "--sizes", str(SIZE)], capture_output=True, text=True, check=True
    )
    data = json.loads(done.stdout.strip().splitlines()[-1])
    examples = data["sizes"][str(SIZE)]["examples"]
    truth = data["sizes"][str(SIZE)]["truth"]
    graph = data["transform_graph"]
    shards = sorted(glob.glob(os.path.join(examples, "Split-train", "*")))
    tiny = [
        CONSOLE_SCRIPT,
        "check",
        "--transform-graph",
        os.path.join(TESTDATA, "transform_graph"),
        "--examples",
        os.path.join(TESTDATA, "transformed_examples"),
    ]
    quiet = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONWARNINGS="ignore")
    log_dir = tempfile.mkdtemp(prefix="eg-parse-floor-")
    results: dict = {
        "started": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
        "cpus": len(os.sched_getaffinity(0)),
        "reps": args.reps,
        "runs": {},
    }
    steps = {
        "gzip": lambda: gzip_floor(shards),
        "cli": lambda: measure("cli", examples, graph, log_dir, truth),
        "cli_tf_parse": lambda: measure("cli_tf_parse", examples, graph, log_dir, truth),
        "limit": lambda: measure("limit", examples, graph, log_dir, truth),
        "tiny": lambda: _timed(tiny, quiet),
        "import_tf": lambda: _timed([sys.executable, "-c", "import tensorflow"], quiet),
        "light_imports": lambda: _timed([sys.executable, "-c", LIGHT_IMPORTS], quiet),
    }
    for _ in range(args.reps):
        for mode, step in steps.items():
            run = step()
            results["runs"].setdefault(mode, []).append(run)
            print(f"{mode:14s} wall {run['wall_s']:.2f} s, load {run['load']:.1f}", file=sys.stderr)
    results["ended"] = time.strftime("%H:%M", time.gmtime())
    shutil.rmtree(log_dir, ignore_errors=True)
    summary = summarize(results)
    text = markdown(results, summary)
    run_bench.write_results(
        args.output, args.markdown, {"results": results, "summary": summary}, text
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
