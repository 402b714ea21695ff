"""End-to-end: the demo's pre-Trainer validator blesses clean and small_table, blocks broken.

The session's `demo` fixture (conftest.py) runs every config under LocalDagRunner
into a temporary pipeline root and MLMD database; every test reads that outcome
back from MLMD, the report files and the demo CSVs, which the expected values are
computed from independently.
"""

import json
import os

import demo_pipeline
import pytest
import tensorflow as tf
from e2e_runs import CONFIGS, PIPELINE_NAME, read_csv, unseen_in_train
from ml_metadata.proto import metadata_store_pb2
from tensorflow_metadata.proto.v0 import anomalies_pb2

SPLITS = ("train", "eval")
# The configs whose pre-Trainer validator is given month_xf's size; small_table gives
# none, and the transformed schema holds no bound for month_xf.
MONTH_DIM_CONFIGS = ("clean", "broken")
VOCABULARY_FEATURES = ("product_xf", "city_xf", "age_xf")


def test_all_runs_share_the_pipeline_context_and_have_distinct_run_ids(demo):
    store = demo["store"]
    assert [c.name for c in store.get_contexts_by_type("pipeline")] == [PIPELINE_NAME]
    assert len({demo[config].run_id for config in CONFIGS}) == len(CONFIGS)


def test_clean_run_trains_and_publishes_a_serving_model(demo):
    trainer = demo["clean"].executions["Trainer"]
    assert trainer.last_known_state == metadata_store_pb2.Execution.COMPLETE
    model = demo["clean"].output("Trainer", "Model")
    assert tf.io.gfile.exists(os.path.join(model.uri, "Format-Serving", "saved_model.pb"))


def test_clean_model_serves_raw_examples_including_unseen_values(demo, csv_rows):
    model = demo["clean"].output("Trainer", "Model")
    serve = tf.saved_model.load(os.path.join(model.uri, "Format-Serving")).signatures[
        "serving_default"
    ]
    train_cities = {row["city"] for row in csv_rows["train"]}
    rows = [row for row in csv_rows["eval"] if row["city"] not in train_cities][:3]
    rows += csv_rows["eval"][:5]
    examples = []
    for row in rows:
        features = {
            "product": tf.train.Feature(
                bytes_list=tf.train.BytesList(value=[row["product"].encode()])
            ),
            "city": tf.train.Feature(bytes_list=tf.train.BytesList(value=[row["city"].encode()])),
            "age": tf.train.Feature(float_list=tf.train.FloatList(value=[float(row["age"])])),
            "month": tf.train.Feature(int64_list=tf.train.Int64List(value=[int(row["month"])])),
        }
        examples.append(
            tf.train.Example(features=tf.train.Features(feature=features)).SerializeToString()
        )
    probabilities = serve(examples=tf.constant(examples))["click_probability"].numpy()
    assert probabilities.shape == (len(rows), 1)
    assert ((probabilities >= 0.0) & (probabilities <= 1.0)).all()


def test_every_run_but_the_broken_one_publishes_a_model(demo):
    # The broken run's own MLMD assertions are in test_orchestrators.py, for every runner.
    models = demo["store"].get_artifacts_by_type("Model")
    assert sorted(m.uri for m in models) == sorted(
        demo[config].output("Trainer", "Model").uri for config in ("clean", "small_table")
    )


@pytest.mark.parametrize(
    ("config", "expected_blessed"), [("clean", 1), ("broken", 0), ("small_table", 1)]
)
def test_anomalies_artifact_carries_the_verdict(demo, config, expected_blessed):
    anomalies = demo[config].anomalies()
    assert anomalies.custom_properties["blessed"].int_value == expected_blessed
    reports = [demo[config].report(split) for split in SPLITS]
    assert all(r["blessed"] is (r["num_errors"] == 0) for r in reports)
    assert all(r["blessed"] for r in reports) is (expected_blessed == 1)


