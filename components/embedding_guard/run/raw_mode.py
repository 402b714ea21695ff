"""Validates raw examples by applying the transform graph to them first.

New data often meets an old vocabulary: a new span, a backfill, a serving log.
Applying the trained transform graph to it gives the exact indices the Trainer or
the serving model would see, with the raw value behind each one. Only raw
examples import this module, and TensorFlow with it (`examples_kind` decides).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from embedding_guard.errors import InputError, first_line
from embedding_guard.read import reader, storage
from embedding_guard.reports import text


def _column(tensor: Any) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(tensor, tf.RaggedTensor):
        return tensor.flat_values.numpy(), tensor.row_lengths().numpy()
    if isinstance(tensor, tf.SparseTensor):
        rows = tensor.indices[:, 0].numpy()
        lengths = np.bincount(rows, minlength=int(tensor.dense_shape[0]))
        return tensor.values.numpy(), lengths.astype(np.int64)
    array = tensor.numpy()
    num_rows = array.shape[0]
    flat = array.reshape(num_rows, -1) if array.ndim != 1 else array.reshape(num_rows, 1)
    return flat.reshape(-1), np.full(num_rows, flat.shape[1], dtype=np.int64)


def _column_tensors(tensor: Any) -> tuple[Any, Any]:
    """_column inside a graph: (flat values, values per row) as two dense tensors."""
    if isinstance(tensor, tf.RaggedTensor):
        return tensor.flat_values, tensor.row_lengths()
    if isinstance(tensor, tf.SparseTensor):
        rows = tensor.indices[:, 0]
        lengths = tf.math.unsorted_segment_sum(tf.ones_like(rows), rows, tensor.dense_shape[0])
        return tensor.values, lengths
    shape = tf.shape(tensor, out_type=tf.int64)
    # Row-major, as numpy flattens; a 1-D tensor has one value per row.
    width = tf.reduce_prod(shape[1:])
    return tf.reshape(tensor, [-1]), tf.fill(shape[:1], width)


def _any_batch_size(value: Any) -> Any:
    """The type spec of a parsed raw feature, with what varies between batches left open."""
    if isinstance(value, tf.SparseTensor):
        # A VarLenFeature's second dimension is the longest row of the batch.
        return tf.SparseTensorSpec([None] * value.shape.rank, value.dtype)
    shape = [None, *value.shape[1:]]
    if isinstance(value, tf.RaggedTensor):
        return tf.RaggedTensorSpec(
            shape, value.dtype, value.ragged_rank, row_splits_dtype=value.row_splits.dtype
        )
    return tf.TensorSpec(shape, value.dtype)


class RawExamplesTransformer:
    """Applies a transform graph to batches of serialized raw tf.Examples.

    The graph is applied with `TFTransformOutput.transform_features_layer()`,
    which works eagerly on TF1 graphs (Transform(force_tf_compat_v1=True), TFX's
    shipped taxi graph) as well as TF2 ones, unlike `transform_raw_features`.
    Built lazily on each Beam worker (TFTransformOutput does not pickle).

    Args:
      transform_graph_uri: The transform_graph folder.
      features: Transformed features to return.
      raw_sources: Transformed feature -> raw feature whose values are kept next
        to the indices, for naming the raw values that fell into OOV.
      present_raw_features: Raw features found in the examples; used only when
        `needed_raw_features` is None.
      needed_raw_features: The raw features the checked outputs are computed
        from, read from the graph. Only these are parsed, so a split that lacks
        others (a serving log has no label) is read like any other split.
      missing_keys: Transformed feature -> the key the graph looks up for a raw
        row without values (a sparse raw feature made dense); with it the raw
        values line up with the indices.
    """

    def __init__(
        self,
        transform_graph_uri: str,
        features: Sequence[str],
        raw_sources: Mapping[str, str],
        present_raw_features: Iterable[str] | None = None,
        needed_raw_features: Iterable[str] | None = None,
        missing_keys: Mapping[str, object] | None = None,
    ) -> None:
        self._uri = transform_graph_uri
        self._features = list(features)
        self._raw_sources = dict(raw_sources)
        self._present = None if present_raw_features is None else set(present_raw_features)
        self._needed = None if needed_raw_features is None else set(needed_raw_features)
        self._missing_keys = dict(missing_keys or {})
        self._layer: Any = None
        self._spec: Any = None
        self._apply: Any = None
        self._fused: Any = None
        # Set when the one graph failed on a batch that the steps apart read.
        self._apart_only = False

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_layer"] = None
        state["_spec"] = None
        state["_apply"] = None
        state["_fused"] = None
        return state

    def _graph_error(self, why: str) -> InputError:
        return InputError(f"The transform graph {self._uri!r} cannot be applied: {why}")

    def _load(self) -> None:
        # Only raw mode needs TFT; importing it here keeps it off `check`'s start-up.
        import tensorflow_transform as tft

        transform_fn = os.path.join(self._uri, tft.TFTransformOutput.TRANSFORM_FN_DIR)
        for name in ("saved_model.pb", "variables"):
            if not storage.exists(os.path.join(transform_fn, name)):
                raise self._graph_error(
                    f"{os.path.join(transform_fn, name)!r} is missing. Restore the "
                    "transform_fn folder, or re-run Transform."
                )
        try:
            output = tft.TFTransformOutput(self._uri)
            spec = dict(output.raw_feature_spec())
            layer = output.transform_features_layer()
        except Exception as error:  # noqa: BLE001 - TF and TFT raise many kinds here.
            raise self._graph_error(
                f"{type(error).__name__}: {first_line(error)}. Re-run Transform, or pass "
                "the transform_graph these examples were made for."
            ) from error
        wanted = self._needed if self._needed is not None else self._present
        if wanted is not None:
            unknown = sorted(wanted - set(spec))
            if unknown:
                raise self._graph_error(
                    f"its raw schema lacks {unknown!r}, which the graph reads; valid raw "
                    f"features: {sorted(spec)!r}."
                )
            spec = {name: value for name, value in spec.items() if name in wanted}
        self._spec = spec
        self._layer = layer

    def check_applicable(self) -> None:
        """Loads the graph once, so a graph that cannot be applied fails before Beam starts.

        Raises:
          InputError: saved_model.pb or variables/ is missing, or TFT cannot load it.
        """
        self._load()

    def _applied(self, raw: Mapping[str, Any]) -> Mapping[str, Any]:
        """The transform layer's outputs for parsed raw features, from one trace per run.

        Called eagerly, the layer prunes a TF1 graph anew on every call: 0.3 s
        for each batch of TFX's taxi graph, against 7 ms traced. Any batch size
        fits the one trace, and AutoGraph is off: TFT's layer has no Python
        control flow to convert, and converting it took 4 s.
        """
        if self._apply is None:
            signature = {name: _any_batch_size(value) for name, value in raw.items()}
            self._apply = tf.function(self._layer, input_signature=[signature], autograph=False)
        return self._apply(raw)

    def _parsed_and_applied(self, serialized: Any) -> Mapping[str, Any]:
        """Parses, applies the graph and flattens the columns, all in one graph.

        Traced once per run (any batch size). In one graph, the Python between the
        steps (parse_example building ragged and sparse tensors, binding them to
        the layer's signature, slicing the outputs) is gone. In a CPU profile of
        TFX's taxi graph it was about a third of a batch's time, all of it
        holding the GIL, and the work on 2 CPUs went from 1.02x to 1.44x as fast
        as on one (bench/RESULTS.md).
        """

        def columns(batch: Any) -> Mapping[str, Any]:
            raw = tf.io.parse_example(batch, self._spec)
            transformed = self._layer(raw)
            return {
                "columns": {
                    name: _column_tensors(transformed[name])
                    for name in self._features
                    if name in transformed
                },
                "raw": {
                    name: _column_tensors(raw[source])
                    for name, source in self._raw_sources.items()
                    if source in raw
                },
            }

        if self._fused is None:
            self._fused = tf.function(
                columns, input_signature=[tf.TensorSpec([None], tf.string)], autograph=False
            )
        return self._fused(serialized)

    def __call__(self, serialized: Any) -> reader.Batch:
        """Transforms one batch; returns its checked columns and raw columns."""
        if self._layer is None:
            self._load()
        num_examples = int(tf.shape(serialized)[0])
        fused = None
        if not self._apart_only:
            try:
                fused = self._parsed_and_applied(serialized)
            except Exception:  # noqa: BLE001 - _apart says what failed.
                fused = None
        if fused is not None and len(fused["columns"]) == len(self._features):
            columns = {
                name: (values.numpy(), lengths.numpy())
                for name, (values, lengths) in fused["columns"].items()
            }
            raw_columns = {
                name: _fill_missing(
                    values.numpy(), lengths.numpy(), columns[name][1], self._missing_keys.get(name)
                )
                for name, (values, lengths) in fused["raw"].items()
            }
            return reader.Batch(num_examples, columns, raw_columns)
        batch = self._apart(serialized, num_examples)
        # The steps apart read what the one graph could not: keep to them, rather
        # than trace the one graph again for every batch.
        self._apart_only = True
        return batch

    def _apart(self, serialized: Any, num_examples: int) -> reader.Batch:
        """Parses and applies the graph step by step: the path that names what failed."""
        try:
            raw = tf.io.parse_example(serialized, self._spec)
        except tf.errors.InvalidArgumentError as error:
            raise InputError(
                "Raw examples do not match the transform graph's raw schema "
                f"({text.printable(storage.error_text(error))}). Pass examples made for "
                "this transform graph, or give the missing features defaults in the raw "
                "schema."
            ) from error
        except UnicodeDecodeError as error:
            # TensorFlow quotes the record in its message and fails to decode it.
            raise InputError(
                "Raw examples do not match the transform graph's raw schema: a record is "
                "not a tf.Example whose features have the raw schema's types (it is not "
                "UTF-8 clean where the schema expects text, or not a tf.Example). Pass "
                "examples made for this transform graph."
            ) from error
        try:
            transformed = self._applied(raw)
        except Exception as error:  # noqa: BLE001 - any failure inside the graph.
            raise self._graph_error(
                f"{type(error).__name__}: {text.printable(first_line(error))}. Check that "
                "the examples hold every raw feature the preprocessing_fn reads."
            ) from error
        missing = sorted(set(self._features) - set(transformed))
        if missing:
            raise InputError(
                f"The transform graph {self._uri!r} does not output {missing!r} from the raw "
                f"features {sorted(self._spec)!r}; it outputs {sorted(transformed)!r}."
            )
        columns = {name: _column(transformed[name]) for name in self._features}
        raw_columns = {}
        for name, source in self._raw_sources.items():
            if source in raw:
                raw_columns[name] = _raw_column(
                    raw[source], columns[name][1], self._missing_keys.get(name)
                )
        return reader.Batch(num_examples, columns, raw_columns)


def _raw_column(
    tensor: Any, row_lengths: np.ndarray, missing_key: object
) -> tuple[np.ndarray, np.ndarray]:
    return _fill_missing(*_column(tensor), row_lengths, missing_key)


def _fill_missing(
    values: np.ndarray, lengths: np.ndarray, row_lengths: np.ndarray, missing_key: object
) -> tuple[np.ndarray, np.ndarray]:
    # A sparse raw feature the graph makes dense (one key per row, missing rows
    # looked up as missing_key) lines up with the indices once filled the same way.
    if (
        missing_key is not None
        and not np.array_equal(lengths, row_lengths)
        and lengths.max(initial=0) <= 1
        and np.all(row_lengths == 1)
    ):
        filled = np.full(len(lengths), missing_key, dtype=values.dtype if values.size else object)
        filled[lengths == 1] = values
        return filled, np.ones(len(lengths), dtype=np.int64)
    return values, lengths
