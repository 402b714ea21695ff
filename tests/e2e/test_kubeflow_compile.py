"""The demo pipeline compiles for Vertex AI / Kubeflow Pipelines (KubeflowV2DagRunner).

Nothing is submitted (no cloud project here): the test reads the compiled PipelineJob
JSON the way Vertex AI Pipelines would, and checks the validator's task, its output
artifact type, the Cond on `blessed` and the container image against the pipeline
DSL, TFX's own artifact schemas, docker/Dockerfile and the README.
"""

from __future__ import annotations

import json
import pathlib
import re

import demo_pipeline
import pytest
from tfx.dsl.experimental.conditionals import conditional
from tfx.orchestration.kubeflow.v2 import compiler_utils
from tfx.types import channel_utils, standard_artifacts

import embedding_guard
from embedding_guard.component import EmbeddingIndexValidator
from embedding_guard.spec import EmbeddingIndexValidatorSpec

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
DOCKERFILE = REPO_ROOT / "docker" / "Dockerfile"
PIPELINE_NAME = "embedding-guard-demo"
PIPELINE_ROOT = "gs://embedding-guard-test-bucket/root"
VALIDATOR_ID = "EmbeddingIndexValidator"
_EXECUTOR = EmbeddingIndexValidator.EXECUTOR_SPEC.executor_class
EXECUTOR_CLASS = f"{_EXECUTOR.__module__}.{_EXECUTOR.__name__}"


@pytest.fixture(scope="module")
def compiled(tmp_path_factory) -> dict:
    """The demo's clean config, compiled to a file and read back as Vertex AI would."""
    output_path = tmp_path_factory.mktemp("kubeflow") / "pipeline.json"
    returned = demo_pipeline.compile_for_kubeflow_v2(
        pipeline_name=PIPELINE_NAME, pipeline_root=PIPELINE_ROOT, output_path=str(output_path)
    )
    with open(output_path) as spec_file:
        written = json.load(spec_file)
    assert written == returned
    return written


@pytest.fixture(scope="module")
def dsl_pipeline():
    """The same pipeline as a TFX DSL object, to compare the compiled spec with."""
    return demo_pipeline.create_pipeline(
        pipeline_name=PIPELINE_NAME,
        pipeline_root=PIPELINE_ROOT,
        data_root=demo_pipeline.IMAGE_DATA_ROOT,
        schema_path=demo_pipeline.IMAGE_SCHEMA_PATH,
        metadata_path=None,
        config="clean",
    )


def _tasks(compiled) -> dict:
    return compiled["pipelineSpec"]["root"]["dag"]["tasks"]


def _executor(compiled, task_id) -> dict:
    label = compiled["pipelineSpec"]["components"][task_id]["executorLabel"]
    return compiled["pipelineSpec"]["deploymentSpec"]["executors"][label]["container"]


def _constant(parameter: dict):
    value = parameter["runtimeValue"]["constantValue"]
    (kind,) = value
    return int(value[kind]) if kind == "intValue" else value[kind]


def test_spec_names_the_pipeline_and_its_gcs_root(compiled):
    assert compiled["pipelineSpec"]["pipelineInfo"]["name"] == PIPELINE_NAME
    assert compiled["runtimeConfig"]["gcsOutputDirectory"] == PIPELINE_ROOT


@pytest.mark.parametrize("validator_id", [VALIDATOR_ID, demo_pipeline.SERVING_VALIDATOR_ID])
def test_validator_task_runs_its_executor_with_every_parameter(
    compiled, dsl_pipeline, validator_id
):
    (validator,) = [c for c in dsl_pipeline.components if c.id == validator_id]
    task = _tasks(compiled)[validator_id]
    container = _executor(compiled, validator_id)
    assert container["args"][:2] == ["--executor_class_path", EXECUTOR_CLASS]
    assert container["command"][-1] == (
        "tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor"
    )

    # The compiler leaves out parameters whose value is None (optional, unset).
    unset = {name for name, value in validator.exec_properties.items() if value is None}
    parameters = task["inputs"]["parameters"]
    assert set(parameters) | unset == set(EmbeddingIndexValidatorSpec.PARAMETERS)
    assert {name: _constant(p) for name, p in parameters.items()} == {
        name: value for name, value in validator.exec_properties.items() if value is not None
    }
    declared = compiled["pipelineSpec"]["components"][validator_id]["inputDefinitions"]
    assert set(declared["parameters"]) == set(parameters)
    expected_artifacts = {"examples", "transform_graph"}
    if validator_id == demo_pipeline.SERVING_VALIDATOR_ID:
        expected_artifacts.add("model")
    assert set(task["inputs"]["artifacts"]) == expected_artifacts


def test_validator_parameters_carry_the_demo_settings(compiled):
    parameters = _tasks(compiled)[demo_pipeline.SERVING_VALIDATOR_ID]["inputs"]["parameters"]
    # The serving check takes every size from the Trainer's model, month_xf's too.
    assert json.loads(_constant(parameters["embedding_input_dims"])) == {}
    assert _tasks(compiled)[demo_pipeline.SERVING_VALIDATOR_ID]["inputs"]["artifacts"]["model"] == {
        "taskOutputArtifact": {"outputArtifactKey": "model", "producerTask": "Trainer"}
    }
    assert _constant(parameters["examples_kind"]) == "raw"
    assert json.loads(_constant(parameters["max_oov_rate"])) == demo_pipeline.SERVING_MAX_OOV_RATE


