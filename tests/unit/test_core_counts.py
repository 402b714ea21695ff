"""The pure validation core against counts worked out by hand."""

import json
import pickle

import numpy as np
import pytest

from embedding_guard.verdict import core, report_model
from embedding_guard.verdict import findings as findings_lib
from embedding_guard.verdict.reasons import Reason, Severity

INT64_MIN = -9223372036854775808
INT64_MAX = 9223372036854775807

# Every bucket of the vocabulary bounds below, by hand:
#   negative     -3 -1 -1                      -> 3
#   in vocab     0 3 7 7        [0, 8)         -> 4
#   OOV bucket   8 9 9          [8, 10)        -> 3
#   out of range 10 11 12 12 12 25  [10, ...)  -> 6
# 16 values in all, min -3, max 25.
MIXED_VALUES = [7, -1, 12, 3, 9, 25, 0, 12, -3, 8, 10, -1, 7, 12, 11, 9]


def _vocab_bounds(embedding_input_dim=12, feature="item_id"):
    """8-entry vocabulary plus 2 OOV buckets: valid indices are [0, 10)."""
    return core.FeatureBounds(
        feature=feature,
        upper_bound=10,
        embedding_input_dim=embedding_input_dim,
        vocab_size=8,
        num_oov_buckets=2,
        vocabulary="item_vocab",
        bound_source="vocabulary 'item_vocab' (8 entries) + 2 OOV buckets",
        embedding_dim_source="embedding_input_dims['item_id']",
    )


def _month_bounds():
    """Identity feature months 0..12 (int_domain max 12) fed to Embedding(input_dim=12)."""
    return core.FeatureBounds(
        feature="month",
        upper_bound=13,
        embedding_input_dim=12,
        bound_source="int_domain.max 12 + 1",
        embedding_dim_source="embedding_input_dims['month']",
    )


def _single_valued(values, dtype=np.int64):
    values = np.asarray(values, dtype=dtype)
    return values, np.ones(values.size, dtype=np.int64)


def _stats(bounds, values, row_lengths):
    accumulator = core.FeatureAccumulator(bounds)
    accumulator.add_batch(values, row_lengths)
    return accumulator.result()


def _by_reason(findings):
    return {finding.reason: finding for finding in findings}


def test_single_valued_counts_with_embedding_dim_above_upper_bound():
    stats = _stats(_vocab_bounds(embedding_input_dim=12), *_single_valued(MIXED_VALUES))

    assert stats == core.FeatureStats(
        num_examples=16,
        num_values=16,
        missing=0,
        negative=3,
        # [0, 10): the 4 in vocabulary and the 3 in OOV buckets.
        in_range=7,
        in_vocab=4,
        oov_bucket=3,
        out_of_range=6,
        # >= 12: 12 12 12 25.
        over_embedding_dim=4,
        non_integer=0,
        min=-3,
        max=25,
        # Offending = negative or >= min(10, 12): -1 x2, -3, 10, 11, 12 x3, 25;
        # count descending, then value ascending.
        top_offending_values=((12, 3), (-1, 2), (-3, 1), (10, 1), (11, 1), (25, 1)),
        top_non_integer_values=(),
        offending_values_complete=True,
        # -1 is not the default value when there are OOV buckets.
        at_default=0,
        # Of the 8 entries only 0, 3 and 7 occur.
        vocab_entries_unseen=5,
        top_negative_values=((-1, 2), (-3, 1)),
        # >= upper bound 10.
        top_out_of_range_values=((12, 3), (10, 1), (11, 1), (25, 1)),
        # >= input_dim 12.
        top_over_embedding_dim_values=((12, 3), (25, 1)),
    )


def test_single_valued_counts_with_embedding_dim_below_upper_bound():
    stats = _stats(_vocab_bounds(embedding_input_dim=9), *_single_valued(MIXED_VALUES))

    # The range buckets do not depend on the embedding dim.
    assert (stats.negative, stats.in_vocab, stats.oov_bucket, stats.out_of_range) == (3, 4, 3, 6)
    # >= 9: 9 9 10 11 12 12 12 25.
    assert stats.over_embedding_dim == 8
    # Offending now starts at min(10, 9) = 9, so the OOV bucket 9 (x2) is offending too.
    assert stats.top_offending_values == (
        (12, 3),
        (-1, 2),
        (9, 2),
        (-3, 1),
        (10, 1),
        (11, 1),
        (25, 1),
    )


