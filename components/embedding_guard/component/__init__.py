"""EmbeddingIndexValidator: the TFX component."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from tfx import types
from tfx.dsl.components.base import base_beam_component, executor_spec
from tfx.types import standard_artifacts

from embedding_guard import spec
from embedding_guard.component.executor import Executor
from embedding_guard.run.options import (
    DEFAULT_MAX_HASH_COLLISION_SHARE,
    DEFAULT_MAX_OOV_RATE_INCREASE,
    ValidatorOptions,
)


class EmbeddingIndexValidator(base_beam_component.BaseBeamComponent):
    """Blocks the Trainer (or, given a `model`, the Pusher) when an index would fail a lookup.

    Reads every value of every checked feature in every split of `examples`
    (normally Transform's `transformed_examples`) and checks it against
    [0, vocab_size + num_oov_buckets) from the `transform_graph`, and against the
    Trainer's Embedding input_dim. Writes per split a standard `SchemaDiff.pb`
    Anomalies proto and an `index_report.json`, and sets the int custom property
    `blessed` (1 when no split has an ERROR) on the `anomalies` artifact.

    Example:
        validator = EmbeddingIndexValidator(
            examples=transform.outputs['transformed_examples'],
            transform_graph=transform.outputs['transform_graph'])
        with tfx.dsl.Cond(validator.outputs['anomalies'].future()[0]
                          .custom_property('blessed') == 1):
            trainer = tfx.components.Trainer(...)
    """

    SPEC_CLASS = spec.EmbeddingIndexValidatorSpec
    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(Executor)

    def __init__(
        self,
        examples: types.BaseChannel,
        transform_graph: types.BaseChannel,
        schema: types.BaseChannel | None = None,
        model: types.BaseChannel | None = None,
        statistics: types.BaseChannel | None = None,
        baseline_transform_graph: types.BaseChannel | None = None,
        exclude_splits: Sequence[str] | None = None,
        embedding_input_dims: Mapping[str, int] | None = None,
        feature_vocabularies: Mapping[str, str] | None = None,
        features: Sequence[str] | None = None,
        fail_on_block: bool = False,
        examples_kind: str = "auto",
        max_oov_rate: float | Mapping[str, float] | None = None,
        max_oov_rate_severity: str = "WARNING",
        max_oov_rate_increase: float | Mapping[str, float] | None = DEFAULT_MAX_OOV_RATE_INCREASE,
        max_oov_rate_increase_severity: str = "WARNING",
        baseline_split: str | None = None,
        parallelism: int | None = None,
        unchecked_severity: str = "INFO",
        vocabulary_remapped_severity: str = "ERROR",
        max_hash_collision_share: float = DEFAULT_MAX_HASH_COLLISION_SHARE,
        locator_feature: str | None = None,
        offending_examples_limit: int = 0,
    ):
        """Constructs the component; bad arguments fail here, not at run time.

        Args:
          examples: Examples channel, normally Transform's transformed_examples.
          transform_graph: Transform's transform_graph channel; gives the
            vocabularies and the transformed schema.
          schema: Optional Schema channel of the transformed features, used
            instead of the transform graph's schema for int_domains.
          model: Optional Model channel: the trained model whose embedding
            tables the indices must fit (the Trainer's output, to gate the
            Pusher; or a resolved earlier model, before a warm start).
          statistics: Optional ExampleStatistics channel of the same examples:
            StatisticsGen's statistics (compared per split) or Transform's
            post_transform_stats (every transformed split together). The
            examples read must match their num_examples, or the split gets an
            EXAMPLE_COUNT_MISMATCH error. Without it, Transform's post-transform
            statistics beside the transform graph are used when found.
          baseline_transform_graph: Optional TransformGraph channel the earlier
            model was trained with (a Resolver of the previous Transform): values
            whose token now sits on another row than there give a
            VOCABULARY_REMAPPED finding. Without it, a `model`'s own transform
            layer gives the old rows.
          exclude_splits: Split names not to validate.
          embedding_input_dims: Transformed feature -> the Trainer's
            Embedding(input_dim=...). Default per feature: vocab_size +
            num_oov_buckets, or int_domain.max + 1 without vocabulary.
          feature_vocabularies: Transformed feature -> vocabulary name, where the
            vocabulary is not named after the feature (`city_xf` -> `city` is
            found without it).
          features: The features to check. Default: every feature with a
            categorical int_domain plus every feature named in the two
            parameters above.
          fail_on_block: Raise (fail the run) instead of setting blessed = 0.
          examples_kind: "transformed" (Transform's output), "raw" (ExampleGen's
            output: the transform graph is applied first, as at serving), or
            "auto" to decide from the examples' feature names.
          max_oov_rate: Highest accepted share of values not in the vocabulary
            (OOV buckets or the -1 default), for all features or per feature.
          max_oov_rate_severity: "WARNING" reports, "ERROR" blocks.
          max_oov_rate_increase: Highest accepted rise of a split's OOV rate over
            baseline_split's, as a difference of rates.
          max_oov_rate_increase_severity: "WARNING" reports, "ERROR" blocks.
          baseline_split: The split OOV drift is measured against; default
            "train" when the examples have it. A split named here must exist.
          parallelism: Threads reading one split on one worker; default the
            CPUs the worker process may use.
          unchecked_severity: What an integer feature that looks categorical but
            has no bound (so was not checked) gives: "INFO" lists it in the
            reports and the log, "WARNING" adds a FEATURE_NOT_CHECKED finding,
            "ERROR" blocks, so that a pipeline can require every such feature
            to be checked.
          vocabulary_remapped_severity: "ERROR" (default) blocks when values
            reach rows trained for other tokens (VOCABULARY_REMAPPED), "WARNING"
            reports it.
          max_hash_collision_share: In raw mode, the share of a hashed
            feature's distinct raw values that may share their bucket with
            another before a HASH_BUCKETS_CROWDED warning, in (0, 1]; 1 never
            warns.
          locator_feature: A feature that identifies a record (a trip or user
            id); the report gives its value beside the shard and record where
            each offending value first occurs.
          offending_examples_limit: Whole offending examples (negative, too
            large or non-integer values) written per split and feature, as gzip
            TFRecords under the anomalies artifact's
            Split-<name>/offending_examples/<feature>.tfrecord.gz, byte-identical
            to the input records, at most 16 MiB each; 0 (default) writes none.

        Raises:
          TypeError: A parameter has the wrong type.
          ValueError: A parameter has a bad value.
        """
        options = ValidatorOptions(
            features=None if features is None else _as_tuple(features),
            exclude_splits=_as_tuple(exclude_splits or ()),
            embedding_input_dims=embedding_input_dims or {},
            feature_vocabularies=feature_vocabularies or {},
            fail_on_block=fail_on_block,
            examples_kind=examples_kind,
            max_oov_rate=max_oov_rate,
            max_oov_rate_severity=max_oov_rate_severity,
            max_oov_rate_increase=max_oov_rate_increase,
            max_oov_rate_increase_severity=max_oov_rate_increase_severity,
            baseline_split=baseline_split,
            parallelism=parallelism,
            unchecked_severity=unchecked_severity,
            vocabulary_remapped_severity=vocabulary_remapped_severity,
            max_hash_collision_share=max_hash_collision_share,
            locator_feature=locator_feature,
            offending_examples_limit=offending_examples_limit,
        ).validate()
        super().__init__(
            spec=spec.EmbeddingIndexValidatorSpec(
                examples=examples,
                transform_graph=transform_graph,
                schema=schema,
                model=model,
                statistics=statistics,
                baseline_transform_graph=baseline_transform_graph,
                **options.to_exec_properties(),
                anomalies=types.Channel(type=standard_artifacts.ExampleAnomalies),
            )
        )


def _as_tuple(value: Any) -> Any:
    # A string is a sequence too; keep it whole so ValidatorOptions can say that a
    # list was expected instead of checking each character.
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        return value
    return tuple(value)