def test_validator_output_is_the_standard_example_anomalies_type(compiled):
    outputs = compiled["pipelineSpec"]["components"][VALIDATOR_ID]["outputDefinitions"]
    (name,) = outputs["artifacts"]
    assert name == "anomalies"
    schema = outputs["artifacts"][name]["artifactType"]["instanceSchema"]
    # TFX's built-in schema of the first-party type, not the generic tfx.Artifact.
    expected = compiler_utils.get_artifact_schema(standard_artifacts.ExampleAnomalies)
    assert schema == (expected.decode() if isinstance(expected, bytes) else expected)
    assert schema.startswith("title: tfx.ExampleAnomalies\n")


def test_cond_on_blessed_becomes_the_trigger_of_every_gated_task(compiled, dsl_pipeline):
    registry = dsl_pipeline.dsl_context_registry
    # Node id -> the validators whose `blessed` gates it, outermost Cond first.
    gates = {
        node.id: [
            channel.producer_component_id
            for context in registry.get_contexts(node)
            if isinstance(context, conditional.CondContext)
            for channel in channel_utils.get_dependent_channels(context.predicate)
        ]
        for node in dsl_pipeline.components
    }
    assert gates["Trainer"] == [VALIDATOR_ID]
    assert gates["Pusher"] == [demo_pipeline.MODEL_VALIDATOR_ID]
    for task_id, task in _tasks(compiled).items():
        if not gates[task_id]:
            assert "triggerPolicy" not in task, task_id
            continue
        condition = " && ".join(
            f"(inputs.artifacts['_{validator}.anomalies'].artifacts[0].metadata['blessed'] == 1.0)"
            for validator in gates[task_id]
        )
        assert task["triggerPolicy"] == {"condition": condition}, task_id
        for validator in gates[task_id]:
            assert task["inputs"]["artifacts"][f"_{validator}.anomalies"] == {
                "taskOutputArtifact": {"outputArtifactKey": "anomalies", "producerTask": validator}
            }
            assert validator in task["dependentTasks"]


def test_model_validator_task_checks_the_trainers_model(compiled):
    artifacts = _tasks(compiled)[demo_pipeline.MODEL_VALIDATOR_ID]["inputs"]["artifacts"]
    assert artifacts["model"] == {
        "taskOutputArtifact": {"outputArtifactKey": "model", "producerTask": "Trainer"}
    }
    assert {"examples", "transform_graph"} <= set(artifacts)


def test_every_task_runs_in_the_image_built_from_the_dockerfile(compiled):
    images = {task_id: _executor(compiled, task_id)["image"] for task_id in _tasks(compiled)}
    assert set(images.values()) == {demo_pipeline.CONTAINER_IMAGE}

    # The documented build names the image as the spec does (the tag may be a placeholder).
    builds = [
        image
        for page in [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]
        for image in re.findall(r"docker build -f docker/Dockerfile -t (\S+) \.", page.read_text())
    ]
    assert builds, "the docs show no `docker build -f docker/Dockerfile -t IMAGE .`"
    image_name, tag = demo_pipeline.CONTAINER_IMAGE.split(":")
    assert {build.split(":")[0] for build in builds} == {image_name}
    assert tag == embedding_guard.__version__


def test_image_holds_the_data_schema_and_user_modules_the_spec_points_at(compiled):
    dockerfile = DOCKERFILE.read_text()
    (workdir,) = re.findall(r"^WORKDIR (\S+)$", dockerfile, re.MULTILINE)
    assert workdir == demo_pipeline.IMAGE_WORKDIR
    copied = dict(
        (target.removeprefix("./"), source)
        for source, target in re.findall(r"^COPY (\S+) (\S+)$", dockerfile, re.MULTILINE)
    )
    for image_path in (demo_pipeline.IMAGE_DATA_ROOT, demo_pipeline.IMAGE_SCHEMA_PATH):
        relative = pathlib.PurePosixPath(image_path).relative_to(workdir)
        assert relative.parts[0] in copied, image_path
        assert (REPO_ROOT / copied[relative.parts[0]] / pathlib.Path(*relative.parts[1:])).exists()
    parameters = _tasks(compiled)["CsvExampleGen"]["inputs"]["parameters"]
    assert _constant(parameters["input_base"]) == demo_pipeline.IMAGE_DATA_ROOT
    # preprocessing_fn and run_fn are import paths, resolved in the image through
    # its PYTHONPATH.
    (python_path,) = re.findall(r"^ENV PYTHONPATH=(\S+)$", dockerfile, re.MULTILINE)
    assert f"{workdir}/pipeline/user_modules" in python_path.split(":")
    trainer = _tasks(compiled)["Trainer"]["inputs"]["parameters"]
    assert _constant(trainer["run_fn"]) == demo_pipeline.RUN_FN
