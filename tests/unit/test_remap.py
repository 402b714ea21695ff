"""The vocabulary remap core: hand-computed small vocabularies, and a property test.

A token is remapped when the old lookup gives it another index than the current
one, inside the old table; values past the old table are counted apart.
"""

import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from embedding_guard.reports import comparison
from embedding_guard.verdict import core, findings, reasons, remap_findings
from embedding_guard.verdict.remap import RemapCounter, RemapStats, VocabularyRemap
from embedding_guard.verdict.report_model import SplitReport

BOUNDED = settings(max_examples=150, deadline=None, database=None)

OLD = (b"Cash", b"Credit Card", b"No Charge")
NEW = (b"Credit Card", b"Cash", b"No Charge", b"Dispute")


def _remap(old=OLD, new=NEW, old_buckets=1, new_buckets=1, **kwargs):
    return VocabularyRemap(
        "payment_xf",
        tuple(old),
        tuple(new),
        "the baseline transform graph '/old'",
        old_num_oov_buckets=old_buckets,
        new_num_oov_buckets=new_buckets,
        **kwargs,
    )


def _roundtrip(value):
    return pickle.loads(pickle.dumps(value))  # noqa: S301 - the package's own objects.


def _count(remap, values, raw=None):
    counter = RemapCounter(remap)
    values = np.asarray(values, dtype=np.int64)
    lengths = np.ones(values.size, dtype=np.int64)
    raw_values = None if raw is None else np.asarray(raw, dtype=object)
    counter.add(values, lengths, raw_values, None if raw is None else lengths)
    return counter


def test_swapped_tokens_are_moved_and_an_added_token_past_the_old_vocabulary_is_not():
    remap = _remap()
    # 'Dispute' is new on row 3, past the old 3 entries: no old token was trained there.
    assert remap.old_rows.tolist() == [1, 0, 2, -1]
    assert remap.moved.tolist() == [True, True, False, False]
    assert remap.moved_tokens() == [(b"Credit Card", 1, 0), (b"Cash", 0, 1)]
    assert remap.added() == [b"Dispute"]
    assert remap.removed() == []
    assert not remap.identical


def test_counts_of_a_batch_by_hand():
    # Rows 0, 0, 1 are moved tokens; 2 and 3 are not; 4 (the new OOV bucket) is past
    # the old 4-row table.
    stats = _count(_remap(), [0, 0, 1, 2, 3, 4]).result()
    assert stats.remapped_values == 3
    assert stats.values_past_old_table == 1
    assert (stats.tokens_moved, stats.tokens_added, stats.tokens_removed) == (2, 1, 0)
    assert (stats.old_table_rows, stats.new_rows_needed) == (4, 5)
    assert stats.table_must_grow
    assert [(m.token, m.old_row, m.new_row, m.count) for m in stats.top_moved] == [
        ("Credit Card", 1, 0, 2),
        ("Cash", 0, 1, 1),
    ]


def test_identical_vocabularies_remap_nothing_and_give_no_finding():
    remap = _remap(old=OLD, new=OLD)
    assert remap.identical
    stats = _count(remap, [0, 1, 2, 3, 0]).result()
    assert stats.remapped_values == 0 and not stats.changed
    bounds = core.FeatureBounds("payment_xf", 4, 4, vocab_size=3, num_oov_buckets=1)
    assert remap_findings.remap_finding("train", bounds, 5, stats) is None


def test_a_vocabulary_grown_at_its_end_remaps_nothing_and_names_the_new_tokens():
    new = (*OLD, b"Dispute", b"Pcard")
    # With the table grown as the vocabulary did, no value reaches another token's row.
    stats = _count(_remap(new=new, old_table_size=6), [0, 1, 2, 3, 4, 5]).result()
    assert stats.remapped_values == 0
    assert stats.added_sample == ("Dispute", "Pcard")
    assert stats.tokens_added == 2


