"""Reads how the transform graph makes a tensor: the abstract value of the backward walk.

From an output tensor the walk goes back through value-preserving ops to what
decides its range: a lookup table (and behind it the initializer and the asset
file it reads), a hash, a bucketize, a constant offset, or a raw input passed
through. `TransformTracer.value` returns that as a `Value`; `raw_features` lists the
raw inputs a tensor is computed from. References resolve through `GraphIndex`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from typing import Any

from embedding_guard.bounds import graph_protos
from embedding_guard.bounds.graph_derivation import DerivationKind
from embedding_guard.bounds.graph_refs import (
    Capture,
    GraphIndex,
    GraphRef,
    Produced,
    RawInput,
    Resolved,
    Unresolved,
)
from embedding_guard.bounds.vocabulary_files import TEXT, TFRECORD_GZIP

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
_HASH_OPS = frozenset({"StringToHashBucketFast", "StringToHashBucketStrong", "StringToHashBucket"})
_TABLE_INITIALIZERS = frozenset(
    {"InitializeTableFromTextFileV2", "InitializeTableFromTextFile", "InitializeTableFromDataset"}
)
# TextFileIndex.WHOLE_LINE and TextFileIndex.LINE_NUMBER: the layout TFT writes.
_WHOLE_LINE = -2
_LINE_NUMBER = -1


@dataclasses.dataclass(frozen=True)
class Table:
    """The asset file a lookup table is built from, or the problem that hides it.

    Attributes:
      asset: The asset file name, or None when the table's file is unknown.
      file_format: "text" or "tfrecord_gzip".
      problem: Why the asset is unknown.
      key_index: The text column keys come from: -2 (TextFileIndex.WHOLE_LINE)
        or a column of `delimiter`-split lines (store_frequency's "freq token"
        lines use column 1 split on " ").
      delimiter: The column separator of a text file with key_index >= 0.
      declared_size: The initializer's `vocab_size` attribute when set: the
        table then holds that many first lines only; None when unset.
    """

    asset: str | None
    file_format: str | None
    problem: str = ""
    key_index: int = _WHOLE_LINE
    delimiter: str = "\t"
    declared_size: int | None = None


@dataclasses.dataclass(frozen=True)
class Value:
    """What the walk knows of a tensor's values (FeatureDerivation before the file is read)."""

    kind: DerivationKind
    table: Table | None = None
    num_oov_buckets: int = 0
    default_value: int | None = None
    num_buckets: int | None = None
    offset: int = 0
    raw: str | None = None
    detail: str = ""
    missing_key: bytes | int | None = None


def not_traced(detail: str) -> Value:
    """A value the walk cannot bound, and why."""
    return Value(DerivationKind.NOT_TRACED, detail=detail)


