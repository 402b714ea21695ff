"""The pipeline patterns of docs/usage.md build and compile, wired as the docs say.

Nothing runs: building pipeline objects and compiling them to TFX's IR is cheap. The
runs of the post-Trainer gate are in test_model_gate.py.
"""

import json
import pathlib
import re

import demo_pipeline
import pytest
from e2e_runs import DATA_ROOT, SCHEMA_PATH, VALIDATOR_ID
from google.protobuf import json_format
from tfx import v1 as tfx
from tfx.dsl.compiler import compiler
from tfx.dsl.experimental.conditionals import conditional
from tfx.types import channel_utils

from embedding_guard import EmbeddingIndexValidator

USAGE_PATH = pathlib.Path(__file__).resolve().parents[2] / "docs" / "usage.md"


def _pattern_snippets() -> list[str]:
    text = USAGE_PATH.read_text()
    (section,) = re.findall(r"^## Pipeline patterns\n(.*?)(?=^## )", text, re.MULTILINE | re.DOTALL)
    return re.findall(r"^```python\n(.*?)^```", section, re.MULTILINE | re.DOTALL)


def _cond_producers(registry, node) -> list[str]:
    """The ids of the validators whose `blessed` the Conds around node test."""
    return sorted(
        channel.producer_component_id
        for context in registry.get_contexts(node)
        if isinstance(context, conditional.CondContext)
        for channel in channel_utils.get_dependent_channels(context.predicate)
    )


def _ir_node(ir_pipeline, node_id):
    (node,) = [
        n.pipeline_node for n in ir_pipeline.nodes if n.pipeline_node.node_info.id == node_id
    ]
    return node


def _node_inputs(ir_pipeline, node_id) -> dict[str, list[str]]:
    """Input key -> producer node ids, from the compiled IR of node_id."""
    return {
        key: [channel.producer_node_query.id for channel in spec.channels]
        for key, spec in _ir_node(ir_pipeline, node_id).inputs.inputs.items()
    }


def _strategy_op_types(ir_pipeline, node_id) -> list[str]:
    """The resolver strategies (op types) in node_id's compiled input graphs."""
    return [
        graph_node.op_node.op_type
        for graph in _ir_node(ir_pipeline, node_id).inputs.input_graphs.values()
        for graph_node in graph.nodes.values()
        if graph_node.HasField("op_node")
    ]


LATEST_ARTIFACT_STRATEGY = (
    "tfx.dsl.input_resolution.strategies.latest_artifact_strategy.LatestArtifactStrategy"
)


@pytest.fixture(scope="module")
def documented_pipeline(tmp_path_factory):
    """Both snippets of the docs around a minimal Transform and Trainer, compiled."""
    post_trainer_snippet, pre_trainer_snippet, serving_log_snippet = _pattern_snippets()
    example_gen = tfx.components.CsvExampleGen(input_base=str(DATA_ROOT))
    serving_log_gen = tfx.components.CsvExampleGen(input_base=str(DATA_ROOT)).with_id(
        "ServingLogGen"
    )
    schema_gen = tfx.components.ImportSchemaGen(schema_file=str(SCHEMA_PATH))
    transform = tfx.components.Transform(
        examples=example_gen.outputs["examples"],
        schema=schema_gen.outputs["schema"],
        preprocessing_fn=demo_pipeline.PREPROCESSING_FNS["clean"],
    )
    names = {
        "tfx": tfx,
        "EmbeddingIndexValidator": EmbeddingIndexValidator,
        "transform": transform,
        "serving_log_gen": serving_log_gen,
        "serving_model_dir": str(tmp_path_factory.mktemp("serving")),
    }
    # The snippets are this repository's own docs, run so that they cannot go stale.
    exec(pre_trainer_snippet, names)  # noqa: S102
    trainer = tfx.components.Trainer(
        examples=transform.outputs["transformed_examples"],
        transform_graph=transform.outputs["transform_graph"],
        run_fn=demo_pipeline.RUN_FN,
    )
    names["trainer"] = trainer
    exec(post_trainer_snippet, names)  # noqa: S102
    exec(serving_log_snippet, names)  # noqa: S102
    pipeline = tfx.dsl.Pipeline(
        pipeline_name="usage-patterns",
        pipeline_root=str(tmp_path_factory.mktemp("root")),
        components=[
            example_gen,
            schema_gen,
            transform,
            names["latest_model"],
            names["validator"],
            trainer,
            names["model_validator"],
            names["pusher"],
            serving_log_gen,
            names["serving_log_validator"],
        ],
    )
    return pipeline, names, compiler.Compiler().compile(pipeline)


def test_docs_show_the_post_trainer_gate_the_pre_trainer_check_and_serving_logs():
    post_trainer, pre_trainer, serving_logs = _pattern_snippets()
    assert 'model=trainer.outputs["model"]' in post_trainer
    assert "tfx.components.Pusher(" in post_trainer
    assert "tfx.dsl.Resolver(" in pre_trainer
    assert 'examples_kind="raw"' in serving_logs


