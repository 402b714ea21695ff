"""TFX's own Chicago taxi pipeline with the README's two validators, run as a user must.

The pipeline is TFX's shipped `taxi_pipeline_native_keras._create_pipeline`, node
for node, with the README's "Add it to a pipeline" snippets executed in place of
its Trainer and Pusher wiring: the snippets' `Transform(...)`, `Trainer(...)` and
`push_destination=...` placeholders become the taxi's own arguments, and nothing
else in them is changed (test_taxi_pipeline.py compares the nodes with TFX's
own, and the pipeline with the README). The user module is a copy of TFX's shipped
`taxi_utils_native_keras.py`; `oov0` and `off_by_one` change that copy, never the
installed file.

Left out of TFX's pipeline, for the test's time budget: the Evaluator and its
model resolver (a TFMA Beam run per trained model; the README's Pusher takes no
blessing, so nothing would consume it), the 1000/150 training steps (a few steps
suffice: the tests check wiring and tables, not accuracy) and the
multi-processing Beam arguments (slower on two cores, field notes).

Run as a script, `TF_USE_LEGACY_KERAS=1 python taxi_pipeline.py WORK_DIR`: the
variable must be set before Python starts (README), so the tests run it in a
subprocess. It makes one LocalDagRunner run per config in CONFIGS, in that order,
into one pipeline root and one sqlite MLMD, laid out as TFX's taxi example lays
them out under $HOME; `enable_cache=True` lets a run reuse every node whose
inputs and properties are unchanged.
"""

from __future__ import annotations

import importlib.util
import pathlib
import re
import sys

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
README_PATH = REPO_ROOT / "README.md"
PIPELINE_NAME = "chicago_taxi_native_keras"
# clean: TFX's module as shipped. oov0: its vocabularies get no OOV bucket, so
# missing and unseen values become -1. off_by_one: the Trainer's payment_type table
# is one row smaller than the feature's range.
CONFIGS = ("clean", "oov0", "off_by_one")
TRAIN_STEPS = 4
EVAL_STEPS = 2
USER_MODULE = "taxi_utils_native_keras.py"
OFF_BY_ONE_FEATURE = "payment_type_xf"
# What stands in the README's snippets for the parts a pipeline fills in itself,
# and the names of this module's builders that fill them.
PLACEHOLDERS = {
    "tfx.components.Transform(...)": "taxi_transform()",
    "tfx.components.Trainer(...)": "taxi_trainer()",
    "push_destination=...": "push_destination=taxi_push_destination",
}


def taxi_example_dir() -> pathlib.Path:
    """The installed tfx/examples/chicago_taxi_pipeline folder."""
    spec = importlib.util.find_spec("tfx")
    assert spec is not None and spec.submodule_search_locations
    return pathlib.Path(spec.submodule_search_locations[0]) / "examples" / "chicago_taxi_pipeline"


def readme_snippets(readme_path: pathlib.Path = README_PATH) -> list[str]:
    """The ```python blocks of the README's "Add it to a pipeline" that add a validator."""
    text = readme_path.read_text()
    (section,) = re.findall(
        r"^## Add it to a pipeline\n(.*?)(?=^## )", text, re.MULTILINE | re.DOTALL
    )
    blocks = re.findall(r"^```python\n(.*?)^```", section, re.MULTILINE | re.DOTALL)
    return [block for block in blocks if "EmbeddingIndexValidator(" in block]


def readme_pipeline_code(readme_path: pathlib.Path = README_PATH) -> str:
    """The README's two validator snippets, one after the other, placeholders filled."""
    snippets = readme_snippets(readme_path)
    if len(snippets) != 2:
        raise ValueError(f"{readme_path}: expected 2 validator snippets, found {len(snippets)}")
    code = "\n".join(snippets)
    for placeholder, filled in PLACEHOLDERS.items():
        if code.count(placeholder) != 1:
            raise ValueError(f"{readme_path}: {placeholder!r} is not in the snippets exactly once")
        code = code.replace(placeholder, filled)
    return code


def _replace_once(text: str, old: str, new: str) -> str:
    if text.count(old) != 1:
        raise ValueError(f"{old!r} is not in TFX's {USER_MODULE} exactly once")
    return text.replace(old, new)


# Appended to the off_by_one module; run_fn hands it the TFTransformOutput. No
# payment_type in data.csv hashes to the last OOV bucket, so training still runs
# (tf_keras's CategoryEncoding raises on a value >= num_tokens): only the model
# gate can see the short table.
_OFF_BY_ONE_TABLE = f'''

_TF_TRANSFORM_OUTPUT = None


def _vocab_table_size(key):
  """{OFF_BY_ONE_FEATURE}'s table leaves out its last OOV bucket: one row short."""
  size = _TF_TRANSFORM_OUTPUT.num_buckets_for_transformed_feature(key)
  return size - 1 if key == {OFF_BY_ONE_FEATURE!r} else size
'''


