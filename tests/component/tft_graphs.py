"""Transform graphs built once per test session from preprocessing_fns, in TF1 and TF2.

One `preprocessing_fn` covers every derivation case the graph analysis must read
(default-named, shared, named, top_k/frequency_threshold, num_oov_buckets=0 with
two defaults, tfrecord_gzip, integer and sparse inputs, hashing, bucketizing,
arithmetic after a lookup, pass-through). It runs through TFT's Beam API once with
force_tf_compat_v1=True and once without, on 12 in-memory rows.
"""

import os
import tempfile

import tensorflow as tf

RAW_FEATURE_SPEC = {
    "company": tf.io.FixedLenFeature([], tf.string),
    "payment": tf.io.FixedLenFeature([], tf.string),
    "home_city": tf.io.FixedLenFeature([], tf.string),
    "work_city": tf.io.FixedLenFeature([], tf.string),
    "product": tf.io.FixedLenFeature([], tf.string),
    "user_id": tf.io.FixedLenFeature([], tf.int64),
    "hour": tf.io.FixedLenFeature([], tf.int64),
    "score": tf.io.FixedLenFeature([], tf.float32),
    "tags": tf.io.VarLenFeature(tf.string),
    "color": tf.io.SparseFeature("color_index", "color_value", tf.string, 4),
}

# 12 rows. Counts per value fix the vocabulary sizes asserted in the tests.
ROWS = [
    {
        "company": c,
        "payment": p,
        "home_city": h,
        "work_city": w,
        "product": pr,
        "user_id": u,
        "hour": hr,
        "score": s,
        "tags": t,
        "color_index": ci,
        "color_value": cv,
    }
    for c, p, h, w, pr, u, hr, s, t, ci, cv in [
        ("acme", "cash", "paris", "rome", "p1", 10, 0, 0.1, ["a"], [0], ["red"]),
        ("acme", "card", "paris", "oslo", "p1", 10, 1, 0.2, ["a", "b"], [1], ["red"]),
        ("acme", "cash", "rome", "paris", "p1", 11, 2, 0.3, [], [], []),
        ("bolt", "cash", "rome", "rome", "p2", 11, 3, 0.4, ["b"], [2], ["blue"]),
        ("bolt", "card", "oslo", "rome", "p2", 12, 4, 0.5, ["c"], [0, 3], ["blue", "red"]),
        ("bolt", "cash", "oslo", "lima", "p2", 12, 5, 0.6, ["a"], [1], ["green"]),
        ("cabs", "card", "lima", "paris", "p3", 13, 6, 0.7, ["a"], [], []),
        ("cabs", "coin", "lima", "oslo", "p3", 13, 7, 0.8, ["b"], [0], ["red"]),
        ("dart", "cash", "kiev", "rome", "p4", 14, 8, 0.9, ["a"], [2], ["blue"]),
        ("dart", "card", "paris", "paris", "p5", 14, 9, 1.0, ["c"], [3], ["red"]),
        ("echo", "cash", "rome", "oslo", "p6", 15, 10, 1.1, ["d"], [1], ["pink"]),
        ("fizz", "cash", "paris", "rome", "p7", 15, 11, 1.2, ["a"], [0], ["red"]),
    ]
]

# What the graph analysis must find for each output, per case. Sizes follow from ROWS.
# company: 6 distinct; payment: cash, card, coin; cities over home_city: paris, rome,
# oslo, lima, kiev; product top_k=3: p1, p2, p3; user_id: 6 distinct; tags: a, b, c, d;
# color frequency_threshold=2: red, blue; payment_gz: 3.
EXPECTED_VOCABULARY = {
    # feature: (raw sources, vocab_size, num_oov_buckets, default_value, offset); with OOV
    # buckets no key falls back to a default, so default_value is None.
    "company_xf": (("company",), 6, 3, None, 0),
    "payment_xf": (("payment",), 3, 0, -1, 0),
    "home_city_xf": (("home_city",), 5, 2, None, 0),
    "work_city_xf": (("work_city",), 5, 0, 7, 0),
    "product_xf": (("product",), 3, 1, None, 0),
    "user_id_xf": (("user_id",), 6, 1, None, 0),
    "tags_xf": (("tags",), 4, 1, None, 0),
    "color_xf": (("color",), 2, 1, None, 0),
    "payment_gz_xf": (("payment",), 3, 2, None, 0),
    "company_plus_one_xf": (("company",), 6, 2, None, 1),
}
EXPECTED_HASH = {
    "company_hash_xf": (("company",), 17),
    "payment_hash_xf": (("payment",), 11),
    "payment_strong_xf": (("payment",), 13),
}
EXPECTED_BUCKETS = {"score_bucket_xf": (("score",), 4), "score_applied_xf": (("score",), 3)}
PASSTHROUGH = {"hour_xf": ("hour",)}
NOT_TRACED = {"company_times_two_xf": ("company",)}
NAMED_VOCABULARY = {"product_xf": "product", "home_city_xf": "cities", "work_city_xf": "cities"}


