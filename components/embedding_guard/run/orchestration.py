"""One validation run, shared by the executor, the CLI and the Python API.

Like ExampleValidator's artifact-free `_Validate`, this works on plain folders:
split folders in, report folders out. The executor resolves artifacts into
folders, the CLI resolves flags; both then call `validate`, so the component and
`embedding-guard check` cannot drift apart.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from absl import logging

from embedding_guard.errors import InputError
from embedding_guard.reports import text
from embedding_guard.run import remap_plan
from embedding_guard.run.options import ValidatorOptions
from embedding_guard.verdict import core, findings
from embedding_guard.verdict.report_model import SplitReport, UncheckedFeature, blocked_summary


@dataclasses.dataclass(frozen=True)
class ValidationResult:
    """What one run found.

    Attributes:
      reports: Split name -> the split's report, read back from this run's own
        output folders.
      bounds: The bounds every checked feature was checked against.
      examples_kind: "transformed" or "raw".
    """

    reports: Mapping[str, SplitReport]
    bounds: tuple[core.FeatureBounds, ...]
    examples_kind: str

    @property
    def blessed_by_split(self) -> dict[str, bool]:
        """Split name -> whether the split has no ERROR finding."""
        return {name: report.blessed for name, report in sorted(self.reports.items())}

    @property
    def blessed(self) -> bool:
        """True when no split has an ERROR finding."""
        return all(self.blessed_by_split.values())

    def summary(self, limit: int = 20) -> str:
        """The ERROR findings, one line each, for logs and error messages."""
        return blocked_summary(self.reports, limit)

    @property
    def gate(self) -> str:
        """The stage the run gates: "Trainer", or "Pusher" when a model was checked."""
        return next((r.gate for _, r in sorted(self.reports.items())), "Trainer")

    @property
    def coverage(self) -> str:
        """How many integer features were checked; the same in every split of a run."""
        return next((r.coverage for _, r in sorted(self.reports.items())), "")

    def unchecked(self, role: str = UncheckedFeature.NOT_CHECKED) -> tuple[UncheckedFeature, ...]:
        """The run's unchecked features of one role (by default, those not checked)."""
        return next((r.unchecked(role) for _, r in sorted(self.reports.items())), ())


def select_splits(
    available: Sequence[str],
    *,
    exclude_splits: Iterable[str] = (),
    only: Iterable[str] | None = None,
    source: str,
    exclude_setting: str = "exclude_splits",
    only_setting: str = "--split",
) -> list[str]:
    """Picks the splits to validate, in the order given.

    Args:
      available: The splits the examples have.
      exclude_splits: Splits to leave out; names the examples lack are logged.
      only: If set, validate just these (the CLI's --split).
      source: What holds the examples, as messages name it (e.g. "examples
        artifact '/a/b' (split_names '[]')").
      exclude_setting: How the caller spells exclude_splits.
      only_setting: How the caller spells `only`.

    Returns:
      The split names.

    Raises:
      InputError: `only` names a split the examples lack, or nothing is left.
    """
    available = list(available)
    if not available:
        raise InputError(
            f"{source} has no splits, so there is nothing to validate. Pass the examples "
            "written by ExampleGen or Transform (a folder of Split-<name> folders)."
        )
    all_splits, chosen = list(available), ""
    if only is not None:
        if isinstance(only, str):
            raise InputError(
                f"{only_setting}={only!r} must be a list of split names, e.g. "
                f"{only_setting}=[{only!r}]."
            )
        only = list(only)
        repeated = sorted({name for name in only if only.count(name) > 1})
        if repeated:
            raise InputError(f"{only_setting} names {repeated!r} more than once; name each once.")
        chosen = f" chosen by {only_setting} {only!r}"
        unknown = sorted(set(only) - set(available))
        if unknown:
            raise InputError(
                f"{only_setting} {unknown!r} not found in {source}; splits there: "
                f"{sorted(available)!r}."
            )
        available = [name for name in available if name in set(only)]
    exclude = list(exclude_splits)
    unknown_excluded = sorted(set(exclude) - set(available))
    if unknown_excluded:
        logging.warning(
            "%s names %r, which %s does not have; its splits are %r.",
            exclude_setting,
            unknown_excluded,
            source,
            available,
        )
    splits = [name for name in available if name not in set(exclude)]
    if not splits:
        raise InputError(
            f"{exclude_setting}={exclude!r} leaves no split{chosen} of {source} (splits: "
            f"{all_splits!r}) to validate; exclude fewer splits."
        )
    return splits


