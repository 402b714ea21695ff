"""The console script keeps the memory it frees, so batches reuse it without page faults."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

COMPONENTS = Path(__file__).resolve().parents[2] / "components"
MIB = 1 << 20

# Ten 8 MiB buffers live at once, freed, then allocated and written again, as a
# run does with its batches. Measured: the resident memory the first round
# freed and still holds, and the page faults of the second round.
BATCH_ROUNDS = """
import json, os, resource, sys
if sys.argv[1] == "keep":
    from embedding_guard.cli import startup
    startup.keep_freed_memory()
def resident():
    # os.read of a few bytes: no buffer from malloc among the batches' memory.
    fd = os.open("/proc/self/statm", os.O_RDONLY)
    statm = os.read(fd, 200)
    os.close(fd)
    return int(statm.split()[1]) * PAGE
PAGE = os.sysconf("SC_PAGE_SIZE")
def write_batches():
    buffers = [bytearray(8 << 20) for _ in range(10)]
    for buffer in buffers:
        buffer[::4096] = b"x" * 2048  # a byte on every page
    return buffers
buffers = write_batches()
written = resident()
del buffers
freed = resident()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
write_batches()
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
print(json.dumps({"given_back": written - freed, "faults": faults}))
"""


def _batch_rounds(mode: str) -> dict[str, int]:
    done = subprocess.run(
        [sys.executable, "-c", BATCH_ROUNDS, mode],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": str(COMPONENTS)},
        timeout=120,
    )
    return json.loads(done.stdout.splitlines()[-1])


def test_freed_batch_buffers_are_reused_without_page_faults():
    default = _batch_rounds("default")
    kept = _batch_rounds("keep")

    # By default glibc maps each 8 MiB buffer on its own and unmaps it when it is
    # freed: the 80 MiB leave the process, and the next round faults them in again.
    assert default["given_back"] >= 72 * MIB, default
    # Kept, they stay the process's, resident: not a page of the 80 MiB (20,480
    # pages of 4 KiB) has to be faulted in again. The bounds are absolute, far
    # from both: a few pages of Python's own, against 20,480.
    assert kept["given_back"] < 8 * MIB, kept
    assert kept["faults"] < 200, kept
