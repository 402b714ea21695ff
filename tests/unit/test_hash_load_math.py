"""Hash load: the expected collision share against exact enumeration and simulation,
the bucket count that brings it under a threshold, and the observed load against a
brute-force count."""

import collections
import itertools

import hypothesis.strategies as st
import numpy as np
import pytest
from hypothesis import given, settings

from embedding_guard.verdict import hash_load, proof_findings
from embedding_guard.verdict.reasons import Reason, Severity


def _exact_share(num_values: int, num_buckets: int) -> float:
    """The mean colliding share over every one of the m^n equally likely assignments."""
    total = 0.0
    assignments = list(itertools.product(range(num_buckets), repeat=num_values))
    for buckets in assignments:
        per_bucket = collections.Counter(buckets)
        total += sum(per_bucket[b] > 1 for b in buckets) / num_values
    return total / len(assignments)


@pytest.mark.parametrize(
    ("num_values", "num_buckets"), [(1, 1), (2, 1), (2, 2), (3, 2), (3, 5), (4, 3), (5, 4), (6, 6)]
)
def test_expected_share_equals_exact_enumeration(num_values, num_buckets):
    assert hash_load.expected_collision_share(num_values, num_buckets) == pytest.approx(
        _exact_share(num_values, num_buckets), abs=1e-12
    )


@pytest.mark.parametrize(("num_values", "num_buckets"), [(150, 17), (1000, 5000), (300, 100_000)])
def test_expected_share_matches_a_simulation(num_values, num_buckets):
    generator = np.random.default_rng(28)
    trials = 2000
    buckets = generator.integers(0, num_buckets, size=(trials, num_values))
    shares = []
    for row in buckets:
        per_bucket = np.bincount(row, minlength=num_buckets)
        shares.append(np.count_nonzero(per_bucket[row] > 1) / num_values)
    expected = hash_load.expected_collision_share(num_values, num_buckets)
    # Four standard errors of the mean over the trials.
    tolerance = 4 * np.std(shares) / np.sqrt(trials) + 1e-9
    assert abs(np.mean(shares) - expected) <= tolerance


@settings(max_examples=200, deadline=None)
@given(
    num_values=st.integers(min_value=0, max_value=10_000_000),
    max_share=st.floats(min_value=1e-6, max_value=1.0),
)
def test_buckets_for_share_is_the_fewest_that_fit(num_values, max_share):
    buckets = hash_load.buckets_for_share(num_values, max_share)

    assert hash_load.expected_collision_share(num_values, buckets) <= max_share
    if buckets > 1:
        assert hash_load.expected_collision_share(num_values, buckets - 1) > max_share


def test_buckets_for_share_by_search():
    # A plain search over m, with the share computed term by term.
    for n, t in ((150, 0.5), (1000, 0.1), (2, 0.3)):
        m = 1
        while 1 - (1 - 1 / m) ** (n - 1) > t:
            m += 1
        assert hash_load.buckets_for_share(n, t) == m


def _brute_force(pairs):
    """(raw value, bucket) occurrences -> the load's figures, by plain dict counting."""
    bucket_of = {}
    occurrences = collections.Counter()
    for raw, bucket in pairs:
        bucket_of[raw] = bucket
        occurrences[raw] += 1
    per_bucket = collections.Counter(bucket_of.values())
    colliding = [raw for raw, bucket in bucket_of.items() if per_bucket[bucket] > 1]
    return {
        "distinct_values": len(bucket_of),
        "buckets_used": len(per_bucket),
        "max_per_bucket": max(per_bucket.values()),
        "colliding_share": len(colliding) / len(bucket_of),
        "colliding_occurrence_share": sum(occurrences[r] for r in colliding) / len(pairs),
    }


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.integers(min_value=0, max_value=60), min_size=1, max_size=200),
    st.integers(min_value=1, max_value=4),
)
def test_load_equals_a_brute_force_count_in_any_batches(raw_ids, num_batches):
    num_buckets, low = 7, 3
    raws = np.array([f"v{r}".encode() for r in raw_ids], dtype=object)
    # A deterministic "hash": what matters is one bucket per raw value.
    indices = np.array([low + (r * 5 + 1) % num_buckets for r in raw_ids], dtype=np.int64)
    hashed = hash_load.HashedRange("f", hash_load.HASH, low, num_buckets)
    loads = [hash_load.FeatureHashLoad(hashed) for _ in range(num_batches)]
    for i, part in enumerate(np.array_split(np.arange(len(raw_ids)), num_batches)):
        loads[i].add(indices[part], raws[part])
    merged = loads[0]
    for load in loads[1:]:
        merged.merge(load)

    result = merged.result()

    expected = _brute_force(list(zip(raws.tolist(), (indices - low).tolist(), strict=True)))
    assert {k: getattr(result, k) for k in expected} == pytest.approx(expected)
    assert result.mean_per_used_bucket == pytest.approx(
        expected["distinct_values"] / expected["buckets_used"]
    )
    assert result.expected_colliding_share == hash_load.expected_collision_share(
        expected["distinct_values"], num_buckets
    )


def test_values_outside_the_range_are_left_out():
    hashed = hash_load.HashedRange("f", hash_load.OOV_BUCKETS, 5, 2)
    load = hash_load.FeatureHashLoad(hashed)
    load.add(np.array([0, 4, 5, 6, 6, 7]), np.array([b"a", b"b", b"x", b"y", b"z", b"w"]))

    result = load.result()

    assert (result.distinct_values, result.buckets_used, result.max_per_bucket) == (3, 2, 2)
    assert result.colliding_share == pytest.approx(2 / 3)


def _load(distinct, buckets, share, kind=hash_load.HASH):
    return hash_load.HashLoad(kind, buckets, distinct, buckets, 3, distinct / buckets, share,
                              hash_load.expected_collision_share(distinct, buckets), share)  # fmt: skip


def test_crowded_buckets_warn_with_the_bucket_count_that_fits():
    finding = proof_findings.crowded_buckets("eval", "user_xf", _load(150, 17, 0.97), 0.5)

    assert finding.reason is Reason.HASH_BUCKETS_CROWDED
    assert finding.severity is Severity.WARNING
    assert finding.count == round(0.97 * 150)
    needed = hash_load.buckets_for_share(150, 0.5)
    assert f"{needed:,} hash buckets (now 17) would bring" in finding.fix
    assert finding.fix in finding.description


def test_no_warning_under_the_threshold_nor_for_oov_buckets():
    assert proof_findings.crowded_buckets("eval", "f", _load(150, 17, 0.5), 0.5) is None
    oov_buckets = _load(150, 17, 0.97, hash_load.OOV_BUCKETS)
    assert proof_findings.crowded_buckets("eval", "f", oov_buckets, 0.5) is None
    assert proof_findings.crowded_buckets("eval", "f", _load(150, 17, 0.97), 1.0) is None


def test_hash_load_round_trips_through_json():
    from embedding_guard.verdict.report_model import _Fields

    load = _load(150, 17, 0.97)

    parent = _Fields({"hash_load": load.to_json()}, "test")
    assert hash_load.HashLoad.read_optional(parent, "test") == load
    assert hash_load.HashLoad.read_optional(_Fields({}, "test"), "test") is None
