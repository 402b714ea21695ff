"""Traces a SavedModel signature's graph to its table lookups and their indices.

The graph is read from `saved_model.pb` as a protocol buffer (no variables are
restored, nothing is executed). From the serving signature's outputs the walk
goes through the function library to every `GatherV2` / `ResourceGather` on a
variable, `OneHot` and `DenseBincount`; from each, `ModelGraph.trace_indices`
follows the indices back through value-preserving ops, offsets, Keras 3's
negative-index wrap, tf.feature_column's sparse plumbing and call boundaries to a
named tensor (see model_analysis for the whole list).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator, Mapping
from typing import Any, cast

from embedding_guard.bounds.model_lookups import (
    FEATURE_SOURCE_CALL_OUTPUT,
    FEATURE_SOURCE_COLUMN_SCOPE,
    FEATURE_SOURCE_EXAMPLE_KEY,
    FEATURE_SOURCE_SIGNATURE,
    ModelInputError,
)

SAVED_MODEL_FILE = "saved_model.pb"

_CALL_OPS = frozenset({"StatefulPartitionedCall", "PartitionedCall"})
# Ops whose output holds the same index values as their first input.
VALUE_PRESERVING_OPS = frozenset(
    {
        "Identity",
        "IdentityN",
        "Snapshot",
        "StopGradient",
        "PreventGradient",
        "Cast",
        "Reshape",
        "ExpandDims",
        "Squeeze",
        "EnsureShape",
        "Tile",
        "BroadcastTo",
        "PlaceholderWithDefault",
        "CheckNumerics",
    }
)
_ADD_OPS = frozenset({"AddV2", "Add"})
_SUB_OPS = frozenset({"Sub"})
_LOOKUP_OPS = frozenset({"GatherV2", "ResourceGather", "OneHot", "DenseBincount"})
_VARIABLE_OPS = frozenset({"VarHandleOp", "VariableV2", "Variable"})
_MAX_CALL_DEPTH = 64


@dataclasses.dataclass(frozen=True)
class Body:
    """The outer graph (name "") or one library function, indexed for tracing."""

    name: str
    nodes: Mapping[str, Any]
    arg_index: Mapping[str, int]
    output_names: tuple[str, ...]
    ret: Mapping[str, str]


@dataclasses.dataclass(frozen=True)
class Frame:
    """A call the walk went into: the calling body and its call node."""

    body: Body
    call_node: Any


@dataclasses.dataclass(frozen=True)
class TensorRef:
    """A tensor: a function argument (node_name None) or an output of a node."""

    body: Body
    stack: tuple[Frame, ...]
    node_name: str | None
    arg_name: str | None = None
    out_arg: str | None = None
    index: int = 0


@dataclasses.dataclass
class IndexTrace:
    """What the walk from a lookup's indices back to a named feature found."""

    feature: str | None = None
    offset: int | None = None
    wrapped: bool = False
    note: str = ""
    filtered: bool = False
    default_value: int | None = None
    feature_source: str = ""


