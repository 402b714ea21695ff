"""Two taxi spans whose vocabulary order differs, and models trained on span 1 (issue #27).

Span 1 is TFX's taxi `data/simple/data.csv` through `taxi_utils_native_keras`'s
preprocessing_fn (tft_graphs.built_taxi_graph). Span 2 is the same file with 3 of
every 4 `Cash` rows and 15 of every 16 `Taxi Affiliation Services` rows left out, so
payment_type's vocabulary starts with 'Credit Card' and the company that was row 0
moves down. Span 2 runs through TFT once (AnalyzeAndTransformDataset), which also
gives its transformed examples.

Models on span 1 carry the span-1 transform layer, as a TFX Trainer saves them:
tf_keras (`model.tft_layer`, `model.save(save_format="tf")`, TFX's
taxi_utils_native_keras pattern) and Keras 3 (a tf.Module holding the model and the
layer, saved with tf.saved_model.save).
"""

from __future__ import annotations

import os

import numpy as np
import tensorflow as tf
import tft_graphs
from model_builders import _keras

REMAP_FEATURES = ("payment_type_xf", "company_xf")
_BUILT: dict[str, dict[str, str]] = {}


def span2_rows(rows: list[dict]) -> list[dict]:
    """Span 2: 1 in 4 'Cash' rows and 1 in 16 'Taxi Affiliation Services' rows kept."""
    kept = []
    for i, row in enumerate(rows):
        if row["payment_type"] == [b"Cash"] and i % 4:
            continue
        if row["company"] == [b"Taxi Affiliation Services"] and i % 16:
            continue
        kept.append(row)
    return kept


def _example_of(row: dict) -> tf.train.Example:
    """A tf.Example of a row of values or lists (numpy, str, bytes, int or float)."""
    feature = {}
    for name, value in row.items():
        values = np.asarray(value).ravel()
        if values.size == 0:
            continue
        if values.dtype.kind == "U":
            values = np.char.encode(values, "utf-8")
        if values.dtype.kind in "iu":
            feature[name] = tf.train.Feature(int64_list=tf.train.Int64List(value=values.tolist()))
        elif values.dtype.kind == "f":
            feature[name] = tf.train.Feature(float_list=tf.train.FloatList(value=values.tolist()))
        else:
            feature[name] = tf.train.Feature(bytes_list=tf.train.BytesList(value=values.tolist()))
    return tf.train.Example(features=tf.train.Features(feature=feature))


def _write_split(folder: str, split: str, examples: list[tf.train.Example]) -> None:
    os.makedirs(os.path.join(folder, f"Split-{split}"))
    path = os.path.join(folder, f"Split-{split}", "data_tfrecord-00000-of-00001.gz")
    with tf.io.TFRecordWriter(path, options="GZIP") as writer:
        for example in examples:
            writer.write(example.SerializeToString())


def built_taxi_spans(root: str) -> dict[str, str]:
    """The two spans, once per process.

    Returns:
      "span1_graph", "span1_raw": built_taxi_graph's graph and raw examples (all
      rows; Split-train the first 10,000, Split-eval the rest);
      "span2_graph": span 2's transform_graph (with its raw schema);
      "span2_raw": span 2's raw examples, Split-train the first 5,000 rows and
      Split-eval the rest; "span2_transformed": the same rows transformed by the
      span-2 graph.
    """
    if "spans" not in _BUILT:
        import tensorflow_transform.beam as tft_beam
        from tensorflow_transform.tf_metadata import dataset_metadata, metadata_io, schema_utils
        from tfx.examples.chicago_taxi_pipeline import taxi_utils_native_keras

        span1 = tft_graphs.built_taxi_graph(root)
        spec, rows = tft_graphs.taxi_rows()
        rows2 = span2_rows(rows)
        graph2 = os.path.join(root, "taxi_span2_graph")
        metadata = dataset_metadata.DatasetMetadata(schema_utils.schema_from_feature_spec(spec))
        temp_dir = os.path.join(root, "taxi_span2_tmp")
        with tft_beam.Context(temp_dir=temp_dir):
            (transformed, _), transform_fn = (
                rows2,
                metadata,
            ) | tft_beam.AnalyzeAndTransformDataset(
                taxi_utils_native_keras.preprocessing_fn, output_record_batches=False
            )
            _ = transform_fn | tft_beam.WriteTransformFn(graph2)
        metadata_io.write_metadata(metadata, os.path.join(graph2, "metadata"))
        raw2 = os.path.join(root, "taxi_span2_raw")
        transformed2 = os.path.join(root, "taxi_span2_transformed")
        for split, part in (("train", slice(0, 5000)), ("eval", slice(5000, None))):
            _write_split(raw2, split, [tft_graphs._example(r, spec) for r in rows2[part]])
            _write_split(transformed2, split, [_example_of(r) for r in transformed[part]])
        _BUILT["spans"] = {
            "span1_graph": span1["graph"],
            "span1_raw": span1["examples"],
            "span2_graph": graph2,
            "span2_raw": raw2,
            "span2_transformed": transformed2,
        }
    return _BUILT["spans"]


