"""`warm_start_embeddings`: a new span's embedding tables, each token on its new row.

When Transform runs on a new span, a token can land on another row. A model
warm-started by copying the old tables row for row would read another token's
row; this helper moves each token's trained row to the token's new index instead.
The old rows and their tokens both come from the base model itself: its tables
(the variables its lookups read) and the transform layer it was saved with.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from embedding_guard.bounds import model_analysis, remap_sources
from embedding_guard.bounds.graph_derivation import DerivationKind
from embedding_guard.errors import InputError

_CHECKPOINT_GRAPH_KEY = "_CHECKPOINTABLE_OBJECT_GRAPH"
_TABLE_KINDS = (
    model_analysis.KIND_KERAS_EMBEDDING,
    model_analysis.KIND_RESOURCE_GATHER,
    model_analysis.KIND_GATHER,
)


def _transform_graph_uri(tf_transform_output: Any) -> str:
    if isinstance(tf_transform_output, (str, os.PathLike)):
        return os.fspath(tf_transform_output)
    savedmodel_dir = getattr(tf_transform_output, "transform_savedmodel_dir", None)
    if not isinstance(savedmodel_dir, str):
        raise InputError(
            "warm_start_embeddings(tf_transform_output=...) must be a tft.TFTransformOutput or "
            f"the transform_graph path, got a {type(tf_transform_output).__name__}."
        )
    return os.path.dirname(savedmodel_dir.rstrip("/"))


def _table_values(saved_model_dir: str, variable_names: Iterable[str]) -> dict[str, np.ndarray]:
    """Variable name -> its saved value, read from the SavedModel's checkpoint.

    The SavedModel's object graph and its checkpoint's list the same objects in
    the same order, so a variable node's id names its checkpoint key.
    """
    import tensorflow as tf
    from tensorflow.core.protobuf import trackable_object_graph_pb2

    from embedding_guard.bounds import graph_analysis

    wanted = set(variable_names)
    objects = graph_analysis.read_saved_model(saved_model_dir).meta_graphs[0].object_graph_def
    reader = tf.train.load_checkpoint(os.path.join(saved_model_dir, "variables", "variables"))
    checkpoint_graph = trackable_object_graph_pb2.TrackableObjectGraph()
    checkpoint_graph.ParseFromString(reader.get_tensor(_CHECKPOINT_GRAPH_KEY))
    values = {}
    for node_id, node in enumerate(objects.nodes):
        if node.WhichOneof("kind") != "variable" or node.variable.name not in wanted:
            continue
        attributes = checkpoint_graph.nodes[node_id].attributes
        if attributes:
            values[node.variable.name] = np.asarray(reader.get_tensor(attributes[0].checkpoint_key))
    return values


def _warmstart(old: list[bytes], new: list[bytes], base: np.ndarray, initializer: Any) -> Any:
    """tf_keras' warmstart_embedding_matrix, with every row that holds no token kept apart.

    OOV-bucket rows (and any row past the vocabulary) get sentinel keys that no
    vocabulary holds, so they never match: new OOV rows get the initializer, as
    new tokens do.
    """
    from tf_keras.utils import warmstart_embedding_matrix

    base_keys = old + [b"\0embedding_guard_old_row_%d" % i for i in range(len(old), len(base))]
    return warmstart_embedding_matrix(
        base_vocabulary=base_keys,
        new_vocabulary=new,
        base_embeddings=base,
        new_embeddings_initializer=initializer,
    )


def warm_start_embeddings(
    base_model_dir: str,
    tf_transform_output: Any,
    *,
    features: Iterable[str] | None = None,
    new_embeddings_initializer: Any = "uniform",
) -> dict[str, np.ndarray]:
    """Initial embedding matrices for the current vocabularies, from a base model's tables.

    For each vocabulary feature the base model looks up in a table (Embedding,
    tf.nn.embedding_lookup, tf.gather), the matrix has a row for each index of the
    current transform graph (vocabulary plus OOV buckets, as
    `embedding_input_dim` sizes it): the base model's row of the same token where
    the base vocabulary holds it, else (new tokens, OOV buckets) a fresh row from
    the initializer. Build the new Embedding with
    `embeddings_initializer=keras.initializers.Constant(matrix)`.

    Args:
      base_model_dir: The base model (a SavedModel folder, or a TFX Model
        artifact's URI), saved with the transform layer it was trained with.
      tf_transform_output: The current Transform output (tft.TFTransformOutput, or
        its transform_graph path), e.g. `fn_args.transform_output`.
      features: The transformed features to warm-start; default: every one both
        the base model's transform layer and the current graph look up in a
        vocabulary and the base model looks up in a table.
      new_embeddings_initializer: Initializer of the rows without a base row
        (a Keras initializer or its name).

    Returns:
      Transformed feature -> the new matrix, shape (rows, embedding dim).

    Raises:
      InputError: base_model_dir is a file, the base model has no transform
        layer or no embedding table of a vocabulary feature, or a named feature
        cannot be warm-started; the message says why.
    """
    from tfx.dsl.io import fileio

    from embedding_guard.bounds import transform_graph

    if fileio.exists(base_model_dir) and not fileio.isdir(base_model_dir):
        # serving_model_dir would say it "does not exist".
        raise InputError(
            f"warm_start_embeddings(base_model_dir={base_model_dir!r}) is a file, not a model "
            "folder; pass the base model's folder (a SavedModel, or a TFX Model artifact's URI)."
        )
    saved_model_dir = model_analysis.serving_model_dir(base_model_dir)
    old = remap_sources.model_vocabularies(saved_model_dir)
    if old.unknown_why:
        raise InputError(
            f"warm_start_embeddings(base_model_dir={base_model_dir!r}): {old.unknown_why}. "
            "Save the base model with its transform layer "
            "(tf_transform_output.transform_features_layer()), or train from scratch."
        )
    graph = transform_graph.load_transform_graph(_transform_graph_uri(tf_transform_output))
    lookups: Mapping[str, Any] = model_analysis.analyze_model(saved_model_dir).governing_lookups()
    candidates = {
        feature: lookup
        for feature, lookup in lookups.items()
        if lookup.lookup_kind in _TABLE_KINDS
        and len(lookup.table_shape) == 2
        and lookup.variable_name
        and (lookup.offset or 0) == 0
        and _is_vocabulary(old.derivations.get(feature))
        and _is_vocabulary(graph.derivations.get(feature))
    }
    if not candidates:
        # An empty result would silently cold-start the Trainer (e.g. given a transform graph).
        looked_for = sorted(f for f, d in graph.derivations.items() if _is_vocabulary(d))
        raise InputError(
            f"warm_start_embeddings(base_model_dir={base_model_dir!r}): no embedding table of "
            f"a vocabulary feature was found in it (looked for the vocabulary features "
            f"{looked_for!r}); pass the trained base model (Trainer's model), not a transform "
            "graph, or train from scratch."
        )
    wanted = sorted(candidates) if features is None else list(features)
    missing = sorted(set(wanted) - set(candidates))
    if missing:
        raise InputError(
            f"warm_start_embeddings(features=...) names {missing!r}, which the base model "
            f"{base_model_dir!r} does not look up in a table behind a vocabulary of both "
            f"transform graphs; features it can warm-start: {sorted(candidates)!r}."
        )
    values = _table_values(saved_model_dir, [candidates[f].variable_name for f in wanted])
    sizes = transform_graph.embedding_input_dims(graph.uri)
    result = {}
    for feature in wanted:
        base = values[candidates[feature].variable_name]
        new_derivation, old_derivation = graph.derivations[feature], old.derivations[feature]
        new_tokens = list(remap_sources.tokens_of(new_derivation))
        rows = sizes.get(feature, len(new_tokens) + new_derivation.num_oov_buckets)
        new_keys = new_tokens + [
            b"\0embedding_guard_new_row_%d" % i for i in range(len(new_tokens), rows)
        ]
        matrix = _warmstart(
            list(remap_sources.tokens_of(old_derivation)),
            new_keys,
            base,
            new_embeddings_initializer,
        )
        result[feature] = np.asarray(matrix)
    return result


def _is_vocabulary(derivation: Any) -> bool:
    return (
        derivation is not None
        and derivation.kind is DerivationKind.VOCABULARY
        and derivation.offset == 0
    )
