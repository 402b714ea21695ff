"""Model analysis on SavedModels built in the session, each with one known, wrong table."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from model_builders import (
    DEMO_EMBEDDING_DIMS,
    TFX_TAXI_ESTIMATOR,
    BuiltModels,
    built_models,
    serve,
)

from embedding_guard.bounds import model_analysis
from embedding_guard.bounds.model_analysis import (
    KIND_BINCOUNT,
    KIND_KERAS_EMBEDDING,
    KIND_ONE_HOT,
    KIND_RESOURCE_GATHER,
    METHOD_GRAPH,
    METHOD_GRAPH_AND_PROBE,
    ModelInputError,
    analyze_model,
    render_lookups,
)
from embedding_guard.errors import InputError
from embedding_guard.verdict.lookup import Outcome


@pytest.fixture(scope="session")
def models(tmp_path_factory) -> BuiltModels:
    # One folder per session, so every module that needs these models shares them.
    return built_models(str(tmp_path_factory.getbasetemp() / "models"))


@pytest.fixture(scope="session")
def analyses(models):
    cache = {}

    def analysis(name: str) -> model_analysis.ModelAnalysis:
        if name not in cache:
            cache[name] = analyze_model(getattr(models, name))
        return cache[name]

    return analysis


def _model_dims(analysis):
    # What a run takes as each feature's embedding input_dim from the model: the
    # governing lookup's feature_input_dim (see orchestration._model_input_dims).
    return {
        feature: lookup.feature_input_dim
        for feature, lookup in analysis.governing_lookups().items()
    }


def _only(analysis, feature):
    found = analysis.by_feature()[feature]
    assert len(found) == 1, found
    return found[0]


def test_keras3_embedding_sizes_found_by_tracing_and_probing(analyses):
    analysis = analyses("keras3_embedding")

    product = _only(analysis, "product_xf")
    assert (product.lookup_kind, product.table_size, product.offset) == (
        KIND_KERAS_EMBEDDING,
        40,
        0,
    )
    assert product.probed_table_size == 40
    assert product.method == METHOD_GRAPH_AND_PROBE
    assert product.layer_name == "product_xf_embedding"
    assert product.silent and product.traced
    assert product.feature_source == model_analysis.FEATURE_SOURCE_SIGNATURE
    assert product.table_shape == (40, 4)
    assert product.source_text() == (
        "model layer 'product_xf_embedding' (Embedding, table 40 x 4), "
        "by graph tracing, confirmed by black-box probing"
    )
    assert (product.on_negative, product.on_too_large, product.guarded) == (
        Outcome.WRAPS,
        Outcome.RAISES,
        False,
    )
    assert "measured on CPU: -1 -> no error, 40 -> InvalidArgumentError" in product.evidence
    assert "SelectV2(x < 0, x + n, x)" in product.evidence
    assert _only(analysis, "city_xf").table_size == 25
    assert _model_dims(analysis) == {"product_xf": 40, "city_xf": 25}
    assert analysis.governing_lookups()["product_xf"] is product
    assert analysis.probed


def test_category_encoding_sizes_and_kinds(analyses):
    analysis = analyses("category_encoding")

    month = _only(analysis, "month_xf")
    hour = _only(analysis, "hour")
    assert (month.lookup_kind, month.table_size, month.layer_name) == (
        KIND_ONE_HOT,
        11,
        "month_encoding",
    )
    assert (hour.lookup_kind, hour.table_size, hour.layer_name) == (
        KIND_BINCOUNT,
        24,
        "hour_encoding",
    )
    assert (month.on_negative, month.on_too_large) == (Outcome.ZERO_ROW, Outcome.ZERO_ROW)
    assert (hour.on_negative, hour.on_too_large) == (Outcome.RAISES, Outcome.ZERO_ROW)
    assert not month.guarded and not hour.guarded
    assert month.method == hour.method == METHOD_GRAPH_AND_PROBE
    assert (month.probed_table_size, hour.probed_table_size) == (11, 24)


def test_tf_module_embedding_lookup_is_not_silent(analyses):
    product = _only(analyses("embedding_lookup"), "product_xf")

    assert (product.lookup_kind, product.table_size, product.offset) == (
        KIND_RESOURCE_GATHER,
        40,
        0,
    )
    assert product.variable_name == "product_table"
    assert product.method == METHOD_GRAPH_AND_PROBE
    assert not product.silent
    assert (product.on_negative, product.on_too_large) == (Outcome.RAISES, Outcome.RAISES)
    assert "-1 -> InvalidArgumentError, 40 -> InvalidArgumentError" in product.evidence
    # Unguarded, the gather raises on CPU only: on GPU tf.gather returns zeros.
    assert product.on_gpu(negative=False) is Outcome.ZERO_ROW


def test_tf_one_hot_depth(analyses):
    city = _only(analyses("one_hot"), "city_xf")

    assert (city.lookup_kind, city.table_size, city.feature_input_dim) == (KIND_ONE_HOT, 24, 24)
    assert city.silent
    assert city.probed_table_size == 24


def test_offset_before_the_lookup_is_followed(analyses):
    month = _only(analyses("offset"), "month_xf")

    assert (month.table_size, month.offset) == (12, 1)
    # Row 0 is month -1, so the table holds months -1..10 and month 11 is out of range.
    assert (month.min_valid_value, month.feature_input_dim) == (-1, 11)
    assert month.probed_table_size == 12
    assert month.method == METHOD_GRAPH_AND_PROBE
    assert "index = month_xf + 1" in month.source_text()


def test_arithmetic_that_is_not_an_offset_is_reported_not_traced(analyses):
    untraced = [lookup for lookup in analyses("offset").lookups if not lookup.traced]

    assert len(untraced) == 1
    (age,) = untraced
    assert (age.feature, age.offset, age.table_size) == (None, None, 7)
    assert "not traced" in age.note and "FloorMod" in age.note
    assert age.method == METHOD_GRAPH


def test_table_size_missing_from_the_graph_is_found_by_probing(analyses):
    age = _only(analyses("dynamic_table"), "age_xf")

    assert (age.table_size, age.probed_table_size) == (4, 4)
    assert age.method == model_analysis.METHOD_PROBE
    assert (age.on_negative, age.on_too_large) == (Outcome.RAISES, Outcome.RAISES)
    assert "-1 -> InvalidArgumentError, 4 -> InvalidArgumentError" in age.evidence


def test_feature_columns_in_a_tf1_graph(analyses):
    analysis = analyses("feature_columns")

    age = _only(analysis, "age_xf")
    city = _only(analysis, "city_xf")
    assert (age.lookup_kind, age.table_size, age.offset) == (KIND_RESOURCE_GATHER, 4, 0)
    assert age.layer_name == "input_layer/age_xf_embedding"
    assert (city.lookup_kind, city.table_size) == (KIND_ONE_HOT, 24)
    assert age.method == city.method == METHOD_GRAPH_AND_PROBE
    assert [lookup.feature for lookup in analysis.lookups] == ["age_xf", "city_xf", "hour_xf"]
    # The embedding column drops -1 (and every negative id) before its lookup.
    assert (age.on_negative, age.on_too_large) == (Outcome.FILTERED, Outcome.RAISES)
    assert (city.on_negative, city.on_too_large) == (Outcome.FILTERED, Outcome.ZERO_ROW)
    assert "-1 -> no error, 4 -> InvalidArgumentError" in age.evidence
    assert "tf.feature_column drops -1" in age.evidence


def test_identity_column_default_value_is_silent_and_unprobeable(analyses):
    hour = _only(analyses("feature_columns"), "hour_xf")

    assert (hour.lookup_kind, hour.table_size, hour.method) == (
        KIND_RESOURCE_GATHER,
        24,
        METHOD_GRAPH,
    )
    assert hour.on_too_large is Outcome.DEFAULT_ROW
    assert "silently become its default_value 0" in hour.evidence
    assert "no bad value found" in hour.note


def test_fact_identity_column_default_value_maps_out_of_range_to_the_default(models):
    zeros = np.zeros([1], np.int64)
    at_default = serve(models.feature_columns, age_xf=zeros, city_xf=zeros, hour_xf=zeros)
    out_of_range = serve(models.feature_columns, age_xf=zeros, city_xf=zeros, hour_xf=zeros + 24)

    np.testing.assert_array_equal(at_default["features"], out_of_range["features"])


def test_tfx_shipped_taxi_estimator_feature_columns_by_scope():
    analysis = analyze_model(TFX_TAXI_ESTIMATOR)

    sizes = {lookup.feature: lookup.table_size for lookup in analysis.lookups}
    assert sizes == {
        "company_xf": 1010,
        "payment_type_xf": 1010,
        "dropoff_latitude_xf": 10,
        "dropoff_longitude_xf": 10,
        "pickup_latitude_xf": 10,
        "pickup_longitude_xf": 10,
        "trip_start_day_xf": 31,
        "trip_start_hour_xf": 24,
        "trip_start_month_xf": 12,
    }
    for lookup in analysis.lookups:
        # A TF1 export keeps no names for the transform's outputs: the feature
        # column's scope is the only name left.
        assert lookup.feature_source == model_analysis.FEATURE_SOURCE_COLUMN_SCOPE
        assert not lookup.traced
        assert lookup.on_too_large is Outcome.DEFAULT_ROW
        assert "default_value 0" in lookup.evidence
    assert analysis.probe_note.startswith("not probed")


def test_feature_with_two_tables_is_bounded_by_the_smaller(analyses):
    analysis = analyses("shared_feature")

    by_kind = {lookup.lookup_kind: lookup for lookup in analysis.by_feature()["city_xf"]}
    assert sorted(by_kind) == [KIND_ONE_HOT, KIND_RESOURCE_GATHER]
    gather, one_hot = by_kind[KIND_RESOURCE_GATHER], by_kind[KIND_ONE_HOT]
    assert (gather.table_size, one_hot.table_size) == (20, 30)
    assert analysis.governing_lookups()["city_xf"] is gather
    assert _model_dims(analysis) == {"city_xf": 20}
    # Probing sees the whole model: the smaller table fails first.
    assert gather.method == METHOD_GRAPH_AND_PROBE
    assert one_hot.method == model_analysis.METHOD_GRAPH_PROBE_DISAGREES
    assert (one_hot.table_size, one_hot.probed_table_size) == (30, 20)
    assert "another lookup of the same feature may fail first" in one_hot.note


def test_demo_serving_module_traced_through_the_transform_layer(analyses):
    analysis = analyses("demo")

    assert analysis.signature_inputs == ("examples",)
    assert _model_dims(analysis) == DEMO_EMBEDDING_DIMS
    for feature in DEMO_EMBEDDING_DIMS:
        lookup = _only(analysis, feature)
        assert lookup.lookup_kind == KIND_KERAS_EMBEDDING
        assert lookup.layer_name == f"{feature}_embedding"
        assert lookup.method == METHOD_GRAPH
        assert lookup.probed_table_size is None
        assert lookup.feature_source == model_analysis.FEATURE_SOURCE_CALL_OUTPUT
    assert not analysis.probed
    assert analysis.probe_note.startswith("not probed")


def test_feature_parsed_from_transformed_examples_is_named_by_its_key(analyses):
    age = _only(analyses("parsed_examples"), "age_xf")

    assert (age.lookup_kind, age.table_size, age.method) == (KIND_ONE_HOT, 4, METHOD_GRAPH)
    assert age.feature_source == model_analysis.FEATURE_SOURCE_EXAMPLE_KEY


def test_render_lookups_lists_feature_kind_size_and_method(analyses):
    text = render_lookups(analyses("demo"))

    assert "product_xf -> Embedding -> table 40, valid values [0, 40) -> graph tracing" in text
    assert "layer product_xf_embedding, op functional" in text
    assert (
        "bad index: negative -> silently reads row value + table size (a wrong row) "
        "(on GPU too); >= 40 -> raises InvalidArgumentError (on GPU it silently returns "
        "an all-zero row)"
    ) in text
    assert "decided by: a SelectV2(x < 0, x + n, x) before its GatherV2" in text
    offset_text = render_lookups(analyses("offset"))
    assert "month_xf -> ResourceGather -> table 12 (index = value + 1), valid values [-1, 11)" in (
        offset_text
    )
    assert "(not traced) -> ResourceGather -> table 7" in offset_text


# Black-box facts behind the `silent` flags: each runs the exported model on CPU.


def test_fact_keras3_embedding_wraps_minus_one_to_the_last_row(models, analyses):
    zeros = np.zeros([1], np.int64)
    wrapped = serve(models.keras3_embedding, product_xf=zeros - 1, city_xf=zeros)
    last_row = serve(models.keras3_embedding, product_xf=zeros + 39, city_xf=zeros)

    np.testing.assert_array_equal(wrapped["output_0"], last_row["output_0"])
    assert _only(analyses("keras3_embedding"), "product_xf").silent


def test_fact_category_encoding_returns_zeros_for_num_tokens(models, analyses):
    rows = serve(
        models.category_encoding,
        month_xf=np.array([11, 10], np.int64),
        hour=np.array([[24], [23]], np.int64),
    )

    np.testing.assert_array_equal(rows["output_0"][0], np.zeros(11))
    assert rows["output_0"][1][10] == 1
    np.testing.assert_array_equal(rows["output_1"][0], np.zeros(24))
    assert rows["output_1"][1][23] == 1
    analysis = analyses("category_encoding")
    assert _only(analysis, "month_xf").silent and _only(analysis, "hour").silent


def test_fact_tf_one_hot_returns_zeros_for_depth_and_negatives(models, analyses):
    rows = serve(models.one_hot, city_xf=np.array([24, -1], np.int64))["city_row"]

    np.testing.assert_array_equal(rows, np.zeros([2, 24]))
    assert _only(analyses("one_hot"), "city_xf").silent


def test_fact_embedding_lookup_raises_for_the_table_size(models, analyses):
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"is not in \[0, 40\)"):
        serve(models.embedding_lookup, product_xf=np.array([40], np.int64))
    assert not _only(analyses("embedding_lookup"), "product_xf").silent


def test_probing_can_be_turned_off(models):
    analysis = analyze_model(models.embedding_lookup, probe=False)

    (product,) = analysis.lookups
    assert (product.method, product.probed_table_size) == (METHOD_GRAPH, None)
    assert not analysis.probed


def test_not_a_directory_is_an_input_error(tmp_path):
    missing = tmp_path / "no_model"

    with pytest.raises(ModelInputError, match=r"'.*no_model' does not exist"):
        analyze_model(str(missing))
    assert issubclass(ModelInputError, InputError)


def test_directory_without_saved_model_pb_is_an_input_error(tmp_path):
    with pytest.raises(ModelInputError, match=r"saved_model.pb' not found.*a Model artifact"):
        analyze_model(str(tmp_path))


def test_model_artifact_uri_resolves_to_format_serving(models, tmp_path):
    (tmp_path / "Format-Serving").symlink_to(models.one_hot, target_is_directory=True)

    analysis = analyze_model(str(tmp_path), probe=False)

    assert analysis.saved_model_dir == str(tmp_path / "Format-Serving")
    assert _only(analysis, "city_xf").table_size == 24


def test_estimator_artifact_uri_resolves_to_its_newest_export():
    artifact_uri = TFX_TAXI_ESTIMATOR.split("/Format-Serving/")[0]

    assert model_analysis.serving_model_dir(artifact_uri) == TFX_TAXI_ESTIMATOR


def test_unparsable_saved_model_pb_is_an_input_error(tmp_path):
    (tmp_path / "saved_model.pb").write_bytes(b"\xff\xff not a protocol buffer")

    with pytest.raises(ModelInputError, match=r"Cannot read .*saved_model.pb' as a SavedModel"):
        analyze_model(str(tmp_path))


def test_unknown_signature_is_an_input_error_listing_the_signatures(models):
    with pytest.raises(ModelInputError, match=r"no signature 'predict'.*\['serving_default'\]"):
        analyze_model(models.one_hot, signature_name="predict")


def test_a_file_given_as_the_model_says_it_is_a_file(tmp_path):
    # It said the model directory "does not exist".
    model_file = tmp_path / "model.txt"
    model_file.write_text("x")

    with pytest.raises(model_analysis.ModelInputError, match="is a file, not a model folder"):
        model_analysis.serving_model_dir(str(model_file))
