"""EmbeddingIndexValidator: the TFX component."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from tfx import types
from tfx.dsl.components.base import base_beam_component, executor_spec
from tfx.types import artifact_utils, standard_artifacts
from tfx.utils import json_utils

from embedding_guard import spec
from embedding_guard.core import Severity
from embedding_guard.executor import Executor
from embedding_guard.raw_mode import ExamplesKind

_EXAMPLES_KINDS = tuple(kind.value for kind in ExamplesKind)
_SEVERITIES = (Severity.WARNING.value, Severity.ERROR.value)


def _check_names(parameter: str, value) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise TypeError(
            f"{parameter} must be a list of names, got {type(value).__name__} {value!r}; "
            f"e.g. {parameter}=[{value!r}]."
            if isinstance(value, str)
            else f"{parameter} must be a list of names, got {type(value).__name__} {value!r}."
        )
    names = list(value)
    for name in names:
        if not isinstance(name, str) or not name:
            raise TypeError(f"{parameter} must hold non-empty strings, got {name!r} in {names!r}.")
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"{parameter} names {duplicates!r} more than once; list each once.")
    return names


def _check_mapping(parameter: str, value, value_check, expected: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise TypeError(
            f"{parameter} must be a dict of feature -> {expected}, "
            f"got {type(value).__name__} {value!r}."
        )
    for feature, item in value.items():
        if not isinstance(feature, str) or not feature:
            raise TypeError(f"{parameter} keys must be feature names, got {feature!r}.")
        if not value_check(item):
            raise ValueError(f"{parameter}[{feature!r}] must be {expected}, got {item!r}.")
    return dict(value)


def _positive_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _vocabulary_name(value) -> bool:
    return isinstance(value, str) and bool(value)


def _rate(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value <= 1


def _check_rate(parameter: str, value):
    if value is None or _rate(value):
        return value
    if isinstance(value, Mapping):
        return _check_mapping(parameter, value, _rate, "a rate between 0 and 1")
    raise TypeError(
        f"{parameter} must be a rate between 0 and 1, or a dict of feature -> rate, got {value!r}."
    )


def _check_split_names(parameter: str, names: list[str]) -> list[str]:
    # TFX's own rule, so a name that could never match a split fails here.
    try:
        artifact_utils.encode_split_names(names)
    except ValueError as error:
        raise ValueError(f"{parameter}: {error}") from None
    return names


def _check_choice(parameter: str, value, choices) -> str:
    if value not in choices:
        raise ValueError(f"{parameter} must be one of {sorted(choices)!r}, got {value!r}.")
    return value


class EmbeddingIndexValidator(base_beam_component.BaseBeamComponent):
    """Blocks the Trainer when a categorical index would fail an embedding lookup.

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
        exclude_splits: Sequence[str] | None = None,
        embedding_input_dims: Mapping[str, int] | None = None,
        feature_vocabularies: Mapping[str, str] | None = None,
        features: Sequence[str] | None = None,
        fail_on_block: bool = False,
        examples_kind: str = "auto",
        max_oov_rate: float | Mapping[str, float] | None = None,
        max_oov_rate_severity: str = "WARNING",
        max_oov_rate_increase: float | Mapping[str, float] | None = 0.05,
        max_oov_rate_increase_severity: str = "WARNING",
        baseline_split: str = "train",
    ):
        """Constructs the component; bad arguments fail here, not at run time.

        Args:
          examples: Examples channel, normally Transform's transformed_examples.
          transform_graph: Transform's transform_graph channel; gives the
            vocabularies and the transformed schema.
          schema: Optional Schema channel of the transformed features, used
            instead of the transform graph's schema for int_domains.
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
          baseline_split: The split OOV drift is measured against.

        Raises:
          TypeError: A parameter has the wrong type.
          ValueError: A parameter has a bad value.
        """
        exclude_splits = _check_split_names(
            "exclude_splits", _check_names("exclude_splits", exclude_splits)
        )
        feature_names = None if features is None else _check_names("features", features)
        if feature_names is not None and not feature_names:
            raise ValueError(
                "features=[] checks nothing; leave it out to check every categorical "
                "feature, or name the features to check."
            )
        embedding_input_dims = _check_mapping(
            "embedding_input_dims", embedding_input_dims, _positive_int, "a positive int"
        )
        feature_vocabularies = _check_mapping(
            "feature_vocabularies", feature_vocabularies, _vocabulary_name, "a vocabulary name"
        )
        if feature_names is not None:
            for parameter, mapping in (
                ("embedding_input_dims", embedding_input_dims),
                ("feature_vocabularies", feature_vocabularies),
            ):
                outside = sorted(set(mapping) - set(feature_names))
                if outside:
                    raise ValueError(
                        f"{parameter} names {outside!r}, which are not in features="
                        f"{feature_names!r}; add them to features or drop them."
                    )
        if not isinstance(fail_on_block, bool):
            raise TypeError(f"fail_on_block must be True or False, got {fail_on_block!r}.")
        _check_choice("examples_kind", examples_kind, _EXAMPLES_KINDS)
        max_oov_rate = _check_rate("max_oov_rate", max_oov_rate)
        max_oov_rate_increase = _check_rate("max_oov_rate_increase", max_oov_rate_increase)
        _check_choice("max_oov_rate_severity", max_oov_rate_severity, _SEVERITIES)
        _check_choice("max_oov_rate_increase_severity", max_oov_rate_increase_severity, _SEVERITIES)
        if not isinstance(baseline_split, str) or not baseline_split:
            raise TypeError(f"baseline_split must be a split name, got {baseline_split!r}.")
        _check_split_names("baseline_split", [baseline_split])
        super().__init__(
            spec=spec.EmbeddingIndexValidatorSpec(
                examples=examples,
                transform_graph=transform_graph,
                schema=schema,
                exclude_splits=json_utils.dumps(exclude_splits),
                embedding_input_dims=json_utils.dumps(embedding_input_dims),
                feature_vocabularies=json_utils.dumps(feature_vocabularies),
                features=json_utils.dumps(feature_names),
                fail_on_block=int(fail_on_block),
                examples_kind=examples_kind,
                max_oov_rate=json_utils.dumps(max_oov_rate),
                max_oov_rate_severity=max_oov_rate_severity,
                max_oov_rate_increase=json_utils.dumps(max_oov_rate_increase),
                max_oov_rate_increase_severity=max_oov_rate_increase_severity,
                baseline_split=baseline_split,
                anomalies=types.Channel(type=standard_artifacts.ExampleAnomalies),
            )
        )
