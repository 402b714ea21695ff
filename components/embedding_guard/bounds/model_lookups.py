"""The model analysis's results: one table lookup of a SavedModel, and all of them.

Plain data, no TensorFlow: what the tracer and the prober fill in, and what the
bound resolution and reports read.
"""

from __future__ import annotations

import dataclasses

from embedding_guard.errors import InputError
from embedding_guard.verdict.lookup import Outcome, describe, on_gpu

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
      on_negative: What the lookup does on CPU with a negative feature value (below
        min_valid_value): measured when probed, else decided from the graph.
      on_too_large: The same for a value at or past feature_input_dim.
      guarded_below: Whether an Assert on the index path checks `value >= 0` before
        the lookup (tf_keras CategoryEncoding), so a negative value raises on every
        device.
      guarded_above: Whether an Assert checks `value < size` before the lookup.
      evidence: How on_negative and on_too_large were decided: the ops seen in the
        graph, and what a probe measured on CPU.
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
    on_negative: Outcome
    on_too_large: Outcome
    guarded_below: bool
    guarded_above: bool
    evidence: str
    traced: bool
    probed_table_size: int | None
    note: str

    @property
    def guarded(self) -> bool:
        """Whether an Assert guards the lookup against some bad value (on every device)."""
        return self.guarded_below or self.guarded_above

    @property
    def silent(self) -> bool:
        """Whether some bad value gives a wrong result instead of an error on CPU."""
        return self.on_negative.silent or self.on_too_large.silent

    def on_gpu(self, *, negative: bool) -> Outcome:
        """What the lookup does on GPU with a negative (or a too large) value.

        An Assert raises on every device; an unguarded gather that raises on CPU
        returns zeros on GPU (tf.gather's documented GPU behaviour).
        """
        on_cpu = self.on_negative if negative else self.on_too_large
        guarded = self.guarded_below if negative else self.guarded_above
        return on_gpu(self.lookup_kind, on_cpu, guarded and on_cpu is Outcome.RAISES)

    def behaviour_text(self) -> str:
        """Per kind of bad value, what happens on CPU and on GPU, in words.

        For example "negative -> raises InvalidArgumentError; >= 12 -> raises
        InvalidArgumentError (an Assert guards it; on GPU too)".
        """
        too_large = (
            "too large" if self.feature_input_dim is None else f">= {self.feature_input_dim}"
        )
        below = "negative" if not self.offset else f"< {self.min_valid_value}"
        parts = []
        for name, negative in ((below, True), (too_large, False)):
            on_cpu = self.on_negative if negative else self.on_too_large
            gpu = self.on_gpu(negative=negative)
            guarded = (self.guarded_below if negative else self.guarded_above) and (
                on_cpu is Outcome.RAISES
            )
            notes = ["an Assert guards it"] if guarded else []
            notes.append("on GPU too" if gpu is on_cpu else f"on GPU it {describe(gpu)}")
            parts.append(f"{name} -> {describe(on_cpu)} ({'; '.join(notes)})")
        return "; ".join(parts)

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
