"""End-to-end: the post-Trainer ModelIndexValidator gates the Pusher on the model's tables.

The session's `demo` fixture (conftest.py) runs every config. In `small_table` the
Trainer sizes city_xf's Embedding to the vocabulary alone, forgetting its OOV
bucket, and no validator is given any embedding size: the trained model's table
must block the Pusher by itself. In `clean` the same validator blesses and the
Pusher pushes. The expected sizes come from the demo CSVs and the preprocessing
constants, and are cross-checked against the SavedModel's checkpoint.
"""

import os
import re

import demo_pipeline
import demo_preprocessing
import pytest
import tensorflow as tf
from demo_constants import MONTH_EMBEDDING_DIM, SMALL_TABLE_FEATURE
from e2e_runs import MODEL_VALIDATOR_ID, PIPELINE_NAME, unseen_in_train
from google.protobuf import json_format
from ml_metadata.proto import metadata_store_pb2

from embedding_guard.cli import main as cli

SPLITS = ("train", "eval")
TOO_SMALL = "EMBEDDING_TABLE_TOO_SMALL"
SMALL_TABLE_LAYER = f"{SMALL_TABLE_FEATURE}_embedding"
COMPLETE = metadata_store_pb2.Execution.COMPLETE


def _train_vocabulary_size(csv_rows, column):
    return len({row[column] for row in csv_rows["train"]})


def _true_embedding_sizes(csv_rows, config):
    """Feature -> the rows the demo Trainer gives its Embedding in `config`."""
    num_cities = _train_vocabulary_size(csv_rows, "city")
    return {
        "product_xf": _train_vocabulary_size(csv_rows, "product")
        + demo_preprocessing.NUM_PRODUCT_OOV_BUCKETS,
        "city_xf": num_cities if config == "small_table" else num_cities + 1,
        "age_xf": demo_preprocessing.NUM_AGE_BUCKETS,
        "month_xf": MONTH_EMBEDDING_DIM,
    }


def _errors(report):
    return sorted(
        (feature["feature"], finding["reason"])
        for feature in report["features"]
        for finding in feature["findings"]
        if finding["severity"] == "ERROR"
    )


def test_small_table_run_trains_but_never_runs_its_pusher(demo):
    run = demo["small_table"]
    assert run.executions["Trainer"].last_known_state == COMPLETE
    assert run.executions[MODEL_VALIDATOR_ID].last_known_state == COMPLETE
    assert "Pusher" not in run.executions
    published = {a.type for artifacts in run.outputs.values() for a in artifacts}
    assert "PushedModel" not in published


def test_only_the_clean_run_has_a_pusher_execution_in_mlmd(demo):
    store = demo["store"]
    pusher_context = store.get_context_by_type_and_name("node", f"{PIPELINE_NAME}.Pusher")
    pusher_executions = store.get_executions_by_context(pusher_context.id)
    assert [e.id for e in pusher_executions] == [demo["clean"].executions["Pusher"].id]
    (pushed_model,) = store.get_artifacts_by_type("PushedModel")
    assert pushed_model.id == demo["clean"].output("Pusher", "PushedModel").id


def test_small_table_model_validator_blesses_no_split(demo):
    anomalies = demo["small_table"].anomalies(MODEL_VALIDATOR_ID)
    assert anomalies.custom_properties["blessed"].int_value == 0
    by_split = json_format.MessageToDict(
        anomalies.custom_properties["blessed_by_split"].struct_value
    )
    assert by_split == {split: 0 for split in SPLITS}


@pytest.mark.parametrize("split", SPLITS)
def test_too_small_table_is_an_error_naming_the_layer_and_sizes(demo, csv_rows, split):
    num_cities = _train_vocabulary_size(csv_rows, "city")
    city = demo["small_table"].feature_report(split, SMALL_TABLE_FEATURE, MODEL_VALIDATOR_ID)
    assert city["bounds"]["upper_bound"] == num_cities + 1
    assert city["bounds"]["embedding_input_dim"] == num_cities
    assert SMALL_TABLE_LAYER in city["bounds"]["embedding_dim_source"]
    (too_small,) = [f for f in city["findings"] if f["reason"] == TOO_SMALL]
    assert too_small["severity"] == "ERROR"
    assert SMALL_TABLE_LAYER in too_small["description"]


