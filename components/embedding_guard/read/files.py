"""Finds and examines the files a run reads, before anything opens them.

A split is read exactly as TFX's Trainer and Transform read it: every file that
`<split>/*` matches is a shard, hidden and `_`-prefixed ones included. Folders,
FIFOs, sockets and devices are refused up front, since reading one would fail,
block forever or never end. Paths with a `scheme://` (GCS, S3) are remote: there
only files and folders exist, and each call is a round trip, so calls are made
many at once.
"""

from __future__ import annotations

import concurrent.futures
import os
import stat
from collections.abc import Callable, Sequence
from typing import Any

from embedding_guard.errors import InputError
from embedding_guard.read import storage

# Calls to a remote filesystem (GCS, S3) made at once where each is a round trip.
_REMOTE_CALLS_AT_ONCE = 16
# TFX stores each split of an artifact in a folder named Split-<name>.
SPLIT_DIR_PREFIX = "Split-"
_SPECIAL_KINDS = (
    (stat.S_ISFIFO, "FIFO (named pipe)"),
    (stat.S_ISSOCK, "socket"),
    (stat.S_ISCHR, "character device"),
    (stat.S_ISBLK, "block device"),
)


class ShardError(InputError):
    """A shard cannot be read; the message names the shard."""


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


def check_regular_file(path: str, parameter: str, wanted: str) -> None:
    """Raises InputError unless a local path is an existing regular file; remote paths pass.

    Reading a FIFO or a device would block or never end, so it is refused
    before anything opens it. A remote path that is no file fails when opened.

    Args:
      path: The file.
      parameter: How the caller names the path in messages (e.g. "--schema").
      wanted: What to pass instead, after "a" (e.g. "schema.pbtxt file").

    Raises:
      InputError: The local path is missing, a folder, or not a regular file.
    """
    if not storage.is_local(path):
        return
    if not os.path.exists(path):
        raise InputError(f"{parameter} {path!r} does not exist; pass a {wanted}.")
    if os.path.isdir(path):
        raise InputError(f"{parameter} {path!r} is a folder; pass the {wanted} inside it.")
    if not stat.S_ISREG(os.stat(path).st_mode):
        raise InputError(
            f"{parameter} {path!r} is not a regular file (a FIFO, socket or device); pass a "
            f"{wanted}."
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
    if not storage.is_local(folder) or not os.path.isdir(folder):
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
    if not storage.isdir(examples_dir):
        raise ShardError(
            f"Examples folder {examples_dir!r} does not exist; pass the folder that "
            "holds the Split-<name> folders."
        )
    splits = {}
    for name in sorted(storage.listdir(examples_dir)):
        path = os.path.join(examples_dir, name)
        if name.startswith(SPLIT_DIR_PREFIX) and storage.isdir(path):
            splits[name[len(SPLIT_DIR_PREFIX) :]] = path
    return splits


def split_of(shard: str) -> str | None:
    """The split a shard belongs to, from its Split-<name> folder, or None outside one."""
    folder = os.path.basename(os.path.dirname(shard.rstrip("/")))
    if folder.startswith(SPLIT_DIR_PREFIX) and len(folder) > len(SPLIT_DIR_PREFIX):
        return folder[len(SPLIT_DIR_PREFIX) :]
    return None


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
    if not storage.is_local(path):
        # Remote filesystems hold files and folders only.
        return "a folder" if storage.isdir(path) else None
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
    TensorFlow's glob (`storage.entries`): every file, `_`- and `.`-prefixed
    ones too. Folders inside the split are no shards (TensorFlow fails on them).

    Args:
      split_uri: A `Split-<name>` folder.

    Returns:
      Paths of the shard files.

    Raises:
      ShardError: The folder does not exist, or holds a FIFO, socket or device.
    """
    if not storage.isdir(split_uri):
        raise ShardError(
            f"Split folder {split_uri!r} does not exist; the examples artifact does not "
            "hold this split. Check the artifact's split_names or exclude_splits."
        )
    matched = storage.entries(split_uri)
    remote = [path for path in matched if not storage.is_local(path)]
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


def file_size(path: str) -> int:
    """The size in bytes of the shard at path.

    Raises:
      ShardError: It cannot be stat'ed (missing, unreadable, a broken link).
    """
    try:
        return storage.size(path)
    except OSError as error:
        raise cannot_open(path, error) from error


def cannot_open(path: str, error: BaseException) -> ShardError:
    """The error for a shard that could not be opened or stat'ed, naming it and the fix."""
    return ShardError(
        f"Shard {path!r} cannot be opened ({storage.error_text(error)}). Check that it exists "
        "and is readable, or remove it from the split folder."
    )
