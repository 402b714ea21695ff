"""Reads the checked features of TFRecord shards of tf.Examples in large batches.

Only the checked features are parsed, with TensorFlow's vectorised
`parse_example`; that is about twice as fast as decoding every feature into Arrow
(field notes). A feature stored as float or bytes is parsed with its own type so
the core can count it as non-integer instead of the batch failing.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Callable, Iterator, Mapping, Sequence

import numpy as np
import tensorflow as tf
from google.protobuf import message
from tfx.dsl.io import fileio

from embedding_guard.errors import InputError

DEFAULT_BATCH_SIZE = 50_000
# TFX stores each split of an artifact in a folder named Split-<name>.
SPLIT_DIR_PREFIX = "Split-"
_GZIP_MAGIC = b"\x1f\x8b"
# Folders and files that writers leave beside shards and that hold no examples.
_IGNORED_PREFIXES = (".", "_")
# TensorFlow wraps eager errors in "{{function_node ...}} ... [Op:...]"; only the
# middle is meant for people.
_OP_ERROR_NOISE = re.compile(r"^\{\{[^}]*\}\}\s*|\s*\[Op:[^\]]*\].*$")


class ShardError(InputError):
    """A shard cannot be read; the message names the shard."""


@dataclasses.dataclass(frozen=True)
class Batch:
    """The checked features of a batch of examples.

    Attributes:
      num_examples: Examples in the batch.
      columns: feature -> (flat values, values per example).
      raw_columns: In raw mode, feature -> the raw values its indices were made
        from, shaped like columns.
    """

    num_examples: int
    columns: dict[str, tuple[np.ndarray, np.ndarray]]
    raw_columns: dict[str, tuple[np.ndarray, np.ndarray]] = dataclasses.field(default_factory=dict)


def split_dirs(examples_dir: str) -> dict[str, str]:
    """Maps split name -> folder for every Split-<name> folder of an examples dir."""
    if not fileio.isdir(examples_dir):
        raise ShardError(
            f"Examples folder {examples_dir!r} does not exist; pass the folder that "
            "holds the Split-<name> folders."
        )
    splits = {}
    for name in sorted(fileio.listdir(examples_dir)):
        name = name.rstrip("/")
        path = os.path.join(examples_dir, name)
        if name.startswith(SPLIT_DIR_PREFIX) and fileio.isdir(path):
            splits[name[len(SPLIT_DIR_PREFIX) :]] = path
    return splits


def list_shards(split_uri: str) -> list[str]:
    """Lists a split folder's data files, sorted, skipping hidden and temp files.

    Args:
      split_uri: A `Split-<name>` folder.

    Returns:
      Paths of the shard files.

    Raises:
      ShardError: The folder does not exist.
    """
    if not fileio.isdir(split_uri):
        raise ShardError(
            f"Split folder {split_uri!r} does not exist; the examples artifact does not "
            "hold this split. Check the artifact's split_names or exclude_splits."
        )
    shards = []
    for name in sorted(fileio.listdir(split_uri)):
        name = name.rstrip("/")
        path = os.path.join(split_uri, name)
        if name.startswith(_IGNORED_PREFIXES) or fileio.isdir(path):
            continue
        shards.append(path)
    return shards


def op_error_text(error: tf.errors.OpError) -> str:
    """The first line of a TensorFlow error without its function-node and op decoration."""
    lines = (error.message or "").splitlines() or [type(error).__name__]
    return _OP_ERROR_NOISE.sub("", lines[0]) or lines[0]


def compression_type(path: str) -> str:
    """Returns "GZIP" when the file starts with the gzip magic bytes, else "".

    Raises:
      ShardError: The file cannot be opened.
    """
    try:
        with fileio.open(path, "rb") as f:
            return "GZIP" if f.read(2) == _GZIP_MAGIC else ""
    except tf.errors.OpError as error:
        raise ShardError(
            f"Shard {path!r} cannot be opened ({op_error_text(error)}). Check that it exists "
            "and is readable, or remove it from the split folder."
        ) from error


def first_record(split_uri: str) -> tuple[str, bytes] | None:
    """Returns (shard, record) for a split's first record, or None if the split is empty.

    Raises:
      ShardError: The shard holding it is truncated, corrupt or not TFRecords.
    """
    for shard in list_shards(split_uri):
        dataset = tf.data.TFRecordDataset(shard, compression_type=compression_type(shard))
        try:
            for record in dataset.take(1):
                return shard, record.numpy()
        except tf.errors.OpError as error:
            raise ShardError(
                f"Shard {shard!r} cannot be read as TFRecords ({op_error_text(error)}). "
                "Re-run the component that wrote it, or remove the shard."
            ) from error
    return None


def check_record_format(split_uris: Mapping[str, str], features: Sequence[str]) -> None:
    """Checks on each split's first record that the split holds tf.Examples it can check.

    A tf.SequenceExample parses as a tf.Example of its context features; its
    feature_lists would be invisible, so checked features kept there are an error
    rather than a "feature missing" finding.

    Args:
      split_uris: Split name -> split folder.
      features: The checked features.

    Raises:
      ShardError: A split's first record is not a tf.Example, or is a
        tf.SequenceExample holding checked features in its feature_lists.
    """
    for split_uri in split_uris.values():
        found = first_record(split_uri)
        if found is None:
            continue
        shard, record = found
        try:
            sequence_example = tf.train.SequenceExample.FromString(record)
        except message.DecodeError as error:
            raise ShardError(
                f"The first record of shard {shard!r} is not a serialized tf.Example "
                f"({error}). The examples must be TFRecord files of tf.Example, "
                "gzip-compressed or not."
            ) from error
        feature_lists = set(sequence_example.feature_lists.feature_list)
        in_feature_lists = sorted(feature_lists & set(features))
        if in_feature_lists:
            raise ShardError(
                f"Shard {shard!r} holds tf.SequenceExample records, and the checked features "
                f"{in_feature_lists!r} are in their feature_lists, which embedding-guard "
                "cannot read: it checks tf.Example features (a SequenceExample's context "
                "only). Write the indices as tf.Example features, or leave these features "
                "out of `features`."
            )


def _ragged_spec(features: Sequence[str], dtype) -> dict:
    return {name: tf.io.RaggedFeature(dtype, row_splits_dtype=tf.int64) for name in features}


def _column(ragged) -> tuple[np.ndarray, np.ndarray]:
    values = ragged.flat_values.numpy()
    if values.dtype == object:
        values = values.astype(object)
    return values, ragged.row_lengths().numpy()


def _parse_feature_per_example(serialized: np.ndarray, feature: str):
    # Only reached when one batch mixes int64 with other kinds in a feature.
    values, lengths = [], []
    for index, record in enumerate(serialized):
        try:
            example = tf.train.Example.FromString(record)
        except message.DecodeError as error:
            raise InputError(
                f"record {index} of a batch is not a serialized tf.Example ({error}); the "
                "shard holds other data. Pass Examples artifacts of tf.Example only."
            ) from error
        kind = example.features.feature.get(feature)
        row = (
            []
            if kind is None
            else list(getattr(kind, kind.WhichOneof("kind") or "int64_list").value)
        )
        values.extend(row)
        lengths.append(len(row))
    if all(isinstance(v, int) for v in values):
        return np.asarray(values, dtype=np.int64), np.asarray(lengths, dtype=np.int64)
    return np.asarray(values, dtype=object), np.asarray(lengths, dtype=np.int64)


# TensorFlow quotes the bad record in its error message, and fails to decode that
# message when the record is not UTF-8.
_PARSE_ERRORS = (tf.errors.InvalidArgumentError, UnicodeDecodeError)


def parse_batch(serialized, features: Sequence[str]) -> Batch:
    """Parses the checked features of a batch of serialized tf.Examples.

    Args:
      serialized: A 1-D string tensor or array of serialized tf.Examples.
      features: The feature names to parse.

    Returns:
      The parsed batch; a feature absent from an example has no values there.
    """
    num_examples = int(tf.shape(serialized)[0])
    try:
        parsed = tf.io.parse_example(serialized, _ragged_spec(features, tf.int64))
        return Batch(num_examples, {name: _column(parsed[name]) for name in features})
    except _PARSE_ERRORS:
        pass
    columns = {}
    for name in features:
        for dtype in (tf.int64, tf.float32, tf.string):
            try:
                parsed = tf.io.parse_example(serialized, _ragged_spec([name], dtype))
            except _PARSE_ERRORS:
                continue
            columns[name] = _column(parsed[name])
            break
        else:
            records = serialized.numpy() if hasattr(serialized, "numpy") else serialized
            columns[name] = _parse_feature_per_example(records, name)
    return Batch(num_examples, columns)


def read_batches(
    path: str,
    features: Sequence[str],
    batch_size: int = DEFAULT_BATCH_SIZE,
    parse: Callable[[tf.Tensor], Batch] | None = None,
) -> Iterator[Batch]:
    """Yields the checked features of one shard, batch by batch.

    Args:
      path: A TFRecord file of tf.Examples, gzip-compressed or not (detected).
      features: The feature names to parse.
      batch_size: Examples per batch; memory is bounded by one batch.
      parse: Turns a batch of serialized examples into a Batch; default:
        parse_batch of the features. Raw mode passes the transform graph here.

    Yields:
      Parsed batches in file order.

    Raises:
      ShardError: The shard is truncated, corrupt or not a TFRecord file.
    """
    dataset = tf.data.TFRecordDataset(path, compression_type=compression_type(path))
    iterator = iter(dataset.batch(batch_size))
    while True:
        try:
            serialized = next(iterator)
        except StopIteration:
            return
        except (tf.errors.DataLossError, tf.errors.OutOfRangeError) as error:
            raise ShardError(
                f"Shard {path!r} is truncated or corrupt ({op_error_text(error)}). "
                "Re-run the component that wrote it, or remove the shard."
            ) from error
        except tf.errors.OpError as error:
            raise ShardError(
                f"Shard {path!r} cannot be read as TFRecords "
                f"({op_error_text(error)}). The examples must be TFRecord files "
                "of tf.Example, gzip-compressed or not."
            ) from error
        try:
            batch = parse(serialized) if parse else parse_batch(serialized, features)
        except InputError as error:
            raise ShardError(f"Shard {path!r}: {error}") from error
        yield batch
