"""Executor of EmbeddingIndexValidator: resolves artifacts, then runs the shared validation."""

from __future__ import annotations

from typing import Any

from absl import logging
from tfx import types
from tfx.dsl.components.base import base_beam_executor
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils
from tfx.utils import io_utils

from embedding_guard import spec
from embedding_guard.errors import InputError
from embedding_guard.run import orchestration
from embedding_guard.run.options import ValidatorOptions
from embedding_guard.verdict.report_model import UncheckedFeature


class IndexValidationBlockedError(RuntimeError):
    """Raised with fail_on_block=True; TFX stores nothing else, so it carries the summary."""


class Executor(base_beam_executor.BaseBeamExecutor):
    """Counts every categorical index of every split and blesses or blocks."""

    def Do(
        self,
        input_dict: dict[str, list[types.Artifact]],
        output_dict: dict[str, list[types.Artifact]],
        exec_properties: dict[str, Any],
    ) -> None:
        """Validates the examples' indices against the transform graph's bounds.

        Args:
          input_dict: `examples` (Examples), `transform_graph` (TransformGraph),
            optionally `schema` (Schema, overrides the transformed schema),
            `model` (Model, whose embedding tables the indices must fit) and
            `statistics` (ExampleStatistics of the same examples).
          output_dict: `anomalies` (ExampleAnomalies).
          exec_properties: The ValidatorOptions, as the component serialised them.

        Raises:
          InputError: The inputs cannot be validated (the message says why).
          IndexValidationBlockedError: A split has an ERROR finding and
            fail_on_block is set.
        """
        self._log_startup(input_dict, output_dict, exec_properties)
        options = ValidatorOptions.from_exec_properties(exec_properties)
        examples = artifact_utils.get_single_instance(input_dict[spec.EXAMPLES_KEY])
        # As examples_utils.get_payload_format: no property means tf.Example, from
        # before TFX had other formats.
        payload_format = example_gen_pb2.FORMAT_TF_EXAMPLE
        if examples.has_custom_property(spec.PAYLOAD_FORMAT_PROPERTY):
            name = examples.get_string_custom_property(spec.PAYLOAD_FORMAT_PROPERTY)
            try:
                payload_format = example_gen_pb2.PayloadFormat.Value(name)
            except ValueError:
                raise InputError(
                    f"examples artifact {examples.uri!r} has payload_format {name!r}, which TFX "
                    f"does not know; valid: {sorted(example_gen_pb2.PayloadFormat.keys())!r}."
                ) from None
        if payload_format != example_gen_pb2.FORMAT_TF_EXAMPLE:
            raise InputError(
                f"examples artifact {examples.uri!r} holds "
                f"{example_gen_pb2.PayloadFormat.Name(payload_format)}; EmbeddingIndexValidator "
                "reads tf.Example (FORMAT_TF_EXAMPLE) only. Pass Transform's "
                "transformed_examples."
            )
        try:
            all_splits = artifact_utils.decode_split_names(examples.split_names)
            # TFX's own check; the names become output folder names below.
            artifact_utils.encode_split_names(all_splits)
        except ValueError as error:
            raise InputError(
                f"examples artifact {examples.uri!r} has split_names "
                f"{examples.split_names!r}, which TFX does not accept: {error} Pass an "
                "Examples artifact written by a TFX component."
            ) from error
        splits = orchestration.select_splits(
            all_splits,
            exclude_splits=options.exclude_splits,
            source=f"examples artifact {examples.uri!r} (split_names {examples.split_names!r})",
        )
        schema = None
        if input_dict.get(spec.SCHEMA_KEY):
            schema_uri = artifact_utils.get_single_uri(input_dict[spec.SCHEMA_KEY])
            schema = io_utils.SchemaReader().read(io_utils.get_only_uri_in_dir(schema_uri))
        model = None
        if input_dict.get(spec.MODEL_KEY):
            # The Model artifact's folder; model_analysis finds its Format-Serving.
            model = artifact_utils.get_single_uri(input_dict[spec.MODEL_KEY])
        statistics = None
        if input_dict.get(spec.STATISTICS_KEY):
            statistics = artifact_utils.get_single_uri(input_dict[spec.STATISTICS_KEY])
        baseline_transform_graph = None
        if input_dict.get(spec.BASELINE_TRANSFORM_GRAPH_KEY):
            baseline_transform_graph = artifact_utils.get_single_uri(
                input_dict[spec.BASELINE_TRANSFORM_GRAPH_KEY]
            )
        anomalies = artifact_utils.get_single_instance(output_dict[spec.ANOMALIES_KEY])
        anomalies.split_names = artifact_utils.encode_split_names(splits)
        anomalies.span = examples.span
        result = orchestration.validate(
            {name: artifact_utils.get_split_uri([examples], name) for name in splits},
            {name: artifact_utils.get_split_uri([anomalies], name) for name in splits},
            options,
            transform_graph=artifact_utils.get_single_uri(input_dict[spec.TRANSFORM_GRAPH_KEY]),
            schema=schema,
            model=model,
            pipeline=self._make_beam_pipeline(),
            statistics=statistics,
            all_splits=all_splits,
            baseline_transform_graph=baseline_transform_graph,
        )
        blessed_by_split = {name: int(blessed) for name, blessed in result.blessed_by_split.items()}
        anomalies.set_int_custom_property(
            spec.BLESSED_PROPERTY,
            spec.BLESSED_VALUE if result.blessed else spec.NOT_BLESSED_VALUE,
        )
        anomalies.set_json_value_custom_property(spec.BLESSED_BY_SPLIT_PROPERTY, blessed_by_split)
        log_coverage(result)
        if result.blessed:
            logging.info(
                "No index would fail an embedding lookup in splits %s; the %s may run.",
                splits,
                result.gate,
            )
            return
        summary = result.summary()
        logging.warning(
            "Embedding indices would fail; the %s is blocked:\n%s", result.gate, summary
        )
        if options.fail_on_block:
            raise IndexValidationBlockedError(
                f"EmbeddingIndexValidator blocked the {result.gate} (fail_on_block=True); "
                f"these indices would fail an embedding lookup:\n{summary}"
            )


def log_coverage(result: orchestration.ValidationResult) -> None:
    """Logs how many integer features were checked, and how to check each one that was not.

    A green verdict says nothing about a feature nobody looked at, so the TFX log
    names each one with the parameter that would check it.
    """
    logging.info("Coverage: %s.", result.coverage)
    not_checked = result.unchecked()
    if not_checked:
        logging.warning(
            "%d integer feature(s) were not checked; the verdict says nothing about them:\n%s",
            len(not_checked),
            "\n".join(
                f"  {u.name}: {u.why}; {u.parameter_that_would_check_it} would check it"
                for u in not_checked
            ),
        )
    for role, words in (
        (UncheckedFeature.EXCLUDED, "excluded by `features`"),
        (UncheckedFeature.NOT_LOOKED_UP, "never looked up by the model (labels, weights)"),
    ):
        listed = result.unchecked(role)
        if listed:
            logging.info("Integer feature(s) %s: %s.", words, ", ".join(u.name for u in listed))
