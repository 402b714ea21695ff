"""Imports TensorFlow and TensorFlow Transform, when a run needs them, with the collector paused.

A check of transformed examples imports neither. Raw examples, a model and a
remote path do, in the middle of the run: importing TensorFlow makes millions
of objects, and Python's garbage collector scanned them over and over while
they were made (0.4-0.7 s of CPU on TFX's taxi data in raw mode). The
collector is paused for the import only, then left as the caller had it; in
the console script's own process (`own_process`), what the import made is
frozen too, so that the run's collections never scan it again.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
from collections.abc import Iterator
from types import ModuleType

# Set by the console script alone: a process that calls main() or
# embedding_guard.check itself keeps its collector as it is.
_owned = False


def own_process() -> None:
    """Says the console script owns this process: freeze what the imports make."""
    global _owned
    _owned = True


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Pauses Python's garbage collector for the block; restores its state after."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if _owned:
            gc.freeze()
        if enabled:
            gc.enable()


def tensorflow() -> ModuleType:
    """The tensorflow module, imported with the collector paused if not imported yet."""
    with collector_paused():
        return importlib.import_module("tensorflow")


def tensorflow_transform() -> ModuleType:
    """The tensorflow_transform module (TensorFlow too), imported with the collector paused."""
    with collector_paused():
        return importlib.import_module("tensorflow_transform")
