"""Works out each checked feature's valid index range from a schema and vocabularies.

Pure logic over a `tensorflow_metadata` Schema proto, a mapping of vocabulary
sizes and the transform graph's derivations (graph_analysis.FeatureDerivation),
so the component, the CLI and the Trainer helper share one answer. Order: a
vocabulary named in feature_vocabularies, then the graph, then a vocabulary
linked by name, then the schema's int_domain, then embedding_input_dims.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from tensorflow_metadata.proto.v0 import schema_pb2

from embedding_guard.errors import InputError
from embedding_guard.verdict.core import FeatureBounds
from embedding_guard.verdict.report_model import UncheckedFeature

if TYPE_CHECKING:
    from embedding_guard.bounds.graph_analysis import FeatureDerivation

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


def _graph_bounds(
    feature: str, derivation: FeatureDerivation, domain: schema_pb2.IntDomain | None
) -> dict[str, Any] | None:
    # The bound the transform graph itself gives, or None when it gives none.
    value_range = derivation.value_range
    if value_range is None or value_range[1] <= 0:
        return None
    low, high = value_range
    kind = derivation.kind.value
    fields = {
        "bound_kind": kind,
        "upper_bound": high,
        "vocab_size": None,
        "num_oov_buckets": 0,
        "vocabulary": None,
        "default_value": derivation.default_value,
        # The asset's name, not its path: reports stay the same wherever the graph is.
        "vocabulary_file": (
            os.path.basename(derivation.vocabulary_file) if derivation.vocabulary_file else None
        ),
        "bound_source": derivation.describe(),
        "default_dim_source": f"default: the {kind}'s size read from the transform graph",
    }
    if kind == "vocabulary":
        fields["vocabulary"] = derivation.vocabulary
        if derivation.offset == 0:
            # With an offset the vocabulary part no longer starts at 0, so the
            # counts say "in range", not in_vocab / OOV.
            fields["vocab_size"] = derivation.vocab_size
            fields["num_oov_buckets"] = derivation.num_oov_buckets
        fields["default_dim_source"] = (
            "default: vocab_size + num_oov_buckets read from the transform graph"
        )
        default = derivation.default_value
        if (
            derivation.offset == 0
            and derivation.num_oov_buckets == 0
            and default is not None
            and derivation.vocab_size is not None
            and default >= derivation.vocab_size
        ):
            # default_value=9 after 5 entries: the default's row sets the size.
            fields["default_dim_source"] = (
                f"default: default_value {default} + 1 read from the transform graph "
                "(unknown values are looked up at that row)"
            )
    if domain is not None and (domain.HasField("max") or domain.HasField("min")):
        schema_low = domain.min if domain.HasField("min") else None
        schema_high = domain.max + 1 if domain.HasField("max") else None
        if (schema_low is not None and schema_low != low) or (
            schema_high is not None and schema_high != high
        ):
            fields["schema_disagreement"] = (
                f"The transform graph produces {feature} in [{low}, {high - 1}] "
                f"({fields['bound_source']}), but the schema's int_domain says "
                f"[{_text(schema_low)}, {_text(None if schema_high is None else schema_high - 1)}]"
                "; the graph is what the Trainer's lookup sees, so its range is checked."
            )
    return fields


def _text(value: int | None) -> str:
    return "-inf" if value is None else str(value)


def feature_bounds(
    feature: str,
    schema: schema_pb2.Schema,
    vocabulary_sizes: Mapping[str, int],
    *,
    embedding_input_dim: int | None = None,
    vocabulary: str | None = None,
    derivation: FeatureDerivation | None = None,
    names: Mapping[str, str] | None = None,
) -> FeatureBounds:
    """Works out one feature's bounds.

    In order: a vocabulary named in `vocabulary` (feature_vocabularies) wins;
    then what the transform graph says (`derivation`); then a vocabulary linked
    by the feature's name; then the schema's int_domain; then the embedding dim.

    Args:
      feature: Transformed feature name.
      schema: The transformed schema (Transform's transformed_metadata, or a
        user schema with int_domains).
      vocabulary_sizes: Vocabulary name -> number of entries, without OOV buckets.
      embedding_input_dim: The Trainer's Embedding input_dim, if configured.
      vocabulary: Vocabulary name to link (feature_vocabularies); overrides the
        graph and the name link.
      derivation: The feature's `graph_analysis.FeatureDerivation`, if the
        transform graph was analysed.
      names: Setting -> how the caller spells it (CLI flags in the CLI), for
        the fix an error names.

    Returns:
      The feature's bounds with the origin of each.

    Raises:
      BoundsError: The vocabulary is unknown, disagrees with the int_domain, or
        the feature has neither a vocabulary, an int_domain nor an embedding dim.
    """
    domain = int_domain(schema, feature)
    if (
        domain is not None
        and domain.HasField("min")
        and domain.HasField("max")
        and domain.min > domain.max
    ):
        raise BoundsError(
            f"Feature {feature!r} has int_domain min {domain.min} > max {domain.max} in the "
            "schema, so no value is valid; fix the schema's int_domain."
        )
    raw_features = tuple(derivation.raw_features) if derivation is not None else ()
    raw_feature = raw_features[0] if len(raw_features) == 1 else None
    if vocabulary is not None and vocabulary not in vocabulary_sizes:
        flag = (names or {}).get("feature_vocabularies", "")
        given = (
            setting_hint("feature_vocabularies", feature, vocabulary, names)
            if flag.startswith("--")
            else f"feature_vocabularies[{feature!r}] = {vocabulary!r}"
        )
        raise BoundsError(
            f"{given} is not a vocabulary of this transform graph; valid names: "
            f"{_valid_names(vocabulary_sizes)}."
        )
    graph = None
    if vocabulary is None and derivation is not None:
        graph = _graph_bounds(feature, derivation, domain)
    if graph is not None:
        upper_bound = graph["upper_bound"]
        _check_positive(feature, upper_bound, graph["bound_source"])
        return FeatureBounds(
            feature=feature,
            upper_bound=upper_bound,
            vocab_size=graph["vocab_size"],
            num_oov_buckets=graph["num_oov_buckets"],
            vocabulary=graph["vocabulary"],
            bound_source=graph["bound_source"],
            bound_kind=graph["bound_kind"],
            **_embedding_dim(upper_bound, embedding_input_dim, graph["default_dim_source"]),
            raw_features=raw_features,
            raw_feature=raw_feature,
            default_value=graph["default_value"],
            vocabulary_file=graph["vocabulary_file"],
            schema_disagreement=graph.get("schema_disagreement"),
        )
    graph_note = ""
    if derivation is not None and vocabulary is None:
        graph_note = f" ({derivation.describe()})"
    bound_kind = "feature_vocabularies" if vocabulary is not None else ""
    if vocabulary is None:
        vocabulary = infer_vocabulary(feature, vocabulary_sizes)
        bound_kind = "vocabulary_name" if vocabulary is not None else ""
    vocab_size = vocabulary_sizes[vocabulary] if vocabulary is not None else None
    linked = (
        f"named in {(names or {}).get('feature_vocabularies', 'feature_vocabularies')}"
        if bound_kind == "feature_vocabularies"
        else "linked by the feature's name"
    )

    if vocab_size is not None:
        if domain is not None and domain.HasField("max"):
            num_oov_buckets = domain.max + 1 - vocab_size
            if num_oov_buckets < 0:
                raise BoundsError(
                    f"Feature {feature!r}: vocabulary {vocabulary!r} has {vocab_size} "
                    f"entries but the schema's int_domain.max is {domain.max}, so the "
                    "feature was not made from that vocabulary. Name the right one with "
                    f"{(names or {}).get('feature_vocabularies', 'feature_vocabularies')}."
                )
            bound_source = (
                f"vocabulary {vocabulary!r} ({vocab_size} entries, {linked}) + "
                f"{num_oov_buckets} OOV bucket(s) from int_domain.max = {domain.max}"
            )
        else:
            num_oov_buckets = 0
            bound_source = (
                f"vocabulary {vocabulary!r} ({vocab_size} entries, {linked}); the schema "
                "has no int_domain.max, so no OOV buckets are assumed"
            )
        upper_bound = vocab_size + num_oov_buckets
        default_dim_source = "default: vocab_size + num_oov_buckets"
    elif domain is not None and domain.HasField("max"):
        num_oov_buckets = 0
        upper_bound = domain.max + 1
        low = domain.min if domain.HasField("min") else 0
        bound_source = f"int_domain [{low}, {domain.max}] of the schema (no vocabulary)"
        default_dim_source = "default: int_domain.max + 1"
        bound_kind = "int_domain"
    elif embedding_input_dim is not None:
        num_oov_buckets = 0
        upper_bound = embedding_input_dim
        bound_source = "embedding_input_dims only (no vocabulary or int_domain.max)"
        default_dim_source = ""
        bound_kind = "embedding_input_dims"
    else:
        raise BoundsError(
            f"Feature {feature!r} has no vocabulary and no int_domain.max in the schema"
            f"{graph_note}, so its valid range is unknown. Pass "
            f"{setting_hint('embedding_input_dims', feature, 'N', names)}, name its "
            f"vocabulary with {setting_hint('feature_vocabularies', feature, 'VOCAB', names)}, "
            "or give a schema with an int_domain for it."
        )
    bound_source += graph_note

    _check_positive(feature, upper_bound, bound_source)
    return FeatureBounds(
        feature=feature,
        upper_bound=upper_bound,
        vocab_size=vocab_size,
        num_oov_buckets=num_oov_buckets,
        vocabulary=vocabulary,
        bound_source=bound_source,
        bound_kind=bound_kind,
        **_embedding_dim(upper_bound, embedding_input_dim, default_dim_source),
        raw_features=raw_features,
        raw_feature=raw_feature,
    )


def _embedding_dim(
    upper_bound: int, embedding_input_dim: int | None, default_source: str
) -> dict[str, Any]:
    """The embedding input_dim fields of FeatureBounds: the parameter's, else the bound."""
    if embedding_input_dim is None:
        return {
            "embedding_input_dim": upper_bound,
            "embedding_dim_source": default_source,
            "embedding_dim_kind": "bound",
        }
    return {
        "embedding_input_dim": embedding_input_dim,
        "embedding_dim_source": "embedding_input_dims parameter",
        "embedding_dim_kind": "embedding_input_dims",
    }


