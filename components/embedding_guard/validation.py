"""The Beam pipeline that counts every checked feature of every split.

Shards are the unit of work: each is read in large batches by one DoFn that
returns one accumulator, so memory is bounded by a batch and nothing per value
crosses Beam. Accumulators combine per split, and the combined result is written
as the split's report files from inside the pipeline, so the same code runs on
DirectRunner, Dataflow, Flink and Spark.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import apache_beam as beam
from tensorflow_metadata.proto.v0 import schema_pb2

from embedding_guard import core, reader, report_io


@dataclasses.dataclass(frozen=True)
class SplitJob:
    """One split to validate.

    Attributes:
      name: Split name.
      shards: The split's shard files.
      output_dir: Where the split's report files go.
    """

    name: str
    shards: tuple[str, ...]
    output_dir: str


class _CountShard(beam.DoFn):
    """Reads one shard batch by batch and emits its partial counts."""

    def __init__(self, bounds: Sequence[core.FeatureBounds], batch_size: int):
        self._bounds = tuple(bounds)
        self._features = [b.feature for b in bounds]
        self._batch_size = batch_size

    def process(self, shard: str):
        accumulator = core.SplitAccumulator(self._bounds)
        for batch in reader.read_batches(shard, self._features, self._batch_size):
            accumulator.add_examples(batch.num_examples)
            for name, (values, row_lengths) in batch.columns.items():
                accumulator.features[name].add_batch(values, row_lengths)
        yield accumulator


class _MergeSplit(beam.CombineFn):
    """Merges the shards' partial counts of one split."""

    def __init__(self, bounds: Sequence[core.FeatureBounds]):
        self._bounds = tuple(bounds)

    def create_accumulator(self):
        return core.SplitAccumulator(self._bounds)

    def add_input(self, accumulator, shard_counts):
        return accumulator.merge(shard_counts)

    def merge_accumulators(self, accumulators):
        accumulators = iter(accumulators)
        merged = next(accumulators)
        for accumulator in accumulators:
            merged.merge(accumulator)
        return merged

    def extract_output(self, accumulator):
        return accumulator


def _write_report(
    accumulator: core.SplitAccumulator,
    split: str,
    output_dir: str,
    baseline: schema_pb2.Schema | None,
) -> str:
    report = core.split_report(split, accumulator)
    report_io.write_split_report(output_dir, report, baseline)
    return output_dir


def add_split_validation(
    pipeline: beam.Pipeline,
    job: SplitJob,
    bounds: Sequence[core.FeatureBounds],
    baseline: schema_pb2.Schema | None = None,
    batch_size: int = reader.DEFAULT_BATCH_SIZE,
):
    """Adds the counting and report writing of one split to a Beam pipeline.

    Args:
      pipeline: The Beam pipeline.
      job: The split to validate.
      bounds: Bounds of the checked features.
      baseline: The schema written into the split's Anomalies proto.
      batch_size: Examples per parsed batch.

    Returns:
      The PCollection holding the split's output folder once it is written.
    """
    return (
        pipeline
        | f"ListShards[{job.name}]" >> beam.Create(list(job.shards))
        # Spreads shards over workers on distributed runners.
        | f"Reshuffle[{job.name}]" >> beam.Reshuffle()
        | f"CountShard[{job.name}]" >> beam.ParDo(_CountShard(bounds, batch_size))
        | f"MergeSplit[{job.name}]" >> beam.CombineGlobally(_MergeSplit(bounds))
        | f"WriteReport[{job.name}]" >> beam.Map(_write_report, job.name, job.output_dir, baseline)
    )


def run(
    jobs: Sequence[SplitJob],
    bounds: Sequence[core.FeatureBounds],
    pipeline: beam.Pipeline,
    baseline: schema_pb2.Schema | None = None,
    batch_size: int = reader.DEFAULT_BATCH_SIZE,
) -> dict[str, dict]:
    """Validates every split in one Beam pipeline and reads back the reports.

    Args:
      jobs: The splits to validate.
      bounds: Bounds of the checked features.
      pipeline: An unstarted Beam pipeline; it is run and waited for here.
      baseline: The schema written into each Anomalies proto.
      batch_size: Examples per parsed batch.

    Returns:
      Split name -> the split's index_report.json content.
    """
    with pipeline:
        for job in jobs:
            add_split_validation(pipeline, job, bounds, baseline, batch_size)
    return {job.name: report_io.read_report_json(job.output_dir) for job in jobs}


def split_jobs(split_uris: Mapping[str, str], output_dirs: Mapping[str, str]) -> list[SplitJob]:
    """Lists each split's shards; raises reader.ShardError for a missing folder."""
    return [
        SplitJob(name, tuple(reader.list_shards(uri)), output_dirs[name])
        for name, uri in split_uris.items()
    ]


def blocked_summary(reports: Mapping[str, dict], limit: int = 20) -> str:
    """Summarises the ERROR findings of reports, one line each, for errors and logs."""
    lines = []
    for split in sorted(reports):
        for feature in reports[split]["features"]:
            for finding in feature["findings"]:
                if finding["severity"] != core.Severity.ERROR.value:
                    continue
                samples = ", ".join(
                    f"{s['value']!r} x{s['count']}" for s in finding["sample_values"]
                )
                lines.append(
                    f"  split {split!r} feature {finding['feature']!r}: {finding['reason']} "
                    f"{finding['count']} of {feature['counts']['num_values']} values"
                    + (f" (top: {samples})" if samples else "")
                )
    if len(lines) > limit:
        lines = lines[:limit] + [f"  ... and {len(lines) - limit} more"]
    return "\n".join(lines)
