"""The one door to files: TFX's filesystem plugins, TensorFlow only for remote paths.

`tfx.dsl.io.fileio` imports TensorFlow, whose gfile plugin it registers for
every path, local ones too: 3-5 s before a file is opened. Local paths (no
`scheme://`) go here through TFX's own `LocalFilesystem` plugin, which needs
no TensorFlow; a remote path (gs://, s3://, hdfs://) imports `fileio` on first
use and goes through the filesystem TFX registers for its scheme, as before.

Every failure is an OSError: a local call raises Python's own, and a remote
one's TensorFlow `OpError` is raised again as a `StorageError`, so callers
catch one type and `error_text` gives its first line for a message.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from tfx.dsl.io import filesystem
from tfx.dsl.io.plugins.local import LocalFilesystem

from embedding_guard import heavy_imports
from embedding_guard.errors import first_line


class StorageError(OSError):
    """A remote filesystem call failed; the message is TensorFlow's first line."""


def is_local(path: str | os.PathLike[str]) -> bool:
    """Whether path is on the local filesystem (no `scheme://`)."""
    return "://" not in os.fspath(path)


def split(path: str) -> tuple[str, str]:
    """(folder, name) of path, as os.path.split, keeping a remote path's `scheme://`.

    os.path.split("gs://x") gives the folder "gs:", a local path: a file meant
    for a remote filesystem would be written into ./gs:/ instead.
    """
    folder, name = os.path.split(path)
    if not is_local(path) and is_local(folder):
        folder = path[: path.index("://") + 3]
    return folder, name


def error_text(error: BaseException) -> str:
    """The first line of what went wrong, for a message that names the file itself."""
    cause = error.__cause__
    if isinstance(error, filesystem.NotFoundError) and isinstance(cause, OSError):
        # LocalFilesystem raises NotFoundError() bare, from the FileNotFoundError.
        error = cause
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return first_line(error)


def _remote(call: Callable[..., Any], *args: Any) -> Any:
    """call(*args) on TensorFlow's filesystem, its OpError raised again as a StorageError."""
    import tensorflow as tf  # noqa: PLC0415 - loaded already: fileio imported it

    try:
        return call(*args)
    except tf.errors.OpError as error:
        raise StorageError(error_text(error)) from error


def _fileio() -> Any:
    # Imported on the first remote path only: it imports TensorFlow, and
    # registers its gfile plugin for the remote schemes.
    with heavy_imports.collector_paused():
        from tfx.dsl.io import fileio  # noqa: PLC0415

    return fileio


class _RemoteFile:
    """A remote file whose read and write failures are StorageErrors."""

    def __init__(self, handle: Any) -> None:
        self._handle = handle

    def read(self, size: int = -1) -> Any:
        return _remote(self._handle.read, size)

    def write(self, data: Any) -> Any:
        return _remote(self._handle.write, data)

    def close(self) -> None:
        _remote(self._handle.close)

    def __enter__(self) -> _RemoteFile:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def open_file(path: str, mode: str = "rb") -> Any:
    """Opens path; closes as a context manager. Raises OSError when it cannot."""
    if is_local(path):
        return LocalFilesystem.open(path, mode)
    return _RemoteFile(_remote(_fileio().open, path, mode))


def exists(path: str) -> bool:
    """Whether path exists (a file or a folder)."""
    return LocalFilesystem.exists(path) if is_local(path) else _remote(_fileio().exists, path)


def isdir(path: str) -> bool:
    """Whether path is a folder."""
    return LocalFilesystem.isdir(path) if is_local(path) else _remote(_fileio().isdir, path)


def listdir(path: str) -> list[str]:
    """The names in the folder at path, without a folder's trailing "/"."""
    names = LocalFilesystem.listdir(path) if is_local(path) else _remote(_fileio().listdir, path)
    return [os.fsdecode(name).rstrip("/") for name in names]


def entries(folder: str) -> list[str]:
    """The paths `folder/*` matches, sorted: every entry, `.`- and `_`-prefixed ones too.

    That is what TFX's Trainer and Transform read from a split folder
    (`io_utils.all_files_pattern` through TensorFlow's glob, which, unlike
    Python's, does not skip hidden names).
    """
    if is_local(folder):
        return sorted(os.path.join(folder, name) for name in listdir(folder))
    matched = _remote(_fileio().glob, os.path.join(folder, "*"))
    return sorted(os.fsdecode(path).rstrip("/") for path in matched)


def size(path: str) -> int:
    """The size of the file at path in bytes. Raises OSError when it cannot be stat'ed."""
    if is_local(path):
        return LocalFilesystem.stat(path).st_size
    return int(_remote(_fileio().stat, path).length)


def makedirs(path: str) -> None:
    """Makes the folder at path and its parents; one that exists is fine."""
    if is_local(path):
        LocalFilesystem.makedirs(path)
    else:
        _remote(_fileio().makedirs, path)


def rename(source: str, target: str, overwrite: bool = False) -> None:
    """Renames source to target (atomic on a local filesystem)."""
    if is_local(source):
        LocalFilesystem.rename(source, target, overwrite)
    else:
        _remote(_fileio().rename, source, target, overwrite)


def copy(source: str, target: str, overwrite: bool = False) -> None:
    """Copies the file at source to target."""
    if is_local(source):
        LocalFilesystem.copy(source, target, overwrite)
    else:
        _remote(_fileio().copy, source, target, overwrite)


def remove(path: str) -> None:
    """Removes the file at path."""
    if is_local(path):
        LocalFilesystem.remove(path)
    else:
        _remote(_fileio().remove, path)


def rmtree(path: str) -> None:
    """Removes the folder at path and everything under it."""
    if is_local(path):
        LocalFilesystem.rmtree(path)
    else:
        _remote(_fileio().rmtree, path)