def _check_positive(feature: str, upper_bound: int, bound_source: str) -> None:
    if upper_bound <= 0:
        raise BoundsError(
            f"Feature {feature!r} has an empty valid range [0, {upper_bound}) "
            f"({bound_source}); check its vocabulary and int_domain."
        )


def graph_bounded_features(derivations: Mapping | None) -> list[str]:
    """Integer outputs the transform graph bounds (vocabulary, hash, bucketize), sorted."""
    return sorted(
        name
        for name, derivation in (derivations or {}).items()
        if derivation.integer and derivation.value_range is not None
    )


def resolve_bounds(
    schema: schema_pb2.Schema,
    vocabulary_sizes: Mapping[str, int],
    *,
    features: Iterable[str] | None = None,
    embedding_input_dims: Mapping[str, int] | None = None,
    feature_vocabularies: Mapping[str, str] | None = None,
    derivations: Mapping | None = None,
    names: Mapping[str, str] | None = None,
) -> list[FeatureBounds]:
    """Works out the bounds of every checked feature.

    Args:
      schema: The transformed schema.
      vocabulary_sizes: Vocabulary name -> entries, without OOV buckets.
      features: The features to check. Default: every categorical feature of the
        schema, every feature the transform graph bounds, plus every feature
        named in the other two arguments.
      embedding_input_dims: Feature -> the Trainer's Embedding input_dim.
      feature_vocabularies: Feature -> vocabulary name; overrides the graph.
      derivations: Transformed feature -> `graph_analysis.FeatureDerivation`, read
        from the transform graph; used before the name link and the int_domain.
      names: Setting -> how the caller spells it, for the fixes errors name.

    Returns:
      Bounds of the checked features, sorted by feature name.

    Raises:
      BoundsError: A named feature is not in the schema, or bounds cannot be
        worked out for one (see feature_bounds).
    """
    embedding_input_dims = dict(embedding_input_dims or {})
    feature_vocabularies = dict(feature_vocabularies or {})
    derivations = dict(derivations or {})
    schema_features = {proto.name for proto in schema.feature}
    if features is None:
        checked = set(categorical_features(schema)) | set(embedding_input_dims)
        checked |= set(feature_vocabularies)
        checked |= set(graph_bounded_features(derivations)) & schema_features
    else:
        checked = set(features)
        for parameter, mapping in (
            ("embedding_input_dims", embedding_input_dims),
            ("feature_vocabularies", feature_vocabularies),
        ):
            outside = sorted(set(mapping) - checked)
            if outside:
                spelt = (names or {}).get(parameter, parameter)
                features_spelt = (names or {}).get("features", "features")
                raise BoundsError(
                    f"{spelt} names {outside!r}, which are not in {features_spelt} "
                    f"{sorted(checked)!r}; add them to {features_spelt} or drop them."
                )
    unknown = sorted(checked - schema_features)
    if unknown:
        # Name the setting that asked for them, as the caller spells it.
        asked_by = next(
            setting
            for setting, asked in (
                ("features", features or ()),
                ("feature_vocabularies", feature_vocabularies),
                ("embedding_input_dims", embedding_input_dims),
            )
            if set(unknown) & set(asked)
        )
        raise BoundsError(
            f"{(names or {}).get(asked_by, asked_by)} names {unknown!r}, which the transformed "
            f"schema lacks; valid names: {_valid_names(schema_features)}."
        )
    if not checked:
        if not schema.feature:
            raise BoundsError(
                "The transformed schema has no feature at all (is its schema.pbtxt empty?); "
                f"pass the schema Transform wrote, with {(names or {}).get('schema', 'schema')} "
                "or the transform graph."
            )
        raise BoundsError(
            "No feature to check: the transformed schema has no categorical int_domain "
            "and the transform graph bounds no integer feature. Name the embedding "
            f"features with {(names or {}).get('features', 'features')} or "
            f"{(names or {}).get('embedding_input_dims', 'embedding_input_dims')}."
        )
    return [
        feature_bounds(
            name,
            schema,
            vocabulary_sizes,
            embedding_input_dim=embedding_input_dims.get(name),
            vocabulary=feature_vocabularies.get(name),
            derivation=derivations.get(name),
            names=names,
        )
        for name in sorted(checked)
    ]


