"""What to check, how to count it and how to write it down, with or without Beam.

`plan` resolves the bounds and the examples' kind before anything is read;
`count_shards` counts shards on every core of this process; `write_reports`
turns combined counts into each split's report files. `run_in_process` chains
them for `check`; `beam_pipeline.run` runs the same steps as a Beam pipeline for
the component and for distributed runners. Both take the run's `Plan` and its
`ValidatorOptions` whole, and open them only where the counting starts.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

from tensorflow_metadata.proto.v0 import schema_pb2

from embedding_guard import heavy_imports
from embedding_guard.bounds import resolve as bounds_lib
from embedding_guard.bounds.graph_derivation import DerivationKind
from embedding_guard.errors import InputError
from embedding_guard.read import files, places, reader
from embedding_guard.reports import report_io
from embedding_guard.run import examples_kind, offending_examples
from embedding_guard.run.options import ValidatorOptions
from embedding_guard.verdict import (
    core,
    example_count,
    findings,
    hash_load,
    proof_findings,
    provenance,
    remap_findings,
)
from embedding_guard.verdict.reasons import Severity
from embedding_guard.verdict.report_model import Finding, SplitReport, UncheckedFeature

if TYPE_CHECKING:
    from embedding_guard.bounds.transform_graph import TransformGraphInfo
    from embedding_guard.run.raw_mode import RawExamplesTransformer


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


# Set by `progress_listener` for the length of a run; see there.
_progress_callback: Callable[[str, int, bool], None] | None = None


@contextlib.contextmanager
def progress_listener(callback: Callable[[str, int, bool], None]) -> Iterator[None]:
    """Calls callback(shard, num_examples, shard_done) for every batch while the block runs.

    Only runners that read shards in this process (DirectRunner in-memory) call
    it; others show nothing. It feeds displays only, never a report.
    """
    global _progress_callback
    _progress_callback = callback
    try:
        yield
    finally:
        _progress_callback = None


def _notify(shard: str, num_examples: int, shard_done: bool = False) -> None:
    if _progress_callback is not None:
        _progress_callback(shard, num_examples, shard_done)


def count_shards(
    shards: Sequence[str],
    plan: Plan,
    options: ValidatorOptions,
    *,
    batch_size: int = reader.DEFAULT_BATCH_SIZE,
    max_batch_bytes: int = reader.DEFAULT_MAX_BATCH_BYTES,
) -> list[tuple[str, hash_load.SplitCounts]]:
    """Counts shards in this process on `options.parallelism` threads, without Beam.

    Calls the progress listener for every batch and once per finished shard.

    Args:
      shards: The shard files.
      plan: What to check and how to read it: the bounds, the raw-mode
        transform-graph applier and the hashed ranges whose bucket load is counted.
      options: The run's settings: the threads, the locator feature and how
        many whole offending records to keep per feature.
      batch_size: Most examples per parsed batch.
      max_batch_bytes: Most serialized bytes per parsed batch.

    Returns:
      (shard, its accumulator) for every distinct shard, in the order of shards.

    Raises:
      files.ShardError: A shard cannot be read.
    """
    examples_limit, locator_feature = options.offending_examples_limit, options.locator_feature
    by_shard: dict[str, hash_load.SplitCounts] = {}
    for shard in shards:
        by_shard[shard] = hash_load.SplitCounts(plan.bounds, plan.hashed, examples_limit)
    tallies: dict[str, Any] = {}
    for shard, batch in reader.read_shards(
        list(by_shard),
        [b.feature for b in plan.bounds],
        batch_size=batch_size,
        max_batch_bytes=max_batch_bytes,
        parallelism=options.parallelism,
        parse=plan.parse,
        keep_records=bool(examples_limit or locator_feature),
        tallies=tallies,
    ):
        if batch is None:
            by_shard[shard].shards[places.shard_name(shard)] = places.shard_read(
                shard, tallies[shard]
            )
            _notify(shard, 0, shard_done=True)
            continue
        place = places.batch_place(shard, batch, locator_feature)
        _notify(shard, batch.num_examples)
        accumulator = by_shard[shard]
        accumulator.add_examples(batch.num_examples)
        for name, (values, row_lengths) in batch.columns.items():
            raw_values, raw_row_lengths = batch.raw_columns.get(name, (None, None))
            accumulator.features[name].add_batch(
                values, row_lengths, raw_values, raw_row_lengths, place
            )
            accumulator.add_raw(name, values, row_lengths, raw_values, raw_row_lengths)
    return list(by_shard.items())


def write_reports(
    split_counts: list[tuple[str, core.SplitAccumulator]],
    output_dirs: dict[str, str],
    baseline: schema_pb2.Schema | None,
    plan: Plan,
    options: ValidatorOptions,
) -> None:
    """Builds every split's report from its combined counts and writes its files.

    Args:
      split_counts: (split, its combined counts) for every split.
      output_dirs: Split name -> the folder its files go to; its keys are the
        run's splits (the OOV drift's baseline is chosen among them).
      baseline: The schema written into each Anomalies proto.
      plan: The run's plan: unchecked features, run findings, the gate, the
        statistics to compare with, the examples kind.
      options: The run's settings (OOV thresholds and the severities).
    """
    policy = options.oov_policy(list(output_dirs))
    statistics = plan.statistics
    reports = findings.build_reports(
        dict(split_counts),
        policy,
        unchecked_features=plan.unchecked,
        run_findings=plan.run_findings,
        gate=plan.gate,
        unchecked_severity=Severity(options.unchecked_severity),
    )
    # The records framed in every shard (read_counts), as statistics count examples.
    counted = {
        split: sum(s.records for s in counts.shards.values())
        if counts.shards
        else counts.num_examples
        for split, counts in split_counts
    }
    reports = proof_findings.with_proofs(
        reports,
        {}
        if statistics is None
        else example_count.compare(
            statistics,
            counted,
            plan.all_splits or list(counted),
            plan.examples_kind is examples_kind.ExamplesKind.RAW,
        ),
        {
            split: counts.hash_load_results()
            for split, counts in split_counts
            if isinstance(counts, hash_load.SplitCounts)
        },
        options.max_hash_collision_share,
    )
    reports = remap_findings.with_remaps(
        reports, dict(split_counts), Severity(options.vocabulary_remapped_severity)
    )
    reports = provenance.with_provenance(reports, dict(split_counts))
    # index_report.json, written last, marks a split's report as complete. Dropping
    # every stale one first means a crash mid-write cannot leave an earlier run's
    # report beside this run's files, or beside another split's newer report.
    for split in reports:
        report_io.discard_report(output_dirs[split])
    offending_examples.write_all(split_counts, output_dirs)
    for split, report in sorted(reports.items()):
        report_io.write_split_report(output_dirs[split], report, baseline)


def read_reports(jobs: Sequence[SplitJob]) -> dict[str, SplitReport]:
    """Split name -> the split's report, read back from its output folder."""
    return {job.name: report_io.read_split_report(job.output_dir) for job in jobs}


