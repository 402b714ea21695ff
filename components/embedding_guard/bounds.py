"""Works out each checked feature's valid index range from a schema and vocabularies.

Pure logic over a `tensorflow_metadata` Schema proto and a mapping of vocabulary
sizes, so the component, the CLI and the Trainer helper share one answer.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from tensorflow_metadata.proto.v0 import schema_pb2

from embedding_guard.core import FeatureBounds
from embedding_guard.errors import InputError

# Transformed features are often named after their raw input plus one of these
# suffixes (TFX's taxi template uses `_xf`), while the vocabulary keeps the raw name.
_TRANSFORMED_NAME_SUFFIXES = ("_xf", "_transformed", "_index", "_indices", "_idx", "_id", "_int")


class BoundsError(InputError):
    """A feature's bounds cannot be worked out from the configuration given."""


def int_domain(schema: schema_pb2.Schema, feature: str) -> schema_pb2.IntDomain | None:
    """Returns the feature's int_domain, inline or by reference, or None."""
    for proto in schema.feature:
        if proto.name != feature:
            continue
        if proto.HasField("int_domain"):
            return proto.int_domain
        if proto.HasField("domain"):
            for named in schema.int_domain:
                if named.name == proto.domain:
                    return named
        return None
    return None


def categorical_features(schema: schema_pb2.Schema) -> list[str]:
    """Names of the features whose int_domain is marked categorical, sorted."""
    return sorted(
        proto.name
        for proto in schema.feature
        if (domain := int_domain(schema, proto.name)) is not None and domain.is_categorical
    )


def infer_vocabulary(feature: str, vocabulary_names: Iterable[str]) -> str | None:
    """Links a transformed feature to a vocabulary by name, or returns None.

    TFT does not record which vocabulary produced which feature, so the link is
    the feature's own name or its name without a transformed-name suffix
    (`city_xf` -> `city`). Anything else must be given as feature_vocabularies.
    """
    names = set(vocabulary_names)
    if feature in names:
        return feature
    for suffix in _TRANSFORMED_NAME_SUFFIXES:
        if feature.endswith(suffix) and feature[: -len(suffix)] in names:
            return feature[: -len(suffix)]
    return None


def _valid_names(names: Iterable[str]) -> str:
    names = sorted(names)
    return ", ".join(repr(n) for n in names) if names else "(none)"


