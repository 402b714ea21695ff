"""Finds every table lookup in a SavedModel and the size of its table.

The lookup that fails on a bad index is the model's, so its sizes have to come from
the model itself. The analysis reads `saved_model.pb` as a protocol buffer (no
variables are restored, nothing is executed) and follows the serving signature
through the function library:

* every `GatherV2` / `ResourceGather` on a variable, every `OneHot` and every
  `DenseBincount` reached from the signature is a lookup;
* its indices are traced backwards through value-preserving ops (Identity, Cast,
  Reshape, ...), Keras 3's negative-index wrap `SelectV2(i < 0, i + n, i)`, additions
  of constants (the offset), tf.feature_column's sparse plumbing (to_sparse_input,
  SparseFillEmptyRows, Unique, the identity column's default_value remap), call
  boundaries (StatefulPartitionedCall / PartitionedCall) and function arguments,
  until they reach a named tensor: a signature input, a key of a dict returned by a
  called function (TFT's transform layer returns the transformed features as a
  dict), or a `ParseExampleV2` dense key. A TF1 export keeps no names for the
  transform layer's outputs; there a feature column's scope names the lookup;
* the table size is the variable's first dimension, `OneHot`'s depth or
  `DenseBincount`'s size.

When the signature takes integer features directly, each traced lookup is then
cross-checked by black-box probing on CPU: the restored serving function is called
with one feature varied, at the graph's boundary (last good and first bad value) and
just below the valid range. "Bad" means the call raises an out-of-range error or
returns the same result as a value far out of range (the all-zero row of a one-hot).
Where the graph holds no size, or the boundary check fails, an exponential then
binary search finds the first bad value instead. A signature that takes serialized
tf.Examples cannot be probed this way (the transform, not the caller, decides the
indices), so those lookups are found by graph tracing alone, and each says so.
"""

from __future__ import annotations

import dataclasses
import os
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, cast

from absl import logging

from embedding_guard.errors import InputError

METHOD_GRAPH = "graph tracing"
METHOD_GRAPH_AND_PROBE = "graph tracing, confirmed by black-box probing"
METHOD_GRAPH_PROBE_DISAGREES = "graph tracing; black-box probing disagreed"
METHOD_PROBE = "black-box probing (the graph holds no constant size)"

FEATURE_SOURCE_SIGNATURE = "serving signature input"
FEATURE_SOURCE_CALL_OUTPUT = "named output of a called function (e.g. the transform layer)"
FEATURE_SOURCE_EXAMPLE_KEY = "tf.Example key parsed in the signature"
FEATURE_SOURCE_COLUMN_SCOPE = "tf.feature_column scope name (path not traced)"

KIND_KERAS_EMBEDDING = "Embedding"
KIND_RESOURCE_GATHER = "ResourceGather"
KIND_GATHER = "GatherV2"
KIND_ONE_HOT = "OneHot"
KIND_BINCOUNT = "DenseBincount"

