"""Executor of EmbeddingIndexValidator."""

from __future__ import annotations

from typing import Any

from absl import logging
from tfx import types
from tfx.components.util import examples_utils
from tfx.dsl.components.base import base_beam_executor
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils
from tfx.utils import io_utils, json_utils

from embedding_guard import core, spec, transform_graph, validation
from embedding_guard.errors import InputError


class IndexValidationBlockedError(RuntimeError):
    """Raised with fail_on_block=True; TFX stores nothing else, so it carries the summary."""


def _json_parameter(exec_properties: dict[str, Any], key: str, default):
    value = json_utils.loads(exec_properties.get(key) or "null")
    return default if value is None else value


def oov_policy(exec_properties: dict[str, Any]) -> core.OovPolicy:
    """Builds the OOV thresholds from exec properties; unset ones keep their defaults."""
    settings = {}
    for key in (spec.MAX_OOV_RATE_KEY, spec.MAX_OOV_RATE_INCREASE_KEY):
        if exec_properties.get(key) is not None:
            settings[key] = json_utils.loads(exec_properties[key])
    for key in (spec.MAX_OOV_RATE_SEVERITY_KEY, spec.MAX_OOV_RATE_INCREASE_SEVERITY_KEY):
        if exec_properties.get(key):
            settings[key] = core.Severity(exec_properties[key])
    if exec_properties.get(spec.BASELINE_SPLIT_KEY):
        settings["baseline_split"] = exec_properties[spec.BASELINE_SPLIT_KEY]
    return core.OovPolicy(**settings)


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
          input_dict: `examples` (Examples), `transform_graph` (TransformGraph)
            and optionally `schema` (Schema, overrides the transformed schema).
          output_dict: `anomalies` (ExampleAnomalies).
          exec_properties: JSON-encoded `exclude_splits`, `embedding_input_dims`,
            `feature_vocabularies`, `features`; int `fail_on_block`.

        Raises:
          ValueError: The inputs cannot be validated (the message says why).
          IndexValidationBlockedError: A split has an ERROR finding and
            fail_on_block is set.
        """
        self._log_startup(input_dict, output_dict, exec_properties)
        examples = artifact_utils.get_single_instance(input_dict[spec.EXAMPLES_KEY])
        payload_format = examples_utils.get_payload_format(examples)
        if payload_format != example_gen_pb2.FORMAT_TF_EXAMPLE:
            raise InputError(
                f"examples artifact {examples.uri!r} holds "
                f"{example_gen_pb2.PayloadFormat.Name(payload_format)}; EmbeddingIndexValidator "
                "reads tf.Example (FORMAT_TF_EXAMPLE) only. Pass Transform's "
                "transformed_examples."
            )
        exclude_splits = _json_parameter(exec_properties, spec.EXCLUDE_SPLITS_KEY, [])
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
        if not all_splits:
            raise InputError(
                f"examples artifact {examples.uri!r} has no splits (split_names "
                f"{examples.split_names!r}), so there is nothing to validate. Pass an "
                "Examples artifact written by ExampleGen or Transform."
            )
        unknown_excluded = sorted(set(exclude_splits) - set(all_splits))
        if unknown_excluded:
            logging.warning(
                "exclude_splits names %r, which examples artifact %r does not have; its splits "
                "are %r.",
                unknown_excluded,
                examples.uri,
                all_splits,
            )
        splits = [name for name in all_splits if name not in exclude_splits]
        if not splits:
            raise InputError(
                f"exclude_splits={exclude_splits!r} leaves no split of examples artifact "
                f"{examples.uri!r} (splits: {all_splits!r}) to validate; exclude fewer splits."
            )

        graph = transform_graph.load_transform_graph(
            artifact_utils.get_single_uri(input_dict[spec.TRANSFORM_GRAPH_KEY])
        )
        schema = graph.schema
        if input_dict.get(spec.SCHEMA_KEY):
            schema_uri = artifact_utils.get_single_uri(input_dict[spec.SCHEMA_KEY])
            schema = io_utils.SchemaReader().read(io_utils.get_only_uri_in_dir(schema_uri))
        split_uris = {name: artifact_utils.get_split_uri([examples], name) for name in splits}
        validation_plan = validation.plan(
            split_uris,
            schema,
            graph.vocabulary_sizes,
            transform_graph_uri=graph.uri,
            raw_schema=graph.raw_schema,
            features=_json_parameter(exec_properties, spec.FEATURES_KEY, None),
            embedding_input_dims=_json_parameter(
                exec_properties, spec.EMBEDDING_INPUT_DIMS_KEY, {}
            ),
            feature_vocabularies=_json_parameter(
                exec_properties, spec.FEATURE_VOCABULARIES_KEY, {}
            ),
            examples_kind=exec_properties.get(spec.EXAMPLES_KIND_KEY) or "auto",
        )
        logging.info("Validating %s examples.", validation_plan.examples_kind.value)
        for b in validation_plan.bounds:
            logging.info(
                "Checking %s in [0, %d), embedding input_dim %d (%s; %s).",
                b.feature,
                b.upper_bound,
                b.embedding_input_dim,
                b.bound_source,
                b.embedding_dim_source,
            )

        anomalies = artifact_utils.get_single_instance(output_dict[spec.ANOMALIES_KEY])
        anomalies.split_names = artifact_utils.encode_split_names(splits)
        anomalies.span = examples.span
        jobs = validation.split_jobs(
            split_uris,
            {name: artifact_utils.get_split_uri([anomalies], name) for name in splits},
        )
        reports = validation.run(
            jobs,
            validation_plan.bounds,
            self._make_beam_pipeline(),
            baseline=schema,
            policy=oov_policy(exec_properties),
            parse=validation_plan.parse,
        )

        blessed_by_split = {name: int(report["blessed"]) for name, report in reports.items()}
        blessed = all(blessed_by_split.values())
        anomalies.set_int_custom_property(
            spec.BLESSED_PROPERTY, spec.BLESSED_VALUE if blessed else spec.NOT_BLESSED_VALUE
        )
        anomalies.set_json_value_custom_property(spec.BLESSED_BY_SPLIT_PROPERTY, blessed_by_split)
        if blessed:
            logging.info("No index would fail an embedding lookup in splits %s.", splits)
            return
        summary = validation.blocked_summary(reports)
        logging.warning("Embedding indices would fail; the Trainer is blocked:\n%s", summary)
        if int(exec_properties.get(spec.FAIL_ON_BLOCK_KEY) or 0):
            raise IndexValidationBlockedError(
                "EmbeddingIndexValidator blocked the pipeline (fail_on_block=True); "
                f"these indices would fail an embedding lookup:\n{summary}"
            )
