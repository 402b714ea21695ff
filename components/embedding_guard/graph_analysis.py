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
"""

from __future__ import annotations

import dataclasses
import enum
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, cast

from tensorflow.core.framework import tensor_pb2, types_pb2
from tensorflow.core.protobuf import meta_graph_pb2, saved_model_pb2, struct_pb2
from tfx.dsl.io import fileio

from embedding_guard.errors import InputError

SAVED_MODEL_FILE = "saved_model.pb"
ASSETS_DIR = "assets"
TFRECORD_GZIP_SUFFIX = ".tfrecord.gz"
TEXT = "text"
TFRECORD_GZIP = "tfrecord_gzip"
_TF1_SIGNATURE = "transform_signature"
_TF2_TRANSFORM_FN = "transform_fn"

# Ops whose output is their first input's values, reshaped or retyped.
_VALUE_PRESERVING = frozenset(
    {
        "Identity",
        "Snapshot",
        "StopGradient",
        "PreventGradient",
        "Reshape",
        "ExpandDims",
        "Squeeze",
        "EnsureShape",
        "Cast",
        "StridedSlice",
        "GatherV2",
        "Gather",
        "Tile",
        "BroadcastTo",
        "CheckNumerics",
    }
)
# Ops that change a tensor's shape but keep its values in order.
_SHAPE_ONLY = frozenset({"Reshape", "ExpandDims", "Squeeze", "EnsureShape"})
_CALL_OPS = frozenset({"PartitionedCall", "StatefulPartitionedCall"})
_HASH_OPS = frozenset({"StringToHashBucketFast", "StringToHashBucketStrong", "StringToHashBucket"})
_TABLE_INITIALIZERS = frozenset(
    {"InitializeTableFromTextFileV2", "InitializeTableFromTextFile", "InitializeTableFromDataset"}
)
# TextFileIndex.WHOLE_LINE and TextFileIndex.LINE_NUMBER: the layout TFT writes.
_WHOLE_LINE = -2
_LINE_NUMBER = -1
_INT_DTYPES = frozenset({"DT_INT8", "DT_INT16", "DT_INT32", "DT_INT64", "DT_UINT8", "DT_UINT16"})


class GraphAnalysisError(InputError):
    """A transform_fn SavedModel cannot be read; the message names the path."""


class DerivationKind(str, enum.Enum):
    """How the graph makes an output feature."""

    VOCABULARY = "vocabulary"
    HASH = "hash"
    BUCKETIZE = "bucketize"
    PASSTHROUGH = "passthrough"
    NOT_TRACED = "not traced"


@dataclasses.dataclass(frozen=True)
class FeatureDerivation:
    """How one transformed output feature is computed, read from the graph.

    Attributes:
      feature: Transformed (output) feature name.
      raw_features: Raw input features the output is computed from, sorted.
      kind: The kind of computation that decides its values' range.
      integer: True when the output holds integers.
      vocabulary: The vocabulary's name (its `vocab_filename`, through
        transformed_metadata/asset_map where present), for VOCABULARY.
      vocabulary_file: The asset file the lookup table is built from.
      file_format: "text" or "tfrecord_gzip".
      vocab_size: Entries the table holds, read as TensorFlow reads the file.
      num_oov_buckets: Hash buckets after the vocabulary for unknown keys.
      default_value: The value for unknown keys when num_oov_buckets is 0.
      num_buckets: Hash or bucketize bucket count.
      offset: A constant added after the lookup, hash or bucketize.
      missing_key: For a lookup whose keys are a sparse raw feature made dense,
        the key a row without values is looked up as (b"" in TFX's taxi
        example); None otherwise.
      detail: Why the output is not traced, or other facts worth showing.
    """

    feature: str
    raw_features: tuple[str, ...]
    kind: DerivationKind
    integer: bool = True
    vocabulary: str | None = None
    vocabulary_file: str | None = None
    file_format: str | None = None
    vocab_size: int | None = None
    num_oov_buckets: int = 0
    default_value: int | None = None
    num_buckets: int | None = None
    offset: int = 0
    missing_key: bytes | int | None = None
    detail: str = ""

    @property
    def value_range(self) -> tuple[int, int] | None:
        """[low, high) of every value the graph can produce, or None when unbounded."""
        if self.kind is DerivationKind.VOCABULARY:
            if self.vocab_size is None:
                return None
            low, high = 0, self.vocab_size + self.num_oov_buckets
            if self.num_oov_buckets == 0 and self.default_value is not None:
                low = min(low, self.default_value)
                high = max(high, self.default_value + 1)
        elif (
            self.kind in (DerivationKind.HASH, DerivationKind.BUCKETIZE)
            and self.num_buckets is not None
        ):
            low, high = 0, self.num_buckets
        else:
            return None
        return low + self.offset, high + self.offset

    def describe(self) -> str:
        """One sentence on how the graph makes the feature, for reports."""
        where = f"in the transform graph (from raw {_names(self.raw_features)})"
        offset = f", then {self.offset:+d}" if self.offset else ""
        if self.kind is DerivationKind.VOCABULARY:
            if self.num_oov_buckets:
                unknown = f" + {self.num_oov_buckets} OOV bucket(s)"
            else:
                unknown = f", default_value {self.default_value} for unknown values"
            return (
                f"vocabulary {self.vocabulary!r} ({self.vocab_size} entries){unknown}{offset}, "
                f"from the lookup table that produces {self.feature} {where}"
            )
        if self.kind is DerivationKind.HASH:
            return (
                f"hash into {self.num_buckets} buckets{offset} that produces {self.feature} {where}"
            )
        if self.kind is DerivationKind.BUCKETIZE:
            return (
                f"bucketize into {self.num_buckets} buckets{offset} that produces "
                f"{self.feature} {where}"
            )
        if self.kind is DerivationKind.PASSTHROUGH:
            return (
                f"{self.feature} passes raw {_names(self.raw_features)} through unchanged: "
                "the transform graph gives it no bound"
            )
        return f"{self.feature} is not traced in the transform graph: {self.detail}"


def _names(names: Sequence[str]) -> str:
    return ", ".join(repr(n) for n in names) if names else "(no raw feature)"


# --- Abstract values of the backward walk -------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Table:
    asset: str | None
    file_format: str | None
    problem: str = ""


@dataclasses.dataclass(frozen=True)
class _Value:
    kind: DerivationKind
    table: _Table | None = None
    num_oov_buckets: int = 0
    default_value: int | None = None
    num_buckets: int | None = None
    offset: int = 0
    raw: str | None = None
    detail: str = ""
    missing_key: bytes | int | None = None


def _not_traced(detail: str) -> _Value:
    return _Value(DerivationKind.NOT_TRACED, detail=detail)


def _tensor_values(tensor: tensor_pb2.TensorProto) -> list:
    from tensorflow.python.framework import tensor_util  # noqa: PLC0415

    return tensor_util.MakeNdarray(tensor).reshape(-1).tolist()


@dataclasses.dataclass(frozen=True)
class _Ref:
    """A tensor: a node's output (or a function argument) in one graph, in one call context."""

    graph: int
    node: str
    port: int
    stack: tuple = ()


