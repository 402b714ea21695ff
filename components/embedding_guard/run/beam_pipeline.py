"""The Beam pipeline that counts every checked feature of every split.

Shards are the unit of work: one DoFn reads a bundle's shards on every core of
its worker (validation.count_shards) and emits one accumulator per shard, so
memory is bounded by the batches in flight and nothing per value crosses Beam.
Accumulators combine per split, and the reports are written from inside the
pipeline, so the same code runs on DirectRunner, Dataflow, Flink and Spark.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import apache_beam as beam
from apache_beam.transforms import window
from tensorflow_metadata.proto.v0 import schema_pb2

from embedding_guard.read import reader
from embedding_guard.run import validation
from embedding_guard.run.options import ValidatorOptions
from embedding_guard.run.validation import Plan, SplitJob
from embedding_guard.verdict import core, hash_load
from embedding_guard.verdict.report_model import SplitReport


class _CountShard(beam.DoFn):
    """Counts the shards of a bundle on every core and emits one accumulator per shard.

    Shards are buffered until the bundle ends and then read together
    (reader.read_shards), so the in-memory DirectRunner, which hands one split's
    shards to one bundle, and any runner's worker use all their CPUs.

    Args:
      plan: What to check and how to read it (validation.plan).
      options: The run's settings; `parallelism` is the threads per worker
        (default: the CPUs the worker may use).
      batch_size: Most examples per parsed batch.
      max_batch_bytes: Most serialized bytes per parsed batch.
    """

    def __init__(
        self,
        plan: Plan,
        options: ValidatorOptions,
        batch_size: int,
        *,
        max_batch_bytes: int = reader.DEFAULT_MAX_BATCH_BYTES,
    ) -> None:
        self._plan = plan
        self._options = options
        self._batch_size = batch_size
        self._max_batch_bytes = max_batch_bytes
        self._shards: list[str] = []

    def start_bundle(self) -> None:
        self._shards = []

    def process(self, shard: str) -> tuple[()]:
        self._shards.append(shard)
        # Nothing to emit yet; an empty iterable rather than None keeps Beam quiet.
        return ()

    def finish_bundle(self) -> Iterator[Any]:
        started, started_cpu = time.time(), time.process_time()
        counted = self.count(self._shards)
        if self._shards:
            _record_count_time(started, started_cpu)
        for _shard, accumulator in counted:
            _record_read(accumulator)
            yield window.GlobalWindows.windowed_value(accumulator)
        self._shards = []

    def count(self, shards: Sequence[str]) -> list[tuple[str, hash_load.SplitCounts]]:
        """Counts shards; returns (shard, its accumulator) in the order of shards."""
        return validation.count_shards(
            shards,
            self._plan,
            self._options,
            batch_size=self._batch_size,
            max_batch_bytes=self._max_batch_bytes,
        )


class _MergeSplit(beam.CombineFn):
    """Merges the shards' partial counts of one split."""

    def __init__(
        self, bounds: Sequence[core.FeatureBounds], hashed: Sequence[hash_load.HashedRange] = ()
    ) -> None:
        self._bounds = tuple(bounds)
        self._hashed = tuple(hashed)

    def create_accumulator(self) -> core.SplitAccumulator:
        return hash_load.SplitCounts(self._bounds, self._hashed)

    def add_input(
        self, accumulator: core.SplitAccumulator, shard_counts: core.SplitAccumulator
    ) -> core.SplitAccumulator:
        return accumulator.merge(shard_counts)

    def merge_accumulators(
        self, accumulators: Iterable[core.SplitAccumulator]
    ) -> core.SplitAccumulator:
        accumulators = iter(accumulators)
        merged = next(accumulators)
        for accumulator in accumulators:
            merged.merge(accumulator)
        return merged

    def extract_output(self, accumulator: core.SplitAccumulator) -> core.SplitAccumulator:
        return accumulator


METRICS_NAMESPACE = "embedding_guard"
# What was read of the shards, as Beam metrics: counted where the shards are read.
READ_COUNTERS = ("records_read", "file_bytes_read", "record_bytes_read", "shards_read")


def _read_figures(split_counts: core.SplitAccumulator) -> dict[str, int]:
    shards = split_counts.shards.values()
    return {
        "records_read": sum(s.records for s in shards),
        "file_bytes_read": sum(s.file_bytes for s in shards),
        "record_bytes_read": sum(s.record_bytes for s in shards),
        "shards_read": len(shards),
    }


