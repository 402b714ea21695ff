"""The compiled TFRecord framer finds what the Python one and a brute-force walk find.

`_tfrecord_framing.find_records` (C, without the GIL) and
`framing._find_records_in_python` (the fallback for an install without a C
compiler) must agree on every window of data: whole records, a record cut
anywhere, headers that claim more than the file can hold, and bytes that are not
TFRecords at all.
"""

from __future__ import annotations

import struct
import threading
from collections.abc import Callable

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given, settings
from hypothesis import strategies as st

from embedding_guard.read import framing

FRAMERS = {
    "compiled": framing._tfrecord_framing.find_records if framing._tfrecord_framing else None,
    "python": framing._find_records_in_python,
}
UINT64_MAX = 2**64 - 1
# The compiled framer's largest record_limit; the reader passes at most 2**31 - 1.
MAX_RECORD_LIMIT = 2**62


def _record(payload: bytes, crc_bytes: bytes) -> bytes:
    # Framing reads only the length; the checksums are any bytes here.
    return struct.pack("<Q", len(payload)) + crc_bytes[:4] + payload + crc_bytes[4:]


def _brute_force(data: bytes, record_limit: int) -> tuple[list[int], int, int, int | None]:
    headers, pos = [], 0
    while len(data) - pos >= 8:
        length = int.from_bytes(data[pos : pos + 8], "little")
        if pos + 12 + length + 4 > len(data):
            if length > record_limit:
                return headers, pos, 12, length
            return headers, pos, 12 + length + 4, None
        headers.append(pos)
        pos += 12 + length + 4
    return headers, pos, 12, None


def _found(framer: str, data: bytes, record_limit: int) -> tuple[list[int], int, int, int | None]:
    headers, end, need, claim = FRAMERS[framer](data, record_limit)
    return np.frombuffer(headers, dtype=np.int64).tolist(), end, need, claim


def test_the_install_built_the_compiled_framer():
    # The extension is optional so that an install without a compiler succeeds;
    # this project's own installs (make, CI, the wheel) must have built it.
    assert framing._tfrecord_framing is not None


@pytest.mark.parametrize("framer", sorted(FRAMERS))
@pytest.mark.parametrize(
    ("data", "record_limit", "expected"),
    [
        (b"", 100, ([], 0, 12, None)),
        # Fewer than 8 bytes: the next header is not all here.
        (b"\x03\x00\x00", 100, ([], 0, 12, None)),
        # One whole record of 3 bytes (8 + 4 + 3 + 4 = 19), then 7 bytes of the next.
        (_record(b"abc", b"ABCDEFGH") + b"\x01" * 7, 100, ([0], 19, 12, None)),
        # Two records, the second cut inside its data: it needs 12 + 5 + 4 bytes.
        (_record(b"", b"ABCDEFGH") + _record(b"hello", b"ABCDEFGH")[:15], 100, ([0], 16, 21, None)),
        # A cut record whose claim exceeds the limit, even one of 2**64 - 1.
        (_record(b"x" * 200, b"ABCDEFGH")[:50], 100, ([], 0, 12, 200)),
        (b"\xff" * 8, MAX_RECORD_LIMIT, ([], 0, 12, UINT64_MAX)),
        (b"\x00" * 7 + b"\x40", MAX_RECORD_LIMIT, ([], 0, 12 + MAX_RECORD_LIMIT + 4, None)),
        # A claim that fits in the data is never an error: the record is whole.
        (_record(b"x" * 200, b"ABCDEFGH"), 100, ([0], 216, 12, None)),
    ],
)
def test_hand_computed_windows(framer, data, record_limit, expected):
    assert _found(framer, data, record_limit) == expected


def test_the_compiled_framer_refuses_a_limit_whose_record_size_could_overflow():
    with pytest.raises(
        ValueError, match=r"record_limit must be at most 2\*\*62, got 4611686018427387905"
    ):
        framing._tfrecord_framing.find_records(b"", MAX_RECORD_LIMIT + 1)


records = st.lists(
    st.tuples(st.binary(max_size=300), st.binary(min_size=8, max_size=8)), max_size=40
).map(lambda pairs: b"".join(_record(payload, crc) for payload, crc in pairs))
limits = st.one_of(st.integers(0, 400), st.just(2**31 - 1), st.just(MAX_RECORD_LIMIT))


@settings(max_examples=300, deadline=None, database=None)
@given(stream=records, cut=st.data(), record_limit=limits)
def test_every_window_of_a_record_stream_frames_as_the_brute_force_walk(stream, cut, record_limit):
    start = cut.draw(st.integers(0, len(stream)))
    end = cut.draw(st.integers(start, len(stream)))
    for window in (stream[:end], stream[start:end]):
        expected = _brute_force(window, record_limit)
        assert _found("compiled", window, record_limit) == expected
        assert _found("python", window, record_limit) == expected


@settings(max_examples=300, deadline=None, database=None)
@given(data=st.binary(max_size=200), record_limit=limits)
def test_bytes_that_are_not_tfrecords_frame_as_the_brute_force_walk(data, record_limit):
    expected = _brute_force(data, record_limit)
    assert _found("compiled", data, record_limit) == expected
    assert _found("python", data, record_limit) == expected


def lets_other_threads_run(walk_once: Callable[[bytearray], object], data: bytearray) -> list:
    """What walk_once(data) gave on each of up to 40 walks, if this thread ran meanwhile.

    A bytearray cannot be resized while a buffer of it is exported, and the
    compiled functions hold one (`y*`) from the moment they parse their
    arguments to the moment they return. So a BufferError from a resize here
    means that this thread held the GIL while walk_once was running: it had
    released it. With the GIL held through the call, no resize here can ever
    meet the export, however many walks run and however fast or slow the
    machine is; the walk count only bounds how long a function that releases
    the GIL has for this thread to be scheduled once while it walks.

    Returns:
      The walks' results, or [] if no resize here ever met the export.
    """
    walks = 40
    done = threading.Event()
    found: list = []

    def walk() -> None:
        for _ in range(walks):
            found.append(walk_once(data))
            if done.is_set():
                return
        done.set()

    walker = threading.Thread(target=walk)
    walker.start()
    met_the_export = False
    while not done.is_set():
        try:
            data.append(0)
            del data[-1]
        except BufferError:
            met_the_export = True
            done.set()
    walker.join()
    return found if met_the_export else []


def test_the_compiled_framer_lets_other_threads_run_while_it_walks():
    # 4,194,304 empty records per walk.
    data = bytearray(64 << 20)
    found = lets_other_threads_run(
        lambda data: len(framing._tfrecord_framing.find_records(data, 100)[0]), data
    )
    # Every walk framed the whole buffer (a stray byte at the end is not a header).
    assert found and set(found) == {8 * (64 << 20) // 16}


def test_the_python_fallback_reads_a_shard_as_the_compiled_framer_does(monkeypatch, tmp_path):
    path = str(tmp_path / "shard.gz")
    expected = [b"record %d;" % index * (index % 7) for index in range(5000)]
    with tf.io.TFRecordWriter(path, "GZIP") as writer:
        for record in expected:
            writer.write(record)

    def records() -> list[bytes]:
        return [
            record
            for batch in framing.serialized_batches(path, batch_size=700, window_bytes=1000)
            for record in batch
        ]

    compiled = records()
    monkeypatch.setattr(framing, "_tfrecord_framing", None)
    assert records() == compiled == expected
