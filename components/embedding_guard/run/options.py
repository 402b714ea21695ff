"""ValidatorOptions: every setting of the validator, checked in one place.

The component, the executor and the CLI all build one `ValidatorOptions`, so a
setting is defaulted and checked once, whatever the front end. Like TFX's
`StatsOptions`, it validates itself and travels through the pipeline as exec
properties (JSON for lists and mappings).

Messages name each setting the way the caller spelled it: the component's
keyword (`embedding_input_dims`) or the CLI's flag (`--embedding-dim`).
"""

from __future__ import annotations

import dataclasses
import json
import numbers
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from embedding_guard.errors import InputError

EXAMPLES_KINDS = ("auto", "transformed", "raw")
SEVERITIES = ("WARNING", "ERROR")
# unchecked_severity may also only list the unchecked features, without a finding.
UNCHECKED_SEVERITIES = ("INFO", "WARNING", "ERROR")
DEFAULT_BASELINE_SPLIT = "train"
DEFAULT_MAX_OOV_RATE_INCREASE = 0.05
# Warn when most of a hashed feature's distinct values share a bucket.
DEFAULT_MAX_HASH_COLLISION_SHARE = 0.5

# TFX's own rule for split names (standard_artifact_utils.encode_split_names),
# restated so that checking a name does not import TFX.
_SPLIT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")

# How the CLI spells each setting; messages use these names in the CLI.
CLI_FLAGS = {
    "features": "--feature",
    "exclude_splits": "--exclude-split",
    "embedding_input_dims": "--embedding-dim",
    "feature_vocabularies": "--feature-vocabulary",
    "fail_on_block": "--fail-on-block",
    "examples_kind": "--examples-kind",
    "max_oov_rate": "--max-oov-rate",
    "max_oov_rate_severity": "--max-oov-rate-severity",
    "max_oov_rate_increase": "--max-oov-rate-increase",
    "max_oov_rate_increase_severity": "--max-oov-rate-increase-severity",
    "baseline_split": "--baseline-split",
    "parallelism": "--parallelism",
    "unchecked_severity": "--unchecked-severity",
    "vocabulary_remapped_severity": "--vocabulary-remapped-severity",
    "baseline_transform_graph": "--baseline-transform-graph",
    "max_hash_collision_share": "--max-hash-collision-share",
    "locator_feature": "--locator-feature",
    "offending_examples_limit": "--offending-examples-limit",
    # Not settings, but inputs that hints in messages name.
    "model": "--model",
    "schema": "--schema",
    "statistics": "--statistics",
    "transform_graph": "--transform-graph",
}


class OptionsError(InputError):
    """A setting has a bad value; the message names the setting and the fix."""


class OptionsTypeError(OptionsError, TypeError):
    """A setting has the wrong type; a TypeError as Python callers expect."""


def _is_integer(value: object) -> bool:
    # numpy integer scalars are Integral too; bool is an int that nobody means.
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _type_name(value: object) -> str:
    return type(value).__name__


def _shown(value: object) -> str:
    # The repr alone hides the type of numpy scalars and of a '25' typed as text.
    if type(value) in (int, float, bool, type(None)):
        return repr(value)
    return f"{value!r} ({_type_name(value)})"


