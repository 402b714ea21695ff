"""Reads the checked features of TFRecord shards of tf.Examples, on every core.

A split is read exactly as TFX's Trainer and Transform read it: every file that
`<split>/*` matches is a shard, hidden and `_`-prefixed ones included, and a
shard is gzip-compressed when its name ends in `.gz` (tfx_bsl's
`detect_compression`).

Records are framed here rather than by TensorFlow's TFRecord reader, which
for an uncompressed shard allocates whatever length a record header claims and
segfaults on a crafted 64 GiB claim. Each claim is checked against what the
file can hold before any memory is set aside for it; gunzipping with zlib and
framing here also measured twice as fast as
`TFRecordDataset(compression_type="GZIP")`, even when Python framed. A gzip
shard is framed by a small C extension without the GIL (in Python where the
install had no C compiler), and framing only notes where records lie:
TensorFlow cuts them out and parses only the checked features, without the
GIL, so shards are framed and batches parsed on a pool of threads and every
core works.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import functools
import itertools
import os
import queue
import re
import stat
import struct
import threading
import zlib
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence
from typing import Any

import google_crc32c
import numpy as np
import tensorflow as tf
from absl import logging
from google.protobuf import message
from tfx.dsl.io import fileio

from embedding_guard.errors import InputError

try:
    from embedding_guard import _tfrecord_framing
except ImportError:  # Installed without a C compiler: Python frames instead.
    _tfrecord_framing = None  # type: ignore[assignment]

DEFAULT_BATCH_SIZE = 50_000
# With 60 KB records, 50,000 to a batch took 6.6 GB. 16 MiB still holds 50,000
# of the usual 100-300 byte Transform records; with 60 KB records peak RSS rose
# by 60 MB from 240 MB to 1.9 GB of examples (32 MiB: 108 MB; by count: 418 MB).
DEFAULT_MAX_BATCH_BYTES = 16 * 1024 * 1024
# Calls to a remote filesystem (GCS, S3) made at once where each is a round trip.
_REMOTE_CALLS_AT_ONCE = 16
# TFX stores each split of an artifact in a folder named Split-<name>.
SPLIT_DIR_PREFIX = "Split-"
GZIP = "GZIP"
UNCOMPRESSED = ""
# tfx_bsl's detect_compression: a `.gz` name means gzip, anything else none.
_GZIP_SUFFIX = ".gz"
# A serialized protobuf message, so a tf.Example, is below 2 GiB.
_MAX_RECORD_BYTES = 2**31 - 1
# Deflate cannot expand data by more than about 1032:1, so a gzip file's
# decompressed content, and any record in it, is at most this many times its size.
_MAX_DEFLATE_RATIO = 1032
_LENGTH = struct.Struct("<Q")
_CRC = struct.Struct("<I")
_HEADER_BYTES = 12  # uint64 length + uint32 masked crc32c of it
_FOOTER_BYTES = 4  # uint32 masked crc32c of the data
_READ_BYTES = 4 * 1024 * 1024
# Compressed bytes fed to zlib at a time: zlib copies the input it has not used
# yet on every call, so a 4 MiB input inflating 4 MiB per call was copied over
# and over, holding the GIL.
_INFLATE_INPUT_BYTES = 256 * 1024
_PROBE_BYTES = 64 * 1024
_CRC_MASK_DELTA = 0xA282EAD8
# TensorFlow wraps eager errors in "{{function_node ...}} ... [Op:...]"; only the
# middle is meant for people.
_OP_ERROR_NOISE = re.compile(r"^\{\{[^}]*\}\}\s*|\s*\[Op:[^\]]*\].*$")
_SPECIAL_KINDS = (
    (stat.S_ISFIFO, "FIFO (named pipe)"),
    (stat.S_ISSOCK, "socket"),
    (stat.S_ISCHR, "character device"),
    (stat.S_ISBLK, "block device"),
)


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


def default_parallelism() -> int:
    """The CPUs this process may run on (its affinity mask), not the machine's count."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return os.cpu_count() or 1


def is_local(path: str) -> bool:
    """Whether path is on the local filesystem (no `scheme://`), where os.stat works."""
    return "://" not in path