def validate(
    split_uris: Mapping[str, str],
    output_dirs: Mapping[str, str],
    options: ValidatorOptions,
    *,
    transform_graph: str | None = None,
    schema: Any = None,
    model: str | None = None,
    pipeline: Any = None,
    option_names: Mapping[str, str] | None = None,
    statistics: str | None = None,
    all_splits: Sequence[str] | None = None,
    baseline_transform_graph: str | None = None,
) -> ValidationResult:
    """Validates every split and writes each split's reports.

    Args:
      split_uris: Split name -> folder of its TFRecord shards.
      output_dirs: Split name -> folder for its SchemaDiff.pb and reports. They
        must belong to this run alone: the verdict is read back from them.
      options: Validated settings.
      transform_graph: Transform's transform_graph folder; gives the bounds and,
        for raw examples, the graph to apply.
      schema: A Schema proto used instead of the transform graph's transformed
        schema for int_domains (the component's `schema` input, the CLI's
        --schema).
      model: A trained model (SavedModel, or a TFX Model artifact folder) whose
        embedding tables give each feature's input_dim, unless
        embedding_input_dims names it.
      pipeline: An unstarted Beam pipeline (the executor's, or one built from
        Beam options); None counts in this process on every core instead.
      option_names: Setting -> how the caller spells it, for messages.
      statistics: Statistics of the same examples (StatisticsGen's statistics
        or Transform's post_transform_stats folder), whose num_examples the
        examples read must match. Without it, Transform's post-transform
        statistics of transform_graph are used when found beside it.
      all_splits: Every split the examples hold, read or not; default: the
        splits of split_uris. Transform's statistics count all of them together.
      baseline_transform_graph: The transform graph an earlier model was trained
        with; its vocabularies give each token's old row (else the model's
        transform layer does), for VOCABULARY_REMAPPED.

    Returns:
      The reports and the verdict.

    Raises:
      InputError: The inputs or settings cannot be used; the message says which.
    """
    from embedding_guard.run import validation

    if transform_graph is None and schema is None:
        raise InputError(
            "Nothing gives the bounds: pass a transform graph (Transform's transform_graph "
            "output), or a schema with int_domains."
        )
    graph = None
    if transform_graph is not None:
        # TensorFlow Transform (and tfx_bsl, tf_keras) only for a run that reads a graph.
        from embedding_guard.bounds import transform_graph as transform_graph_lib

        graph = transform_graph_lib.load_transform_graph(transform_graph)
        if schema is None:
            schema = graph.schema
    model_lookups: Mapping[str, Any] = {}
    if model is not None:
        from embedding_guard.bounds import model_analysis

        model_lookups = model_analysis.analyze_model(model).governing_lookups()
    schema_features = {proto.name for proto in schema.feature}
    model_input_dims, unchecked_lookups = _model_input_dims(
        model_lookups, options, schema_features, option_names
    )
    split_shards = validation.list_split_shards(split_uris)
    plan = validation.plan(
        split_shards,
        schema,
        options,
        graph=graph,
        model_input_dims=model_input_dims,
        # With a model the run gates the Pusher, and what it never looks up is no gap.
        looked_up=None if model is None else set(model_lookups),
        option_names=option_names,
    )
    plan = dataclasses.replace(
        plan,
        bounds=tuple(
            _with_dim_source(
                b, model_lookups.get(b.feature) if b.feature in model_input_dims else None
            )
            for b in plan.bounds
        ),
        run_findings=tuple(
            finding
            for feature, description in unchecked_lookups
            for finding in findings.model_lookup_unchecked(split_uris, feature, description)
        ),
        statistics=_statistics_counts(statistics, transform_graph, option_names, split_uris),
        all_splits=tuple(all_splits or split_uris),
    )
    plan = remap_plan.with_remaps(
        plan,
        graph,
        model=model,
        baseline_transform_graph=baseline_transform_graph,
        splits=list(split_uris),
        looked_up=None if model is None else set(model_lookups),
        option_names=option_names,
    )
    options.check_against_run(split_uris, [b.feature for b in plan.bounds], option_names)
    logging.info("Validating %s examples.", plan.examples_kind.value)
    for b in plan.bounds:
        logging.info(
            "Checking %s in [0, %d), embedding input_dim %d (%s).",
            b.feature,
            b.upper_bound,
            b.embedding_input_dim,
            text.bound_sources(b),
        )
    jobs = validation.split_jobs(split_shards, output_dirs)
    if pipeline is None:
        # In this process on every core: Beam would add its start-up and nothing else.
        reports = validation.run_in_process(jobs, plan, options, baseline=schema)
    else:
        from embedding_guard.run import beam_pipeline

        reports = beam_pipeline.run(jobs, plan, pipeline, options, baseline=schema)
    return ValidationResult(reports, plan.bounds, plan.examples_kind.value)


