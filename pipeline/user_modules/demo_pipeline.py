"""The embedding-guard demo pipeline: the validator gates the Trainer.

CsvExampleGen -> StatisticsGen -> ImportSchemaGen -> Transform -> EmbeddingIndexValidator
-> Cond(blessed) -> Trainer. The `clean` and `broken` configs differ in the
preprocessing_fn, so both runs share one pipeline name, root and MLMD database. The
clean config also checks a raw serving span against the trained transform graph.

`compile_for_kubeflow_v2` compiles the same pipeline for Vertex AI Pipelines or
Kubeflow Pipelines, with every step in the image docker/Dockerfile builds.
"""

import os

from demo_constants import MONTH_EMBEDDING_DIM
from tfx import v1 as tfx

import embedding_guard
from embedding_guard import EmbeddingIndexValidator

PREPROCESSING_FNS = {
    "clean": "demo_preprocessing.preprocessing_fn_clean",
    "broken": "demo_preprocessing.preprocessing_fn_broken",
}
RUN_FN = "demo_trainer.run_fn"
SERVING_VALIDATOR_ID = "ServingIndexValidator"
# Share of a serving feature's values allowed outside the vocabulary before the
# serving check warns.
SERVING_MAX_OOV_RATE = 0.05
TRAIN_STEPS = 20
EVAL_STEPS = 5

# The tag README's `docker build -f docker/Dockerfile` gives the image; a test checks
# that the README and the compiled pipeline spec use this one name.
CONTAINER_IMAGE = f"embedding-guard:{embedding_guard.__version__}"
# Where docker/Dockerfile copies the demo's data and schema, so a compiled pipeline
# reads them inside its own container.
IMAGE_WORKDIR = "/opt/embedding-guard"
IMAGE_DATA_ROOT = f"{IMAGE_WORKDIR}/pipeline/data"
IMAGE_SCHEMA_PATH = f"{IMAGE_WORKDIR}/schemas/raw_schema.pbtxt"


