"""Parses the checked int64 features of a batch of tf.Examples in C, as TensorFlow does.

`_tfrecord_framing.parse_int64_features` walks the records without the GIL
and gives, per feature, the values and the values per example that
TensorFlow's ParseExampleV2 gives (`reader.parse_batch`). It takes only the
records it reads exactly as TensorFlow does. For any other batch (a checked
feature holding floats or bytes, or a record it does not read) it gives None,
and the reader parses that batch with TensorFlow, which stays the reference and
the fallback, and the only parser of an install without a C compiler. Nothing
here imports TensorFlow.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

try:
    from embedding_guard.read import _tfrecord_framing
except ImportError:  # Installed without a C compiler: TensorFlow parses instead.
    _tfrecord_framing = None  # type: ignore[assignment]

# The reasons parse_int64_features gives for handing a batch back.
NOT_INT64 = 1
NOT_READ = 2


def compiled() -> bool:
    """Whether the compiled parser is installed (and not switched off by a test)."""
    return _tfrecord_framing is not None


def parse_problem(
    buffer: bytes, starts: np.ndarray, lengths: np.ndarray, features: Sequence[str]
) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]] | None, tuple[int, int, int] | None]:
    """Parses the records' int64 features in C; the columns or why not.

    Args:
      buffer: The bytes the records lie in.
      starts: Where each record starts in buffer.
      lengths: Each record's length.
      features: The checked feature names, each once.

    Returns:
      (columns, None): feature -> (flat int64 values, values per example), the
      arrays TensorFlow's parse gives; or (None, (reason, record, feature
      index)): the first record the C parser hands back, because the feature
      at that index holds floats or bytes (NOT_INT64), or because the record
      is not one it reads as TensorFlow does (NOT_READ, feature index -1).

    Raises:
      RuntimeError: The compiled parser is not installed.
    """
    if _tfrecord_framing is None:
        raise RuntimeError("the compiled example parser is not installed")
    columns, problem = _tfrecord_framing.parse_int64_features(
        buffer,
        np.ascontiguousarray(starts, dtype=np.int64),
        np.ascontiguousarray(lengths, dtype=np.int64),
        tuple(name.encode() for name in features),
    )
    if columns is None:
        return None, problem
    return {
        name: (np.frombuffer(values, dtype=np.int64), np.frombuffer(row_lengths, dtype=np.int64))
        for name, (values, row_lengths) in zip(features, columns, strict=True)
    }, None


def int64_columns(
    buffer: bytes, starts: np.ndarray, lengths: np.ndarray, features: Sequence[str]
) -> dict[str, tuple[np.ndarray, np.ndarray]] | None:
    """The records' int64 features as TensorFlow parses them, or None: parse with TensorFlow.

    None when the compiled parser is not installed, when a checked feature of
    some record holds floats or bytes (the TensorFlow path counts those as
    non-integer values), or when a record is one the C parser hands back.
    Arguments as for parse_problem.
    """
    if _tfrecord_framing is None:
        return None
    return parse_problem(buffer, starts, lengths, features)[0]
