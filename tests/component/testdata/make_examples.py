"""Writes the hand-made transformed examples the component tests read.

Run it from anywhere to rewrite `transformed_examples/` beside this file:

    .venv/bin/python tests/component/testdata/make_examples.py

Every value is listed literally below, so the tests' expected counts can be worked
out by hand. The examples fit `transform_graph/` next to this file (the demo
pipeline's "broken" Transform output):

    city_xf     vocabulary 'city', 25 entries, num_oov_buckets=0  -> valid [0, 25); -1 = unseen
    product_xf  vocabulary 'product', 40 entries + 2 OOV buckets -> valid [0, 42); 40, 41 = OOV
    age_xf      bucketized, int_domain [0, 4]                     -> valid [0, 5)
    month_xf    no int_domain; checked only through embedding_input_dims (12 in the tests)
    clicked     label, never checked

Nothing is random; the output is byte-identical on every run.
"""

from __future__ import annotations

import argparse
import os
import shutil

import tensorflow as tf

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_OUTPUT = os.path.join(HERE, "transformed_examples")

# Columns of every row. city_xf None means the example has no city_xf feature;
# product_xf is always a list (several values = multivalent).
COLUMNS = ("age_xf", "city_xf", "month_xf", "product_xf", "clicked")

# Every index is valid. Two shards: the first gzip, the second uncompressed.
TRAIN_SHARD_0 = [
    (0, 0, 0, [0], 0),
    (1, 1, 1, [1], 1),
    (2, 2, 2, [2, 3], 0),
    (3, 3, 3, [4], 1),
    (4, 4, 4, [5], 0),
    (0, 5, 5, [6], 1),
    (1, 6, 6, [7], 0),
    (2, 7, 7, [8], 1),
    (3, 8, 8, [9], 0),
    (4, 9, 9, [39], 1),
]
TRAIN_SHARD_1 = [
    (0, 10, 10, [10], 0),
    (1, 11, 11, [11], 1),
    (2, 12, 0, [12], 0),
    (3, 13, 1, [13], 1),
    (4, 14, 2, [14], 0),
    (0, 20, 3, [15], 1),
    (1, 21, 4, [16], 0),
    (2, 22, 5, [17], 1),
    (3, 23, 6, [18], 0),
    (4, 24, 7, [19], 1),
]

EVAL = [
    (0, 3, 0, [5], 0),
    (1, -1, 1, [40], 1),  # city unseen by the vocabulary; product in OOV bucket 40
    (2, 7, 2, [42], 0),  # product beyond vocabulary + OOV buckets
    (3, 24, 3, [0, 39], 1),  # multivalent, valid
    (4, -1, 12, [41], 0),  # city unseen; month over input_dim 12; product in OOV bucket 41
    (0, None, 4, [8], 0),  # no city_xf at all
    (1, 0, 5, [42, 57], 1),  # multivalent, both beyond range
    (2, 12, 6, [40, 1, 2], 0),  # multivalent, one OOV
    (3, -1, 11, [10], 1),  # city unseen
    (4, 5, 7, [20], 0),
    (0, 6, 8, [21], 1),
    (1, 8, 9, [22], 0),
    (2, 9, 10, [23], 1),
    (3, 10, 11, [24], 0),
    (4, 11, 0, [25], 1),
    (0, 13, 1, [26], 0),
    (1, 14, 2, [27], 1),
    (2, 15, 3, [28], 0),
    (3, 16, 12, [29], 1),  # month over input_dim 12
    (4, 17, 4, [30], 0),
]

# product_xf stored as float_list: not usable as an index whatever its value.
TEST = [
    (0, 1, 0, [2.5], 0),
    (1, 2, 1, [3.0], 1),
    (2, 3, 2, [7.25], 0),
    (3, 4, 3, [2.5], 1),
    (4, 5, 4, [11.0], 0),
    (0, 6, 5, [2.5], 1),
]

# (split, shard file name, rows, gzip?)
SHARDS = [
    ("train", "transformed_examples-00000-of-00002.gz", TRAIN_SHARD_0, True),
    ("train", "transformed_examples-00001-of-00002", TRAIN_SHARD_1, False),
    ("eval", "transformed_examples-00000-of-00001.gz", EVAL, True),
    ("test", "transformed_examples-00000-of-00001.gz", TEST, True),
]


def _feature(values: list) -> tf.train.Feature:
    if all(isinstance(v, int) for v in values):
        return tf.train.Feature(int64_list=tf.train.Int64List(value=values))
    return tf.train.Feature(float_list=tf.train.FloatList(value=values))


def to_example(row: tuple) -> tf.train.Example:
    """Builds the tf.Example of one row; a None value leaves the feature out."""
    features = {}
    for name, value in zip(COLUMNS, row, strict=True):
        if value is not None:
            features[name] = _feature(value if isinstance(value, list) else [value])
    return tf.train.Example(features=tf.train.Features(feature=features))


def write(output_dir: str = DEFAULT_OUTPUT) -> None:
    """Replaces output_dir with Split-<name>/ folders of the shards above."""
    if os.path.isdir(output_dir):
        shutil.rmtree(output_dir)
    for split, file_name, rows, gzip in SHARDS:
        split_dir = os.path.join(output_dir, f"Split-{split}")
        os.makedirs(split_dir, exist_ok=True)
        options = tf.io.TFRecordOptions(compression_type="GZIP" if gzip else "")
        with tf.io.TFRecordWriter(os.path.join(split_dir, file_name), options) as writer:
            for row in rows:
                writer.write(to_example(row).SerializeToString(deterministic=True))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default=DEFAULT_OUTPUT, help="default: %(default)s")
    write(parser.parse_args().output)
