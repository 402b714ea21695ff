"""Seeded synthetic Transform output: gzip TFRecord shards, a transform graph and the truth.

The examples look like Transform's `transformed_examples`: 8 int64 categorical
features (6 single-valued, 2 multivalent with 0-5 values) indexed into
vocabularies of 10 to 1,000,000 entries plus OOV buckets, 2 float features and
1 string feature. A fraction BAD_VALUE_RATE of every categorical feature's values
is replaced by -1 (Transform's default_value for unseen values) or by an index
beyond vocabulary + OOV buckets. The exact count of every kind of value is worked
out from the generated arrays and saved as truth.json beside the examples.

Examples are built column-wise in numpy and serialized by tfx_bsl's C++
RecordBatchToExamplesEncoder, so generating 4M examples takes seconds, not minutes.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from collections.abc import Callable

import atomic_files
import numpy as np
import pyarrow as pa

SEED = 20250105
# Bump when the data layout or distributions change, so cached data is rebuilt.
DATA_VERSION = 1
NUM_SHARDS = 8
CHUNK_SIZE = 50_000
BAD_VALUE_RATE = 1e-4
OOV_RATE = 0.01
MAX_MULTIVALENT_VALUES = 5
SPLIT = "train"
STRING_POOL_SIZE = 1000
COMPLETE_MARKER = "generated.json"


@dataclasses.dataclass(frozen=True)
class CategoricalFeature:
    """A transformed categorical feature made by compute_and_apply_vocabulary."""

    name: str
    vocabulary: str
    vocab_size: int
    num_oov_buckets: int
    multivalent: bool = False

    @property
    def upper_bound(self) -> int:
        return self.vocab_size + self.num_oov_buckets


CATEGORICAL_FEATURES = (
    CategoricalFeature("c10_xf", "c10", 10, 1),
    CategoricalFeature("c50_xf", "c50", 50, 1),
    CategoricalFeature("c1k_xf", "c1k", 1_000, 2),
    CategoricalFeature("c10k_xf", "c10k", 10_000, 5),
    CategoricalFeature("c100k_xf", "c100k", 100_000, 10),
    CategoricalFeature("c1m_xf", "c1m", 1_000_000, 100),
    CategoricalFeature("tags1k_xf", "tags1k", 1_000, 1, multivalent=True),
    CategoricalFeature("items100k_xf", "items100k", 100_000, 10, multivalent=True),
)
# The vocabulary-load benchmark's transform graph holds only this feature.
VOCAB_FEATURE = CategoricalFeature("big_xf", "big", 1_000_000, 100)
FLOAT_FEATURES = ("price_xf", "score_xf")
STRING_FEATURE = "comment"
ALL_FEATURES = tuple(f.name for f in CATEGORICAL_FEATURES) + FLOAT_FEATURES + (STRING_FEATURE,)
TRUTH_KEYS = ("num_values", "missing", "negative", "in_vocab", "oov_bucket", "out_of_range")


def transformed_schema(categorical=CATEGORICAL_FEATURES, others: bool = True):
    """The transformed schema Transform would write for these features.

    Args:
      categorical: The categorical features.
      others: Whether to add the float and string features.
    """
    from tensorflow_metadata.proto.v0 import schema_pb2

    schema = schema_pb2.Schema()
    for spec in categorical:
        feature = schema.feature.add(name=spec.name, type=schema_pb2.INT)
        feature.int_domain.min = 0
        feature.int_domain.max = spec.upper_bound - 1
        feature.int_domain.is_categorical = True
        if spec.multivalent:
            feature.value_count.min = 0
            feature.value_count.max = MAX_MULTIVALENT_VALUES
        else:
            feature.presence.min_fraction = 1.0
            feature.shape.dim.add(size=1)
    if not others:
        return schema
    for name in FLOAT_FEATURES:
        feature = schema.feature.add(name=name, type=schema_pb2.FLOAT)
        feature.presence.min_fraction = 1.0
        feature.shape.dim.add(size=1)
    feature = schema.feature.add(name=STRING_FEATURE, type=schema_pb2.BYTES)
    feature.presence.min_fraction = 1.0
    feature.shape.dim.add(size=1)
    return schema


def write_transform_graph(root: str, categorical=CATEGORICAL_FEATURES, others: bool = True) -> dict:
    """Writes a transform_graph folder: transformed schema, asset_map and vocabularies.

    There is no SavedModel: the validator reads only the schema and vocabularies.

    Args:
      root: The transform_graph folder to (re)write, unless already complete.
      categorical: The categorical features, each with its own vocabulary.
      others: Whether the schema also lists the float and string features.

    Returns:
      Paths: transform_graph, schema (the transformed schema.pbtxt).
    """
    from google.protobuf import text_format

    marker = os.path.join(root, COMPLETE_MARKER)
    paths = {
        "transform_graph": root,
        "schema": os.path.join(root, "transformed_metadata", "schema.pbtxt"),
    }
    identity = {"version": DATA_VERSION, "features": [f.name for f in categorical]}
    if is_complete(marker, identity):
        return paths
    shutil.rmtree(root, ignore_errors=True)
    schema_text = text_format.MessageToString(transformed_schema(categorical, others))
    atomic_files.write_text(paths["schema"], schema_text)
    asset_map = {spec.vocabulary: spec.vocabulary for spec in categorical}
    atomic_files.write_text(
        os.path.join(root, "transformed_metadata", "asset_map"), json.dumps(asset_map)
    )
    for spec in categorical:
        tokens = "\n".join(f"{spec.vocabulary}_{i}" for i in range(spec.vocab_size))
        atomic_files.write_text(
            os.path.join(root, "transform_fn", "assets", spec.vocabulary), tokens + "\n"
        )
    atomic_files.write_text(marker, json.dumps(identity))
    return paths


def is_complete(marker: str, expected: dict) -> bool:
    if not os.path.exists(marker):
        return False
    with open(marker) as f:
        return json.load(f) == expected


def _lengths(rng, num_examples: int, multivalent: bool) -> np.ndarray:
    if multivalent:
        return rng.integers(0, MAX_MULTIVALENT_VALUES + 1, num_examples)
    return np.ones(num_examples, dtype=np.int64)


def _indices(rng, spec: CategoricalFeature, num_values: int) -> np.ndarray:
    # Log-uniform ranks: a few frequent entries and a long tail, like a
    # frequency-sorted vocabulary.
    ranks = np.floor(np.power(spec.vocab_size + 1.0, rng.random(num_values))).astype(np.int64) - 1
    values = np.clip(ranks, 0, spec.vocab_size - 1)
    oov = rng.random(num_values) < OOV_RATE
    values[oov] = spec.vocab_size + rng.integers(0, spec.num_oov_buckets, int(oov.sum()))
    bad = np.flatnonzero(rng.random(num_values) < BAD_VALUE_RATE)
    negative = rng.random(bad.size) < 0.5
    values[bad[negative]] = -1
    too_large = bad[~negative]
    values[too_large] = spec.upper_bound + rng.integers(0, 1000, too_large.size)
    return values


def _truth(spec: CategoricalFeature, values: np.ndarray, lengths: np.ndarray) -> dict:
    below_zero = int(np.count_nonzero(values < 0))
    below_vocab = int(np.count_nonzero(values < spec.vocab_size))
    below_upper = int(np.count_nonzero(values < spec.upper_bound))
    return {
        "num_values": int(values.size),
        "missing": int(np.count_nonzero(lengths == 0)),
        "negative": below_zero,
        "in_vocab": below_vocab - below_zero,
        "oov_bucket": below_upper - below_vocab,
        "out_of_range": int(values.size) - below_upper,
    }


def _list_column(values, lengths: np.ndarray) -> pa.Array:
    offsets = np.zeros(lengths.size + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    if not isinstance(values, pa.Array):
        values = pa.array(values)
    return pa.LargeListArray.from_arrays(pa.array(offsets), values)


def _chunk(rng, num_examples: int, string_pool: pa.Array) -> tuple[pa.RecordBatch, dict]:
    columns, truth = [], {}
    for spec in CATEGORICAL_FEATURES:
        lengths = _lengths(rng, num_examples, spec.multivalent)
        values = _indices(rng, spec, int(lengths.sum()))
        columns.append(_list_column(values, lengths))
        truth[spec.name] = _truth(spec, values, lengths)
    ones = np.ones(num_examples, dtype=np.int64)
    for _ in FLOAT_FEATURES:
        columns.append(_list_column(rng.normal(size=num_examples).astype(np.float32), ones))
    strings = string_pool.take(pa.array(rng.integers(0, STRING_POOL_SIZE, num_examples)))
    columns.append(_list_column(strings, ones))
    return pa.RecordBatch.from_arrays(columns, list(ALL_FEATURES)), truth


def _add_truth(total: dict, part: dict) -> None:
    for feature, counts in part.items():
        into = total.setdefault(feature, dict.fromkeys(TRUTH_KEYS, 0))
        for key in TRUTH_KEYS:
            into[key] += counts[key]


def examples_dir(root: str, num_examples: int) -> str:
    return os.path.join(root, f"n{num_examples}", "examples")


def write_examples(root: str, num_examples: int) -> dict:
    """Writes NUM_SHARDS gzip shards of num_examples examples, unless already cached.

    Args:
      root: The benchmark data folder; the data goes to root/n<num_examples>/.
      num_examples: Examples in the split.

    Returns:
      {"examples": artifact folder holding Split-train, "split": the split
      folder, "truth": exact counts per feature, "bytes": size on disk}.
    """
    identity = {
        "version": DATA_VERSION,
        "seed": SEED,
        "num_examples": num_examples,
        "num_shards": NUM_SHARDS,
    }

    def batches(shard: int, shard_size: int, string_pool: pa.Array):
        for chunk, start in enumerate(range(0, shard_size, CHUNK_SIZE)):
            rng = np.random.default_rng([SEED, num_examples, shard, chunk])
            yield _chunk(rng, min(CHUNK_SIZE, shard_size - start), string_pool)

    return _write_cached_split(
        os.path.join(root, f"n{num_examples}"),
        examples_dir(root, num_examples),
        identity,
        "transformed_examples",
        batches,
    )


def _write_cached_split(
    base: str, examples: str, identity: dict, shard_prefix: str, batches: Callable
) -> dict:
    """Writes NUM_SHARDS gzip shards of what batches yields, unless base holds them already.

    Args:
      base: The folder of this data set (its truth and completion marker).
      examples: The artifact folder under base; the shards go to its Split-<SPLIT>.
      identity: What the data is; a cache with another identity is written again.
      shard_prefix: The shard files' name before -<shard>-of-<NUM_SHARDS>.gz.
      batches: batches(shard, shard_size, string_pool) yields (record batch, truth)
        pairs, shard_size examples in all.

    Returns:
      {"examples": examples, "split": the split folder, "truth": exact counts per
      feature, "bytes": size on disk}.
    """
    import tensorflow as tf
    from tfx_bsl.coders import example_coder

    marker = os.path.join(base, COMPLETE_MARKER)
    split_dir = os.path.join(examples, f"Split-{SPLIT}")
    truth_path = os.path.join(base, "truth.json")
    if not is_complete(marker, identity):
        shutil.rmtree(base, ignore_errors=True)
        os.makedirs(split_dir)
        encoder = example_coder.RecordBatchToExamplesEncoder()
        string_pool = pa.array(
            [f"comment {i}".encode() for i in range(STRING_POOL_SIZE)], pa.binary()
        )
        options = tf.io.TFRecordOptions(compression_type="GZIP")
        truth: dict = {}
        bounds = np.linspace(0, identity["num_examples"], NUM_SHARDS + 1).astype(np.int64)
        for shard, shard_size in enumerate(np.diff(bounds).tolist()):
            path = os.path.join(split_dir, f"{shard_prefix}-{shard:05d}-of-{NUM_SHARDS:05d}.gz")
            with tf.io.TFRecordWriter(path, options) as writer:
                for batch, chunk_truth in batches(shard, shard_size, string_pool):
                    _add_truth(truth, chunk_truth)
                    for record in encoder.encode(batch):
                        writer.write(record)
        atomic_files.write_text(truth_path, json.dumps(truth, indent=1, sort_keys=True))
        atomic_files.write_text(marker, json.dumps(identity))
    with open(truth_path) as f:
        truth = json.load(f)
    size = sum(os.path.getsize(os.path.join(split_dir, name)) for name in os.listdir(split_dir))
    return {"examples": examples, "split": split_dir, "truth": truth, "bytes": size}


# The failure-contract issue: records of this size (an unchecked bytes feature
# beside the checked ones) made 50,000-record batches take 6.6 GB.
LARGE_RECORD_BYTES = 60_000
LARGE_FEATURE = "image_bytes"


def write_large_examples(root: str, num_examples: int) -> dict:
    """Writes NUM_SHARDS gzip shards of examples padded to LARGE_RECORD_BYTES, unless cached.

    The checked features are those of write_examples; each example also holds
    LARGE_RECORD_BYTES in an unchecked bytes feature (compressible, so the files
    stay small on disk while the records are large in memory).

    Returns:
      Like write_examples, for root/large<num_examples>/.
    """
    identity = {
        "version": DATA_VERSION,
        "seed": SEED,
        "num_examples": num_examples,
        "record_bytes": LARGE_RECORD_BYTES,
        "padding": "1 KB blocks",
    }
    chunk_size = 500

    def batches(shard: int, shard_size: int, string_pool: pa.Array):
        for chunk, start in enumerate(range(0, shard_size, chunk_size)):
            rng = np.random.default_rng([SEED, num_examples, shard, chunk, 1])
            size = min(chunk_size, shard_size - start)
            batch, chunk_truth = _chunk(rng, size, string_pool)
            # Repeated 1 KB blocks: 60 KB in memory, a few KB on disk.
            blocks = [rng.bytes(1000) for _ in range(size)]
            padding = pa.array(
                [block * (LARGE_RECORD_BYTES // 1000) for block in blocks], pa.binary()
            )
            batch = pa.RecordBatch.from_arrays(
                [*batch.columns, _list_column(padding, np.ones(size, dtype=np.int64))],
                [*batch.schema.names, LARGE_FEATURE],
            )
            yield batch, chunk_truth

    base = os.path.join(root, f"large{num_examples}")
    return _write_cached_split(
        base, os.path.join(base, "examples"), identity, "large_examples", batches
    )
