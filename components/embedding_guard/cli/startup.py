"""Readies the console script's process, which it owns, for one command and its exit.

A process that calls `main()` itself keeps its allocator and collector as they are.
"""

from __future__ import annotations

import ctypes
import gc

from embedding_guard import heavy_imports

# mallopt parameters of glibc's malloc.h.
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


def keep_freed_memory() -> None:
    """Lets the process reuse the memory it frees rather than give it back (glibc).

    Every batch allocates and frees buffers of several MiB. glibc unmaps such
    buffers when they are freed, so each batch page-faults its memory in again,
    and on several threads the faults wait on one another. The console script
    owns its process and exits when the run is done, so it keeps freed memory
    for reuse. C libraries without mallopt are left as they are.
    """
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return
    # 32 MiB is glibc's largest threshold: batches (16 MiB) come from the heap.
    mallopt(_M_MMAP_THRESHOLD, 32 * 1024 * 1024)
    mallopt(_M_TRIM_THRESHOLD, 1024 * 1024 * 1024)


# Set by console_start_up alone: a process that calls main() itself keeps its
# collector as it is.
_collector_paused = False


def console_start_up() -> None:
    """Readies the console script's process, which it owns, for one command.

    It keeps freed memory (keep_freed_memory), and pauses Python's garbage
    collector until the command's imports are done. Importing TensorFlow makes
    millions of objects that live until the exit, and the collector scanned
    them over and over while they were made: about 1 s of a 3-4 s start-up.
    """
    global _collector_paused
    keep_freed_memory()
    heavy_imports.own_process()
    gc.disable()
    _collector_paused = True


def imports_done() -> None:
    """Ends console_start_up's pause, with what start-up made frozen: never scanned again."""
    global _collector_paused
    if _collector_paused:
        gc.freeze()
        gc.enable()
        _collector_paused = False


def console_teardown() -> None:
    """Leaves the objects still alive to the exit unscanned.

    The interpreter's teardown runs the collector over every object left, for
    more than a second once TensorFlow is loaded, after the verdict is printed.
    """
    gc.freeze()
