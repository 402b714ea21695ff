"""Reads the checked features of TFRecord shards of tf.Examples, on every core.

Shards are framed (`framing`) and their batches parsed on a pool of threads
by the compiled parser (`example_parsing`), or by TensorFlow, imported only
for a batch that parser hands back. The first record of each split is checked
to be a tf.Example before the split is read (`example_protos`), and every
record as it is read (`sequence_example_error`): a tf.SequenceExample parses
as a tf.Example of its context, so checked features in its feature_lists would
silently count as missing.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import functools
import os
import queue
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from google.protobuf import message

from embedding_guard.errors import InputError
from embedding_guard.read import example_parsing, example_protos, files, framing
from embedding_guard.read.files import ShardError
from embedding_guard.read.framing import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_MAX_BATCH_BYTES,
    SerializedBatch,
)

if TYPE_CHECKING:
    import tensorflow as tf


@dataclasses.dataclass(frozen=True)
class Batch:
    """The checked features of a batch of examples.

    Attributes:
      num_examples: Examples in the batch.
      columns: feature -> (flat values, values per example).
      raw_columns: In raw mode, feature -> the raw values its indices were made
        from, shaped like columns.
      first_record: The index in its shard of the batch's first record, from 0.
      records: The batch's serialized records when the reader keeps them
        (`read_shards(keep_records=True)`), else None.
    """

    num_examples: int
    columns: dict[str, tuple[np.ndarray, np.ndarray]]
    raw_columns: dict[str, tuple[np.ndarray, np.ndarray]] = dataclasses.field(default_factory=dict)
    first_record: int = 0
    records: SerializedBatch | None = None


def default_parallelism() -> int:
    """The CPUs this process may run on (its affinity mask), not the machine's count."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return os.cpu_count() or 1


def check_record_format(
    split_shards: Mapping[str, Sequence[str]], features: Sequence[str]
) -> set[str] | None:
    """Checks on each split's first record that the split holds tf.Examples it can check.

    A tf.SequenceExample parses as a tf.Example of its context features; its
    feature_lists would be invisible, so checked features kept there are an error
    rather than a "feature missing" finding.

    Args:
      split_shards: Split name -> its shards.
      features: The checked features.

    Returns:
      The feature names of the first example of the first split that has one
      (raw_mode.detect_kind decides from them), or None if every split is empty.

    Raises:
      ShardError: A split's first record is not a tf.Example, or is a
        tf.SequenceExample holding checked features in its feature_lists.
    """
    present = None
    for shards in split_shards.values():
        found = framing.first_record(shards)
        if found is None:
            continue
        shard, record = found
        try:
            # TensorFlow's tf.train.SequenceExample, without importing TensorFlow.
            sequence_example = example_protos.parse("SequenceExample", record)
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
        if present is None:
            # A tf.Example's features are, on the wire, a SequenceExample's context.
            present = set(sequence_example.context.feature)
    return present


# Every tf.Example TensorFlow serializes is, on the wire, one length-delimited
# field 1 (its Features) and nothing else. A SequenceExample with feature_lists
# also has field 2, which TensorFlow's Example parser skips without a word.
_FEATURES_TAG = 0x0A
_FEATURE_LISTS_FIELD = 2
# A record is below 2 GiB, so its field lengths take at most 5 varint bytes.
_MAX_LENGTH_BYTES = 5
_VARINT, _FIXED64, _DELIMITED, _FIXED32 = 0, 1, 2, 5