def _stat_mode(path: str, error: Callable[[str | None], Exception]) -> int:
    """os.stat(path).st_mode, or error(why it failed) raised in one line, without the OSError."""
    try:
        return os.stat(path).st_mode
    except OSError as failure:
        raise error(failure.strerror) from None


def _special_kind(mode: int) -> str | None:
    for is_kind, kind in _SPECIAL_KINDS:
        if is_kind(mode):
            return kind
    return None


def check_regular_file(path: str, parameter: str) -> None:
    """Raises InputError unless path is an existing regular file.

    A FIFO, socket or device would block a reader forever or stream without end,
    so it is refused before anything opens it.

    Args:
      path: The file.
      parameter: The flag or argument that named it, for the message
        (e.g. "--schema").

    Raises:
      InputError: The path is missing, a folder, or a special file.
    """
    if not is_local(path):
        if not fileio.exists(path):
            raise InputError(f"{parameter} {path!r} does not exist; pass an existing file.")
        if fileio.isdir(path):
            raise InputError(f"{parameter} {path!r} is a folder; pass a file.")
        return
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise InputError(f"{parameter} {path!r} does not exist; pass an existing file.") from None
    except OSError as error:
        raise InputError(
            f"{parameter} {path!r} cannot be examined ({error.strerror}); pass a readable file."
        ) from None
    if stat.S_ISDIR(mode):
        raise InputError(f"{parameter} {path!r} is a folder; pass a file.")
    kind = _special_kind(mode)
    if kind is not None:
        raise InputError(
            f"{parameter} {path!r} is a {kind}, not a regular file, and reading it could "
            "block forever; pass a regular file."
        )


def check_regular_files(folder: str, what: str) -> None:
    """Refuses FIFOs, sockets and devices anywhere under a local input folder.

    Reading one would block forever or never end (a FIFO, /dev/zero), so an
    artifact holding one is refused before anything opens it.

    Args:
      folder: The folder, e.g. a transform_graph artifact.
      what: How messages name it, e.g. "transform graph".

    Raises:
      InputError: A file under folder is not a regular file.
    """
    if not is_local(folder) or not os.path.isdir(folder):
        return
    for directory, _, names in os.walk(folder):
        for name in sorted(names):
            _refuse_special_file(os.path.join(directory, name), what)


def _refuse_special_file(path: str, what: str) -> None:
    """Raises InputError if the file at path, part of a `what` artifact, is not a regular file."""
    mode = _stat_mode(
        path,
        lambda why: InputError(
            f"The {what} file {path!r} cannot be examined ({why}); restore it, or re-run the "
            "component that wrote it."
        ),
    )
    kind = _special_kind(mode)
    if kind is not None:
        raise InputError(
            f"The {what} file {path!r} is a {kind}, not a regular file, and reading it could "
            "block forever; restore the file, or re-run the component that wrote it."
        )


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


def call_at_once(call: Callable[[str], Any], paths: Sequence[str]) -> list[Any]:
    """call(path) for every path, _REMOTE_CALLS_AT_ONCE at a time, in the order of paths.

    On GCS or S3 each call is a round trip: one after another, a thousand shards
    took a thousand before any reading began.
    """
    if not paths:
        return []
    with concurrent.futures.ThreadPoolExecutor(
        _REMOTE_CALLS_AT_ONCE, "embedding_guard_remote"
    ) as pool:
        return list(pool.map(call, paths))


def _entry_kind(path: str) -> str | None:
    """What a split folder's entry is if it is not a shard file ("a folder", "FIFO ..."), or None.

    Raises:
      ShardError: A local entry cannot be stat'ed (a broken link, no permission).
    """
    if not is_local(path):
        # Remote filesystems hold files and folders only.
        return "a folder" if fileio.isdir(path) else None
    mode = _stat_mode(
        path,
        lambda why: ShardError(
            f"Shard {path!r} cannot be opened ({why}). Check that it exists and is "
            "readable, or remove it from the split folder."
        ),
    )
    return "a folder" if stat.S_ISDIR(mode) else _special_kind(mode)