def user_module_sources() -> dict[str, str]:
    """Config -> the text of its copy of TFX's taxi_utils_native_keras.py."""
    shipped = (taxi_example_dir() / USER_MODULE).read_text()
    off_by_one = _replace_once(
        shipped,
        "CategoryEncoding(num_tokens=_VOCAB_SIZE + _OOV_SIZE)",
        "CategoryEncoding(num_tokens=_vocab_table_size(key))",
    )
    off_by_one = _replace_once(
        off_by_one,
        "  tf_transform_output = tft.TFTransformOutput(fn_args.transform_output)\n",
        "  tf_transform_output = tft.TFTransformOutput(fn_args.transform_output)\n"
        "  global _TF_TRANSFORM_OUTPUT\n"
        "  _TF_TRANSFORM_OUTPUT = tf_transform_output\n",
    )
    return {
        "clean": shipped,
        "oov0": _replace_once(shipped, "\n_OOV_SIZE = 10\n", "\n_OOV_SIZE = 0\n"),
        "off_by_one": off_by_one + _OFF_BY_ONE_TABLE,
    }


class TaxiPaths:
    """Where the runs live under work_dir, as TFX's taxi example lays them out under $HOME."""

    def __init__(self, work_dir: pathlib.Path):
        self.work_dir = work_dir
        self.pipeline_root = work_dir / "tfx" / "pipelines" / PIPELINE_NAME
        self.metadata_path = work_dir / "tfx" / "metadata" / PIPELINE_NAME / "metadata.db"
        self.serving_model_dir = work_dir / "taxi" / "serving_model" / PIPELINE_NAME

    def user_module(self, config: str) -> pathlib.Path:
        # A folder per module: TFX packages every .py file beside the module file
        # into the user-code wheel, whose hash is part of the component's cache key.
        return self.work_dir / "taxi" / config / USER_MODULE

    def write_user_modules(self) -> None:
        for config, source in user_module_sources().items():
            self.user_module(config).parent.mkdir(parents=True, exist_ok=True)
            self.user_module(config).write_text(source)


def create_pipeline(paths: TaxiPaths, config: str, readme_path: pathlib.Path = README_PATH):
    """TFX's taxi pipeline for config, its validators and gates as the README's snippets.

    Args:
      paths: Where the user modules, pipeline root and MLMD are.
      config: One of CONFIGS. Transform gets oov0's module in oov0 and the shipped
        one otherwise (off_by_one changes only the model), so that its cached run
        is reused; the Trainer gets the config's module.
      readme_path: The README whose snippets wire the validators.

    Returns:
      The tfx.dsl.Pipeline.
    """
    from tfx import v1 as tfx

    transform_module = paths.user_module("oov0" if config == "oov0" else "clean")
    example_gen = tfx.components.CsvExampleGen(input_base=str(taxi_example_dir() / "data/simple"))
    statistics_gen = tfx.components.StatisticsGen(examples=example_gen.outputs["examples"])
    schema_gen = tfx.components.SchemaGen(
        statistics=statistics_gen.outputs["statistics"], infer_feature_shape=True
    )
    example_validator = tfx.components.ExampleValidator(
        statistics=statistics_gen.outputs["statistics"], schema=schema_gen.outputs["schema"]
    )
    names: dict = {}

    def taxi_transform():
        return tfx.components.Transform(
            examples=example_gen.outputs["examples"],
            schema=schema_gen.outputs["schema"],
            module_file=str(transform_module),
        )

    def taxi_trainer():
        return tfx.components.Trainer(
            module_file=str(paths.user_module(config)),
            examples=names["transform"].outputs["transformed_examples"],
            transform_graph=names["transform"].outputs["transform_graph"],
            schema=schema_gen.outputs["schema"],
            train_args=tfx.proto.TrainArgs(num_steps=TRAIN_STEPS),
            eval_args=tfx.proto.EvalArgs(num_steps=EVAL_STEPS),
        )

    names.update(
        taxi_transform=taxi_transform,
        taxi_trainer=taxi_trainer,
        taxi_push_destination=tfx.proto.PushDestination(
            filesystem=tfx.proto.PushDestination.Filesystem(
                base_directory=str(paths.serving_model_dir)
            )
        ),
    )
    # The README's own code builds the validators, the Trainer and the Pusher.
    exec(readme_pipeline_code(readme_path), names)  # noqa: S102
    return tfx.dsl.Pipeline(
        pipeline_name=PIPELINE_NAME,
        pipeline_root=str(paths.pipeline_root),
        components=[
            example_gen,
            statistics_gen,
            schema_gen,
            example_validator,
            names["transform"],
            names["validator"],
            names["trainer"],
            names["model_validator"],
            names["pusher"],
        ],
        enable_cache=True,
        metadata_connection_config=tfx.orchestration.metadata.sqlite_metadata_connection_config(
            str(paths.metadata_path)
        ),
    )


def main(argv: list[str]) -> None:
    from absl import logging
    from tfx import v1 as tfx

    logging.set_verbosity(logging.INFO)
    paths = TaxiPaths(pathlib.Path(argv[1]))
    paths.write_user_modules()
    for config in CONFIGS:
        logging.info("taxi e2e: running config %s", config)
        tfx.orchestration.LocalDagRunner().run(create_pipeline(paths, config))


if __name__ == "__main__":
    main(sys.argv)