def preprocessing_fn(inputs):
    """Every derivation case of the graph analysis tests, one output each."""
    import tensorflow_transform as tft

    outputs = {}
    outputs["company_xf"] = tft.compute_and_apply_vocabulary(inputs["company"], num_oov_buckets=3)
    outputs["payment_xf"] = tft.compute_and_apply_vocabulary(inputs["payment"])
    cities = tft.vocabulary(inputs["home_city"], vocab_filename="cities")
    outputs["home_city_xf"] = tft.apply_vocabulary(inputs["home_city"], cities, num_oov_buckets=2)
    outputs["work_city_xf"] = tft.apply_vocabulary(inputs["work_city"], cities, default_value=7)
    outputs["product_xf"] = tft.compute_and_apply_vocabulary(
        inputs["product"], top_k=3, num_oov_buckets=1, vocab_filename="product"
    )
    outputs["user_id_xf"] = tft.compute_and_apply_vocabulary(inputs["user_id"], num_oov_buckets=1)
    outputs["tags_xf"] = tft.compute_and_apply_vocabulary(inputs["tags"], num_oov_buckets=1)
    outputs["color_xf"] = tft.compute_and_apply_vocabulary(
        inputs["color"], frequency_threshold=2, num_oov_buckets=1
    )
    outputs["payment_gz_xf"] = tft.compute_and_apply_vocabulary(
        inputs["payment"], num_oov_buckets=2, file_format="tfrecord_gzip"
    )
    outputs["company_plus_one_xf"] = (
        tft.compute_and_apply_vocabulary(inputs["company"], num_oov_buckets=2) + 1
    )
    outputs["company_times_two_xf"] = (
        tft.compute_and_apply_vocabulary(inputs["company"], num_oov_buckets=2) * 2
    )
    outputs["company_hash_xf"] = tft.hash_strings(inputs["company"], hash_buckets=17)
    outputs["payment_hash_xf"] = tf.strings.to_hash_bucket_fast(inputs["payment"], 11)
    outputs["payment_strong_xf"] = tf.strings.to_hash_bucket_strong(
        inputs["payment"], 13, key=[1, 2]
    )
    outputs["score_bucket_xf"] = tft.bucketize(inputs["score"], num_buckets=4)
    outputs["score_applied_xf"] = tft.apply_buckets(
        inputs["score"], bucket_boundaries=tf.constant([[0.5, 1.0]])
    )
    outputs["hour_xf"] = tf.identity(inputs["hour"])
    return outputs


def build_transform_output(preprocessing_fn_, raw_feature_spec, rows, output_dir, *, tf1):
    """Runs TFT's AnalyzeDataset + WriteTransformFn on rows; returns the output folder."""
    import tensorflow_transform.beam as tft_beam
    from tensorflow_transform.tf_metadata import dataset_metadata, schema_utils

    metadata = dataset_metadata.DatasetMetadata(
        schema_utils.schema_from_feature_spec(raw_feature_spec)
    )
    temp_dir = tempfile.mkdtemp(dir=os.path.dirname(output_dir) or None)
    with tft_beam.Context(temp_dir=temp_dir, force_tf_compat_v1=tf1):
        transform_fn = (rows, metadata) | tft_beam.AnalyzeDataset(preprocessing_fn_)
        _ = transform_fn | tft_beam.WriteTransformFn(output_dir)
    return output_dir


_BUILT: dict[str, dict[str, str]] = {}