def feature_bounds(
    feature: str,
    schema: schema_pb2.Schema,
    vocabulary_sizes: Mapping[str, int],
    *,
    embedding_input_dim: int | None = None,
    vocabulary: str | None = None,
) -> FeatureBounds:
    """Works out one feature's bounds.

    Args:
      feature: Transformed feature name.
      schema: The transformed schema (Transform's transformed_metadata, or a
        user schema with int_domains).
      vocabulary_sizes: Vocabulary name -> number of entries, without OOV buckets.
      embedding_input_dim: The Trainer's Embedding input_dim, if configured.
      vocabulary: Vocabulary name to link; inferred from the name when None.

    Returns:
      The feature's bounds with the origin of each.

    Raises:
      BoundsError: The vocabulary is unknown, disagrees with the int_domain, or
        the feature has neither a vocabulary, an int_domain nor an embedding dim.
    """
    domain = int_domain(schema, feature)
    if vocabulary is not None and vocabulary not in vocabulary_sizes:
        raise BoundsError(
            f"feature_vocabularies[{feature!r}] = {vocabulary!r} is not a vocabulary of "
            f"this transform graph; valid names: {_valid_names(vocabulary_sizes)}."
        )
    if vocabulary is None:
        vocabulary = infer_vocabulary(feature, vocabulary_sizes)
    vocab_size = vocabulary_sizes[vocabulary] if vocabulary is not None else None

    if vocab_size is not None:
        if domain is not None and domain.HasField("max"):
            num_oov_buckets = domain.max + 1 - vocab_size
            if num_oov_buckets < 0:
                raise BoundsError(
                    f"Feature {feature!r}: vocabulary {vocabulary!r} has {vocab_size} "
                    f"entries but the schema's int_domain.max is {domain.max}, so the "
                    "feature was not made from that vocabulary. Name the right one in "
                    "feature_vocabularies."
                )
            bound_source = (
                f"vocabulary {vocabulary!r} ({vocab_size} entries) + {num_oov_buckets} "
                f"OOV bucket(s) from int_domain.max = {domain.max}"
            )
        else:
            num_oov_buckets = 0
            bound_source = (
                f"vocabulary {vocabulary!r} ({vocab_size} entries); the schema has no "
                "int_domain.max, so no OOV buckets are assumed"
            )
        upper_bound = vocab_size + num_oov_buckets
        default_dim_source = "default: vocab_size + num_oov_buckets"
    elif domain is not None and domain.HasField("max"):
        num_oov_buckets = 0
        upper_bound = domain.max + 1
        low = domain.min if domain.HasField("min") else 0
        bound_source = f"int_domain [{low}, {domain.max}] of the schema (no vocabulary)"
        default_dim_source = "default: int_domain.max + 1"
    elif embedding_input_dim is not None:
        num_oov_buckets = 0
        upper_bound = embedding_input_dim
        bound_source = "embedding_input_dims only (no vocabulary or int_domain.max)"
        default_dim_source = ""
    else:
        raise BoundsError(
            f"Feature {feature!r} has no vocabulary and no int_domain.max in the schema, "
            "so its valid range is unknown. Pass embedding_input_dims="
            f"{{{feature!r}: N}}, name its vocabulary in feature_vocabularies, or give a "
            "schema with an int_domain for it."
        )

    if upper_bound <= 0:
        raise BoundsError(
            f"Feature {feature!r} has an empty valid range [0, {upper_bound}) "
            f"({bound_source}); check its vocabulary and int_domain."
        )
    if embedding_input_dim is None:
        embedding_input_dim = upper_bound
        embedding_dim_source = default_dim_source
    else:
        embedding_dim_source = "embedding_input_dims parameter"
    return FeatureBounds(
        feature=feature,
        upper_bound=upper_bound,
        embedding_input_dim=embedding_input_dim,
        vocab_size=vocab_size,
        num_oov_buckets=num_oov_buckets,
        vocabulary=vocabulary,
        bound_source=bound_source,
        embedding_dim_source=embedding_dim_source,
    )


def resolve_bounds(
    schema: schema_pb2.Schema,
    vocabulary_sizes: Mapping[str, int],
    *,
    features: Iterable[str] | None = None,
    embedding_input_dims: Mapping[str, int] | None = None,
    feature_vocabularies: Mapping[str, str] | None = None,
) -> list[FeatureBounds]:
    """Works out the bounds of every checked feature.

    Args:
      schema: The transformed schema.
      vocabulary_sizes: Vocabulary name -> entries, without OOV buckets.
      features: The features to check. Default: every categorical feature of the
        schema plus every feature named in the other two arguments.
      embedding_input_dims: Feature -> the Trainer's Embedding input_dim.
      feature_vocabularies: Feature -> vocabulary name, where the name link fails.

    Returns:
      Bounds of the checked features, sorted by feature name.

    Raises:
      BoundsError: A named feature is not in the schema, or bounds cannot be
        worked out for one (see feature_bounds).
    """
    embedding_input_dims = dict(embedding_input_dims or {})
    feature_vocabularies = dict(feature_vocabularies or {})
    schema_features = {proto.name for proto in schema.feature}
    if features is None:
        checked = set(categorical_features(schema)) | set(embedding_input_dims)
        checked |= set(feature_vocabularies)
    else:
        checked = set(features)
        for parameter, mapping in (
            ("embedding_input_dims", embedding_input_dims),
            ("feature_vocabularies", feature_vocabularies),
        ):
            outside = sorted(set(mapping) - checked)
            if outside:
                raise BoundsError(
                    f"{parameter} names {outside!r}, which are not in `features` "
                    f"{sorted(checked)!r}; add them to `features` or drop them."
                )
    unknown = sorted(checked - schema_features)
    if unknown:
        raise BoundsError(
            f"Features {unknown!r} are not in the transformed schema; valid names: "
            f"{_valid_names(schema_features)}."
        )
    if not checked:
        raise BoundsError(
            "No feature to check: the transformed schema has no categorical int_domain. "
            "Name the embedding features in `features` or `embedding_input_dims`."
        )
    return [
        feature_bounds(
            name,
            schema,
            vocabulary_sizes,
            embedding_input_dim=embedding_input_dims.get(name),
            vocabulary=feature_vocabularies.get(name),
        )
        for name in sorted(checked)
    ]