def test_a_token_on_a_row_past_the_old_table_is_a_table_that_must_grow_not_a_remap():
    new = (*OLD, b"Dispute", b"Pcard")
    # 'Dispute' reaches row 3, the old OOV row; 'Pcard' row 4, past the old 4-row table.
    stats = _count(_remap(new=new), [3, 4, 4]).result()
    assert stats.remapped_values == 0
    assert stats.values_past_old_table == 2
    bounds = core.FeatureBounds("payment_xf", 6, 6, vocab_size=5, num_oov_buckets=1)
    finding = remap_findings.remap_finding("eval", bounds, 3, stats)
    assert finding is not None and finding.values_past_table == 2
    assert "must grow" in finding.description and "6 rows" in finding.description


def test_without_oov_buckets_a_new_token_moved_off_the_default():
    # Old lookup: default_value -1 for unknown tokens; 'Dispute' was -1, is now row 0.
    remap = _remap(old=OLD, new=(b"Dispute", *OLD), old_buckets=0, new_buckets=0)
    assert remap.old_rows.tolist() == [-1, 0, 1, 2]
    assert remap.moved.tolist() == [True, True, True, False]
    stats = _count(remap, [0, 1, 2, 3]).result()
    # Row 3 ('No Charge', old row 2) lies past the old 3-row table.
    assert stats.remapped_values == 3
    assert stats.values_past_old_table == 1


def test_raw_mode_counts_oov_values_whose_old_row_differs():
    # New: 2 entries + 1 bucket. 'No Charge' was row 2 and now falls in bucket row 2: the
    # same row by chance; 'zzz', unknown to both, was the old bucket row 3, now row 2.
    removed = _remap(old=OLD, new=(b"Credit Card", b"Cash"), old_table_size=5)
    counter = _count(
        removed,
        [0, 1, 2, 2, 2],
        raw=[b"Credit Card", b"Cash", b"No Charge", b"zzz", b"zzz"],
    )
    stats = counter.result()
    assert stats.oov_values_remapped == 2
    assert stats.remapped_values == 4
    assert removed.oov_row_moves()


def test_raw_mode_names_removed_tokens_that_now_fall_in_oov():
    remap = _remap(old=(b"a", b"b", b"c"), new=(b"x", b"a"), old_table_size=4)
    stats = _count(remap, [2, 2, 0], raw=[b"c", b"c", b"x"]).result()
    # 'c' old row 2 -> OOV row 2: not remapped; 'x' new on row 0 (old row 3): remapped.
    assert stats.remapped_values == 1
    stats = _count(remap, [2], raw=[b"b"]).result()
    assert stats.remapped_values == 1
    assert [(m.token, m.old_row, m.new_row) for m in stats.top_moved] == [("b", 1, None)]


def test_merged_and_pickled_counters_add_up():
    remap = _remap()
    values = [0, 1, 1, 2, 3, 4, 0, 0]
    whole = _count(remap, values)
    merged = _count(remap, values[:3])
    # Beam pickles the bounds to each worker and each shard's counts back.
    shipped = _roundtrip(_count(_roundtrip(remap), values[3:]))
    merged.merge(shipped)
    assert merged.result() == whole.result()


def test_the_core_accumulator_counts_remaps_through_feature_bounds():
    bounds = core.FeatureBounds("payment_xf", 5, 5, vocab_size=4, num_oov_buckets=1, remap=_remap())
    assert "remap" not in bounds.to_json()
    left, right = core.SplitAccumulator([bounds]), core.SplitAccumulator([bounds])
    for accumulator, values in ((left, [0, 0, 2]), (right, [1, 4])):
        accumulator.add_examples(len(values))
        accumulator.features["payment_xf"].add_batch(
            np.asarray(values), np.ones(len(values), dtype=np.int64)
        )
    left.merge(_roundtrip(right))
    reports = findings.build_reports({"train": left})
    reports = remap_findings.with_remaps(reports, {"train": left})
    feature = reports["train"].features[0]
    assert feature.remap is not None and feature.remap.remapped_values == 3
    (finding,) = [f for f in feature.findings if f.reason is reasons.Reason.VOCABULARY_REMAPPED]
    assert finding.severity is reasons.Severity.ERROR
    assert finding.count == 3 and finding.rate == pytest.approx(3 / 5)
    assert "'payment_xf'" in finding.description and "60.00%" in finding.description
    assert "'Credit Card' row 1 -> row 0 x2, 'Cash' row 0 -> row 1 x1" in finding.description
    assert "warm_start_embeddings" in finding.description
    assert not reports["train"].blessed
    # The report's JSON holds the counts and reads back equal.
    document = reports["train"].to_json()
    assert document["features"][0]["vocabulary_remap"]["remapped_values"] == 3
    assert SplitReport.from_json(document) == reports["train"]
    # `embedding-guard report` names the vocabularies that changed, and by how much.
    assert comparison.vocabulary_changes(reports) == (
        "Vocabularies changed against the baseline transform graph '/old':\n"
        "  payment_xf: 2 token(s) moved, 1 added, 0 removed (3 -> 4 entries); "
        "train 3 of 5 values remapped"
    )
    identical = core.FeatureBounds(
        "payment_xf", 4, 4, vocab_size=3, num_oov_buckets=1, remap=_remap(new=OLD)
    )
    same = core.SplitAccumulator([identical])
    assert (
        comparison.vocabulary_changes(
            remap_findings.with_remaps(findings.build_reports({"train": same}), {"train": same})
        )
        == ""
    )