def built_graphs(root: str) -> dict[str, str]:
    """ "tf1"/"tf2" -> a transform_graph folder of preprocessing_fn; TFT runs once per process.

    Each folder also gets metadata/schema.pbtxt (the raw schema), as the TFX
    Transform component writes it, so raw mode can apply it.
    """
    if "graphs" not in _BUILT:
        from tensorflow_transform.tf_metadata import dataset_metadata, metadata_io, schema_utils

        graphs = {}
        for name, tf1 in (("tf1", True), ("tf2", False)):
            output_dir = os.path.join(root, name)
            build_transform_output(preprocessing_fn, RAW_FEATURE_SPEC, ROWS, output_dir, tf1=tf1)
            metadata_io.write_metadata(
                dataset_metadata.DatasetMetadata(
                    schema_utils.schema_from_feature_spec(RAW_FEATURE_SPEC)
                ),
                os.path.join(output_dir, "metadata"),
            )
            graphs[name] = output_dir
        _BUILT["graphs"] = graphs
    return _BUILT["graphs"]


def _taxi_paths():
    import pathlib

    import tfx

    tfx_dir = pathlib.Path(tfx.__file__).parent
    return (
        tfx_dir / "components" / "testdata" / "transform" / "transform_graph" / "metadata",
        tfx_dir / "examples" / "chicago_taxi_pipeline" / "data" / "simple" / "data.csv",
    )


def taxi_rows() -> tuple[dict, list[dict]]:
    """TFX's shipped taxi raw feature spec and data/simple/data.csv rows as TFT instances."""
    import csv

    from tensorflow_transform.tf_metadata import metadata_io, schema_utils

    metadata_dir, csv_path = _taxi_paths()
    schema = metadata_io.read_metadata(str(metadata_dir)).schema
    spec = schema_utils.schema_as_feature_spec(schema).feature_spec
    casts = {tf.int64: int, tf.float32: float, tf.string: str.encode}
    rows = []
    with open(csv_path, newline="") as f:
        for record in csv.DictReader(f):
            rows.append(
                {
                    name: [] if record[name] == "" else [casts[spec[name].dtype](record[name])]
                    for name in spec
                }
            )
    return spec, rows


def built_taxi_graph(root: str, num_oov_buckets: int | None = None) -> dict[str, str]:
    """TFX's taxi_utils_native_keras.preprocessing_fn through TFT (TF2) on data.csv, once.

    Args:
      root: Where the graph and the examples go.
      num_oov_buckets: The taxi module's _OOV_SIZE for this build (TFX's is 10);
        with 0, unseen and empty companies become -1.

    Returns:
      "graph": the transform_graph folder (with the raw schema in metadata/);
      "examples": raw tf.Examples of every row, the first 10,000 as Split-train
      and the rest as Split-eval.
    """
    key = "taxi" if num_oov_buckets is None else f"taxi_oov{num_oov_buckets}"
    if key not in _BUILT:
        from unittest import mock

        from tensorflow_transform.tf_metadata import dataset_metadata, metadata_io, schema_utils
        from tfx.examples.chicago_taxi_pipeline import taxi_utils_native_keras

        spec, rows = taxi_rows()
        graph = os.path.join(root, "taxi_graph")
        oov = taxi_utils_native_keras._OOV_SIZE if num_oov_buckets is None else num_oov_buckets
        with mock.patch.object(taxi_utils_native_keras, "_OOV_SIZE", oov):
            build_transform_output(
                taxi_utils_native_keras.preprocessing_fn, spec, rows, graph, tf1=False
            )
        metadata_io.write_metadata(
            dataset_metadata.DatasetMetadata(schema_utils.schema_from_feature_spec(spec)),
            os.path.join(graph, "metadata"),
        )
        examples = os.path.join(root, "taxi_raw")
        for split, part in (("train", rows[:10_000]), ("eval", rows[10_000:])):
            os.makedirs(os.path.join(examples, f"Split-{split}"))
            path = os.path.join(examples, f"Split-{split}", "data_tfrecord-00000-of-00001.gz")
            with tf.io.TFRecordWriter(path, options="GZIP") as writer:
                for row in part:
                    writer.write(_example(row, spec).SerializeToString())
        _BUILT[key] = {"graph": graph, "examples": examples}
    return _BUILT[key]


def _example(row: dict, spec: dict) -> tf.train.Example:
    feature = {}
    for name, values in row.items():
        if not values:
            continue
        if spec[name].dtype == tf.int64:
            feature[name] = tf.train.Feature(int64_list=tf.train.Int64List(value=values))
        elif spec[name].dtype == tf.float32:
            feature[name] = tf.train.Feature(float_list=tf.train.FloatList(value=values))
        else:
            feature[name] = tf.train.Feature(bytes_list=tf.train.BytesList(value=values))
    return tf.train.Example(features=tf.train.Features(feature=feature))


