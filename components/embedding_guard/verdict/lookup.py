"""What an embedding lookup does with a bad index, as words a finding can carry.

A bad index fails differently by op, Keras version and device: tf_keras's
`Embedding` and `tf.gather` raise `InvalidArgumentError` on CPU, tf_keras's
`CategoryEncoding` raises from an `Assert` beside its `DenseBincount`, Keras 3's
`Embedding` wraps negatives to the last rows, Keras 3's `CategoryEncoding` gives
an all-zero row, and on GPU `tf.gather` returns zeros for an index past its
table. The model analysis decides the outcome of each lookup from the saved
graph; this module only names the outcomes and turns them into a finding's
consequence. Pure Python.
"""

from __future__ import annotations

import dataclasses
import enum


class Outcome(str, enum.Enum):
    """What one lookup gives for one kind of bad index (a stable word in reports)."""

    RAISES = "raises"
    WRAPS = "wraps"
    ZERO_ROW = "zero_row"
    DEFAULT_ROW = "default_row"
    FILTERED = "filtered"
    UNKNOWN = "unknown"

    @property
    def silent(self) -> bool:
        """Whether the outcome is a wrong result instead of an error."""
        return self not in (Outcome.RAISES, Outcome.UNKNOWN)


_WORDS = {
    Outcome.RAISES: "raises InvalidArgumentError",
    Outcome.WRAPS: "silently reads row value + table size (a wrong row)",
    Outcome.ZERO_ROW: "silently returns an all-zero row",
    Outcome.DEFAULT_ROW: "silently replaces the value with the column's default id",
    Outcome.FILTERED: "silently drops the value (a zero vector)",
    Outcome.UNKNOWN: "has an outcome the saved graph does not show",
}

# Ops that gather rows: on GPU they return zeros for an index past the table
# where the CPU kernel raises (tf.gather's documented GPU behaviour).
GATHER_KINDS = frozenset({"Embedding", "ResourceGather", "GatherV2"})


def describe(outcome: Outcome) -> str:
    """The outcome as a phrase: 'raises InvalidArgumentError', ..."""
    return _WORDS[Outcome(outcome)]


def on_gpu(kind: str, on_cpu: Outcome, guarded: bool) -> Outcome:
    """The outcome on GPU of a lookup whose CPU outcome is on_cpu.

    Args:
      kind: The lookup's kind (Embedding, ResourceGather, OneHot, ...).
      on_cpu: Its outcome on CPU.
      guarded: Whether an Assert guards the lookup against this kind of bad value:
        an Assert raises on every device.

    Returns:
      The GPU outcome: a gather that raises on CPU returns zeros on GPU.
    """
    if guarded and on_cpu is Outcome.RAISES:
        return Outcome.RAISES
    if kind in GATHER_KINDS and on_cpu is Outcome.RAISES:
        return Outcome.ZERO_ROW
    return on_cpu


@dataclasses.dataclass(frozen=True)
class LookupConsequence:
    """What a lookup does with the bad values of one finding.

    Attributes:
      lookup: Which lookup: the model's layer and op, or "an embedding lookup"
        when no model was given.
      on_cpu: What it does on CPU (and in a CPU serving signature).
      on_gpu: What it does on GPU.
      silent: Whether any of those outcomes is a wrong result instead of an error.
      evidence: How that was decided (the ops seen in the saved graph, or a
        measurement), or "" for the general behaviour of lookups.
    """

    lookup: str
    on_cpu: str
    on_gpu: str
    silent: bool
    evidence: str = ""

    def sentence(self) -> str:
        """One sentence for messages: 'On CPU X; on GPU Y.'"""
        if self.on_cpu == self.on_gpu:
            where = f"{self.lookup} {self.on_cpu} on CPU and GPU"
            where = where[:1].upper() + where[1:]
        else:
            where = f"On CPU {self.lookup} {self.on_cpu}; on GPU it {self.on_gpu}"
        evidence = f" ({self.evidence})" if self.evidence else ""
        return f"{where}{evidence}."

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


def general_consequence(negative: bool) -> LookupConsequence:
    """What lookups do with a bad value when no model says which lookup it meets."""
    if negative:
        on_cpu = (
            "tf.nn.embedding_lookup and a tf_keras Embedding raise InvalidArgumentError, "
            "a Keras 3 Embedding silently reads row value + table size, and a Keras 3 "
            "CategoryEncoding silently returns an all-zero row"
        )
    else:
        on_cpu = (
            "tf.nn.embedding_lookup and an Embedding (tf_keras or Keras 3) raise "
            "InvalidArgumentError, and a Keras 3 CategoryEncoding silently returns an "
            "all-zero row"
        )
    on_gpu = "tf.gather returns an all-zero row"
    if negative:
        # The wrap is a SelectV2 before the gather, so it runs on every device.
        on_gpu += " (a Keras 3 Embedding still wraps the value to row value + table size first)"
    return LookupConsequence(
        lookup="an embedding lookup",
        on_cpu=on_cpu,
        on_gpu=on_gpu,
        silent=True,
    )


def model_consequence(
    kind: str, layer: str, outcome_on_cpu: Outcome, guarded: bool, evidence: str
) -> LookupConsequence:
    """What the model's own lookup does with a bad value.

    Args:
      kind: The lookup kind (Embedding, CategoryEncoding's DenseBincount, ...).
      layer: The model's layer or op that looks the feature up.
      outcome_on_cpu: Its outcome on CPU for this kind of bad value.
      guarded: Whether an Assert guards it.
      evidence: How the outcome was decided.

    Returns:
      The consequence, with the GPU outcome derived from the CPU one.
    """
    gpu = on_gpu(kind, outcome_on_cpu, guarded)
    return LookupConsequence(
        lookup=f"the model's {kind} {layer!r}" if layer else f"the model's {kind}",
        on_cpu=describe(outcome_on_cpu),
        on_gpu=describe(gpu),
        silent=outcome_on_cpu.silent or gpu.silent,
        evidence=evidence,
    )
