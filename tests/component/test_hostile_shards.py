"""Hostile shards: the split is read exactly as TFX's Trainer reads it, and nothing crashes.

Every file `<split>/*` matches is a shard (hidden ones too), special files are
named errors, compression follows the file name with a fallback, record headers
cannot make TensorFlow allocate what the file cannot hold, and a batch is
bounded by bytes. Each case is checked on the checked-in examples, through the
`check` command where a user would meet it.
"""

from __future__ import annotations

import gzip
import os
import shutil
import socket
import struct
import subprocess
import sys
import threading
from pathlib import Path

import google_crc32c
import numpy as np
import pytest
import tensorflow as tf
from component_testlib import EXAMPLES_DIR, TRANSFORM_GRAPH_DIR

from embedding_guard.cli import main as cli
from embedding_guard.errors import InputError
from embedding_guard.read import files, framing, reader
from embedding_guard.run import validation

SCHEMA = TRANSFORM_GRAPH_DIR / "transformed_metadata" / "schema.pbtxt"
EVAL_SHARD = EXAMPLES_DIR / "Split-eval" / "transformed_examples-00000-of-00001.gz"
# Exactly the 35,615 bytes whose little-endian length header starts with 1f 8b,
# the gzip magic.
GZIP_MAGIC_LENGTH = 0x8B1F


def _masked_crc(data: bytes) -> int:
    crc = google_crc32c.value(data)
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


def _record_header(length: int) -> bytes:
    length_bytes = struct.pack("<Q", length)
    return length_bytes + struct.pack("<I", _masked_crc(length_bytes))


def _eval_example() -> tf.train.Example:
    (record,) = list(tf.data.TFRecordDataset(str(EVAL_SHARD), "GZIP").take(1).as_numpy_iterator())
    return tf.train.Example.FromString(record)


def _example_with_age(age: int, size: int | None = None) -> bytes:
    """An eval example with age_xf set, padded by an unchecked bytes feature to size bytes."""
    example = _eval_example()
    example.features.feature["age_xf"].int64_list.value[:] = [age]
    if size is None:
        return example.SerializeToString()
    padding = example.features.feature["unchecked_padding"].bytes_list.value
    padding.append(b"")
    # The padding's own length prefixes grow with it; settle in a few steps.
    for _ in range(5):
        missing = size - example.ByteSize()
        padding[0] = padding[0] + b"x" * missing if missing > 0 else padding[0][:missing]
    record = example.SerializeToString()
    assert len(record) == size
    return record


def _write(path: Path, records: list[bytes], compressed: bool) -> Path:
    with tf.io.TFRecordWriter(str(path), "GZIP" if compressed else "") as writer:
        for record in records:
            writer.write(record)
    return path


def _copy_examples(tmp_path: Path) -> Path:
    examples = tmp_path / "examples"
    shutil.copytree(EXAMPLES_DIR / "Split-eval", examples / "Split-eval")
    return examples


def _check(capsys, examples: Path, output: Path) -> tuple[int, str, str]:
    capsys.readouterr()
    code = cli.main(
        ["check", "--schema", str(SCHEMA), "--examples", str(examples), "--output", str(output)]
    )
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _age_counts(output: Path) -> dict:
    import json

    report = json.loads((output / "Split-eval" / "index_report.json").read_text())
    (age,) = [f for f in report["features"] if f["feature"] == "age_xf"]
    return {"num_examples": report["num_examples"], **age["counts"]}


@pytest.fixture(scope="module")
def clean_counts(tmp_path_factory):
    """age_xf counts of the untouched eval split, from the same command."""
    output = tmp_path_factory.mktemp("clean") / "out"
    code = cli.main(
        [
            "check",
            "--schema",
            str(SCHEMA),
            "--examples",
            str(EXAMPLES_DIR),
            "--split",
            "eval",
            "--output",
            str(output),
        ]
    )
    return code, _age_counts(output)


@pytest.mark.parametrize("name", ["_part-00000.gz", ".part-00000.gz"])
def test_hidden_shards_are_read_as_the_trainer_reads_them(tmp_path, capsys, clean_counts, name):
    examples = _copy_examples(tmp_path)
    _write(examples / "Split-eval" / name, [_example_with_age(-1)], compressed=True)

    code, _, err = _check(capsys, examples, tmp_path / "out")

    _, clean = clean_counts
    counts = _age_counts(tmp_path / "out")
    assert (counts["num_examples"], counts["negative"]) == (clean["num_examples"] + 1, 1)
    assert clean["negative"] == 0
    assert code == cli.EXIT_BLOCKED, err


