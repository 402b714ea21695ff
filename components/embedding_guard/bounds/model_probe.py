"""Cross-checks traced lookups by calling the restored serving function on CPU.

Only lookups whose feature is an integer signature input can be probed: the
function is called with that feature varied, at the graph's boundary (last good
and first bad value) and just below the valid range. "Bad" means the call raises
an out-of-range error or an Assert's "assertion failed" (tf_keras CategoryEncoding),
or returns the same result as a value far out of range (the all-zero row of a
one-hot). The outcomes measured just below the range and at the first bad value
replace the graph's. Where the graph holds no size, or the boundary check
fails, an exponential then binary search finds the first bad value instead.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from typing import Any, cast

from embedding_guard.bounds.model_lookups import (
    FEATURE_SOURCE_SIGNATURE,
    KIND_BINCOUNT,
    KIND_ONE_HOT,
    METHOD_GRAPH_AND_PROBE,
    METHOD_GRAPH_PROBE_DISAGREES,
    METHOD_PROBE,
    ModelLookup,
)
from embedding_guard.bounds.model_tracer import ModelGraph
from embedding_guard.verdict.lookup import Outcome

_ZEROING_KINDS = frozenset({KIND_ONE_HOT, KIND_BINCOUNT})
# Exactly representable in float32, since Keras casts some index inputs to float.
_PROBE_LIMIT = 2**24
# GatherV2/ResourceGather say "indices[0] = 7 is not in [0, 7)"; the sparse segment
# ops behind tf.feature_column say "indices[0] == 7 out of range [0, 7)".
_BAD_INDEX_RE = re.compile(r"indices\[[^\]]*\] ==? (-?\d+) (?:is not in|out of range) \[0, (\d+)\)")
# An Assert guarding a lookup (tf_keras CategoryEncoding) fails with this; every
# other input is a valid zero, so the varied feature is what it rejected.
_ASSERTION_RE = re.compile(r"assertion failed")


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


def _rejects_index(lookup: ModelLookup, error: str) -> bool:
    """Whether an error of a call is the lookup rejecting the varied feature's value."""
    return (
        lookup.op_name in error
        or _BAD_INDEX_RE.search(error) is not None
        or _ASSERTION_RE.search(error) is not None
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
            return _rejects_index(lookup, result)
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


def _measured_outcome(
    prober: _Prober, lookup: ModelLookup, value: int, graph: Outcome, far: Any
) -> tuple[Outcome, str]:
    """What one bad value did on CPU: the outcome, and the measurement in words."""
    status, result = prober.call(lookup.feature, value)
    if status == "error":
        kind = result.split(":", 1)[0]
        why = " (assertion failed)" if _ASSERTION_RE.search(result) else ""
        return Outcome.RAISES, f"{value} -> {kind}{why}"
    if graph.silent:
        # The graph named the silent result (wrap, zero row, default, filter); the
        # call confirms that no error comes.
        return graph, f"{value} -> no error"
    table_size = lookup.table_size
    if value < 0 and table_size is not None and lookup.offset is not None:
        wrapped = prober.call(lookup.feature, value + table_size)
        if wrapped[0] == "ok" and _outputs_equal(result, wrapped[1]):
            return Outcome.WRAPS, f"{value} -> no error (the row of {value + table_size})"
    if far is not None and _outputs_equal(result, far):
        return Outcome.ZERO_ROW, f"{value} -> no error (the result of a value far out of range)"
    return Outcome.UNKNOWN, f"{value} -> no error (an unknown result)"


def _measured(prober: _Prober, lookup: ModelLookup, first_bad: int) -> ModelLookup:
    """The lookup with its outcomes as measured below its range and at its first bad value."""
    # Only traced lookups are probed, and tracing sets their offset.
    below = cast(int, lookup.min_valid_value) - 1
    far_status, far_result = prober.call(lookup.feature, _PROBE_LIMIT)
    far = far_result if far_status == "ok" else None
    on_negative, negative_text = _measured_outcome(prober, lookup, below, lookup.on_negative, far)
    on_too_large, too_large_text = _measured_outcome(
        prober, lookup, first_bad, lookup.on_too_large, far
    )
    return dataclasses.replace(
        lookup,
        on_negative=on_negative,
        on_too_large=on_too_large,
        # A guard the graph saw stands only where the measurement raised too.
        guarded_below=lookup.guarded_below and on_negative is Outcome.RAISES,
        guarded_above=lookup.guarded_above and on_too_large is Outcome.RAISES,
        evidence=(f"measured on CPU: {negative_text}, {too_large_text}; graph: {lookup.evidence}"),
    )


def probe_lookups(
    saved_model_dir: str, model: ModelGraph, lookups: Sequence[ModelLookup]
) -> tuple[list[ModelLookup], str, bool]:
    """Probes the lookups a signature input indexes directly; the others pass unchanged.

    Args:
      saved_model_dir: The directory holding saved_model.pb.
      model: Its traced signature.
      lookups: The lookups the graph tracing found.

    Returns:
      (the lookups, probed ones with their measured size and behaviour; the probe
      note for ModelAnalysis.probe_note; whether probing ran).
    """
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
            _measured(prober, dataclasses.replace(found, probed_table_size=probed_size), first_bad)
        )
    return probed, f"probed with {prober.calls} calls of the serving function on CPU", True


def _join(first: str, second: str) -> str:
    return f"{first}; {second}" if first else second
