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
    "model_lookup_silent": True,
    "model_bad_index_behaviour": "-1 -> no error, 25 -> InvalidArgumentError",
}


def test_a_model_table_short_of_the_oov_bucket_blocks_before_any_value_reaches_it():
    found = _reasons(_bounds(**MODEL_EMBEDDING), [0, 3, 24])

    too_small = found[Reason.EMBEDDING_TABLE_TOO_SMALL]
    assert (too_small.severity, too_small.count) == (Severity.ERROR, 0)
    assert "below 25 (model layer 'city_xf_embedding'" in too_small.description
    assert "[0, 26)" in too_small.description
    assert set(found) == {Reason.EMBEDDING_TABLE_TOO_SMALL}


def test_the_same_size_given_as_a_parameter_is_no_table_finding():
    # embedding_input_dims says what the user asserts; only values over it block.
    bounds = _bounds(embedding_input_dim=25, embedding_dim_kind="embedding_input_dims")

    assert Reason.EMBEDDING_TABLE_TOO_SMALL not in _reasons(bounds, [0, 3, 24])


def test_keras_embedding_wraps_negatives_silently_but_raises_past_its_table():
    # -1 x2 wrap to the last rows; 25 (the OOV bucket) is past the 25-row table,
    # which a CPU lookup raises for: INDEX_OVER_EMBEDDING_DIM, not silent.
    found = _reasons(_bounds(**MODEL_EMBEDDING), [-1, -1, 25, 3])

    assert found[Reason.SILENT_WRONG_LOOKUP].count == 2
    assert "would silently use the wrong row" in found[Reason.SILENT_WRONG_LOOKUP].description
    assert found[Reason.INDEX_OVER_EMBEDDING_DIM].count == 1
    assert found[Reason.EMBEDDING_TABLE_TOO_SMALL].count == 1


def test_one_hot_zeroes_both_negative_and_too_large_values():
    model = dict(MODEL_EMBEDDING, model_lookup_kind="OneHot", model_layer="city_onehot")

    found = _reasons(_bounds(**model), [-1, 25, 25, 3])

    assert found[Reason.SILENT_WRONG_LOOKUP].count == 3
    assert "'city_onehot'" in found[Reason.SILENT_WRONG_LOOKUP].description


def test_a_lookup_that_raises_is_never_called_silent():
    model = dict(MODEL_EMBEDDING, model_lookup_kind="ResourceGather", model_lookup_silent=False)

    assert Reason.SILENT_WRONG_LOOKUP not in _reasons(_bounds(**model), [-1, 25])


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
