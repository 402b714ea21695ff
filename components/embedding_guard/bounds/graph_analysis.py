"""Reads, from a Transform `transform_fn` SavedModel, how each output feature is made.

TFT does not record which vocabulary feeds which output, but the graph does: an
output index is the result of a lookup in a table, the table is initialised from
an asset file, and OOV buckets are a hash of the same keys added to the table's
size. This module walks the graph back from every output of the transform
signature, through TF1 GraphDefs (`force_tf_compat_v1=True`, older pipelines)
and TF2 function libraries with captured resources alike, and names no op by its
node name: only op types, attributes, edges, captures and asset file defs count.

It parses the SavedModel proto only (no session, no `tf.saved_model.load`), so
it is fast and safe on graphs that cannot run eagerly.

This module is the entry: it reads the SavedModel, finds the transform's inputs
and outputs, and turns what the backward walk (graph_tracer, over graph_refs)
finds into one FeatureDerivation per output, counting vocabulary files
(vocabulary_files) where a lookup reads one.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, cast

from tensorboard.compat.proto import struct_pb2, types_pb2

from embedding_guard.bounds import graph_protos
from embedding_guard.bounds.graph_derivation import (
    DerivationKind,
    FeatureDerivation,
    GraphAnalysisError,
)
from embedding_guard.bounds.graph_refs import DamagedConstantError, GraphRef
from embedding_guard.bounds.graph_tracer import TransformTracer, Value, not_traced
from embedding_guard.bounds.vocabulary_files import (
    ASSETS_DIR,
    TEXT,
    TFRECORD_GZIP,
    TFRECORD_GZIP_SUFFIX,
    WHOLE_LINE,
    count_vocabulary,
    first_duplicate,
    read_asset_map,
    vocabulary_entries,
    vocabulary_name_of_asset,
)
from embedding_guard.read import storage

# Callers import the analysis's results and file helpers from here, the module they call.
__all__ = [
    "ASSETS_DIR",
    "SAVED_MODEL_FILE",
    "TEXT",
    "TFRECORD_GZIP",
    "TFRECORD_GZIP_SUFFIX",
    "DerivationKind",
    "FeatureDerivation",
    "GraphAnalysisError",
    "analyze_transform_fn",
    "count_vocabulary",
    "first_duplicate",
    "read_asset_map",
    "read_saved_model",
    "vocabulary_entries",
    "vocabulary_name_of_asset",
]

SAVED_MODEL_FILE = "saved_model.pb"
_TF1_SIGNATURE = "transform_signature"
_TF2_TRANSFORM_FN = "transform_fn"
_INT_DTYPES = frozenset({"DT_INT8", "DT_INT16", "DT_INT32", "DT_INT64", "DT_UINT8", "DT_UINT16"})


def read_saved_model(transform_fn_dir: str) -> Any:
    """Parses transform_fn/saved_model.pb, without TensorFlow (graph_protos.SavedModel).

    Raises:
      GraphAnalysisError: The file is missing or not a SavedModel proto.
    """
    path = os.path.join(transform_fn_dir, SAVED_MODEL_FILE)
    if not storage.exists(path) or storage.isdir(path):
        raise GraphAnalysisError(
            f"Transform graph file {path!r} does not exist or is not a file. Pass the "
            "`transform_graph` output of a Transform component, or re-run Transform."
        )
    try:
        with storage.open_file(path, "rb") as f:
            saved_model = graph_protos.parse_saved_model(f.read())
    except Exception as error:  # noqa: BLE001 - protobuf raises DecodeError or others.
        raise GraphAnalysisError(
            f"Transform graph file {path!r} is not a SavedModel ({type(error).__name__}: "
            f"{error}); the transform graph is damaged: re-run Transform."
        ) from error
    if not saved_model.meta_graphs:
        raise GraphAnalysisError(
            f"Transform graph file {path!r} is not a SavedModel (it holds no MetaGraph); "
            "the transform graph is damaged: re-run Transform."
        )
    return saved_model


def _outputs_tf1(analyzer: TransformTracer, meta_graph: Any) -> dict[str, tuple[GraphRef, bool]]:
    signature = meta_graph.signature_def[_TF1_SIGNATURE]
    for name, info in signature.inputs.items():
        if info.WhichOneof("encoding") == "coo_sparse":
            tensors: tuple[str, ...] = (
                info.coo_sparse.values_tensor_name,
                info.coo_sparse.indices_tensor_name,
                info.coo_sparse.dense_shape_tensor_name,
            )
        else:
            tensors = (info.name,)
        for tensor in tensors:
            analyzer.placeholders[tensor.split(":")[0]] = name
    outputs = {}
    view = analyzer.views[0]
    for name, info in signature.outputs.items():
        integer = types_pb2.DataType.Name(info.dtype) in _INT_DTYPES
        if info.WhichOneof("encoding") == "coo_sparse":
            values = analyzer.ref(view, info.coo_sparse.values_tensor_name)
        else:
            values = analyzer.ref(view, info.name)
        outputs[name] = (values, integer)
    return outputs


def _outputs_tf2(analyzer: TransformTracer, meta_graph: Any) -> dict[str, tuple[GraphRef, bool]]:
    objects = meta_graph.object_graph_def
    root = {child.local_name: child.node_id for child in objects.nodes[0].children}
    if _TF2_TRANSFORM_FN not in root:
        raise KeyError(_TF2_TRANSFORM_FN)
    proto = objects.nodes[root[_TF2_TRANSFORM_FN]]
    kind = proto.WhichOneof("kind")
    if kind == "bare_concrete_function":
        names = [proto.bare_concrete_function.concrete_function_name]
    else:
        names = list(proto.function.concrete_functions)
    name = names[0]
    concrete = objects.concrete_functions[name]
    view = analyzer.bind_function(name)
    flat_inputs = _flatten_spec(concrete.canonicalized_input_signature)
    for i, (feature, _) in enumerate(flat_inputs):
        analyzer.input_args[(view.index, i)] = feature
    flat_outputs = _flatten_spec(concrete.output_signature)
    outputs = {}
    for i, (feature, dtype) in enumerate(flat_outputs):
        if dtype.endswith("#shape"):
            continue
        outputs[feature] = (analyzer.ref(view, view.rets[i]), dtype in _INT_DTYPES)
    return outputs


def _flatten_spec(value: Any, prefix: str = "") -> list[tuple[str, str]]:
    """(feature, dtype) per flat tensor, in `tf.nest.flatten(expand_composites=True)` order."""
    kind = value.WhichOneof("kind")
    if kind == "dict_value":
        flat = []
        for key in sorted(value.dict_value.fields):
            flat.extend(_flatten_spec(value.dict_value.fields[key], key))
        return flat
    if kind in ("tuple_value", "list_value"):
        flat = []
        for item in getattr(value, kind).values:
            flat.extend(_flatten_spec(item, prefix))
        return flat
    if kind == "tensor_spec_value":
        return [(prefix, types_pb2.DataType.Name(value.tensor_spec_value.dtype))]
    if kind == "type_spec_value":
        state = value.type_spec_value.type_state
        dtype = "DT_INVALID"
        for item in state.tuple_value.values:
            if item.WhichOneof("kind") == "tensor_dtype_value":
                dtype = types_pb2.DataType.Name(item.tensor_dtype_value)
        components = value.type_spec_value.num_flat_components or 3
        # SparseTensor flattens to (indices, values, dense_shape); RaggedTensor
        # to (flat_values, row_splits...): the values are at 1 or 0.
        values_index = (
            1
            if value.type_spec_value.type_spec_class == struct_pb2.TypeSpecProto.SPARSE_TENSOR_SPEC
            else 0
        )
        return [
            (prefix, dtype if i == values_index else "DT_INT64#shape") for i in range(components)
        ]
    return []


def analyze_transform_fn(
    transform_fn_dir: str,
    *,
    asset_map: Mapping[str, str] | None = None,
    vocabulary_sizes: Mapping[str, int] | None = None,
) -> dict[str, FeatureDerivation]:
    """Derives every output feature of a transform_fn SavedModel from its graph.

    Args:
      transform_fn_dir: The transform_fn folder (saved_model.pb, assets/).
      asset_map: transformed_metadata/asset_map, to name vocabularies by their
        vocab_filename; None or {} names them by asset file as TFT does.
      vocabulary_sizes: Asset file -> entries, when already counted; the others
        are counted from the asset files.

    Returns:
      Output feature -> its derivation, for every output of the graph.

    Raises:
      GraphAnalysisError: The SavedModel cannot be read, has no transform
        signature, or a vocabulary file cannot be used.
    """
    saved_model = read_saved_model(transform_fn_dir)
    meta_graph = saved_model.meta_graphs[0]
    analyzer = TransformTracer(meta_graph)
    try:
        if _TF1_SIGNATURE in meta_graph.signature_def:
            outputs = _outputs_tf1(analyzer, meta_graph)
        else:
            outputs = _outputs_tf2(analyzer, meta_graph)
    except (KeyError, IndexError) as error:
        raise GraphAnalysisError(
            f"Transform graph {transform_fn_dir!r} has neither a TF1 "
            f"{_TF1_SIGNATURE!r} signature nor a TF2 {_TF2_TRANSFORM_FN!r} function "
            f"({type(error).__name__}: {error}); pass the transform_fn of a Transform output."
        ) from error
    sizes = dict(vocabulary_sizes or {})
    derivations = {}
    for feature in sorted(outputs):
        ref, integer = outputs[feature]
        try:
            value = analyzer.value(ref)
        except DamagedConstantError as error:
            raise GraphAnalysisError(
                f"Transform graph {transform_fn_dir!r} holds a damaged constant behind "
                f"{feature!r} ({error}); re-run Transform to rewrite saved_model.pb."
            ) from error
        raw = tuple(sorted(analyzer.raw_features(ref)))
        derivations[feature] = _derivation(
            feature, raw, integer, value, transform_fn_dir, asset_map, sizes
        )
    return derivations


def _derivation(
    feature: str,
    raw: tuple[str, ...],
    integer: bool,
    value: Value,
    transform_fn_dir: str,
    asset_map: Mapping[str, str] | None,
    sizes: dict[str, int],
) -> FeatureDerivation:
    if not integer and value.kind is not DerivationKind.NOT_TRACED:
        value = not_traced("it does not hold integers")
    # TensorFlow refuses such a graph when it runs; no bound can be read from it.
    for what, count, least in (
        ("OOV buckets", value.num_oov_buckets, 0),
        ("buckets", value.num_buckets, 1),
    ):
        if count is not None and count < least:
            raise GraphAnalysisError(
                f"Transform graph {transform_fn_dir!r} gives {feature!r} {count} {what}, "
                f"fewer than {least}: saved_model.pb is damaged. Re-run Transform."
            )
    if value.kind is DerivationKind.VOCABULARY:
        table = value.table
        if table is None or table.asset is None:
            value = not_traced(table.problem if table else "its lookup table is unknown")
        elif value.num_oov_buckets == 0 and value.default_value is None:
            value = not_traced("its lookup's default value is not a constant")
        else:
            name = vocabulary_name_of_asset(table.asset, asset_map)
            assets_dir = os.path.join(transform_fn_dir, ASSETS_DIR)
            asset, file_format = table.asset, table.file_format
            if (
                not storage.exists(os.path.join(assets_dir, asset))
                and asset_map is not None
                and asset_map.get(name)
            ):
                # asset_map is where TFT itself looks a vocabulary up by name.
                asset = asset_map[name]
                file_format = TFRECORD_GZIP if asset.endswith(TFRECORD_GZIP_SUFFIX) else TEXT
            path = os.path.join(assets_dir, asset)
            # One file can back tables that read it differently (whole lines or a
            # column; all lines or the first vocab_size), so sizes are per layout.
            layout = (table.key_index, table.delimiter, table.declared_size)
            plain = layout == (WHOLE_LINE, "\t", None)
            size_key = asset if plain else f"{asset}\0{layout!r}"
            file_entries = None
            if size_key not in sizes:
                if not storage.exists(path):
                    raise GraphAnalysisError(
                        f"Vocabulary {name!r} of the transform graph has no file in "
                        f"{assets_dir!r} (its lookup table reads {asset!r}). Re-run "
                        "Transform, or restore the transform_fn/assets folder."
                    )
                # A Table that names an asset always names its format too.
                sizes[size_key] = count_vocabulary(
                    path,
                    cast(str, file_format),
                    name,
                    key_index=table.key_index,
                    delimiter=table.delimiter,
                    declared_size=table.declared_size,
                )
            if table.declared_size is not None:
                file_entries = len(vocabulary_entries(path, cast(str, file_format)))
            return FeatureDerivation(
                feature=feature,
                raw_features=raw,
                kind=DerivationKind.VOCABULARY,
                integer=integer,
                vocabulary=name,
                vocabulary_file=path,
                file_format=file_format,
                vocab_size=sizes[size_key],
                file_entries=file_entries,
                key_index=table.key_index,
                delimiter=table.delimiter,
                num_oov_buckets=value.num_oov_buckets,
                default_value=value.default_value,
                offset=value.offset,
                missing_key=value.missing_key,
            )
    return FeatureDerivation(
        feature=feature,
        raw_features=raw,
        kind=value.kind,
        integer=integer,
        num_buckets=value.num_buckets,
        offset=value.offset,
        detail=value.detail,
    )