def list_shards(split_uri: str) -> list[str]:
    """Lists the files TFX's Trainer reads from a split folder, sorted.

    That is `tfx.utils.io_utils.all_files_pattern(split_uri)` through
    `fileio.glob`: every file, `_`- and `.`-prefixed ones too. Folders inside the
    split are no shards (TensorFlow fails on them).

    Args:
      split_uri: A `Split-<name>` folder.

    Returns:
      Paths of the shard files.

    Raises:
      ShardError: The folder does not exist, or holds a FIFO, socket or device.
    """
    if not fileio.isdir(split_uri):
        raise ShardError(
            f"Split folder {split_uri!r} does not exist; the examples artifact does not "
            "hold this split. Check the artifact's split_names or exclude_splits."
        )
    # Same as tfx.utils.io_utils.all_files_pattern, without importing tfx.utils.
    matched = sorted(path.rstrip("/") for path in fileio.glob(os.path.join(split_uri, "*")))
    remote = [path for path in matched if not is_local(path)]
    remote_kinds = dict(zip(remote, call_at_once(_entry_kind, remote), strict=True))
    shards, special = [], []
    for path in matched:
        kind = remote_kinds[path] if path in remote_kinds else _entry_kind(path)
        if kind is None:
            shards.append(path)
        else:
            special.append(f"{os.path.basename(path)!r} ({kind})")
    if special:
        raise ShardError(
            f"Split folder {split_uri!r} holds entries that are not regular files: "
            f"{', '.join(special)}. The Trainer reads every entry of a split as a shard and "
            "fails or blocks on them; remove them from the split folder."
        )
    return shards


def op_error_text(error: tf.errors.OpError) -> str:
    """The first line of a TensorFlow error without its function-node and op decoration."""
    lines = (error.message or "").splitlines() or [type(error).__name__]
    return _OP_ERROR_NOISE.sub("", lines[0]) or lines[0]


def compression_type(path: str) -> str:
    """The compression TFX's readers assume for a shard: "GZIP" for `.gz` names, else ""."""
    return GZIP if path.endswith(_GZIP_SUFFIX) else UNCOMPRESSED


def _masked_crc(data: bytes) -> int:
    crc = google_crc32c.value(data)
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + _CRC_MASK_DELTA) & 0xFFFFFFFF


def _read_error(path: str, detail: str) -> ShardError:
    return ShardError(
        f"Shard {path!r} is truncated or corrupt ({detail}). Re-run the component that "
        "wrote it, or remove the shard."
    )


def _not_tfrecords(path: str) -> ShardError:
    return ShardError(
        f"Shard {path!r} cannot be read as TFRecords (neither as a gzip-compressed nor "
        "as an uncompressed TFRecord file). The examples must be TFRecord files of "
        "tf.Example, gzip-compressed or not."
    )


def _open(path: str) -> Any:
    try:
        return fileio.open(path, "rb")
    except tf.errors.OpError as error:
        raise ShardError(
            f"Shard {path!r} cannot be opened ({op_error_text(error)}). Check that it exists "
            "and is readable, or remove it from the split folder."
        ) from error


def _read(f: Any, size: int, path: str) -> bytes:
    """Reads up to size bytes of an open shard; a read error names the shard."""
    try:
        return f.read(size)
    except tf.errors.OpError as error:
        raise ShardError(
            f"Shard {path!r} cannot be read ({op_error_text(error)}). Check that it is "
            "readable, or remove it from the split folder."
        ) from error


def _file_chunks(f: Any, first: bytes, read_bytes: int, path: str) -> Iterator[bytes]:
    """An open shard's chunks of read_bytes, starting with first, the bytes already read."""
    if first:
        yield first
        while chunk := _read(f, read_bytes, path):
            yield chunk


