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

import hashlib
import os
import re
import uuid
from collections.abc import Mapping

import tensorflow as tf
from tfx.dsl.io import fileio

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


def write_records_atomically(path: str, records: list[bytes]) -> None:
    """Writes records as a gzip TFRecord file at path: to a temporary name, then renamed."""
    temporary = os.path.join(os.path.dirname(path), f".{uuid.uuid4().hex}.tmp")
    try:
        with tf.io.TFRecordWriter(temporary, options="GZIP") as writer:
            for record in records:
                writer.write(record)
        fileio.rename(temporary, path, overwrite=True)
    finally:
        if fileio.exists(temporary):
            fileio.remove(temporary)


def write_split(split_dir: str, accumulator: SplitAccumulator) -> dict[str, str]:
    """Writes one split's kept offending examples under split_dir; returns feature -> file.

    Nothing is written, and no folder made, for a split without any. An earlier
    run's folder there goes first: its file for a feature that has no offending
    example now would mislead.
    """
    written = {}
    folder = os.path.join(split_dir, OFFENDING_EXAMPLES_DIR)
    if fileio.isdir(folder):
        fileio.rmtree(folder)
    for feature, counts in sorted(accumulator.features.items()):
        records = [record for _, _, record in counts.located.examples.records]
        if not records:
            continue
        fileio.makedirs(folder)
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
        if fileio.isdir(folder):
            total += sum(name.endswith(SUFFIX) for name in fileio.listdir(folder))
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
        if fileio.isdir(destination):
            fileio.rmtree(destination)
        if not fileio.isdir(source):
            continue
        fileio.makedirs(destination)
        for name in sorted(fileio.listdir(source)):
            temporary = os.path.join(destination, f".{uuid.uuid4().hex}.tmp")
            try:
                fileio.copy(os.path.join(source, name), temporary, overwrite=True)
                fileio.rename(temporary, os.path.join(destination, name), overwrite=True)
            finally:
                if fileio.exists(temporary):
                    fileio.remove(temporary)
            copied += 1
    return copied
