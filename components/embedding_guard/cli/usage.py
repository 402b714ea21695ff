"""What every command shares: its exit codes, UsageError, and checks of input paths.

Nothing here imports TensorFlow at import time, so that `--help` answers at once.
"""

from __future__ import annotations

import os

from embedding_guard.errors import InputError

EXIT_CLEAN = 0
EXIT_BLOCKED = 1
EXIT_USAGE = 2
EXIT_INTERNAL_ERROR = 3
# What a shell reports for a process ended by SIGINT (128 + 2).
EXIT_INTERRUPTED = 130
# What a shell reports for a process ended by SIGTERM (128 + 15).
EXIT_TERMINATED = 143


class UsageError(InputError):
    """Bad arguments or unreadable input; the message names the path or argument."""


def is_remote(path: str) -> bool:
    """Whether path names a remote filesystem (`scheme://`, e.g. GCS or S3)."""
    # Imported here: TFX's filesystem plugins, which `--help` need not wait for.
    from embedding_guard.read import storage

    return not storage.is_local(path)


def existing_folder(flag: str, path: str, what: str) -> str:
    """Checks that a local input folder exists and is a folder; remote paths pass.

    Args:
      flag: How messages name the path, e.g. "--examples".
      path: The folder.
      what: What to pass instead, e.g. "the examples artifact folder".

    Returns:
      path.

    Raises:
      UsageError: A local path is missing or a file.
    """
    if is_remote(path):
        return path
    if not os.path.exists(path):
        raise UsageError(f"{flag} {path!r} does not exist; pass {what}.")
    if not os.path.isdir(path):
        raise UsageError(f"{flag} {path!r} is a file, not a folder; pass {what}.")
    return path