@dataclasses.dataclass(frozen=True)
class ValidatorOptions:
    """Every setting of EmbeddingIndexValidator and `embedding-guard check`.

    Attributes:
      features: The transformed features to check; None checks every
        categorical feature plus every feature named in embedding_input_dims
        and feature_vocabularies.
      exclude_splits: Split names not to validate.
      embedding_input_dims: Feature -> the Trainer's Embedding input_dim;
        overrides what the model says.
      feature_vocabularies: Feature -> vocabulary name; overrides what the
        transform graph says.
      fail_on_block: Fail the component run instead of setting blessed = 0.
      examples_kind: "auto", "transformed" or "raw".
      max_oov_rate: Highest accepted OOV rate: one rate, or feature -> rate.
      max_oov_rate_severity: "WARNING" reports, "ERROR" blocks.
      max_oov_rate_increase: Highest accepted rise of the OOV rate over the
        baseline split's: one rate, feature -> rate, or None for no drift check.
      max_oov_rate_increase_severity: "WARNING" reports, "ERROR" blocks.
      baseline_split: The split OOV drift is measured against. None means
        "train" when the examples have that split, and no drift check otherwise;
        a split named here must exist.
      parallelism: Threads reading one split on one worker; None means the
        CPUs this process may use.
      unchecked_severity: "INFO" lists the categorical-looking integer features
        that have no bound and so were not checked; "WARNING" or "ERROR" also
        makes each one a FEATURE_NOT_CHECKED finding ("ERROR" blocks).
      vocabulary_remapped_severity: Severity of VOCABULARY_REMAPPED, values that
        reach rows trained for other tokens: "ERROR" blocks, "WARNING" reports.
      max_hash_collision_share: In raw mode, the share of a hashed feature's
        distinct values that may share their bucket with another before a
        HASH_BUCKETS_CROWDED warning, in (0, 1]; 1 never warns.
      locator_feature: A feature identifying a record (a trip or user id);
        its value is reported with each located offending value.
      offending_examples_limit: Whole offending examples (negative, too large or
        non-integer values) written per split and feature, byte-identical, as
        gzip TFRecords under Split-<name>/offending_examples/; 0 writes none.
        `check` writes 10 whenever it writes files (--output, or
        --offending-examples DIR).
    """

    features: tuple[str, ...] | None = None
    exclude_splits: tuple[str, ...] = ()
    embedding_input_dims: Mapping[str, int] = dataclasses.field(default_factory=dict)
    feature_vocabularies: Mapping[str, str] = dataclasses.field(default_factory=dict)
    fail_on_block: bool = False
    examples_kind: str = "auto"
    max_oov_rate: float | Mapping[str, float] | None = None
    max_oov_rate_severity: str = "WARNING"
    max_oov_rate_increase: float | Mapping[str, float] | None = DEFAULT_MAX_OOV_RATE_INCREASE
    max_oov_rate_increase_severity: str = "WARNING"
    baseline_split: str | None = None
    parallelism: int | None = None
    unchecked_severity: str = "INFO"
    vocabulary_remapped_severity: str = "ERROR"
    max_hash_collision_share: float = DEFAULT_MAX_HASH_COLLISION_SHARE
    locator_feature: str | None = None
    offending_examples_limit: int = 0

    def validate(self, names: Mapping[str, str] | None = None) -> ValidatorOptions:
        """Checks every setting and returns a normalised copy.

        Args:
          names: Setting -> how the caller spells it in messages (CLI_FLAGS for
            the CLI); default the Python keyword.

        Returns:
          The options with sequences as tuples, mappings as plain dicts and
          numbers as Python ints and floats.

        Raises:
          OptionsTypeError: A setting has the wrong type.
          OptionsError: A setting has a bad value.
        """
        names = dict(names or {})

        def name(setting: str) -> str:
            return names.get(setting, setting)

        exclude_splits = _split_names(name("exclude_splits"), self.exclude_splits)
        features = None
        if self.features is not None:
            features = _names(name("features"), self.features)
            if not features:
                raise OptionsError(
                    f"{name('features')}=[] checks nothing; leave it out to check every "
                    "categorical feature, or name the features to check."
                )
        embedding_input_dims = _mapping(
            name("embedding_input_dims"),
            self.embedding_input_dims,
            _positive_int,
            "a positive int",
        )
        feature_vocabularies = _mapping(
            name("feature_vocabularies"),
            self.feature_vocabularies,
            _vocabulary_name,
            "a vocabulary name",
        )
        if features is not None:
            for setting, mapping in (
                ("embedding_input_dims", embedding_input_dims),
                ("feature_vocabularies", feature_vocabularies),
            ):
                outside = sorted(set(mapping) - set(features))
                if outside:
                    raise OptionsError(
                        f"{name(setting)} names {outside!r}, which are not in "
                        f"{name('features')} {list(features)!r}; add them there or drop them."
                    )
        if not isinstance(self.fail_on_block, bool):
            raise OptionsTypeError(
                f"{name('fail_on_block')} must be True or False, got {self.fail_on_block!r}."
            )
        _choice(name("examples_kind"), self.examples_kind, EXAMPLES_KINDS)
        _choice(name("max_oov_rate_severity"), self.max_oov_rate_severity, SEVERITIES)
        _choice(
            name("max_oov_rate_increase_severity"), self.max_oov_rate_increase_severity, SEVERITIES
        )
        _choice(name("unchecked_severity"), self.unchecked_severity, UNCHECKED_SEVERITIES)
        _choice(name("vocabulary_remapped_severity"), self.vocabulary_remapped_severity, SEVERITIES)
        baseline_split = self.baseline_split
        if baseline_split is not None:
            if not isinstance(baseline_split, str) or not baseline_split:
                raise OptionsTypeError(
                    f"{name('baseline_split')} must be a split name, got {baseline_split!r}."
                )
            _split_names(name("baseline_split"), [baseline_split])
        parallelism = self.parallelism
        if parallelism is not None:
            if not _is_integer(parallelism) or parallelism < 1:
                raise OptionsError(
                    f"{name('parallelism')} must be a positive int (threads per worker), got "
                    f"{parallelism!r}; leave it out to use every CPU this process may use."
                )
            parallelism = int(parallelism)
        if self.locator_feature is not None and (
            not isinstance(self.locator_feature, str) or not self.locator_feature
        ):
            raise OptionsTypeError(
                f"{name('locator_feature')} must be a feature name, got "
                f"{self.locator_feature!r}; name a feature that identifies a record, or leave "
                "it out."
            )
        limit = self.offending_examples_limit
        if not _is_integer(limit) or limit < 0:
            raise OptionsError(
                f"{name('offending_examples_limit')} must be an int >= 0 (examples per split "
                f"and feature), got {limit!r}; 0 writes none."
            )
        share = _rate(self.max_hash_collision_share)
        if share is None or share == 0:
            raise OptionsError(
                f"{name('max_hash_collision_share')} must be a share in (0, 1], got "
                f"{self.max_hash_collision_share!r}; e.g. 0.5 warns when most distinct values "
                "of a hashed feature collide, 1 never warns."
            )
        return dataclasses.replace(
            self,
            features=features,
            exclude_splits=exclude_splits,
            embedding_input_dims=embedding_input_dims,
            feature_vocabularies=feature_vocabularies,
            max_oov_rate=_threshold(name("max_oov_rate"), self.max_oov_rate),
            max_oov_rate_increase=_threshold(
                name("max_oov_rate_increase"), self.max_oov_rate_increase
            ),
            parallelism=parallelism,
            max_hash_collision_share=share,
            offending_examples_limit=int(limit),
        )

    def check_against_run(
        self,
        split_names: Iterable[str],
        checked_features: Iterable[str],
        names: Mapping[str, str] | None = None,
    ) -> None:
        """Checks the names in the settings against the splits and features of a run.

        A misspelled split or feature name would switch its check off in
        silence, so it is an error that lists the valid names.

        Args:
          split_names: The splits being validated.
          checked_features: The features being checked.
          names: Setting -> how the caller spells it.

        Raises:
          OptionsError: baseline_split, or a feature key of a per-feature
            threshold, is not among them.
        """
        names = dict(names or {})
        splits = sorted(split_names)
        features = sorted(checked_features)
        if self.baseline_split is not None and self.baseline_split not in splits:
            raise OptionsError(
                f"{names.get('baseline_split', 'baseline_split')} {self.baseline_split!r} is "
                f"not a validated split; splits: {splits!r}. Name one of them, or leave it out "
                f"to compare with {DEFAULT_BASELINE_SPLIT!r} when it exists."
            )
        for setting in ("max_oov_rate", "max_oov_rate_increase"):
            value = getattr(self, setting)
            if isinstance(value, Mapping):
                unknown = sorted(set(value) - set(features))
                if unknown:
                    raise OptionsError(
                        f"{names.get(setting, setting)} names {unknown!r}, which are not checked "
                        f"features; checked features: {features!r}. Fix the names, or add the "
                        f"features to {names.get('features', 'features')}."
                    )

    def effective_baseline_split(self, split_names: Iterable[str]) -> str | None:
        """The split drift is measured against in a run over split_names, if any."""
        if self.baseline_split is not None:
            return self.baseline_split
        return DEFAULT_BASELINE_SPLIT if DEFAULT_BASELINE_SPLIT in set(split_names) else None

    def to_exec_properties(self) -> dict[str, Any]:
        """The exec properties of the component spec; lists and mappings as sorted JSON."""
        from embedding_guard import spec

        def dumps(value: object) -> str:
            return json.dumps(value, sort_keys=True)

        return {
            spec.EXCLUDE_SPLITS_KEY: dumps(list(self.exclude_splits)),
            spec.EMBEDDING_INPUT_DIMS_KEY: dumps(dict(self.embedding_input_dims)),
            spec.FEATURE_VOCABULARIES_KEY: dumps(dict(self.feature_vocabularies)),
            spec.FEATURES_KEY: dumps(None if self.features is None else list(self.features)),
            spec.FAIL_ON_BLOCK_KEY: int(self.fail_on_block),
            spec.EXAMPLES_KIND_KEY: self.examples_kind,
            spec.MAX_OOV_RATE_KEY: dumps(self.max_oov_rate),
            spec.MAX_OOV_RATE_SEVERITY_KEY: self.max_oov_rate_severity,
            spec.MAX_OOV_RATE_INCREASE_KEY: dumps(self.max_oov_rate_increase),
            spec.MAX_OOV_RATE_INCREASE_SEVERITY_KEY: self.max_oov_rate_increase_severity,
            spec.BASELINE_SPLIT_KEY: self.baseline_split or "",
            spec.PARALLELISM_KEY: self.parallelism or 0,
            spec.UNCHECKED_SEVERITY_KEY: self.unchecked_severity,
            spec.VOCABULARY_REMAPPED_SEVERITY_KEY: self.vocabulary_remapped_severity,
            spec.MAX_HASH_COLLISION_SHARE_KEY: dumps(self.max_hash_collision_share),
            spec.LOCATOR_FEATURE_KEY: self.locator_feature or "",
            spec.OFFENDING_EXAMPLES_LIMIT_KEY: self.offending_examples_limit,
        }

    @classmethod
    def from_exec_properties(cls, exec_properties: Mapping[str, Any]) -> ValidatorOptions:
        """Rebuilds and validates the options the component serialised.

        Unset properties (an older pipeline, or a hand-written spec) keep their
        defaults.

        Raises:
          OptionsError: A property does not hold valid JSON or a valid value.
        """
        from embedding_guard import spec

        def loads(key: str) -> Any:
            text = exec_properties.get(key)
            if text is None or text == "":
                return None
            try:
                return json.loads(text)
            except (TypeError, json.JSONDecodeError) as error:
                raise OptionsError(
                    f"exec property {key!r} = {text!r} is not JSON ({error}); build the "
                    "component with EmbeddingIndexValidator(...) rather than by hand."
                ) from None

        defaults = cls()
        max_oov_rate_increase = (
            loads(spec.MAX_OOV_RATE_INCREASE_KEY)
            if spec.MAX_OOV_RATE_INCREASE_KEY in exec_properties
            else defaults.max_oov_rate_increase
        )
        features = loads(spec.FEATURES_KEY)
        share = loads(spec.MAX_HASH_COLLISION_SHARE_KEY)
        options = cls(
            features=None if features is None else tuple(features),
            exclude_splits=tuple(loads(spec.EXCLUDE_SPLITS_KEY) or ()),
            embedding_input_dims=loads(spec.EMBEDDING_INPUT_DIMS_KEY) or {},
            feature_vocabularies=loads(spec.FEATURE_VOCABULARIES_KEY) or {},
            fail_on_block=bool(int(exec_properties.get(spec.FAIL_ON_BLOCK_KEY) or 0)),
            examples_kind=exec_properties.get(spec.EXAMPLES_KIND_KEY) or defaults.examples_kind,
            max_oov_rate=loads(spec.MAX_OOV_RATE_KEY),
            max_oov_rate_severity=(
                exec_properties.get(spec.MAX_OOV_RATE_SEVERITY_KEY)
                or defaults.max_oov_rate_severity
            ),
            max_oov_rate_increase=max_oov_rate_increase,
            max_oov_rate_increase_severity=(
                exec_properties.get(spec.MAX_OOV_RATE_INCREASE_SEVERITY_KEY)
                or defaults.max_oov_rate_increase_severity
            ),
            baseline_split=exec_properties.get(spec.BASELINE_SPLIT_KEY) or None,
            parallelism=int(exec_properties.get(spec.PARALLELISM_KEY) or 0) or None,
            unchecked_severity=(
                exec_properties.get(spec.UNCHECKED_SEVERITY_KEY) or defaults.unchecked_severity
            ),
            vocabulary_remapped_severity=(
                exec_properties.get(spec.VOCABULARY_REMAPPED_SEVERITY_KEY)
                or defaults.vocabulary_remapped_severity
            ),
            max_hash_collision_share=(
                defaults.max_hash_collision_share if share is None else share
            ),
            locator_feature=exec_properties.get(spec.LOCATOR_FEATURE_KEY) or None,
            offending_examples_limit=int(
                exec_properties.get(spec.OFFENDING_EXAMPLES_LIMIT_KEY) or 0
            ),
        )
        return options.validate()

    @classmethod
    def from_cli_args(cls, args: Any) -> ValidatorOptions:
        """Builds and validates the options of `embedding-guard check`.

        Args:
          args: The parsed arguments: repeated FEATURE=VALUE flags arrive as
            lists of (feature, value) pairs, thresholds as lists of
            (feature or None, rate or None) pairs.

        Raises:
          OptionsError: A flag has a bad value, or a repeated flag names a
            feature twice; the message names the flag.
        """
        options = cls(
            features=None if args.feature is None else tuple(args.feature),
            exclude_splits=tuple(args.exclude_split or ()),
            embedding_input_dims=_pairs_to_mapping("--embedding-dim", args.embedding_dim),
            feature_vocabularies=_pairs_to_mapping("--feature-vocabulary", args.feature_vocabulary),
            examples_kind=args.examples_kind,
            max_oov_rate=_cli_threshold("--max-oov-rate", args.max_oov_rate, None),
            max_oov_rate_severity=args.max_oov_rate_severity,
            max_oov_rate_increase=_cli_threshold(
                "--max-oov-rate-increase", args.max_oov_rate_increase, DEFAULT_MAX_OOV_RATE_INCREASE
            ),
            max_oov_rate_increase_severity=args.max_oov_rate_increase_severity,
            baseline_split=args.baseline_split,
            parallelism=args.parallelism,
            unchecked_severity=args.unchecked_severity,
            vocabulary_remapped_severity=args.vocabulary_remapped_severity,
            max_hash_collision_share=args.max_hash_collision_share,
            locator_feature=getattr(args, "locator_feature", None),
            # None: not given; `check` sets its default, which depends on --output.
            offending_examples_limit=getattr(args, "offending_examples_limit", None) or 0,
        )
        return options.validate(CLI_FLAGS)

    def oov_policy(self, split_names: Iterable[str]) -> Any:
        """The OOV thresholds of a run over split_names, as the core applies them."""
        from embedding_guard.verdict import findings
        from embedding_guard.verdict.reasons import Severity

        return findings.OovPolicy(
            max_oov_rate=self.max_oov_rate,
            max_oov_rate_severity=Severity(self.max_oov_rate_severity),
            max_oov_rate_increase=self.max_oov_rate_increase,
            max_oov_rate_increase_severity=Severity(self.max_oov_rate_increase_severity),
            baseline_split=self.effective_baseline_split(split_names) or "",
        )