def train_span1_model(graph: str, path: str, flavor: str) -> tuple[str, dict]:
    """A model on span 1 looking up REMAP_FEATURES in Embeddings, saved with its transform layer.

    A few steps of fit on random indices and targets make each row differ from its
    initial value; only the rows per token matter to the tests.

    Returns:
      (the SavedModel folder, feature -> its trained embedding matrix).
    """
    import tensorflow_transform as tft

    import embedding_guard

    k = _keras(flavor)
    k.utils.set_random_seed(0)
    dims = embedding_guard.embedding_input_dims(graph)
    inputs = {f: k.Input(shape=(1,), dtype="int64", name=f) for f in REMAP_FEATURES}
    embedded = [
        k.layers.Flatten()(k.layers.Embedding(dims[f], 4, name=f"{f}_embedding")(inputs[f]))
        for f in REMAP_FEATURES
    ]
    output = k.layers.Dense(1)(k.layers.Concatenate()(embedded))
    model = k.Model(inputs, output)
    model.compile(optimizer="adam", loss="mse")
    rng = np.random.default_rng(0)
    x = {f: rng.integers(0, dims[f], size=(64, 1)) for f in REMAP_FEATURES}
    model.fit(x, rng.normal(size=(64, 1)), epochs=2, verbose=0)
    weights = {f: model.get_layer(f"{f}_embedding").get_weights()[0] for f in REMAP_FEATURES}
    output_ = tft.TFTransformOutput(graph)
    raw_spec = output_.raw_feature_spec()
    raw_spec.pop("tips", None)

    if flavor == "tf_keras":
        model.tft_layer = output_.transform_features_layer()

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
        def serve(serialized):
            transformed = model.tft_layer(tf.io.parse_example(serialized, raw_spec))
            return {"out": model({f: transformed[f] for f in REMAP_FEATURES})}

        model.save(path, save_format="tf", signatures={"serving_default": serve})
        return path, weights

    class Serving(tf.Module):
        def __init__(self):
            super().__init__()
            self.model = model
            self.transform_features_layer = output_.transform_features_layer()

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
        def serve(self, serialized):
            transformed = self.transform_features_layer(tf.io.parse_example(serialized, raw_spec))
            return {"out": self.model({f: transformed[f] for f in REMAP_FEATURES})}

    module = Serving()
    tf.saved_model.save(module, path, signatures={"serving_default": module.serve})
    return path, weights


# --- Span 2 of tft_graphs.preprocessing_fn, TF1 -------------------------------------------
#
# Span 1 is tft_graphs.ROWS (built_graphs). Span 2 changes three rows' payment from
# cash to card and the coin row's to chip: payment's vocabulary goes from
# [cash, card, coin] to [card, cash, chip] (payment_xf: no OOV bucket, default -1;
# payment_gz_xf: tfrecord_gzip, 2 buckets). Every other vocabulary keeps its rows.


def span2_of_rows(rows: list[dict]) -> list[dict]:
    """tft_graphs.ROWS with rows 0, 2 and 3 paying by card, and the coin row by chip."""
    changed = []
    for i, row in enumerate(rows):
        row = dict(row)
        if i in (0, 2, 3):
            row["payment"] = "card"
        if row["payment"] == "coin":
            row["payment"] = "chip"
        changed.append(row)
    return changed


def built_small_spans(root: str) -> dict[str, str]:
    """span1_tf1/span1_tf2 (tft_graphs.built_graphs), span2_tf1, and "raw" examples:
    span 2's rows as Split-train, span 1's (which pay by coin) as Split-eval."""
    if "small" not in _BUILT:
        from tensorflow_transform.tf_metadata import dataset_metadata, metadata_io, schema_utils

        span1 = tft_graphs.built_graphs(root)
        rows2 = span2_of_rows(tft_graphs.ROWS)
        metadata = dataset_metadata.DatasetMetadata(
            schema_utils.schema_from_feature_spec(tft_graphs.RAW_FEATURE_SPEC)
        )
        built = {"span1_tf1": span1["tf1"], "span1_tf2": span1["tf2"]}
        # TF1 only: the taxi spans are TF2 graphs, and one TFT run is 10-60 s.
        graph = os.path.join(root, "span2_tf1")
        tft_graphs.build_transform_output(
            tft_graphs.preprocessing_fn, tft_graphs.RAW_FEATURE_SPEC, rows2, graph, tf1=True
        )
        metadata_io.write_metadata(metadata, os.path.join(graph, "metadata"))
        built["span2_tf1"] = graph
        raw = os.path.join(root, "span2_raw")
        _write_split(raw, "train", [_example_of(row) for row in rows2])
        _write_split(raw, "eval", [_example_of(row) for row in tft_graphs.ROWS])
        built["raw"] = raw
        _BUILT["small"] = built
    return _BUILT["small"]
