"""Keys and the ComponentSpec of EmbeddingIndexValidator.

This module is the only place the key strings appear; everything else imports
the constants.
"""

from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter, ComponentSpec, ExecutionParameter

# Input and output channels.
EXAMPLES_KEY = "examples"
TRANSFORM_GRAPH_KEY = "transform_graph"
SCHEMA_KEY = "schema"
MODEL_KEY = "model"
BASELINE_TRANSFORM_GRAPH_KEY = "baseline_transform_graph"
STATISTICS_KEY = "statistics"
ANOMALIES_KEY = "anomalies"

# Execution parameters; lists and dicts travel JSON-encoded (json_utils).
EXCLUDE_SPLITS_KEY = "exclude_splits"
EMBEDDING_INPUT_DIMS_KEY = "embedding_input_dims"
FEATURE_VOCABULARIES_KEY = "feature_vocabularies"
FEATURES_KEY = "features"
FAIL_ON_BLOCK_KEY = "fail_on_block"
EXAMPLES_KIND_KEY = "examples_kind"
MAX_OOV_RATE_KEY = "max_oov_rate"
MAX_OOV_RATE_SEVERITY_KEY = "max_oov_rate_severity"
MAX_OOV_RATE_INCREASE_KEY = "max_oov_rate_increase"
MAX_OOV_RATE_INCREASE_SEVERITY_KEY = "max_oov_rate_increase_severity"
BASELINE_SPLIT_KEY = "baseline_split"
PARALLELISM_KEY = "parallelism"
UNCHECKED_SEVERITY_KEY = "unchecked_severity"
VOCABULARY_REMAPPED_SEVERITY_KEY = "vocabulary_remapped_severity"
MAX_HASH_COLLISION_SHARE_KEY = "max_hash_collision_share"
LOCATOR_FEATURE_KEY = "locator_feature"
OFFENDING_EXAMPLES_LIMIT_KEY = "offending_examples_limit"

# TFX's custom property of Examples artifacts naming their payload format
# (example_gen utils' PAYLOAD_FORMAT_PROPERTY_NAME; importing that module costs a
# second of start-up, since it loads every ExampleGen).
PAYLOAD_FORMAT_PROPERTY = "payload_format"

# Custom properties of the anomalies artifact. `blessed` is an int so that
# `tfx.dsl.Cond(... .custom_property('blessed') == 1)` can gate the Trainer.
BLESSED_PROPERTY = "blessed"
BLESSED_BY_SPLIT_PROPERTY = "blessed_by_split"
BLESSED_VALUE = 1
NOT_BLESSED_VALUE = 0


class EmbeddingIndexValidatorSpec(ComponentSpec):
    """EmbeddingIndexValidator component spec."""

    PARAMETERS = {
        EXCLUDE_SPLITS_KEY: ExecutionParameter(type=str, optional=True),
        EMBEDDING_INPUT_DIMS_KEY: ExecutionParameter(type=str, optional=True),
        FEATURE_VOCABULARIES_KEY: ExecutionParameter(type=str, optional=True),
        FEATURES_KEY: ExecutionParameter(type=str, optional=True),
        FAIL_ON_BLOCK_KEY: ExecutionParameter(type=int, optional=True),
        EXAMPLES_KIND_KEY: ExecutionParameter(type=str, optional=True),
        MAX_OOV_RATE_KEY: ExecutionParameter(type=str, optional=True),
        MAX_OOV_RATE_SEVERITY_KEY: ExecutionParameter(type=str, optional=True),
        MAX_OOV_RATE_INCREASE_KEY: ExecutionParameter(type=str, optional=True),
        MAX_OOV_RATE_INCREASE_SEVERITY_KEY: ExecutionParameter(type=str, optional=True),
        BASELINE_SPLIT_KEY: ExecutionParameter(type=str, optional=True),
        PARALLELISM_KEY: ExecutionParameter(type=int, optional=True),
        UNCHECKED_SEVERITY_KEY: ExecutionParameter(type=str, optional=True),
        VOCABULARY_REMAPPED_SEVERITY_KEY: ExecutionParameter(type=str, optional=True),
        MAX_HASH_COLLISION_SHARE_KEY: ExecutionParameter(type=str, optional=True),
        LOCATOR_FEATURE_KEY: ExecutionParameter(type=str, optional=True),
        OFFENDING_EXAMPLES_LIMIT_KEY: ExecutionParameter(type=int, optional=True),
    }
    INPUTS = {
        EXAMPLES_KEY: ChannelParameter(type=standard_artifacts.Examples),
        TRANSFORM_GRAPH_KEY: ChannelParameter(type=standard_artifacts.TransformGraph),
        SCHEMA_KEY: ChannelParameter(type=standard_artifacts.Schema, optional=True),
        # The trained model whose embedding tables the indices must fit: the
        # Trainer's output (gating the Pusher), or a resolved earlier model.
        MODEL_KEY: ChannelParameter(type=standard_artifacts.Model, optional=True),
        # The transform graph an earlier model was trained with (a Resolver of the
        # previous Transform): each token's old row, for VOCABULARY_REMAPPED.
        BASELINE_TRANSFORM_GRAPH_KEY: ChannelParameter(
            type=standard_artifacts.TransformGraph, optional=True
        ),
        # Statistics of the same examples, whose num_examples the examples read must
        # match: StatisticsGen's (per split) or Transform's post_transform_stats.
        STATISTICS_KEY: ChannelParameter(type=standard_artifacts.ExampleStatistics, optional=True),
    }
    OUTPUTS = {
        ANOMALIES_KEY: ChannelParameter(type=standard_artifacts.ExampleAnomalies),
    }
