"""`embedding-guard check` shows examples read per split on a TTY, and nothing otherwise."""

from __future__ import annotations

import os
import pathlib
import pty
import subprocess
import sys
import threading

TESTDATA = pathlib.Path(__file__).resolve().parent / "testdata"
CHECK = [
    os.path.join(os.path.dirname(sys.executable), "embedding-guard"),
    "check",
    "--transform-graph",
    str(TESTDATA / "transform_graph"),
    "--examples",
    str(TESTDATA / "transformed_examples"),
    "--embedding-dim",
    "month_xf=12",
]
# By hand from testdata/make_examples.py: eval 20 examples in 1 shard, test 6 in 1,
# train 10 + 10 in 2.
FINAL_PROGRESS = (
    "\r\x1b[Kexamples read: eval 20 (1/1 shards), test 6 (1/1 shards), train 20 (2/2 shards)"
)


def _read_all(fd: int, chunks: list[bytes]) -> None:
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # EIO once the child has closed the terminal.
            return
        if not chunk:
            return
        chunks.append(chunk)


def test_progress_on_a_terminal():
    controller, terminal = pty.openpty()
    chunks: list[bytes] = []
    # Read while the child writes: a full terminal buffer would block it.
    reader = threading.Thread(target=_read_all, args=(controller, chunks))
    reader.start()
    try:
        result = subprocess.run(
            CHECK, stdout=subprocess.PIPE, stderr=terminal, text=True, timeout=300
        )
    finally:
        os.close(terminal)
        reader.join(timeout=30)
        os.close(controller)

    shown = b"".join(chunks).decode()
    assert result.returncode == 1
    assert shown.startswith("\r\x1b[Kexamples read: ")
    # The terminal turns the final "\n" into "\r\n".
    assert shown.endswith(FINAL_PROGRESS + "\r\n")
    assert "examples read" not in result.stdout


def test_quiet_when_not_a_terminal():
    result = subprocess.run(CHECK, capture_output=True, text=True, timeout=300)

    assert result.returncode == 1
    assert "examples read" not in result.stderr
    assert "\x1b" not in result.stderr + result.stdout
    # city_xf NEGATIVE_INDEX, month_xf and product_xf INDEX_OUT_OF_RANGE.
    assert "split eval: 20 examples, 3 error(s), 2 warning(s) -> BLOCKED" in result.stdout
