"""Draws a progress bar per split on a terminal while `check` runs.

rich is imported only when a bar is drawn, so `--help` and runs whose stderr is
no terminal never load it.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator, Mapping
from typing import TextIO

from embedding_guard.reports.text import printable


class Progress:
    """One progress bar per split: examples read, rate, and an ETA once it can be estimated.

    The total number of examples is stored nowhere; it is estimated from the
    shard sizes as soon as one shard is done (examples per byte so far, times the
    split's bytes).

    Args:
      split_uris: Split name -> folder of the splits being validated.
      stream: The terminal to draw on.
    """

    def __init__(self, split_uris: Mapping[str, str], stream: TextIO):
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TaskProgressColumn,
            TextColumn,
            TimeRemainingColumn,
        )

        from embedding_guard.read import files

        self._split_of_shard = {
            shard: split for split, uri in split_uris.items() for shard in files.list_shards(uri)
        }
        shards = list(self._split_of_shard)
        self._shard_bytes = dict(
            zip(shards, files.call_at_once(_size_for_eta, shards), strict=True)
        )
        self._split_bytes = dict.fromkeys(split_uris, 0)
        for shard, split in self._split_of_shard.items():
            self._split_bytes[split] += self._shard_bytes[shard]
        self._examples_in_shard = dict.fromkeys(self._split_of_shard, 0)
        self._done_bytes = dict.fromkeys(split_uris, 0)
        self._done_examples = dict.fromkeys(split_uris, 0)
        self._examples = dict.fromkeys(split_uris, 0)
        self._lock = threading.Lock()
        console = Console(file=stream, force_terminal=True, width=_terminal_width(stream))
        self._bars = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TaskProgressColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeRemainingColumn(),
            console=console,
        )
        self._started = time.monotonic()
        self._tasks = {
            split: self._bars.add_task(printable(split), total=None, rate="")
            for split in sorted(split_uris)
        }
        self._bars.start()

    def add(self, shard: str, num_examples: int, shard_done: bool = False) -> None:
        split = self._split_of_shard.get(shard)
        if split is None:
            return
        with self._lock:
            self._examples_in_shard[shard] += num_examples
            self._examples[split] += num_examples
            total = None
            if shard_done:
                self._done_bytes[split] += self._shard_bytes[shard]
                self._done_examples[split] += self._examples_in_shard[shard]
            if self._done_bytes[split]:
                per_byte = self._done_examples[split] / self._done_bytes[split]
                total = max(self._examples[split], round(per_byte * self._split_bytes[split]))
            seconds = max(time.monotonic() - self._started, 1e-6)
            self._bars.update(
                self._tasks[split],
                completed=self._examples[split],
                total=total,
                rate=f"{self._examples[split] / seconds:,.0f} examples/s",
            )

    def finish(self, *, done: bool = True) -> None:
        """Stops drawing; a run that is done fills every bar, an interrupted one leaves them."""
        with self._lock:
            if done:
                for split, task in self._tasks.items():
                    self._bars.update(
                        task, total=self._examples[split], completed=self._examples[split]
                    )
            self._bars.stop()


def _terminal_width(stream: TextIO) -> int:
    # A pseudo-terminal nobody sized reports 0 columns.
    try:
        columns = os.get_terminal_size(stream.fileno()).columns
    except (OSError, ValueError):
        columns = 0
    return columns or 100


def _size_for_eta(path: str) -> int:
    from embedding_guard.read import files

    try:
        return files.file_size(path)
    except files.ShardError:
        # A size only feeds the ETA; the run itself reports the shard.
        return 0


@contextlib.contextmanager
def progress_on_tty(split_uris: Mapping[str, str], stream: TextIO) -> Iterator[None]:
    """Shows a progress bar per split on stream while the block runs, if it is a TTY."""
    if not stream.isatty():
        yield
        return
    from embedding_guard.run import validation

    progress = Progress(split_uris, stream)
    try:
        with validation.progress_listener(progress.add):
            yield
    except BaseException:
        # A bar at 100 % above "interrupted" would say the split was all read.
        progress.finish(done=False)
        raise
    progress.finish()