@pytest.mark.parametrize("config", CONFIGS)
def test_anomalies_artifact_propagates_span_and_split_names(demo, config):
    run = demo[config]
    anomalies = run.anomalies()
    transformed = run.output("Transform", "Examples")
    raw_examples = run.output("CsvExampleGen", "Examples")
    assert json.loads(anomalies.properties["split_names"].string_value) == json.loads(
        transformed.properties["split_names"].string_value
    )
    assert set(json.loads(anomalies.properties["split_names"].string_value)) == set(SPLITS)
    assert (
        anomalies.properties["span"].int_value == raw_examples.custom_properties["span"].int_value
    )
    for split in SPLITS:
        split_dir = os.path.join(anomalies.uri, f"Split-{split}")
        assert {"SchemaDiff.pb", "index_report.json"} <= set(os.listdir(split_dir))


@pytest.mark.parametrize(
    ("config", "expected_error_features"),
    [("clean", []), ("broken", ["city_xf"]), ("small_table", [])],
)
def test_eval_schema_diff_is_a_standard_anomalies_proto(demo, config, expected_error_features):
    path = os.path.join(demo[config].anomalies().uri, "Split-eval", "SchemaDiff.pb")
    with open(path, "rb") as schema_diff_file:
        anomalies = anomalies_pb2.Anomalies.FromString(schema_diff_file.read())
    error_features = sorted(
        feature
        for feature, info in anomalies.anomaly_info.items()
        if info.severity == anomalies_pb2.AnomalyInfo.ERROR
    )
    assert error_features == expected_error_features


@pytest.mark.parametrize("config", CONFIGS)
@pytest.mark.parametrize("split", SPLITS)
def test_report_counts_every_csv_row(demo, csv_rows, config, split):
    report = demo[config].report(split)
    assert report["split"] == split
    assert report["num_examples"] == len(csv_rows[split])
    checked = VOCABULARY_FEATURES + (("month_xf",) if config in MONTH_DIM_CONFIGS else ())
    assert sorted(f["feature"] for f in report["features"]) == sorted(checked)
    for feature in checked:
        counts = demo[config].feature_report(split, feature)["counts"]
        assert counts["num_values"] == len(csv_rows[split])
        assert counts["missing"] == 0


def test_broken_eval_negative_city_count_equals_rows_with_unseen_cities(demo, csv_rows):
    unseen = unseen_in_train(csv_rows, "city")
    city = demo["broken"].feature_report("eval", "city_xf")
    assert city["counts"]["negative"] == unseen
    assert city["counts"]["min"] == -1
    assert city["counts"]["top_offending_values"] == [{"value": -1, "count": unseen}]
    errors = [f for f in city["findings"] if f["severity"] == "ERROR"]
    assert [(f["reason"], f["count"]) for f in errors] == [("NEGATIVE_INDEX", unseen)]
    assert demo["broken"].report("eval")["num_errors"] == 1


def test_clean_eval_unseen_cities_land_in_the_oov_bucket(demo, csv_rows):
    unseen = unseen_in_train(csv_rows, "city")
    counts = demo["clean"].feature_report("eval", "city_xf")["counts"]
    assert counts["oov_bucket"] == unseen
    assert counts["negative"] == 0
    assert counts["in_vocab"] == len(csv_rows["eval"]) - unseen


@pytest.mark.parametrize("config", CONFIGS)
def test_eval_unseen_products_land_in_the_oov_buckets(demo, csv_rows, config):
    unseen = unseen_in_train(csv_rows, "product")
    product = demo[config].feature_report("eval", "product_xf")
    assert product["counts"]["oov_bucket"] == unseen
    assert product["counts"]["negative"] == 0
    assert product["counts"]["out_of_range"] == 0


