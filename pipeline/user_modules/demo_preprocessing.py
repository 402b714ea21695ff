"""Transform preprocessing functions of the embedding-guard demo pipeline.

`preprocessing_fn_clean` gives every categorical feature a valid index range.
`preprocessing_fn_broken` drops the OOV bucket of `city`, so cities that train never
saw become -1 in eval, the bug embedding-guard exists to catch.
"""

import tensorflow as tf
import tensorflow_transform as tft
from demo_constants import LABEL_KEY

NUM_AGE_BUCKETS = 5
NUM_PRODUCT_OOV_BUCKETS = 2


def _dense(inputs, key):
    # The raw schema makes every column a FixedLenFeature of shape [1]; flattening to
    # [batch] gives transformed features of shape [] (one value per example).
    return tf.reshape(inputs[key], [-1])


def _transform(inputs, city_oov_buckets):
    return {
        "product_xf": tft.compute_and_apply_vocabulary(
            _dense(inputs, "product"),
            num_oov_buckets=NUM_PRODUCT_OOV_BUCKETS,
            vocab_filename="product",
        ),
        "city_xf": tft.compute_and_apply_vocabulary(
            _dense(inputs, "city"),
            num_oov_buckets=city_oov_buckets,
            vocab_filename="city",
        ),
        "age_xf": tft.bucketize(_dense(inputs, "age"), NUM_AGE_BUCKETS),
        "month_xf": _dense(inputs, "month") - 1,
        LABEL_KEY: _dense(inputs, LABEL_KEY),
    }


def preprocessing_fn_clean(inputs):
    """Maps raw features to embedding indices, with an OOV bucket for unseen cities.

    Args:
      inputs: Raw features keyed by column name, each a dense [batch, 1] tensor.

    Returns:
      Transformed features keyed by name, each a [batch] tensor.
    """
    return _transform(inputs, city_oov_buckets=1)


def preprocessing_fn_broken(inputs):
    """Like `preprocessing_fn_clean`, but unseen cities become -1 (no OOV bucket).

    Args:
      inputs: Raw features keyed by column name, each a dense [batch, 1] tensor.

    Returns:
      Transformed features keyed by name, each a [batch] tensor.
    """
    return _transform(inputs, city_oov_buckets=0)
