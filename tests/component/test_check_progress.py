"""`embedding-guard check` shows a progress bar per split on a TTY, and nothing otherwise."""

from __future__ import annotations

import io
import os
import pathlib
import pty
import re
import subprocess
import sys
import threading

import pytest

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
# train 10 + 10 in 2. Each bar ends at 100% of its split's examples.
FINAL_BARS = {"eval": "20/20", "test": "6/6", "train": "20/20"}


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
    # The last screen, without colours and cursor moves: one line per split.
    plain = re.sub(r"\x1b\[[0-9;?]*[ABJK]", "\n", shown)
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", plain)
    last_lines = {line.split(" ", 1)[0]: line for line in plain.replace("\r", "\n").splitlines()}
    for split, final in FINAL_BARS.items():
        cells = last_lines[split].split()
        assert final in cells, plain[-2000:]
        assert "100%" in cells
        assert "examples/s" in cells
    assert "examples/s" not in result.stdout


def test_quiet_when_not_a_terminal():
    result = subprocess.run(CHECK, capture_output=True, text=True, timeout=300)

    assert result.returncode == 1
    assert "examples/s" not in result.stderr
    assert "\x1b" not in result.stderr + result.stdout
    # city_xf NEGATIVE_INDEX, month_xf and product_xf INDEX_OUT_OF_RANGE.
    assert "split eval: 20 examples, 3 error(s), 2 warning(s) -> BLOCKED" in result.stdout


def test_the_progress_bar_asks_for_shard_sizes_at_once(monkeypatch):
    # On GCS or S3 each stat is a round trip. The stats pass the barrier only if
    # all of them run at the same time; one after another, the first times out.
    from embedding_guard.cli import progress as cli_progress
    from embedding_guard.read import files

    splits = {
        name: TESTDATA / "transformed_examples" / f"Split-{name}" for name in ("eval", "train")
    }
    shards = [path for folder in splits.values() for path in folder.iterdir()]
    together = threading.Barrier(len(shards), timeout=10)

    def stat_all_at_once(path: str) -> int:
        together.wait()
        return 1000

    monkeypatch.setattr(files, "file_size", stat_all_at_once)
    progress = cli_progress.Progress(
        {name: str(folder) for name, folder in splits.items()}, io.StringIO()
    )
    progress.finish()

    # train holds 2 shards, eval 1.
    assert len(shards) == 3
    assert progress._split_bytes == {"eval": 1000, "train": 2000}


class _TerminalStream(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_an_interrupted_run_does_not_fill_its_bars():
    # Filled, a bar above "interrupted" would say the split was all read.
    from embedding_guard.cli import progress as cli_progress
    from embedding_guard.run import validation

    folder = TESTDATA / "transformed_examples" / "Split-train"
    stream = _TerminalStream()
    with (
        pytest.raises(KeyboardInterrupt),
        cli_progress.progress_on_tty({"train": str(folder)}, stream),
    ):
        validation._notify(str(sorted(folder.iterdir())[0]), 4)
        raise KeyboardInterrupt

    shown = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", stream.getvalue())
    assert "4/" in shown
    assert "100%" not in shown and "4/4" not in shown