def test_findings_of_single_valued_feature():
    bounds = _vocab_bounds(embedding_input_dim=9)
    stats = _stats(bounds, *_single_valued(MIXED_VALUES))

    findings = findings_lib.feature_findings("train", bounds, stats)

    assert [(f.reason, f.severity, f.count) for f in findings] == [
        (Reason.NEGATIVE_INDEX, Severity.ERROR, 3),
        (Reason.INDEX_OUT_OF_RANGE, Severity.ERROR, 6),
        # One problem per cause: of the 8 values >= input_dim 9, the 6 that are
        # also >= 10 are INDEX_OUT_OF_RANGE's; the input_dim's own are 9 x2.
        (Reason.INDEX_OVER_EMBEDDING_DIM, Severity.ERROR, 2),
        (Reason.OOV_BUCKET_HITS, Severity.INFO, 3),
    ]
    by_reason = _by_reason(findings)
    # Rates over the 16 values: 3/16, 6/16, 2/16, 3/16.
    assert by_reason[Reason.NEGATIVE_INDEX].rate == 0.1875
    assert by_reason[Reason.INDEX_OUT_OF_RANGE].rate == 0.375
    assert by_reason[Reason.INDEX_OVER_EMBEDDING_DIM].rate == 0.125
    # Every such value is past the lookup's table (input_dim 9).
    assert [f.values_past_table for f in findings] == [3, 6, 2, None]
    assert by_reason[Reason.OOV_BUCKET_HITS].rate == 0.1875
    assert by_reason[Reason.NEGATIVE_INDEX].sample_values == ((-1, 2), (-3, 1))
    assert by_reason[Reason.INDEX_OUT_OF_RANGE].sample_values == (
        (12, 3),
        (10, 1),
        (11, 1),
        (25, 1),
    )
    assert by_reason[Reason.INDEX_OVER_EMBEDDING_DIM].sample_values == ((9, 2),)
    assert by_reason[Reason.OOV_BUCKET_HITS].sample_values == ()
    for finding in findings:
        assert (finding.split, finding.feature) == ("train", "item_id")
        assert "'item_id'" in finding.description
        assert "'train'" in finding.description
    assert "-1 x2, -3 x1" in by_reason[Reason.NEGATIVE_INDEX].description
    assert ">= 10 (vocabulary 'item_vocab'" in by_reason[Reason.INDEX_OUT_OF_RANGE].description
    assert "input_dim 9" in by_reason[Reason.INDEX_OVER_EMBEDDING_DIM].description
    assert "Size the Embedding as 10" in by_reason[Reason.INDEX_OVER_EMBEDDING_DIM].description
    assert "18.75%" in by_reason[Reason.OOV_BUCKET_HITS].description
    assert "2 OOV bucket(s)" in by_reason[Reason.OOV_BUCKET_HITS].description


def test_top_offending_values_are_truncated_to_ten_by_count_then_value():
    # Out of range: 10..21 once each, plus 21 twice more (x3) and 15 once more (x2);
    # negative: -5 twice. 13 distinct offending values.
    values = list(range(10, 22)) + [21, 21, 15, -5, -5]
    stats = _stats(_vocab_bounds(embedding_input_dim=10), *_single_valued(values))

    assert core.TOP_OFFENDING_VALUES == 10
    # 21 x3; then the x2 ties -5 < 15; then the x1 ties in ascending order, cut after
    # seven of them: 18, 19 and 20 drop out.
    assert stats.top_offending_values == (
        (21, 3),
        (-5, 2),
        (15, 2),
        (10, 1),
        (11, 1),
        (12, 1),
        (13, 1),
        (14, 1),
        (16, 1),
        (17, 1),
    )
    # Truncation only shortens the sample list, never the counts: 12 + 3 values >= 10.
    assert stats.out_of_range == 15
    assert stats.negative == 2
    assert stats.offending_values_complete


def test_only_oov_hits_are_info_and_keep_the_split_blessed():
    # 0 5 in vocab; 8 8 9 in the OOV buckets: 3 of 5 values = 60%.
    report = findings_lib.check_arrays(
        "eval", [_vocab_bounds()], {"item_id": _single_valued([0, 8, 5, 9, 8])}
    )

    assert [(f.reason, f.severity, f.count, f.rate) for f in report.findings] == [
        (Reason.OOV_BUCKET_HITS, Severity.INFO, 3, 0.6),
    ]
    assert "60.00%" in report.findings[0].description
    assert report.blessed


def test_default_value_without_oov_buckets_is_oov():
    # compute_and_apply_vocabulary with num_oov_buckets=0 maps unseen values to -1.
    bounds = core.FeatureBounds("city", upper_bound=5, embedding_input_dim=5, vocab_size=5)

    stats = _stats(bounds, *_single_valued([-1, 4, -2, 0, -1, 4]))

    # -1 -2 -1 negative, of which the two -1 are the default value; 0 4 4 in vocab.
    assert (stats.negative, stats.at_default, stats.in_vocab, stats.oov_bucket) == (3, 2, 3, 0)
    # Entries 1, 2 and 3 never occur.
    assert stats.vocab_entries_unseen == 3
    assert (stats.oov, stats.oov_rate) == (2, 2 / 6)


