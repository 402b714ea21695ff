"""How long the main thread waits for the GIL while the compiled TFRecord framer walks.

Not a test: the test suite proves without a clock that the framer releases the
GIL (tests/unit/test_tfrecord_framing.py). This measures how much of a walk other
threads get: the longest gap between two of the main thread's clock reads, next
to the walk's length. On a quiet machine the longest gap is a scheduler tick or
a switch interval; held through the walk, the GIL would make it the whole walk.

    .venv/bin/python bench/bench_framer_gil.py [--mib 64] [--reps 5]
"""

from __future__ import annotations

import argparse
import threading
import time

import numpy as np

from embedding_guard.read import framing


def measure(data: bytes) -> tuple[float, float]:
    """(longest gap between the main thread's clock reads, walk seconds) for one walk."""
    walking = threading.Event()
    walks: list[tuple[float, float]] = []

    def walk() -> None:
        walking.set()
        start = time.perf_counter()
        framing._tfrecord_framing.find_records(data, 100)
        walks.append((start, time.perf_counter()))

    walker = threading.Thread(target=walk)
    walker.start()
    walking.wait()
    ticks = []
    while walker.is_alive():
        ticks.append(time.perf_counter())
    walker.join()
    ((start, end),) = walks
    gaps = np.diff([start, *[tick for tick in ticks if start < tick < end], end])
    return float(gaps.max()), end - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=64, help="walk this many MiB of empty records")
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    data = b"\x00" * (args.mib << 20)
    for rep in range(args.reps):
        gap, walk = measure(data)
        print(
            f"walk {rep}: {walk * 1000:8.1f} ms, longest gap {gap * 1000:7.2f} ms ({gap / walk:.1%})"
        )


if __name__ == "__main__":
    main()