class _GraphView:
    def __init__(
        self,
        index: int,
        nodes: Iterable[Any],
        args: Sequence[str] = (),
        rets: Mapping[int, str] | None = None,
        name: str = "",
    ) -> None:
        self.index = index
        self.name = name
        self.nodes = {node.name: node for node in nodes}
        self.args = {arg: i for i, arg in enumerate(args)}
        self.rets = rets or {}


class _Analyzer:
    def __init__(self, meta_graph: meta_graph_pb2.MetaGraphDef, path: str):
        self._path = path
        self._meta_graph = meta_graph
        graph_def = meta_graph.graph_def
        self.views = [_GraphView(0, graph_def.node, name="<graph>")]
        self._functions = {}
        for function in graph_def.library.function:
            self._functions[function.signature.name] = function
        self._function_views: dict[str, _GraphView] = {}
        self._assets_by_tensor = {}
        for asset in self._asset_file_defs():
            self._assets_by_tensor[asset.tensor_info.name.split(":")[0]] = asset.filename
        self._object_graph = meta_graph.object_graph_def
        self._memo: dict[_Ref, _Value] = {}
        self._raw_memo: dict[_Ref, frozenset] = {}
        # Set per entry point: graph index -> arg index -> raw feature / capture node id.
        self.input_args: dict[tuple[int, int], str] = {}
        self.placeholders: dict[str, str] = {}
        self.captures: dict[tuple[int, int], int] = {}
        self._tf1_initializers: dict[str, Any] | None = None

    def _asset_file_defs(self) -> list[Any]:
        defs = list(self._meta_graph.asset_file_def)
        collection = self._meta_graph.collection_def.get("saved_model_assets")
        if collection is not None:
            for packed in collection.any_list.value:
                asset = meta_graph_pb2.AssetFileDef()
                packed.Unpack(asset)
                defs.append(asset)
        return defs

    def function_view(self, name: str) -> _GraphView:
        if name not in self._function_views:
            function = self._functions[name]
            rets = dict(function.ret)
            outputs = [rets[arg.name] for arg in function.signature.output_arg]
            view = _GraphView(
                len(self.views),
                function.node_def,
                [arg.name for arg in function.signature.input_arg],
                dict(enumerate(outputs)),
                name,
            )
            self.views.append(view)
            self._function_views[name] = view
        return self._function_views[name]

    # -- references ----------------------------------------------------------------------

    def ref(self, view: _GraphView, text: str, stack: tuple = ()) -> _Ref:
        """Parses an input string of a node in view ("n:3" in a GraphDef, "n:out:3" in a function)."""
        text = text.lstrip("^")
        parts = text.split(":")
        if view.index == 0:
            return _Ref(0, parts[0], int(parts[1]) if len(parts) > 1 else 0, stack)
        if len(parts) == 1:
            return _Ref(view.index, parts[0], 0, stack)
        node = view.nodes.get(parts[0])
        port = int(parts[2]) if len(parts) > 2 else 0
        if node is not None and parts[1] != "output" and node.op not in _CALL_OPS:
            port = self._port_offset(node.op, parts[1]) + port
        return _Ref(view.index, parts[0], port, stack)

    @staticmethod
    def _port_offset(op: str, output_arg: str) -> int:
        # Output arguments with one tensor each cover every op this walk reads.
        from tensorflow.python.framework import op_def_registry  # noqa: PLC0415

        op_def = op_def_registry.get(op)
        if op_def is None:
            return 0
        for i, arg in enumerate(op_def.output_arg):
            if arg.name == output_arg:
                return i
        return 0

    def node(self, ref: _Ref) -> Any:
        return self.views[ref.graph].nodes.get(ref.node)

    def inputs(self, ref: _Ref, node: Any) -> list[_Ref]:
        view = self.views[ref.graph]
        return [self.ref(view, text, ref.stack) for text in node.input if not text.startswith("^")]

    def resolve(self, ref: _Ref) -> tuple[Any, ...]:
        """Follows calls, function arguments and identities to the producing op.

        Returns ("node", ref, node), ("input", raw_name), ("capture", object node id)
        or ("unknown", text).
        """
        for _ in range(10_000):
            view = self.views[ref.graph]
            if ref.node in view.args and ref.node not in view.nodes:
                arg_index = view.args[ref.node]
                if ref.stack:
                    caller_ref, caller_node = ref.stack[-1]
                    caller_inputs = self.inputs(
                        _Ref(caller_ref.graph, caller_ref.node, 0, ref.stack[:-1]), caller_node
                    )
                    ref = caller_inputs[arg_index]
                    continue
                if (ref.graph, arg_index) in self.input_args:
                    return ("input", self.input_args[(ref.graph, arg_index)])
                if (ref.graph, arg_index) in self.captures:
                    return ("capture", self.captures[(ref.graph, arg_index)])
                return ("unknown", f"argument {ref.node!r} of {view.name}")
            node = view.nodes.get(ref.node)
            if node is None:
                return ("unknown", f"tensor {ref.node!r} missing from {view.name}")
            if node.op == "Placeholder" and ref.graph == 0 and node.name in self.placeholders:
                return ("input", self.placeholders[node.name])
            if node.op in _CALL_OPS:
                callee = self.function_view(node.attr["f"].func.name)
                ref = self.ref(callee, callee.rets[ref.port], ref.stack + ((ref, node),))
                continue
            if node.op == "IdentityN":
                ref = self.inputs(ref, node)[ref.port]
                continue
            if node.op in ("Identity", "Snapshot"):
                ref = self.inputs(ref, node)[0]
                continue
            return ("node", ref, node)
        return ("unknown", "reference cycle")

    # -- constants -----------------------------------------------------------------------

    def constant(self, ref: _Ref) -> list | None:
        resolved = self.resolve(ref)
        while resolved[0] == "node" and resolved[2].op in _SHAPE_ONLY:
            resolved = self.resolve(self.inputs(resolved[1], resolved[2])[0])
        if resolved[0] == "capture":
            proto = self._object_graph.nodes[resolved[1]]
            if proto.WhichOneof("kind") != "constant":
                return None
            node = self.views[0].nodes.get(proto.constant.operation)
        elif resolved[0] == "node":
            node = resolved[2]
        else:
            return None
        if node is None or node.op != "Const":
            return None
        return _tensor_values(node.attr["value"].tensor)

    def _int_constant(self, ref: _Ref) -> int | None:
        values = self.constant(ref)
        if values is None or len(values) != 1 or not isinstance(values[0], int):
            return None
        return values[0]

    # -- tables --------------------------------------------------------------------------

    def table(self, ref: _Ref) -> _Table:
        resolved = self.resolve(ref)
        if resolved[0] == "capture":
            return self._tf2_table(resolved[1])
        if resolved[0] == "node" and resolved[1].graph == 0:
            return self._tf1_table(resolved[2])
        return _Table(None, None, "its lookup table is not a resource this analysis can follow")

    def _tf1_table(self, table_node: Any) -> _Table:
        if self._tf1_initializers is None:
            self._tf1_initializers = {}
            for node in self.views[0].nodes.values():
                if node.op in _TABLE_INITIALIZERS:
                    resolved = self.resolve(self.ref(self.views[0], node.input[0]))
                    if resolved[0] == "node":
                        self._tf1_initializers[resolved[2].name] = node
        initializer = self._tf1_initializers.get(table_node.name)
        if initializer is None:
            return _Table(None, None, f"no initializer found for table op {table_node.op}")
        return self._from_initializer(_Ref(0, initializer.name, 0), initializer)

    def _tf2_table(self, object_id: int) -> _Table:
        proto = self._object_graph.nodes[object_id]
        children = {child.local_name: child.node_id for child in proto.children}
        if "_initialize" not in children:
            return _Table(None, None, "its captured table has no initializer")
        function = self._object_graph.nodes[children["_initialize"]].function
        for name in function.concrete_functions:
            view = self._bind_function(name)
            for node in view.nodes.values():
                if node.op in _TABLE_INITIALIZERS:
                    return self._from_initializer(_Ref(view.index, node.name, 0), node)
        return _Table(None, None, "its captured table's initializer reads no file")

    def _bind_function(self, name: str) -> _GraphView:
        view = self.function_view(name)
        concrete = self._object_graph.concrete_functions.get(name)
        bound = list(concrete.bound_inputs) if concrete is not None else []
        first = len(view.args) - len(bound)
        for i, object_id in enumerate(bound):
            self.captures[(view.index, first + i)] = object_id
        return view

    def _from_initializer(self, ref: _Ref, node: Any) -> _Table:
        file_input = self.ref(self.views[ref.graph], node.input[1], ref.stack)
        if node.op == "InitializeTableFromDataset":
            assets = self._assets_behind(file_input)
            if len(assets) != 1:
                return _Table(
                    None, None, f"its dataset initializer reads {len(assets)} asset files"
                )
            return _Table(assets[0], TFRECORD_GZIP if assets[0].endswith(".gz") else TEXT)
        if node.attr["key_index"].i != _WHOLE_LINE or node.attr["value_index"].i != _LINE_NUMBER:
            return _Table(
                None, None, "its text file initializer does not map whole lines to line numbers"
            )
        if node.attr["offset"].i:
            return _Table(
                None, None, f"its text file initializer has offset {node.attr['offset'].i}"
            )
        assets = self._assets_behind(file_input)
        if len(assets) != 1:
            return _Table(None, None, "its vocabulary file is not an asset of the SavedModel")
        return _Table(assets[0], TEXT)

    def _assets_behind(self, ref: _Ref) -> list[str]:
        # The file name tensor: a TF1 asset Const, a TF2 captured asset, or, for
        # dataset initializers, any of those upstream of the dataset.
        found: list[str] = []
        pending = [ref]
        seen = set()
        while pending:
            current = pending.pop()
            if current in seen:
                continue
            seen.add(current)
            resolved = self.resolve(current)
            if resolved[0] == "capture":
                proto = self._object_graph.nodes[resolved[1]]
                kind = proto.WhichOneof("kind")
                if kind == "asset":
                    found.append(
                        self._meta_graph.asset_file_def[proto.asset.asset_file_def_index].filename
                    )
                elif kind == "resource":
                    children = {c.local_name: c.node_id for c in proto.children}
                    creator = self._object_graph.nodes[
                        children.get("_create_resource", resolved[1])
                    ]
                    for name in creator.function.concrete_functions:
                        view = self._bind_function(name)
                        for arg_index in range(len(view.args)):
                            object_id = self.captures.get((view.index, arg_index))
                            if object_id is not None:
                                arg = [a for a, i in view.args.items() if i == arg_index][0]
                                pending.append(_Ref(view.index, arg, 0))
            elif resolved[0] == "node":
                node_ref, node = resolved[1], resolved[2]
                if (
                    node.op == "Const"
                    and node_ref.graph == 0
                    and node.name in self._assets_by_tensor
                ):
                    found.append(self._assets_by_tensor[node.name])
                else:
                    pending.extend(self.inputs(node_ref, node))
        return sorted(set(found))

    # -- the value walk ------------------------------------------------------------------

    def value(self, ref: _Ref, depth: int = 0) -> _Value:
        if ref in self._memo:
            return self._memo[ref]
        result = self._value(ref, depth)
        self._memo[ref] = result
        return result

    def _value(self, ref: _Ref, depth: int) -> _Value:
        if depth > 200:
            return _not_traced("the graph is too deep to follow")
        resolved = self.resolve(ref)
        if resolved[0] == "input":
            return _Value(DerivationKind.PASSTHROUGH, raw=resolved[1])
        if resolved[0] != "node":
            return _not_traced(f"its values come from {resolved[1]}")
        node_ref, node = resolved[1], resolved[2]
        op = node.op
        inputs = self.inputs(node_ref, node)
        if op in _VALUE_PRESERVING:
            return self.value(inputs[0], depth + 1)
        if op == "SparseToDense":
            inner = self.value(inputs[2], depth + 1)
            fill = self._int_constant(inputs[3])
            if inner.kind is DerivationKind.PASSTHROUGH or fill == 0:
                return inner
            if fill is None:
                return _not_traced("a SparseToDense fills missing values with a non-constant")
            return (
                dataclasses.replace(inner, detail=f"missing values are filled with {fill}")
                if inner.kind is DerivationKind.NOT_TRACED
                else _not_traced(
                    f"missing values are filled with {fill}, outside what the lookup produces"
                )
            )
        if op == "LookupTableFindV2" or op == "LookupTableFind":
            default = self._int_constant(inputs[2])
            return _Value(
                DerivationKind.VOCABULARY,
                table=self.table(inputs[0]),
                default_value=default,
                missing_key=self._missing_key(inputs[1]),
            )
        if op in ("SelectV2", "Select"):
            return self._select(inputs, depth)
        if op in _HASH_OPS:
            return _Value(DerivationKind.HASH, num_buckets=node.attr["num_buckets"].i)
        if op in ("UpperBound", "LowerBound"):
            boundaries = self.constant(inputs[0])
            if boundaries is None:
                return _not_traced(f"{op} has bucket boundaries that are not a constant")
            return _Value(DerivationKind.BUCKETIZE, num_buckets=len(boundaries) + 1)
        if op == "Bucketize":
            return _Value(
                DerivationKind.BUCKETIZE, num_buckets=len(node.attr["boundaries"].list.f) + 1
            )
        if op == "BoostedTreesBucketize":
            boundaries = self.constant(inputs[-1])
            if boundaries is None:
                return _not_traced("BoostedTreesBucketize has non-constant boundaries")
            return _Value(DerivationKind.BUCKETIZE, num_buckets=len(boundaries) + 1)
        if op in ("AddV2", "Add", "Sub"):
            return self._offset(op, inputs, depth)
        return _not_traced(f"it is computed by a {op} op, which this analysis does not follow")

    def _missing_key(self, ref: _Ref) -> bytes | int | None:
        # The key a raw row without values is looked up as: the fill value of a
        # SparseToDense on the key path (TFX's _fill_in_missing), if any.
        for _ in range(100):
            resolved = self.resolve(ref)
            if resolved[0] != "node":
                return None
            node_ref, node = resolved[1], resolved[2]
            if node.op == "SparseToDense":
                values = self.constant(self.inputs(node_ref, node)[3])
                if values is None or len(values) != 1:
                    return None
                return values[0]
            if node.op not in _VALUE_PRESERVING and node.op != "AsString":
                return None
            ref = self.inputs(node_ref, node)[0]
        return None

    def _select(self, inputs: list[_Ref], depth: int) -> _Value:
        # StaticVocabularyTable / TFT's OOV buckets: where(lookup != default,
        # lookup, hash_bucket(keys, k) + table.size()).
        condition = self.resolve(inputs[0])
        if condition[0] == "node" and condition[2].op in ("NotEqual", "Equal"):
            looked_up, other = inputs[1], inputs[2]
            if condition[2].op == "Equal":
                looked_up, other = other, looked_up
            lookup = self.value(looked_up, depth + 1)
            bucket = self.resolve(other)
            if (
                lookup.kind is DerivationKind.VOCABULARY
                and not lookup.num_oov_buckets
                and bucket[0] == "node"
                and bucket[2].op in ("AddV2", "Add")
            ):
                hashed, size = (self.resolve(r) for r in self.inputs(bucket[1], bucket[2]))
                if hashed[0] == "node" and size[0] == "node" and hashed[2].op not in _HASH_OPS:
                    hashed, size = size, hashed
                if (
                    hashed[0] == "node"
                    and size[0] == "node"
                    and hashed[2].op in _HASH_OPS
                    and size[2].op in ("LookupTableSizeV2", "LookupTableSize")
                ):
                    return dataclasses.replace(
                        lookup,
                        num_oov_buckets=hashed[2].attr["num_buckets"].i,
                        default_value=None,
                    )
        return _not_traced("it is chosen by a Select between values this analysis cannot bound")

    def _offset(self, op: str, inputs: list[_Ref], depth: int) -> _Value:
        for value_index, constant_index in ((0, 1), (1, 0)):
            constant = self._int_constant(inputs[constant_index])
            if constant is None or (op == "Sub" and value_index == 1):
                continue
            inner = self.value(inputs[value_index], depth + 1)
            if inner.kind in (DerivationKind.PASSTHROUGH, DerivationKind.NOT_TRACED):
                return _not_traced(f"a constant is added to {inner.kind.value} values")
            return dataclasses.replace(
                inner, offset=inner.offset + (constant if op != "Sub" else -constant)
            )
        return _not_traced(f"it is computed by {op} of two non-constant tensors")

    # -- raw sources ---------------------------------------------------------------------

    def raw_features(self, ref: _Ref) -> frozenset:
        found: set[str] = set()
        pending = [ref]
        seen: set[_Ref] = set()
        while pending:
            current = pending.pop()
            if current in seen:
                continue
            seen.add(current)
            resolved = self.resolve(current)
            if resolved[0] == "input":
                found.add(resolved[1])
            elif resolved[0] == "node":
                node_ref, node = resolved[1], resolved[2]
                # Shapes only carry batch sizes, not values.
                if node.op in ("Shape", "Size", "Rank", "ShapeN"):
                    continue
                pending.extend(self.inputs(node_ref, node))
        return frozenset(found)


