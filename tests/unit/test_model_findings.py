"""Findings about the model's own lookups and about the graph, from hand-made counts."""

import numpy as np
import pytest

from embedding_guard.verdict import core, findings
from embedding_guard.verdict.reasons import Reason, Severity


def _bounds(**model) -> core.FeatureBounds:
    # city_xf: 25 vocabulary entries + 1 OOV bucket; the model's table as given.
    return core.FeatureBounds(
        feature="city_xf",
        upper_bound=26,
        embedding_input_dim=model.pop("embedding_input_dim", 26),
        vocab_size=25,
        num_oov_buckets=1,
        vocabulary="city",
        bound_source="vocabulary 'city' (25 entries) + 1 OOV bucket(s)",
        **model,
    )


def _reasons(bounds: core.FeatureBounds, values: list[int]) -> dict[Reason, findings.Finding]:
    accumulator = core.FeatureAccumulator(bounds)
    accumulator.add_batch(np.array(values, dtype=np.int64), np.ones(len(values), dtype=np.int64))
    found = findings.feature_findings("eval", bounds, accumulator.result())
    return {f.reason: f for f in found}


MODEL_EMBEDDING = {
    "embedding_dim_kind": "model",
    "embedding_input_dim": 25,
    "embedding_dim_source": "model layer 'city_xf_embedding' (Embedding, table 25 x 4)",
    "model_lookup_kind": "Embedding",
    "model_layer": "city_xf_embedding",
    # Keras 3's Embedding: SelectV2 wraps negatives, then GatherV2 raises past the table.
    "model_on_negative": "wraps",
    "model_on_too_large": "raises",
    "model_bad_index_behaviour": "a SelectV2 wrap of negatives before GatherV2",
}


def _problems_in_order(bounds: core.FeatureBounds, values: list[int]) -> list[Reason]:
    accumulator = core.FeatureAccumulator(bounds)
    accumulator.add_batch(np.array(values, dtype=np.int64), np.ones(len(values), dtype=np.int64))
    found = findings.feature_findings("eval", bounds, accumulator.result())
    return [f.reason for f in found if f.severity is not Severity.INFO]


def test_a_model_table_short_of_the_oov_bucket_blocks_before_any_value_reaches_it():
    found = _reasons(_bounds(**MODEL_EMBEDDING), [0, 3, 24])

    too_small = found[Reason.EMBEDDING_TABLE_TOO_SMALL]
    assert (too_small.severity, too_small.count, too_small.values_past_table) == (
        Severity.ERROR,
        0,
        0,
    )
    assert "below 25 (model layer 'city_xf_embedding'" in too_small.description
    assert "[0, 26)" in too_small.description
    # No value reached the table's end, so no lookup outcome to describe.
    assert too_small.lookup is None
    assert set(found) == {Reason.EMBEDDING_TABLE_TOO_SMALL}


def test_the_same_size_given_as_a_parameter_is_no_table_finding():
    # embedding_input_dims says what the user asserts; only values over it block.
    bounds = _bounds(embedding_input_dim=25, embedding_dim_kind="embedding_input_dims")

    assert Reason.EMBEDDING_TABLE_TOO_SMALL not in _reasons(bounds, [0, 3, 24])


def test_one_problem_per_cause_with_the_lookup_outcome_inside():
    # -1 x2: negative (the Keras 3 Embedding wraps them); 25 x1: the OOV bucket,
    # past the 25-row table. Two causes, two findings; no SILENT_WRONG_LOOKUP.
    found = _problems_in_order(_bounds(**MODEL_EMBEDDING), [-1, -1, 25, 3])

    assert found == [Reason.NEGATIVE_INDEX, Reason.EMBEDDING_TABLE_TOO_SMALL]


def test_keras_embedding_wraps_negatives_silently_but_raises_past_its_table():
    found = _reasons(_bounds(**MODEL_EMBEDDING), [-1, -1, 25, 3])

    negative = found[Reason.NEGATIVE_INDEX]
    assert (negative.count, negative.values_past_table) == (2, 2)
    assert negative.lookup is not None and negative.lookup.silent
    assert negative.lookup.on_cpu == "silently reads row value + table size (a wrong row)"
    assert "'city_xf_embedding'" in negative.lookup.lookup
    too_small = found[Reason.EMBEDDING_TABLE_TOO_SMALL]
    assert (too_small.count, too_small.values_past_table) == (1, 1)
    assert too_small.lookup is not None
    assert too_small.lookup.on_cpu == "raises InvalidArgumentError"
    # tf.gather on GPU returns zeros where the CPU kernel raises.
    assert too_small.lookup.on_gpu == "silently returns an all-zero row"
    assert "raises InvalidArgumentError" in too_small.description


def test_one_hot_zeroes_both_negative_and_too_large_values():
    model = dict(
        MODEL_EMBEDDING,
        model_lookup_kind="OneHot",
        model_layer="city_onehot",
        model_on_negative="zero_row",
        model_on_too_large="zero_row",
    )

    found = _reasons(_bounds(**model), [-1, 25, 25, 3])

    assert found[Reason.NEGATIVE_INDEX].lookup.on_cpu == "silently returns an all-zero row"
    assert found[Reason.EMBEDDING_TABLE_TOO_SMALL].values_past_table == 2
    assert "'city_onehot'" in found[Reason.EMBEDDING_TABLE_TOO_SMALL].description


def test_a_lookup_guarded_by_an_assert_raises_on_every_device():
    # tf_keras's CategoryEncoding: an Assert beside its DenseBincount.
    model = dict(
        MODEL_EMBEDDING,
        model_lookup_kind="DenseBincount",
        model_on_negative="raises",
        model_on_too_large="raises",
        model_lookup_guarded=True,
    )

    found = _reasons(_bounds(**model), [-1, 25])

    for reason in (Reason.NEGATIVE_INDEX, Reason.EMBEDDING_TABLE_TOO_SMALL):
        lookup = found[reason].lookup
        assert lookup is not None and not lookup.silent
        assert (lookup.on_cpu, lookup.on_gpu) == ("raises InvalidArgumentError",) * 2
        assert "silently" not in found[reason].description


def test_without_a_model_the_finding_says_what_each_kind_of_lookup_does():
    found = _reasons(_bounds(), [-1])[Reason.NEGATIVE_INDEX]

    assert found.lookup is not None
    assert "Keras 3 Embedding silently reads row" in found.lookup.on_cpu
    assert "tf_keras Embedding raise InvalidArgumentError" in found.lookup.on_cpu


def test_schema_disagreement_is_a_warning_naming_both_sides():
    bounds = _bounds(schema_disagreement="The schema's int_domain.max is 30, the graph's 25.")

    found = _reasons(bounds, [1])[Reason.SCHEMA_DOMAIN_MISMATCH]

    assert found.severity is Severity.WARNING
    assert "int_domain.max is 30" in found.description


@pytest.mark.parametrize("splits", [["eval"], ["eval", "train"]])
def test_an_unchecked_model_lookup_is_a_warning_in_every_split(splits):
    found = findings.model_lookup_unchecked(splits, "hour_xf", "The model looks up 'hour_xf'.")

    assert [(f.split, f.feature, f.reason, f.severity) for f in found] == [
        (split, "hour_xf", Reason.MODEL_LOOKUP_UNCHECKED, Severity.WARNING) for split in splits
    ]