def test_a_folder_inside_a_split_is_an_error_as_it_is_for_the_trainer(tmp_path):
    # The Trainer's `<split>/*` glob returns the folder, and TensorFlow then fails
    # on it ("Is a directory"): a left-over Beam temp folder must not pass here.
    examples = _copy_examples(tmp_path)
    nested = examples / "Split-eval" / "beam-temp-xyz"
    nested.mkdir()
    _write(nested / "part-0.gz", [_example_with_age(-1)], compressed=True)

    with pytest.raises(files.ShardError, match=r"'beam-temp-xyz' \(a folder\)"):
        validation.list_split_shards({"eval": str(examples / "Split-eval")})


def _fifo(path: Path) -> str:
    os.mkfifo(path)
    return "FIFO"


def _socket(path: Path) -> str:
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    server.close()
    return "socket"


def _device(path: Path) -> str:
    path.symlink_to("/dev/null")
    return "character device"


@pytest.mark.parametrize("make_special", [_fifo, _socket, _device])
def test_special_file_in_a_split_is_an_error_naming_it(tmp_path, make_special):
    examples = _copy_examples(tmp_path)
    kind = make_special(examples / "Split-eval" / "zz-special")

    with pytest.raises(files.ShardError) as raised:
        validation.list_split_shards({"eval": str(examples / "Split-eval")})

    message = str(raised.value)
    assert "'zz-special'" in message and kind in message, message
    assert "remove them from the split folder" in message
    assert "\n" not in message


def test_special_file_in_a_split_stops_the_command_with_exit_2(tmp_path, capsys):
    examples = _copy_examples(tmp_path)
    _fifo(examples / "Split-eval" / "pipe")

    code, out, err = _check(capsys, examples, tmp_path / "out")

    assert code == cli.EXIT_USAGE, (out, err)
    assert "'pipe' (FIFO (named pipe))" in err and err.count("\n") == 1, err


@pytest.mark.parametrize("make_special", [_fifo, _socket, _device])
def test_single_file_input_that_is_a_special_file_is_refused(tmp_path, make_special):
    path = tmp_path / "schema.pbtxt"
    make_special(path)

    with pytest.raises(InputError) as raised:
        files.check_regular_file(str(path), "--schema", "schema.pbtxt file")

    assert str(raised.value) == (
        f"--schema {str(path)!r} is not a regular file (a FIFO, socket or device); pass a "
        "schema.pbtxt file."
    )


def test_single_file_input_that_is_missing_or_a_folder_is_refused(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        files.check_regular_file(str(tmp_path / "nothing"), "--schema", "schema.pbtxt file")
    with pytest.raises(InputError, match="is a folder"):
        files.check_regular_file(str(tmp_path), "--schema", "schema.pbtxt file")
    files.check_regular_file(str(SCHEMA), "--schema", "schema.pbtxt file")


def test_uncompressed_shard_starting_with_the_gzip_magic_is_read(tmp_path, capsys, clean_counts):
    examples = _copy_examples(tmp_path)
    record = _example_with_age(-1, size=GZIP_MAGIC_LENGTH)
    shard = _write(examples / "Split-eval" / "part-00001", [record], compressed=False)
    assert shard.read_bytes()[:2] == b"\x1f\x8b"

    code, _, err = _check(capsys, examples, tmp_path / "out")

    counts = _age_counts(tmp_path / "out")
    assert (counts["num_examples"], counts["negative"]) == (
        clean_counts[1]["num_examples"] + 1,
        1,
    ), err
    assert code == cli.EXIT_BLOCKED


@pytest.mark.parametrize(("name", "compressed"), [("part-1", True), ("part-1.gz", False)])
def test_shard_whose_name_lies_about_compression_is_read_the_other_way(tmp_path, name, compressed):
    records = [_example_with_age(age) for age in (-1, 0, 3)]
    shard = _write(tmp_path / name, records, compressed=compressed)

    assert framing._compression(str(shard), shard.read_bytes()) == (
        framing.GZIP if compressed else ""
    )
    assert [r for batch in framing.serialized_batches(str(shard)) for r in batch] == records


def _run_check_in_a_process(examples: Path, output: Path) -> subprocess.CompletedProcess:
    # A crash of TensorFlow would take pytest down with it.
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "embedding_guard.cli.main",
            "check",
            "--schema",
            str(SCHEMA),
            "--examples",
            str(examples),
            "--output",
            str(output),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )


@pytest.mark.parametrize("compressed", [False, True])
def test_record_header_claiming_64_gib_is_an_error_not_a_crash(tmp_path, compressed):
    examples = _copy_examples(tmp_path)
    crafted = _record_header(64 * 2**30) + bytes(64)
    assert len(crafted) == 76
    name = "part-00001.gz" if compressed else "part-00001"
    bad = examples / "Split-eval" / name
    bad.write_bytes(gzip.compress(crafted) if compressed else crafted)

    done = _run_check_in_a_process(examples, tmp_path / "out")

    assert done.returncode == cli.EXIT_USAGE, (done.returncode, done.stderr[-2000:])
    assert done.stderr.startswith(f"embedding-guard: error: Shard {str(bad)!r} is truncated")
    assert "claims 68,719,476,736 bytes" in done.stderr and done.stderr.count("\n") == 1


def test_corrupt_record_in_an_uncompressed_shard_is_named(tmp_path):
    records = [_example_with_age(age) for age in (0, 1, 2)]
    shard = _write(tmp_path / "part-0", records, compressed=False)
    data = bytearray(shard.read_bytes())
    # A byte inside the second record's data: only its checksum can tell.
    data[16 + len(records[0]) + 12 + 5] ^= 0x01
    shard.write_bytes(bytes(data))

    with pytest.raises(files.ShardError, match="is truncated or corrupt .bad record checksum"):
        list(framing.serialized_batches(str(shard)))