def _names(setting: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, Sequence):
        example = f"; e.g. {setting}=[{value!r}]" if isinstance(value, str) else ""
        raise OptionsTypeError(
            f"{setting} must be a list of names, got {_type_name(value)} {value!r}{example}."
        )
    names = list(value)
    for item in names:
        if not isinstance(item, str) or not item:
            raise OptionsTypeError(
                f"{setting} must hold non-empty strings, got {item!r} in {names!r}."
            )
    duplicates = sorted({item for item in names if names.count(item) > 1})
    if duplicates:
        raise OptionsError(f"{setting} names {duplicates!r} more than once; list each once.")
    return tuple(names)


def _split_names(setting: str, value: Any) -> tuple[str, ...]:
    names = _names(setting, value)
    for item in names:
        if not _SPLIT_NAME.match(item):
            raise OptionsError(
                f"{setting}: Split names are expected to be alphanumeric (allowing dashes and "
                f"underscores, provided they are not the first character); got {item!r} instead."
            )
    return names


def _positive_int(value: Any) -> int | None:
    """value as an int if it is an embedding input_dim (an integer in [1, 2**63 - 1]), else None.

    The one check of an input_dim: the CLI parses --embedding-dim's text to an
    int and checks it here too; each front end words its own message.
    """
    # An embedding lookup's indices are int64.
    if _is_integer(value) and 0 < value < 2**63:
        return int(value)
    return None


