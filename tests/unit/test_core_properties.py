"""Property tests: the core's counts equal a brute-force count over Python ints.

However the values are cut into batches, and however the batches' accumulators
are grouped and merged, the result must be the same as counting every value once.
"""

import collections

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from embedding_guard.verdict import core, findings, reasons

INT64 = np.iinfo(np.int64)

# No example database: a run never depends on failures stored by an earlier one.
BOUNDED = settings(max_examples=150, deadline=None, database=None)

# Small values repeat, so the top-value order and ties get exercised.
int64_values = st.one_of(
    st.integers(-3, 40),
    st.sampled_from(
        [int(INT64.min), int(INT64.min) + 1, -1, 0, int(INT64.max) - 1, int(INT64.max)]
    ),
    st.integers(int(INT64.min), int(INT64.max)),
)


@st.composite
def feature_bounds(draw):
    if draw(st.booleans()):
        # The accumulator keeps one flag per vocabulary entry, so vocabularies stay small;
        # OOV buckets cost nothing and may reach up to the int64 edge.
        vocab_size = draw(st.integers(0, 40))
        num_oov_buckets = draw(
            st.one_of(st.integers(0, 4), st.integers(0, int(INT64.max) - vocab_size))
        )
        upper_bound = max(vocab_size + num_oov_buckets, 1)
        num_oov_buckets = upper_bound - vocab_size
        # The lookup's default_value for unseen tokens: TFT's -1 (None), another
        # negative, a row inside the vocabulary, or one after it that widens the
        # range (default_value=9 after a 5-entry vocabulary).
        default_value = draw(st.one_of(st.none(), st.integers(-5, 45)))
        if num_oov_buckets == 0 and default_value is not None:
            upper_bound = max(upper_bound, default_value + 1)
    else:
        upper_bound = draw(st.one_of(st.integers(1, 40), st.integers(1, int(INT64.max))))
        vocab_size, num_oov_buckets, default_value = None, 0, None
    embedding_input_dim = draw(
        st.one_of(st.integers(1, 45), st.just(upper_bound), st.integers(1, int(INT64.max)))
    )
    return core.FeatureBounds(
        feature="f",
        upper_bound=upper_bound,
        embedding_input_dim=embedding_input_dim,
        vocab_size=vocab_size,
        num_oov_buckets=num_oov_buckets,
        default_value=default_value,
    )


def reference_default(bounds):
    """The value that means "not in the vocabulary", counted as OOV, or None."""
    if bounds.vocab_size is None or bounds.num_oov_buckets:
        return None
    default = -1 if bounds.default_value is None else bounds.default_value
    # A default on a vocabulary row cannot be told from that row's token.
    return None if 0 <= default < bounds.vocab_size else default


# A batch is a list of rows (a row is the example's values, possibly none), or an
# int: that many examples in which the feature is absent.
def batches_of(values):
    rows = st.lists(st.lists(values, max_size=4), max_size=12)
    return st.lists(st.one_of(rows, st.integers(0, 5)), max_size=6)