def _flatten_spec(value: struct_pb2.StructuredValue, prefix: str = "") -> list[tuple[str, str]]:
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


def read_saved_model(transform_fn_dir: str) -> saved_model_pb2.SavedModel:
    """Parses transform_fn/saved_model.pb.

    Raises:
      GraphAnalysisError: The file is missing or not a SavedModel proto.
    """
    path = os.path.join(transform_fn_dir, SAVED_MODEL_FILE)
    if not fileio.exists(path) or fileio.isdir(path):
        raise GraphAnalysisError(
            f"Transform graph file {path!r} does not exist or is not a file. Pass the "
            "`transform_graph` output of a Transform component, or re-run Transform."
        )
    saved_model = saved_model_pb2.SavedModel()
    try:
        with fileio.open(path, "rb") as f:
            saved_model.ParseFromString(f.read())
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


def _outputs_tf1(
    analyzer: _Analyzer, meta_graph: meta_graph_pb2.MetaGraphDef
) -> dict[str, tuple[_Ref, bool]]:
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


def _outputs_tf2(
    analyzer: _Analyzer, meta_graph: meta_graph_pb2.MetaGraphDef
) -> dict[str, tuple[_Ref, bool]]:
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
    view = analyzer._bind_function(name)  # noqa: SLF001
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