def run_in_process(
    jobs: Sequence[SplitJob],
    plan: Plan,
    options: ValidatorOptions | None = None,
    *,
    baseline: schema_pb2.Schema | None = None,
    batch_size: int = reader.DEFAULT_BATCH_SIZE,
) -> dict[str, SplitReport]:
    """Validates every split in this process, on every core, without Beam.

    The same counting, merging and report writing as the Beam pipeline
    (beam_pipeline.run), minus Beam's start-up: what `check` and the Python API
    use unless Beam options are given. Arguments are those of beam_pipeline.run,
    without the pipeline.

    Returns:
      Split name -> the split's report, read back from its output folder.
    """
    options = options or ValidatorOptions()
    split_counts: list[tuple[str, core.SplitAccumulator]] = []
    for job in jobs:
        merged = hash_load.SplitCounts(plan.bounds, plan.hashed)
        for _shard, accumulator in count_shards(job.shards, plan, options, batch_size=batch_size):
            merged.merge(accumulator)
        split_counts.append((job.name, merged))
    write_reports(split_counts, {job.name: job.output_dir for job in jobs}, baseline, plan, options)
    return read_reports(jobs)


def list_split_shards(split_uris: Mapping[str, str]) -> dict[str, tuple[str, ...]]:
    """Lists each split's shards, once for the whole run: on GCS or S3 a listing is a round trip.

    Raises:
      files.ShardError: A split folder is missing, holds a folder or a special
        file, or holds no shard file. Writers (Beam's WriteToTFRecord, so
        ExampleGen and Transform) leave at least one, possibly empty, shard, so an
        empty folder means lost or unfinished files.
    """
    split_shards = {}
    for name, uri in split_uris.items():
        shards = tuple(files.list_shards(uri))
        if not shards:
            raise files.ShardError(
                f"Split folder {uri!r} holds no shard files (folders inside it are not "
                "shards). Its files were deleted or are still being written: re-run the "
                "component that wrote the examples."
            )
        split_shards[name] = shards
    return split_shards