def create_pipeline(
    *,
    pipeline_name: str,
    pipeline_root: str,
    data_root: str,
    schema_path: str,
    metadata_path: str | None,
    config: str,
    beam_pipeline_args: list[str] | None = None,
    enable_cache: bool = False,
) -> tfx.dsl.Pipeline:
    """Builds the demo pipeline for one preprocessing config.

    Args:
      pipeline_name: Pipeline name; use the same one for both configs so their runs
        share MLMD contexts.
      pipeline_root: Root folder of the pipeline's artifacts.
      data_root: Folder holding `train/*.csv` and `eval/*.csv`.
      schema_path: Raw schema file (schema.proto text format) for ImportSchemaGen.
      metadata_path: SQLite file of the MLMD database; None where the orchestrator
        brings its own (Vertex AI and Kubeflow Pipelines).
      config: 'clean' or 'broken'; picks the Transform preprocessing_fn.
      beam_pipeline_args: Beam options for StatisticsGen, Transform and the validator.
      enable_cache: Whether TFX may reuse outputs of earlier identical executions.

    Returns:
      The pipeline, ready for `tfx.orchestration.LocalDagRunner().run` or
      `BeamDagRunner().run`.

    Raises:
      ValueError: If `config` is not one of PREPROCESSING_FNS.
    """
    if config not in PREPROCESSING_FNS:
        raise ValueError(f"config must be one of {sorted(PREPROCESSING_FNS)}, got {config!r}")

    # Two patterns rather than a hash split, so eval can hold values train never saw.
    example_gen = tfx.components.CsvExampleGen(
        input_base=data_root,
        input_config=tfx.proto.Input(
            splits=[
                tfx.proto.Input.Split(name="train", pattern="train/*"),
                tfx.proto.Input.Split(name="eval", pattern="eval/*"),
            ]
        ),
    )
    statistics_gen = tfx.components.StatisticsGen(examples=example_gen.outputs["examples"])
    schema_gen = tfx.components.ImportSchemaGen(schema_file=schema_path)
    transform = tfx.components.Transform(
        examples=example_gen.outputs["examples"],
        schema=schema_gen.outputs["schema"],
        preprocessing_fn=PREPROCESSING_FNS[config],
    )
    validator = EmbeddingIndexValidator(
        examples=transform.outputs["transformed_examples"],
        transform_graph=transform.outputs["transform_graph"],
        embedding_input_dims={"month_xf": MONTH_EMBEDDING_DIM},
    )
    components = [example_gen, statistics_gen, schema_gen, transform, validator]
    if config == "clean":
        # A later serving span, in raw form, checked against the transform graph the
        # model is trained with: it reports which raw values the vocabulary lacks.
        serving_gen = tfx.components.CsvExampleGen(
            input_base=data_root,
            input_config=tfx.proto.Input(
                splits=[tfx.proto.Input.Split(name="serving", pattern="serving/*")]
            ),
            # One input split is otherwise hash-split into train and eval.
            output_config=tfx.proto.Output(
                split_config=tfx.proto.SplitConfig(
                    splits=[tfx.proto.SplitConfig.Split(name="serving", hash_buckets=1)]
                )
            ),
        ).with_id("ServingExampleGen")
        serving_validator = EmbeddingIndexValidator(
            examples=serving_gen.outputs["examples"],
            transform_graph=transform.outputs["transform_graph"],
            examples_kind="raw",
            embedding_input_dims={"month_xf": MONTH_EMBEDDING_DIM},
            max_oov_rate=SERVING_MAX_OOV_RATE,
        ).with_id(SERVING_VALIDATOR_ID)
        components += [serving_gen, serving_validator]

    with tfx.dsl.Cond(validator.outputs["anomalies"].future()[0].custom_property("blessed") == 1):
        trainer = tfx.components.Trainer(
            examples=transform.outputs["transformed_examples"],
            transform_graph=transform.outputs["transform_graph"],
            run_fn=RUN_FN,
            train_args=tfx.proto.TrainArgs(num_steps=TRAIN_STEPS),
            eval_args=tfx.proto.EvalArgs(num_steps=EVAL_STEPS),
        )

    return tfx.dsl.Pipeline(
        pipeline_name=pipeline_name,
        pipeline_root=pipeline_root,
        metadata_connection_config=(
            None
            if metadata_path is None
            else tfx.orchestration.metadata.sqlite_metadata_connection_config(metadata_path)
        ),
        components=[*components, trainer],
        enable_cache=enable_cache,
        beam_pipeline_args=beam_pipeline_args or [],
    )


def compile_for_kubeflow_v2(
    *,
    pipeline_name: str,
    pipeline_root: str,
    output_path: str,
    config: str = "clean",
    image: str = CONTAINER_IMAGE,
) -> dict:
    """Compiles the demo pipeline to a Vertex AI / Kubeflow Pipelines job spec.

    Nothing is submitted: the file is what `aiplatform.PipelineJob(template_path=...)`
    or the Kubeflow Pipelines UI takes. Every step runs in `image`, which reads the
    demo data and schema from where docker/Dockerfile copies them.

    Args:
      pipeline_name: Pipeline name (lower case, digits and dashes on Vertex AI).
      pipeline_root: Root of the pipeline's artifacts, e.g. `gs://BUCKET/root`.
      output_path: The JSON (or .yaml) file to write.
      config: 'clean' or 'broken', as for create_pipeline.
      image: The image built from docker/Dockerfile, as the workers can pull it
        (a registry path such as REGION-docker.pkg.dev/PROJECT/REPO/embedding-guard:TAG).

    Returns:
      The compiled PipelineJob as a dict, as written to output_path.
    """
    pipeline = create_pipeline(
        pipeline_name=pipeline_name,
        pipeline_root=pipeline_root,
        data_root=IMAGE_DATA_ROOT,
        schema_path=IMAGE_SCHEMA_PATH,
        metadata_path=None,
        config=config,
    )
    output_dir, output_filename = os.path.split(os.path.abspath(output_path))
    runner = tfx.orchestration.experimental.KubeflowV2DagRunner(
        config=tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(default_image=image),
        output_dir=output_dir,
        output_filename=output_filename,
    )
    return runner.run(pipeline)
