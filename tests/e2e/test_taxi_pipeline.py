"""End-to-end: TFX's own taxi pipeline, with the README's two validators, as a user runs it.

taxi_pipeline.py builds the pipeline from TFX's shipped taxi example and the README's
"Add it to a pipeline" snippets, executed as the README prints them. The `taxi`
fixture runs it in a subprocess with TF_USE_LEGACY_KERAS=1 exported before Python
starts, three times into one pipeline root and MLMD: clean, oov0 (no OOV bucket)
and off_by_one (payment_type's table one row short). The expected values come from
the raw examples CsvExampleGen wrote, and from TFX's shipped user module.
"""

import os
import pathlib
import subprocess
import sys

import pytest
import tensorflow as tf
from e2e_runs import DemoRun, store_at
from ml_metadata.proto import metadata_store_pb2
from taxi_pipeline import (
    CONFIGS,
    OFF_BY_ONE_FEATURE,
    PIPELINE_NAME,
    README_PATH,
    TaxiPaths,
    create_pipeline,
    readme_pipeline_code,
    taxi_example_dir,
)

pytestmark = pytest.mark.taxi

SPLITS = ("train", "eval")
VALIDATOR_ID = "EmbeddingIndexValidator"
MODEL_VALIDATOR_ID = "ModelIndexValidator"
UPSTREAM_NODES = ("CsvExampleGen", "StatisticsGen", "SchemaGen", "ExampleValidator")
COMPLETE = metadata_store_pb2.Execution.COMPLETE
CACHED = metadata_store_pb2.Execution.CACHED
# TFX's taxi_utils_native_keras: 10 OOV buckets; CategoryEncoding tables of
# _VOCAB_SIZE + _OOV_SIZE = 1010 rows for the vocabulary features, 10 per bucketized one.
SHIPPED_OOV_BUCKETS = 10
SHIPPED_VOCAB_TABLE = 1010
SHIPPED_BUCKET_TABLE = 10
PIPELINE_SCRIPT = pathlib.Path(__file__).with_name("taxi_pipeline.py")


@pytest.fixture(scope="module")
def taxi(tmp_path_factory):
    """The three runs (keys CONFIGS), their MLMD "store" and "paths" (TaxiPaths)."""
    paths = TaxiPaths(tmp_path_factory.mktemp("taxi"))
    log_path = paths.work_dir / "taxi_pipeline.log"
    with open(log_path, "w") as log:
        done = subprocess.run(
            [sys.executable, str(PIPELINE_SCRIPT), str(paths.work_dir)],
            env={**os.environ, "TF_USE_LEGACY_KERAS": "1"},
            stdout=log,
            stderr=subprocess.STDOUT,
            timeout=1800,
            check=False,
        )
    assert done.returncode == 0, log_path.read_text()[-4000:]
    store = store_at(paths.metadata_path)
    # One process made the runs one after another: context ids follow CONFIGS.
    contexts = sorted(store.get_contexts_by_type("pipeline_run"), key=lambda c: c.id)
    runs = {
        config: DemoRun(store, context, PIPELINE_NAME)
        for config, context in zip(CONFIGS, contexts, strict=True)
    }
    return {**runs, "store": store, "paths": paths}


@pytest.fixture(scope="module")
def raw_values(taxi):
    """Split -> column -> the raw string values CsvExampleGen wrote ('' when missing)."""
    examples = taxi["clean"].output("CsvExampleGen", "Examples")
    spec = {column: tf.io.VarLenFeature(tf.string) for column in ("payment_type", "company")}
    values = {}
    for split in SPLITS:
        files = sorted(str(p) for p in pathlib.Path(examples.uri, f"Split-{split}").glob("*.gz"))
        records = tf.data.TFRecordDataset(files, compression_type="GZIP").batch(1_000_000)
        parsed = tf.io.parse_example(next(iter(records)), spec)
        values[split] = {
            column: [
                v.decode() for v in tf.sparse.to_dense(sparse, default_value=b"")[:, 0].numpy()
            ]
            for column, sparse in parsed.items()
        }
    return values


def _vocabulary(raw_values, column):
    # TFT builds the vocabulary on train; '' is never a vocabulary entry.
    return set(raw_values["train"][column]) - {""}


def _not_in_vocabulary(raw_values, split, column):
    vocabulary = _vocabulary(raw_values, column)
    return sum(value not in vocabulary for value in raw_values[split][column])


def _states(run):
    return {node: execution.last_known_state for node, execution in run.executions.items()}


