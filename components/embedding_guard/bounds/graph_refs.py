"""Follows tensor references through a transform graph to the op that makes each.

A transform_fn SavedModel is a TF1 GraphDef or a TF2 function library whose
functions call each other and capture resources of the object graph. `GraphIndex`
indexes both kinds alike (one `GraphView` per graph or function) and resolves a
reference across calls, function arguments and identities to what stands behind
it: an op (`Produced`), a raw input feature (`RawInput`), a captured object
(`Capture`) or nothing it can follow (`Unresolved`). It reads the proto only and
names no op by its node name.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from embedding_guard.bounds import graph_protos

# Ops that change a tensor's shape but keep its values in order.
_SHAPE_ONLY = frozenset({"Reshape", "ExpandDims", "Squeeze", "EnsureShape"})
CALL_OPS = frozenset({"PartitionedCall", "StatefulPartitionedCall"})


@dataclasses.dataclass(frozen=True)
class GraphRef:
    """A tensor: a node's output (or a function argument) in one graph, in one call context.

    Attributes:
      graph: Index of the graph's `GraphView` (0: the outer GraphDef).
      node: The node's (or argument's) name.
      port: The output's flat index.
      stack: The calls entered to get here, innermost last, as (call ref, call node).
    """

    graph: int
    node: str
    port: int
    stack: tuple[tuple[GraphRef, Any], ...] = ()


@dataclasses.dataclass(frozen=True)
class Produced:
    """The reference is an output of `node` (an op other than a call or an identity)."""

    ref: GraphRef
    node: Any


@dataclasses.dataclass(frozen=True)
class RawInput:
    """The reference is the transform's raw input feature `feature`."""

    feature: str


@dataclasses.dataclass(frozen=True)
class Capture:
    """The reference is a captured object: node `object_id` of the object graph."""

    object_id: int


@dataclasses.dataclass(frozen=True)
class Unresolved:
    """The reference leads nowhere this walk can follow; `reason` says where it stopped."""

    reason: str


Resolved = Produced | RawInput | Capture | Unresolved


class DamagedConstantError(ValueError):
    """A constant's TensorProto does not hold what its dtype and shape say."""


def tensor_values(tensor: Any) -> list[Any]:
    """The values of a TensorProto (TensorBoard's or TensorFlow's), flattened.

    Raises:
      DamagedConstantError: Its bytes or values do not fit its dtype and shape.
    """
    try:
        values: list[Any] = graph_protos.tensor_ndarray(tensor).reshape(-1).tolist()
    except (ValueError, IndexError) as error:
        raise DamagedConstantError(str(error)) from error
    return values


class GraphView:
    """The outer GraphDef or one library function, indexed by node name."""

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