def split_jobs(
    split_shards: Mapping[str, Sequence[str]], output_dirs: Mapping[str, str]
) -> list[SplitJob]:
    """One job per split: its shards (`list_split_shards`) and its output folder."""
    return [
        SplitJob(name, tuple(shards), output_dirs[name]) for name, shards in split_shards.items()
    ]


@dataclasses.dataclass(frozen=True)
class Plan:
    """What to check and how to read it, worked out before Beam starts.

    Attributes:
      bounds: Bounds of the checked features.
      examples_kind: TRANSFORMED or RAW.
      parse: The transform-graph applier in raw mode, else None.
      unchecked: Integer features that have no bound and are not checked, with
        why and the parameter that would check them (for the report).
      run_findings: Findings about the configuration rather than the values (a
        model lookup no check covers), added to their split's report.
      gate: The stage the run gates: "Trainer", or "Pusher" when a trained
        model was given.
      hashed: In raw mode, the hashed ranges whose bucket load is counted.
      statistics: Statistics of the same examples to check the counts against.
      all_splits: Every split the examples hold, read or not; empty: those read.
    """

    bounds: tuple[core.FeatureBounds, ...]
    examples_kind: examples_kind.ExamplesKind
    parse: RawExamplesTransformer | None
    unchecked: tuple[UncheckedFeature, ...] = ()
    run_findings: tuple[Finding, ...] = ()
    gate: str = "Trainer"
    hashed: tuple[hash_load.HashedRange, ...] = ()
    statistics: example_count.StatisticsCounts | None = None
    all_splits: tuple[str, ...] = ()


