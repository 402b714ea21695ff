"""The embedding-guard demo pipeline: one validator gates the Trainer, another the Pusher.

CsvExampleGen -> StatisticsGen -> ImportSchemaGen -> Transform -> EmbeddingIndexValidator
-> Cond(blessed) -> Trainer -> ModelIndexValidator (the same examples, against the
trained model's embedding tables) -> Cond(blessed) -> Pusher. The configs share one
pipeline name, root and MLMD database:

* `clean`: every index fits; the model is trained and pushed. It also checks a raw
  serving span against the trained transform graph and model.
* `broken`: the preprocessing_fn drops city's OOV bucket; the Trainer is blocked.
* `small_table`: clean preprocessing, but the Trainer sizes city's Embedding to the
  vocabulary alone, forgetting its OOV bucket. No validator is told any embedding
  size: the model's own table blocks the Pusher.

`compile_for_kubeflow_v2` compiles the same pipeline for Vertex AI Pipelines or
Kubeflow Pipelines, with every step in the image docker/Dockerfile builds.
"""

import os

from demo_constants import (
    MONTH_EMBEDDING_DIM,
    SMALL_TABLE_FEATURE,
    SMALL_TABLE_VOCABULARY,
    TABLES_WITHOUT_OOV_ROWS_KEY,
)
from tfx import v1 as tfx

import embedding_guard
from embedding_guard import EmbeddingIndexValidator

PREPROCESSING_FNS = {
    "clean": "demo_preprocessing.preprocessing_fn_clean",
    "broken": "demo_preprocessing.preprocessing_fn_broken",
    "small_table": "demo_preprocessing.preprocessing_fn_clean",
}
# The Trainer's custom_config per config: which Embedding it sizes without OOV rows.
TRAINER_CUSTOM_CONFIGS = {
    "small_table": {TABLES_WITHOUT_OOV_ROWS_KEY: {SMALL_TABLE_FEATURE: SMALL_TABLE_VOCABULARY}},
}
RUN_FN = "demo_trainer.run_fn"
SERVING_VALIDATOR_ID = "ServingIndexValidator"
MODEL_VALIDATOR_ID = "ModelIndexValidator"
MODEL_RESOLVER_ID = "LatestModelResolver"
# Folder under the pipeline root where the Pusher copies a blessed model.
PUSHED_MODELS_DIR = "pushed_models"
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
    check_against_latest_model: bool = False,
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
      config: 'clean', 'broken' or 'small_table'; picks the Transform
        preprocessing_fn and how the Trainer sizes its Embeddings.
      beam_pipeline_args: Beam options for StatisticsGen, Transform and the validators.
      enable_cache: Whether TFX may reuse outputs of earlier identical executions.
      check_against_latest_model: Also check the new data before the Trainer against
        the tables of the pipeline's latest Model (the one a warm start would
        start from, or that is serving), resolved by a Resolver node. A first run
        has no model, and the validator then checks as without one; MLMD records
        that run's Resolver execution as FAILED (LatestArtifactStrategy returns
        None on no input), but the run goes on.

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
    components = [example_gen, statistics_gen, schema_gen, transform]
    latest_model = None
    if check_against_latest_model:
        model_resolver = tfx.dsl.Resolver(
            strategy_class=tfx.dsl.experimental.LatestArtifactStrategy,
            model=tfx.dsl.Channel(type=tfx.types.standard_artifacts.Model),
        ).with_id(MODEL_RESOLVER_ID)
        components.append(model_resolver)
        latest_model = model_resolver.outputs["model"]
    validator = EmbeddingIndexValidator(
        examples=transform.outputs["transformed_examples"],
        transform_graph=transform.outputs["transform_graph"],
        model=latest_model,
        # small_table gives no size anywhere: only the trained model knows it.
        embedding_input_dims=None if config == "small_table" else {"month_xf": MONTH_EMBEDDING_DIM},
    )
    components.append(validator)

    with tfx.dsl.Cond(validator.outputs["anomalies"].future()[0].custom_property("blessed") == 1):
        trainer = tfx.components.Trainer(
            examples=transform.outputs["transformed_examples"],
            transform_graph=transform.outputs["transform_graph"],
            run_fn=RUN_FN,
            train_args=tfx.proto.TrainArgs(num_steps=TRAIN_STEPS),
            eval_args=tfx.proto.EvalArgs(num_steps=EVAL_STEPS),
            custom_config=TRAINER_CUSTOM_CONFIGS.get(config),
        )
    # The same examples again, now against the tables of the model that will serve
    # them: the lookup that fails is the model's. This node stays outside the
    # Trainer's Cond on purpose. Nested under it, the Pusher would sit under two
    # Conds, which LocalDagRunner evaluates in no fixed order (a proto map), and
    # when the Trainer is skipped the inner one reads this node's missing anomalies
    # and fails the Pusher instead of skipping it. Its `model` input is optional, so
    # with the Trainer skipped it runs without a model and blocks on the data again.
    model_validator = EmbeddingIndexValidator(
        examples=transform.outputs["transformed_examples"],
        transform_graph=transform.outputs["transform_graph"],
        model=trainer.outputs["model"],
    ).with_id(MODEL_VALIDATOR_ID)
    with tfx.dsl.Cond(
        model_validator.outputs["anomalies"].future()[0].custom_property("blessed") == 1
    ):
        pusher = tfx.components.Pusher(
            model=trainer.outputs["model"],
            push_destination=tfx.proto.PushDestination(
                filesystem=tfx.proto.PushDestination.Filesystem(
                    base_directory=os.path.join(pipeline_root, PUSHED_MODELS_DIR)
                )
            ),
        )

    if config == "clean":
        # A later serving span, in raw form, checked against the transform graph and
        # the model about to be pushed: it reports which raw values the vocabulary
        # lacks, and which indices the model's tables would not hold.
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
            model=trainer.outputs["model"],
            examples_kind="raw",
            max_oov_rate=SERVING_MAX_OOV_RATE,
        ).with_id(SERVING_VALIDATOR_ID)
        components += [serving_gen, serving_validator]

    return tfx.dsl.Pipeline(
        pipeline_name=pipeline_name,
        pipeline_root=pipeline_root,
        metadata_connection_config=(
            None
            if metadata_path is None
            else tfx.orchestration.metadata.sqlite_metadata_connection_config(metadata_path)
        ),
        components=[*components, trainer, model_validator, pusher],
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
      config: 'clean', 'broken' or 'small_table', as for create_pipeline.
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
