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
  `DenseBincount`'s size;
* what the lookup does with a negative and with a too large value (an `Outcome`)
  comes from the op and its index path: a ResourceGather or bare GatherV2 raises
  on CPU, Keras 3's SelectV2 wrap reads row value + n for a negative, a bare
  OneHot gives a zero row, a bare DenseBincount a zero row for a too large value
  and an error for a negative; an `Assert` that compares the indices with the
  table and reaches the lookup through control inputs (tf_keras CategoryEncoding)
  makes the values it rejects raise, on every device; tf.feature_column's Where
  mask drops negatives, and its identity column's default_value remaps both sides.

When the signature takes integer features directly, each traced lookup is then
cross-checked by black-box probing on CPU: the restored serving function is called
with one feature varied, at the graph's boundary (last good and first bad value) and
just below the valid range. "Bad" means the call raises an out-of-range error or a
guarding Assert's "assertion failed", or returns the same result as a value far out
of range (the all-zero row of a one-hot). What those two calls did replaces the
graph's outcomes, and the evidence says "measured".
Where the graph holds no size, or the boundary check fails, an exponential then
binary search finds the first bad value instead. A signature that takes serialized
tf.Examples cannot be probed this way (the transform, not the caller, decides the
indices), so those lookups are found by graph tracing alone, and each says so.

This module is the entry: it finds the SavedModel, describes each lookup the
tracer (model_tracer) reaches, has the prober (model_probe) check them, and renders
the result; the result types are in model_lookups.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from typing import Any

from absl import logging

from embedding_guard import heavy_imports
from embedding_guard.bounds.model_guards import IndexGuard, index_guards
from embedding_guard.bounds.model_lookups import (
    FEATURE_SOURCE_CALL_OUTPUT,
    FEATURE_SOURCE_COLUMN_SCOPE,
    FEATURE_SOURCE_EXAMPLE_KEY,
    FEATURE_SOURCE_SIGNATURE,
    KIND_BINCOUNT,
    KIND_GATHER,
    KIND_KERAS_EMBEDDING,
    KIND_ONE_HOT,
    KIND_RESOURCE_GATHER,
    METHOD_GRAPH,
    METHOD_GRAPH_AND_PROBE,
    METHOD_GRAPH_PROBE_DISAGREES,
    METHOD_PROBE,
    ModelAnalysis,
    ModelInputError,
    ModelLookup,
)
from embedding_guard.bounds.model_probe import probe_lookups
from embedding_guard.bounds.model_tracer import (
    SAVED_MODEL_FILE,
    IndexTrace,
    ModelGraph,
    TensorRef,
    text_of,
)
from embedding_guard.verdict.lookup import Outcome

# Callers import the analysis's results from here, the module they call.
__all__ = [
    "FEATURE_SOURCE_CALL_OUTPUT",
    "FEATURE_SOURCE_COLUMN_SCOPE",
    "FEATURE_SOURCE_EXAMPLE_KEY",
    "FEATURE_SOURCE_SIGNATURE",
    "KIND_BINCOUNT",
    "KIND_GATHER",
    "KIND_KERAS_EMBEDDING",
    "KIND_ONE_HOT",
    "KIND_RESOURCE_GATHER",
    "METHOD_GRAPH",
    "METHOD_GRAPH_AND_PROBE",
    "METHOD_GRAPH_PROBE_DISAGREES",
    "METHOD_PROBE",
    "ModelAnalysis",
    "ModelInputError",
    "ModelLookup",
    "analyze_model",
    "render_lookups",
    "serving_model_dir",
]

# What each kind of lookup does on CPU with a negative and a too large index when
# nothing on its index path checks or changes the values, and the ops that say so.
_UNGUARDED: dict[str, tuple[Outcome, Outcome, str]] = {
    KIND_KERAS_EMBEDDING: (
        Outcome.WRAPS,
        Outcome.RAISES,
        "a SelectV2(x < 0, x + n, x) before its GatherV2 {op!r} wraps a value in [-n, 0) "
        "to row value + n (Keras 3 Embedding); a value < -n or >= n reaches the GatherV2, "
        "whose CPU kernel raises",
    ),
    KIND_RESOURCE_GATHER: (
        Outcome.RAISES,
        Outcome.RAISES,
        "ResourceGather {op!r} takes the indices unchecked; its CPU kernel raises for an "
        "index outside [0, n)",
    ),
    KIND_GATHER: (
        Outcome.RAISES,
        Outcome.RAISES,
        "GatherV2 {op!r} takes the indices unchecked; its CPU kernel raises for an index "
        "outside [0, n)",
    ),
    KIND_ONE_HOT: (
        Outcome.ZERO_ROW,
        Outcome.ZERO_ROW,
        "OneHot {op!r} gives an all-zero row for an index outside [0, depth)",
    ),
    KIND_BINCOUNT: (
        Outcome.RAISES,
        Outcome.ZERO_ROW,
        "DenseBincount {op!r} drops a value >= size (an all-zero row for one value) and "
        "its kernel rejects a negative value",
    ),
}


