"""Writes the whole offending examples a run kept, as gzip TFRecords a user opens with tf.data.

Per split and checked feature, the counting core keeps up to
`offending_examples_limit` records holding a negative, too large or non-integer
value of the feature, the earliest first, byte-identical to the input records
(`verdict.offenders`). They go to `<split report folder>/offending_examples/
<feature>.tfrecord.gz`, one file per feature, each written whole to a temporary
name and then renamed, so a reader never sees half a file. At most
`offenders.MAX_EXAMPLE_BYTES` (16 MiB) of records per split and feature.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import re
import struct
import uuid
from collections.abc import Iterable, Mapping

import google_crc32c

from embedding_guard.read import storage
from embedding_guard.verdict.core import SplitAccumulator

OFFENDING_EXAMPLES_DIR = "offending_examples"
SUFFIX = ".tfrecord.gz"
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


def file_name(feature: str) -> str:
    """The file of a feature's offending examples; a name unsafe on disk gets a hash."""
    safe = _UNSAFE.sub("_", feature)
    if safe != feature or safe.startswith("."):
        safe = f"{safe}-{hashlib.sha256(feature.encode()).hexdigest()[:8]}"
    return safe + SUFFIX


def _masked_crc(data: bytes) -> bytes:
    """TFRecord's checksum: crc32c, rotated right by 15 bits plus a constant, little-endian."""
    crc = google_crc32c.value(data)
    return struct.pack("<I", (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF)


def tfrecord_bytes(records: Iterable[bytes]) -> bytes:
    """The records framed as a TFRecord file writes them (tf.io.TFRecordWriter's format).

    Each record is its uint64 length, the length's masked crc32c, the data and
    the data's masked crc32c; TensorFlow is not needed to write them.
    """
    framed = []
    for record in records:
        length = struct.pack("<Q", len(record))
        framed += [length, _masked_crc(length), record, _masked_crc(record)]
    return b"".join(framed)


def write_records_atomically(path: str, records: list[bytes]) -> None:
    """Writes records as a gzip TFRecord file at path: to a temporary name, then renamed."""
    temporary = os.path.join(storage.split(path)[0], f".{uuid.uuid4().hex}.tmp")
    try:
        with storage.open_file(temporary, "wb") as f:
            # mtime 0: the same records give the same file.
            f.write(gzip.compress(tfrecord_bytes(records), mtime=0))
        storage.rename(temporary, path, overwrite=True)
    finally:
        if storage.exists(temporary):
            storage.remove(temporary)


def write_split(split_dir: str, accumulator: SplitAccumulator) -> dict[str, str]:
    """Writes one split's kept offending examples under split_dir; returns feature -> file.

    Nothing is written, and no folder made, for a split without any. An earlier
    run's folder there goes first: its file for a feature that has no offending
    example now would mislead.
    """
    written = {}
    folder = os.path.join(split_dir, OFFENDING_EXAMPLES_DIR)
    if storage.isdir(folder):
        storage.rmtree(folder)
    for feature, counts in sorted(accumulator.features.items()):
        records = [record for _, _, record in counts.located.examples.records]
        if not records:
            continue
        storage.makedirs(folder)
        path = os.path.join(folder, file_name(feature))
        write_records_atomically(path, records)
        written[feature] = path
    return written


def write_all(
    split_counts: list[tuple[str, SplitAccumulator]], output_dirs: Mapping[str, str]
) -> None:
    """Writes the kept offending examples of every split into its report folder."""
    for split, accumulator in split_counts:
        write_split(output_dirs[split], accumulator)


def count_files(split_dirs: Mapping[str, str]) -> int:
    """The offending-example files in the report folders of split_dirs."""
    total = 0
    for split_dir in split_dirs.values():
        folder = os.path.join(split_dir, OFFENDING_EXAMPLES_DIR)
        if storage.isdir(folder):
            total += sum(name.endswith(SUFFIX) for name in storage.listdir(folder))
    return total


def copy_split_examples(split_dirs: Mapping[str, str], target: str) -> int:
    """Copies each split's offending examples to target/Split-<name>/offending_examples/.

    The target's folder of a split is replaced whole: an earlier run's file for a
    feature that has no offending examples now would mislead. Each file is
    copied to a temporary name and renamed.

    Returns:
      The files copied.
    """
    copied = 0
    for split, split_dir in sorted(split_dirs.items()):
        source = os.path.join(split_dir, OFFENDING_EXAMPLES_DIR)
        destination = os.path.join(target, f"Split-{split}", OFFENDING_EXAMPLES_DIR)
        if storage.isdir(destination):
            storage.rmtree(destination)
        if not storage.isdir(source):
            continue
        storage.makedirs(destination)
        for name in sorted(storage.listdir(source)):
            temporary = os.path.join(destination, f".{uuid.uuid4().hex}.tmp")
            try:
                storage.copy(os.path.join(source, name), temporary, overwrite=True)
                storage.rename(temporary, os.path.join(destination, name), overwrite=True)
            finally:
                if storage.exists(temporary):
                    storage.remove(temporary)
            copied += 1
    return copied