# --- Every lookup shape of TFT (issue #26) -------------------------------------------------
#
# One output per shape, all over one string feature "x". Training rows: a x6, b x5, c x4,
# d x3 and "e f" x2, so every vocabulary file holds a, b, c, d, "e f" in that order
# (store_frequency writes "6 a" ... "2 e__SPACE__f"). The eval rows add unseen tokens,
# among them the empty one, so their OOV rate rises.
LOOKUP_TRAIN_TOKENS: tuple[str, ...] = (
    ("a",) * 6 + ("b",) * 5 + ("c",) * 4 + ("d",) * 3 + ("e f",) * 2
)
LOOKUP_EVAL_TOKENS: tuple[str, ...] = ("a", "a", "b", "e f", "c", "zzz", "zzz", "", "yyy", "d")
LOOKUP_VOCABULARY: tuple[str, ...] = ("a", "b", "c", "d", "e f")
# The output passing the raw token through, beside one int64 output per shape.
LOOKUP_TOKEN = "token"  # noqa: S105 - a feature name.


# shape -> (table entries, num_oov_buckets, default_value for unseen keys or None with
# buckets): what TensorFlow's table holds, from how each shape is built below.
LOOKUP_SHAPES: dict[str, tuple[int, int, int | None]] = {
    # lookup_fn: StaticHashTable(TextFileInitializer(vocab_size=1)): the first line only.
    "lookup_fn_vs1": (1, 0, -1),
    # The same table behind 2 OOV buckets: [0, 3), where counting the file's lines
    # would give [0, 7) and call every OOV bucket value a vocabulary entry.
    "lookup_fn_vs1_oov2": (1, 2, None),
    "lookup_fn_full": (5, 0, -1),
    # lookup_fn with its own default; the transformed schema still says min -1.
    "lookup_fn_dm7": (5, 0, -7),
    # lookup_fn: StaticVocabularyTable(num_oov_buckets=3), which TFT's schema ignores.
    "lookup_fn_vocab_oov3": (5, 3, None),
    # store_frequency: "freq token" lines, key column 1 split on " ".
    "store_frequency": (5, 0, -1),
    "store_frequency_oov2": (5, 2, None),
    "store_frequency_tfrecord": (5, 0, -1),
    "default_m3": (5, 0, -3),
    # default_value past the table: the model needs 10 rows.
    "default_9": (5, 0, 9),
    "oov2": (5, 2, None),
    "plain": (5, 0, -1),
}


def _lookup_fn(vocab_size=None, default_value=-1, num_oov_buckets=0):
    """A tft.apply_vocabulary lookup_fn building its own table from the asset file."""

    def lookup_fn(keys, asset_filepath):
        kwargs = {} if vocab_size is None else {"vocab_size": vocab_size}
        initializer = tf.lookup.TextFileInitializer(
            asset_filepath,
            key_dtype=tf.string,
            key_index=tf.lookup.TextFileIndex.WHOLE_LINE,
            value_dtype=tf.int64,
            value_index=tf.lookup.TextFileIndex.LINE_NUMBER,
            **kwargs,
        )
        if num_oov_buckets:
            table = tf.lookup.StaticVocabularyTable(initializer, num_oov_buckets=num_oov_buckets)
        else:
            table = tf.lookup.StaticHashTable(initializer, default_value=default_value)
        return table.lookup(keys), table.size()

    return lookup_fn


def lookup_shapes_preprocessing_fn(inputs):
    """One int64 output per LOOKUP_SHAPES entry, named after it."""
    import tensorflow_transform as tft

    x = inputs["x"]
    # The raw token rides along, so each of TFT's outputs can be checked against it.
    outputs = {LOOKUP_TOKEN: tf.identity(x)}
    lookup_fns = {
        "lookup_fn_vs1": _lookup_fn(vocab_size=1),
        "lookup_fn_vs1_oov2": _lookup_fn(vocab_size=1, num_oov_buckets=2),
        "lookup_fn_full": _lookup_fn(),
        "lookup_fn_dm7": _lookup_fn(default_value=-7),
        "lookup_fn_vocab_oov3": _lookup_fn(num_oov_buckets=3),
    }
    for name, lookup_fn in lookup_fns.items():
        deferred = tft.vocabulary(x, vocab_filename=f"vocab_{name}")
        outputs[name] = tft.apply_vocabulary(x, deferred, lookup_fn=lookup_fn)
    vocabularies = {
        "store_frequency": {"store_frequency": True},
        "store_frequency_oov2": {"store_frequency": True, "num_oov_buckets": 2},
        "store_frequency_tfrecord": {"store_frequency": True, "file_format": "tfrecord_gzip"},
        "default_m3": {"default_value": -3},
        "default_9": {"default_value": 9},
        "oov2": {"num_oov_buckets": 2},
        "plain": {},
    }
    for name, kwargs in vocabularies.items():
        outputs[name] = tft.compute_and_apply_vocabulary(
            x, vocab_filename=f"vocab_{name}", **kwargs
        )
    return outputs


