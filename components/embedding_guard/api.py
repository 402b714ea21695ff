"""`embedding_guard.check`: the CLI's check as a Python call, for notebooks and scripts.

    import embedding_guard
    result = embedding_guard.check(
        transform_graph="root/Transform/transform_graph/5",
        examples="root/Transform/transformed_examples/5",
    )
    result.blessed          # False when an index would fail a lookup
    result.to_dataframe()   # one row per split and feature
    result                  # in a notebook: the HTML report

It runs the same orchestration as the component's executor and `embedding-guard
check`, in this process on every core (or on a Beam pipeline you pass).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from typing import Any

from embedding_guard.errors import InputError
from embedding_guard.run.options import ValidatorOptions
from embedding_guard.run.orchestration import ValidationResult
from embedding_guard.verdict.report_model import SplitReport

# The per-feature counts of a row of CheckResult.to_dataframe().
_COUNT_COLUMNS = (
    "num_examples",
    "num_values",
    "missing",
    "negative",
    "in_range",
    "in_vocab",
    "oov_bucket",
    "out_of_range",
    "over_embedding_dim",
    "non_integer",
    "min",
    "max",
)


@dataclasses.dataclass(frozen=True)
class CheckResult:
    """What `check` found: typed per-split reports and the verdict.

    Attributes:
      validation: The orchestration's result (reports, bounds, examples kind).
      output: Where the report files were written, or None when they were
        written to a scratch folder that is gone.
    """

    validation: ValidationResult
    output: str | None

    @property
    def reports(self) -> Mapping[str, SplitReport]:
        """Split name -> the split's report."""
        return self.validation.reports

    @property
    def blessed(self) -> bool:
        """True when no split has an ERROR finding."""
        return self.validation.blessed

    @property
    def blessed_by_split(self) -> dict[str, bool]:
        """Split name -> whether the split has no ERROR finding."""
        return self.validation.blessed_by_split

    def summary(self) -> str:
        """The run in a few lines of at most 100 columns, the verdict last.

        Each problem (ERROR, then WARNING; the same finding in several splits is
        one) with its counts per split and its fix, then the features that were
        not checked, by role, then the verdict with the coverage, e.g.
        "OK: no checked index would fail an embedding lookup in 2 splits (eval, train);
        6 of 14 categorical integer feature(s) checked, 8 not checked (listed above)."
        """
        from embedding_guard.reports import notebook

        return notebook.summary_text(self.reports)

    def __repr__(self) -> str:
        # The dataclass's own repr prints every count of every split (26 KB on
        # TFX's taxi data); this says the verdict, splits and problem counts.
        from embedding_guard.reports import notebook

        return notebook.short_repr(self.reports, self.output)

    @property
    def gate(self) -> str:
        """The stage the verdict gates: "Trainer", or "Pusher" when a model was checked."""
        return self.validation.gate

    @property
    def coverage(self) -> str:
        """How many integer features were checked, e.g. '3 of 5 ... checked, 2 not checked'."""
        return self.validation.coverage

    def to_dataframe(self) -> Any:
        """One row per split and checked feature: bounds, counts and the worst finding.

        Returns:
          A pandas DataFrame (pandas comes with TFX).
        """
        import pandas as pd  # type: ignore[import-untyped]

        rows = []
        for split, report in sorted(self.reports.items()):
            for feature in report.features:
                stats, bounds = feature.stats, feature.bounds
                status = feature.status
                rows.append(
                    {
                        "split": split,
                        "feature": feature.feature,
                        "upper_bound": bounds.upper_bound,
                        "embedding_input_dim": bounds.embedding_input_dim,
                        "bound_source": bounds.bound_source,
                        "embedding_dim_source": bounds.embedding_dim_source,
                        **{name: getattr(stats, name) for name in _COUNT_COLUMNS},
                        "oov_rate": stats.oov_rate,
                        "verdict": "ok" if status is None else status.value,
                        "reasons": ",".join(f.reason.value for f in feature.findings),
                    }
                )
        return pd.DataFrame(rows)

    def _repr_html_(self) -> str:
        # The page's first screen: verdict, problems, coverage (under 10 KB on
        # TFX's taxi data); the full page is each split's index_report.html.
        from embedding_guard.reports import notebook

        info: list[tuple[str, object]] = [("blessed", int(self.blessed))]
        if self.output:
            info.append(("reports", f"{self.output}/Split-*/index_report.html"))
        return notebook.first_screen_html(self.reports, "embedding-guard check", info)