def _gunzipped(path: str, chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Decompresses gzip members one after another, as TensorFlow's reader does."""
    inflater = zlib.decompressobj(wbits=31)
    any_input = False
    for chunk in chunks:
        any_input = True
        view = memoryview(chunk)
        for offset in range(0, len(view), _INFLATE_INPUT_BYTES):
            pending: bytes | memoryview = view[offset : offset + _INFLATE_INPUT_BYTES]
            while pending:
                try:
                    # Bounded output: a small input can inflate a thousandfold.
                    out = inflater.decompress(pending, _READ_BYTES)
                except zlib.error as error:
                    raise _read_error(path, f"gzip: {error}") from None
                if out:
                    yield out
                if inflater.eof:
                    # What follows a gzip member is the next member of a concatenated file.
                    pending = inflater.unused_data
                    if pending:
                        inflater = zlib.decompressobj(wbits=31)
                else:
                    pending = inflater.unconsumed_tail
    if any_input and not inflater.eof:
        raise _read_error(path, "the gzip stream ends early")


def _valid_first_header(data: bytes) -> bool:
    """Whether data starts a plausible TFRecord stream (empty counts as one)."""
    if not data:
        return True
    if len(data) < _HEADER_BYTES:
        return False
    (crc,) = _CRC.unpack_from(data, 8)
    return _masked_crc(data[:8]) == crc


def _first_bytes(start: bytes, compression: str) -> bytes | None:
    """The first bytes of the records under a compression, or None if it does not fit."""
    start = start[:_PROBE_BYTES]
    if compression == UNCOMPRESSED or not start:
        return start[:_HEADER_BYTES]
    try:
        return zlib.decompressobj(wbits=31).decompress(start, _HEADER_BYTES)
    except zlib.error:
        return None


def shard_compression(path: str) -> str:
    """Decides a shard's compression: from its name, then by trying the other.

    Raises:
      ShardError: The file cannot be read, or fits neither compression.
    """
    with _open(path) as f:
        return _compression(path, _read(f, _PROBE_BYTES, path))


def _compression(path: str, start: bytes) -> str:
    """Decides the compression of the shard at path from its first bytes, start.

    The first record's header checksum tells whether a guess fits; the file's
    first bytes alone do not (an uncompressed record of 35,615 bytes starts with
    the gzip magic 1f 8b).

    Raises:
      ShardError: The file fits neither compression.
    """
    named = compression_type(path)
    other = UNCOMPRESSED if named == GZIP else GZIP
    for compression in (named, other):
        first = _first_bytes(start, compression)
        if first is not None and _valid_first_header(first):
            if compression != named:
                logging.warning(
                    "Shard %r is %s although its name says otherwise; TFX's Trainer decides "
                    "compression by the .gz suffix and will fail on it.",
                    path,
                    "gzip-compressed" if compression == GZIP else "not gzip-compressed",
                )
            return compression
    raise _not_tfrecords(path)


def file_size(path: str) -> int:
    """The size in bytes of the shard at path.

    Raises:
      ShardError: It cannot be stat'ed (missing, unreadable, a broken link).
    """
    try:
        return int(fileio.stat(path).length)
    except tf.errors.OpError as error:
        raise ShardError(
            f"Shard {path!r} cannot be opened ({op_error_text(error)}). Check that it exists "
            "and is readable, or remove it from the split folder."
        ) from error


@dataclasses.dataclass(frozen=True)
class SerializedBatch(Sequence[bytes]):
    """Serialized records held as spans of one buffer, not as an object each.

    TensorFlow cuts the records out of the buffer (`tf.strings.substr`) without
    the GIL. A bytes object per record, and a tensor made from their list, held
    the GIL for as long as framing did and kept the second core waiting.

    Attributes:
      buffer: The bytes the records lie in.
      starts: Where each record starts in buffer.
      lengths: Each record's length.
    """

    buffer: bytes
    starts: np.ndarray
    lengths: np.ndarray

    def __len__(self) -> int:
        return len(self.starts)

    def __iter__(self) -> Iterator[bytes]:
        buffer = self.buffer
        for start, length in zip(self.starts.tolist(), self.lengths.tolist(), strict=True):
            yield buffer[start : start + length]

    def __getitem__(self, index: int) -> bytes:  # type: ignore[override]
        start = int(self.starts[index])
        return self.buffer[start : start + int(self.lengths[index])]

    def tensor(self) -> tf.Tensor:
        """The records as a 1-D string tensor."""
        # Inside a list, bytes convert to a tensor five times faster than alone.
        return tf.strings.substr(tf.constant([self.buffer]), self.starts, self.lengths)


class _BatchBuilder:
    """Collects framed records into batches bounded by count and by bytes."""

    def __init__(self, batch_size: int, max_batch_bytes: int):
        self._batch_size = batch_size
        self._max_batch_bytes = max_batch_bytes
        # (window, starts, lengths) of the records taken from each window.
        self._pieces: list[tuple[bytes, np.ndarray, np.ndarray]] = []
        self._count = 0
        self._bytes = 0

    def add(self, window: bytes, headers: np.ndarray, end: int) -> Iterator[SerializedBatch]:
        """Adds the records whose headers start at `headers` in window, the last ending at end.

        Yields:
          Every batch that is full, in order.
        """
        lengths = np.diff(headers, append=end) - (_HEADER_BYTES + _FOOTER_BYTES)
        starts = headers + _HEADER_BYTES
        first, total = 0, len(headers)
        while first < total:
            taken = lengths[first : first + self._batch_size - self._count]
            room = self._max_batch_bytes - self._bytes
            fits = int(np.searchsorted(np.cumsum(taken), room, side="right"))
            if fits == 0:
                if self._count:
                    yield self.flush()
                    continue
                # A record larger than a whole batch makes a batch of its own.
                fits = 1
            last = first + fits
            self._pieces.append((window, starts[first:last], lengths[first:last]))
            self._count += fits
            self._bytes += int(taken[:fits].sum())
            first = last
            if first < total:
                yield self.flush()

    def flush(self) -> SerializedBatch:
        """Returns the records collected so far as one batch, and starts a new one."""
        pieces = self._pieces
        self._pieces, self._count, self._bytes = [], 0, 0
        if len(pieces) == 1:
            return SerializedBatch(*pieces[0])
        # Copying the records of several windows into one buffer costs less than a
        # TensorFlow op per window, each a round trip for the GIL.
        parts, starts, offset = [], [], 0
        for window, window_starts, window_lengths in pieces:
            begin = int(window_starts[0])
            end = int(window_starts[-1] + window_lengths[-1])
            parts.append(memoryview(window)[begin:end])
            starts.append(window_starts + (offset - begin))
            offset += end - begin
        return SerializedBatch(
            b"".join(parts),
            np.concatenate(starts),
            np.concatenate([piece[2] for piece in pieces]),
        )

    def __bool__(self) -> bool:
        return self._count > 0


def serialized_batches(
    path: str,
    batch_size: int = DEFAULT_BATCH_SIZE,
    max_batch_bytes: int = DEFAULT_MAX_BATCH_BYTES,
    *,
    window_bytes: int = _READ_BYTES,
) -> Generator[SerializedBatch, None, None]:
    """Yields a shard's serialized records in batches, checking every record header.

    A batch holds at most batch_size records and, unless a single record is
    larger, at most max_batch_bytes of them. A header that claims more bytes than
    the file can hold is an error before anything is allocated for it. In an
    uncompressed shard every record's data checksum is verified, as TensorFlow
    does; in a gzip shard the gzip checksum covers every byte.

    The file is read window_bytes at a time, and records are framed in windows
    of at least window_bytes of (decompressed) data or the rest of the shard:
    reading the first record needs only a small window.

    Raises:
      ShardError: The shard is truncated, corrupt or not a TFRecord file.
    """
    # One open per shard: on GCS or S3 each open is a round trip.
    with _open(path) as f:
        yield from _framed_batches(path, f, batch_size, max_batch_bytes, window_bytes)


def _framed_batches(
    path: str, f: Any, batch_size: int, max_batch_bytes: int, window_bytes: int
) -> Iterator[SerializedBatch]:
    """serialized_batches of the open shard f at path."""
    first = _read(f, max(window_bytes, _PROBE_BYTES), path)
    compression = _compression(path, first)
    shard_bytes = file_size(path)
    chunks: Iterable[bytes] = _file_chunks(f, first, window_bytes, path)
    if compression == GZIP:
        chunks = _gunzipped(path, chunks)
        frame = _GzipFramer(path, min(_MAX_RECORD_BYTES, shard_bytes * _MAX_DEFLATE_RATIO))
    else:
        frame = _CheckedFramer(path, shard_bytes)
    batches = _BatchBuilder(batch_size, max_batch_bytes)
    data = b""
    waiting: list[bytes] = []
    waiting_bytes = 0
    need = _HEADER_BYTES
    for chunk in itertools.chain(chunks, [b""]):
        waiting.append(chunk)
        waiting_bytes += len(chunk)
        # Framing windows of a few MiB keeps the work per window small beside the
        # work per record.
        if chunk and len(data) + waiting_bytes < max(need, window_bytes):
            continue
        data = b"".join([data, *waiting])
        waiting, waiting_bytes = [], 0
        headers, pos, need = frame(data)
        if len(headers):
            yield from batches.add(data, headers, pos)
        data = data[pos:]
    if data:
        raise _read_error(path, f"the last record, at byte {frame.consumed}, is cut off")
    if batches:
        yield batches.flush()


class _GzipFramer:
    """Finds the records in decompressed TFRecord data; the gzip checksum covers their bytes.

    Attributes:
      consumed: Stream bytes framed so far.
    """

    def __init__(self, path: str, record_limit: int):
        self._path = path
        self._record_limit = record_limit
        self.consumed = 0

    def __call__(self, data: bytes) -> tuple[np.ndarray, int, int]:
        """Returns (where each whole record's header starts, bytes they take, bytes needed next)."""
        find_records = (
            _find_records_in_python if _tfrecord_framing is None else _tfrecord_framing.find_records
        )
        headers, pos, need, claim = find_records(data, self._record_limit)
        if claim is not None:
            raise _claim_error(self._path, self.consumed + pos, claim)
        self.consumed += pos
        return np.frombuffer(headers, dtype=np.int64), pos, need


def _find_records_in_python(data: bytes, record_limit: int) -> tuple[bytes, int, int, int | None]:
    """_tfrecord_framing.find_records in Python: the same results, in the same form.

    Returns:
      (where each whole record's header starts, as native int64 bytes; the bytes
      those records take; the bytes the next record needs; None, or the length
      the next header claims when it does not fit and exceeds record_limit).
    """
    headers: list[int] = []
    append = headers.append
    unpack_length = _LENGTH.unpack_from
    # A record fits if pos + length + 16 <= len(data); the 16 is taken off here
    # rather than added for every record.
    last_end = len(data) - _HEADER_BYTES - _FOOTER_BYTES
    pos = 0
    need = _HEADER_BYTES
    claim = None
    try:
        while True:
            (length,) = unpack_length(data, pos)
            if pos + length > last_end:
                # Only a record that is not all in memory yet can claim more than
                # the file holds.
                if length > record_limit:
                    claim = length
                else:
                    need = length + _HEADER_BYTES + _FOOTER_BYTES
                break
            append(pos)
            pos += length + _HEADER_BYTES + _FOOTER_BYTES
    except struct.error:
        # Fewer than 8 bytes are left: the next header is not all here yet.
        pass
    return np.asarray(headers, dtype=np.int64).tobytes(), pos, need, claim


class _CheckedFramer(_GzipFramer):
    """Finds the records of an uncompressed TFRecord file, verifying each one's checksum."""

    def __init__(self, path: str, file_size: int):
        super().__init__(path, file_size)
        self._file_size = file_size

    def __call__(self, data: bytes) -> tuple[np.ndarray, int, int]:
        headers: list[int] = []
        unpack_length, unpack_crc = _LENGTH.unpack_from, _CRC.unpack_from
        end = len(data)
        pos = 0
        need = _HEADER_BYTES
        while pos + _HEADER_BYTES <= end:
            (length,) = unpack_length(data, pos)
            # A damaged length shows as a bad data checksum (or an impossible claim),
            # so the header's own checksum is left to the first record's probe.
            record_end = pos + _HEADER_BYTES + length + _FOOTER_BYTES
            if self.consumed + record_end > self._file_size:
                raise _claim_error(self._path, self.consumed + pos, length)
            if record_end > end:
                need = record_end - pos
                break
            record = data[pos + _HEADER_BYTES : record_end - _FOOTER_BYTES]
            (data_crc,) = unpack_crc(data, record_end - _FOOTER_BYTES)
            if _masked_crc(record) != data_crc:
                raise _read_error(self._path, f"bad record checksum at byte {self.consumed + pos}")
            headers.append(pos)
            pos = record_end
        self.consumed += pos
        return np.asarray(headers, dtype=np.int64), pos, need


def _claim_error(path: str, offset: int, length: int) -> ShardError:
    return _read_error(
        path,
        f"the record header at byte {offset} claims {length:,} bytes, more than the file holds",
    )


def first_record(shards: Iterable[str]) -> tuple[str, bytes] | None:
    """Returns (shard, record) for the first record of shards, or None if they hold none.

    Raises:
      ShardError: The shard holding it is truncated, corrupt or not TFRecords.
    """
    for shard in shards:
        # One record: framing the default window, some 20,000 records, took 30 ms
        # on every run before any reading began.
        batches = serialized_batches(shard, batch_size=1, window_bytes=_PROBE_BYTES)
        try:
            for batch in batches:
                return shard, batch[0]
        finally:
            batches.close()
    return None


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
        found = first_record(shards)
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
        if present is None:
            # A tf.Example's features are, on the wire, a SequenceExample's context.
            present = set(sequence_example.context.feature)
    return present


@functools.lru_cache(maxsize=256)
def _string_tensor(strings: tuple[str, ...]) -> tf.Tensor:
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


def _parse_feature_per_example(
    serialized: Sequence[bytes], feature: str
) -> tuple[np.ndarray, np.ndarray]:
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


def parse_batch(serialized: Any, features: Sequence[str]) -> Batch:
    """Parses the checked features of a batch of serialized tf.Examples.

    Args:
      serialized: A 1-D string tensor, array or list of serialized tf.Examples.
      features: The feature names to parse.

    Returns:
      The parsed batch; a feature absent from an example has no values there.
    """
    if not tf.is_tensor(serialized):
        serialized = tf.constant(serialized, dtype=tf.string, shape=[len(serialized)])
    num_examples = int(serialized.shape[0])
    try:
        return Batch(num_examples, _parse_columns(serialized, features, tf.int64))
    except _PARSE_ERRORS:
        pass
    columns = {}
    for name in features:
        for dtype in (tf.int64, tf.float32, tf.string):
            try:
                columns.update(_parse_columns(serialized, [name], dtype))
            except _PARSE_ERRORS:
                continue
            break
        else:
            columns[name] = _parse_feature_per_example(serialized.numpy(), name)
    return Batch(num_examples, columns)


class _Parser:
    """Parses batches on any thread; a caller's parse is warmed up on one thread first.

    Raw mode's parse loads the transform graph on its first call, which must not
    run twice at once.
    """

    def __init__(self, path_features: Sequence[str], parse: Callable | None):
        self._features = list(path_features)
        self._parse = parse
        self._warm = parse is None
        self._lock = threading.Lock()

    def __call__(self, path: str, records: SerializedBatch) -> Batch:
        try:
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

    Yields:
      (shard, batch) for every batch, and (shard, None) once a shard is done.

    Raises:
      ShardError: A shard is truncated, corrupt or not TFRecords of tf.Example.
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
    parser = _Parser(features, parse)
    if parallelism == 1 or not shards:
        for shard in shards:
            for records in serialized_batches(shard, batch_size, max_batch_bytes):
                yield shard, parser(shard, records)
            yield shard, None
        return
    yield from _read_in_parallel(list(shards), parser, batch_size, max_batch_bytes, parallelism)


def _read_in_parallel(
    shards: list[str], parser: _Parser, batch_size: int, max_batch_bytes: int, parallelism: int
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
        try:
            for records in serialized_batches(shard, batch_size, max_batch_bytes):
                while not in_flight.acquire(timeout=0.1):
                    if stop.is_set():
                        return
                if stop.is_set():
                    return
                future = parse_pool.submit(parser, shard, records)
                future.add_done_callback(functools.partial(_put, results, (shard, number)))
                number += 1
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


def read_batches(
    path: str,
    features: Sequence[str],
    batch_size: int = DEFAULT_BATCH_SIZE,
    parse: Callable[[tf.Tensor], Batch] | None = None,
    *,
    max_batch_bytes: int = DEFAULT_MAX_BATCH_BYTES,
    parallelism: int | None = None,
) -> Iterator[Batch]:
    """Yields the checked features of one shard, batch by batch, in file order.

    Raises:
      ShardError: The shard is truncated, corrupt or not a TFRecord file.
    """
    for _, batch in read_shards(
        [path],
        features,
        batch_size=batch_size,
        max_batch_bytes=max_batch_bytes,
        parallelism=parallelism,
        parse=parse,
    ):
        if batch is not None:
            yield batch
