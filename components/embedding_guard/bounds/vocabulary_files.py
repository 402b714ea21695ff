"""Reads Transform's vocabulary assets as TensorFlow's lookup tables read them.

A vocabulary file in transform_fn/assets is what a lookup table is built from:
its entries (as TextFileInitializer or a tfrecord_gzip dataset reads them) are the
table's size, and an empty file, an empty line or a key held twice make the table
fail to build. transformed_metadata/asset_map names the files by vocab_filename.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping

from embedding_guard.bounds.graph_derivation import GraphAnalysisError
from embedding_guard.read import storage

ASSETS_DIR = "assets"
TFRECORD_GZIP_SUFFIX = ".tfrecord.gz"
TEXT = "text"
TFRECORD_GZIP = "tfrecord_gzip"
# TextFileIndex.WHOLE_LINE: the key is the whole line.
WHOLE_LINE = -2


def read_asset_map(transformed_metadata_dir: str | None) -> dict[str, str] | None:
    """Reads transformed_metadata/asset_map (vocab_filename -> asset file), None if absent.

    Raises:
      GraphAnalysisError: The file is not JSON, or not an object of strings.
    """
    if transformed_metadata_dir is None:
        return None
    path = os.path.join(transformed_metadata_dir, "asset_map")
    if not storage.exists(path):
        return None
    if storage.isdir(path):
        raise GraphAnalysisError(
            f"{path!r} is a folder, not Transform's asset_map JSON file; re-run Transform."
        )
    try:
        with storage.open_file(path, "rb") as f:
            mapping = json.loads(f.read().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise GraphAnalysisError(
            f"{path!r} is not valid UTF-8 JSON ({error}); the transform graph is damaged: "
            "re-run Transform."
        ) from error
    if not isinstance(mapping, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in mapping.items()
    ):
        raise GraphAnalysisError(
            f"{path!r} must be a JSON object mapping vocabulary names to asset file names, "
            f"got {_clip(mapping)!r}; the transform graph is damaged: re-run Transform."
        )
    escaping = sorted(v for v in mapping.values() if os.path.basename(v) != v or v in ("", ".."))
    if escaping:
        # Asset names are file names inside transform_fn/assets; a path would make
        # the validator read (and quote in messages) a file outside the graph.
        raise GraphAnalysisError(
            f"{path!r} maps vocabularies to {escaping!r}, which are not file names inside "
            "transform_fn/assets; the transform graph is damaged: re-run Transform."
        )
    return mapping


def _clip(value: object) -> str:
    text = json.dumps(value)
    return text if len(text) <= 80 else text[:77] + "..."


def vocabulary_name_of_asset(asset: str, asset_map: Mapping[str, str] | None) -> str:
    """The vocab_filename behind an asset file: asset_map's key, else the file's stem as TFT names it."""
    for name, file_name in (asset_map or {}).items():
        if file_name == asset:
            return name
    return asset[: -len(TFRECORD_GZIP_SUFFIX)] if asset.endswith(TFRECORD_GZIP_SUFFIX) else asset


def vocabulary_entries(path: str, file_format: str) -> list[bytes]:
    """The keys a lookup table built from the file holds, as TensorFlow reads them.

    TextFileInitializer reads line by line and drops one trailing "\\r" of each
    line (CRLF files), keeps a lone "\\r" inside a line, and fails on empty lines;
    tfrecord_gzip vocabularies hold one key per record.

    Raises:
      GraphAnalysisError: The file cannot be read, or TensorFlow could not build a
        table from it (an empty line).
    """
    if storage.isdir(path):
        raise GraphAnalysisError(
            f"Vocabulary file {path!r} is a folder; the transform graph is damaged: restore "
            "the transform_fn/assets folder, or re-run Transform."
        )
    if file_format == TFRECORD_GZIP:
        import tensorflow as tf  # noqa: PLC0415

        entries = []
        try:
            for batch in tf.data.TFRecordDataset(path, compression_type="GZIP").batch(100_000):
                entries.extend(batch.numpy().tolist())
        except tf.errors.OpError as error:
            raise GraphAnalysisError(
                f"Vocabulary file {path!r} cannot be read as gzip TFRecords "
                f"({error.message.splitlines()[0]}); re-run Transform."
            ) from error
        return entries
    with storage.open_file(path, "rb") as f:
        lines = f.read().split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    entries = [line[:-1] if line.endswith(b"\r") else line for line in lines]
    for number, entry in enumerate(entries, 1):
        if entry == b"":
            raise GraphAnalysisError(
                f"Vocabulary file {path!r} has an empty line (line {number}), so TensorFlow "
                "cannot build its lookup table ('empty line found'). Transform never writes "
                "one: the file was edited or damaged; re-run Transform."
            )
    return entries


def first_duplicate(entries: list[bytes]) -> tuple[bytes, int, int] | None:
    """(entry, first line, second line) of the first key held twice, or None."""
    if len(set(entries)) == len(entries):
        return None
    first_seen: dict[bytes, int] = {}
    for number, entry in enumerate(entries, 1):
        if entry in first_seen:
            return entry, first_seen[entry], number
        first_seen[entry] = number
    return None


def table_keys(
    entries: list[bytes],
    path: str,
    *,
    key_index: int = WHOLE_LINE,
    delimiter: str = "\t",
    declared_size: int | None = None,
) -> list[bytes]:
    """The keys a text-file table holds, as InitializeTableFromTextFileV2 reads them.

    With `vocab_size` set (declared_size) TensorFlow reads that many first lines
    and no more, and fails when the file has fewer. With key_index >= 0 a key is
    that column of the line split on `delimiter` (store_frequency's "freq token"
    lines: column 1 split on " "), and a line with too few columns fails.

    Args:
      entries: The file's lines (vocabulary_entries).
      path: The file, for messages.
      key_index: -2 (the whole line) or the key's column.
      delimiter: The column separator when key_index >= 0.
      declared_size: The initializer's vocab_size attribute, None when unset.

    Raises:
      GraphAnalysisError: TensorFlow would fail to build the table.
    """
    if declared_size is not None:
        if declared_size > len(entries):
            raise GraphAnalysisError(
                f"Vocabulary file {path!r} has {len(entries)} lines but its lookup table "
                f"is built with vocab_size={declared_size!r}, so TensorFlow cannot "
                f"initialize it ('Invalid vocab_size ... expected {declared_size} but got "
                f"{len(entries)}'). Pass vocab_size <= {len(entries)} to the "
                "TextFileInitializer, or re-run Transform."
            )
        entries = entries[:declared_size]
    if key_index == WHOLE_LINE:
        return entries
    separator = delimiter.encode("utf-8")
    keys = []
    for number, line in enumerate(entries, 1):
        columns = line.split(separator)
        if len(columns) <= key_index:
            raise GraphAnalysisError(
                f"Vocabulary file {path!r} line {number} ({line[:80]!r}) has "
                f"{len(columns)} column(s) split on {delimiter!r}, but its lookup table reads "
                f"keys from column {key_index}, so TensorFlow cannot initialize it ('Invalid "
                "number of columns'). The file was edited or damaged: re-run Transform."
            )
        keys.append(columns[key_index])
    return keys


def count_vocabulary(
    path: str,
    file_format: str,
    name: str,
    *,
    key_index: int = WHOLE_LINE,
    delimiter: str = "\t",
    declared_size: int | None = None,
) -> int:
    """Entries of a vocabulary file as its lookup table would hold them.

    Args:
      path: The asset file.
      file_format: "text" or "tfrecord_gzip".
      name: The vocabulary's name, for messages.
      key_index: For text files, -2 (whole line) or the key's column.
      delimiter: For text files with key_index >= 0, the column separator.
      declared_size: For text files, the initializer's vocab_size when set.

    Raises:
      GraphAnalysisError: The file is empty, TensorFlow could not build a table
        from it, or it holds a key twice (TensorFlow fails with 'HashTable has
        different value for same key').
    """
    entries = vocabulary_entries(path, file_format)
    unit = "record" if file_format == TFRECORD_GZIP else "line"
    if not entries:
        raise GraphAnalysisError(
            f"Vocabulary {name!r} ({path!r}) is empty. Transform never writes an empty "
            "vocabulary (it adds a placeholder entry), so the file was truncated or "
            "replaced: re-run Transform, or restore the transform_fn/assets folder."
        )
    if file_format != TFRECORD_GZIP:
        entries = table_keys(
            entries, path, key_index=key_index, delimiter=delimiter, declared_size=declared_size
        )
    duplicate = first_duplicate(entries)
    if duplicate is not None:
        entry, first, second = duplicate
        raise GraphAnalysisError(
            f"Vocabulary {name!r} ({path!r}) holds {entry!r} twice ({unit}s {first} and "
            f"{second}) as TensorFlow reads it (a line's trailing '\\r' dropped), so no "
            "lookup table can be built from it (TensorFlow fails with 'HashTable has "
            "different value for same key'). Transform never writes an entry twice: the "
            "file was edited or damaged; re-run Transform."
        )
    return len(entries)