def check(
    examples: str | os.PathLike,
    transform_graph: str | os.PathLike | None = None,
    *,
    schema: str | os.PathLike | None = None,
    model: str | os.PathLike | None = None,
    statistics: str | os.PathLike | None = None,
    baseline_transform_graph: str | os.PathLike | None = None,
    splits: Sequence[str] | None = None,
    output: str | os.PathLike | None = None,
    beam_pipeline: Any = None,
    **options: Any,
) -> CheckResult:
    """Checks every index of every split, as `embedding-guard check` does.

    Args:
      examples: A folder of Split-<name> folders of TFRecord tf.Examples (an
        Examples artifact's URI).
      transform_graph: Transform's transform_graph folder (the bounds, and the
        graph applied to raw examples).
      schema: A schema.pbtxt whose int_domains give the bounds instead.
      model: A trained model (SavedModel, or a TFX Model artifact folder) whose
        embedding tables the indices must fit.
      statistics: Statistics of the same examples (StatisticsGen's statistics
        folder, or Transform's post_transform_stats folder) whose num_examples
        the examples read must match; default: Transform's, when found beside
        transform_graph.
      baseline_transform_graph: The transform graph an earlier model was trained
        with (the previous span's); VOCABULARY_REMAPPED names the values that now
        reach rows trained for other tokens. Default: the model's own transform
        layer, when a model is given.
      splits: Validate only these splits.
      output: Folder for SchemaDiff.pb and the reports, under Split-<name>/;
        default: a scratch folder that is deleted afterwards.
      beam_pipeline: An unstarted Beam pipeline to run on; default: count in this
        process on every core, without Beam.
      **options: Any ValidatorOptions field, as for EmbeddingIndexValidator
        (features, embedding_input_dims, feature_vocabularies, examples_kind,
        max_oov_rate, max_oov_rate_increase, baseline_split, parallelism,
        unchecked_severity, locator_feature, offending_examples_limit: written
        under output/Split-<name>/offending_examples/, so only with output ...).

    Returns:
      The reports and verdict.

    Raises:
      InputError: An input or option cannot be used; the message names it.
    """
    from embedding_guard.read import files
    from embedding_guard.run import orchestration, output_folder

    fields = {field.name for field in dataclasses.fields(ValidatorOptions)}
    unknown = sorted(set(options) - fields)
    if unknown:
        raise InputError(
            f"check() got unknown options {unknown!r}; valid options: {sorted(fields)!r}."
        )
    for name, value in (
        ("examples", examples),
        ("transform_graph", transform_graph),
        ("schema", schema),
        ("model", model),
        ("statistics", statistics),
        ("baseline_transform_graph", baseline_transform_graph),
        ("output", output),
    ):
        if value is not None and not isinstance(value, (str, os.PathLike)):
            raise InputError(
                f"check() argument {name}={value!r} must be a path (str or os.PathLike), got "
                f"{type(value).__name__}."
            )
    for name in ("features", "exclude_splits"):
        if isinstance(options.get(name), list):
            options[name] = tuple(options[name])
    validator_options = ValidatorOptions(**options).validate()
    examples = os.fspath(examples)
    transform_graph = None if transform_graph is None else os.fspath(transform_graph)
    schema_proto = None
    if schema is not None:
        from embedding_guard.bounds import schema_io

        schema_proto = schema_io.read_schema(os.fspath(schema), "schema")
    all_split_uris = files.split_dirs(examples)
    selected = orchestration.select_splits(
        list(all_split_uris),
        exclude_splits=validator_options.exclude_splits,
        only=splits,
        source=f"examples {examples!r}",
        only_setting="splits",
    )
    split_uris = {name: all_split_uris[name] for name in selected}
    output = None if output is None else os.fspath(output)
    model = None if model is None else os.fspath(model)
    inputs = {
        "examples": examples,
        "transform_graph": transform_graph,
        "schema": None if schema is None else os.fspath(schema),
        "model": model,
        "statistics": None if statistics is None else os.fspath(statistics),
        "baseline_transform_graph": None
        if baseline_transform_graph is None
        else os.fspath(baseline_transform_graph),
    }
    with output_folder.OutputFolder(output, selected, inputs, "output") as folder:
        result = orchestration.validate(
            split_uris,
            folder.split_dirs(),
            validator_options,
            transform_graph=transform_graph,
            schema=schema_proto,
            model=model,
            pipeline=beam_pipeline,
            statistics=None if statistics is None else os.fspath(statistics),
            all_splits=list(all_split_uris),
            baseline_transform_graph=inputs["baseline_transform_graph"],
        )
        folder.publish()
    return CheckResult(result, output)
