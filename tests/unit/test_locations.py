"""Property tests: locations and kept examples equal a brute-force scan, however batches merge.

Shards are lists of records (each a list of int values); the core sees them cut
into batches at random, each shard counted by its own accumulator, and the
accumulators merged in a random order. Whatever the cuts and the order, every
sample value's location is its first occurrence (shards by name, then records,
then list positions), and the kept examples are the first offending records.
"""

import json

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from embedding_guard.verdict import core, locations, offenders
from embedding_guard.verdict.locations import BatchPlace
from embedding_guard.verdict.report_model import SplitReport

BOUNDED = settings(max_examples=150, deadline=None, database=None)
BOUNDS = core.FeatureBounds("f", upper_bound=10, embedding_input_dim=8, vocab_size=6)

records = st.lists(st.integers(-3, 13), max_size=4)
shards = st.dictionaries(
    st.sampled_from(["a.gz", "b", "c.gz", "d"]),
    st.lists(records, max_size=30),
    min_size=1,
)


def _record_bytes(shard: str, index: int) -> bytes:
    return f"{shard}:{index}".encode()


def _count(data: dict, cuts: list[int], order: list[int], limit: int) -> core.FeatureAccumulator:
    parts = []
    for shard, rows in data.items():
        accumulator = core.FeatureAccumulator(BOUNDS, examples_limit=limit)
        start = 0
        for cut in [*cuts, len(rows)]:
            end = min(max(cut, start), len(rows))
            batch = rows[start:end]
            if batch or end == len(rows):
                values = np.asarray([v for row in batch for v in row], dtype=np.int64)
                lengths = np.asarray([len(row) for row in batch], dtype=np.int64)
                place = BatchPlace(
                    shard,
                    start,
                    [_record_bytes(shard, start + i) for i in range(len(batch))],
                    lambda rows, first=start, name=shard: [f"{name}#{first + r}" for r in rows],
                    "id",
                )
                accumulator.add_batch(values, lengths, place=place)
            start = end
        parts.append(accumulator)
    merged = core.FeatureAccumulator(BOUNDS)
    for index in order:
        if index < len(parts):
            merged.merge(parts[index])
    for index, part in enumerate(parts):
        if index not in order:
            merged.merge(part)
    return merged


def _bad(value: int) -> bool:
    return value < 0 or value >= min(BOUNDS.upper_bound, BOUNDS.embedding_input_dim)


@BOUNDED
@given(
    shards,
    st.lists(st.integers(0, 30), max_size=4).map(sorted),
    st.permutations(range(4)),
    st.integers(0, 5),
)
def test_locations_and_examples_are_the_first_occurrences(data, cuts, order, limit):
    stats = _count(data, cuts, list(order), limit).result()

    scan = [
        (shard, index, position, value)
        for shard in sorted(data)
        for index, row in enumerate(data[shard])
        for position, value in enumerate(row)
    ]
    for sample in stats.sample_locations:
        first = next(s for s in scan if s[3] == sample.value)
        where = sample.location
        assert (where.shard, where.record_index, where.value_index) == first[:3]
        assert where.locator_value == f"{where.shard}#{where.record_index}"
        assert where.locator_feature == "id"
        assert sample.kind == (locations.NEGATIVE if sample.value < 0 else locations.TOO_LARGE)
    shown = {v for v, _ in stats.top_negative_values + stats.top_out_of_range_values}
    shown |= {v for v, _ in stats.top_over_embedding_dim_values}
    assert {s.value for s in stats.sample_locations} == shown

    offending_records = []
    for shard in sorted(data):
        for index, row in enumerate(data[shard]):
            if any(_bad(v) for v in row):
                offending_records.append((shard, index, _record_bytes(shard, index)))
    merged = _count(data, cuts, list(order), limit)
    assert merged.located.examples.records == offending_records[:limit]


def test_kept_examples_stay_under_the_byte_bound():
    sample = offenders.ExampleSample(limit=10)
    big = b"x" * (offenders.MAX_EXAMPLE_BYTES // 3)
    place = BatchPlace("a.gz", 0, [big, big, b"small", big, big])

    sample.add(np.arange(5), place)

    kept = [record for _, _, record in sample.records]
    # The fourth and fifth 5.3 MiB records would pass 16 MiB: left out.
    assert kept == [big, big, b"small"]
    assert sum(map(len, kept)) <= offenders.MAX_EXAMPLE_BYTES


def test_locations_and_read_counts_survive_the_report_json():
    accumulator = core.SplitAccumulator([BOUNDS])
    place = BatchPlace("part-0.gz", 100, None, lambda rows: ["trip 7"] * len(rows), "trip_id")
    accumulator.add_examples(3)
    accumulator.features["f"].add_batch(
        np.asarray([1, -1, 2, 12], dtype=np.int64), np.asarray([2, 1, 1]), place=place
    )
    accumulator.shards["part-0.gz"] = locations.ShardRead("part-0.gz", 3, 120, 300)
    from embedding_guard.verdict import findings, provenance

    report = provenance.with_provenance(
        findings.build_reports({"eval": accumulator}), {"eval": accumulator}
    )["eval"]
    negative = next(f for f in report.findings if f.reason.value == "NEGATIVE_INDEX")
    assert negative.sample_locations == (
        locations.Location("part-0.gz", 100, 1, "trip 7", "trip_id"),
    )
    assert report.read_counts.records == 3

    document = json.loads(json.dumps(report.to_json()))
    assert document["read_counts"]["shards"][0]["file_bytes"] == 120
    assert SplitReport.from_json(document) == report
    assert negative.sample_locations[0].text("eval") == (
        "Split-eval/part-0.gz record 100, list position 1, trip_id=trip 7"
    )