class ModelGraph:
    """The parsed graph of one SavedModel signature."""

    def __init__(self, saved_model_dir: str, signature_name: str):
        from tensorflow.core.protobuf import saved_model_pb2
        from tfx.dsl.io import fileio

        self.saved_model_dir = saved_model_dir
        pb_path = os.path.join(saved_model_dir, SAVED_MODEL_FILE)
        try:
            with fileio.open(pb_path, "rb") as f:
                data = f.read()
            saved_model = saved_model_pb2.SavedModel()
            saved_model.ParseFromString(data)
        except Exception as e:  # noqa: BLE001 - any parse failure is a bad input file
            raise ModelInputError(
                f"Cannot read {pb_path!r} as a SavedModel ({type(e).__name__}: {e}); "
                "re-export the model with tf.saved_model.save or model.export()."
            ) from e
        if not saved_model.meta_graphs:
            raise ModelInputError(f"{pb_path!r} holds no meta graph; re-export the model.")
        serving = [
            graph for graph in saved_model.meta_graphs if "serve" in graph.meta_info_def.tags
        ]
        meta_graph = (serving or list(saved_model.meta_graphs))[0]
        signatures = {
            key: value
            for key, value in meta_graph.signature_def.items()
            if not key.startswith("__")
        }
        if signature_name not in signatures:
            raise ModelInputError(
                f"SavedModel {saved_model_dir!r} has no signature {signature_name!r}; "
                f"pass one of {sorted(signatures)!r}, or export the model with a serving signature."
            )
        self.signature = signatures[signature_name]
        self.signature_name = signature_name
        graph_def = meta_graph.graph_def
        self.outer = Body(
            name="",
            nodes={node.name: node for node in graph_def.node},
            arg_index={},
            output_names=(),
            ret={},
        )
        self.functions = {
            function.signature.name: Body(
                name=function.signature.name,
                nodes={node.name: node for node in function.node_def},
                arg_index={arg.name: i for i, arg in enumerate(function.signature.input_arg)},
                output_names=tuple(arg.name for arg in function.signature.output_arg),
                ret=dict(function.ret),
            )
            for function in graph_def.library.function
        }
        self.input_names_by_tensor = {
            info.name.split(":")[0]: key for key, info in self.signature.inputs.items()
        }
        self.output_keys = _output_keys_by_function(meta_graph.object_graph_def)

    def parse_ref(self, body: Body, stack: tuple[Frame, ...], text: str) -> TensorRef:
        if body.name and text in body.arg_index:
            return TensorRef(body, stack, None, arg_name=text)
        parts = text.split(":")
        if body.name:
            if len(parts) == 3:
                return TensorRef(body, stack, parts[0], out_arg=parts[1], index=int(parts[2]))
            return TensorRef(body, stack, parts[0])
        return TensorRef(body, stack, parts[0], index=int(parts[1]) if len(parts) > 1 else 0)

    def data_input(self, ref: TensorRef, node: Any, position: int) -> TensorRef:
        inputs = [text for text in node.input if not text.startswith("^")]
        return self.parse_ref(ref.body, ref.stack, inputs[position])

    def resolve(self, ref: TensorRef) -> TensorRef | None:
        """Follows arguments back to their call sites and Identity ops to their inputs."""
        for _ in range(10_000):
            if ref.node_name is None:
                if not ref.stack or ref.arg_name is None:
                    return None
                frame = ref.stack[-1]
                position = ref.body.arg_index[ref.arg_name]
                ref = self.data_input(
                    TensorRef(frame.body, ref.stack[:-1], None), frame.call_node, position
                )
                continue
            node = ref.body.nodes.get(ref.node_name)
            if node is None:
                return None
            if node.op == "Identity":
                ref = self.data_input(ref, node, 0)
                continue
            return ref
        return None

    def node(self, ref: TensorRef) -> Any:
        # Only called on refs to a node's output, never on a function argument.
        return ref.body.nodes[cast(str, ref.node_name)]

    def callee(self, node: Any) -> Body | None:
        if node.op not in _CALL_OPS or "f" not in node.attr:
            return None
        return self.functions.get(node.attr["f"].func.name)

    def constant(self, ref: TensorRef) -> Any:
        """The numpy value of a constant tensor, or None."""
        import tensorflow as tf

        resolved = self.resolve(ref)
        if resolved is None:
            return None
        node = self.node(resolved)
        if node.op != "Const":
            return None
        return tf.make_ndarray(node.attr["value"].tensor)

    def bincount_size(self, ref: TensorRef) -> int | None:
        """DenseBincount's size: a constant, or tf.math.bincount's clip to equal bounds."""
        value = self.constant(ref)
        if value is not None:
            return int(value)
        resolved = self.resolve(ref)
        if resolved is None or self.node(resolved).op != "Minimum":
            return None
        minimum = self.node(resolved)
        maxlength = self.constant(self.data_input(resolved, minimum, 0))
        maximum_ref = self.resolve(self.data_input(resolved, minimum, 1))
        if maxlength is None or maximum_ref is None:
            return None
        maximum = self.node(maximum_ref)
        if maximum.op != "Maximum":
            return None
        minlength = self.constant(self.data_input(maximum_ref, maximum, 0))
        # minlength == maxlength (Keras CategoryEncoding) pins the size; otherwise
        # it depends on the data.
        if minlength is not None and int(minlength) == int(maxlength):
            return int(maxlength)
        return None

    def variable(self, ref: TensorRef) -> Any:
        """The VarHandleOp node behind a resource (through ReadVariableOp), or None."""
        for _ in range(100):
            resolved = self.resolve(ref)
            if resolved is None:
                return None
            node = self.node(resolved)
            if node.op in _VARIABLE_OPS:
                return node
            if node.op == "ReadVariableOp":
                ref = self.data_input(resolved, node, 0)
                continue
            callee = self.callee(node)
            if callee is not None:
                entered = self._enter_call(resolved, node, callee)
                if entered is None:
                    return None
                ref = entered
                continue
            return None
        return None

    def _enter_call(self, ref: TensorRef, node: Any, callee: Body) -> TensorRef | None:
        index = ref.index
        if index >= len(callee.output_names):
            return None
        inner = callee.ret.get(callee.output_names[index])
        if inner is None:
            return None
        return self.parse_ref(callee, ref.stack + (Frame(ref.body, node),), inner)

    def feature_name(self, ref: TensorRef, node: Any) -> str | None:
        """The name a node's output carries as a feature, or None."""
        if not ref.body.name and node.op == "Placeholder":
            return self.input_names_by_tensor.get(node.name)
        callee = self.callee(node)
        if callee is not None:
            keys = self.output_keys.get(callee.name)
            if keys is not None and ref.index < len(keys) and keys[ref.index] is not None:
                return keys[ref.index]
        if node.op == "ParseExampleV2" and ref.out_arg == "dense_values":
            keys = self.constant(self.data_input(ref, node, 3))
            if keys is not None and ref.index < len(keys):
                return text_of(keys[ref.index])
        return None

    def trace_indices(self, ref: TensorRef) -> IndexTrace:
        trace = IndexTrace()
        offset = 0
        # tf.feature_column names its scopes after the column; if the walk cannot go
        # further back (a TF1 export without the transform's output names), that name
        # is the best one left.
        column_fallback: tuple[str, int] | None = None
        for _ in range(10_000):
            resolved = self.resolve(ref)
            if resolved is None:
                trace.note = "not traced: indices come from an unnamed argument"
                break
            ref = resolved
            node = self.node(ref)
            name = self.feature_name(ref, node)
            if name is not None:
                trace.feature, trace.offset = name, offset
                trace.feature_source = self.feature_source(ref, node)
                return trace
            if column_fallback is None:
                column = _feature_column_key(node.name)
                if column is not None:
                    column_fallback = (column, offset)
            if node.op in VALUE_PRESERVING_OPS:
                ref = self.data_input(ref, node, 0)
                continue
            values_position = self._values_position(ref, node)
            if values_position is not None:
                trace.filtered = trace.filtered or self._selects_by_mask(ref, node)
                ref = self.data_input(ref, node, values_position)
                continue
            replacement = self._out_of_range_default(ref, node)
            if replacement is not None:
                trace.default_value = replacement
                ref = self.data_input(ref, node, 2)
                continue
            if node.op == "SelectV2" and self._is_negative_wrap(ref, node):
                trace.wrapped = True
                ref = self.data_input(ref, node, 2)
                continue
            if node.op in _ADD_OPS or node.op in _SUB_OPS:
                step = self._constant_step(ref, node)
                if step is not None:
                    amount, operand = step
                    offset += amount
                    ref = operand
                    continue
            callee = self.callee(node)
            if callee is not None:
                entered = self._enter_call(ref, node, callee)
                if entered is not None:
                    ref = entered
                    continue
            trace.note = f"not traced: indices pass through {node.op} op {node.name!r}"
            break
        else:
            trace.note = "not traced: the index path does not end"
        if column_fallback is not None:
            trace.feature, trace.offset = column_fallback
            trace.feature_source = FEATURE_SOURCE_COLUMN_SCOPE
            trace.note = f"{trace.note}; named by its tf.feature_column scope"
        return trace

    def feature_source(self, ref: TensorRef, node: Any) -> str:
        if node.op == "Placeholder":
            return FEATURE_SOURCE_SIGNATURE
        if node.op == "ParseExampleV2":
            return FEATURE_SOURCE_EXAMPLE_KEY
        return FEATURE_SOURCE_CALL_OUTPUT

    def is_table(self, ref: TensorRef) -> bool:
        """Whether a gather's params are a variable or a constant (a table, not data)."""
        if self.variable(ref) is not None:
            return True
        resolved = self.resolve(ref)
        return resolved is not None and self.node(resolved).op == "Const"

    def _values_position(self, ref: TensorRef, node: Any) -> int | None:
        """The input whose values (a subset of them) this output holds, or None.

        These are the ops tf.feature_column and sparse inputs put between a feature
        and its lookup; every value they pass on is one of the feature's values (or a
        fill value), so the valid range carries over.
        """
        if node.op in ("GatherV2", "GatherNd") and not self.is_table(self.data_input(ref, node, 0)):
            return 0
        if node.op == "Unique" and ref.index == 0 and ref.out_arg in (None, "y"):
            return 0
        if node.op == "SparseFillEmptyRows" and (
            ref.out_arg == "output_values" or (ref.out_arg is None and ref.index == 1)
        ):
            return 1
        if node.op == "SparseToDense":
            return 2
        return None

    def _selects_by_mask(self, ref: TensorRef, node: Any) -> bool:
        """Whether a values-subset op keeps only the values a boolean mask selects."""
        if node.op not in ("GatherV2", "GatherNd"):
            return False
        selector = self.resolve(self.data_input(ref, node, 1))
        for _ in range(4):
            if selector is None:
                return False
            selector_node = self.node(selector)
            if selector_node.op == "Where":
                return True
            if selector_node.op not in VALUE_PRESERVING_OPS:
                return False
            selector = self.resolve(self.data_input(selector, selector_node, 0))
        return False

    def _out_of_range_default(self, ref: TensorRef, node: Any) -> int | None:
        """The default of `SelectV2(x < 0 | x >= n, fill(default), x)`, else None.

        That is categorical_column_with_identity(default_value=...): ids out of range
        silently become the default id.
        """
        if node.op not in ("SelectV2", "Select"):
            return None
        condition = self.resolve(self.data_input(ref, node, 0))
        fill = self.resolve(self.data_input(ref, node, 1))
        if condition is None or fill is None:
            return None
        if self.node(condition).op != "LogicalOr" or self.node(fill).op != "Fill":
            return None
        value_ref = self.data_input(fill, self.node(fill), 1)
        for _ in range(4):
            value = self.constant(value_ref)
            if value is not None:
                return int(value)
            resolved = self.resolve(value_ref)
            if resolved is None or self.node(resolved).op != "Cast":
                return None
            value_ref = self.data_input(resolved, self.node(resolved), 0)
        return None

    def _is_negative_wrap(self, ref: TensorRef, node: Any) -> bool:
        condition = self.resolve(self.data_input(ref, node, 0))
        shifted = self.resolve(self.data_input(ref, node, 1))
        if condition is None or shifted is None:
            return False
        return self.node(condition).op == "Less" and self.node(shifted).op in _ADD_OPS

    def _constant_step(self, ref: TensorRef, node: Any) -> tuple[int, TensorRef] | None:
        left = self.data_input(ref, node, 0)
        right = self.data_input(ref, node, 1)
        for constant_ref, operand, sign in ((right, left, 1), (left, right, 1)):
            if node.op in _SUB_OPS and constant_ref is left:
                # c - x flips the sign of the feature: not an offset.
                continue
            value = self.constant(constant_ref)
            if value is not None and value.size == 1 and value.dtype.kind in "iu":
                amount = int(value.reshape(()))
                return (sign * amount if node.op in _ADD_OPS else -amount), operand
        return None

    def walk_lookups(self) -> Iterator[TensorRef]:
        """Every lookup op reachable from the signature's outputs, in its call context."""
        roots = []
        for info in self.signature.outputs.values():
            roots.append(self.parse_ref(self.outer, (), info.name))
        seen_outer: set[str] = set()
        pending = [ref.node_name for ref in roots]
        while pending:
            name = pending.pop()
            if name is None or name in seen_outer or name not in self.outer.nodes:
                continue
            seen_outer.add(name)
            node = self.outer.nodes[name]
            pending.extend(text.lstrip("^").split(":")[0] for text in node.input)
        for name in sorted(seen_outer):
            yield from self._walk_node(TensorRef(self.outer, (), name), depth=0)

    def _walk_node(self, ref: TensorRef, depth: int) -> Iterator[TensorRef]:
        node = self.node(ref)
        if node.op in _LOOKUP_OPS:
            indices_position = 0 if node.op in ("OneHot", "DenseBincount") else 1
            # A gather of constants by constants is shape arithmetic, not a lookup.
            constant_indices = self.constant(self.data_input(ref, node, indices_position))
            is_table = node.op != "GatherV2" or self.is_table(self.data_input(ref, node, 0))
            if is_table and constant_indices is None:
                yield ref
            return
        callee = self.callee(node)
        if callee is None or depth >= _MAX_CALL_DEPTH:
            return
        stack = ref.stack + (Frame(ref.body, node),)
        for name in callee.nodes:
            yield from self._walk_node(TensorRef(callee, stack, name), depth + 1)