def _vocabulary_name(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _rate(value: Any) -> float | None:
    """value as a float if it is a rate (a real number in [0, 1]), else None.

    The one check of a rate: the CLI parses a threshold flag's text to a float
    and checks it here too; each front end words its own message.
    """
    if _is_real(value) and 0 <= value <= 1:
        return float(value)
    return None


def _mapping(
    setting: str, value: Any, convert: Callable[[Any], Any], expected: str
) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise OptionsTypeError(
            f"{setting} must be a dict of feature -> {expected}, got {_type_name(value)} {value!r}."
        )
    result = {}
    for feature, item in value.items():
        if not isinstance(feature, str) or not feature:
            raise OptionsTypeError(f"{setting} keys must be feature names, got {feature!r}.")
        converted = convert(item)
        if converted is None:
            raise OptionsError(f"{setting}[{feature!r}] must be {expected}, got {_shown(item)}.")
        result[feature] = converted
    return dict(sorted(result.items()))


def _threshold(setting: str, value: Any) -> float | dict[str, float] | None:
    if value is None:
        return None
    if isinstance(value, Mapping):
        return _mapping(setting, value, _rate, "a rate between 0 and 1")
    converted = _rate(value)
    if converted is None:
        raise OptionsError(
            f"{setting} must be a rate between 0 and 1, or a dict of feature -> rate, got "
            f"{_shown(value)}."
        )
    return converted


def _choice(setting: str, value: object, choices: Sequence[str]) -> None:
    if value not in choices:
        raise OptionsError(f"{setting} must be one of {sorted(choices)!r}, got {value!r}.")


def _pairs_to_mapping(flag: str, pairs: Iterable[tuple[str, Any]] | None) -> dict[str, Any]:
    result: dict = {}
    for feature, value in pairs or ():
        if feature in result:
            raise OptionsError(
                f"{flag} names {feature!r} twice ({result[feature]!r} and {value!r}); give each "
                "feature once."
            )
        result[feature] = value
    return result


def _cli_threshold(
    flag: str, pairs: list[tuple[str | None, float | None]] | None, default: float | None
) -> float | dict[str, Any] | None:
    """Turns repeated `RATE` / `FEATURE=RATE` / `off` flags into one threshold setting."""
    if pairs is None:
        return default
    global_rates = [rate for feature, rate in pairs if feature is None]
    per_feature = [(feature, rate) for feature, rate in pairs if feature is not None]
    if global_rates and per_feature:
        raise OptionsError(
            f"{flag} mixes one rate for every feature with FEATURE=RATE; give either one "
            f"RATE, or FEATURE=RATE per feature."
        )
    if len(global_rates) > 1:
        raise OptionsError(f"{flag} is given {len(global_rates)} times; give it once.")
    if global_rates:
        return global_rates[0]
    return _pairs_to_mapping(flag, per_feature)