def test_multivalent_feature_counts_every_element():
    # Rows: [1, 2], [], [12], [3, 3, 3], [], [12, 13].
    values = np.array([1, 2, 12, 3, 3, 3, 12, 13], dtype=np.int64)
    row_lengths = np.array([2, 0, 1, 3, 0, 2], dtype=np.int64)

    stats = _stats(_month_bounds(), values, row_lengths)

    assert stats == core.FeatureStats(
        num_examples=6,
        num_values=8,
        # The two rows of length 0.
        missing=2,
        negative=0,
        # Everything in [0, 13) is in range -> 1 2 12 3 3 3 12.
        in_range=7,
        # No vocabulary: no value is in or out of one.
        in_vocab=None,
        oov_bucket=None,
        # >= 13: 13.
        out_of_range=1,
        # >= 12: 12 12 13 -- the off-by-one month.
        over_embedding_dim=3,
        non_integer=0,
        min=1,
        max=13,
        top_offending_values=((12, 2), (13, 1)),
        top_non_integer_values=(),
        offending_values_complete=True,
        # No vocabulary, so no vocabulary coverage.
        vocab_entries_unseen=None,
        top_out_of_range_values=((13, 1),),
        top_over_embedding_dim_values=((12, 2), (13, 1)),
    )


def test_multivalent_findings_use_values_as_denominator():
    bounds = _month_bounds()
    stats = _stats(bounds, np.array([1, 2, 12, 3, 3, 3, 12, 13]), np.array([2, 0, 1, 3, 0, 2]))

    findings = findings_lib.feature_findings("train", bounds, stats)

    # 1 of 8 values out of range (13); 12 x2 are inside the range but past the
    # input_dim, the dim's own problem; some rows missing is no finding.
    assert [(f.reason, f.count, f.rate) for f in findings] == [
        (Reason.INDEX_OUT_OF_RANGE, 1, 0.125),
        (Reason.INDEX_OVER_EMBEDDING_DIM, 2, 0.25),
    ]
    assert findings[1].sample_values == ((12, 2),)


def test_multivalent_batches_add_up():
    accumulator = core.FeatureAccumulator(_month_bounds())
    # Batch 1 rows: [0, 14], [], [5].
    accumulator.add_batch(np.array([0, 14, 5]), np.array([2, 0, 1]))
    # Batch 2 rows: [], [] -- no values at all.
    accumulator.add_batch(np.array([], dtype=np.int64), np.array([0, 0]))
    # Batch 3 rows: [14, 14, -2, 11].
    accumulator.add_batch(np.array([14, 14, -2, 11]), np.array([4]))

    stats = accumulator.result()

    # 3 + 2 + 1 examples; empty rows: 1 + 2; values 3 + 0 + 4.
    assert (stats.num_examples, stats.missing, stats.num_values) == (6, 3, 7)
    # -2 negative; 0 5 11 in range; 14 x3 out of range and over the dim.
    assert (stats.negative, stats.in_range, stats.in_vocab, stats.out_of_range) == (1, 3, None, 3)
    assert stats.over_embedding_dim == 3
    assert (stats.min, stats.max) == (-2, 14)
    assert stats.top_offending_values == ((14, 3), (-2, 1))


def test_feature_absent_from_batch_counts_as_missing():
    accumulator = core.FeatureAccumulator(_vocab_bounds())
    accumulator.add_missing(4)
    accumulator.add_batch(np.array([1, 2]), np.array([1, 0, 1]))

    stats = accumulator.result()

    # 4 absent examples + 3 examples of which 1 is empty.
    assert (stats.num_examples, stats.missing, stats.num_values) == (7, 5, 2)
    assert (stats.in_vocab, stats.min, stats.max) == (2, 1, 2)
    assert findings_lib.feature_findings("train", _vocab_bounds(), stats) == ()


def test_feature_absent_from_split_is_an_error():
    bounds = [_vocab_bounds(feature="item_id"), _month_bounds()]

    report = findings_lib.check_arrays("train", bounds, {"month": _single_valued([1, 2, 3])})

    assert report.num_examples == 3
    item = next(f for f in report.features if f.bounds.feature == "item_id")
    assert (item.stats.num_examples, item.stats.missing, item.stats.num_values) == (3, 3, 0)
    assert (item.stats.min, item.stats.max) == (None, None)
    assert [(f.feature, f.reason, f.severity, f.count, f.rate) for f in report.findings] == [
        ("item_id", Reason.FEATURE_MISSING_FROM_SPLIT, Severity.ERROR, 3, 1.0),
    ]
    assert "'item_id'" in report.findings[0].description
    assert "3 examples" in report.findings[0].description
    assert not report.blessed