def _statistics_counts(
    statistics: str | None,
    transform_graph: str | None,
    option_names: Mapping[str, str] | None,
    splits: Iterable[str] = (),
) -> Any:
    """The example counts to check the examples read against, or None when none are at hand.

    Raises:
      InputError: The given statistics cannot be read, or are per split and
        have none of the validated splits (they would be silently unused).
    """
    from embedding_guard.read import statistics as statistics_io
    from embedding_guard.verdict import example_count

    if statistics is not None:
        setting = (option_names or {}).get("statistics", "statistics")
        counts = statistics_io.read_counts(statistics, setting)
        splits = sorted(splits)
        if counts.source == example_count.STATISTICS and not set(counts.by_split) & set(splits):
            raise InputError(
                f"{setting} {statistics!r} has statistics of splits {sorted(counts.by_split)!r}, "
                f"and none of the validated splits {splits!r}; pass the statistics of these "
                "examples (StatisticsGen's output for them), or leave it out."
            )
        return counts
    if transform_graph is not None:
        return statistics_io.transform_statistics(transform_graph)
    return None


def _model_input_dims(
    model_lookups: Mapping[str, Any],
    options: ValidatorOptions,
    schema_features: set[str],
    option_names: Mapping[str, str] | None = None,
) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Turns the model's tables into embedding input_dims; the parameter still wins.

    Returns:
      (feature -> the model's input_dim, for the features the model sizes, which
      are those options.embedding_input_dims leaves out; (feature, why) for each
      lookup that no check covers).
    """
    dims: dict[str, int] = {}
    unchecked: list[tuple[str, str]] = []
    for feature, lookup in sorted(model_lookups.items()):
        where = lookup.source_text()
        if feature in options.embedding_input_dims:
            continue
        if lookup.feature_input_dim is None:
            unchecked.append(
                (feature, f"The model looks up {feature!r} ({where}), but its size is unknown.")
            )
        elif feature not in schema_features:
            unchecked.append(
                (
                    feature,
                    f"The model looks up {feature!r} ({where}), which the transformed schema "
                    "does not have, so its values were not checked.",
                )
            )
        elif options.features is not None and feature not in options.features:
            unchecked.append(
                (
                    feature,
                    f"The model looks up {feature!r} ({where}), which "
                    f"{(option_names or {}).get('features', '`features`')} leaves out.",
                )
            )
        else:
            dims[feature] = lookup.feature_input_dim
    return dims, unchecked


def _with_dim_source(bounds: core.FeatureBounds, lookup: Any) -> core.FeatureBounds:
    """Records that the model's lookup gave a feature's embedding input_dim."""
    if lookup is None:
        return bounds
    model_fields: dict[str, Any] = {
        "embedding_dim_kind": "model",
        "embedding_dim_source": lookup.source_text(),
        "model_lookup_kind": lookup.lookup_kind,
        "model_layer": lookup.layer_name or lookup.op_name,
        "model_on_negative": lookup.on_negative.value,
        "model_on_too_large": lookup.on_too_large.value,
        # One flag serves both sides: only an Assert on both makes every bad value
        # raise on GPU; with one side guarded, the other may be a GPU zero row, and
        # saying "may be silent" is the safer error.
        "model_lookup_guarded": lookup.guarded_below and lookup.guarded_above,
        "model_bad_index_behaviour": lookup.evidence,
    }
    if bounds.bound_kind == "embedding_input_dims":
        # Nothing else bounds the feature (a pass-through integer): the model's
        # table is the only size there is.
        model_fields["bound_kind"] = "model"
        model_fields["bound_source"] = f"the model's table only: {lookup.source_text()}"
    return dataclasses.replace(bounds, **model_fields)