@pytest.mark.parametrize("config", CONFIGS)
def test_vocabulary_bounds_match_the_train_csv(demo, csv_rows, config):
    num_cities = len({row["city"] for row in csv_rows["train"]})
    num_products = len({row["product"] for row in csv_rows["train"]})
    city_bounds = demo[config].feature_report("eval", "city_xf")["bounds"]
    product_bounds = demo[config].feature_report("eval", "product_xf")["bounds"]
    city_oov_buckets = {"clean": 1, "broken": 0, "small_table": 1}[config]
    assert (city_bounds["vocab_size"], city_bounds["num_oov_buckets"]) == (
        num_cities,
        city_oov_buckets,
    )
    assert city_bounds["upper_bound"] == num_cities + city_oov_buckets
    assert (product_bounds["vocab_size"], product_bounds["num_oov_buckets"]) == (num_products, 2)
    assert product_bounds["upper_bound"] == num_products + 2


@pytest.mark.parametrize("config", CONFIGS)
def test_train_split_is_clean_in_both_configs(demo, csv_rows, config):
    report = demo[config].report("train")
    assert (report["num_errors"], report["blessed"]) == (0, True)
    for feature in ("product_xf", "city_xf"):
        counts = demo[config].feature_report("train", feature)["counts"]
        assert counts["in_vocab"] == len(csv_rows["train"])


@pytest.mark.parametrize("config", MONTH_DIM_CONFIGS)
@pytest.mark.parametrize("split", SPLITS)
def test_month_indices_fit_the_embedding_size_given_to_the_validator(demo, csv_rows, config, split):
    months = [int(row["month"]) for row in csv_rows[split]]
    month = demo[config].feature_report(split, "month_xf")
    assert month["bounds"]["embedding_input_dim"] == demo_pipeline.MONTH_EMBEDDING_DIM
    assert (month["counts"]["min"], month["counts"]["max"]) == (min(months) - 1, max(months) - 1)
    assert month["counts"]["over_embedding_dim"] == 0
    assert month["findings"] == []


def _serving_report(demo):
    anomalies = demo["clean"].output(demo_pipeline.SERVING_VALIDATOR_ID, "ExampleAnomalies")
    path = os.path.join(anomalies.uri, "Split-serving", "index_report.json")
    with open(path) as report_file:
        return anomalies, json.load(report_file)


def test_serving_span_is_checked_raw_against_the_trained_graph(demo, csv_rows):
    anomalies, report = _serving_report(demo)
    serving_rows = read_csv("serving")
    assert report["num_examples"] == len(serving_rows)
    # The clean graph has an OOV bucket for city, so unseen raw cities do not block.
    assert anomalies.custom_properties["blessed"].int_value == 1
    assert "ServingIndexValidator" not in demo["broken"].outputs

    train_cities = {row["city"] for row in csv_rows["train"]}
    unseen = {}
    for row in serving_rows:
        if row["city"] not in train_cities:
            unseen[row["city"]] = unseen.get(row["city"], 0) + 1
    assert unseen, "serving.csv has no city unseen in train.csv"
    # Every size comes from the model about to be pushed; nothing names month_xf's.
    month_rows = demo_pipeline.MONTH_EMBEDDING_DIM
    assert {f["feature"]: f["bounds"]["embedding_dim_kind"] for f in report["features"]} == {
        feature: "model" for feature in (*VOCABULARY_FEATURES, "month_xf")
    }
    (month,) = (f for f in report["features"] if f["feature"] == "month_xf")
    assert (month["bounds"]["embedding_input_dim"], month["findings"]) == (month_rows, [])
    (city,) = (f for f in report["features"] if f["feature"] == "city_xf")
    counts = city["counts"]
    assert counts["raw_values_checked"] is True
    assert counts["oov_bucket"] == sum(unseen.values())
    expected_top = sorted(unseen.items(), key=lambda item: (-item[1], item[0]))
    assert [(v["value"], v["count"]) for v in counts["top_raw_oov_values"]] == expected_top
    reasons = {f["reason"]: f for f in city["findings"]}
    above_max = reasons["OOV_RATE_ABOVE_MAX"]
    assert above_max["severity"] == "WARNING"
    assert above_max["rate"] == pytest.approx(sum(unseen.values()) / len(serving_rows))
    assert expected_top[0][0] in above_max["description"]
