"""Finds the Asserts that guard a model lookup's indices.

tf_keras's CategoryEncoding saves an `Assert(min(x) >= 0 and n > max(x))` beside its
DenseBincount, which reaches the op only through control inputs (`^.../Assert`) on
the bincount's size constants. Such an Assert makes every value it rejects raise
`InvalidArgumentError: assertion failed`, on CPU, on GPU and at serving, whatever
the op itself would do. This module reads those guards from the graph (model_tracer
parses it); model_analysis turns them into outcomes.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from embedding_guard.bounds.model_tracer import (
    VALUE_PRESERVING_OPS,
    Body,
    ModelGraph,
    TensorRef,
    producer,
)

# Comparisons an Assert's condition may hold, and the side of the index each
# guards when the index is the left operand (x < n guards values >= n).
_GUARD_COMPARISONS = {
    "Less": "above",
    "LessEqual": "above",
    "Greater": "below",
    "GreaterEqual": "below",
}
_FLIPPED_SIDE = {"above": "below", "below": "above"}
# Ops between an Assert and its comparisons that keep "every comparison holds".
_CONDITION_OPS = frozenset({"LogicalAnd", "All", "Identity", "Reshape", "Squeeze"})
# Reductions whose bound bounds every index: max(x) < n and min(x) >= 0.
_INDEX_REDUCTIONS = frozenset({"Max", "Min"})
# Ancestors of a lookup searched for Asserts that reach it through control inputs.
_MAX_GUARD_SEARCH = 2_000


@dataclasses.dataclass(frozen=True)
class IndexGuard:
    """An Assert that checks a lookup's indices before the lookup runs.

    Attributes:
      assert_name: The Assert op's name.
      below: Whether it checks that no index is below its lower bound (x >= 0).
      above: Whether it checks that no index reaches the table (x < n).
    """

    assert_name: str
    below: bool
    above: bool


def index_guards(
    model: ModelGraph, ref: TensorRef, indices: TensorRef, table_size: int | None
) -> list[IndexGuard]:
    """The Asserts that check the lookup's indices and reach it through control inputs.

    tf_keras's CategoryEncoding puts `Assert(min(x) >= 0 and n > max(x))` beside
    its DenseBincount, reaching it only through control inputs (`^.../Assert`) on
    the bincount's size constants; such an Assert makes every bad value raise,
    on every device. An Assert counts only when its condition compares the
    lookup's own indices (or their min/max) with a constant, and only for the
    side(s) those comparisons bound tightly enough: `x < c` guards the table
    only when c <= table_size, `x >= c` only when c >= 0.

    Args:
      model: The traced signature's graph.
      ref: The lookup op's output.
      indices: The lookup's indices input.
      table_size: The table's rows, None when unknown (then any upper bound
        counts).

    Returns:
      The guarding Asserts, by name.
    """
    body = ref.body
    index_names = _local_index_path(body, indices)
    guards = []
    for assert_node in _control_asserts(body, model.node(ref)):
        below = above = False
        for comparison, index_left, bound in _condition_comparisons(body, assert_node, index_names):
            side = _GUARD_COMPARISONS[comparison.op]
            if not index_left:
                side = _FLIPPED_SIDE[side]
            # Strict comparisons exclude the bound itself: x < c and c > x
            # allow up to c - 1; x >= c and c <= x allow down to c.
            strict = comparison.op in ("Less", "Greater")
            if side == "above":
                largest = bound - 1 if strict else bound
                above = above or table_size is None or largest < table_size
            else:
                smallest = bound + 1 if strict else bound
                below = below or smallest >= 0
        if below or above:
            guards.append(IndexGuard(assert_node.name, below=below, above=above))
    return guards


def _local_index_path(body: Body, indices: TensorRef) -> set[str]:
    """Names (nodes or arguments of body) that carry the indices' values."""
    names: set[str] = set()
    name = indices.node_name if indices.node_name is not None else indices.arg_name
    for _ in range(100):
        if name is None or name in names:
            break
        names.add(name)
        node = body.nodes.get(name)
        if node is None or node.op not in VALUE_PRESERVING_OPS:
            break
        data = [text for text in node.input if not text.startswith("^")]
        name = producer(data[0]) if data else None
    return names


def _control_asserts(body: Body, lookup: Any) -> list[Any]:
    """Assert nodes among the lookup's ancestors (data and control) in its body."""
    found = []
    seen: set[str] = set()
    pending = [producer(text) for text in lookup.input]
    while pending and len(seen) < _MAX_GUARD_SEARCH:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        node = body.nodes.get(name)
        if node is None:
            continue
        if node.op == "Assert":
            found.append(node)
            continue
        pending.extend(producer(text) for text in node.input)
    return sorted(found, key=lambda node: node.name)


def _condition_comparisons(
    body: Body, assert_node: Any, index_names: set[str]
) -> list[tuple[Any, bool, int]]:
    """Comparisons of index against constant that the Assert's condition requires.

    Returns (comparison node, whether the index is its left operand, the
    constant) triples.
    """
    found = []
    data = [text for text in assert_node.input if not text.startswith("^")]
    pending = [producer(data[0])] if data else []
    seen: set[str] = set()
    while pending:
        name = pending.pop()
        node = body.nodes.get(name)
        if node is None or name in seen:
            continue
        seen.add(name)
        inputs = [text for text in node.input if not text.startswith("^")]
        if node.op in _CONDITION_OPS:
            pending.extend(producer(text) for text in inputs[:2])
        elif node.op in _GUARD_COMPARISONS and len(inputs) == 2:
            left, right = inputs
            if _is_index(body, left, index_names):
                bound = _local_constant(body, right)
                if bound is not None:
                    found.append((node, True, bound))
            elif _is_index(body, right, index_names):
                bound = _local_constant(body, left)
                if bound is not None:
                    found.append((node, False, bound))
    return found


def _is_index(body: Body, text: str, index_names: set[str]) -> bool:
    name: str | None = producer(text)
    for _ in range(16):
        if name is None:
            return False
        if name in index_names:
            return True
        node = body.nodes.get(name)
        if node is None or node.op not in VALUE_PRESERVING_OPS | _INDEX_REDUCTIONS:
            return False
        data = [text for text in node.input if not text.startswith("^")]
        name = producer(data[0]) if data else None
    return False


def _local_constant(body: Body, text: str) -> int | None:
    """The scalar integer value of a Const in body (through Cast/Identity), or None."""
    import tensorflow as tf

    for _ in range(8):
        node = body.nodes.get(producer(text))
        if node is None:
            return None
        if node.op == "Const":
            value = tf.make_ndarray(node.attr["value"].tensor)
            if value.size != 1 or value.dtype.kind not in "iuf":
                return None
            return int(value.reshape(()))
        data = [text for text in node.input if not text.startswith("^")]
        if node.op not in ("Cast", "Identity") or not data:
            return None
        text = data[0]
    return None
