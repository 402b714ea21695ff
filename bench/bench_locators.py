"""Benchmark: what locators and offending examples cost, measured with and without in one run.

Usage (from the repository root):

    .venv/bin/python bench/bench_locators.py            # 1,000,000 examples, 3 repetitions
    .venv/bin/python bench/bench_locators.py --examples 100000 --reps 1

The data is bench/synthetic_data.py's Transform output with 1% of every
categorical feature's values offending (-1 or past the bound) instead of 0.01%,
cached under bench/_data/locators/. Each repetition counts the split three ways,
interleaved so that a slow phase of a shared machine hits all of them alike:

  off       validation.count_shards with no BatchPlace: the core counts only
  locators  the default: every sample value located (shard, record, position)
  examples  locators plus 10 offending examples per feature (the reader keeps
            each batch's records for them)
  locator_feature  locators plus the value of a locator feature (a string id)

It prints wall and CPU seconds per mode (medians) and the overhead over `off`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from unittest import mock

import synthetic_data

from embedding_guard.read import files, places
from embedding_guard.run import validation
from embedding_guard.run.examples_kind import ExamplesKind
from embedding_guard.run.options import ValidatorOptions
from embedding_guard.verdict import core

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))

OFFENDING_RATE = 0.01
MODES = ("off", "locators", "examples", "locator_feature")


def _bounds() -> list[core.FeatureBounds]:
    return [
        core.FeatureBounds(
            spec.name,
            spec.upper_bound,
            spec.upper_bound,
            vocab_size=spec.vocab_size,
            num_oov_buckets=spec.num_oov_buckets,
        )
        for spec in synthetic_data.CATEGORICAL_FEATURES
    ]


def _count(shards: list[str], mode: str) -> tuple[float, float, core.SplitAccumulator]:
    bounds = _bounds()
    plan = validation.Plan(tuple(bounds), ExamplesKind.TRANSFORMED, None)
    options = ValidatorOptions()
    if mode == "examples":
        options = ValidatorOptions(offending_examples_limit=10)
    elif mode == "locator_feature":
        options = ValidatorOptions(locator_feature=synthetic_data.STRING_FEATURE)
    patch = (
        mock.patch.object(places, "batch_place", lambda *args, **kw: None)
        if mode == "off"
        else mock.patch.object(places, "batch_place", places.batch_place)
    )
    merged = core.SplitAccumulator(bounds)
    wall, cpu = time.perf_counter(), time.process_time()
    with patch:
        for _, accumulator in validation.count_shards(shards, plan, options):
            merged.merge(accumulator)
    return time.perf_counter() - wall, time.process_time() - cpu, merged


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=1_000_000)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--data-dir", default=os.path.join(BENCH_DIR, "_data", "locators"))
    args = parser.parse_args(argv)

    with mock.patch.object(synthetic_data, "BAD_VALUE_RATE", OFFENDING_RATE):
        data = synthetic_data.write_examples(args.data_dir, args.examples)
    shards = files.list_shards(data["split"])
    times: dict[str, list[tuple[float, float]]] = {mode: [] for mode in MODES}
    results = {}
    for _ in range(args.reps):
        for mode in MODES:
            wall, cpu, merged = _count(shards, mode)
            times[mode].append((wall, cpu))
            results[mode] = merged
    # The counts do not depend on the mode; only the locations and examples differ.
    counts = {
        mode: {n: a.result().negative + a.result().out_of_range for n, a in r.features.items()}
        for mode, r in results.items()
    }
    if any(counts[mode] != counts["off"] for mode in MODES):
        raise SystemExit(f"the modes counted differently: {counts!r}")
    bad = sum(counts["off"].values())
    values = sum(a.num_values for a in results["off"].features.values())
    print(
        f"{args.examples:,} examples, {values:,} values, {bad:,} offending ({bad / values:.2%}), "
        f"{len(shards)} shards, {args.reps} repetition(s), medians:"
    )
    base_wall = statistics.median(w for w, _ in times["off"])
    base_cpu = statistics.median(c for _, c in times["off"])
    print("| mode | wall s | CPU s | wall vs off | CPU vs off |")
    print("|---|---|---|---|---|")
    for mode in MODES:
        wall = statistics.median(w for w, _ in times[mode])
        cpu = statistics.median(c for _, c in times[mode])
        print(
            f"| {mode} | {wall:.2f} | {cpu:.2f} | {wall / base_wall - 1:+.1%} | "
            f"{cpu / base_cpu - 1:+.1%} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