def reference_stats(bounds, batches):
    """Counts value by value, with Python ints, straight from the FeatureBounds docstring."""
    in_vocab_end = bounds.upper_bound if bounds.vocab_size is None else bounds.vocab_size
    default = reference_default(bounds)
    counts = collections.Counter()
    offending = collections.Counter()
    seen = []
    for batch in batches:
        if isinstance(batch, int):
            counts["num_examples"] += batch
            counts["missing"] += batch
            continue
        for row in batch:
            counts["num_examples"] += 1
            counts["missing"] += not row
            for value in row:
                seen.append(value)
                counts["num_values"] += 1
                if value < 0:
                    counts["negative"] += 1
                elif value < in_vocab_end:
                    counts["in_vocab"] += 1
                elif value < bounds.upper_bound:
                    counts["default_in_range" if value == default else "oov_bucket"] += 1
                else:
                    counts["out_of_range"] += 1
                if value >= bounds.embedding_input_dim:
                    counts["over_embedding_dim"] += 1
                if value < 0 or value >= bounds.upper_bound or value >= bounds.embedding_input_dim:
                    offending[value] += 1
    # 2 x 6 batches x 12 rows x 4 values stay below the capacity, so tracking is exact.
    assert len(offending) <= core.OFFENDING_VALUES_CAPACITY
    ranked = sorted(offending.items(), key=lambda item: (-item[1], item[0]))
    has_vocabulary = bounds.vocab_size is not None
    if not has_vocabulary:
        at_default, vocab_entries_unseen = None, None
    else:
        at_default = 0 if default is None else seen.count(default)
        vocab_entries_unseen = bounds.vocab_size - len(
            {value for value in seen if 0 <= value < bounds.vocab_size}
        )
    return core.FeatureStats(
        num_examples=counts["num_examples"],
        num_values=counts["num_values"],
        missing=counts["missing"],
        negative=counts["negative"],
        in_range=counts["in_vocab"] + counts["oov_bucket"] + counts["default_in_range"],
        # Without vocabulary no value is in or out of one.
        in_vocab=counts["in_vocab"] if has_vocabulary else None,
        oov_bucket=counts["oov_bucket"] if has_vocabulary else None,
        out_of_range=counts["out_of_range"],
        over_embedding_dim=counts["over_embedding_dim"],
        non_integer=0,
        min=min(seen) if seen else None,
        max=max(seen) if seen else None,
        top_offending_values=tuple(ranked[:10]),
        top_non_integer_values=(),
        offending_values_complete=True,
        at_default=at_default,
        vocab_entries_unseen=vocab_entries_unseen,
        top_negative_values=tuple([item for item in ranked if item[0] < 0][:10]),
        top_out_of_range_values=tuple(
            [item for item in ranked if item[0] >= bounds.upper_bound][:10]
        ),
        top_over_embedding_dim_values=tuple(
            [item for item in ranked if item[0] >= bounds.embedding_input_dim][:10]
        ),
    )


def add_batches(accumulator, batches, dtype=np.int64):
    for batch in batches:
        if isinstance(batch, int):
            accumulator.add_missing(batch)
        else:
            values = np.array([v for row in batch for v in row], dtype=dtype)
            accumulator.add_batch(values, np.array([len(row) for row in batch], dtype=np.int64))
    return accumulator


def accumulate(bounds, batches, dtype=np.int64):
    return add_batches(core.FeatureAccumulator(bounds), batches, dtype)


@BOUNDED
@given(bounds=feature_bounds(), batches=batches_of(int64_values), data=st.data())
def test_grouped_and_merged_in_any_order_equals_brute_force(bounds, batches, data):
    num_groups = data.draw(st.integers(1, 4), label="num_groups")
    group_of_batch = data.draw(
        st.lists(st.integers(0, num_groups - 1), min_size=len(batches), max_size=len(batches)),
        label="group_of_batch",
    )
    merge_order = data.draw(st.permutations(range(num_groups)), label="merge_order")
    groups = [
        accumulate(bounds, [b for b, g in zip(batches, group_of_batch, strict=True) if g == group])
        for group in range(num_groups)
    ]

    merged = groups[merge_order[0]]
    for group in merge_order[1:]:
        merged = merged.merge(groups[group])

    assert merged.result() == reference_stats(bounds, batches)


@BOUNDED
@given(bounds=feature_bounds(), left=batches_of(int64_values), right=batches_of(int64_values))
def test_merge_is_commutative(bounds, left, right):
    left_then_right = accumulate(bounds, left).merge(accumulate(bounds, right)).result()
    right_then_left = accumulate(bounds, right).merge(accumulate(bounds, left)).result()

    assert left_then_right == right_then_left
    assert left_then_right == reference_stats(bounds, left + right)


INTEGER_DTYPES = [np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64]


def dtype_values(dtype):
    """Any value of dtype; its extremes and the int64 edge (uint64) come up often."""
    info = np.iinfo(dtype)
    edges = [int(info.min), int(info.min) + 1, int(info.max) - 1, int(info.max)]
    if dtype is np.uint64:
        edges += [int(INT64.max), int(INT64.max) + 1]
    return st.one_of(st.sampled_from(edges), st.integers(0, 20), st.integers(info.min, info.max))


