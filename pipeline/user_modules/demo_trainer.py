"""Keras 3 Trainer module of the embedding-guard demo pipeline.

Each categorical feature gets an Embedding sized the way embedding-guard checks it:
vocabulary size plus OOV buckets (or int_domain.max + 1) from the transform graph,
and the shared constant for the identity feature `month_xf`. The custom_config key
TABLES_WITHOUT_OOV_ROWS_KEY names features whose Embedding gets the vocabulary size
alone instead: the forgotten-OOV-buckets bug of the `small_table` config. The export is a plain
`tf.Module` saved with `tf.saved_model.save`, because Keras 3 cannot write the
TF1-style SavedModel that `model.save(save_format='tf')` used to produce.
"""

import keras
import tensorflow as tf
import tensorflow_transform as tft
from absl import logging
from demo_constants import LABEL_KEY, MONTH_EMBEDDING_DIM, TABLES_WITHOUT_OOV_ROWS_KEY

import embedding_guard

CATEGORICAL_FEATURES = ("product_xf", "city_xf", "age_xf", "month_xf")
EMBEDDING_OUTPUT_DIM = 8
BATCH_SIZE = 64


def _embedding_input_dims(tf_transform_output, tables_without_oov_rows):
    dims = {
        feature: embedding_guard.embedding_input_dim(tf_transform_output, feature)
        for feature in CATEGORICAL_FEATURES
        if feature != "month_xf"
    }
    # The transformed schema has no int_domain for month_xf (it is `month - 1`, not an
    # analyzer output), so its size is the constant the validator is given too.
    dims["month_xf"] = MONTH_EMBEDDING_DIM
    for feature, vocabulary in tables_without_oov_rows.items():
        dims[feature] = tf_transform_output.vocabulary_size_by_name(vocabulary)
    return dims


def _dataset(file_patterns, tf_transform_output, *, shuffle):
    files = sorted(path for pattern in file_patterns for path in tf.io.gfile.glob(pattern))
    if not files:
        raise FileNotFoundError(
            f"No transformed examples match {file_patterns!r}; check the Trainer's "
            "examples input (Transform's transformed_examples)."
        )
    feature_spec = tf_transform_output.transformed_feature_spec()
    dataset = tf.data.TFRecordDataset(files, compression_type="GZIP")
    if shuffle:
        dataset = dataset.shuffle(buffer_size=2048, seed=0)
    dataset = dataset.repeat().batch(BATCH_SIZE)

    def parse(serialized):
        features = tf.io.parse_example(serialized, feature_spec)
        label = features.pop(LABEL_KEY)
        return features, label

    return dataset.map(parse, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def _build_model(embedding_input_dims):
    inputs = {
        feature: keras.Input(shape=(), dtype="int64", name=feature)
        for feature in CATEGORICAL_FEATURES
    }
    embedded = [
        keras.layers.Embedding(
            input_dim=embedding_input_dims[feature],
            output_dim=EMBEDDING_OUTPUT_DIM,
            name=f"{feature}_embedding",
        )(inputs[feature])
        for feature in CATEGORICAL_FEATURES
    ]
    hidden = keras.layers.Concatenate()(embedded)
    hidden = keras.layers.Dense(16, activation="relu")(hidden)
    output = keras.layers.Dense(1, activation="sigmoid", name="click_probability")(hidden)
    model = keras.Model(inputs=inputs, outputs=output)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=0.01),
        loss="binary_crossentropy",
        metrics=["binary_accuracy"],
        # XLA, which GPUs and TPUs train with, does not check gather indices (it
        # clamps them), so a too-small table trains "fine" here as it does there; the
        # CPU kernels would raise on the first unseen city instead.
        jit_compile=True,
    )
    return model


class _ServingModule(tf.Module):
    """Serves raw serialized tf.Examples: Transform's graph, then the Keras model."""

    def __init__(self, model, tf_transform_output):
        super().__init__()
        self.model = model
        self.transform_features_layer = tf_transform_output.transform_features_layer()
        raw_feature_spec = tf_transform_output.raw_feature_spec()
        raw_feature_spec.pop(LABEL_KEY)
        self._raw_feature_spec = raw_feature_spec

    @tf.function(input_signature=[tf.TensorSpec(shape=[None], dtype=tf.string, name="examples")])
    def serve_tf_examples(self, serialized_examples):
        raw_features = tf.io.parse_example(serialized_examples, self._raw_feature_spec)
        transformed = self.transform_features_layer(raw_features)
        inputs = {feature: transformed[feature] for feature in CATEGORICAL_FEATURES}
        return {"click_probability": self.model(inputs)}


def run_fn(fn_args):
    """Trains the demo click model and exports a SavedModel that serves tf.Examples.

    Args:
      fn_args: The Trainer's FnArgs; uses train_files, eval_files, train_steps,
        eval_steps, transform_graph_path, serving_model_dir and custom_config
        (TABLES_WITHOUT_OOV_ROWS_KEY: feature -> vocabulary name, optional).
    """
    tf_transform_output = tft.TFTransformOutput(fn_args.transform_graph_path)
    tables_without_oov_rows = (fn_args.custom_config or {}).get(TABLES_WITHOUT_OOV_ROWS_KEY, {})
    embedding_input_dims = _embedding_input_dims(tf_transform_output, tables_without_oov_rows)
    logging.info("Embedding input dims: %s", embedding_input_dims)

    keras.utils.set_random_seed(0)
    model = _build_model(embedding_input_dims)
    model.fit(
        _dataset(fn_args.train_files, tf_transform_output, shuffle=True),
        steps_per_epoch=fn_args.train_steps,
        epochs=1,
        validation_data=_dataset(fn_args.eval_files, tf_transform_output, shuffle=False),
        validation_steps=fn_args.eval_steps,
        verbose=2,
    )

    serving_module = _ServingModule(model, tf_transform_output)
    tf.saved_model.save(
        serving_module,
        fn_args.serving_model_dir,
        signatures={"serving_default": serving_module.serve_tf_examples},
    )
    logging.info("Exported the serving model to %s", fn_args.serving_model_dir)
