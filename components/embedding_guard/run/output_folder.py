"""The folder a `check` run publishes its reports into, for the CLI and the API alike.

A run writes into a staging folder of its own inside the output, then moves each
split's reports into place. Everything that could make it write into an input is
refused before anything is read: an output that is, holds or lies inside an
input, and a `Split-<name>` entry in the output that is a file or a link into an
input. Signals wait while reports are moved, so a folder never holds half of
one run's reports and half of another's.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import tempfile
import uuid
from collections.abc import Iterable, Iterator, Mapping
from types import TracebackType

from embedding_guard.errors import InputError
from embedding_guard.read import files, storage
from embedding_guard.reports import report_io
from embedding_guard.reports.text import printable
from embedding_guard.run.offending_examples import OFFENDING_EXAMPLES_DIR

STAGING_PREFIX = ".staging-"

# What an interrupted run's output folder holds, for the one line that says so.
KEPT_BEFORE = "{name} keeps the reports it had before this run"
PUBLISHED = "{name} holds this run's complete reports"


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def _resolved(path: str) -> str:
    return os.path.realpath(path) if storage.is_local(path) else path.rstrip("/")


def check_apart_from_inputs(output: str, inputs: Mapping[str, str | None], name: str) -> None:
    """Refuses an output path that is, holds, or lies inside an input.

    Reports written into a Split-* folder would be read as shards by the Trainer
    and by the next run; an input inside the output would be replaced.

    Args:
      output: The output folder or file.
      inputs: How messages name each input (a flag or a parameter) → its path,
        or None when not given.
      name: How messages name the output (`--output`, `output`).

    Raises:
      InputError: The output overlaps an input.
    """
    resolved_output = _resolved(output)
    for input_name, path in inputs.items():
        if path is None:
            continue
        resolved = _resolved(path)
        if _inside(resolved_output, resolved) or _inside(resolved, resolved_output):
            raise InputError(
                f"{name} {output!r} overlaps {input_name} {path!r}: reports written there "
                "would mix with the inputs (the Trainer would read them as shards). Pick a "
                "path outside every input."
            )


def check_split_entries(folder: str, splits: Iterable[str], name: str) -> None:
    """Refuses a folder whose Split-<name> entries this run could not own.

    A run writes each split's files into folder/Split-<name>/ and replaces its
    offending_examples/ there. A link would carry those writes (and that
    removal) wherever it points, an input included; a file would fail the run
    halfway. Both are refused before anything is read.

    Args:
      folder: The output folder (--output, --offending-examples).
      splits: The splits the run writes.
      name: How messages name the folder.

    Raises:
      InputError: The folder is a file, or an entry is a link or not a folder.
    """
    if not storage.is_local(folder):
        return
    if os.path.lexists(folder) and not os.path.isdir(folder):
        raise InputError(f"{name} {folder!r} is a file, not a folder; pass a folder.")
    for split in splits:
        entry = os.path.join(folder, f"{files.SPLIT_DIR_PREFIX}{split}")
        for path in (entry, os.path.join(entry, OFFENDING_EXAMPLES_DIR)):
            if os.path.islink(path) or (os.path.lexists(path) and not os.path.isdir(path)):
                kind = "a link" if os.path.islink(path) else "not a folder"
                raise InputError(
                    f"{name} {folder!r} holds {os.path.relpath(path, folder)!r}, which is "
                    f"{kind}; this run writes split {split!r} there. Remove it or pick "
                    f"another {name}."
                )


def remove_entry(path: str) -> None:
    """Removes a file, a folder, or a link itself (never what a link points to)."""
    if storage.is_local(path):
        if os.path.islink(path) or not os.path.isdir(path):
            os.unlink(path)
        else:
            shutil.rmtree(path)
    else:
        storage.rmtree(path)


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """Holds Ctrl-C and SIGTERM until the block ends, then delivers them.

    Only the main thread can set handlers; elsewhere the block runs as it is.
    """
    received: list[int] = []
    wanted = (signal.SIGINT, signal.SIGTERM)
    try:
        previous = {
            signum: signal.signal(signum, lambda n, _: received.append(n)) for signum in wanted
        }
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        for number in dict.fromkeys(received):
            signal.raise_signal(number)


class OutputFolder:
    """Where one run writes its reports, then publishes them into the output folder.

    The run writes into a fresh staging folder of its own and reads its verdict
    back from there, so a concurrent run into the same folder cannot hand it
    another verdict. A lock on a local folder keeps a second run out while one
    runs. An interrupted run notes on its KeyboardInterrupt what the folder
    holds (`interrupt.output_state`).

    Args:
      output: The output folder, or None for a scratch folder that is deleted
        afterwards.
      splits: The splits the run will write.
      inputs: How messages name each input → its path (None when not given).
      name: How messages name the output (`--output` in the CLI, `output` in
        the API).
    """

    def __init__(
        self,
        output: str | None,
        splits: Iterable[str],
        inputs: Mapping[str, str | None],
        name: str,
    ) -> None:
        self.output = output
        self.splits = list(splits)
        self.inputs = dict(inputs)
        self.name = name
        self.staging = ""
        self.published = False
        self._lock_handle: int | None = None
        self._created = False

    def __enter__(self) -> OutputFolder:
        if self.output is None:
            self.staging = tempfile.mkdtemp(prefix="embedding-guard-")
            return self
        check_apart_from_inputs(self.output, self.inputs, self.name)
        check_split_entries(self.output, self.splits, self.name)
        try:
            self._created = not storage.exists(self.output)
            storage.makedirs(self.output)
            if storage.is_local(self.output):
                self._lock(self.output)
                self._remove_stale_staging(self.output)
            self.staging = os.path.join(self.output, f"{STAGING_PREFIX}{uuid.uuid4().hex}")
            storage.makedirs(self.staging)
        except InputError:
            self._release()
            raise
        except Exception as error:  # noqa: BLE001 - every I/O failure means the same here
            self._release()
            raise InputError(
                f"{self.name} {self.output!r} cannot be written "
                f"({printable(storage.error_text(error))}); pass a writable folder."
            ) from None
        return self

    def _lock(self, output: str) -> None:
        import fcntl

        # flock on the folder itself: no lock file is left among the reports.
        handle = os.open(output, os.O_RDONLY)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(handle)
            raise InputError(
                f"{self.name} {output!r} is in use by another embedding-guard run; wait for "
                "it to finish, or pass another folder."
            ) from None
        self._lock_handle = handle

    @staticmethod
    def _remove_stale_staging(output: str) -> None:
        # With the folder locked, no other run can be writing: a staging folder
        # left there belongs to a run that was killed.
        for entry in storage.listdir(output):
            if entry.startswith(STAGING_PREFIX):
                # A link named so is removed itself: rmtree through it emptied the
                # folder it pointed to, an input included.
                remove_entry(os.path.join(output, entry))

    def split_dirs(self) -> dict[str, str]:
        """Each split's staging folder, where the run writes its reports."""
        return {
            split: os.path.join(self.staging, f"{files.SPLIT_DIR_PREFIX}{split}")
            for split in self.splits
        }

    def publish(self) -> None:
        """Moves each split's reports from staging into the output, the JSON report last."""
        if self.output is None:
            return
        with signals_deferred():
            for staged in self.split_dirs().values():
                final = os.path.join(self.output, os.path.basename(staged))
                report_io.discard_report(final)
                storage.makedirs(final)
                names = sorted(
                    storage.listdir(staged), key=lambda f: f == report_io.REPORT_JSON_FILE
                )
                for file_name in names:
                    # A folder (offending_examples/) replaces the last run's whole.
                    if storage.isdir(os.path.join(final, file_name)):
                        storage.rmtree(os.path.join(final, file_name))
                    storage.rename(
                        os.path.join(staged, file_name),
                        os.path.join(final, file_name),
                        overwrite=True,
                    )
            self.published = True

    def _release(self) -> None:
        with contextlib.suppress(Exception):
            if self.staging and storage.exists(self.staging):
                storage.rmtree(self.staging)
        with contextlib.suppress(Exception):
            # A folder this run made and left empty (it failed before publishing).
            if self._created and self.output and not storage.listdir(self.output):
                storage.rmtree(self.output)
        if self._lock_handle is not None:
            os.close(self._lock_handle)
            self._lock_handle = None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if isinstance(exc, KeyboardInterrupt) and self.output is not None:
            state = PUBLISHED if self.published else KEPT_BEFORE
            exc.output_state = state.format(name=self.name)  # type: ignore[attr-defined]
        self._release()
        if self.output is not None and isinstance(exc, OSError) and self._under_staging(exc):
            # A report or offending-examples file the run could not write under
            # the output folder: a path too long, a full disk. Bad input, not a bug.
            raise InputError(
                f"{self.name} {self.output!r} cannot be written "
                f"({printable(storage.error_text(exc))}); free space, or pass a "
                "writable folder with a shorter path."
            ) from exc

    def _under_staging(self, exc: OSError) -> bool:
        """Whether exc names a file under this run's staging folder, where it writes."""
        paths = [os.fsdecode(p) for p in (exc.filename, exc.filename2) if p is not None]
        return bool(self.staging) and any(path.startswith(self.staging) for path in paths)
