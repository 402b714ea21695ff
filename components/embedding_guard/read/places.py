"""Where a batch lies in its shard, for the counting core's locators, and what a shard read was.

`batch_place` turns a reader batch into the `BatchPlace` the core locates
offending values with; `shard_read` turns a finished shard's tally into the
`ShardRead` of the report. A default run locates by shard and record number
alone and parses nothing here. The locator feature (`--locator-feature`) is
parsed only from the records that hold a value the core locates for the first
time, a handful per shard, by TensorFlow, imported then.
"""

from __future__ import annotations

import os

import numpy as np

from embedding_guard.read.framing import ReadTally, SerializedBatch
from embedding_guard.read.reader import Batch, parse_any_column
from embedding_guard.verdict.locations import BatchPlace, ShardRead, locator_text


def shard_name(shard: str) -> str:
    """A shard's path relative to its split folder: shards lie right inside it."""
    return os.path.basename(shard.rstrip("/"))


class _Locator:
    """The locator feature's values in some records of a batch, in one TensorFlow parse.

    Only the records that hold a newly located value are parsed: a record parsed
    by itself in Python took 90 us, the whole batch's column 0.6 s per 50,000
    records, and 300 records in one op 0.5 ms (bench/bench_locators.py has the
    run's cost).
    """

    def __init__(self, records: SerializedBatch, feature: str):
        self._records = records
        self._feature = feature

    def __call__(self, rows: list[int]) -> list[str | None]:
        if not rows:
            return []
        # Kinds are tried as TensorFlow parses them (parse_any_column); only a
        # run with a locator feature comes here.
        import tensorflow as tf  # noqa: PLC0415

        serialized = tf.constant([self._records[row] for row in rows], dtype=tf.string)
        values, lengths = parse_any_column(serialized, self._feature)
        splits = np.concatenate([[0], np.cumsum(lengths)]).tolist()
        flat = values.tolist()
        return [locator_text(flat[splits[i] : splits[i + 1]]) for i in range(len(rows))]


def batch_place(shard: str, batch: Batch, locator_feature: str | None = None) -> BatchPlace:
    """Where a batch of the shard lies; with a locator feature its records must be kept."""
    records = batch.records
    locate = None
    if locator_feature is not None and records is not None:
        locate = _Locator(records, locator_feature)
    return BatchPlace(shard_name(shard), batch.first_record, records, locate, locator_feature)


def shard_read(shard: str, tally: ReadTally) -> ShardRead:
    """What was read of a finished shard."""
    return ShardRead(shard_name(shard), tally.records, tally.file_bytes, tally.record_bytes)
