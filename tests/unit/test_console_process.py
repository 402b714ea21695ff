"""The console script keeps the memory it frees, so batches reuse it without page faults."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

COMPONENTS = Path(__file__).resolve().parents[2] / "components"

# Ten 8 MiB buffers live at once, freed, then allocated and written again, as a
# run does with its batches: the faults of the second round are what it costs.
SECOND_ROUND_FAULTS = """
import resource, sys
if sys.argv[1] == "keep":
    from embedding_guard import cli
    cli.keep_freed_memory()
def write_batches():
    buffers = [bytearray(8 << 20) for _ in range(10)]
    for buffer in buffers:
        buffer[::4096] = b"x" * 2048  # a byte on every page
write_batches()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
write_batches()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _second_round_faults(mode: str) -> int:
    done = subprocess.run(
        [sys.executable, "-c", SECOND_ROUND_FAULTS, mode],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": str(COMPONENTS)},
        timeout=120,
    )
    return int(done.stdout.split()[-1])


def test_freed_batch_buffers_are_reused_without_page_faults():
    default = _second_round_faults("default")
    kept = _second_round_faults("keep")

    # 80 MiB of 4 KiB pages is 20,480 faults when the memory went back to the kernel.
    assert default > 10_000, default
    assert kept < default / 10, (kept, default)