def _records_beyond_one_features_field(records: SerializedBatch) -> np.ndarray:
    """Positions of the non-empty records that are not exactly one field 1, vectorized.

    A handful of numpy operations per batch, whatever its size: every record
    TensorFlow writes as a tf.Example passes, so Python looks at none of them.
    """
    data = np.frombuffer(records.buffer, dtype=np.uint8)
    starts = records.starts.astype(np.int64)
    lengths = records.lengths.astype(np.int64)
    if not len(data) or not len(starts):
        return np.flatnonzero(lengths > 0)
    last = len(data) - 1
    tag = data[np.minimum(starts, last)]
    # A record of one field 1 is its tag, the varint of the field's length, and
    # that many bytes: what is left after taking them all off must be 0.
    remaining = lengths - 1
    more = np.ones(len(starts), dtype=bool)
    for k in range(_MAX_LENGTH_BYTES):
        byte = data[np.minimum(starts + 1 + k, last)].astype(np.int64)
        remaining -= np.where(more, ((byte & 0x7F) << (7 * k)) + 1, 0)
        more &= byte >= 0x80
        if not more.any():
            break
    one_field = (tag == _FEATURES_TAG) & ~more & (remaining == 0)
    return np.flatnonzero((lengths > 0) & ~one_field)


def _varint(record: bytes, pos: int) -> tuple[int, int]:
    """The varint at pos and the position after it; IndexError if the record ends first."""
    value = shift = 0
    while True:
        byte = record[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def _feature_lists_bytes(record: bytes) -> bytes:
    """The serialized feature_lists of a record read as a tf.SequenceExample, b"" if none.

    Walks only the record's top-level fields; a record that is no protobuf gives
    b"", and the Example parser reports it.
    """
    pieces = []
    pos = 0
    try:
        while pos < len(record):
            key, pos = _varint(record, pos)
            field, wire_type = key >> 3, key & 7
            if wire_type == _VARINT:
                _, pos = _varint(record, pos)
            elif wire_type == _FIXED64:
                pos += 8
            elif wire_type == _FIXED32:
                pos += 4
            elif wire_type == _DELIMITED:
                size, pos = _varint(record, pos)
                if field == _FEATURE_LISTS_FIELD:
                    pieces.append(record[pos : pos + size])
                pos += size
            else:  # Groups, or no protobuf at all.
                return b""
    except IndexError:
        return b""
    # Serialized messages of one type, joined, parse as their merge.
    return b"".join(pieces)


def sequence_example_error(
    shard: str, records: SerializedBatch, first_number: int, features: Sequence[str]
) -> ShardError | None:
    """The error for the first record of a batch that keeps checked features in feature_lists.

    Only records that are more than one Features field, which no tf.Example
    TensorFlow writes is, are examined in Python.

    Args:
      shard: The shard the records come from.
      records: A batch of its records.
      first_number: The number, counting from 1, of the batch's first record in the shard.
      features: The checked features.

    Returns:
      The error naming the split, the shard, the record and the features, or
      None when no record of the batch is such a tf.SequenceExample.
    """
    suspects = _records_beyond_one_features_field(records)
    if not len(suspects):
        return None
    names = [(name, name.encode()) for name in features]
    for position in suspects.tolist():
        lists = _feature_lists_bytes(records[position])
        # The names' bytes appear in the feature_lists of any record holding them.
        if not lists or not any(encoded in lists for _, encoded in names):
            continue
        try:
            held = set(example_protos.parse("FeatureLists", lists).feature_list)
        except message.DecodeError:
            continue
        in_lists = [name for name, _ in names if name in held]
        if in_lists:
            split = files.split_of(shard)
            where = f"split {split!r}, " if split is not None else ""
            return ShardError(
                f"In {where}shard {shard!r}, record {first_number + position:,} (counting "
                f"from 1) is a tf.SequenceExample whose feature_lists hold the checked "
                f"features {in_lists!r}, which embedding-guard cannot read: it checks "
                "tf.Example features (a SequenceExample's context only). Write the indices "
                "as tf.Example features, or leave these features out of `features`."
            )
    return None


@functools.lru_cache(maxsize=256)
def _string_tensor(strings: tuple[str, ...]) -> tf.Tensor:
    import tensorflow as tf  # noqa: PLC0415 - only batches the compiled parser hands back

    # Python lists, an empty one above all, send the op down TensorFlow's slow
    # path, which converts every argument again on each call, holding the GIL.
    # Made eagerly even inside a trace, so that the cache never holds a graph's tensor.
    with tf.init_scope():
        return tf.constant(strings, dtype=tf.string, shape=[len(strings)])


def _parse_columns(
    serialized: tf.Tensor, features: Sequence[str], dtype: Any
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Parses features as ragged values of dtype: feature -> (flat values, values per example).

    The raw op, because tf.io.parse_example builds and validates a RaggedTensor
    per feature in Python, a dozen small ops each, all holding the GIL.
    """
    import tensorflow as tf  # noqa: PLC0415 - only batches the compiled parser hands back

    no_keys = _string_tensor(())
    parsed = tf.raw_ops.ParseExampleV2(
        serialized=serialized,
        names=no_keys,
        sparse_keys=no_keys,
        dense_keys=no_keys,
        ragged_keys=_string_tensor(tuple(features)),
        dense_defaults=[],
        num_sparse=0,
        sparse_types=[],
        ragged_value_types=[dtype] * len(features),
        ragged_split_types=[tf.int64] * len(features),
        dense_shapes=[],
    )
    return {
        name: (values.numpy(), np.diff(row_splits.numpy()))
        for name, values, row_splits in zip(
            features, parsed.ragged_values, parsed.ragged_row_splits, strict=True
        )
    }


def _parse_errors() -> tuple[type[Exception], ...]:
    """The errors of a TensorFlow parse that a parse of another kind may avoid."""
    import tensorflow as tf  # noqa: PLC0415 - only batches the compiled parser hands back

    # TensorFlow quotes the bad record in its error message, and fails to decode
    # that message when the record is not UTF-8.
    return (tf.errors.InvalidArgumentError, UnicodeDecodeError)


# A locator feature's kind, by name, as the last batch found it: an id is text or an int.
_LOCATOR_KINDS: dict[str, Any] = {}


def parse_any_column(serialized: tf.Tensor, feature: str) -> tuple[np.ndarray, np.ndarray]:
    """One feature of any kind (an identifying feature): (flat values, values per example).

    The kind the last batch had is tried first, so a batch costs one parse.
    """
    import tensorflow as tf  # noqa: PLC0415 - serialized is a tensor: loaded already

    parse_errors = _parse_errors()
    last = _LOCATOR_KINDS.get(feature, tf.string)
    for dtype in dict.fromkeys((last, tf.string, tf.int64, tf.float32)):
        try:
            column = _parse_columns(serialized, [feature], dtype)[feature]
        except parse_errors:
            continue
        _LOCATOR_KINDS[feature] = dtype
        return column
    return example_parsing.column_per_example(serialized.numpy(), feature)


def parse_batch(serialized: Any, features: Sequence[str]) -> Batch:
    """Parses the checked features of a batch of serialized tf.Examples.

    Args:
      serialized: A 1-D string tensor, array or list of serialized tf.Examples.
      features: The feature names to parse.

    Returns:
      The parsed batch; a feature absent from an example has no values there.
    """
    import tensorflow as tf  # noqa: PLC0415 - only batches the compiled parser hands back

    parse_errors = _parse_errors()
    if not tf.is_tensor(serialized):
        serialized = tf.constant(serialized, dtype=tf.string, shape=[len(serialized)])
    num_examples = int(serialized.shape[0])
    try:
        return Batch(num_examples, _parse_columns(serialized, features, tf.int64))
    except parse_errors:
        pass
    columns = {}
    for name in features:
        for dtype in (tf.int64, tf.float32, tf.string):
            try:
                columns.update(_parse_columns(serialized, [name], dtype))
            except parse_errors:
                continue
            break
        else:
            columns[name] = example_parsing.column_per_example(serialized.numpy(), name)
    return Batch(num_examples, columns)


class _Parser:
    """Parses batches on any thread; a caller's parse is warmed up on one thread first.

    Raw mode's parse loads the transform graph on its first call, which must not
    run twice at once.
    """

    def __init__(
        self, path_features: Sequence[str], parse: Callable | None, keep_records: bool = False
    ):
        self._features = list(path_features)
        self._parse = parse
        self._keep_records = keep_records
        self._warm = parse is None
        self._lock = threading.Lock()
        self._python_records_left = example_parsing.PYTHON_PARSE_MAX_RECORDS

    def _take_python_records(self, records: int) -> bool:
        """Whether a batch of records may be parsed in Python, out of this read's allowance."""
        with self._lock:
            if records > self._python_records_left:
                return False
            self._python_records_left -= records
            return True

    def __call__(self, path: str, records: SerializedBatch, first_number: int = 1) -> Batch:
        """_batch, with where the batch lies and, when kept, its records."""
        batch = self._batch(path, records, first_number)
        return dataclasses.replace(
            batch,
            first_record=first_number - 1,
            records=records if self._keep_records else None,
        )

    def _batch(self, path: str, records: SerializedBatch, first_number: int) -> Batch:
        """Parses one batch of the shard at path, whose first record has first_number.

        Raises:
          ShardError: The batch cannot be parsed, or holds a tf.SequenceExample
            with checked features in its feature_lists.
        """
        error = sequence_example_error(path, records, first_number, self._features)
        if error is not None:
            raise error
        try:
            if self._parse is None:
                # In C (floats and bytes of a small batch in Python) when every
                # record allows; TensorFlow parses the rest.
                columns = example_parsing.columns_without_tensorflow(
                    records.buffer,
                    records.starts,
                    records.lengths,
                    self._features,
                    self._take_python_records,
                )
                if columns is not None:
                    return Batch(len(records), columns)
            serialized = records.tensor()
            if self._parse is None:
                return parse_batch(serialized, self._features)
            if self._warm:
                return self._parse(serialized)
            with self._lock:
                batch = self._parse(serialized)
                self._warm = True
                return batch
        except InputError as error:
            raise ShardError(f"Shard {path!r}: {error}") from error


def _check_positive(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise InputError(f"{name} must be a positive integer, got {value!r}; pass 1 or more.")
    return int(value)


_DONE = object()
# Batches framed but not yet counted, per thread: enough to keep every thread busy.
_BATCHES_IN_FLIGHT_PER_THREAD = 3


def read_shards(
    shards: Sequence[str],
    features: Sequence[str],
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    max_batch_bytes: int = DEFAULT_MAX_BATCH_BYTES,
    parallelism: int | None = None,
    parse: Callable[[tf.Tensor], Batch] | None = None,
    keep_records: bool = False,
    tallies: dict[str, framing.ReadTally] | None = None,
) -> Iterator[tuple[str, Batch | None]]:
    """Yields the checked features of shards, read and parsed on several threads.

    Up to `parallelism` shards are framed at once, one thread each, and their
    batches parsed on `parallelism` threads, so one large shard is parsed in
    parallel too. Each shard's batches come in file order; shards interleave in
    whatever order their batches are parsed. At most 4 x parallelism batches are
    in memory at once besides the one the caller holds: 3 per thread framed and
    waiting to be parsed or taken, and one per frame thread waiting for room.

    Args:
      shards: TFRecord files of tf.Examples, each once.
      features: The feature names to parse.
      batch_size: Most examples per batch.
      max_batch_bytes: Most serialized bytes per batch (a larger single record
        makes a batch of its own).
      parallelism: Threads to use; default: the CPUs this process may use, read
        at call time.
      parse: Turns a batch of serialized examples into a Batch; default:
        parse_batch of the features. Raw mode passes the transform graph here.
      keep_records: Keep each batch's serialized records in Batch.records.
      tallies: If given, shard -> what was read of it (records, bytes) is put
        here; a shard's tally is complete when (shard, None) is yielded.

    Yields:
      (shard, batch) for every batch, and (shard, None) once a shard is done.

    Raises:
      ShardError: A shard is truncated, corrupt or not TFRecords of tf.Example,
        or holds a tf.SequenceExample with checked features in its feature_lists.
      InputError: batch_size, max_batch_bytes or parallelism is not positive.
      ValueError: A shard is listed twice.
    """
    batch_size = _check_positive("batch_size", batch_size)
    max_batch_bytes = _check_positive("max_batch_bytes", max_batch_bytes)
    parallelism = _check_positive(
        "parallelism", default_parallelism() if parallelism is None else parallelism
    )
    if len(set(shards)) != len(shards):
        raise ValueError(f"read_shards: a shard is listed twice in {list(shards)!r}")
    parser = _Parser(features, parse, keep_records)
    tallies = {} if tallies is None else tallies
    for shard in shards:
        tallies[shard] = framing.ReadTally()
    if parallelism == 1 or not shards:
        for shard in shards:
            first_number = 1
            for records in framing.serialized_batches(
                shard, batch_size, max_batch_bytes, tally=tallies[shard]
            ):
                yield shard, parser(shard, records, first_number)
                first_number += len(records)
            yield shard, None
        return
    yield from _read_in_parallel(
        list(shards), parser, batch_size, max_batch_bytes, parallelism, tallies
    )


def _read_in_parallel(
    shards: list[str],
    parser: _Parser,
    batch_size: int,
    max_batch_bytes: int,
    parallelism: int,
    tallies: dict[str, framing.ReadTally],
) -> Iterator[tuple[str, Batch | None]]:
    # Batches are handed on as soon as they are parsed, in file order within a
    # shard but in any order across shards: taking the shards in turn left a core
    # idle whenever the shard whose turn it was lagged behind.
    in_flight = threading.BoundedSemaphore(_BATCHES_IN_FLIGHT_PER_THREAD * parallelism)
    stop = threading.Event()
    # (shard, batch number, future | _DONE | exception)
    results: queue.Queue = queue.Queue()
    parse_pool = concurrent.futures.ThreadPoolExecutor(parallelism, "embedding_guard_parse")
    frame_pool = concurrent.futures.ThreadPoolExecutor(
        min(parallelism, len(shards)), "embedding_guard_frame"
    )

    def frame(shard: str) -> None:
        number = 0
        first_number = 1
        try:
            for records in framing.serialized_batches(
                shard, batch_size, max_batch_bytes, tally=tallies[shard]
            ):
                while not in_flight.acquire(timeout=0.1):
                    if stop.is_set():
                        return
                if stop.is_set():
                    return
                future = parse_pool.submit(parser, shard, records, first_number)
                future.add_done_callback(functools.partial(_put, results, (shard, number)))
                number += 1
                first_number += len(records)
            results.put((shard, number, _DONE))
        except BaseException as error:  # noqa: BLE001 - handed to the consumer
            results.put((shard, number, error))

    for shard in shards:
        frame_pool.submit(frame, shard)
    # Per shard still being read: the batches that came before their turn.
    arrived: dict[str, dict[int, Any]] = {shard: {} for shard in shards}
    next_number = dict.fromkeys(shards, 0)
    try:
        while arrived:
            shard, number, item = results.get()
            if isinstance(item, BaseException):
                raise item
            ready = arrived[shard]
            ready[number] = item
            while next_number[shard] in ready:
                item = ready.pop(next_number[shard])
                if item is _DONE:
                    del arrived[shard]
                    yield shard, None
                    break
                next_number[shard] += 1
                in_flight.release()
                yield shard, item.result()
    finally:
        stop.set()
        frame_pool.shutdown(wait=True, cancel_futures=True)
        parse_pool.shutdown(wait=True, cancel_futures=True)


def _put(results: queue.Queue, key: tuple[str, int], future: concurrent.futures.Future) -> None:
    results.put((*key, future))
