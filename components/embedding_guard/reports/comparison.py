"""How one validator run's findings changed against an earlier run's.

Its own module so that the HTML page can show a comparison without importing
the MLMD queries (`mlmd_runs.compare` builds it).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from embedding_guard.verdict.reasons import Reason, Severity
from embedding_guard.verdict.remap import RemapStats
from embedding_guard.verdict.report_model import SplitReport


@dataclasses.dataclass(frozen=True)
class FindingChange:
    """How the count behind one (split, feature, reason) changed between two runs.

    Attributes:
      split: Split name.
      feature: Feature name; "" for split-level findings.
      reason: The finding's reason.
      severity: Its severity, in the newer run if it has the finding.
      count: The count now; 0 without finding, None when the split was not checked.
      previous_count: The same in the earlier run.
    """

    split: str
    feature: str
    reason: Reason
    severity: Severity
    count: int | None
    previous_count: int | None

    def to_json(self) -> dict:
        return {
            "split": self.split,
            "feature": self.feature,
            "reason": self.reason.value,
            "severity": self.severity.value,
            "count": self.count,
            "previous_count": self.previous_count,
        }


@dataclasses.dataclass(frozen=True)
class RunComparison:
    """A run's ERROR and WARNING findings against an earlier run's."""

    previous_run_id: str
    previous_execution_id: int
    summary: str
    changes: tuple[FindingChange, ...]

    def to_json(self) -> dict:
        return {
            "previous_run_id": self.previous_run_id,
            "previous_execution_id": self.previous_execution_id,
            "summary": self.summary,
            "changes": [change.to_json() for change in self.changes],
        }


def vocabulary_changes(reports: Mapping[str, SplitReport]) -> str:
    """Which vocabularies changed against the old rows a run compared with, and how much.

    One line per compared feature whose vocabulary changed, with the values each
    split sends to rows trained for other tokens; "" when none changed or nothing
    was compared (no model and no baseline_transform_graph).
    """
    changed: dict[str, tuple[RemapStats, list[str]]] = {}
    for split, report in sorted(reports.items()):
        for feature in report.features:
            remap = feature.remap
            if remap is None or not (remap.changed or remap.remapped_values):
                continue
            entry = changed.setdefault(feature.feature, (remap, []))
            entry[1].append(
                f"{split} {remap.remapped_values} of {feature.stats.num_values} values remapped"
            )
    lines = []
    for name, (remap, splits) in sorted(changed.items()):
        lines.append(
            f"  {name}: {remap.tokens_moved} token(s) moved, {remap.tokens_added} added, "
            f"{remap.tokens_removed} removed ({remap.old_vocab_size} -> {remap.new_vocab_size} "
            f"entries); {', '.join(splits)}"
        )
    if not lines:
        return ""
    source = next(iter(changed.values()))[0].old_source
    return "\n".join([f"Vocabularies changed against {source}:", *lines])