def test_batches_of_large_records_are_bounded_by_bytes(tmp_path):
    # 600 records of 60 KB are 36 MB: more than one default batch by bytes, far
    # less than one by count (600 % per_batch is not 0 at 16 MiB).
    record = _example_with_age(1, size=60_000)
    shard = _write(tmp_path / "part-0.gz", [record] * 600, compressed=True)

    batches = list(
        reader.read_shards([str(shard)], ["age_xf"], max_batch_bytes=4 * 60_000, parallelism=2)
    )

    sizes = [batch.num_examples for _, batch in batches if batch is not None]
    assert sum(sizes) == 600 and max(sizes) == 4, sizes
    default = [len(b) for b in framing.serialized_batches(str(shard))]
    per_batch = framing.DEFAULT_MAX_BATCH_BYTES // 60_000
    assert per_batch < 600
    assert default == [per_batch] * (600 // per_batch) + [600 % per_batch]


@pytest.mark.parametrize("parallelism", [2, 3])
def test_each_thread_keeps_at_most_four_batches_in_memory(tmp_path, monkeypatch, parallelism):
    # 6 shards of 20 batches: every frame thread has more to frame than the bound
    # lets it hold while the caller holds its first batch.
    shards = [
        str(_write(tmp_path / f"part-{index}.gz", [_example_with_age(1)] * 40, compressed=True))
        for index in range(6)
    ]
    framed = [0]
    progress = threading.Condition()
    serialized_batches = framing.serialized_batches

    def counted(*args, **kwargs):
        for batch in serialized_batches(*args, **kwargs):
            with progress:
                framed[0] += 1
                progress.notify_all()
            yield batch

    monkeypatch.setattr(framing, "serialized_batches", counted)
    # 3 batches per thread wait to be parsed or taken, and each frame thread
    # (one per thread: there are more shards than threads) holds one more while
    # it waits for room.
    bound = 4 * parallelism
    held, received = [], 0
    for _, batch in reader.read_shards(shards, ["age_xf"], batch_size=2, parallelism=parallelism):
        if batch is None:
            continue
        received += 1
        if received == 1:
            # Held by a slow caller, the first batch lets the frame threads run
            # ahead until the bound stops them: wait until they have got there,
            # however long that takes on a busy machine.
            with progress:
                progress.wait_for(lambda: framed[0] - 1 >= bound, timeout=300)
        # Besides the batch the caller holds.
        held.append(framed[0] - received)

    assert received == 6 * 40 // 2
    # They ran ahead all the way to the bound, and never past it.
    assert held[0] == bound, held
    assert max(held) == bound, held


def _check_outputs(tmp_path: Path, monkeypatch, parallelism: int) -> dict[str, bytes]:
    # Read at call time, so patching it sets the parallelism of the whole run.
    monkeypatch.setattr(reader, "default_parallelism", lambda: parallelism)
    output = tmp_path / f"parallelism-{parallelism}"
    argv = ["check", "--schema", str(SCHEMA), "--examples", str(EXAMPLES_DIR)]
    assert cli.main([*argv, "--output", str(output)]) == cli.EXIT_BLOCKED
    return {
        str(path.relative_to(output)): path.read_bytes()
        for path in sorted(output.rglob("*"))
        if path.is_file()
    }


@pytest.mark.parametrize("parallelism", [2, 5])
def test_reports_are_byte_identical_at_any_parallelism(tmp_path, monkeypatch, parallelism):
    # The train split has two shards, one gzip and one not; the others one each.
    serial = _check_outputs(tmp_path, monkeypatch, 1)
    parallel = _check_outputs(tmp_path, monkeypatch, parallelism)

    # Three reports per split, and the offending examples `check --output` writes
    # by default: city_xf and product_xf in eval, product_xf in test.
    assert len(serial) == 12
    assert parallel == serial


def test_a_check_lists_each_split_folder_once_and_opens_each_shard_once(
    tmp_path, monkeypatch, capsys
):
    # On GCS or S3 each listing and each open is a round trip before any reading.
    from embedding_guard.read import storage

    listed: list[str] = []
    opened: list[str] = []
    monkeypatch.setattr(
        files,
        "list_shards",
        lambda uri, list_=files.list_shards: listed.append(uri) or list_(uri),
    )
    monkeypatch.setattr(
        storage,
        "open_file",
        lambda path, *args, open_=storage.open_file: opened.append(path) or open_(path, *args),
    )
    examples = _copy_examples(tmp_path)
    shards = sorted(str(path) for path in (examples / "Split-eval").iterdir())

    code, _, _ = _check(capsys, examples, tmp_path / "out")

    assert code in (cli.EXIT_CLEAN, cli.EXIT_BLOCKED)
    assert listed == [str(examples / "Split-eval")]
    # The first shard once more for the format check's first record.
    shard_opens = sorted(path for path in opened if path in shards)
    assert shard_opens == sorted([*shards, shards[0]])


def test_on_a_remote_filesystem_the_split_entries_are_checked_at_once(tmp_path, monkeypatch):
    # Each isdir is a round trip on GCS or S3. The checks pass the barrier only if
    # all of them run at the same time; one after another, the first times out.
    import threading

    from embedding_guard.read import storage

    split = tmp_path / "Split-train"
    split.mkdir()
    for index in range(5):
        (split / f"shard-{index}.gz").write_bytes(b"")
    (split / "beam-temp").mkdir()
    entries = {str(path) for path in split.iterdir()}
    together = threading.Barrier(len(entries), timeout=10)

    def isdir_all_at_once(path, isdir=storage.isdir):
        if path in entries:
            together.wait()
        return isdir(path)

    monkeypatch.setattr(storage, "is_local", lambda path: False)
    monkeypatch.setattr(storage, "isdir", isdir_all_at_once)

    with pytest.raises(files.ShardError, match=r"'beam-temp' \(a folder\)"):
        files.list_shards(str(split))


# --- a tf.SequenceExample anywhere in a split ----------------------------------------------


def _sequence_example_with_age_in_feature_lists() -> bytes:
    """A SequenceExample holding the checked age_xf in its feature_lists, context aside."""
    sequence = tf.train.SequenceExample()
    for name, value in _eval_example().features.feature.items():
        if name != "age_xf":
            sequence.context.feature[name].CopyFrom(value)
    steps = sequence.feature_lists.feature_list["age_xf"].feature
    for age in (1, 2, 99):
        steps.add().int64_list.value.append(age)
    return sequence.SerializeToString()


@pytest.mark.parametrize("compressed", [False, True])
def test_a_sequence_example_after_the_first_record_stops_the_check(tmp_path, capsys, compressed):
    # Only the first record was checked: the later SequenceExamples parsed as
    # tf.Examples of their context, and every age_xf value counted as missing.
    examples = _copy_examples(tmp_path)
    records = [_example_with_age(1)] * 3 + [_sequence_example_with_age_in_feature_lists()] * 2
    name = "part-00001.gz" if compressed else "part-00001"
    shard = _write(examples / "Split-eval" / name, records, compressed=compressed)

    code, out, err = _check(capsys, examples, tmp_path / "out")

    assert code == cli.EXIT_USAGE, (code, err)
    assert err.startswith(f"embedding-guard: error: In split 'eval', shard {str(shard)!r}, ")
    assert "record 4 (counting from 1) is a tf.SequenceExample whose feature_lists hold " in err
    assert "the checked features ['age_xf']" in err and "Write the indices as tf.Example" in err
    assert err.count("\n") == 1 and "Traceback" not in err and out == ""


@pytest.mark.parametrize("parallelism", [1, 2])
def test_the_sequence_example_is_numbered_in_its_shard_across_batches(tmp_path, parallelism):
    records = [_example_with_age(1)] * 7 + [_sequence_example_with_age_in_feature_lists()]
    plain = _write(tmp_path / "part-0", [_example_with_age(1)] * 9, compressed=True)
    shard = _write(tmp_path / "part-1.gz", records, compressed=True)

    with pytest.raises(files.ShardError) as raised:
        list(
            reader.read_shards(
                [str(plain), str(shard)], ["age_xf"], batch_size=3, parallelism=parallelism
            )
        )

    # Outside a Split-<name> folder no split is named.
    assert str(raised.value).startswith(f"In shard {str(shard)!r}, record 8 (counting from 1)")


def _records(data: list[bytes]) -> framing.SerializedBatch:
    buffer = b"".join(data)
    lengths = np.array([len(record) for record in data], dtype=np.int64)
    return framing.SerializedBatch(buffer, np.cumsum(lengths) - lengths, lengths)


def test_every_record_tensorflow_writes_as_an_example_skips_the_python_check(monkeypatch):
    # The per-record check costs a few numpy operations per batch: Python
    # examines none of the checked-in Transform records, nor an empty example.
    def no_python(record):
        raise AssertionError(f"examined in Python: {record[:20]!r}")

    monkeypatch.setattr(reader, "_feature_lists_bytes", no_python)
    shards = sorted(str(path) for path in EXAMPLES_DIR.glob("Split-*/*"))
    assert shards
    records = 0
    for shard in shards:
        for batch in framing.serialized_batches(shard):
            records += len(batch)
            assert reader.sequence_example_error(shard, batch, 1, ["age_xf"]) is None
    assert records >= 40
    # Field lengths of 1 to 4 varint bytes, and the empty example.
    sized = [_example_with_age(3, size) for size in (150, 20_000, 2_100_000)]
    empty = tf.train.Example().SerializeToString()
    assert empty == b""
    batch = _records([empty, _example_with_age(3), *sized])
    assert reader.sequence_example_error("s", batch, 1, ["age_xf"]) is None


def test_records_tensorflow_parses_as_examples_are_not_refused():
    age = _example_with_age(3)
    # A valid tf.Example in two pieces (protobuf merges repeated message fields),
    # and a SequenceExample whose feature_lists hold only unchecked features.
    split_features = tf.train.Example.FromString(age)
    first, second = tf.train.Example(), tf.train.Example()
    for index, (name, value) in enumerate(sorted(split_features.features.feature.items())):
        (first if index % 2 else second).features.feature[name].CopyFrom(value)
    two_pieces = first.SerializeToString() + second.SerializeToString()
    assert tf.train.Example.FromString(two_pieces) == split_features
    unchecked = tf.train.SequenceExample()
    unchecked.context.feature["age_xf"].int64_list.value.append(3)
    unchecked.feature_lists.feature_list["history_xf"].feature.add().int64_list.value.append(1)
    # The checked name inside another feature's values is no feature_lists key.
    unchecked.feature_lists.feature_list["notes"].feature.add().bytes_list.value.append(b"age_xf")
    batch = _records([age, two_pieces, unchecked.SerializeToString(), b"\x0a\x80"])

    assert reader.sequence_example_error("s", batch, 1, ["age_xf"]) is None
    sequence = _sequence_example_with_age_in_feature_lists()
    error = reader.sequence_example_error("s", _records([age, sequence]), 10, ["age_xf"])
    assert error is not None and "record 11 (counting from 1)" in str(error)