def test_feature_with_only_empty_rows_is_missing_from_split():
    report = findings_lib.check_arrays(
        "train", [_month_bounds()], {"month": (np.array([], dtype=np.int64), np.zeros(5))}
    )

    assert [(f.reason, f.count) for f in report.findings] == [
        (Reason.FEATURE_MISSING_FROM_SPLIT, 5)
    ]
    assert not report.blessed


def test_empty_split_warns_and_stays_blessed():
    report = findings_lib.check_arrays("eval", [_vocab_bounds(), _month_bounds()], {})

    assert report.num_examples == 0
    assert [
        (f.split, f.feature, f.reason, f.severity, f.count, f.rate) for f in report.findings
    ] == [
        ("eval", "", Reason.EMPTY_SPLIT, Severity.WARNING, 0, 0.0),
    ]
    assert "'eval'" in report.findings[0].description
    assert report.blessed
    # Features are still reported, in name order, with nothing counted.
    assert [f.bounds.feature for f in report.features] == ["item_id", "month"]
    assert all(f.findings == () and f.stats.num_examples == 0 for f in report.features)


def test_empty_batch_counts_nothing():
    stats = _stats(_vocab_bounds(), np.array([], dtype=np.int64), np.array([], dtype=np.int64))

    assert stats == core.FeatureStats(
        num_examples=0,
        num_values=0,
        missing=0,
        negative=0,
        in_range=0,
        in_vocab=0,
        oov_bucket=0,
        out_of_range=0,
        over_embedding_dim=0,
        non_integer=0,
        min=None,
        max=None,
        top_offending_values=(),
        top_non_integer_values=(),
        offending_values_complete=True,
        at_default=0,
        vocab_entries_unseen=8,
    )


def test_empty_batch_in_check_arrays_is_an_empty_split():
    empty = (np.array([], dtype=np.int64), np.array([], dtype=np.int64))

    report = findings_lib.check_arrays("eval", [_vocab_bounds()], {"item_id": empty})

    assert [f.reason for f in report.findings] == [Reason.EMPTY_SPLIT]
    assert report.blessed


def test_int64_extremes_are_exact():
    assert (np.iinfo(np.int64).min, np.iinfo(np.int64).max) == (INT64_MIN, INT64_MAX)
    values = [INT64_MIN, INT64_MAX, INT64_MIN, 5, INT64_MAX - 1]

    stats = _stats(_vocab_bounds(embedding_input_dim=10), *_single_valued(values))

    # INT64_MIN x2 negative; 5 in vocab; INT64_MAX and INT64_MAX - 1 beyond 10.
    assert (stats.negative, stats.in_vocab, stats.oov_bucket) == (2, 1, 0)
    assert (stats.out_of_range, stats.over_embedding_dim) == (2, 2)
    assert stats.min == -9223372036854775808
    assert stats.max == 9223372036854775807
    assert stats.top_offending_values == (
        (-9223372036854775808, 2),
        (9223372036854775806, 1),
        (9223372036854775807, 1),
    )
    assert all(type(v) is int for pair in stats.top_offending_values for v in pair)
    assert type(stats.min) is int and type(stats.max) is int
    # JSON keeps all 19 digits.
    assert '"max": 9223372036854775807' in json.dumps(stats.to_json())


def test_int32_input():
    int32 = np.iinfo(np.int32)
    values = [int32.min, int32.max, 9, 0, 9]

    stats = _stats(_vocab_bounds(embedding_input_dim=10), *_single_valued(values, np.int32))

    # int32.min negative; 0 in vocab; 9 x2 in the OOV buckets; int32.max out of range.
    assert (stats.negative, stats.in_vocab, stats.oov_bucket, stats.out_of_range) == (1, 1, 2, 1)
    assert stats.over_embedding_dim == 1
    assert (stats.min, stats.max) == (-2147483648, 2147483647)
    assert stats.top_offending_values == ((-2147483648, 1), (2147483647, 1))


@pytest.mark.parametrize("dtype", [np.int8, np.int16, np.uint8, np.uint16, np.uint32])
def test_small_integer_dtypes(dtype):
    # 0 in vocab, 8 OOV, 10 out of range: bounds are compared on values, not dtypes.
    stats = _stats(_vocab_bounds(embedding_input_dim=10), *_single_valued([10, 0, 8], dtype))

    assert (stats.in_vocab, stats.oov_bucket, stats.out_of_range) == (1, 1, 1)
    assert (stats.non_integer, stats.min, stats.max) == (0, 0, 10)