class GraphIndex:
    """The graphs of one MetaGraph, and how references resolve across them.

    Args:
      meta_graph: A MetaGraphDef, TensorBoard's (graph_protos) or TensorFlow's:
        only its fields are read.
    """

    def __init__(self, meta_graph: Any) -> None:
        self._meta_graph = meta_graph
        graph_def = meta_graph.graph_def
        self.views = [GraphView(0, graph_def.node, name="<graph>")]
        self._functions = {}
        for function in graph_def.library.function:
            self._functions[function.signature.name] = function
        self._function_views: dict[str, GraphView] = {}
        self._object_graph = meta_graph.object_graph_def
        # Set per entry point: graph index -> arg index -> raw feature / capture node id.
        self.input_args: dict[tuple[int, int], str] = {}
        self.placeholders: dict[str, str] = {}
        self.captures: dict[tuple[int, int], int] = {}
        self._output_args: dict[str, list[str] | None] = {}

    def function_view(self, name: str) -> GraphView:
        if name not in self._function_views:
            function = self._functions[name]
            rets = dict(function.ret)
            outputs = [rets[arg.name] for arg in function.signature.output_arg]
            view = GraphView(
                len(self.views),
                function.node_def,
                [arg.name for arg in function.signature.input_arg],
                dict(enumerate(outputs)),
                name,
            )
            self.views.append(view)
            self._function_views[name] = view
        return self._function_views[name]

    def bind_function(self, name: str) -> GraphView:
        """The function's view, with its trailing arguments bound to the objects it captures."""
        view = self.function_view(name)
        concrete = self._object_graph.concrete_functions.get(name)
        bound = list(concrete.bound_inputs) if concrete is not None else []
        first = len(view.args) - len(bound)
        for i, object_id in enumerate(bound):
            self.captures[(view.index, first + i)] = object_id
        return view

    # -- references ----------------------------------------------------------------------

    def ref(
        self, view: GraphView, text: str, stack: tuple[tuple[GraphRef, Any], ...] = ()
    ) -> GraphRef:
        """Parses an input string of a node in view ("n:3" in a GraphDef, "n:out:3" in a function)."""
        text = text.lstrip("^")
        parts = text.split(":")
        if view.index == 0:
            return GraphRef(0, parts[0], int(parts[1]) if len(parts) > 1 else 0, stack)
        if len(parts) == 1:
            return GraphRef(view.index, parts[0], 0, stack)
        node = view.nodes.get(parts[0])
        port = int(parts[2]) if len(parts) > 2 else 0
        if node is not None and parts[1] != "output" and node.op not in CALL_OPS:
            port = self._port_offset(node.op, parts[1]) + port
        return GraphRef(view.index, parts[0], port, stack)

    def _port_offset(self, op: str, output_arg: str) -> int:
        # Output arguments with one tensor each cover every op this walk reads.
        if op not in self._output_args:
            self._output_args[op] = graph_protos.op_output_args(self._meta_graph, op)
        names = self._output_args[op]
        return names.index(output_arg) if names is not None and output_arg in names else 0

    def node(self, ref: GraphRef) -> Any:
        return self.views[ref.graph].nodes.get(ref.node)

    def inputs(self, ref: GraphRef, node: Any) -> list[GraphRef]:
        view = self.views[ref.graph]
        return [self.ref(view, text, ref.stack) for text in node.input if not text.startswith("^")]

    def resolve(self, ref: GraphRef) -> Resolved:
        """Follows calls, function arguments and identities to what makes the tensor."""
        for _ in range(10_000):
            view = self.views[ref.graph]
            if ref.node in view.args and ref.node not in view.nodes:
                arg_index = view.args[ref.node]
                if ref.stack:
                    caller_ref, caller_node = ref.stack[-1]
                    caller_inputs = self.inputs(
                        GraphRef(caller_ref.graph, caller_ref.node, 0, ref.stack[:-1]), caller_node
                    )
                    ref = caller_inputs[arg_index]
                    continue
                if (ref.graph, arg_index) in self.input_args:
                    return RawInput(self.input_args[(ref.graph, arg_index)])
                if (ref.graph, arg_index) in self.captures:
                    return Capture(self.captures[(ref.graph, arg_index)])
                return Unresolved(f"argument {ref.node!r} of {view.name}")
            node = view.nodes.get(ref.node)
            if node is None:
                return Unresolved(f"tensor {ref.node!r} missing from {view.name}")
            if node.op == "Placeholder" and ref.graph == 0 and node.name in self.placeholders:
                return RawInput(self.placeholders[node.name])
            if node.op in CALL_OPS:
                callee = self.function_view(node.attr["f"].func.name)
                ref = self.ref(callee, callee.rets[ref.port], ref.stack + ((ref, node),))
                continue
            if node.op == "IdentityN":
                ref = self.inputs(ref, node)[ref.port]
                continue
            if node.op in ("Identity", "Snapshot"):
                ref = self.inputs(ref, node)[0]
                continue
            return Produced(ref, node)
        return Unresolved("reference cycle")

    # -- constants -----------------------------------------------------------------------

    def constant(self, ref: GraphRef) -> list[Any] | None:
        """The flat values of a constant tensor (a Const op or captured constant), else None."""
        resolved = self.resolve(ref)
        while isinstance(resolved, Produced) and resolved.node.op in _SHAPE_ONLY:
            resolved = self.resolve(self.inputs(resolved.ref, resolved.node)[0])
        if isinstance(resolved, Capture):
            proto = self._object_graph.nodes[resolved.object_id]
            if proto.WhichOneof("kind") != "constant":
                return None
            node = self.views[0].nodes.get(proto.constant.operation)
        elif isinstance(resolved, Produced):
            node = resolved.node
        else:
            return None
        if node is None or node.op != "Const":
            return None
        return tensor_values(node.attr["value"].tensor)

    def int_constant(self, ref: GraphRef) -> int | None:
        """The value of a constant holding one integer, else None."""
        values = self.constant(ref)
        if values is None or len(values) != 1 or not isinstance(values[0], int):
            return None
        return values[0]