def test_documented_serving_log_check_takes_raw_examples_and_the_resolved_model(
    documented_pipeline,
):
    _, names, ir_pipeline = documented_pipeline
    serving_log_validator = names["serving_log_validator"]
    assert serving_log_validator.exec_properties["examples_kind"] == "raw"
    inputs = _node_inputs(ir_pipeline, serving_log_validator.id)
    assert inputs["examples"] == ["ServingLogGen"]
    assert inputs["model"] == [names["latest_model"].id]


def test_documented_post_trainer_validator_gates_the_pusher(documented_pipeline):
    pipeline, names, ir_pipeline = documented_pipeline
    model_validator, pusher = names["model_validator"], names["pusher"]
    assert model_validator.inputs["model"] is names["trainer"].outputs["model"]
    assert _cond_producers(pipeline.dsl_context_registry, pusher) == [model_validator.id]
    assert _node_inputs(ir_pipeline, "Pusher")["model"] == ["Trainer"]
    assert _node_inputs(ir_pipeline, model_validator.id)["model"] == ["Trainer"]


def test_documented_pre_trainer_validator_takes_the_resolved_model(documented_pipeline):
    _, names, ir_pipeline = documented_pipeline
    latest_model, validator = names["latest_model"], names["validator"]
    assert isinstance(latest_model, tfx.dsl.Resolver)
    assert _strategy_op_types(ir_pipeline, latest_model.id) == [LATEST_ARTIFACT_STRATEGY]
    assert validator.inputs["model"] is latest_model.outputs["model"]
    assert _node_inputs(ir_pipeline, validator.id)["model"] == [latest_model.id]
    # A first run resolves no model, and the validator still runs.
    assert _ir_node(ir_pipeline, validator.id).inputs.inputs["model"].min_count == 0


def _demo(config, **kwargs):
    return demo_pipeline.create_pipeline(
        pipeline_name="embedding-guard-patterns",
        pipeline_root="gs://embedding-guard-test-bucket/patterns",
        data_root=str(DATA_ROOT),
        schema_path=str(SCHEMA_PATH),
        metadata_path=None,
        config=config,
        **kwargs,
    )


@pytest.mark.parametrize("config", sorted(demo_pipeline.PREPROCESSING_FNS))
def test_demo_gates_its_pusher_on_the_model_validator_alone(config):
    pipeline = _demo(config)
    nodes = {node.id: node for node in pipeline.components}
    registry = pipeline.dsl_context_registry
    model_validator = nodes[demo_pipeline.MODEL_VALIDATOR_ID]
    assert model_validator.inputs["model"] is nodes["Trainer"].outputs["model"]
    assert _cond_producers(registry, nodes["Trainer"]) == [VALIDATOR_ID]
    # Outside the Trainer's Cond: see docs/usage.md on nested Conds.
    assert _cond_producers(registry, model_validator) == []
    assert _cond_producers(registry, nodes["Pusher"]) == [demo_pipeline.MODEL_VALIDATOR_ID]
    destination = json_format.Parse(
        nodes["Pusher"].exec_properties["push_destination"], tfx.proto.PushDestination()
    )
    assert destination.filesystem.base_directory == (
        f"gs://embedding-guard-test-bucket/patterns/{demo_pipeline.PUSHED_MODELS_DIR}"
    )


def test_small_table_config_gives_no_embedding_size_to_any_validator():
    pipeline = _demo("small_table")
    validators = [c for c in pipeline.components if isinstance(c, EmbeddingIndexValidator)]
    assert sorted(v.id for v in validators) == sorted(
        [demo_pipeline.MODEL_VALIDATOR_ID, VALIDATOR_ID]
    )
    assert [json.loads(v.exec_properties["embedding_input_dims"]) for v in validators] == [{}, {}]


def test_demo_checks_against_the_latest_model_only_when_asked():
    default_nodes = {node.id: node for node in _demo("clean").components}
    assert demo_pipeline.MODEL_RESOLVER_ID not in default_nodes
    assert "model" not in default_nodes[VALIDATOR_ID].inputs

    pipeline = _demo("clean", check_against_latest_model=True)
    nodes = {node.id: node for node in pipeline.components}
    resolver = nodes[demo_pipeline.MODEL_RESOLVER_ID]
    assert nodes[VALIDATOR_ID].inputs["model"] is resolver.outputs["model"]
    ir_pipeline = compiler.Compiler().compile(pipeline)
    assert _strategy_op_types(ir_pipeline, resolver.id) == [LATEST_ARTIFACT_STRATEGY]
    assert _node_inputs(ir_pipeline, VALIDATOR_ID)["model"] == [resolver.id]
