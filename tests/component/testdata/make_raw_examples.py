"""Writes the raw (ExampleGen-like) examples of the raw-mode tests.

Run from the repository root: `.venv/bin/python tests/component/testdata/make_raw_examples.py`.
The values are literal so the expected counts can be worked out by hand against
the checked-in transform graph: vocabulary `city` (25 entries, no OOV bucket, so
unseen cities become -1) and `product` (40 entries + 2 OOV buckets).
"""

import os

import tensorflow as tf

HERE = os.path.dirname(os.path.abspath(__file__))

# (product, city, age, month). The train rows are all in the vocabularies.
TRAIN = [
    ("product_00", "amsterdam", 25.0, 1),
    ("product_01", "athens", 35.0, 2),
    ("product_02", "barcelona", 45.0, 3),
    ("product_03", "berlin", 55.0, 4),
]
# The "serving" rows: unseen cities and products, and empty strings, which a text
# vocabulary can never hold. No label, as in a serving log.
EVAL = [
    ("product_00", "amsterdam", 30.0, 1),
    ("product_00", "athens", 30.0, 2),
    ("product_99", "reykjavik", 45.0, 3),
    ("product_99", "reykjavik", 45.0, 4),
    ("product_77", "tallinn", 50.0, 5),
    ("", "", 60.0, 6),
    ("product_01", "vienna", 20.0, 7),
    ("product_39", "berlin", 70.0, 12),
]


def _example(product, city, age, month, clicked=None):
    feature = {
        "product": tf.train.Feature(bytes_list=tf.train.BytesList(value=[product.encode()])),
        "city": tf.train.Feature(bytes_list=tf.train.BytesList(value=[city.encode()])),
        "age": tf.train.Feature(float_list=tf.train.FloatList(value=[age])),
        "month": tf.train.Feature(int64_list=tf.train.Int64List(value=[month])),
    }
    if clicked is not None:
        feature["clicked"] = tf.train.Feature(int64_list=tf.train.Int64List(value=[clicked]))
    return tf.train.Example(features=tf.train.Features(feature=feature))


def main():
    for split, rows, with_label in (("train", TRAIN, True), ("eval", EVAL, False)):
        folder = os.path.join(HERE, "raw_examples", f"Split-{split}")
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, "data_tfrecord-00000-of-00001.gz")
        with tf.io.TFRecordWriter(path, options="GZIP") as writer:
            for row in rows:
                example = _example(*row, clicked=0 if with_label else None)
                writer.write(example.SerializeToString())


if __name__ == "__main__":
    main()