def plan(
    split_shards: Mapping[str, Sequence[str]],
    schema: schema_pb2.Schema,
    options: ValidatorOptions | None = None,
    *,
    graph: TransformGraphInfo | None = None,
    model_input_dims: Mapping[str, int] | None = None,
    looked_up: Iterable[str] | None = None,
    option_names: Mapping[str, str] | None = None,
) -> Plan:
    """Resolves bounds and decides whether the examples are raw or transformed.

    Args:
      split_shards: Split name -> its shards (`list_split_shards`).
      schema: The transformed schema: the graph's, or a user schema with
        int_domains used instead of it.
      options: The run's settings; default: ValidatorOptions().
      graph: The transform graph (`transform_graph.load_transform_graph`): its
        vocabularies and derivations give bounds, and its raw schema and graph
        let raw examples be validated. None when only a schema gives bounds.
      model_input_dims: Feature -> the model's embedding table size, for the
        features whose size options.embedding_input_dims does not give.
      looked_up: The features a given model looks up; None without a model.
        With a model, the run gates the Pusher, and an integer feature the
        model never looks up is listed as such, not as not checked.
      option_names: Setting -> how the caller spells it, for the hints of the
        unchecked features (CLI flags in the CLI).

    Returns:
      The plan.

    Raises:
      InputError: Bounds cannot be resolved or the examples fit neither schema.
    """
    options = options or ValidatorOptions()
    derivations = graph.derivations if graph is not None else None
    raw_schema = graph.raw_schema if graph is not None else None
    # The one place the settings are opened for bounds/, which sits below run/
    # and so cannot know ValidatorOptions.
    feature_bounds = tuple(
        bounds_lib.resolve_bounds(
            schema,
            graph.vocabulary_sizes if graph is not None else {},
            features=options.features,
            # The parameter wins over the model's table size.
            embedding_input_dims={**(model_input_dims or {}), **options.embedding_input_dims},
            feature_vocabularies=options.feature_vocabularies,
            derivations=derivations,
            names=option_names,
        )
    )
    unchecked = tuple(
        bounds_lib.unchecked_features(
            schema,
            feature_bounds,
            derivations,
            features=options.features,
            looked_up=looked_up,
            names=option_names,
        )
    )
    gate = "Trainer" if looked_up is None else "Pusher"
    present = reader.check_record_format(split_shards, [b.feature for b in feature_bounds])
    kind = examples_kind.detect_kind(
        options.examples_kind,
        present,
        schema,
        raw_schema,
        (option_names or {}).get("examples_kind", "examples_kind"),
    )
    _check_locator_feature(
        options.locator_feature,
        kind,
        schema if kind is examples_kind.ExamplesKind.TRANSFORMED else raw_schema,
        present,
        (option_names or {}).get("locator_feature", "locator_feature"),
    )
    if kind is examples_kind.ExamplesKind.TRANSFORMED:
        return Plan(feature_bounds, kind, None, unchecked, gate=gate)
    raw_sources = {}
    for b in feature_bounds:
        source = b.raw_feature or examples_kind.raw_source_feature(
            b.feature, b.vocabulary, raw_schema
        )
        if source is not None:
            raw_sources[b.feature] = source
    needed = None
    if all(b.raw_features for b in feature_bounds):
        needed = {name for b in feature_bounds for name in b.raw_features}
    # Only raw examples need TensorFlow and TFT: imported here, not with this module.
    heavy_imports.tensorflow_transform()
    from embedding_guard.run import raw_mode  # noqa: PLC0415

    transformer = raw_mode.RawExamplesTransformer(
        # detect_kind says RAW only with a raw schema, and only a transform graph
        # gives one.
        cast("TransformGraphInfo", graph).uri,
        [b.feature for b in feature_bounds],
        raw_sources,
        present,
        needed_raw_features=needed,
        missing_keys={
            name: derivation.missing_key
            for name, derivation in (derivations or {}).items()
            if derivation.missing_key is not None
        },
    )
    transformer.check_applicable()
    hashed = tuple(
        hashed_range
        for b in feature_bounds
        if b.feature in raw_sources
        for hashed_range in [_hashed_range((derivations or {}).get(b.feature))]
        if hashed_range is not None
    )
    return Plan(feature_bounds, kind, transformer, unchecked, gate=gate, hashed=hashed)


def _check_locator_feature(
    locator_feature: str | None,
    kind: examples_kind.ExamplesKind,
    schema: schema_pb2.Schema | None,
    present: set[str] | None,
    setting: str,
) -> None:
    """Refuses a locator feature the examples read cannot hold: a misspelt name locates nothing.

    Valid names are those of the schema of the examples read (the raw schema in
    raw mode) and those of their first record, since a user schema may list only
    the checked features.

    Raises:
      InputError: locator_feature names neither.
    """
    if locator_feature is None:
        return
    valid = set(present or ()) | {proto.name for proto in (schema.feature if schema else ())}
    if locator_feature in valid:
        return
    raw = kind is examples_kind.ExamplesKind.RAW
    raise InputError(
        f"{setting} {locator_feature!r} is not a feature of the {kind.value} examples read; "
        f"their features: {sorted(valid)!r}. Name one of them"
        + (" (raw examples are located by a raw feature)" if raw else "")
        + ", or leave it out."
    )


def _hashed_range(derivation: Any) -> hash_load.HashedRange | None:
    """The indices of a graph output that are hash buckets: a hash, or OOV buckets."""
    if derivation is None or not derivation.integer:
        return None
    if derivation.kind is DerivationKind.HASH and derivation.num_buckets:
        return hash_load.HashedRange(
            derivation.feature, hash_load.HASH, derivation.offset, derivation.num_buckets
        )
    if (
        derivation.kind is DerivationKind.VOCABULARY
        and derivation.num_oov_buckets
        and derivation.vocab_size is not None
    ):
        return hash_load.HashedRange(
            derivation.feature,
            hash_load.OOV_BUCKETS,
            derivation.offset + derivation.vocab_size,
            derivation.num_oov_buckets,
        )
    return None
