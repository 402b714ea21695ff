"""The typed report of a split, as written to and read back from index_report.json.

`SplitReport.to_json` writes the document and `SplitReport.from_json` reads it
back, checking `format_version` and every field, so the terminal table, the HTML
page, the `report` command, notebooks and the blocked summary all read typed
objects, never dicts by string keys. Pure Python; no TensorFlow or TFX.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from embedding_guard.verdict import locations
from embedding_guard.verdict.core import FeatureBounds, FeatureStats
from embedding_guard.verdict.example_count import ExampleCountCheck
from embedding_guard.verdict.hash_load import HashLoad
from embedding_guard.verdict.lookup import LookupConsequence
from embedding_guard.verdict.reasons import REASONS, Reason, Severity
from embedding_guard.verdict.remap import RemapStats
from embedding_guard.verdict.report_format import ReportFormatError as ReportFormatError
from embedding_guard.verdict.samples import truncate_sample as truncate_sample

# Version 2: counts of features without vocabulary have `in_range`, and null
# `in_vocab`, `oov_bucket`, `at_default`, `oov` and `oov_rate`; reports list
# `unchecked_features`. Version 1 documents are still read.
# Version 3: findings carry `fix`, `values_past_table` and `lookup`; unchecked
# features a `role`; reports their `gate` and `coverage`.
REPORT_FORMAT_VERSION = 3
READABLE_FORMAT_VERSIONS = (1, 2, 3)


@dataclasses.dataclass(frozen=True)
class Finding:
    """One reason a split's feature passes, warns or blocks.

    Attributes:
      split: Split name.
      feature: Transformed feature name; empty for split-level findings.
      reason: Stable reason code.
      severity: ERROR blocks the Trainer; WARNING and INFO only report.
      count: Number of values (or examples, for missing features) concerned.
      rate: count over the values (or examples) of the split, in [0, 1].
      description: Sentence with the counts and the fix.
      sample_values: The most frequent values behind the finding, with counts.
      fix: What to change, alone (the description ends with it too).
      values_past_table: Of count, the values at or past the lookup's table (the
        model's, the Trainer's input_dim or the feature's range), which fail or go
        wrong at lookup; None when the reason is not about values.
      lookup: What the lookup does with these values, on CPU and GPU; None when
        the finding is not about values a lookup meets.
      sample_locations: Where each sample value first occurs (None if unknown).
    """

    split: str
    feature: str
    reason: Reason
    severity: Severity
    count: int
    rate: float
    description: str
    sample_values: tuple[tuple[int | str, int], ...] = ()
    fix: str = ""
    values_past_table: int | None = None
    lookup: LookupConsequence | None = None
    sample_locations: tuple[locations.Location | None, ...] = ()

    def to_json(self) -> dict:
        return {
            "split": self.split,
            "feature": self.feature,
            "reason": self.reason.value,
            "severity": self.severity.value,
            "count": self.count,
            "rate": self.rate,
            "description": self.description,
            "sample_values": locations.samples_to_json(self.sample_values, self.sample_locations),
            "fix": self.fix,
            "values_past_table": self.values_past_table,
            "lookup": None if self.lookup is None else self.lookup.to_json(),
        }

    @classmethod
    def from_json(cls, document: Any, source: str) -> Finding:
        fields = _Fields(document, source)
        lookup = fields.get("lookup", default=None)
        if lookup is not None:
            lookup_fields = _Fields(lookup, f"{source}, lookup")
            lookup = LookupConsequence(
                lookup=lookup_fields.text("lookup"),
                on_cpu=lookup_fields.text("on_cpu"),
                on_gpu=lookup_fields.text("on_gpu"),
                silent=lookup_fields.flag("silent"),
                evidence=lookup_fields.text("evidence", default=""),
            )
        return cls(
            split=fields.text("split"),
            feature=fields.text("feature"),
            reason=fields.choice("reason", Reason),
            severity=fields.choice("severity", Severity),
            count=fields.integer("count"),
            rate=fields.number("rate"),
            description=fields.text("description"),
            sample_values=fields.samples("sample_values", default=()),
            sample_locations=locations.sample_places_from_json(document, source),
            fix=fields.text("fix", default=""),
            values_past_table=fields.integer("values_past_table", default=None, optional=True),
            lookup=lookup,
        )


@dataclasses.dataclass(frozen=True)
class OovDrift:
    """A feature's OOV rate in a split against the baseline split's."""

    baseline_split: str
    baseline_oov_rate: float
    oov_rate: float

    @property
    def difference(self) -> float:
        return self.oov_rate - self.baseline_oov_rate

    @property
    def ratio(self) -> float | None:
        return self.oov_rate / self.baseline_oov_rate if self.baseline_oov_rate else None

    def to_json(self) -> dict:
        return {
            "baseline_split": self.baseline_split,
            "baseline_oov_rate": self.baseline_oov_rate,
            "oov_rate": self.oov_rate,
            "difference": self.difference,
            "ratio": self.ratio,
        }

    @classmethod
    def from_json(cls, document: Any, source: str) -> OovDrift:
        fields = _Fields(document, source)
        return cls(
            fields.text("baseline_split"),
            fields.number("baseline_oov_rate"),
            fields.number("oov_rate"),
        )


@dataclasses.dataclass(frozen=True)
class UncheckedFeature:
    """An integer feature that looks categorical but has no bound, so it was not checked.

    Attributes:
      name: The transformed feature's name.
      why: Why it has no bound, e.g. "a pass-through integer in the transform graph".
      parameter_that_would_check_it: The parameter that would give it a bound,
        e.g. "feature_vocabularies or an int_domain in the schema".
      raw_features: The raw features the transform graph computes it from.
      role: Why it is listed: NOT_CHECKED (a categorical-looking integer with no
        bound), EXCLUDED (left out by the `features` parameter) or
        NOT_LOOKED_UP (the given model never looks it up: a label or a weight).
    """

    NOT_CHECKED: ClassVar[str] = "not_checked"
    EXCLUDED: ClassVar[str] = "excluded"
    NOT_LOOKED_UP: ClassVar[str] = "not_looked_up"

    name: str
    why: str
    parameter_that_would_check_it: str
    raw_features: tuple[str, ...] = ()
    role: str = "not_checked"

    def to_json(self) -> dict:
        result = dataclasses.asdict(self)
        result["raw_features"] = list(self.raw_features)
        return result

    @classmethod
    def from_json(cls, document: Any, source: str) -> UncheckedFeature:
        fields = _Fields(document, source)
        return cls(
            fields.text("name"),
            fields.text("why"),
            fields.text("parameter_that_would_check_it"),
            tuple(fields.get("raw_features", [])),
            fields.text("role", default=cls.NOT_CHECKED),
        )


@dataclasses.dataclass(frozen=True)
class FeatureReport:
    bounds: FeatureBounds
    stats: FeatureStats
    findings: tuple[Finding, ...]
    oov_drift: OovDrift | None = None
    # How the feature's vocabulary moved against the old one; None when not compared.
    remap: RemapStats | None = None
    # How crowded its hash buckets are (raw mode, hashed features); None otherwise.
    hash_load: HashLoad | None = None

    @property
    def feature(self) -> str:
        return self.bounds.feature

    @property
    def has_vocabulary(self) -> bool:
        return self.bounds.vocab_size is not None

    @property
    def status(self) -> Severity | None:
        """The worst of ERROR and WARNING among the findings; None when neither."""
        return _worst(self.findings)

    def to_json(self) -> dict:
        return {
            "feature": self.bounds.feature,
            "bounds": self.bounds.to_json(),
            "counts": self.stats.to_json(),
            "oov_drift": None if self.oov_drift is None else self.oov_drift.to_json(),
            "findings": [f.to_json() for f in self.findings],
            "vocabulary_remap": None if self.remap is None else self.remap.to_json(),
            "hash_load": None if self.hash_load is None else self.hash_load.to_json(),
        }

    @classmethod
    def from_json(cls, document: Any, source: str, version: int) -> FeatureReport:
        fields = _Fields(document, source)
        feature = fields.text("feature")
        where = f"{source}, feature {feature!r}"
        bounds = _bounds_from_json(fields.get("bounds"), f"{where}, bounds")
        drift = fields.get("oov_drift", default=None)
        remap = fields.get("vocabulary_remap", default=None)
        try:
            remap = None if remap is None else RemapStats.from_json(remap, f"{where}, remap")
        except ValueError as error:
            raise ReportFormatError(f"{error}; re-run the validator to rewrite it.") from None
        return cls(
            bounds=bounds,
            stats=_stats_from_json(fields.get("counts"), f"{where}, counts", bounds, version),
            # A version-2 report kept SILENT_WRONG_LOOKUP beside its root cause: the
            # same problem twice. Read back, it is one finding, as runs now make it.
            findings=tuple(
                finding
                for finding in (
                    Finding.from_json(f, f"{where}, findings") for f in fields.items("findings")
                )
                if REASONS[finding.reason].stands_alone
            ),
            oov_drift=None if drift is None else OovDrift.from_json(drift, f"{where}, oov_drift"),
            remap=remap,
            hash_load=HashLoad.read_optional(fields, where),
        )


@dataclasses.dataclass(frozen=True)
class SplitReport:
    """Everything the validator found in one split.

    Attributes:
      split: Split name.
      num_examples: Examples in the split.
      features: One report per checked feature, by feature name.
      split_findings: Findings about the split itself (e.g. EMPTY_SPLIT).
      unchecked_features: Integer features that were not checked, each with its
        role: not checked, excluded by `features`, or not looked up by the model.
      gate: The stage this validation gates: "Trainer" before training, or
        "Pusher" when it checked a trained model.
      example_count: The examples read against statistics' count of them; None
        when no statistics were at hand.
      read_counts: Records and bytes read per shard, and their sums.
    """

    split: str
    num_examples: int
    features: tuple[FeatureReport, ...]
    split_findings: tuple[Finding, ...] = ()
    unchecked_features: tuple[UncheckedFeature, ...] = ()
    gate: str = "Trainer"
    example_count: ExampleCountCheck | None = None
    read_counts: locations.ReadCounts | None = None

    def unchecked(self, role: str = UncheckedFeature.NOT_CHECKED) -> tuple[UncheckedFeature, ...]:
        """The listed features of one role (by default, those not checked)."""
        return tuple(u for u in self.unchecked_features if u.role == role)

    @property
    def coverage(self) -> str:
        """How many integer features were checked: '6 of 14 integer features checked, ...'."""
        checked = len(self.features)
        not_checked = len(self.unchecked())
        total = checked + not_checked
        text = f"{checked} of {total} categorical integer feature(s) checked"
        if not_checked:
            text += f", {not_checked} not checked"
        excluded = len(self.unchecked(UncheckedFeature.EXCLUDED))
        if excluded:
            text += f", {excluded} excluded by features"
        not_looked_up = len(self.unchecked(UncheckedFeature.NOT_LOOKED_UP))
        if not_looked_up:
            text += f"; {not_looked_up} the model never looks up (labels, weights)"
        if self.gate == "Pusher":
            # A model whose tables size nothing (a transform_fn given by mistake, a
            # model without embeddings) checks no table: say so, not just "checked".
            sized = sum(r.bounds.embedding_dim_kind == "model" for r in self.features)
            if sized:
                text += f"; {sized} against the model's own table sizes"
            else:
                text += "; no model table sizes any of them"
        return text

    @property
    def findings(self) -> tuple[Finding, ...]:
        """Every finding: the split's own, then each feature's in feature order."""
        return self.split_findings + tuple(f for r in self.features for f in r.findings)

    @property
    def blessed(self) -> bool:
        return not any(f.severity is Severity.ERROR for f in self.findings)

    @property
    def num_errors(self) -> int:
        return sum(f.severity is Severity.ERROR for f in self.findings)

    @property
    def num_warnings(self) -> int:
        return sum(f.severity is Severity.WARNING for f in self.findings)

    def problems(self) -> list[Finding]:
        """The ERROR findings, then the WARNING ones, each in report order."""
        findings = self.findings
        return [f for s in (Severity.ERROR, Severity.WARNING) for f in findings if f.severity is s]

    def feature(self, name: str) -> FeatureReport | None:
        """The report of feature name, or None when it was not checked."""
        return next((f for f in self.features if f.feature == name), None)

    def to_json(self) -> dict:
        return {
            "format_version": REPORT_FORMAT_VERSION,
            "split": self.split,
            "num_examples": self.num_examples,
            "blessed": self.blessed,
            "num_errors": self.num_errors,
            "num_warnings": self.num_warnings,
            "split_findings": [f.to_json() for f in self.split_findings],
            "features": [f.to_json() for f in self.features],
            "unchecked_features": [u.to_json() for u in self.unchecked_features],
            "gate": self.gate,
            "coverage": self.coverage,
            "example_count": None if self.example_count is None else self.example_count.to_json(),
            "read_counts": None if self.read_counts is None else self.read_counts.to_json(),
        }

    @classmethod
    def from_json(cls, document: Any, source: str = "index report") -> SplitReport:
        """Reads an index_report.json document.

        Args:
          document: The parsed JSON.
          source: What the document is, usually its path; every error names it.

        Returns:
          The report.

        Raises:
          ReportFormatError: The version is unknown, or a field is missing or
            has the wrong type.
        """
        fields = _Fields(document, source)
        version = fields.get("format_version")
        if (
            isinstance(version, bool)
            or not isinstance(version, int)
            or version not in READABLE_FORMAT_VERSIONS
        ):
            raise ReportFormatError(
                f"{source} has format_version {version!r}, which this embedding-guard cannot "
                f"read (it reads {list(READABLE_FORMAT_VERSIONS)!r}); read it with the "
                "embedding-guard version that wrote it, or upgrade embedding-guard."
            )
        split = fields.text("split")
        where = f"{source}, split {split!r}"
        return cls(
            split=split,
            num_examples=fields.integer("num_examples"),
            features=tuple(
                FeatureReport.from_json(f, where, version) for f in fields.items("features")
            ),
            split_findings=tuple(
                Finding.from_json(f, f"{where}, split_findings")
                for f in fields.items("split_findings", default=[])
            ),
            unchecked_features=tuple(
                UncheckedFeature.from_json(u, f"{where}, unchecked_features")
                for u in fields.items("unchecked_features", default=[])
            ),
            gate=fields.text("gate", default="Trainer"),
            example_count=ExampleCountCheck.read_optional(fields, where),
            read_counts=locations.ReadCounts.from_report(document, where),
        )


def _worst(findings: Sequence[Finding]) -> Severity | None:
    severities = {f.severity for f in findings}
    return next((s for s in (Severity.ERROR, Severity.WARNING) if s in severities), None)


def blocked_summary(reports: Mapping[str, SplitReport], limit: int = 20) -> str:
    """Summarises the ERROR findings of reports, one line each, for errors and logs."""
    lines = []
    for split, report in sorted(reports.items()):
        for finding in report.split_findings:
            if finding.severity is Severity.ERROR:
                lines.append(f"  split {split!r}: {finding.reason.value} {finding.description}")
        for feature in report.features:
            for finding in feature.findings:
                if finding.severity is not Severity.ERROR:
                    continue
                samples = ", ".join(f"{v!r} x{c}" for v, c in finding.sample_values)
                lines.append(
                    f"  split {split!r} feature {finding.feature!r}: {finding.reason.value} "
                    f"{finding.count} of {feature.stats.num_values} values"
                    + (f" (top: {samples})" if samples else "")
                )
    if len(lines) > limit:
        lines = lines[:limit] + [f"  ... and {len(lines) - limit} more"]
    return "\n".join(lines)


class _Fields:
    """Typed access to one JSON object's fields; every error names source and field."""

    _MISSING = object()

    def __init__(self, document: Any, source: str):
        if not isinstance(document, Mapping):
            raise ReportFormatError(
                f"{source} must be a JSON object, got {type(document).__name__} "
                f"{_short(document)}; the file is damaged or not an embedding-guard report."
            )
        self._document = document
        self._source = source

    def _fail(self, key: str, expected: str, value: Any) -> ReportFormatError:
        return ReportFormatError(
            f"{self._source}: field {key!r} must be {expected}, got {_short(value)}; the file is "
            "damaged or not an embedding-guard report: re-run the validator to rewrite it."
        )

    def get(self, key: str, default: Any = _MISSING) -> Any:
        if key in self._document:
            return self._document[key]
        if default is self._MISSING:
            raise ReportFormatError(
                f"{self._source} lacks field {key!r}; the file is truncated, damaged or not an "
                "embedding-guard report: re-run the validator to rewrite it."
            )
        return default

    def integer(self, key: str, default: Any = _MISSING, optional: bool = False) -> Any:
        value = self.get(key, default)
        if value is None and optional:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise self._fail(key, "an integer" + (" or null" if optional else ""), value)
        return value

    def number(self, key: str) -> float:
        value = self.get(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self._fail(key, "a number", value)
        return float(value)

    def text(self, key: str, default: Any = _MISSING, optional: bool = False) -> Any:
        value = self.get(key, default)
        if value is None and optional:
            return None
        if not isinstance(value, str):
            raise self._fail(key, "a string" + (" or null" if optional else ""), value)
        return value

    def flag(self, key: str, default: Any = _MISSING) -> bool:
        value = self.get(key, default)
        if not isinstance(value, bool):
            raise self._fail(key, "true or false", value)
        return value

    def items(self, key: str, default: Any = _MISSING) -> list:
        value = self.get(key, default)
        if not isinstance(value, list):
            raise self._fail(key, "a list", value)
        return value

    def choice(self, key: str, kind: type[enum.Enum]) -> Any:
        value = self.get(key)
        try:
            return kind(value)
        except (TypeError, ValueError):
            raise self._fail(key, f"one of {[m.value for m in kind]!r}", value) from None

    def samples(self, key: str, default: Any = _MISSING) -> tuple[tuple[Any, int], ...]:
        if key not in self._document and default is not self._MISSING:
            return tuple(default)
        samples = []
        for item in self.items(key):
            if not isinstance(item, Mapping) or "value" not in item or "count" not in item:
                raise self._fail(key, "a list of {'value': ..., 'count': ...}", item)
            value, count = item["value"], item["count"]
            if isinstance(value, bool) or not isinstance(value, (int, str)):
                raise self._fail(key, "samples whose value is an integer or a string", value)
            if isinstance(count, bool) or not isinstance(count, int):
                raise self._fail(key, "samples whose count is an integer", count)
            samples.append((truncate_sample(value), count))
        return tuple(samples)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:80] + "..."


