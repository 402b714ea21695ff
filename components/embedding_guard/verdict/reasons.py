"""What every finding reason means: one registry read by findings, files and pages.

The JSON report, the Anomalies proto, the terminal table, the HTML page and the
README's reasons table all take a reason's severity, TFDV anomaly type, short
description and fix from `REASONS`, so they cannot drift apart. Pure Python:
the anomaly type is the name of a `tensorflow_metadata` `AnomalyInfo.Type`, which
report_io resolves.
"""

from __future__ import annotations

import dataclasses
import enum


class Reason(str, enum.Enum):
    """Stable reason codes; they appear in reports and must never be renamed."""

    NEGATIVE_INDEX = "NEGATIVE_INDEX"
    INDEX_OUT_OF_RANGE = "INDEX_OUT_OF_RANGE"
    INDEX_OVER_EMBEDDING_DIM = "INDEX_OVER_EMBEDDING_DIM"
    NON_INTEGER_VALUES = "NON_INTEGER_VALUES"
    FEATURE_MISSING_FROM_SPLIT = "FEATURE_MISSING_FROM_SPLIT"
    EMPTY_SPLIT = "EMPTY_SPLIT"
    OOV_BUCKET_HITS = "OOV_BUCKET_HITS"
    OOV_RATE_ABOVE_MAX = "OOV_RATE_ABOVE_MAX"
    OOV_RATE_INCREASE = "OOV_RATE_INCREASE"
    SCHEMA_DOMAIN_MISMATCH = "SCHEMA_DOMAIN_MISMATCH"
    EMBEDDING_TABLE_TOO_SMALL = "EMBEDDING_TABLE_TOO_SMALL"
    SILENT_WRONG_LOOKUP = "SILENT_WRONG_LOOKUP"
    MODEL_LOOKUP_UNCHECKED = "MODEL_LOOKUP_UNCHECKED"
    FEATURE_NOT_CHECKED = "FEATURE_NOT_CHECKED"
    EXAMPLE_COUNT_MISMATCH = "EXAMPLE_COUNT_MISMATCH"
    HASH_BUCKETS_CROWDED = "HASH_BUCKETS_CROWDED"
    VOCABULARY_REMAPPED = "VOCABULARY_REMAPPED"
    VOCABULARY_ORDER_UNKNOWN = "VOCABULARY_ORDER_UNKNOWN"


class Severity(str, enum.Enum):
    """How a finding affects the verdict: any ERROR blocks the Trainer."""

    ERROR = "ERROR"
    WARNING = "WARNING"
    INFO = "INFO"


@dataclasses.dataclass(frozen=True)
class ReasonSpec:
    """What one reason means.

    Attributes:
      severity: The severity of its findings; the default one when configurable.
      anomaly_type: Name of the closest `tensorflow_metadata` AnomalyInfo.Type, so
        TFDV tools can show and filter the finding next to ExampleValidator's.
      short_description: A few words, the Anomalies proto's short_description.
      when: When the reason is reported, as the README's table says it.
      fix: What to change. `{upper_bound}` stands for the feature's valid range
        end, filled in by `fix_text`.
      severity_configurable: The severity is a parameter (e.g. max_oov_rate_severity).
      consequence_of: The root causes this reason is a consequence of. Such a
        reason never stands as a finding of its own: it is an attribute of its
        cause's finding, so that one problem is one finding. Empty for a reason
        that stands alone.
    """

    severity: Severity
    anomaly_type: str
    short_description: str
    when: str
    fix: str
    severity_configurable: bool = False
    consequence_of: tuple[Reason, ...] = ()

    @property
    def stands_alone(self) -> bool:
        """Whether findings of this reason are made; a consequence only describes one."""
        return not self.consequence_of