def _errors(run, node_id, split):
    return sorted(
        (feature["feature"], finding["reason"])
        for feature in run.report(split, node_id)["features"]
        for finding in feature["findings"]
        if finding["severity"] == "ERROR"
    )


def _blessed(run, node_id):
    return run.anomalies(node_id).custom_properties["blessed"].int_value


def _published_types(run):
    return {artifact.type for artifacts in run.outputs.values() for artifact in artifacts}


def test_clean_run_trains_and_pushes(taxi):
    run = taxi["clean"]
    assert set(_states(run).values()) == {COMPLETE}
    assert sorted(run.executions) == sorted(
        [*UPSTREAM_NODES, "Transform", VALIDATOR_ID, "Trainer", MODEL_VALIDATOR_ID, "Pusher"]
    )
    assert (_blessed(run, VALIDATOR_ID), _blessed(run, MODEL_VALIDATOR_ID)) == (1, 1)
    pushed_model = run.output("Pusher", "PushedModel")
    assert pushed_model.custom_properties["pushed"].int_value == 1
    destination = pushed_model.custom_properties["pushed_destination"].string_value
    assert os.path.dirname(destination) == str(taxi["paths"].serving_model_dir)
    assert tf.io.gfile.exists(os.path.join(destination, "saved_model.pb"))


def test_clean_model_gate_reads_every_shipped_table_from_the_tf_keras_model(taxi, raw_values):
    for split in SPLITS:
        features = {
            f["feature"]: f for f in taxi["clean"].report(split, MODEL_VALIDATOR_ID)["features"]
        }
        for column in ("payment_type", "company"):
            bounds = features[f"{column}_xf"]["bounds"]
            assert bounds["vocab_size"] == len(_vocabulary(raw_values, column))
            assert bounds["num_oov_buckets"] == SHIPPED_OOV_BUCKETS
            assert (bounds["embedding_dim_kind"], bounds["embedding_input_dim"]) == (
                "model",
                SHIPPED_VOCAB_TABLE,
            )
        for column in (
            "pickup_latitude",
            "pickup_longitude",
            "dropoff_latitude",
            "dropoff_longitude",
        ):
            bounds = features[f"{column}_xf"]["bounds"]
            assert (bounds["embedding_dim_kind"], bounds["embedding_input_dim"]) == (
                "model",
                SHIPPED_BUCKET_TABLE,
            )


def test_oov0_run_skips_the_trainer_and_the_pusher_and_fails_nothing(taxi):
    run = taxi["oov0"]
    # Transform's module changed, so it and both validators run again; the rest is cached.
    assert _states(run) == {
        **{node: CACHED for node in UPSTREAM_NODES},
        "Transform": COMPLETE,
        VALIDATOR_ID: COMPLETE,
        MODEL_VALIDATOR_ID: COMPLETE,
    }
    assert not {"Model", "PushedModel"} & _published_types(run)
    assert (_blessed(run, VALIDATOR_ID), _blessed(run, MODEL_VALIDATOR_ID)) == (0, 0)


@pytest.mark.parametrize("node_id", [VALIDATOR_ID, MODEL_VALIDATOR_ID])
def test_oov0_missing_and_unseen_values_are_negative_indices(taxi, raw_values, node_id):
    run = taxi["oov0"]
    for split in SPLITS:
        expected = {
            column: _not_in_vocabulary(raw_values, split, column)
            for column in ("payment_type", "company")
        }
        # Guards the data: missing companies (train) and an unseen payment type (eval).
        assert expected["company"] > 0
        assert (expected["payment_type"] > 0) == (split == "eval")
        for column, negative in expected.items():
            counts = run.feature_report(split, f"{column}_xf", node_id)["counts"]
            assert (counts["negative"], counts["min"]) == (negative, -1 if negative else 0)
        assert _errors(run, node_id, split) == sorted(
            (f"{column}_xf", "NEGATIVE_INDEX") for column, negative in expected.items() if negative
        )


def test_off_by_one_run_trains_but_never_pushes(taxi):
    run = taxi["off_by_one"]
    # Transform and the Trainer's gate are the clean run's, reused: only the model changed.
    assert _states(run) == {
        **{node: CACHED for node in (*UPSTREAM_NODES, "Transform", VALIDATOR_ID)},
        "Trainer": COMPLETE,
        MODEL_VALIDATOR_ID: COMPLETE,
    }
    assert run.output("Transform", "TransformGraph").id == (
        taxi["clean"].output("Transform", "TransformGraph").id
    )
    assert (_blessed(run, VALIDATOR_ID), _blessed(run, MODEL_VALIDATOR_ID)) == (1, 0)
    assert "PushedModel" not in _published_types(run)