def test_uint64_above_int64_max_is_out_of_range_not_negative():
    values = np.array([18446744073709551615, 9223372036854775808, 3], dtype=np.uint64)

    stats = _stats(_vocab_bounds(embedding_input_dim=10), values, np.ones(3, dtype=np.int64))

    # 2**64 - 1 and 2**63 do not fit int64; they are huge, not negative.
    assert (stats.negative, stats.in_vocab, stats.out_of_range) == (0, 1, 2)
    assert stats.over_embedding_dim == 2
    assert (stats.min, stats.max) == (3, 18446744073709551615)
    assert stats.top_offending_values == ((9223372036854775808, 1), (18446744073709551615, 1))


def test_float_values_are_non_integer():
    bounds = _vocab_bounds()
    values = np.array([1.5, -0.5, 1.5, 2.0], dtype=np.float64)

    stats = _stats(bounds, values, np.array([3, 1]))

    assert (stats.num_examples, stats.num_values, stats.non_integer) == (2, 4, 4)
    # Nothing is range-checked: -0.5 is not counted as negative.
    assert (stats.negative, stats.in_vocab, stats.out_of_range) == (0, 0, 0)
    assert (stats.min, stats.max, stats.top_offending_values) == (None, None, ())
    # repr text; '1.5' x2 first, then '-0.5' < '2.0' as text.
    assert stats.top_non_integer_values == (("1.5", 2), ("-0.5", 1), ("2.0", 1))

    findings = findings_lib.feature_findings("train", bounds, stats)

    assert [(f.reason, f.severity, f.count, f.rate) for f in findings] == [
        (Reason.NON_INTEGER_VALUES, Severity.ERROR, 4, 1.0),
    ]
    assert findings[0].sample_values == (("1.5", 2), ("-0.5", 1), ("2.0", 1))
    assert "'1.5' x2, '-0.5' x1, '2.0' x1" in findings[0].description


def test_bytes_values_are_non_integer_and_rendered_as_text():
    # One value per example; b"\xff\xfe" is not UTF-8.
    values = np.array([b"red", b"\xff\xfe", b"red", "é".encode()], dtype=object)

    stats = _stats(_vocab_bounds(), values, np.ones(4))

    assert (stats.num_values, stats.non_integer) == (4, 4)
    # 'red' x2; then by text: backslash (U+005C) sorts before 'é' (U+00E9).
    assert stats.top_non_integer_values == (("red", 2), ("\\xff\\xfe", 1), ("é", 1))
    assert all(type(text) is str for text, _ in stats.top_non_integer_values)
    payload = json.dumps(stats.to_json(), sort_keys=True)
    assert json.loads(payload)["top_non_integer_values"][1] == {"value": "\\xff\\xfe", "count": 1}


def test_fixed_width_bytes_values_are_non_integer():
    stats = _stats(_vocab_bounds(), np.array([b"a", b"bc", b"a"]), np.array([3]))

    assert stats.non_integer == 3
    assert stats.top_non_integer_values == (("a", 2), ("bc", 1))


def test_non_integer_batch_among_integer_batches():
    bounds = _vocab_bounds()
    accumulator = core.FeatureAccumulator(bounds)
    accumulator.add_batch(np.array([1, 11]), np.array([1, 1]))
    accumulator.add_batch(np.array([b"x"], dtype=object), np.array([1]))

    stats = accumulator.result()

    # 3 values: 1 in vocab, 11 out of range, b"x" non-integer.
    assert (stats.num_values, stats.in_vocab, stats.out_of_range, stats.non_integer) == (3, 1, 1, 1)
    assert (stats.min, stats.max) == (1, 11)
    findings = findings_lib.feature_findings("train", bounds, stats)
    assert [(f.reason, f.count) for f in findings] == [
        (Reason.INDEX_OUT_OF_RANGE, 1),
        (Reason.NON_INTEGER_VALUES, 1),
    ]
    # 1 of the 3 values.
    assert findings[1].rate == pytest.approx(1 / 3)


def _all_errors_report():
    """A split with every reason: 'item_id' bad in all ways, 'month' missing, 'price' float."""
    bounds = [
        _vocab_bounds(embedding_input_dim=9),
        _month_bounds(),
        core.FeatureBounds("price", upper_bound=5, embedding_input_dim=5),
    ]
    columns = {
        "item_id": _single_valued(MIXED_VALUES),
        "price": (np.array([0.25] * 16), np.ones(16)),
    }
    return findings_lib.check_arrays("train", bounds, columns)


