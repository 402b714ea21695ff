"""Builds the SavedModels the model-analysis tests read, once per test session.

Every model gets one known, wrong table for one feature of the checked-in
`testdata/transform_graph` (product_xf needs 42 rows: 40 tokens + 2 OOV buckets;
city_xf needs 25 rows plus the -1 of unseen cities; age_xf 5; month_xf 12):

    keras3_embedding   Keras 3 Embedding(input_dim=40) for product_xf (OOV buckets forgotten),
                       Embedding(25) for city_xf; `model.export()`
    category_encoding  Keras 3 CategoryEncoding(num_tokens=11, one_hot) for month_xf and
                       CategoryEncoding(num_tokens=24, multi_hot) for hour; outputs the encodings
    embedding_lookup   tf.Module, tf.nn.embedding_lookup on a [40, 4] variable for product_xf
    one_hot            tf.Module, tf.one_hot(city_xf, depth=24) (25 needed)
    offset             tf.Module, table [12, 4] looked up at month_xf + 1 (so month 11 fails),
                       and a [7, 2] table looked up at floormod(age_xf * 3, 7) (not traced)
    dynamic_table      tf.Module, a [4, 2] variable declared [None, 2] for age_xf (5 needed)
    feature_columns    TF1 graph, tf.feature_column input_layer: embedding_column of
                       identity(age_xf, 4), indicator_column of identity(city_xf, 24) and
                       embedding_column of identity(hour_xf, 24, default_value=0)
    shared_feature     tf.Module, city_xf feeds tf.one_hot(depth=30) and a [20, 2] table
    demo               the demo Trainer's own `_ServingModule` (Transform layer + Keras model),
                       with Embedding(40) for product_xf; serves serialized tf.Examples
    parsed_examples    tf.Module parsing transformed tf.Examples, tf.one_hot(age_xf, depth=4)

Apart from those, `build_keras_lookup` and `build_raw_gather` export one-lookup models
(one int64 input, one table) in tf_keras or Keras 3, for the facts of what each
lookup really does with a bad index (test_model_facts).
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import os
import pathlib

HERE = pathlib.Path(__file__).resolve().parent
TRANSFORM_GRAPH = HERE / "testdata" / "transform_graph"

# A TFX Trainer output shipped in the tfx wheel: the TF1 Estimator of the Chicago taxi
# example (tf.feature_column linear model behind a TFT layer).
TFX_TAXI_ESTIMATOR = os.path.join(
    importlib.util.find_spec("tfx").submodule_search_locations[0],
    "components/testdata/trainer/current/Format-Serving/export/chicago-taxi/1646034756",
)

DEMO_EMBEDDING_DIMS = {"product_xf": 40, "city_xf": 25, "age_xf": 5, "month_xf": 12}


@dataclasses.dataclass(frozen=True)
class BuiltModels:
    """Paths of the SavedModel directories, one per field."""

    keras3_embedding: str
    category_encoding: str
    embedding_lookup: str
    one_hot: str
    offset: str
    dynamic_table: str
    feature_columns: str
    shared_feature: str
    demo: str
    parsed_examples: str


def _keras3_embedding(path: str) -> None:
    import keras

    keras.utils.set_random_seed(0)
    inputs = {
        name: keras.Input(shape=(), dtype="int64", name=name) for name in ("product_xf", "city_xf")
    }
    product = keras.layers.Embedding(40, 4, name="product_xf_embedding")(inputs["product_xf"])
    city = keras.layers.Embedding(25, 4, name="city_xf_embedding")(inputs["city_xf"])
    hidden = keras.layers.Concatenate()([product, city])
    output = keras.layers.Dense(1, name="click_probability")(hidden)
    keras.Model(inputs=inputs, outputs=output).export(path, verbose=False)


def _category_encoding(path: str) -> None:
    import keras

    month = keras.Input(shape=(), dtype="int64", name="month_xf")
    hour = keras.Input(shape=(1,), dtype="int64", name="hour")
    month_row = keras.layers.CategoryEncoding(
        num_tokens=11, output_mode="one_hot", name="month_encoding"
    )(month)
    hour_row = keras.layers.CategoryEncoding(
        num_tokens=24, output_mode="multi_hot", name="hour_encoding"
    )(hour)
    keras.Model(inputs=[month, hour], outputs=[month_row, hour_row]).export(path, verbose=False)


def _save_module(module, path: str, serve=None) -> None:
    """Saves module with serve (default: its serve method) as serving_default."""
    import tensorflow as tf

    tf.saved_model.save(module, path, signatures={"serving_default": serve or module.serve})


def _tables_module():
    """A tf.Module class whose constructor makes tables: name=(shape, seed), seeded random."""
    import tensorflow as tf

    class TablesModule(tf.Module):
        def __init__(self, **tables):
            super().__init__()
            for name, (shape, seed) in tables.items():
                table = tf.random.stateless_normal(shape, seed=[0, seed])
                setattr(self, name, tf.Variable(table, name=name))

    return TablesModule


def _embedding_lookup(path: str) -> None:
    import tensorflow as tf

    class EmbeddingLookupModule(_tables_module()):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.int64, name="product_xf")])
        def serve(self, product_xf):
            return {"embedding": tf.nn.embedding_lookup(self.product_table, product_xf)}

    _save_module(EmbeddingLookupModule(product_table=([40, 4], 1)), path)


def _one_hot(path: str) -> None:
    import tensorflow as tf

    class OneHotModule(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.int64, name="city_xf")])
        def serve(self, city_xf):
            return {"city_row": tf.one_hot(city_xf, depth=24)}

    _save_module(OneHotModule(), path)


def _offset(path: str) -> None:
    import tensorflow as tf

    class OffsetModule(_tables_module()):
        @tf.function(
            input_signature=[
                tf.TensorSpec([None], tf.int64, name="month_xf"),
                tf.TensorSpec([None], tf.int64, name="age_xf"),
            ]
        )
        def serve(self, month_xf, age_xf):
            # Month 0 is reserved for "unknown", so known months move up one row.
            month = tf.gather(self.month_table, month_xf + 1)
            age = tf.gather(self.age_table, tf.math.floormod(age_xf * 3, 7))
            return {"month": month, "age": age}

    _save_module(OffsetModule(month_table=([12, 4], 2), age_table=([7, 2], 3)), path)


def _dynamic_table(path: str) -> None:
    import tensorflow as tf

    class DynamicTableModule(tf.Module):
        def __init__(self):
            super().__init__()
            # A first dimension left open, as for a table resized after creation:
            # the graph then holds no row count.
            self.age_table = tf.Variable(
                tf.zeros([4, 2]), shape=tf.TensorShape([None, 2]), name="age_table"
            )

        @tf.function(input_signature=[tf.TensorSpec([None], tf.int64, name="age_xf")])
        def serve(self, age_xf):
            return {"age": tf.gather(self.age_table, age_xf)}

    _save_module(DynamicTableModule(), path)


def _feature_columns(path: str) -> None:
    import tensorflow as tf

    tf1 = tf.compat.v1
    with tf.Graph().as_default() as graph, tf1.Session(graph=graph) as session:
        age = tf1.placeholder(tf.int64, [None], name="age_xf")
        city = tf1.placeholder(tf.int64, [None], name="city_xf")
        hour = tf1.placeholder(tf.int64, [None], name="hour_xf")
        columns = [
            tf1.feature_column.embedding_column(
                tf1.feature_column.categorical_column_with_identity("age_xf", num_buckets=4),
                dimension=2,
            ),
            tf1.feature_column.indicator_column(
                tf1.feature_column.categorical_column_with_identity("city_xf", num_buckets=24)
            ),
            tf1.feature_column.embedding_column(
                tf1.feature_column.categorical_column_with_identity(
                    "hour_xf", num_buckets=24, default_value=0
                ),
                dimension=2,
            ),
        ]
        features = {
            name: tf.reshape(tensor, [-1, 1])
            for name, tensor in (("age_xf", age), ("city_xf", city), ("hour_xf", hour))
        }
        output = tf1.feature_column.input_layer(features, columns)
        session.run(tf1.global_variables_initializer())
        builder = tf1.saved_model.Builder(path)
        builder.add_meta_graph_and_variables(
            session,
            [tf1.saved_model.SERVING],
            signature_def_map={
                "serving_default": tf1.saved_model.predict_signature_def(
                    {"age_xf": age, "city_xf": city, "hour_xf": hour}, {"features": output}
                )
            },
        )
        builder.save()


def _shared_feature(path: str) -> None:
    import tensorflow as tf

    class SharedFeatureModule(_tables_module()):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.int64, name="city_xf")])
        def serve(self, city_xf):
            return {
                "city_row": tf.one_hot(city_xf, depth=30),
                "city_embedding": tf.nn.embedding_lookup(self.city_table, city_xf),
            }

    _save_module(SharedFeatureModule(city_table=([20, 2], 4)), path)


def _demo(path: str) -> None:
    import demo_trainer
    import keras
    import tensorflow_transform as tft

    keras.utils.set_random_seed(0)
    model = demo_trainer._build_model(DEMO_EMBEDDING_DIMS)
    serving_module = demo_trainer._ServingModule(
        model, tft.TFTransformOutput(os.fspath(TRANSFORM_GRAPH))
    )
    _save_module(serving_module, path, serving_module.serve_tf_examples)


def _parsed_examples(path: str) -> None:
    import tensorflow as tf

    class ParsedExamplesModule(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
        def serve(self, examples):
            features = tf.io.parse_example(
                examples, {"age_xf": tf.io.FixedLenFeature([], tf.int64)}
            )
            return {"age_row": tf.one_hot(features["age_xf"], depth=4)}

    _save_module(ParsedExamplesModule(), path)


_BUILDERS = {
    "keras3_embedding": _keras3_embedding,
    "category_encoding": _category_encoding,
    "embedding_lookup": _embedding_lookup,
    "one_hot": _one_hot,
    "offset": _offset,
    "dynamic_table": _dynamic_table,
    "feature_columns": _feature_columns,
    "shared_feature": _shared_feature,
    "demo": _demo,
    "parsed_examples": _parsed_examples,
}


@functools.cache
def built_models(base_dir: str) -> BuiltModels:
    """Exports every test model under base_dir once per process."""
    paths = {}
    for name, build in _BUILDERS.items():
        path = os.path.join(base_dir, name)
        build(path)
        paths[name] = path
    return BuiltModels(**paths)


def serve(saved_model_dir: str, **feeds):
    """Calls the restored serving_default signature with numpy feeds; returns numpy outputs."""
    import tensorflow as tf

    function = _restored(saved_model_dir).signatures["serving_default"]
    outputs = function(**{name: tf.constant(value) for name, value in feeds.items()})
    return {name: tensor.numpy() for name, tensor in outputs.items()}


@functools.cache
def _restored(saved_model_dir: str):
    import tensorflow as tf

    return tf.saved_model.load(saved_model_dir)


# -- one-lookup models, tf_keras and Keras 3 -------------------------------------------

KERAS_FLAVORS = ("tf_keras", "keras3")
KERAS_LAYERS = ("embedding", "one_hot", "multi_hot")


def _keras(flavor: str):
    """The Keras package of a flavor: tf_keras (2.16, legacy) or keras (3.x)."""
    if flavor == "tf_keras":
        import tf_keras

        return tf_keras
    if flavor == "keras3":
        import keras

        assert keras.__version__.startswith("3"), keras.__version__
        return keras
    raise ValueError(f"flavor must be one of {KERAS_FLAVORS!r}, got {flavor!r}")


def build_keras_lookup(
    base_dir: str, flavor: str, layer: str, *, feature: str = "x", num_tokens: int = 12
) -> str:
    """Exports a one-layer Keras model on int64 input `feature` [None, 1].

    Args:
      base_dir: Where to write; the model goes to `<base_dir>/<flavor>_<layer>_<feature>`.
      flavor: "tf_keras" (saved with model.save(save_format="tf") and an explicit
        serving_default, as TFX's taxi Trainer does) or "keras3" (model.export()).
      layer: "embedding" (Embedding(num_tokens, 4)), "one_hot" or "multi_hot"
        (CategoryEncoding(num_tokens, output_mode=layer)).
      feature: The input's name (the signature input).
      num_tokens: The table's rows.

    Returns:
      The SavedModel directory.
    """
    import tensorflow as tf

    k = _keras(flavor)
    inputs = k.Input(shape=(1,), dtype="int64", name=feature)
    if layer == "embedding":
        out = k.layers.Embedding(num_tokens, 4, name="emb")(inputs)
    elif layer in ("one_hot", "multi_hot"):
        out = k.layers.CategoryEncoding(num_tokens=num_tokens, output_mode=layer, name="cat")(
            inputs
        )
    else:
        raise ValueError(f"layer must be one of {KERAS_LAYERS!r}, got {layer!r}")
    model = k.Model(inputs, out)
    path = os.path.join(base_dir, f"{flavor}_{layer}_{feature}")
    if flavor == "tf_keras":
        spec = tf.TensorSpec([None, 1], tf.int64, name=feature)
        serve_fn = tf.function(lambda x: {"out": model(x)}, input_signature=[spec])
        model.save(path, save_format="tf", signatures={"serving_default": serve_fn})
    else:
        model.export(path, verbose=False)
    return path


def build_raw_gather(base_dir: str, *, num_tokens: int = 12) -> str:
    """Exports a tf.Module whose serving_default is tf.gather(variable [n, 4], x), x int64 [None, 1]."""
    import tensorflow as tf

    class GatherModule(_tables_module()):
        @tf.function(input_signature=[tf.TensorSpec([None, 1], tf.int64, name="x")])
        def serve(self, x):
            return {"out": tf.gather(self.table, x)}

    path = os.path.join(base_dir, "raw_gather")
    _save_module(GatherModule(table=([num_tokens, 4], 5)), path)
    return path
