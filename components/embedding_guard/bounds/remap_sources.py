"""Where a feature's old rows come from: a baseline transform graph, or the model.

A model trained by TFX carries the transform layer it was trained with
(`tf_transform_output.transform_features_layer()`), and its SavedModel holds that
layer's `transform_fn` and vocabulary assets. Both it and a baseline
`transform_graph` are read the way graph_analysis reads the current graph: an
output index ← lookup table ← initializer ← asset file. Each vocabulary feature
of the current graph then gets a `VocabularyRemap` against its old vocabulary.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from typing import Any

from embedding_guard.bounds import graph_analysis
from embedding_guard.bounds.graph_derivation import DerivationKind, FeatureDerivation
from embedding_guard.bounds.graph_refs import CALL_OPS, GraphRef, GraphView
from embedding_guard.bounds.graph_tracer import _TABLE_INITIALIZERS, Table, TransformTracer
from embedding_guard.bounds.vocabulary_files import (
    TFRECORD_GZIP,
    table_keys,
    vocabulary_entries,
)
from embedding_guard.read import storage
from embedding_guard.verdict.core import FeatureBounds
from embedding_guard.verdict.remap import VocabularyRemap

# The child a loaded Transform SavedModel (TransformFeaturesLayer's `_imported`)
# keeps its transform function under, as the transform_fn SavedModel's root does.
_TRANSFORM_FN = "transform_fn"
# Calls followed from a table's `_initialize` to its initializer op.
_MAX_CALL_DEPTH = 4


class _HashableNode:
    """A call NodeDef as a GraphRef stack entry: refs are set members, protos are unhashable."""

    def __init__(self, node: Any) -> None:
        self._node = node

    def __getattr__(self, name: str) -> Any:
        return getattr(self._node, name)


class _LoadedTransformTracer(TransformTracer):
    """Also follows a table initializer re-saved inside a model.

    A model that saves a loaded Transform graph (TransformFeaturesLayer) wraps
    each table's `_initialize` in a call to the restored function body, where
    the initializer op sits, with the asset passed in as an argument.
    """

    def _tf2_table(self, object_id: int) -> Table:
        table = super()._tf2_table(object_id)
        if table.asset is not None:
            return table
        proto = self._object_graph.nodes[object_id]
        children = {child.local_name: child.node_id for child in proto.children}
        if "_initialize" not in children:
            return table
        for name in self._object_graph.nodes[children["_initialize"]].function.concrete_functions:
            found = self._initializer_in(self.bind_function(name), ())
            if found is not None:
                return found
        return table

    def _initializer_in(
        self, view: GraphView, stack: tuple[tuple[GraphRef, object], ...], depth: int = 0
    ) -> Table | None:
        for node in view.nodes.values():
            if node.op in _TABLE_INITIALIZERS:
                return self._from_initializer(GraphRef(view.index, node.name, 0, stack), node)
        if depth >= _MAX_CALL_DEPTH:
            return None
        for node in view.nodes.values():
            if node.op in CALL_OPS:
                callee = self.function_view(node.attr["f"].func.name)
                call = GraphRef(view.index, node.name, 0, stack)
                found = self._initializer_in(
                    callee, (*stack, (call, _HashableNode(node))), depth + 1
                )
                if found is not None:
                    return found
        return None


@dataclasses.dataclass(frozen=True)
class OldVocabularies:
    """The old derivations of the features, and where they were read.

    Attributes:
      derivations: Transformed feature -> its old derivation (vocabulary features).
      source: Where they come from, as messages say it.
      unknown_why: Why none could be read (a model without transform layer);
        empty when derivations were read.
    """

    derivations: Mapping[str, FeatureDerivation]
    source: str
    unknown_why: str = ""


def tokens_of(derivation: FeatureDerivation) -> tuple[bytes, ...]:
    """The keys of a vocabulary derivation's lookup table, in row order."""
    path = derivation.vocabulary_file
    file_format = derivation.file_format or "text"
    if path is None:
        return ()
    entries = vocabulary_entries(path, file_format)
    if file_format == TFRECORD_GZIP:
        return tuple(entries)
    return tuple(
        table_keys(
            entries,
            path,
            key_index=derivation.key_index,
            delimiter=derivation.delimiter,
            # file_entries is set exactly when the table reads only the first vocab_size.
            declared_size=derivation.vocab_size if derivation.file_entries is not None else None,
        )
    )


def baseline_vocabularies(baseline_uri: str) -> OldVocabularies:
    """Reads the vocabulary derivations of a baseline transform_graph folder.

    Raises:
      InputError: The folder is not a usable Transform output.
    """
    from embedding_guard.bounds import transform_graph

    info = transform_graph.load_transform_graph(baseline_uri)
    return OldVocabularies(dict(info.derivations), f"the baseline transform graph {baseline_uri!r}")