def test_split_report_orders_findings_and_blocks_on_errors():
    report = _all_errors_report()

    # Features by name; within one, the fixed reason order with ERRORs before INFO.
    assert [(f.feature, f.reason, f.severity) for f in report.findings] == [
        ("item_id", Reason.NEGATIVE_INDEX, Severity.ERROR),
        ("item_id", Reason.INDEX_OUT_OF_RANGE, Severity.ERROR),
        ("item_id", Reason.INDEX_OVER_EMBEDDING_DIM, Severity.ERROR),
        ("item_id", Reason.OOV_BUCKET_HITS, Severity.INFO),
        ("month", Reason.FEATURE_MISSING_FROM_SPLIT, Severity.ERROR),
        ("price", Reason.NON_INTEGER_VALUES, Severity.ERROR),
    ]
    assert [f.bounds.feature for f in report.features] == ["item_id", "month", "price"]
    assert report.features[1].findings == report.findings[4:5]
    assert not report.blessed


@pytest.mark.parametrize(
    ("values", "reason"),
    [
        ([-1], Reason.NEGATIVE_INDEX),
        ([10], Reason.INDEX_OUT_OF_RANGE),
        ([np.nan], Reason.NON_INTEGER_VALUES),
    ],
)
def test_each_error_alone_blocks(values, reason):
    # Embedding dim 11 so that 10 is out of range without being over the dim.
    dtype = np.float64 if reason is Reason.NON_INTEGER_VALUES else np.int64
    report = findings_lib.check_arrays(
        "train", [_vocab_bounds(embedding_input_dim=11)], {"item_id": _single_valued(values, dtype)}
    )

    assert [(f.reason, f.severity) for f in report.findings] == [(reason, Severity.ERROR)]
    assert not report.blessed


def test_over_embedding_dim_alone_blocks():
    # 9 is a valid OOV bucket index, but Embedding(input_dim=9) has no row 9.
    report = findings_lib.check_arrays(
        "train", [_vocab_bounds(embedding_input_dim=9)], {"item_id": _single_valued([9])}
    )

    assert [(f.reason, f.severity) for f in report.findings] == [
        (Reason.INDEX_OVER_EMBEDDING_DIM, Severity.ERROR),
        (Reason.OOV_BUCKET_HITS, Severity.INFO),
    ]
    assert not report.blessed


def test_split_report_json_round_trips_and_is_deterministic():
    report = _all_errors_report()

    payload = json.dumps(report.to_json(), sort_keys=True)

    assert json.loads(payload) == report.to_json()
    assert json.dumps(_all_errors_report().to_json(), sort_keys=True) == payload
    document = json.loads(payload)
    assert (document["split"], document["num_examples"], document["blessed"]) == (
        "train",
        16,
        False,
    )
    # ERRORs: 3 for item_id, 1 for month, 1 for price; the OOV finding is INFO.
    assert (document["num_errors"], document["num_warnings"]) == (5, 0)
    item = document["features"][0]
    assert item["bounds"]["upper_bound"] == 10
    assert item["counts"]["top_offending_values"][0] == {"value": 12, "count": 3}
    assert item["findings"][0]["reason"] == "NEGATIVE_INDEX"
    assert item["findings"][0]["severity"] == "ERROR"
    assert item["findings"][0]["sample_values"] == [
        {"value": -1, "count": 2},
        {"value": -3, "count": 1},
    ]
    assert [[f["reason"] for f in feature["findings"]] for feature in document["features"]] == [
        ["NEGATIVE_INDEX", "INDEX_OUT_OF_RANGE", "INDEX_OVER_EMBEDDING_DIM", "OOV_BUCKET_HITS"],
        ["FEATURE_MISSING_FROM_SPLIT"],
        ["NON_INTEGER_VALUES"],
    ]
    assert document["split_findings"] == []


def test_split_report_json_carries_split_level_findings():
    document = json.loads(
        json.dumps(findings_lib.check_arrays("eval", [_month_bounds()], {}).to_json())
    )

    assert (document["blessed"], document["num_errors"], document["num_warnings"]) == (True, 0, 1)
    assert [(f["feature"], f["reason"], f["severity"]) for f in document["split_findings"]] == [
        ("", "EMPTY_SPLIT", "WARNING"),
    ]


def test_json_does_not_depend_on_batch_order():
    bounds = [_vocab_bounds(embedding_input_dim=9)]
    first, second = MIXED_VALUES[:7], MIXED_VALUES[7:]

    def report(batches):
        split = core.SplitAccumulator(bounds)
        for batch in batches:
            part = core.SplitAccumulator(bounds)
            part.add_examples(len(batch))
            part.features["item_id"].add_batch(*_single_valued(batch))
            split.merge(part)
        return json.dumps(findings_lib.split_report("train", split).to_json(), sort_keys=True)

    assert report([first, second]) == report([second, first])
    assert report([first, second]) == json.dumps(
        findings_lib.check_arrays(
            "train", bounds, {"item_id": _single_valued(MIXED_VALUES)}
        ).to_json(),
        sort_keys=True,
    )