def setting_hint(
    setting: str, feature: str, value: str | None = None, names: Mapping[str, str] | None = None
) -> str:
    """How the caller would write `setting` for one feature, in its own syntax.

    Args:
      setting: The setting's Python name (embedding_input_dims, features, ...).
      feature: The feature it is about.
      value: The value for a per-feature mapping setting; None for a list.
      names: Setting -> how the caller spells it (run.options.CLI_FLAGS in the
        CLI); default the Python keyword.

    Returns:
      '--embedding-dim city_xf=N' or '--feature city_xf' for a flag,
      "embedding_input_dims={'city_xf': N}" or "features=[..., 'city_xf']" for a
      keyword.
    """
    spelled = (names or {}).get(setting, setting)
    if spelled.startswith("--"):
        return f"{spelled} {feature}" + ("" if value is None else f"={value}")
    if value is None:
        return f"{spelled}=[..., {feature!r}]"
    return f"{spelled}={{{feature!r}: {value}}}"


def unchecked_features(
    schema: schema_pb2.Schema,
    checked: Iterable[FeatureBounds] | Iterable[str],
    derivations: Mapping | None = None,
    *,
    features: Iterable[str] | None = None,
    looked_up: Iterable[str] | None = None,
    names: Mapping[str, str] | None = None,
) -> list[UncheckedFeature]:
    """Lists the integer features that were not checked, with why and how to check them.

    Nothing is skipped silently: a pass-through integer (TFX taxi's
    `trip_start_hour_xf`) or an integer the graph computes with arithmetic has no
    vocabulary, no bucket count and often no int_domain, yet a Trainer may feed it
    to an Embedding or CategoryEncoding. Each gets a role: EXCLUDED when the
    `features` parameter leaves it out (whatever bound it has), NOT_LOOKED_UP when
    the given model never looks it up (a label, a weight), else NOT_CHECKED.

    Args:
      schema: The transformed schema.
      checked: The checked features' bounds (or names).
      derivations: Transformed feature -> FeatureDerivation, if known.
      features: The `features` parameter, when the caller gave one.
      looked_up: The features the model looks up, when a model was given.
      names: Setting -> how the caller spells it, so that the hints read as
        flags in the CLI and as keywords in Python.

    Returns:
      The unchecked integer features, sorted by name.
    """
    checked_names = {b if isinstance(b, str) else b.feature for b in checked}
    derivations = dict(derivations or {})
    selected = None if features is None else set(features)
    model_features = None if looked_up is None else set(looked_up)
    names = dict(names or {})
    model = f"a model that looks it up ({names.get('model', 'the `model` input')})"
    unchecked = []
    for proto in schema.feature:
        if proto.name in checked_names or proto.type != schema_pb2.INT:
            continue
        derivation = derivations.get(proto.name)
        raw = tuple(derivation.raw_features) if derivation is not None else ()
        table_hint = (
            f"{setting_hint('embedding_input_dims', proto.name, 'N', names)} "
            "(the Trainer's table size)"
        )
        if selected is not None and proto.name not in selected:
            # Left out on purpose: whatever bound it has is not why it went unchecked.
            unchecked.append(
                UncheckedFeature(
                    name=proto.name,
                    why=f"excluded by {names.get('features', 'features')}",
                    parameter_that_would_check_it=setting_hint("features", proto.name, None, names),
                    raw_features=raw,
                    role=UncheckedFeature.EXCLUDED,
                )
            )
            continue
        if model_features is not None and proto.name not in model_features:
            unchecked.append(
                UncheckedFeature(
                    name=proto.name,
                    why=(
                        "the model never looks it up (a label, a weight or a dense input), so "
                        "no embedding lookup of this model can fail on it"
                    ),
                    parameter_that_would_check_it=(
                        f"none needed; if another model looks it up, {table_hint}"
                    ),
                    raw_features=raw,
                    role=UncheckedFeature.NOT_LOOKED_UP,
                )
            )
            continue
        if derivation is not None:
            reason = derivation.describe()
        else:
            reason = (
                f"{proto.name} has no int_domain.max in the schema and no vocabulary linked "
                "to it, and the transform graph was not analysed"
            )
        unchecked.append(
            UncheckedFeature(
                name=proto.name,
                why=reason,
                parameter_that_would_check_it=(
                    f"{table_hint}, {model}, or "
                    f"{setting_hint('features', proto.name, None, names)} with an int_domain "
                    "in the schema"
                ),
                raw_features=raw,
            )
        )
    return sorted(unchecked, key=lambda u: u.name)