def test_off_by_one_table_is_the_only_error_with_its_true_sizes(taxi, raw_values):
    run = taxi["off_by_one"]
    feature_range = len(_vocabulary(raw_values, "payment_type")) + SHIPPED_OOV_BUCKETS
    for split in SPLITS:
        assert _errors(run, MODEL_VALIDATOR_ID, split) == [
            (OFF_BY_ONE_FEATURE, "EMBEDDING_TABLE_TOO_SMALL")
        ]
        bounds = run.feature_report(split, OFF_BY_ONE_FEATURE, MODEL_VALIDATOR_ID)["bounds"]
        assert (bounds["upper_bound"], bounds["embedding_input_dim"]) == (
            feature_range,
            feature_range - 1,
        )
        assert bounds["embedding_dim_kind"] == "model"


def test_no_execution_failed_and_only_the_clean_run_pushed(taxi):
    store = taxi["store"]
    assert {e.last_known_state for e in store.get_executions()} == {COMPLETE, CACHED}
    (pushed_model,) = store.get_artifacts_by_type("PushedModel")
    assert pushed_model.id == taxi["clean"].output("Pusher", "PushedModel").id
    assert len(os.listdir(taxi["paths"].serving_model_dir)) == 1


def _node_ids(pipeline):
    return [node.id for node in pipeline.components]


def test_pipeline_is_built_by_the_readme_snippets(tmp_path):
    pipeline = create_pipeline(TaxiPaths(tmp_path), "clean")
    assert _node_ids(pipeline)[-5:] == [
        "Transform",
        VALIDATOR_ID,
        "Trainer",
        MODEL_VALIDATOR_ID,
        "Pusher",
    ]
    # Change the README's snippet and the pipeline changes with it.
    readme = tmp_path / "README.md"
    readme.write_text(
        README_PATH.read_text().replace(
            f".with_id('{MODEL_VALIDATOR_ID}')", ".with_id('PusherGate')", 1
        )
    )
    assert "PusherGate" in _node_ids(create_pipeline(TaxiPaths(tmp_path), "clean", readme))
    # A snippet whose placeholders the pipeline cannot fill is an error, not a skip.
    readme.write_text(
        README_PATH.read_text().replace("tfx.components.Trainer(...)", "trainer_fn()")
    )
    with pytest.raises(ValueError, match="Trainer"):
        readme_pipeline_code(readme)


def _wiring(component):
    """Exec properties and input producers: what makes two nodes the same node."""
    inputs = {key: channel.producer_component_id for key, channel in component.inputs.items()}
    return component.exec_properties, inputs


def test_pipeline_is_tfx_shipped_pipeline_plus_the_readme_validators(tmp_path):
    from tfx.examples.chicago_taxi_pipeline import taxi_pipeline_native_keras as shipped_module

    paths = TaxiPaths(tmp_path)
    ours = {c.id: c for c in create_pipeline(paths, "clean").components}
    shipped_pipeline = shipped_module._create_pipeline(
        pipeline_name=PIPELINE_NAME,
        pipeline_root=str(paths.pipeline_root),
        data_root=str(taxi_example_dir() / "data" / "simple"),
        module_file=str(paths.user_module("clean")),
        serving_model_dir=str(paths.serving_model_dir),
        metadata_path=str(paths.metadata_path),
        beam_pipeline_args=[],
    )
    shipped = {c.id: c for c in shipped_pipeline.components}
    assert set(shipped) - set(ours) == {"latest_blessed_model_resolver", "Evaluator"}
    assert set(ours) - set(shipped) == {VALIDATOR_ID, MODEL_VALIDATOR_ID}
    for node_id in set(ours) & set(shipped):
        (our_properties, our_inputs), (properties, inputs) = map(
            _wiring, (ours[node_id], shipped[node_id])
        )
        changed = {
            k for k in {*our_properties, *properties} if our_properties.get(k) != properties.get(k)
        }
        # Only the step counts differ, and the Pusher's blessing is the model gate's Cond.
        assert changed == ({"train_args", "eval_args"} if node_id == "Trainer" else set())
        if node_id == "Pusher":
            assert inputs.pop("model_blessing") == "Evaluator"
        assert our_inputs == inputs