_COLUMN_SCOPE_SUFFIXES = ("_embedding", "_indicator", "_shared_embedding")


def _feature_column_key(op_name: str) -> str | None:
    """The column key in `.../<column>/to_sparse_input/...`, else None."""
    scopes = op_name.split("/")
    if "to_sparse_input" not in scopes[1:]:
        return None
    column = scopes[scopes.index("to_sparse_input") - 1]
    for suffix in _COLUMN_SCOPE_SUFFIXES:
        if column.endswith(suffix):
            return column[: -len(suffix)]
    return column


def producer(text: str) -> str:
    """The node (or function argument) an input string names: `^a`, `a:out:0` -> `a`."""
    return text.lstrip("^").split(":")[0]


def text_of(value: object) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _output_keys_by_function(object_graph_def: Any) -> dict[str, tuple[str | None, ...]]:
    """Per function, the dict key of each flat output (None where it has no key).

    Flattening follows tf.nest: dict keys in sorted order, sequences in order. A
    composite leaf (SparseTensor, RaggedTensor) has several flat tensors, so keys stop
    at the first one rather than be misaligned.
    """
    keys_by_function: dict[str, tuple[str | None, ...]] = {}
    for name, function in object_graph_def.concrete_functions.items():
        keys: list[str | None] = []
        if _flatten_keys(function.output_signature, None, keys) and any(keys):
            keys_by_function[name] = tuple(keys)
    return keys_by_function


def _flatten_keys(structure: Any, key: str | None, keys: list[str | None]) -> bool:
    kind = structure.WhichOneof("kind")
    if kind == "tensor_spec_value":
        keys.append(key)
        return True
    if kind == "dict_value":
        for field_key in sorted(structure.dict_value.fields):
            if not _flatten_keys(structure.dict_value.fields[field_key], field_key, keys):
                return False
        return True
    if kind in ("tuple_value", "list_value"):
        return all(_flatten_keys(value, key, keys) for value in getattr(structure, kind).values)
    return kind == "none_value"