def _bounds_from_json(document: Any, source: str) -> FeatureBounds:
    fields = _Fields(document, source)
    known = {
        "feature": fields.text("feature"),
        "upper_bound": fields.integer("upper_bound"),
        "embedding_input_dim": fields.integer("embedding_input_dim"),
        "vocab_size": fields.integer("vocab_size", default=None, optional=True),
        "num_oov_buckets": fields.integer("num_oov_buckets", default=0),
        "vocabulary": fields.text("vocabulary", default=None, optional=True),
        "bound_source": fields.text("bound_source", default=""),
        "embedding_dim_source": fields.text("embedding_dim_source", default=""),
    }
    # Fields that later versions of FeatureBounds add are read as written.
    names = {f.name for f in dataclasses.fields(FeatureBounds)}
    extra = {k: _frozen(v) for k, v in document.items() if k in names and k not in known}
    try:
        return FeatureBounds(**known, **extra)
    except (TypeError, ValueError) as error:
        raise ReportFormatError(f"{source} holds impossible bounds: {error}") from None


def _frozen(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_frozen(v) for v in value)
    return value


def _stats_from_json(
    document: Any, source: str, bounds: FeatureBounds, version: int
) -> FeatureStats:
    fields = _Fields(document, source)
    has_vocabulary = bounds.vocab_size is not None
    if version == 1:
        # Version 1 counted the valid values of a feature without vocabulary as
        # in_vocab, with 0 OOV.
        in_vocab = fields.integer("in_vocab")
        oov_bucket = fields.integer("oov_bucket")
        at_default = fields.integer("at_default", default=0)
        in_range = in_vocab + oov_bucket
        if not has_vocabulary:
            in_vocab = oov_bucket = at_default = None
    else:
        in_range = fields.integer("in_range")
        optional = not has_vocabulary
        in_vocab = fields.integer("in_vocab", optional=optional)
        oov_bucket = fields.integer("oov_bucket", optional=optional)
        at_default = fields.integer("at_default", optional=optional)
    return FeatureStats(
        num_examples=fields.integer("num_examples"),
        num_values=fields.integer("num_values"),
        missing=fields.integer("missing"),
        negative=fields.integer("negative"),
        in_range=in_range,
        in_vocab=in_vocab,
        oov_bucket=oov_bucket,
        out_of_range=fields.integer("out_of_range"),
        over_embedding_dim=fields.integer("over_embedding_dim"),
        non_integer=fields.integer("non_integer"),
        min=fields.integer("min", optional=True),
        max=fields.integer("max", optional=True),
        top_offending_values=fields.samples("top_offending_values"),
        top_non_integer_values=fields.samples("top_non_integer_values"),
        offending_values_complete=fields.flag("offending_values_complete"),
        at_default=at_default,
        vocab_entries_unseen=fields.integer("vocab_entries_unseen", default=None, optional=True),
        raw_values_checked=fields.flag("raw_values_checked", default=False),
        raw_empty_or_missing=fields.integer("raw_empty_or_missing", default=0),
        top_raw_oov_values=fields.samples("top_raw_oov_values", default=()),
        top_negative_values=fields.samples("top_negative_values", default=()),
        top_out_of_range_values=fields.samples("top_out_of_range_values", default=()),
        top_over_embedding_dim_values=fields.samples("top_over_embedding_dim_values", default=()),
        sample_locations=locations.sample_locations_from_json(document, source),
    )