REASONS: dict[Reason, ReasonSpec] = {
    Reason.NEGATIVE_INDEX: ReasonSpec(
        Severity.ERROR,
        "INT_TYPE_SMALL_INT",
        "Negative embedding index",
        "any value `< 0` (also `-1` from `num_oov_buckets=0`, which Transform's schema accepts)",
        "A -1 is compute_and_apply_vocabulary's default_value for values missing from the "
        "vocabulary: set num_oov_buckets >= 1 and size the Embedding with "
        "embedding_guard.embedding_input_dim().",
    ),
    Reason.INDEX_OUT_OF_RANGE: ReasonSpec(
        Severity.ERROR,
        "INT_TYPE_BIG_INT",
        "Index beyond the valid range",
        "any value `>= vocab_size + num_oov_buckets` (or `> int_domain.max`)",
        "Either the values are wrong (examples not made by this transform graph, or an "
        "identity feature off by one: months 1..12 need month - 1) or the bound is: re-run "
        "Transform, fix the feature's int_domain, or size the Embedding and "
        "embedding_input_dims to fit.",
    ),
    Reason.INDEX_OVER_EMBEDDING_DIM: ReasonSpec(
        Severity.ERROR,
        "INT_TYPE_BIG_INT",
        "Index beyond embedding input_dim",
        "values in `[input_dim, range)` when `embedding_input_dims` gives an `input_dim` "
        "below the feature's range",
        "Size the Embedding as {upper_bound} (vocabulary plus OOV buckets), e.g. "
        "with embedding_guard.embedding_input_dim().",
    ),
    Reason.NON_INTEGER_VALUES: ReasonSpec(
        Severity.ERROR,
        "UNEXPECTED_DATA_TYPE",
        "Non-integer values in an index feature",
        "the feature is stored as float or bytes",
        "An embedding needs int64 indices: cast the feature or look it up in preprocessing_fn.",
    ),
    Reason.FEATURE_MISSING_FROM_SPLIT: ReasonSpec(
        Severity.ERROR,
        "FEATURE_TYPE_NOT_PRESENT",
        "Index feature missing from split",
        "a checked feature has no value in any example of a split",
        "Check that the examples were produced by this transform graph, or stop checking "
        "the feature (remove it from `features` / `embedding_input_dims`).",
    ),
    Reason.EMPTY_SPLIT: ReasonSpec(
        Severity.WARNING,
        "DATASET_LOW_NUM_EXAMPLES",
        "Split has no examples",
        "a split has no examples",
        "Check the upstream ExampleGen or Transform output.",
    ),
    Reason.OOV_BUCKET_HITS: ReasonSpec(
        Severity.INFO,
        "ENUM_TYPE_UNEXPECTED_STRING_VALUES",
        "Values in the OOV buckets",
        "values fell into OOV buckets (reported with their rate)",
        "Nothing to fix: unseen values are meant to get an OOV index. Re-run Transform on "
        "newer data if the rate grows.",
    ),
    Reason.OOV_RATE_ABOVE_MAX: ReasonSpec(
        Severity.WARNING,
        "ENUM_TYPE_UNEXPECTED_STRING_VALUES",
        "OOV rate above max_oov_rate",
        "OOV rate above `max_oov_rate`",
        "Re-run Transform on newer data to refresh the vocabulary, or raise max_oov_rate.",
        severity_configurable=True,
    ),
    Reason.OOV_RATE_INCREASE: ReasonSpec(
        Severity.WARNING,
        "ENUM_TYPE_UNEXPECTED_STRING_VALUES",
        "OOV rate rose over the baseline split",
        "OOV rate above the baseline split's by more than `max_oov_rate_increase`",
        "The data has drifted from the vocabulary: re-run Transform on newer data, or raise "
        "max_oov_rate_increase.",
        severity_configurable=True,
    ),
    Reason.SCHEMA_DOMAIN_MISMATCH: ReasonSpec(
        Severity.WARNING,
        "INVALID_DOMAIN_SPECIFICATION",
        "Transform graph and schema int_domain disagree",
        "the transform graph's bound of a feature differs from the schema's `int_domain`",
        "Regenerate the schema from this Transform run, or fix the feature's int_domain so "
        "it matches the lookup table in the transform graph.",
    ),
    Reason.EMBEDDING_TABLE_TOO_SMALL: ReasonSpec(
        Severity.ERROR,
        "INT_TYPE_BIG_INT",
        "Model's embedding table smaller than the bound",
        "the model's table has fewer rows than the feature's range (with the values "
        "already past it)",
        "Size the model's table as {upper_bound} rows (Embedding input_dim or "
        "CategoryEncoding num_tokens: vocabulary plus OOV buckets), e.g. with "
        "embedding_guard.embedding_input_dim(), and retrain.",
    ),
    Reason.SILENT_WRONG_LOOKUP: ReasonSpec(
        Severity.ERROR,
        "INT_TYPE_SMALL_INT",
        "Lookup silently wraps or returns zeros",
        "never alone: a finding's `lookup` says when a bad value gives a wrong row or zeros",
        "Fix the bad values at their source (num_oov_buckets >= 1, a correct int_domain), "
        "and size the layer with embedding_guard.embedding_input_dim().",
        consequence_of=(
            Reason.NEGATIVE_INDEX,
            Reason.INDEX_OUT_OF_RANGE,
            Reason.INDEX_OVER_EMBEDDING_DIM,
            Reason.EMBEDDING_TABLE_TOO_SMALL,
        ),
    ),
    Reason.MODEL_LOOKUP_UNCHECKED: ReasonSpec(
        Severity.WARNING,
        "SCHEMA_NEW_COLUMN",
        "Model looks up a feature that is not checked",
        "the model looks up a feature the validator does not check",
        "Check the feature too: add it to `features` (or remove `features` to check every "
        "categorical feature), or give it a bound with `feature_vocabularies` or an int_domain.",
    ),
    Reason.FEATURE_NOT_CHECKED: ReasonSpec(
        Severity.INFO,
        "SCHEMA_NEW_COLUMN",
        "Categorical integer feature not checked",
        "a categorical-looking integer feature has no bound, and `unchecked_severity` is not INFO",
        "Give it a bound: its table size in `embedding_input_dims`, a `model`, or an "
        "int_domain in the schema.",
        severity_configurable=True,
    ),
    Reason.EXAMPLE_COUNT_MISMATCH: ReasonSpec(
        Severity.ERROR,
        "DATASET_LOW_NUM_EXAMPLES",
        "Examples read differ from the statistics' count",
        "the records read differ from `num_examples` of Transform's or StatisticsGen's statistics",
        "Shards were lost, added or left unfinished after the statistics were computed, or "
        "the statistics are of other examples: re-run the component that wrote the "
        "examples, or pass the statistics of these examples (not sampled ones).",
    ),
    Reason.HASH_BUCKETS_CROWDED: ReasonSpec(
        Severity.WARNING,
        "FEATURE_TYPE_LOW_UNIQUE",
        "Most distinct values share their hash bucket",
        "raw mode: more of a hashed feature's distinct values share a bucket than "
        "`max_hash_collision_share`",
        "Hash into more buckets (tft.hash_strings' hash_buckets, to_hash_bucket's "
        "num_buckets) and size the Embedding to match, or raise max_hash_collision_share.",
    ),
    Reason.VOCABULARY_REMAPPED: ReasonSpec(
        Severity.ERROR,
        "ENUM_TYPE_UNEXPECTED_STRING_VALUES",
        "Tokens moved to other rows than the model was trained on",
        "values reach rows trained for other tokens (the vocabulary's order changed since "
        "`baseline_transform_graph` or the `model`)",
        "Warm-start the new model's tables with "
        "embedding_guard.warm_start_embeddings(base_model_dir, tf_transform_output), which "
        "moves each token's row to its new index, or train from scratch; never serve the old "
        "model on these indices.",
        severity_configurable=True,
    ),
    Reason.VOCABULARY_ORDER_UNKNOWN: ReasonSpec(
        Severity.INFO,
        "SCHEMA_NEW_COLUMN",
        "Old vocabulary order unknown",
        "a `model` without transform layer, and no `baseline_transform_graph`",
        "Pass the transform graph the model was trained with as baseline_transform_graph "
        "(check --baseline-transform-graph), or export the model with its transform layer.",
    ),
}


def spec(reason: Reason) -> ReasonSpec:
    """The registry entry of reason."""
    return REASONS[Reason(reason)]


def fix_text(reason: Reason, upper_bound: int | None = None) -> str:
    """The fix of reason, with the feature's valid range end filled in where it appears."""
    bound = "vocab_size + num_oov_buckets" if upper_bound is None else upper_bound
    return spec(reason).fix.format(upper_bound=bound)


def reasons_table() -> str:
    """The README's reasons table (Markdown), rendered from the registry."""
    lines = ["| reason | severity | when |", "|---|---|---|"]
    for reason, entry in REASONS.items():
        severity = entry.severity.value + (" (configurable)" if entry.severity_configurable else "")
        if not entry.stands_alone:
            severity = "part of another finding"
        lines.append(f"| `{reason.value}` | {severity} | {entry.when} |")
    return "\n".join(lines) + "\n"