def _graph_outcomes(
    kind: str, op_name: str, trace: IndexTrace, guards: Sequence[IndexGuard]
) -> tuple[Outcome, Outcome, bool, bool, str]:
    """What the lookup does on CPU with bad values, decided from the graph.

    Returns:
      (on_negative, on_too_large, guarded_below, guarded_above, evidence).
    """
    on_negative, on_too_large, evidence = _UNGUARDED[kind]
    reasons = [evidence.format(op=op_name)]
    below = any(guard.below for guard in guards)
    above = any(guard.above for guard in guards)
    if guards:
        names = ", ".join(repr(guard.assert_name) for guard in guards)
        checks = " and ".join(
            check for check, on in (("value >= 0", below), ("value < n", above)) if on
        )
        # The Assert runs before the lookup (a control input), so whatever the op
        # would do, a value it rejects raises first, on every device.
        reasons = [
            f"an Assert ({names}) checks {checks} before the lookup runs (a control "
            f"input), so a value it rejects raises on every device; without it, {reasons[0]}"
        ]
        on_negative = Outcome.RAISES if below else on_negative
        on_too_large = Outcome.RAISES if above else on_too_large
    if trace.default_value is not None:
        # categorical_column_with_identity(default_value=d) remaps ids outside the
        # column's range before any Assert or lookup sees them.
        on_negative = on_too_large = Outcome.DEFAULT_ROW
        below = above = False
        reasons.insert(
            0,
            "ids outside the column's range silently become its default_value "
            f"{trace.default_value} before the lookup (a SelectV2 on the index path: "
            "categorical_column_with_identity)",
        )
    if trace.filtered:
        # tf.feature_column drops the missing-value -1 and (for embeddings) every
        # negative id before the lookup, so those give a zero vector, not an error.
        on_negative = Outcome.FILTERED
        below = False
        reasons.insert(
            0,
            "negative values are filtered before the lookup (a Where mask on the index "
            "path: tf.feature_column drops -1 and negative ids, giving a zero vector)",
        )
    return on_negative, on_too_large, below, above, "; ".join(reasons)


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
        what = "is a file, not a model folder" if fileio.exists(path) else "does not exist"
        raise ModelInputError(f"Model directory {path!r} {what}; {_FIX_PATH}.")
    candidate = path
    if not fileio.exists(os.path.join(candidate, SAVED_MODEL_FILE)) and fileio.isdir(
        os.path.join(candidate, "Format-Serving")
    ):
        candidate = os.path.join(candidate, "Format-Serving")
    export_dir = os.path.join(candidate, "export")
    if not fileio.exists(os.path.join(candidate, SAVED_MODEL_FILE)) and fileio.isdir(export_dir):
        names = sorted(name.rstrip("/") for name in fileio.listdir(export_dir))
        if len(names) == 1:
            stamps = [
                stamp.rstrip("/")
                for stamp in fileio.listdir(os.path.join(export_dir, names[0]))
                if stamp.rstrip("/").isdigit()
            ]
            if stamps:
                candidate = os.path.join(export_dir, names[0], max(stamps, key=int))
    if not fileio.exists(os.path.join(candidate, SAVED_MODEL_FILE)):
        raise ModelInputError(
            f"{os.path.join(path, SAVED_MODEL_FILE)!r} not found: {path!r} is not a "
            f"SavedModel directory, a Model artifact or its Format-Serving; {_FIX_PATH}."
        )
    return candidate


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


def _describe(model: ModelGraph, ref: TensorRef) -> ModelLookup:
    node = model.node(ref)
    variable_name = ""
    table_shape: tuple[int | None, ...] = ()
    axis_note = ""
    if node.op in ("GatherV2", "ResourceGather"):
        variable = model.variable(model.data_input(ref, node, 0))
        if variable is not None:
            variable_name = text_of(variable.attr["shared_name"].s) or variable.name
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
    guards = index_guards(model, ref, indices, table_size)
    on_negative, on_too_large, guarded_below, guarded_above, evidence = _graph_outcomes(
        kind, node.name, trace, guards
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
        on_negative=on_negative,
        on_too_large=on_too_large,
        guarded_below=guarded_below,
        guarded_above=guarded_above,
        evidence=evidence,
        traced=trace.feature is not None and trace.feature_source != FEATURE_SOURCE_COLUMN_SCOPE,
        probed_table_size=None,
        note="; ".join(notes),
    )


def analyze_model(
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
    # Imported before the clock starts (seconds is the analysis), with the collector paused.
    heavy_imports.tensorflow()

    started = time.perf_counter()
    saved_model_dir = serving_model_dir(saved_model_dir)
    model = ModelGraph(saved_model_dir, signature_name)
    lookups = [_describe(model, ref) for ref in model.walk_lookups()]
    lookups = _unique(lookups)
    probed = False
    if not probe:
        probe_note = "not probed: probing was turned off"
    elif not lookups:
        probe_note = "not probed: no lookup found"
    else:
        lookups, probe_note, probed = probe_lookups(saved_model_dir, model, lookups)
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
        lines.append(f"      bad index: {lookup.behaviour_text()}")
        lines.append(f"      decided by: {lookup.evidence}")
        if lookup.note:
            lines.append(f"      note: {lookup.note}")
    lines.append(f"  {analysis.probe_note}; {analysis.seconds:.2f} s")
    return "\n".join(lines)
