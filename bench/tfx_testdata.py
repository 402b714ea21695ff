"""Benchmark: the `embedding-guard` console script, whole process, on TFX's shipped data.

Usage (from the repository root):

    .venv/bin/python bench/tfx_testdata.py                  # 5 repetitions
    .venv/bin/python bench/tfx_testdata.py --reps 3 --components /path/to/checkout/components
    .venv/bin/python bench/tfx_testdata.py --reps 3 --scale 1000000

Zero configuration on the files inside the tfx wheel: the TF1-style taxi
transform_graph with its transformed_examples (transformed mode) and with the
raw csv_example_gen examples (raw mode: the graph applied to 12 + 12 gzip shards).
Each repetition is a fresh process started as the console script starts
(`console_main`), from process start to exit, which is what a user waits for.
The two runs are interleaved. --components runs another checkout's package, for
a before/after on the same machine; the counts must agree across checkouts.

With --scale N, raw mode also runs on N examples: csv_example_gen's train split
(9,909 records) repeated in order into 8 gzip shards, written once under
bench/_data/. It runs pinned to one CPU (`taskset -c 0`) and on every CPU, and
its company_xf counts must equal the ones counted here without embedding-guard:
each record's company (none counts as '') looked up in the graph's vocabulary file.
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

import cores
import synthetic_data
import tfx
from google.protobuf import message

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
DEFAULT_COMPONENTS = os.path.join(os.path.dirname(BENCH_DIR), "components")
TESTDATA = os.path.join(os.path.dirname(tfx.__file__), "components", "testdata")
GRAPH = os.path.join(TESTDATA, "transform", "transform_graph")
RUNS = {
    "transformed": os.path.join(TESTDATA, "transform", "transformed_examples"),
    "raw": os.path.join(TESTDATA, "csv_example_gen"),
}
CONSOLE_SCRIPT = "from embedding_guard.cli.main import console_main; console_main()"
RAW_TRAIN = os.path.join(RUNS["raw"], "Split-train")
# The vocabulary company_xf is looked up in (TFT's default name for the second one).
COMPANY_VOCABULARY = os.path.join(
    GRAPH, "transform_fn", "assets", "vocab_compute_and_apply_vocabulary_1_vocabulary"
)
SCALED_SHARDS = 8
DATA_DIR = os.path.join(BENCH_DIR, "_data")


def _company_counts(stdout: str) -> dict:
    reports = json.loads(stdout)
    counts = {}
    for split, report in sorted(reports.items()):
        if split.startswith("_"):
            continue  # the run's verdict (`_verdict`), not a split
        feature = next(f for f in report["features"] if f["feature"] == "company_xf")
        counts[split] = (feature["counts"]["in_vocab"], feature["counts"]["oov"])
    return counts


def measure(
    examples: str, components: str, prefix: tuple[str, ...] = ()
) -> tuple[float, float, dict]:
    """Runs one zero-configuration check.

    Returns:
      (wall seconds, peak RSS in MB, company_xf (in vocab, OOV) per split).
    """
    env = dict(os.environ, PYTHONPATH=components, TF_CPP_MIN_LOG_LEVEL="3")
    command = [*prefix, sys.executable, "-c", CONSOLE_SCRIPT, "check"]
    command += ["--transform-graph", GRAPH, "--examples", examples, "--json"]
    with tempfile.TemporaryDirectory(prefix="eg-bench-tfx-") as scratch:
        command += ["--output", os.path.join(scratch, "out")]
        with open(os.path.join(scratch, "stderr"), "w+") as stderr:
            started = time.perf_counter()
            child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr, env=env)
            stdout = child.stdout.read()
            child.stdout.close()
            # wait4, for the child's own peak RSS.
            _, status, usage = os.wait4(child.pid, 0)
            wall = time.perf_counter() - started
            child.returncode = os.waitstatus_to_exitcode(status)
            stderr.seek(0)
            if child.returncode != 0:
                raise RuntimeError(f"{command} exited {child.returncode}: {stderr.read()[-2000:]}")
    return wall, usage.ru_maxrss / 1024, _company_counts(stdout)


def _company(record: bytes) -> bytes:
    import tensorflow as tf

    try:
        feature = tf.train.Example.FromString(record).features.feature
    except message.DecodeError as error:
        raise RuntimeError(f"a record of {RAW_TRAIN} is not a tf.Example: {error}") from error
    values = feature["company"].bytes_list.value if "company" in feature else []
    return values[0] if values else b""


def scaled_raw_examples(num_examples: int) -> tuple[str, tuple[int, int]]:
    """Writes (once) num_examples raw taxi examples; returns (folder, company_xf truth).

    Record k is the train split's record k mod 9,909, so the truth is the shipped
    records' counts, repeated.
    """
    import tensorflow as tf

    shards = sorted(os.path.join(RAW_TRAIN, name) for name in os.listdir(RAW_TRAIN))
    records = [r.numpy() for r in tf.data.TFRecordDataset(shards, compression_type="GZIP")]
    with open(COMPANY_VOCABULARY, "rb") as f:
        vocabulary = set(f.read().splitlines())
    in_vocab = [_company(record) in vocabulary for record in records]
    repeats, rest = divmod(num_examples, len(records))
    truth_in_vocab = repeats * sum(in_vocab) + sum(in_vocab[:rest])
    truth = (truth_in_vocab, num_examples - truth_in_vocab)
    folder = os.path.join(DATA_DIR, f"taxi_raw_{num_examples}")
    marker = os.path.join(folder, "generated.json")
    identity = {"num_examples": num_examples, "num_shards": SCALED_SHARDS, "source": RAW_TRAIN}
    if synthetic_data.is_complete(marker, identity):
        return folder, truth
    partial = folder + ".partial"
    shutil.rmtree(partial, ignore_errors=True)
    os.makedirs(os.path.join(partial, "Split-train"))
    options = tf.io.TFRecordOptions(compression_type="GZIP")
    per_shard = -(-num_examples // SCALED_SHARDS)
    for shard in range(SCALED_SHARDS):
        name = f"data_tfrecord-{shard:05d}-of-{SCALED_SHARDS:05d}.gz"
        with tf.io.TFRecordWriter(os.path.join(partial, "Split-train", name), options) as w:
            for k in range(shard * per_shard, min(num_examples, (shard + 1) * per_shard)):
                w.write(records[k % len(records)])
    with open(os.path.join(partial, "generated.json"), "w") as f:
        json.dump(identity, f)
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(partial, folder)
    return folder, truth


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument(
        "--components",
        default=DEFAULT_COMPONENTS,
        help="the components/ folder whose embedding_guard to run (default: this checkout's)",
    )
    parser.add_argument(
        "--scale",
        type=int,
        metavar="N",
        help="also run raw mode on N examples made of the train split, on 1 CPU and on all",
    )
    args = parser.parse_args(argv)
    if args.reps < 1:
        parser.error(f"--reps must be at least 1, got {args.reps!r}")
    if not os.path.isdir(os.path.join(args.components, "embedding_guard")):
        parser.error(f"--components {args.components!r} holds no embedding_guard package")
    if args.scale is not None and args.scale < 1:
        parser.error(f"--scale must be at least 1, got {args.scale!r}")
    if args.scale and shutil.which(cores.PINNED[0]) is None:
        parser.error("--scale needs taskset (util-linux) to pin a run to one CPU")
    # run -> (examples, command prefix, company_xf counts it must give, if known)
    runs: dict[str, tuple[str, tuple[str, ...], dict | None]] = {
        kind: (examples, (), None) for kind, examples in RUNS.items()
    }
    truth = None
    if args.scale:
        scaled, truth = scaled_raw_examples(args.scale)
        runs[f"raw {args.scale:,}, 1 CPU"] = (scaled, cores.PINNED, {"train": truth})
        runs[f"raw {args.scale:,}, all CPUs"] = (scaled, (), {"train": truth})
    results: dict[str, list[tuple[float, float]]] = {kind: [] for kind in runs}
    counts: dict[str, dict] = {}
    for _ in range(args.reps):
        for kind, (examples, prefix, expected) in runs.items():
            wall, peak_rss_mb, company = measure(examples, args.components, prefix)
            if expected is not None and company != expected:
                raise RuntimeError(f"{kind}: company_xf {company}, the records give {expected}")
            results[kind].append((wall, peak_rss_mb))
            counts[kind] = company
            print(
                f"{kind:22s} wall {wall:.2f} s  peak RSS {peak_rss_mb:.0f} MB  "
                f"company_xf (in vocab, OOV) {company}",
                flush=True,
            )
    print(f"\ncomponents: {args.components}; medians of {args.reps} fresh processes")
    print("| run | wall s (median) | min-max | peak RSS MB | company_xf in vocab / OOV |")
    print("|---|---|---|---|---|")
    for kind, values in results.items():
        walls = [wall for wall, _ in values]
        peak = statistics.median(rss for _, rss in values)
        print(
            f"| {kind} | {statistics.median(walls):.2f} | {min(walls):.2f}-{max(walls):.2f} "
            f"| {peak:.0f} | {counts[kind]} |"
        )
    if truth:
        print(f"company_xf counted from the records: train {truth} (every scaled run agreed)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
