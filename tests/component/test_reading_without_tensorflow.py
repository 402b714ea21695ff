"""Reading and counting transformed examples imports no TensorFlow (issue #30).

The read side (read/files, framing, reader, places, example_parsing) frames
shards, checks each split's first record and parses the checked features in C,
and a small batch's floats or bytes in Python, all without TensorFlow; a
fresh process shows what got imported. TensorFlow stays the reference: the
counts here are compared with those TensorFlow's parser gives, and a batch it
must parse (here: with floats, above the Python walk's size) imports it and
counts the same.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from component_testlib import EXAMPLES_DIR

from embedding_guard.read import example_parsing

COMPONENTS = Path(__file__).resolve().parents[2] / "components"
FEATURES = ["age_xf", "city_xf", "product_xf", "clicked"]

# Reads every split of an examples folder through the reader, counts what the
# core would be handed, and prints the counts and whether TensorFlow came in.
READ_AND_COUNT = """
import json, sys
from embedding_guard.read import example_parsing
if sys.argv[3] == "tensorflow-parses-floats":
    example_parsing.PYTHON_PARSE_MAX_RECORDS = 0
from embedding_guard.read import count_for_test
counts = count_for_test(sys.argv[1], json.loads(sys.argv[2]))
print(json.dumps({"counts": counts, "tensorflow": "tensorflow" in sys.modules}))
"""


def count_splits(examples: str, features: list[str]) -> dict:
    """split -> what reading it gives: records, bytes, and per feature its values' kind and sums."""
    from embedding_guard.read import files, places, reader

    counts = {}
    split_shards = {
        split: files.list_shards(uri) for split, uri in files.split_dirs(examples).items()
    }
    present = reader.check_record_format(split_shards, features)
    for split, shards in split_shards.items():
        tallies: dict = {}
        # Row lengths per shard: shards read at once interleave their batches.
        per_feature = {name: [None, 0, 0.0, {}] for name in features}
        examples_read = records = 0
        for shard, batch in reader.read_shards(
            shards, features, batch_size=7, parallelism=2, keep_records=True, tallies=tallies
        ):
            if batch is None:
                records += places.shard_read(shard, tallies[shard]).records
                continue
            places.batch_place(shard, batch)
            examples_read += batch.num_examples
            for name, (values, row_lengths) in batch.columns.items():
                kind = per_feature[name]
                kind[0] = str(values.dtype)
                kind[1] += len(values)
                kind[2] += float(np.sum(values.astype(np.float64))) if len(values) else 0.0
                rows = kind[3].setdefault(places.shard_name(shard), [])
                rows += row_lengths.tolist()
        counts[split] = {
            "examples": examples_read,
            "records": records,
            "features": per_feature,
        }
    counts["first record's features"] = sorted(present or ())
    return counts


def _read_in_a_fresh_process(mode: str) -> dict:
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([str(COMPONENTS), str(Path(__file__).parent)]),
        TF_CPP_MIN_LOG_LEVEL="3",
    )
    script = READ_AND_COUNT.replace(
        "from embedding_guard.read import count_for_test",
        "from test_reading_without_tensorflow import count_splits as count_for_test",
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(EXAMPLES_DIR), json.dumps(FEATURES), mode],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _counted_by_tensorflow(monkeypatch) -> dict:
    monkeypatch.setattr(example_parsing, "_tfrecord_framing", None)
    return count_splits(str(EXAMPLES_DIR), FEATURES)


def test_reading_and_counting_the_splits_imports_no_tensorflow(monkeypatch):
    assert example_parsing.compiled()

    ran = _read_in_a_fresh_process("compiled")

    assert ran["tensorflow"] is False
    # What the reader hands the core is what TensorFlow's parser gives, the
    # test split's floats under product_xf included.
    assert ran["counts"] == _counted_by_tensorflow(monkeypatch)
    assert ran["counts"]["test"]["features"]["product_xf"][0] == "float32"
    assert set(ran["counts"]) == {"eval", "test", "train", "first record's features"}


def test_a_float_batch_tensorflow_must_parse_imports_it_and_counts_the_same(monkeypatch):
    ran = _read_in_a_fresh_process("tensorflow-parses-floats")

    assert ran["tensorflow"] is True
    assert ran["counts"] == _counted_by_tensorflow(monkeypatch)