def _build_lookup_shapes(output_dir: str, *, tf1: bool) -> dict[str, str]:
    """One Beam run: analyze + transform the train rows, transform the eval rows."""
    import json

    import apache_beam as beam
    import tensorflow_transform.beam as tft_beam
    from tensorflow_transform.tf_metadata import dataset_metadata, metadata_io, schema_utils

    spec = {"x": tf.io.FixedLenFeature([], tf.string)}
    metadata = dataset_metadata.DatasetMetadata(schema_utils.schema_from_feature_spec(spec))
    graph = os.path.join(output_dir, "transform_graph")
    json_dir = os.path.join(output_dir, "json")
    splits = {"train": LOOKUP_TRAIN_TOKENS, "eval": LOOKUP_EVAL_TOKENS}

    def to_json(row):
        return json.dumps(
            {k: v.decode() if isinstance(v, bytes) else int(v) for k, v in sorted(row.items())}
        )

    with (
        beam.Pipeline(runner="DirectRunner") as pipeline,
        tft_beam.Context(temp_dir=os.path.join(output_dir, "tmp"), force_tf_compat_v1=tf1),
    ):
        data = {
            split: pipeline | f"Create{split}" >> beam.Create([{"x": t} for t in tokens])
            for split, tokens in splits.items()
        }
        transform_fn = (data["train"], metadata) | tft_beam.AnalyzeDataset(
            lookup_shapes_preprocessing_fn
        )
        _ = transform_fn | tft_beam.WriteTransformFn(graph)
        for split in splits:
            transformed, _ = ((data[split], metadata), transform_fn) | (
                f"Transform{split}" >> tft_beam.TransformDataset()
            )
            _ = (
                transformed
                | f"Json{split}" >> beam.Map(to_json)
                | f"Write{split}"
                >> beam.io.WriteToText(os.path.join(json_dir, split), shard_name_template="")
            )
    metadata_io.write_metadata(metadata, os.path.join(graph, "metadata"))
    # TFT's own transformed values, as Split-<name> gzip tf.Examples for `check`. The
    # Beam text sink keeps no order, so rows are written in the order it gives.
    examples = os.path.join(output_dir, "transformed_examples")
    for split in splits:
        with open(os.path.join(json_dir, split)) as f:
            rows = [json.loads(line) for line in f if line.strip()]
        os.makedirs(os.path.join(examples, f"Split-{split}"))
        path = os.path.join(examples, f"Split-{split}", "transformed_examples-00000-of-00001.gz")
        with tf.io.TFRecordWriter(path, options="GZIP") as writer:
            for row in rows:
                feature = {
                    name: tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))
                    for name, value in row.items()
                    if name != LOOKUP_TOKEN
                }
                token = row[LOOKUP_TOKEN].encode()
                feature[LOOKUP_TOKEN] = tf.train.Feature(
                    bytes_list=tf.train.BytesList(value=[token])
                )
                example = tf.train.Example(features=tf.train.Features(feature=feature))
                writer.write(example.SerializeToString())
    return {"graph": graph, "examples": examples}


def built_lookup_shapes(root: str) -> dict[str, dict[str, str]]:
    """ "tf1"/"tf2" -> {"graph", "examples"} of lookup_shapes_preprocessing_fn; one TFT run each.

    "examples" holds TFT's own transformed values of LOOKUP_TRAIN_TOKENS (Split-train)
    and LOOKUP_EVAL_TOKENS (Split-eval); "graph" is the transform_graph folder.
    """
    if "lookup_shapes" not in _BUILT:
        _BUILT["lookup_shapes"] = {
            name: _build_lookup_shapes(os.path.join(root, name), tf1=tf1)
            for name, tf1 in (("tf1", True), ("tf2", False))
        }
    return _BUILT["lookup_shapes"]