class TransformTracer(GraphIndex):
    """The backward walk over one transform MetaGraph, memoised per reference."""

    def __init__(self, meta_graph: Any) -> None:
        super().__init__(meta_graph)
        self._assets_by_tensor = {}
        for asset in self._asset_file_defs():
            self._assets_by_tensor[asset.tensor_info.name.split(":")[0]] = asset.filename
        self._memo: dict[GraphRef, Value] = {}
        self._tf1_initializers: dict[str, Any] | None = None

    def _asset_file_defs(self) -> list[Any]:
        defs = list(self._meta_graph.asset_file_def)
        collection = self._meta_graph.collection_def.get("saved_model_assets")
        if collection is not None:
            for packed in collection.any_list.value:
                defs.append(graph_protos.unpack_asset_file_def(packed))
        return defs

    # -- tables --------------------------------------------------------------------------

    def table(self, ref: GraphRef) -> Table:
        resolved = self.resolve(ref)
        if isinstance(resolved, Capture):
            return self._tf2_table(resolved.object_id)
        if isinstance(resolved, Produced) and resolved.ref.graph == 0:
            return self._tf1_table(resolved.node)
        return Table(None, None, "its lookup table is not a resource this analysis can follow")

    def _tf1_table(self, table_node: Any) -> Table:
        if self._tf1_initializers is None:
            self._tf1_initializers = {}
            for node in self.views[0].nodes.values():
                if node.op in _TABLE_INITIALIZERS:
                    resolved = self.resolve(self.ref(self.views[0], node.input[0]))
                    if isinstance(resolved, Produced):
                        self._tf1_initializers[resolved.node.name] = node
        initializer = self._tf1_initializers.get(table_node.name)
        if initializer is None:
            return Table(None, None, f"no initializer found for table op {table_node.op}")
        return self._from_initializer(GraphRef(0, initializer.name, 0), initializer)

    def _tf2_table(self, object_id: int) -> Table:
        proto = self._object_graph.nodes[object_id]
        children = {child.local_name: child.node_id for child in proto.children}
        if "_initialize" not in children:
            return Table(None, None, "its captured table has no initializer")
        function = self._object_graph.nodes[children["_initialize"]].function
        for name in function.concrete_functions:
            view = self.bind_function(name)
            for node in view.nodes.values():
                if node.op in _TABLE_INITIALIZERS:
                    return self._from_initializer(GraphRef(view.index, node.name, 0), node)
        return Table(None, None, "its captured table's initializer reads no file")

    def _from_initializer(self, ref: GraphRef, node: Any) -> Table:
        file_input = self.ref(self.views[ref.graph], node.input[1], ref.stack)
        if node.op == "InitializeTableFromDataset":
            assets = self._assets_behind(file_input)
            if len(assets) != 1:
                return Table(None, None, f"its dataset initializer reads {len(assets)} asset files")
            return Table(assets[0], TFRECORD_GZIP if assets[0].endswith(".gz") else TEXT)
        key_index, value_index = node.attr["key_index"].i, node.attr["value_index"].i
        if value_index != _LINE_NUMBER or not (key_index == _WHOLE_LINE or key_index >= 0):
            return Table(
                None,
                None,
                f"its text file initializer reads keys from column {key_index} and values "
                f"from column {value_index}, not line numbers",
            )
        # TF2 function bodies omit attributes left at their default (vocab_size -1,
        # delimiter "\t", offset 0), and a missing attr reads as the proto's 0 or "",
        # so presence is tested first; TF1 graphs always carry them.
        offset = node.attr["offset"].i if "offset" in node.attr else 0
        if offset:
            return Table(None, None, f"its text file initializer has offset {offset}")
        declared = node.attr["vocab_size"].i if "vocab_size" in node.attr else -1
        delimiter = node.attr["delimiter"].s.decode("utf-8") if "delimiter" in node.attr else "\t"
        assets = self._assets_behind(file_input)
        if len(assets) != 1:
            return Table(None, None, "its vocabulary file is not an asset of the SavedModel")
        return Table(
            assets[0],
            TEXT,
            key_index=key_index,
            delimiter=delimiter,
            declared_size=declared if declared >= 0 else None,
        )

    def _assets_behind(self, ref: GraphRef) -> list[str]:
        # The file name tensor: a TF1 asset Const, a TF2 captured asset, or, for
        # dataset initializers, any of those upstream of the dataset.
        found: list[str] = []

        def step(resolved: Resolved) -> Iterable[GraphRef]:
            if isinstance(resolved, Capture):
                proto = self._object_graph.nodes[resolved.object_id]
                kind = proto.WhichOneof("kind")
                if kind == "asset":
                    found.append(
                        self._meta_graph.asset_file_def[proto.asset.asset_file_def_index].filename
                    )
                elif kind == "resource":
                    return self._resource_creator_args(resolved, proto)
            elif isinstance(resolved, Produced):
                node_ref, node = resolved.ref, resolved.node
                if (
                    node.op == "Const"
                    and node_ref.graph == 0
                    and node.name in self._assets_by_tensor
                ):
                    found.append(self._assets_by_tensor[node.name])
                else:
                    return self.inputs(node_ref, node)
            return ()

        self._walk_back(ref, step)
        return sorted(set(found))

    def _resource_creator_args(self, resolved: Capture, proto: Any) -> list[GraphRef]:
        """The captured arguments of the functions that create a captured resource."""
        args = []
        children = {c.local_name: c.node_id for c in proto.children}
        creator = self._object_graph.nodes[children.get("_create_resource", resolved.object_id)]
        for name in creator.function.concrete_functions:
            view = self.bind_function(name)
            for arg_index in range(len(view.args)):
                object_id = self.captures.get((view.index, arg_index))
                if object_id is not None:
                    arg = [a for a, i in view.args.items() if i == arg_index][0]
                    args.append(GraphRef(view.index, arg, 0))
        return args

    def _walk_back(self, ref: GraphRef, step: Callable[[Resolved], Iterable[GraphRef]]) -> None:
        """Calls step on what ref resolves to, then, once each, on what the refs it returns do."""
        pending = [ref]
        seen: set[GraphRef] = set()
        while pending:
            current = pending.pop()
            if current in seen:
                continue
            seen.add(current)
            pending.extend(step(self.resolve(current)))

    # -- the value walk ------------------------------------------------------------------

    def value(self, ref: GraphRef, depth: int = 0) -> Value:
        if ref in self._memo:
            return self._memo[ref]
        result = self._value(ref, depth)
        self._memo[ref] = result
        return result

    def _value(self, ref: GraphRef, depth: int) -> Value:
        if depth > 200:
            return not_traced("the graph is too deep to follow")
        resolved = self.resolve(ref)
        if isinstance(resolved, RawInput):
            return Value(DerivationKind.PASSTHROUGH, raw=resolved.feature)
        if isinstance(resolved, Capture):
            return not_traced(f"its values come from {resolved.object_id}")
        if isinstance(resolved, Unresolved):
            return not_traced(f"its values come from {resolved.reason}")
        node_ref, node = resolved.ref, resolved.node
        op = node.op
        inputs = self.inputs(node_ref, node)
        if op in _VALUE_PRESERVING:
            return self.value(inputs[0], depth + 1)
        if op == "SparseToDense":
            inner = self.value(inputs[2], depth + 1)
            fill = self.int_constant(inputs[3])
            if inner.kind is DerivationKind.PASSTHROUGH or fill == 0:
                return inner
            if fill is None:
                return not_traced("a SparseToDense fills missing values with a non-constant")
            return (
                dataclasses.replace(inner, detail=f"missing values are filled with {fill}")
                if inner.kind is DerivationKind.NOT_TRACED
                else not_traced(
                    f"missing values are filled with {fill}, outside what the lookup produces"
                )
            )
        if op == "LookupTableFindV2" or op == "LookupTableFind":
            default = self.int_constant(inputs[2])
            return Value(
                DerivationKind.VOCABULARY,
                table=self.table(inputs[0]),
                default_value=default,
                missing_key=self._missing_key(inputs[1]),
            )
        if op in ("SelectV2", "Select"):
            return self._select(inputs, depth)
        if op in _HASH_OPS:
            return Value(DerivationKind.HASH, num_buckets=node.attr["num_buckets"].i)
        if op in ("UpperBound", "LowerBound"):
            boundaries = self.constant(inputs[0])
            if boundaries is None:
                return not_traced(f"{op} has bucket boundaries that are not a constant")
            return Value(DerivationKind.BUCKETIZE, num_buckets=len(boundaries) + 1)
        if op == "Bucketize":
            return Value(
                DerivationKind.BUCKETIZE, num_buckets=len(node.attr["boundaries"].list.f) + 1
            )
        if op == "BoostedTreesBucketize":
            boundaries = self.constant(inputs[-1])
            if boundaries is None:
                return not_traced("BoostedTreesBucketize has non-constant boundaries")
            return Value(DerivationKind.BUCKETIZE, num_buckets=len(boundaries) + 1)
        if op in ("AddV2", "Add", "Sub"):
            return self._offset(op, inputs, depth)
        return not_traced(f"it is computed by a {op} op, which this analysis does not follow")

    def _missing_key(self, ref: GraphRef) -> bytes | int | None:
        # The key a raw row without values is looked up as: the fill value of a
        # SparseToDense on the key path (TFX's _fill_in_missing), if any.
        for _ in range(100):
            resolved = self.resolve(ref)
            if not isinstance(resolved, Produced):
                return None
            node_ref, node = resolved.ref, resolved.node
            if node.op == "SparseToDense":
                values = self.constant(self.inputs(node_ref, node)[3])
                if values is None or len(values) != 1:
                    return None
                return values[0]
            if node.op not in _VALUE_PRESERVING and node.op != "AsString":
                return None
            ref = self.inputs(node_ref, node)[0]
        return None

    def _select(self, inputs: list[GraphRef], depth: int) -> Value:
        # StaticVocabularyTable / TFT's OOV buckets: where(lookup != default,
        # lookup, hash_bucket(keys, k) + table.size()).
        condition = self.resolve(inputs[0])
        if isinstance(condition, Produced) and condition.node.op in ("NotEqual", "Equal"):
            looked_up, other = inputs[1], inputs[2]
            if condition.node.op == "Equal":
                looked_up, other = other, looked_up
            lookup = self.value(looked_up, depth + 1)
            bucket = self.resolve(other)
            if (
                lookup.kind is DerivationKind.VOCABULARY
                and not lookup.num_oov_buckets
                and isinstance(bucket, Produced)
                and bucket.node.op in ("AddV2", "Add")
            ):
                hashed: Resolved
                size: Resolved
                hashed, size = (self.resolve(r) for r in self.inputs(bucket.ref, bucket.node))
                if (
                    isinstance(hashed, Produced)
                    and isinstance(size, Produced)
                    and hashed.node.op not in _HASH_OPS
                ):
                    hashed, size = size, hashed
                if (
                    isinstance(hashed, Produced)
                    and isinstance(size, Produced)
                    and hashed.node.op in _HASH_OPS
                    and size.node.op in ("LookupTableSizeV2", "LookupTableSize")
                ):
                    return dataclasses.replace(
                        lookup,
                        num_oov_buckets=hashed.node.attr["num_buckets"].i,
                        default_value=None,
                    )
        return not_traced("it is chosen by a Select between values this analysis cannot bound")

    def _offset(self, op: str, inputs: list[GraphRef], depth: int) -> Value:
        for value_index, constant_index in ((0, 1), (1, 0)):
            constant = self.int_constant(inputs[constant_index])
            if constant is None or (op == "Sub" and value_index == 1):
                continue
            inner = self.value(inputs[value_index], depth + 1)
            if inner.kind in (DerivationKind.PASSTHROUGH, DerivationKind.NOT_TRACED):
                return not_traced(f"a constant is added to {inner.kind.value} values")
            return dataclasses.replace(
                inner, offset=inner.offset + (constant if op != "Sub" else -constant)
            )
        return not_traced(f"it is computed by {op} of two non-constant tensors")

    # -- raw sources ---------------------------------------------------------------------

    def raw_features(self, ref: GraphRef) -> frozenset[str]:
        found: set[str] = set()

        def step(resolved: Resolved) -> Iterable[GraphRef]:
            if isinstance(resolved, RawInput):
                found.add(resolved.feature)
            elif isinstance(resolved, Produced):
                node_ref, node = resolved.ref, resolved.node
                # Shapes only carry batch sizes, not values.
                if node.op not in ("Shape", "Size", "Rank", "ShapeN"):
                    return self.inputs(node_ref, node)
            return ()

        self._walk_back(ref, step)
        return frozenset(found)