def model_vocabularies(saved_model_dir: str) -> OldVocabularies:
    """Reads the vocabulary derivations of the transform layer inside a model.

    Every object of the model's SavedModel that keeps a `transform_fn` function
    (a TransformFeaturesLayer's loaded Transform graph, in tf_keras, Keras 3 or
    tf.Module exports) is read as graph_analysis reads a transform_fn.

    Args:
      saved_model_dir: The model's SavedModel folder (model_analysis.serving_model_dir).

    Returns:
      The old derivations; none, with unknown_why, when the model has no
      transform layer.
    """
    source = f"the model's transform layer ({saved_model_dir!r})"
    saved_model = graph_analysis.read_saved_model(saved_model_dir)
    meta_graph = saved_model.meta_graphs[0]
    objects = meta_graph.object_graph_def
    holders = [
        child.node_id
        for node in objects.nodes
        for child in node.children
        if child.local_name == _TRANSFORM_FN
        and objects.nodes[child.node_id].WhichOneof("kind")
        in ("bare_concrete_function", "function")
    ]
    derivations: dict[str, FeatureDerivation] = {}
    for node_id in holders:
        tracer = _LoadedTransformTracer(meta_graph)
        for feature, (ref, integer) in _outputs(tracer, objects, node_id).items():
            value = tracer.value(ref)
            raw = tuple(sorted(tracer.raw_features(ref)))
            derivations.setdefault(
                feature,
                graph_analysis._derivation(  # noqa: SLF001 - the one derivation rule.
                    feature, raw, integer, value, saved_model_dir, None, {}
                ),
            )
    if not derivations:
        return OldVocabularies(
            {},
            source,
            "the model holds no transform layer (no Transform `transform_fn` in its "
            "SavedModel), so the vocabulary order it was trained on is not in it",
        )
    return OldVocabularies(derivations, source)


def _outputs(tracer: _LoadedTransformTracer, objects: object, node_id: int) -> dict:
    """Output feature -> (its graph ref, integer) of one saved transform function."""
    proto = objects.nodes[node_id]  # type: ignore[attr-defined]
    if proto.WhichOneof("kind") == "bare_concrete_function":
        name = proto.bare_concrete_function.concrete_function_name
    else:
        name = list(proto.function.concrete_functions)[0]
    concrete = objects.concrete_functions[name]  # type: ignore[attr-defined]
    view = tracer.bind_function(name)
    for i, (feature, _) in enumerate(
        graph_analysis._flatten_spec(concrete.canonicalized_input_signature)  # noqa: SLF001
    ):
        tracer.input_args[(view.index, i)] = feature
    outputs = {}
    flat = graph_analysis._flatten_spec(concrete.output_signature)  # noqa: SLF001
    for i, (feature, dtype) in enumerate(flat):
        if not dtype.endswith("#shape"):
            outputs[feature] = (tracer.ref(view, view.rets[i]), dtype in graph_analysis._INT_DTYPES)  # noqa: SLF001
    return outputs


def remaps(
    bounds: Sequence[FeatureBounds],
    current: Mapping[str, FeatureDerivation],
    old: OldVocabularies,
) -> dict[str, VocabularyRemap]:
    """One comparison per checked vocabulary feature that both graphs derive alike.

    A feature is compared when the current and the old graph both make it by a
    vocabulary lookup with the same offset after it; the rest are left out.

    Args:
      bounds: The checked features' bounds (for the model's table size).
      current: The current graph's derivations.
      old: The old derivations.

    Returns:
      Transformed feature -> its comparison.
    """
    result = {}
    for b in bounds:
        new, previous = current.get(b.feature), old.derivations.get(b.feature)
        if new is None or previous is None or not _comparable(new, previous):
            continue
        new_tokens, old_tokens = tokens_of(new), tokens_of(previous)
        path = previous.vocabulary_file or ""
        result[b.feature] = VocabularyRemap(
            feature=b.feature,
            old_tokens=old_tokens,
            new_tokens=new_tokens,
            old_source=f"{old.source}, vocabulary file {os.path.basename(path)!r}",
            old_num_oov_buckets=previous.num_oov_buckets,
            new_num_oov_buckets=new.num_oov_buckets,
            old_default_value=-1 if previous.default_value is None else previous.default_value,
            old_table_size=b.embedding_input_dim if b.embedding_dim_kind == "model" else None,
        )
    return result


def _comparable(new: FeatureDerivation, old: FeatureDerivation) -> bool:
    return (
        new.kind is DerivationKind.VOCABULARY
        and old.kind is DerivationKind.VOCABULARY
        and new.offset == old.offset == 0
        and new.vocabulary_file is not None
        and old.vocabulary_file is not None
        and storage.exists(old.vocabulary_file)
    )