def test_severity_setting_makes_it_a_warning():
    bounds = core.FeatureBounds("payment_xf", 5, 5, vocab_size=4, num_oov_buckets=1)
    stats = _count(_remap(), [0]).result()
    finding = remap_findings.remap_finding("train", bounds, 1, stats, reasons.Severity.WARNING)
    assert finding is not None and finding.severity is reasons.Severity.WARNING


def test_stats_json_round_trip_and_damaged_documents():
    stats = _count(_remap(), [0, 1, 4], raw=[b"Credit Card", b"Cash", b"zzz"]).result()
    assert RemapStats.from_json(stats.to_json(), "x") == stats
    document = stats.to_json()
    del document["remapped_values"]
    with pytest.raises(ValueError, match="remapped_values"):
        RemapStats.from_json(document, "x")


def test_order_unknown_finding_names_the_input_that_would_tell():
    (finding,) = remap_findings.order_unknown_findings(
        ["train"],
        ["payment_xf"],
        "the model holds no transform layer",
        "--baseline-transform-graph",
    )
    assert finding.reason is reasons.Reason.VOCABULARY_ORDER_UNKNOWN
    assert finding.severity is reasons.Severity.INFO
    assert "--baseline-transform-graph" in finding.description
    assert "cannot be known" in finding.description


# --- property: the counter equals the definition, value by value ------------------------

TOKENS = [bytes([c]) for c in b"abcdefgh"]


def _brute_force(old, new, table_rows, values):
    """Remapped values by the definition, one by one: inside the old table, the token
    sat on another old row, or on none while an old token sat on this row."""
    count = 0
    for value in values:
        if not 0 <= value < len(new) or value >= table_rows:
            continue
        token = new[value]
        count += old.index(token) != value if token in old else value < len(old)
    return count


@BOUNDED
@given(
    old=st.lists(st.sampled_from(TOKENS), unique=True, max_size=8),
    new=st.lists(st.sampled_from(TOKENS), unique=True, max_size=8),
    old_buckets=st.sampled_from([0, 1]),
    table_size=st.one_of(st.none(), st.integers(1, 12)),
    values=st.lists(st.integers(-2, 12), max_size=60),
    cut=st.integers(0, 60),
)
def test_counter_equals_brute_force(old, new, old_buckets, table_size, values, cut):
    remap = _remap(old=old, new=new, old_buckets=old_buckets, old_table_size=table_size)
    rows = remap.old_rows_in_table
    counter = _count(remap, values[:cut])
    counter.merge(_count(remap, values[cut:]))
    stats = counter.result()
    assert stats.remapped_values == _brute_force(old, new, rows, values)
    expected_past = sum(rows <= v < remap.new_rows_needed for v in values)
    assert stats.values_past_old_table == expected_past
    assert stats.tokens_added == len([t for t in new if t not in old])
    assert remap.removed() == [t for t in old if t not in new]
    assert stats.tokens_moved == sum(t in old and old.index(t) != i for i, t in enumerate(new))
    # The counts per moved token add up to the total.
    if len(stats.top_moved) < 10:
        assert sum(m.count for m in stats.top_moved) == stats.remapped_values