def read_asset_map(transformed_metadata_dir: str | None) -> dict[str, str] | None:
    """Reads transformed_metadata/asset_map (vocab_filename -> asset file), None if absent.

    Raises:
      GraphAnalysisError: The file is not JSON, or not an object of strings.
    """
    if transformed_metadata_dir is None:
        return None
    path = os.path.join(transformed_metadata_dir, "asset_map")
    if not fileio.exists(path):
        return None
    if fileio.isdir(path):
        raise GraphAnalysisError(
            f"{path!r} is a folder, not Transform's asset_map JSON file; re-run Transform."
        )
    try:
        with fileio.open(path, "rb") as f:
            mapping = json.loads(f.read().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise GraphAnalysisError(
            f"{path!r} is not valid UTF-8 JSON ({error}); the transform graph is damaged: "
            "re-run Transform."
        ) from error
    if not isinstance(mapping, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in mapping.items()
    ):
        raise GraphAnalysisError(
            f"{path!r} must be a JSON object mapping vocabulary names to asset file names, "
            f"got {_clip(mapping)!r}; the transform graph is damaged: re-run Transform."
        )
    escaping = sorted(v for v in mapping.values() if os.path.basename(v) != v or v in ("", ".."))
    if escaping:
        # Asset names are file names inside transform_fn/assets; a path would make
        # the validator read (and quote in messages) a file outside the graph.
        raise GraphAnalysisError(
            f"{path!r} maps vocabularies to {escaping!r}, which are not file names inside "
            "transform_fn/assets; the transform graph is damaged: re-run Transform."
        )
    return mapping


def _clip(value: object) -> str:
    text = json.dumps(value)
    return text if len(text) <= 80 else text[:77] + "..."


def vocabulary_name_of_asset(asset: str, asset_map: Mapping[str, str] | None) -> str:
    """The vocab_filename behind an asset file: asset_map's key, else the file's stem as TFT names it."""
    for name, file_name in (asset_map or {}).items():
        if file_name == asset:
            return name
    return asset[: -len(TFRECORD_GZIP_SUFFIX)] if asset.endswith(TFRECORD_GZIP_SUFFIX) else asset


def vocabulary_entries(path: str, file_format: str) -> list[bytes]:
    """The keys a lookup table built from the file holds, as TensorFlow reads them.

    TextFileInitializer reads line by line and drops one trailing "\\r" of each
    line (CRLF files), keeps a lone "\\r" inside a line, and fails on empty lines;
    tfrecord_gzip vocabularies hold one key per record.

    Raises:
      GraphAnalysisError: The file cannot be read, or TensorFlow could not build a
        table from it (an empty line).
    """
    if fileio.isdir(path):
        raise GraphAnalysisError(
            f"Vocabulary file {path!r} is a folder; the transform graph is damaged: restore "
            "the transform_fn/assets folder, or re-run Transform."
        )
    if file_format == TFRECORD_GZIP:
        import tensorflow as tf  # noqa: PLC0415

        entries = []
        try:
            for batch in tf.data.TFRecordDataset(path, compression_type="GZIP").batch(100_000):
                entries.extend(batch.numpy().tolist())
        except tf.errors.OpError as error:
            raise GraphAnalysisError(
                f"Vocabulary file {path!r} cannot be read as gzip TFRecords "
                f"({error.message.splitlines()[0]}); re-run Transform."
            ) from error
        return entries
    with fileio.open(path, "rb") as f:
        lines = f.read().split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    entries = [line[:-1] if line.endswith(b"\r") else line for line in lines]
    for number, entry in enumerate(entries, 1):
        if entry == b"":
            raise GraphAnalysisError(
                f"Vocabulary file {path!r} has an empty line (line {number}), so TensorFlow "
                "cannot build its lookup table ('empty line found'). Transform never writes "
                "one: the file was edited or damaged; re-run Transform."
            )
    return entries


def first_duplicate(entries: list[bytes]) -> tuple[bytes, int, int] | None:
    """(entry, first line, second line) of the first key held twice, or None."""
    if len(set(entries)) == len(entries):
        return None
    first_seen: dict[bytes, int] = {}
    for number, entry in enumerate(entries, 1):
        if entry in first_seen:
            return entry, first_seen[entry], number
        first_seen[entry] = number
    return None


def count_vocabulary(path: str, file_format: str, name: str) -> int:
    """Entries of a vocabulary file as its lookup table would hold them.

    Raises:
      GraphAnalysisError: The file is empty or holds a key twice (TensorFlow fails
        with 'HashTable has different value for same key').
    """
    entries = vocabulary_entries(path, file_format)
    unit = "record" if file_format == TFRECORD_GZIP else "line"
    if not entries:
        raise GraphAnalysisError(
            f"Vocabulary {name!r} ({path!r}) is empty. Transform never writes an empty "
            "vocabulary (it adds a placeholder entry), so the file was truncated or "
            "replaced: re-run Transform, or restore the transform_fn/assets folder."
        )
    duplicate = first_duplicate(entries)
    if duplicate is not None:
        entry, first, second = duplicate
        raise GraphAnalysisError(
            f"Vocabulary {name!r} ({path!r}) holds {entry!r} twice ({unit}s {first} and "
            f"{second}) as TensorFlow reads it (a line's trailing '\\r' dropped), so no "
            "lookup table can be built from it (TensorFlow fails with 'HashTable has "
            "different value for same key'). Transform never writes an entry twice: the "
            "file was edited or damaged; re-run Transform."
        )
    return len(entries)


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
    analyzer = _Analyzer(meta_graph, transform_fn_dir)
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
        value = analyzer.value(ref)
        raw = tuple(sorted(analyzer.raw_features(ref)))
        derivations[feature] = _derivation(
            feature, raw, integer, value, transform_fn_dir, asset_map, sizes
        )
    return derivations


def _derivation(
    feature: str,
    raw: tuple[str, ...],
    integer: bool,
    value: _Value,
    transform_fn_dir: str,
    asset_map: Mapping[str, str] | None,
    sizes: dict[str, int],
) -> FeatureDerivation:
    if not integer and value.kind is not DerivationKind.NOT_TRACED:
        value = _not_traced("it does not hold integers")
    if value.kind is DerivationKind.VOCABULARY:
        table = value.table
        if table is None or table.asset is None:
            value = _not_traced(table.problem if table else "its lookup table is unknown")
        elif value.num_oov_buckets == 0 and value.default_value is None:
            value = _not_traced("its lookup's default value is not a constant")
        else:
            name = vocabulary_name_of_asset(table.asset, asset_map)
            assets_dir = os.path.join(transform_fn_dir, ASSETS_DIR)
            asset, file_format = table.asset, table.file_format
            if (
                not fileio.exists(os.path.join(assets_dir, asset))
                and asset_map is not None
                and asset_map.get(name)
            ):
                # asset_map is where TFT itself looks a vocabulary up by name.
                asset = asset_map[name]
                file_format = TFRECORD_GZIP if asset.endswith(TFRECORD_GZIP_SUFFIX) else TEXT
            path = os.path.join(assets_dir, asset)
            if asset not in sizes:
                if not fileio.exists(path):
                    raise GraphAnalysisError(
                        f"Vocabulary {name!r} of the transform graph has no file in "
                        f"{assets_dir!r} (its lookup table reads {asset!r}). Re-run "
                        "Transform, or restore the transform_fn/assets folder."
                    )
                # A _Table that names an asset always names its format too.
                sizes[asset] = count_vocabulary(path, cast(str, file_format), name)
            return FeatureDerivation(
                feature=feature,
                raw_features=raw,
                kind=DerivationKind.VOCABULARY,
                integer=integer,
                vocabulary=name,
                vocabulary_file=path,
                file_format=file_format,
                vocab_size=sizes[asset],
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