def test_train_split_is_blocked_by_the_table_size_alone(demo, csv_rows):
    # Train defines the vocabulary, so no train city reaches the missing OOV row.
    report = demo["small_table"].report("train", MODEL_VALIDATOR_ID)
    counts = demo["small_table"].feature_report("train", SMALL_TABLE_FEATURE, MODEL_VALIDATOR_ID)[
        "counts"
    ]
    assert counts["over_embedding_dim"] == 0
    assert counts["max"] == _train_vocabulary_size(csv_rows, "city") - 1
    assert _errors(report) == [(SMALL_TABLE_FEATURE, TOO_SMALL)]


def test_eval_cities_unseen_in_train_fall_beyond_the_models_table(demo, csv_rows):
    counts = demo["small_table"].feature_report("eval", SMALL_TABLE_FEATURE, MODEL_VALIDATOR_ID)[
        "counts"
    ]
    assert counts["over_embedding_dim"] == unseen_in_train(csv_rows, "city")


def test_clean_model_validator_takes_every_table_size_from_the_model(demo, csv_rows):
    expected = _true_embedding_sizes(csv_rows, "clean")
    for split in SPLITS:
        report = demo["clean"].report(split, MODEL_VALIDATOR_ID)
        assert (report["blessed"], _errors(report)) == (True, [])
        for feature in report["features"]:
            bounds = feature["bounds"]
            assert bounds["embedding_input_dim"] == expected[feature["feature"]]
            assert f"{feature['feature']}_embedding" in bounds["embedding_dim_source"]


def test_clean_run_pushes_its_blessed_model_under_the_pipeline_root(demo):
    run = demo["clean"]
    assert run.anomalies(MODEL_VALIDATOR_ID).custom_properties["blessed"].int_value == 1
    assert run.executions["Pusher"].last_known_state == COMPLETE
    pushed_model = run.output("Pusher", "PushedModel")
    assert pushed_model.custom_properties["pushed"].int_value == 1
    destination = pushed_model.custom_properties["pushed_destination"].string_value
    pushed_root = str(demo["pipeline_root"] / demo_pipeline.PUSHED_MODELS_DIR)
    assert os.path.dirname(destination) == pushed_root
    assert tf.io.gfile.exists(os.path.join(destination, "saved_model.pb"))


def _checkpoint_embedding_rows(model_uri):
    reader = tf.train.load_checkpoint(
        os.path.join(model_uri, "Format-Serving", "variables", "variables")
    )
    return sorted(
        shape[0]
        for key, shape in reader.get_variable_to_shape_map().items()
        if key.startswith("model/_operations/") and "/_embeddings/" in key
    )


@pytest.mark.parametrize("config", ["clean", "small_table"])
def test_inspect_model_lists_every_embedding_with_its_true_size(demo, csv_rows, config, capsys):
    model_uri = demo[config].output("Trainer", "Model").uri
    assert cli.main(["inspect-model", model_uri]) == 0
    output = capsys.readouterr().out
    expected = _true_embedding_sizes(csv_rows, config)
    listed = re.findall(r"^  (\w+) -> Embedding -> table (\d+),", output, re.MULTILINE)
    assert {feature: int(size) for feature, size in listed} == expected
    assert len(listed) == len(expected)
    layers = re.findall(r"^      layer (\w+), ", output, re.MULTILINE)
    assert sorted(layers) == sorted(f"{feature}_embedding" for feature in expected)
    # What the model really holds, read from its checkpoint rather than its graph.
    assert _checkpoint_embedding_rows(model_uri) == sorted(expected.values())
