"""Proof of completeness: the examples read against the count statistics give.

TFX writes example counts in two places. StatisticsGen writes one
`DatasetFeatureStatisticsList` per split (`Split-<name>/FeatureStats.pb`), so its
`num_examples` compares with one split's count. Transform writes its
`post_transform_stats` (`FeatureStats.pb`, no split folder) over every split it
transformed flattened into one dataset, so its `num_examples` compares only
with the sum over all those splits. `compare` checks either; proof_findings
turns a mismatch into an `EXAMPLE_COUNT_MISMATCH` ERROR. Pure Python.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

TRANSFORM = "transform"
STATISTICS = "statistics"
_WHO = {TRANSFORM: "Transform's statistics", STATISTICS: "StatisticsGen's statistics"}


@dataclasses.dataclass(frozen=True)
class ExampleCountCheck:
    """The examples a run read against the count in statistics of the same examples.

    Attributes:
      source: TRANSFORM (Transform's post_transform_stats, one count over every
        transformed split) or STATISTICS (StatisticsGen's, one count per split).
      path: The FeatureStats.pb the count was read from.
      splits: The splits the count covers; one for STATISTICS.
      counted: The examples this run read in those splits.
      expected: The statistics' num_examples; None when not compared.
      note: Why the counts were not compared, when expected is None.
    """

    source: str
    path: str
    splits: tuple[str, ...]
    counted: int
    expected: int | None
    note: str = ""

    @property
    def compared(self) -> bool:
        return self.expected is not None

    @property
    def who(self) -> str:
        """Whose statistics, as sentences name them."""
        return _WHO.get(self.source, self.source)

    @property
    def matches(self) -> bool:
        return self.expected is not None and self.expected == self.counted

    def sentence(self) -> str:
        """E.g. "9,909 of 9,909 examples, as StatisticsGen's statistics count them"."""
        who = self.who
        scope = "" if len(self.splits) == 1 else f" in splits {_names(self.splits)} together"
        if self.expected is None:
            return f"Example count not compared with {who} ({self.path}): {self.note}"
        if self.matches:
            return f"{self.counted:,} of {self.expected:,} examples{scope}, as {who} count them"
        return (
            f"{self.counted:,} examples read{scope}, but {who} ({self.path}) count "
            f"{self.expected:,}"
        )

    def to_json(self) -> dict:
        return {
            "source": self.source,
            "path": self.path,
            "splits": list(self.splits),
            "counted": self.counted,
            "expected": self.expected,
            "matches": self.matches,
            "note": self.note,
            "sentence": self.sentence(),
        }

    @classmethod
    def read_optional(cls, parent: Any, where: str) -> ExampleCountCheck | None:
        """Reads a split report's `example_count`; parent is report_model's field reader."""
        document = parent.get("example_count", default=None)
        if document is None:
            return None
        fields = type(parent)(document, f"{where}, example_count")
        return cls(
            source=fields.text("source"),
            path=fields.text("path"),
            splits=tuple(fields.items("splits")),
            counted=fields.integer("counted"),
            expected=fields.integer("expected", optional=True),
            note=fields.text("note", default=""),
        )


@dataclasses.dataclass(frozen=True)
class StatisticsCounts:
    """Example counts read from one statistics artifact.

    Attributes:
      source: TRANSFORM or STATISTICS.
      path: The artifact folder (or the FeatureStats.pb, for TRANSFORM).
      by_split: STATISTICS: split name -> (its FeatureStats.pb, num_examples).
      total: TRANSFORM: num_examples over every transformed split.
    """

    source: str
    path: str
    by_split: Mapping[str, tuple[str, int]] = dataclasses.field(default_factory=dict)
    total: int | None = None


def compare(
    counts: StatisticsCounts,
    counted: Mapping[str, int],
    all_splits: Sequence[str],
    raw_examples: bool = False,
) -> dict[str, ExampleCountCheck]:
    """Checks this run's example counts against statistics' counts.

    Args:
      counts: What the statistics say.
      counted: Split name -> examples this run read, for every split it read.
      all_splits: Every split the examples hold, read or not.
      raw_examples: The run read raw examples (the transform graph applied first).

    Returns:
      Split name -> its check, for every read split the statistics speak of.
    """
    checks = {}
    if counts.source == STATISTICS:
        for split, number in counted.items():
            if split in counts.by_split:
                path, in_statistics = counts.by_split[split]
                checks[split] = ExampleCountCheck(STATISTICS, path, (split,), number, in_statistics)
            else:
                # Given statistics that skip a split must say so, not fall silent.
                note = (
                    f"they have no Split-{split}/FeatureStats.pb, only splits "
                    f"{_names(sorted(counts.by_split))}"
                )
                checks[split] = ExampleCountCheck(
                    STATISTICS, counts.path, (split,), number, None, note
                )
        return checks
    splits = tuple(sorted(counted))
    total = sum(counted.values())
    note = ""
    if raw_examples:
        # Transform counted what it transformed; raw examples checked against its
        # graph are usually other data (a new span, a serving log).
        note = (
            "they count the examples Transform transformed, and this run read raw "
            "examples, which may be other data"
        )
    elif set(all_splits) - set(counted):
        note = (
            f"they count splits {_names(sorted(all_splits))} together, and this run read "
            f"only {_names(splits)}"
        )
    expected = None if note else counts.total
    for split in splits:
        checks[split] = ExampleCountCheck(TRANSFORM, counts.path, splits, total, expected, note)
    return checks


def _names(names: Sequence[str]) -> str:
    quoted = [repr(n) for n in names]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " and " + quoted[-1]