_CALL_OPS = frozenset({"StatefulPartitionedCall", "PartitionedCall"})
# Ops whose output holds the same index values as their first input.
_VALUE_PRESERVING_OPS = frozenset(
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
_ZEROING_KINDS = frozenset({KIND_ONE_HOT, KIND_BINCOUNT})
_VARIABLE_OPS = frozenset({"VarHandleOp", "VariableV2", "Variable"})
_MAX_CALL_DEPTH = 64
# Exactly representable in float32, since Keras casts some index inputs to float.
_PROBE_LIMIT = 2**24
# GatherV2/ResourceGather say "indices[0] = 7 is not in [0, 7)"; the sparse segment
# ops behind tf.feature_column say "indices[0] == 7 out of range [0, 7)".
_BAD_INDEX_RE = re.compile(r"indices\[[^\]]*\] ==? (-?\d+) (?:is not in|out of range) \[0, (\d+)\)")

_BEHAVIOUR = {
    KIND_KERAS_EMBEDDING: (
        True,
        "a value in [-n, 0) silently reads row value+n (Keras 3 wraps negatives); "
        "a value >= n raises InvalidArgumentError on CPU (on GPU, tf.gather documents a "
        "zero row instead)",
    ),
    KIND_RESOURCE_GATHER: (
        False,
        "raises InvalidArgumentError on CPU (on GPU, tf.gather documents a zero row instead)",
    ),
    KIND_GATHER: (
        False,
        "raises InvalidArgumentError on CPU (on GPU, tf.gather documents a zero row instead)",
    ),
    KIND_ONE_HOT: (
        True,
        "a negative value or a value >= depth silently gives an all-zero row, no error",
    ),
    KIND_BINCOUNT: (
        True,
        "a value >= size is silently dropped (all-zero row for one value); "
        "a negative value raises InvalidArgumentError",
    ),
}


class ModelInputError(InputError):
    """The path is not a readable SavedModel with the requested serving signature."""


@dataclasses.dataclass(frozen=True)
class ModelLookup:
    """One table lookup of the model and the feature whose values index it.

    Attributes:
      feature: The transformed feature (signature input, transform-layer output or
        parsed tf.Example key) whose values index the table; None when not traced.
      feature_source: Where the feature's name came from: one of the
        FEATURE_SOURCE_* texts, "" when there is no name.
      lookup_kind: KIND_KERAS_EMBEDDING (Keras 3 Embedding: GatherV2 behind the
        negative-index wrap), KIND_RESOURCE_GATHER (tf.nn.embedding_lookup, tf.gather
        on a variable, tf_keras Embedding), KIND_GATHER (GatherV2 on a variable read
        without the wrap), KIND_ONE_HOT (tf.one_hot, Keras CategoryEncoding one_hot)
        or KIND_BINCOUNT (Keras CategoryEncoding multi_hot/count).
      table_size: Rows of the table (first dimension of the variable, OneHot depth,
        DenseBincount size); None when the graph does not hold it as a constant.
      table_shape: The table variable's (or constant's) shape, e.g. (53, 8); (depth,)
        for OneHot and (size,) for DenseBincount; () when unknown.
      offset: The constant the model adds to the feature before the lookup
        (index = feature + offset); None when the path is not traced.
      method: How table_size was found: METHOD_GRAPH, METHOD_GRAPH_AND_PROBE,
        METHOD_GRAPH_PROBE_DISAGREES (table_size stays the graph's) or METHOD_PROBE.
      layer_name: The Keras layer (from the table variable's name, else the op's name
        scope); "" for a lookup outside any layer.
      op_name: The lookup op's name inside its function.
      function_name: The library function holding the op ("" for the outer graph).
      variable_name: The table variable's shared name ("" when there is none).
      silent: Whether a bad index can give a wrong result instead of an error on CPU;
        measured when probed, else from the op kind and the index path.
      behaviour_on_bad_index: What the op does with a bad index; measured values when
        probed.
      traced: Whether the indices were followed back to a named feature (False when
        the name is only the tf.feature_column scope's).
      probed_table_size: The first feature value the probe found bad, plus offset;
        None when not probed.
      note: Why something is missing (untraced op, no probe), else "".
    """

    feature: str | None
    feature_source: str
    lookup_kind: str
    table_size: int | None
    table_shape: tuple[int | None, ...]
    offset: int | None
    method: str
    layer_name: str
    op_name: str
    function_name: str
    variable_name: str
    silent: bool
    behaviour_on_bad_index: str
    traced: bool
    probed_table_size: int | None
    note: str

    @property
    def feature_input_dim(self) -> int | None:
        """One past the largest feature value the table holds (table_size - offset)."""
        if self.table_size is None or self.offset is None:
            return None
        return self.table_size - self.offset

    @property
    def min_valid_value(self) -> int | None:
        """The smallest feature value that indexes row 0 (-offset)."""
        return None if self.offset is None else -self.offset

    def source_text(self) -> str:
        """Where the size came from, for FeatureBounds' source text.

        For example "model layer 'city_embedding' (Embedding, table 53 x 8), by graph
        tracing".
        """
        where = (
            f"model layer {self.layer_name!r}" if self.layer_name else f"model op {self.op_name!r}"
        )
        if self.table_shape and all(dim is not None for dim in self.table_shape):
            size = " x ".join(str(dim) for dim in self.table_shape)
        else:
            size = "?" if self.table_size is None else str(self.table_size)
        offset = f", index = {self.feature} + {self.offset}" if self.offset else ""
        return f"{where} ({self.lookup_kind}, table {size}{offset}), by {self.method}"


@dataclasses.dataclass(frozen=True)
class ModelAnalysis:
    """Every lookup of one serving signature of a SavedModel.

    Attributes:
      saved_model_dir: The analysed directory (the one holding saved_model.pb).
      signature_name: The signature traced.
      signature_inputs: The signature's input names, sorted.
      lookups: The lookups found, sorted by feature then op.
      probed: Whether black-box probing ran.
      probe_note: Why probing did not run, or what it cost.
      seconds: Wall time of the analysis.
    """

    saved_model_dir: str
    signature_name: str
    signature_inputs: tuple[str, ...]
    lookups: tuple[ModelLookup, ...]
    probed: bool
    probe_note: str
    seconds: float

    def by_feature(self) -> dict[str, tuple[ModelLookup, ...]]:
        """Named lookups (traced or named by a feature-column scope), by feature.

        A feature may index several tables.
        """
        grouped: dict[str, list[ModelLookup]] = {}
        for lookup in self.lookups:
            if lookup.feature is not None:
                grouped.setdefault(lookup.feature, []).append(lookup)
        return {feature: tuple(found) for feature, found in grouped.items()}

    def governing_lookups(self) -> dict[str, ModelLookup]:
        """Per named feature, its lookup with the smallest known feature_input_dim.

        That lookup is the first to fail (or to go silently wrong) as values grow, so
        its size is the feature's bound from the model.
        """
        governing: dict[str, ModelLookup] = {}
        for feature, found in self.by_feature().items():
            sized = [lookup for lookup in found if lookup.feature_input_dim is not None]
            if sized:
                governing[feature] = min(
                    sized, key=lambda lookup: (lookup.feature_input_dim, lookup.op_name)
                )
        return governing

    def feature_input_dims(self) -> dict[str, int]:
        """Per named feature, one past the largest value all its tables hold."""
        return {
            feature: lookup.feature_input_dim
            for feature, lookup in self.governing_lookups().items()
            if lookup.feature_input_dim is not None
        }


@dataclasses.dataclass(frozen=True)
class _Body:
    """The outer graph (name "") or one library function, indexed for tracing."""

    name: str
    nodes: Mapping[str, Any]
    arg_index: Mapping[str, int]
    output_names: tuple[str, ...]
    ret: Mapping[str, str]


@dataclasses.dataclass(frozen=True)
class _Frame:
    body: _Body
    call_node: Any


@dataclasses.dataclass(frozen=True)
class _Ref:
    """A tensor: a function argument (node_name None) or an output of a node."""

    body: _Body
    stack: tuple[_Frame, ...]
    node_name: str | None
    arg_name: str | None = None
    out_arg: str | None = None
    index: int = 0


@dataclasses.dataclass
class _Trace:
    """What the walk from a lookup's indices back to a named feature found."""

    feature: str | None = None
    offset: int | None = None
    wrapped: bool = False
    note: str = ""
    filtered: bool = False
    default_value: int | None = None
    feature_source: str = ""


_SAVED_MODEL_FILE = "saved_model.pb"
_FIX_PATH = "pass the directory that holds saved_model.pb (a Model artifact's Format-Serving)"


def serving_model_dir(path: str) -> str:
    """The SavedModel directory behind a path, following TFX's Model artifact layout.

    Accepts the SavedModel directory itself, a Model artifact's URI (which holds
    `Format-Serving/`), or a `Format-Serving` directory of an Estimator Trainer
    (`export/<name>/<timestamp>/`, the newest timestamp wins, as TFX's Pusher does).

    Args:
      path: The directory.

    Returns:
      The directory that holds saved_model.pb.

    Raises:
      ModelInputError: No SavedModel is found there.
    """
    from tfx.dsl.io import fileio

    if not fileio.isdir(path):
        raise ModelInputError(f"Model directory {path!r} does not exist; {_FIX_PATH}.")
    candidate = path
    if not fileio.exists(os.path.join(candidate, _SAVED_MODEL_FILE)) and fileio.isdir(
        os.path.join(candidate, "Format-Serving")
    ):
        candidate = os.path.join(candidate, "Format-Serving")
    export_dir = os.path.join(candidate, "export")
    if not fileio.exists(os.path.join(candidate, _SAVED_MODEL_FILE)) and fileio.isdir(export_dir):
        names = sorted(name.rstrip("/") for name in fileio.listdir(export_dir))
        if len(names) == 1:
            stamps = [
                stamp.rstrip("/")
                for stamp in fileio.listdir(os.path.join(export_dir, names[0]))
                if stamp.rstrip("/").isdigit()
            ]
            if stamps:
                candidate = os.path.join(export_dir, names[0], max(stamps, key=int))
    if not fileio.exists(os.path.join(candidate, _SAVED_MODEL_FILE)):
        raise ModelInputError(
            f"{os.path.join(path, _SAVED_MODEL_FILE)!r} not found: {path!r} is not a "
            f"SavedModel directory, a Model artifact or its Format-Serving; {_FIX_PATH}."
        )
    return candidate


class _Model:
    """The parsed graph of one SavedModel signature."""

    def __init__(self, saved_model_dir: str, signature_name: str):
        from tensorflow.core.protobuf import saved_model_pb2
        from tfx.dsl.io import fileio

        self.saved_model_dir = saved_model_dir
        pb_path = os.path.join(saved_model_dir, _SAVED_MODEL_FILE)
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
        self.outer = _Body(
            name="",
            nodes={node.name: node for node in graph_def.node},
            arg_index={},
            output_names=(),
            ret={},
        )
        self.functions = {
            function.signature.name: _Body(
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

    def parse_ref(self, body: _Body, stack: tuple[_Frame, ...], text: str) -> _Ref:
        if body.name and text in body.arg_index:
            return _Ref(body, stack, None, arg_name=text)
        parts = text.split(":")
        if body.name:
            if len(parts) == 3:
                return _Ref(body, stack, parts[0], out_arg=parts[1], index=int(parts[2]))
            return _Ref(body, stack, parts[0])
        return _Ref(body, stack, parts[0], index=int(parts[1]) if len(parts) > 1 else 0)

    def data_input(self, ref: _Ref, node: Any, position: int) -> _Ref:
        inputs = [text for text in node.input if not text.startswith("^")]
        return self.parse_ref(ref.body, ref.stack, inputs[position])

    def resolve(self, ref: _Ref) -> _Ref | None:
        """Follows arguments back to their call sites and Identity ops to their inputs."""
        for _ in range(10_000):
            if ref.node_name is None:
                if not ref.stack or ref.arg_name is None:
                    return None
                frame = ref.stack[-1]
                position = ref.body.arg_index[ref.arg_name]
                ref = self.data_input(
                    _Ref(frame.body, ref.stack[:-1], None), frame.call_node, position
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

    def node(self, ref: _Ref) -> Any:
        # Only called on refs to a node's output, never on a function argument.
        return ref.body.nodes[cast(str, ref.node_name)]

    def callee(self, node: Any) -> _Body | None:
        if node.op not in _CALL_OPS or "f" not in node.attr:
            return None
        return self.functions.get(node.attr["f"].func.name)

    def constant(self, ref: _Ref) -> Any:
        """The numpy value of a constant tensor, or None."""
        import tensorflow as tf

        resolved = self.resolve(ref)
        if resolved is None:
            return None
        node = self.node(resolved)
        if node.op != "Const":
            return None
        return tf.make_ndarray(node.attr["value"].tensor)

    def bincount_size(self, ref: _Ref) -> int | None:
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

    def variable(self, ref: _Ref) -> Any:
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

    def _enter_call(self, ref: _Ref, node: Any, callee: _Body) -> _Ref | None:
        index = ref.index
        if index >= len(callee.output_names):
            return None
        inner = callee.ret.get(callee.output_names[index])
        if inner is None:
            return None
        return self.parse_ref(callee, ref.stack + (_Frame(ref.body, node),), inner)

    def feature_name(self, ref: _Ref, node: Any) -> str | None:
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
                return _text(keys[ref.index])
        return None

    def trace_indices(self, ref: _Ref) -> _Trace:
        trace = _Trace()
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
            if node.op in _VALUE_PRESERVING_OPS:
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

    def feature_source(self, ref: _Ref, node: Any) -> str:
        if node.op == "Placeholder":
            return FEATURE_SOURCE_SIGNATURE
        if node.op == "ParseExampleV2":
            return FEATURE_SOURCE_EXAMPLE_KEY
        return FEATURE_SOURCE_CALL_OUTPUT

    def is_table(self, ref: _Ref) -> bool:
        """Whether a gather's params are a variable or a constant (a table, not data)."""
        if self.variable(ref) is not None:
            return True
        resolved = self.resolve(ref)
        return resolved is not None and self.node(resolved).op == "Const"

    def _values_position(self, ref: _Ref, node: Any) -> int | None:
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

    def _selects_by_mask(self, ref: _Ref, node: Any) -> bool:
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
            if selector_node.op not in _VALUE_PRESERVING_OPS:
                return False
            selector = self.resolve(self.data_input(selector, selector_node, 0))
        return False

    def _out_of_range_default(self, ref: _Ref, node: Any) -> int | None:
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

    def _is_negative_wrap(self, ref: _Ref, node: Any) -> bool:
        condition = self.resolve(self.data_input(ref, node, 0))
        shifted = self.resolve(self.data_input(ref, node, 1))
        if condition is None or shifted is None:
            return False
        return self.node(condition).op == "Less" and self.node(shifted).op in _ADD_OPS

    def _constant_step(self, ref: _Ref, node: Any) -> tuple[int, _Ref] | None:
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

    def walk_lookups(self) -> Iterator[_Ref]:
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
            yield from self._walk_node(_Ref(self.outer, (), name), depth=0)

    def _walk_node(self, ref: _Ref, depth: int) -> Iterator[_Ref]:
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
        stack = ref.stack + (_Frame(ref.body, node),)
        for name in callee.nodes:
            yield from self._walk_node(_Ref(callee, stack, name), depth + 1)


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


def _text(value: object) -> str:
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


def _layer_name(op_name: str, variable_name: str) -> str:
    if variable_name and "/" in variable_name:
        return variable_name.rsplit("/", 1)[0]
    scopes = op_name.split("/")[:-1]
    if not scopes:
        return ""
    # Keras 3 under tf.function names every scope `<name>_1`; strip that suffix only
    # when the enclosing scopes carry it too, so a layer really named `x_1` survives.
    if len(scopes) >= 2 and all(scope.endswith("_1") for scope in scopes[:2]):
        for scope in reversed(scopes):
            if scope.endswith("_1") and scope not in ("one_hot", "bincount"):
                return scope[: -len("_1")]
    layer_scopes = [scope for scope in scopes if scope not in ("one_hot", "bincount")]
    return layer_scopes[-1] if layer_scopes else ""


def _variable_shape(variable: Any) -> tuple[int | None, ...]:
    return tuple(
        int(dim.size) if dim.size >= 0 else None for dim in variable.attr["shape"].shape.dim
    )


def _describe(model: _Model, ref: _Ref) -> ModelLookup:
    node = model.node(ref)
    variable_name = ""
    table_shape: tuple[int | None, ...] = ()
    axis_note = ""
    if node.op in ("GatherV2", "ResourceGather"):
        variable = model.variable(model.data_input(ref, node, 0))
        if variable is not None:
            variable_name = _text(variable.attr["shared_name"].s) or variable.name
            table_shape = _variable_shape(variable)
        elif node.op == "GatherV2":
            table = model.constant(model.data_input(ref, node, 0))
            table_shape = tuple(int(dim) for dim in table.shape) if table is not None else ()
        indices = model.data_input(ref, node, 1)
        if node.op == "GatherV2":
            axis = model.constant(model.data_input(ref, node, 2))
            if axis is not None and int(axis) != 0:
                axis_note = f"gather on axis {int(axis)}"
    elif node.op == "OneHot":
        depth = model.constant(model.data_input(ref, node, 1))
        table_shape = (int(depth),) if depth is not None else ()
        indices = model.data_input(ref, node, 0)
    else:  # DenseBincount
        size = model.bincount_size(model.data_input(ref, node, 1))
        table_shape = (size,) if size is not None else ()
        indices = model.data_input(ref, node, 0)
    table_size = table_shape[0] if table_shape else None

    trace = model.trace_indices(indices)
    if node.op == "GatherV2":
        kind = KIND_KERAS_EMBEDDING if trace.wrapped else KIND_GATHER
    else:
        kind = {
            "ResourceGather": KIND_RESOURCE_GATHER,
            "OneHot": KIND_ONE_HOT,
            "DenseBincount": KIND_BINCOUNT,
        }[node.op]
    silent, behaviour = _BEHAVIOUR[kind]
    if trace.default_value is not None:
        silent = True
        behaviour = (
            "ids outside the column's range silently become its default_value "
            f"{trace.default_value} before the lookup (categorical_column_with_identity); "
            f"{behaviour}"
        )
    if trace.filtered:
        # tf.feature_column drops the missing-value -1 and (for embeddings) every
        # negative id before the lookup, so those give a zero vector, not an error.
        silent = True
        behaviour = (
            "values are filtered before the lookup (a Where mask on the index path; "
            f"tf.feature_column drops -1 and negative ids, giving a zero vector); {behaviour}"
        )
    notes = [note for note in (axis_note, trace.note) if note]
    if table_size is None:
        notes.append("table size is not a constant in the graph")
    return ModelLookup(
        feature=trace.feature,
        feature_source=trace.feature_source,
        lookup_kind=kind,
        table_size=table_size,
        table_shape=table_shape,
        offset=trace.offset,
        method=METHOD_GRAPH,
        layer_name=_layer_name(node.name, variable_name),
        op_name=node.name,
        function_name=ref.body.name,
        variable_name=variable_name,
        silent=silent,
        behaviour_on_bad_index=behaviour,
        traced=trace.feature is not None and trace.feature_source != FEATURE_SOURCE_COLUMN_SCOPE,
        probed_table_size=None,
        note="; ".join(notes),
    )


class _Prober:
    """Calls the restored serving function with one integer feature varied."""

    def __init__(self, saved_model_dir: str, signature_name: str, signature: Any) -> None:
        import tensorflow as tf

        self._tf = tf
        loaded = tf.saved_model.load(saved_model_dir)
        self._loaded = loaded  # keeps the restored variables alive
        self._function = loaded.signatures[signature_name]
        self._specs = {}
        for key, info in signature.inputs.items():
            dtype = tf.as_dtype(info.dtype)
            shape = [1 if dim.size < 0 else dim.size for dim in info.tensor_shape.dim]
            self._specs[key] = (dtype, shape)
        self.calls = 0
        self._results: dict[tuple[str | None, int], tuple[str, object]] = {}

    def integer_inputs(self) -> set[str]:
        return {key for key, (dtype, _) in self._specs.items() if dtype.is_integer}

    def call(self, feature: str | None, value: int) -> tuple[str, Any]:
        """Returns ("ok", outputs by name) or ("error", "<error class>: <message>").

        Every other input is zero.
        """
        key = (feature, value)
        if key not in self._results:
            self._results[key] = self._call({} if feature is None else {feature: value})
        return self._results[key]

    def passes_together(self, values: Mapping[str, int]) -> bool:
        """Calls once with several features set; on success, each value is known not to raise.

        Only the status is recorded for the single-feature calls, so the result is
        for lookups that raise on a bad index, not for those that zero it.
        """
        status, _ = self._call(values)
        if status == "ok":
            for feature, value in values.items():
                self._results.setdefault((feature, value), ("ok", None))
        return status == "ok"

    def _call(self, values: Mapping[str, int]) -> tuple[str, Any]:
        tf = self._tf
        feeds = {}
        for key, (dtype, shape) in self._specs.items():
            if key in values:
                feeds[key] = tf.fill(shape, tf.constant(values[key], dtype=dtype))
            else:
                feeds[key] = tf.zeros(shape, dtype=dtype)
        self.calls += 1
        try:
            outputs = self._function(**feeds)
        except tf.errors.OpError as e:
            return "error", f"{type(e).__name__}: {e.message}"
        return "ok", {key: tensor.numpy() for key, tensor in outputs.items()}


def _outputs_equal(left: Mapping[str, Any], right: Mapping[str, Any]) -> bool:
    import numpy as np

    return left.keys() == right.keys() and all(
        np.array_equal(left[key], right[key]) for key in left
    )


def _first_bad_value(prober: _Prober, lookup: ModelLookup) -> tuple[int | None, str]:
    """The smallest feature value >= -offset that the lookup rejects or zeroes.

    The graph's size is checked first at its boundary (the last good and the first
    bad value), which costs two calls; only when that fails does an exponential then
    binary search look for the boundary itself.
    """
    low = lookup.min_valid_value or 0
    # Only lookups that zero a bad index need a reference result to compare with; the
    # others raise on CPU.
    far = None
    if lookup.lookup_kind in _ZEROING_KINDS:
        far_status, far_result = prober.call(lookup.feature, _PROBE_LIMIT)
        far = far_result if far_status == "ok" else None

    def bad(value: int) -> bool:
        status, result = prober.call(lookup.feature, value)
        if status == "error":
            return lookup.op_name in result or _BAD_INDEX_RE.search(result) is not None
        return far is not None and result is not None and _outputs_equal(result, far)

    if bad(low):
        return None, f"the probe found value {low} already bad"
    expected = lookup.feature_input_dim
    if expected is not None and expected > low and not bad(expected - 1) and bad(expected):
        return expected, ""
    step = 1
    good = low
    while not bad(low + step):
        good = low + step
        if low + step >= _PROBE_LIMIT:
            return None, "no bad value found up to 2**24"
        step = min(step * 2, _PROBE_LIMIT - low)
    first_bad = low + step
    while first_bad - good > 1:
        middle = (good + first_bad) // 2
        if bad(middle):
            first_bad = middle
        else:
            good = middle
    return first_bad, ""


def _measured_behaviour(prober: _Prober, lookup: ModelLookup, first_bad: int) -> tuple[bool, str]:
    """Whether a bad value passed without error (below or at the end), and what happened."""
    # Only traced lookups are probed, and tracing sets their offset.
    below = cast(int, lookup.min_valid_value) - 1
    parts = []
    silent = False
    for value in (below, first_bad):
        status, result = prober.call(lookup.feature, value)
        if status == "error":
            parts.append(f"{value} -> {result.split(':', 1)[0]}")
        else:
            parts.append(f"{value} -> no error")
            silent = True
    return silent, f"measured on CPU: {', '.join(parts)}; {lookup.behaviour_on_bad_index}"


def _probe(
    saved_model_dir: str, model: _Model, lookups: Sequence[ModelLookup]
) -> tuple[list[ModelLookup], str, bool]:
    probe_able = [
        lookup
        for lookup in lookups
        if lookup.traced and lookup.feature_source == FEATURE_SOURCE_SIGNATURE
    ]
    if not probe_able:
        return (
            list(lookups),
            "not probed: no lookup is indexed directly by a signature input "
            "(the signature takes serialized examples or other inputs)",
            False,
        )
    try:
        prober = _Prober(saved_model_dir, model.signature_name, model.signature)
    except Exception as e:  # noqa: BLE001 - the graph results stand without the probe
        return (
            list(lookups),
            f"not probed: the model cannot be restored ({type(e).__name__}: {e})",
            False,
        )
    integer_inputs = prober.integer_inputs()
    status, message = prober.call(None, 0)
    if status != "ok":
        return list(lookups), f"not probed: the all-zero input fails ({message[:200]})", False
    # The values expected to pass are checked for all raising lookups in two calls
    # rather than two per lookup: one call with every feature at the lowest valid
    # value, one with every feature at its last valid value.
    raising = [
        lookup
        for lookup in probe_able
        if lookup.feature in integer_inputs
        and lookup.lookup_kind not in _ZEROING_KINDS
        and lookup.feature_input_dim is not None
    ]
    lowest = {
        lookup.feature: lookup.min_valid_value
        for lookup in raising
        if lookup.feature is not None and lookup.min_valid_value is not None
    }
    last: dict[str, int] = {}
    for lookup in raising:
        if lookup.feature is not None and lookup.feature_input_dim is not None:
            last[lookup.feature] = min(
                last.get(lookup.feature, _PROBE_LIMIT), lookup.feature_input_dim - 1
            )
    for values in (lowest, last):
        if values:
            prober.passes_together(values)
    probed = []
    for lookup in lookups:
        if lookup not in probe_able or lookup.feature not in integer_inputs:
            probed.append(lookup)
            continue
        first_bad, why = _first_bad_value(prober, lookup)
        if first_bad is None:
            probed.append(dataclasses.replace(lookup, note=_join(lookup.note, f"probe: {why}")))
            continue
        probed_size = first_bad + cast(int, lookup.offset)
        silent, behaviour = _measured_behaviour(prober, lookup, first_bad)
        if lookup.table_size is None:
            found = dataclasses.replace(lookup, table_size=probed_size, method=METHOD_PROBE)
        elif probed_size == lookup.table_size:
            found = dataclasses.replace(lookup, method=METHOD_GRAPH_AND_PROBE)
        else:
            found = dataclasses.replace(
                lookup,
                method=METHOD_GRAPH_PROBE_DISAGREES,
                note=_join(
                    lookup.note,
                    f"probe found the first bad value {first_bad} (size {probed_size}); "
                    "another lookup of the same feature may fail first",
                ),
            )
        probed.append(
            dataclasses.replace(
                found,
                probed_table_size=probed_size,
                behaviour_on_bad_index=behaviour,
                silent=silent,
            )
        )
    return probed, f"probed with {prober.calls} calls of the serving function on CPU", True


def _join(first: str, second: str) -> str:
    return f"{first}; {second}" if first else second


def analyse_model(
    saved_model_dir: str, *, signature_name: str = "serving_default", probe: bool = True
) -> ModelAnalysis:
    """Finds every lookup of a SavedModel's serving signature and its table size.

    Args:
      saved_model_dir: The directory holding saved_model.pb (a TFX Model artifact's
        `Format-Serving`, a Keras 3 `model.export()`, a `tf.saved_model.save` export),
        or a Model artifact's URI; see serving_model_dir.
      signature_name: The signature to trace.
      probe: Whether to cross-check traced lookups whose feature is an integer
        signature input by calling the model on CPU.

    Returns:
      The lookups, sorted by feature (untraced last) and op name.

    Raises:
      ModelInputError: The directory is not a readable SavedModel with that signature.
    """
    import tensorflow  # noqa: F401 - imported before the clock starts: seconds is the analysis

    started = time.perf_counter()
    saved_model_dir = serving_model_dir(saved_model_dir)
    model = _Model(saved_model_dir, signature_name)
    lookups = [_describe(model, ref) for ref in model.walk_lookups()]
    lookups = _unique(lookups)
    probed = False
    if not probe:
        probe_note = "not probed: probing was turned off"
    elif not lookups:
        probe_note = "not probed: no lookup found"
    else:
        lookups, probe_note, probed = _probe(saved_model_dir, model, lookups)
    lookups.sort(key=lambda lookup: (lookup.feature is None, lookup.feature or "", lookup.op_name))
    seconds = time.perf_counter() - started
    logging.info(
        "Model %s: %d lookups in %.2f s (%s)", saved_model_dir, len(lookups), seconds, probe_note
    )
    return ModelAnalysis(
        saved_model_dir=saved_model_dir,
        signature_name=signature_name,
        signature_inputs=tuple(sorted(model.signature.inputs)),
        lookups=tuple(lookups),
        probed=probed,
        probe_note=probe_note,
        seconds=seconds,
    )


def _unique(lookups: Sequence[ModelLookup]) -> list[ModelLookup]:
    # One function body reached through two wrappers yields the same lookup twice.
    seen = set()
    unique = []
    for lookup in lookups:
        key = (lookup.feature, lookup.op_name, lookup.function_name, lookup.offset)
        if key not in seen:
            seen.add(key)
            unique.append(lookup)
    return unique


def render_lookups(analysis: ModelAnalysis) -> str:
    """The `embedding-guard inspect-model` text: one block per lookup."""
    lines = [
        f"Model {analysis.saved_model_dir} (signature {analysis.signature_name!r}, "
        f"inputs {', '.join(analysis.signature_inputs)}): {len(analysis.lookups)} lookup(s)"
    ]
    if not analysis.lookups:
        lines.append(
            "  no Embedding, gather, one_hot or bincount lookup reached from the signature"
        )
    for lookup in analysis.lookups:
        if lookup.traced:
            feature = lookup.feature
        elif lookup.feature:
            feature = f"{lookup.feature} (named by its tf.feature_column scope, not traced)"
        else:
            feature = "(not traced)"
        size = "unknown" if lookup.table_size is None else str(lookup.table_size)
        offset = "" if not lookup.offset else f" (index = value + {lookup.offset})"
        valid = (
            ""
            if lookup.feature_input_dim is None
            else f", valid values [{lookup.min_valid_value}, {lookup.feature_input_dim})"
        )
        lines.append(
            f"  {feature} -> {lookup.lookup_kind} -> table {size}{offset}{valid} -> {lookup.method}"
        )
        where = lookup.layer_name or "(no layer)"
        source = f"; feature from the {lookup.feature_source}" if lookup.traced else ""
        variable = f", variable {lookup.variable_name}" if lookup.variable_name else ""
        lines.append(f"      layer {where}, op {lookup.op_name}{variable}{source}")
        lines.append(
            f"      bad index: {'SILENT, ' if lookup.silent else ''}{lookup.behaviour_on_bad_index}"
        )
        if lookup.note:
            lines.append(f"      note: {lookup.note}")
    lines.append(f"  {analysis.probe_note}; {analysis.seconds:.2f} s")
    return "\n".join(lines)