# Fewer examples per dtype: the eight dtypes share the usual budget of examples.
@pytest.mark.parametrize("dtype", INTEGER_DTYPES, ids=lambda dtype: dtype.__name__)
@settings(max_examples=30, deadline=None, database=None)
@given(data=st.data())
def test_any_integer_dtype_equals_brute_force(dtype, data):
    bounds = data.draw(feature_bounds(), label="bounds")
    batches = data.draw(batches_of(dtype_values(dtype)), label="batches")

    stats = accumulate(bounds, batches, dtype).result()

    assert stats == reference_stats(bounds, batches)


@BOUNDED
@given(bounds=feature_bounds(), batches=batches_of(int64_values))
def test_split_is_blessed_exactly_when_no_index_would_fail(bounds, batches):
    accumulator = core.SplitAccumulator([bounds])
    add_batches(accumulator.features["f"], batches)
    accumulator.add_examples(accumulator.features["f"].num_examples)
    expected = reference_stats(bounds, batches)

    report = findings.split_report("train", accumulator)

    failing = expected.negative + expected.out_of_range + expected.over_embedding_dim
    all_missing = 0 < expected.num_examples == expected.missing
    assert report.blessed == (failing == 0 and not all_missing)
    assert sum(f.count for f in report.findings if f.reason is reasons.Reason.OOV_BUCKET_HITS) == (
        expected.oov_bucket or 0
    )


# The per-example fallback of the reader mixes ints with floats and bytes in one
# object array; raw mode hands over bytes. Texts collide on purpose (1.5 and b"1.5").
mixed_values = st.one_of(
    st.integers(-3, 12),
    st.sampled_from([1.5, -0.5, 2.0, float("inf")]),
    st.sampled_from([b"", b"1.5", b"red", "é".encode(), b"\xff"]),
)


@BOUNDED
@given(batches=st.lists(st.lists(mixed_values, max_size=30), max_size=6))
def test_non_integer_values_in_object_arrays_equal_a_brute_force_count(batches):
    bounds = core.FeatureBounds(feature="f", upper_bound=10, embedding_input_dim=10)
    accumulator = core.FeatureAccumulator(bounds)
    for batch in batches:
        accumulator.add_batch(np.array(batch, dtype=object), np.array([len(batch)]))

    values = [value for batch in batches for value in batch]
    others = [value for value in values if not isinstance(value, int)]
    expected = collections.Counter(
        core.sample_text(value if isinstance(value, bytes) else repr(value)) for value in others
    )
    assert accumulator.non_integer == len(others)
    assert accumulator.non_integer_values == dict(expected)
    ints = [value for value in values if isinstance(value, int)]
    assert accumulator.negative == sum(value < 0 for value in ints)
    assert accumulator.out_of_range == sum(value >= 10 for value in ints)


@BOUNDED
@given(
    rows=st.lists(
        st.tuples(st.integers(-1, 7), st.sampled_from([b"", b"Flash Cab", b"\xffx", b"Taxi"])),
        max_size=60,
    ),
    num_oov_buckets=st.integers(0, 2),
)
def test_raw_values_behind_oov_indices_equal_a_brute_force_count(rows, num_oov_buckets):
    bounds = core.FeatureBounds(
        feature="f",
        upper_bound=4 + num_oov_buckets,
        embedding_input_dim=8,
        vocab_size=4,
        num_oov_buckets=num_oov_buckets,
    )
    accumulator = core.FeatureAccumulator(bounds)
    indices = np.array([index for index, _ in rows], dtype=np.int64)
    raw = np.array([value for _, value in rows], dtype=object)
    ones = np.ones(len(rows), dtype=np.int64)
    accumulator.add_batch(indices, ones, raw, ones)

    def falls_in_oov(index):
        in_buckets = 4 <= index < 4 + num_oov_buckets
        return in_buckets or (num_oov_buckets == 0 and index == -1)

    expected = collections.Counter(
        core.sample_text(value) for index, value in rows if falls_in_oov(index)
    )
    assert accumulator.raw_oov_values == dict(expected)
    assert accumulator.raw_empty_or_missing == sum(value == b"" for _, value in rows)