def _record_read(shard_counts: core.SplitAccumulator) -> None:
    """Counts the records and bytes a worker read of its shards as Beam metrics."""
    for name, figure in _read_figures(shard_counts).items():
        beam.metrics.Metrics.counter(METRICS_NAMESPACE, name).inc(figure)


# How long workers counted, as Beam distributions (milliseconds, one value per
# bundle): the busy time and CPU time per example that docs/scaling-out.md's cost
# model and bench/beam_cores.py read, without each worker's start-up.
COUNT_TIME_DISTRIBUTIONS = (
    "count_wall_msecs",
    "count_cpu_msecs",
    "count_started_unix_msecs",
    "count_finished_unix_msecs",
)


def _record_count_time(started: float, started_cpu: float) -> None:
    """Records one bundle's counting: wall and CPU time, and when it ran.

    CPU time is the worker process's (every thread's), so it includes what the
    runner's own threads did meanwhile.
    """
    finished = time.time()
    figures = (
        round((finished - started) * 1000),
        round((time.process_time() - started_cpu) * 1000),
        int(started * 1000),
        int(finished * 1000),
    )
    for name, figure in zip(COUNT_TIME_DISTRIBUTIONS, figures, strict=True):
        beam.metrics.Metrics.distribution(METRICS_NAMESPACE, name).update(figure)


def _record_metrics(split_counts: core.SplitAccumulator, split: str) -> core.SplitAccumulator:
    """Counts examples, values and bad values as Beam metrics, as TFDV's stats_impl does.

    Runners show them while the job runs (the Dataflow UI's counters) and the
    pipeline result carries them after it.
    """
    counter = beam.metrics.Metrics.counter
    counter(METRICS_NAMESPACE, "examples_read").inc(split_counts.num_examples)
    counter(METRICS_NAMESPACE, f"examples_read[{split}]").inc(split_counts.num_examples)
    # The split's combined read counts, which its report carries, beside the workers' ones.
    for name, figure in _read_figures(split_counts).items():
        counter(METRICS_NAMESPACE, f"{name}[{split}]").inc(figure)
    for accumulator in split_counts.features.values():
        counter(METRICS_NAMESPACE, "values_checked").inc(accumulator.num_values)
        for name in ("negative", "out_of_range", "over_embedding_dim", "non_integer"):
            counter(METRICS_NAMESPACE, f"bad_values[{name}]").inc(getattr(accumulator, name))
    return split_counts


def run(
    jobs: Sequence[SplitJob],
    plan: Plan,
    pipeline: beam.Pipeline,
    options: ValidatorOptions | None = None,
    *,
    baseline: schema_pb2.Schema | None = None,
    batch_size: int = reader.DEFAULT_BATCH_SIZE,
) -> dict[str, SplitReport]:
    """Validates every split in one Beam pipeline and reads back the reports.

    Splits are counted independently; their combined counts meet in one last step
    because OOV drift compares each split with the baseline split.

    Args:
      jobs: The splits to validate.
      plan: What to check and how to read it (validation.plan): the bounds, the
        raw-mode transformer, the unchecked features and the run's findings.
      pipeline: An unstarted Beam pipeline; it is run and waited for here.
      options: The run's settings, for the OOV thresholds and the threads
        reading shards on each worker; default: ValidatorOptions().
      baseline: The schema written into each Anomalies proto.
      batch_size: Examples per parsed batch.

    Returns:
      Split name -> the split's report, read back from its output folder.
    """
    options = options or ValidatorOptions()
    bounds = plan.bounds
    with pipeline:
        split_counts = []
        for job in jobs:
            split_counts.append(
                pipeline
                | f"ListShards[{job.name}]" >> beam.Create(list(job.shards))
                # Spreads shards over workers on distributed runners.
                | f"Reshuffle[{job.name}]" >> beam.Reshuffle()
                | f"CountShard[{job.name}]" >> beam.ParDo(_CountShard(plan, options, batch_size))
                | f"MergeSplit[{job.name}]"
                >> beam.CombineGlobally(_MergeSplit(bounds, plan.hashed))
                | f"Metrics[{job.name}]" >> beam.Map(_record_metrics, job.name)
                | f"KeyBySplit[{job.name}]"
                >> beam.Map(lambda counts, name: (name, counts), job.name)
            )
        _ = (
            split_counts
            | "FlattenSplits" >> beam.Flatten()
            | "GatherSplits" >> beam.combiners.ToList()
            | "WriteReports"
            >> beam.Map(
                validation.write_reports,
                {job.name: job.output_dir for job in jobs},
                baseline,
                plan,
                options,
            )
        )
    return validation.read_reports(jobs)
