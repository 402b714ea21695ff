"""Which bound a feature gets, and from where: feature_vocabularies, then the graph,
then a vocabulary named like the feature, then the schema's int_domain.

Hand-made schemas and graph derivations; no TensorFlow graph is built here (the
TFT-built cases are in tests/component/test_graph_analysis.py).
"""

import pytest
from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import schema_pb2

from embedding_guard.bounds import resolve as bounds
from embedding_guard.bounds.graph_analysis import DerivationKind, FeatureDerivation

SCHEMA = text_format.Parse(
    """
    feature { name: "city_xf" type: INT int_domain { min: 0 max: 25 is_categorical: true } }
    feature { name: "age_xf" type: INT int_domain { min: 0 max: 4 is_categorical: true } }
    feature { name: "hour_xf" type: INT }
    feature { name: "price_xf" type: FLOAT }
    """,
    schema_pb2.Schema(),
)
# city: 25 entries; int_domain.max 25 -> 1 OOV bucket. Named "city", not "city_xf".
VOCABULARIES = {"city": 25, "vocab_compute_and_apply_vocabulary_vocabulary": 25}
CITY_FROM_GRAPH = FeatureDerivation(
    feature="city_xf",
    raw_features=("city",),
    kind=DerivationKind.VOCABULARY,
    vocabulary="vocab_compute_and_apply_vocabulary_vocabulary",
    vocabulary_file="/graph/transform_fn/assets/vocab_compute_and_apply_vocabulary_vocabulary",
    vocab_size=25,
    num_oov_buckets=1,
)


def test_the_graph_gives_vocabulary_oov_buckets_raw_feature_and_asset_name():
    found = bounds.feature_bounds("city_xf", SCHEMA, VOCABULARIES, derivation=CITY_FROM_GRAPH)

    assert (found.upper_bound, found.vocab_size, found.num_oov_buckets) == (26, 25, 1)
    assert (found.bound_kind, found.raw_feature) == ("vocabulary", "city")
    assert found.vocabulary == "vocab_compute_and_apply_vocabulary_vocabulary"
    # The asset's name only: the report does not change when the graph moves.
    assert found.vocabulary_file == "vocab_compute_and_apply_vocabulary_vocabulary"
    assert "from the lookup table that produces city_xf" in found.bound_source


def test_feature_vocabularies_win_over_the_graph():
    found = bounds.feature_bounds(
        "city_xf", SCHEMA, VOCABULARIES, vocabulary="city", derivation=CITY_FROM_GRAPH
    )

    assert (found.vocabulary, found.bound_kind) == ("city", "feature_vocabularies")


def test_without_the_graph_a_vocabulary_named_like_the_feature_links():
    found = bounds.feature_bounds("city_xf", SCHEMA, VOCABULARIES)

    assert (found.vocabulary, found.bound_kind, found.upper_bound) == (
        "city",
        "vocabulary_name",
        26,
    )


def test_without_any_vocabulary_the_int_domain_bounds_and_nothing_is_in_vocab():
    found = bounds.feature_bounds("age_xf", SCHEMA, {})

    assert (found.upper_bound, found.vocab_size, found.bound_kind) == (5, None, "int_domain")


def test_a_hash_bucket_count_from_the_graph():
    hashed = FeatureDerivation(
        feature="age_xf", raw_features=("age",), kind=DerivationKind.HASH, num_buckets=5
    )

    found = bounds.feature_bounds("age_xf", SCHEMA, {}, derivation=hashed)

    assert (found.upper_bound, found.vocab_size, found.bound_kind) == (5, None, "hash")


def test_embedding_input_dims_default_to_the_bound_and_can_be_smaller():
    assert bounds.feature_bounds("age_xf", SCHEMA, {}).embedding_input_dim == 5
    assert (
        bounds.feature_bounds("age_xf", SCHEMA, {}, embedding_input_dim=3).embedding_input_dim == 3
    )


def test_a_pass_through_integer_is_not_checked_and_says_what_would_check_it():
    passthrough = FeatureDerivation(
        feature="hour_xf", raw_features=("hour",), kind=DerivationKind.PASSTHROUGH
    )
    checked = bounds.resolve_bounds(
        SCHEMA, VOCABULARIES, derivations={"city_xf": CITY_FROM_GRAPH, "hour_xf": passthrough}
    )

    (unchecked,) = bounds.unchecked_features(
        SCHEMA, checked, {"city_xf": CITY_FROM_GRAPH, "hour_xf": passthrough}
    )
    assert [b.feature for b in checked] == ["age_xf", "city_xf"]
    assert unchecked.name == "hour_xf"
    assert unchecked.raw_features == ("hour",)
    assert "embedding_input_dims={'hour_xf': N}" in unchecked.parameter_that_would_check_it


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"features": ["cty_xf"]}, "features names ['cty_xf'], which the transformed schema lacks"),
        (
            {"feature_vocabularies": {"city_xf": "cities"}},
            "feature_vocabularies['city_xf'] = 'cities' is not a vocabulary",
        ),
        (
            {"features": ["city_xf"], "embedding_input_dims": {"age_xf": 3}},
            "embedding_input_dims names ['age_xf'], which are not in features ['city_xf']",
        ),
    ],
)
def test_names_that_match_nothing_are_errors_listing_the_valid_ones(kwargs, message):
    with pytest.raises(bounds.BoundsError) as raised:
        bounds.resolve_bounds(SCHEMA, VOCABULARIES, **kwargs)

    assert message in str(raised.value)


def test_a_feature_with_no_bound_anywhere_asks_for_one():
    with pytest.raises(bounds.BoundsError, match=r"Pass embedding_input_dims=\{'hour_xf': N\}"):
        bounds.feature_bounds("hour_xf", SCHEMA, {})