def test_offending_values_beyond_capacity_are_partial_but_dominant_counts_exact():
    capacity = core.OFFENDING_VALUES_CAPACITY
    bounds = _vocab_bounds(embedding_input_dim=10)
    accumulator = core.FeatureAccumulator(bounds)
    # Three batches, each: -1 x50, 5000 x40, 7 x1 (in vocab) and `capacity // 2` distinct
    # out-of-range values seen once, so 1.5 * capacity + 2 distinct offending values in all.
    for batch in range(3):
        singletons = list(range(10 + batch * capacity, 10 + batch * capacity + capacity // 2))
        values = [-1] * 50 + [5000] * 40 + [7] + singletons
        accumulator.add_batch(*_single_valued(values))

    stats = accumulator.result()

    assert not stats.offending_values_complete
    # The dominant values never leave the kept set, so their counts are exact: 3 * 50, 3 * 40.
    assert stats.top_offending_values[:2] == ((-1, 150), (5000, 120))
    # The range counts are never bounded.
    assert stats.negative == 150
    assert stats.in_vocab == 3
    assert stats.out_of_range == 3 * (40 + capacity // 2)
    assert stats.num_values == 3 * (91 + capacity // 2)
    report = report_model.FeatureReport(
        bounds, stats, findings_lib.feature_findings("t", bounds, stats)
    )
    assert report.to_json()["counts"]["offending_values_complete"] is False


def test_offending_values_at_capacity_are_complete():
    capacity = core.OFFENDING_VALUES_CAPACITY
    bounds = _vocab_bounds(embedding_input_dim=10)
    exactly = core.FeatureAccumulator(bounds)
    exactly.add_batch(*_single_valued(range(10, 10 + capacity)))
    one_more = core.FeatureAccumulator(bounds)
    one_more.add_batch(*_single_valued(range(10, 11 + capacity)))

    assert exactly.result().offending_values_complete
    assert not one_more.result().offending_values_complete


def test_merge_beyond_capacity_is_partial():
    capacity = core.OFFENDING_VALUES_CAPACITY
    bounds = _vocab_bounds(embedding_input_dim=10)
    left, right = core.FeatureAccumulator(bounds), core.FeatureAccumulator(bounds)
    # Each side alone holds capacity - 1 distinct too-large values; together 2 * (capacity - 1).
    left.add_batch(*_single_valued(range(10, 9 + capacity)))
    right.add_batch(*_single_valued(range(9 + capacity, 8 + 2 * capacity)))
    assert left.result().offending_values_complete
    assert right.result().offending_values_complete

    stats = left.merge(right).result()

    assert not stats.offending_values_complete
    assert stats.negative == 0
    assert stats.out_of_range == 2 * (capacity - 1)


def test_many_too_large_values_do_not_crowd_out_negative_samples():
    capacity = core.OFFENDING_VALUES_CAPACITY
    bounds = _vocab_bounds(embedding_input_dim=10)
    accumulator = core.FeatureAccumulator(bounds)
    # capacity + 1 distinct too-large values, twice each, then a single -1.
    too_large = list(range(10, 11 + capacity)) * 2
    accumulator.add_batch(*_single_valued(too_large + [-1]))

    stats = accumulator.result()

    assert not stats.offending_values_complete
    assert stats.negative == 1
    assert stats.top_negative_values == ((-1, 1),)
    (negative,) = [
        f
        for f in findings_lib.feature_findings("s", bounds, stats)
        if f.reason is Reason.NEGATIVE_INDEX
    ]
    assert negative.sample_values == ((-1, 1),)


def test_merge_into_complete_accumulator_keeps_other_partial():
    capacity = core.OFFENDING_VALUES_CAPACITY
    bounds = _vocab_bounds(embedding_input_dim=10)
    partial = core.FeatureAccumulator(bounds)
    partial.add_batch(*_single_valued(range(10, 11 + capacity)))
    complete = core.FeatureAccumulator(bounds)
    complete.add_batch(*_single_valued([10]))
    assert complete.result().offending_values_complete

    stats = complete.merge(partial).result()

    # partial kept 10 .. 9 + capacity and dropped 10 + capacity; 10 is among the kept,
    # so the merge itself drops nothing, yet the counts stay partial.
    assert len(complete.large_values) == capacity
    assert not stats.offending_values_complete
    assert stats.top_offending_values[0] == (10, 2)


def test_merge_adds_non_integer_values():
    bounds = _vocab_bounds()
    left, right = core.FeatureAccumulator(bounds), core.FeatureAccumulator(bounds)
    left.add_batch(np.array([b"a", b"b"], dtype=object), np.array([2]))
    right.add_batch(np.array([b"b", b"b", b"c"], dtype=object), np.array([1, 2]))

    stats = left.merge(right).result()

    # b: 1 + 2; a: 1; c: 1.
    assert stats.non_integer == 5
    assert stats.top_non_integer_values == (("b", 3), ("a", 1), ("c", 1))


def test_non_integer_values_beyond_capacity_are_partial():
    capacity = core.OFFENDING_VALUES_CAPACITY
    values = np.concatenate([np.full(30, 0.5), np.arange(capacity + 1) + 0.25])

    stats = _stats(_vocab_bounds(), values, np.ones(values.size))

    assert not stats.offending_values_complete
    assert stats.non_integer == capacity + 31
    assert stats.top_non_integer_values[0] == ("0.5", 30)


def test_accumulator_survives_pickling():
    accumulator = core.FeatureAccumulator(_vocab_bounds())
    accumulator.add_batch(*_single_valued(MIXED_VALUES))
    accumulator.add_batch(np.array([b"x"], dtype=object), np.array([1]))

    restored = pickle.loads(pickle.dumps(accumulator))

    assert restored.result() == accumulator.result()
    assert restored.bounds == accumulator.bounds


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("upper_bound", 0),
        ("upper_bound", -3),
        ("embedding_input_dim", 0),
        ("embedding_input_dim", -1),
    ],
)
def test_feature_bounds_reject_non_positive_sizes(field, value):
    arguments = {"feature": "user_id", "upper_bound": 10, "embedding_input_dim": 10, field: value}

    with pytest.raises(ValueError, match=rf"{field} of feature 'user_id' .* got {value}"):
        core.FeatureBounds(**arguments)


@pytest.mark.parametrize(
    ("field", "value"),
    [("vocab_size", 11), ("vocab_size", -1), ("num_oov_buckets", -2)],
)
def test_feature_bounds_reject_impossible_vocabulary_sizes(field, value):
    arguments = {
        "feature": "user_id",
        "upper_bound": 10,
        "embedding_input_dim": 10,
        "vocab_size": 8,
        "num_oov_buckets": 2,
        field: value,
    }

    with pytest.raises(ValueError, match=rf"{field} of feature 'user_id' .* got {value}"):
        core.FeatureBounds(**arguments)


def test_feature_bounds_accept_vocabulary_filling_the_range():
    bounds = core.FeatureBounds("user_id", upper_bound=10, embedding_input_dim=10, vocab_size=10)

    assert bounds.in_vocab_bound == 10
    assert core.FeatureBounds("user_id", upper_bound=1, embedding_input_dim=1).in_vocab_bound == 1


def _default_value_bounds(default_value: int, upper_bound: int) -> core.FeatureBounds:
    # A 5-entry vocabulary, no OOV bucket: unseen tokens get default_value.
    return core.FeatureBounds(
        feature="color_xf",
        upper_bound=upper_bound,
        embedding_input_dim=upper_bound,
        vocab_size=5,
        vocabulary="color",
        default_value=default_value,
    )


def test_a_default_value_after_the_vocabulary_is_oov_worded_as_the_default():
    # default_value=9: the table needs rows 0..9; 9 x2 are unseen tokens, not bucket hits.
    bounds = _default_value_bounds(9, upper_bound=10)
    stats = _stats(bounds, *_single_valued([0, 9, 9, 4]))

    assert (stats.in_vocab, stats.oov_bucket, stats.at_default, stats.oov) == (2, 0, 2, 2)
    assert (stats.in_range, stats.out_of_range, stats.oov_rate) == (4, 0, 0.5)
    (finding,) = findings_lib.feature_findings("eval", bounds, stats)
    assert (finding.reason, finding.count) == (Reason.OOV_BUCKET_HITS, 2)
    assert "2 were mapped to default_value 9" in finding.description
    assert "OOV bucket(s)" not in finding.description


def test_a_negative_default_value_other_than_minus_one_counts_as_oov():
    # default_value=-3: -3 is an unseen token; -1 is just a negative value.
    bounds = _default_value_bounds(-3, upper_bound=5)
    stats = _stats(bounds, *_single_valued([-3, -3, 1, -1, 2]))

    assert (stats.negative, stats.at_default, stats.oov, stats.oov_rate) == (3, 2, 2, 0.4)
    (finding,) = findings_lib.feature_findings("eval", bounds, stats)
    assert (finding.reason, finding.count) == (Reason.NEGATIVE_INDEX, 3)
    assert "2 of them are values missing from vocabulary 'color', mapped to default_value -3" in (
        finding.description
    )
