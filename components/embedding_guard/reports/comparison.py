"""How one validator run's findings changed against an earlier run's.

Its own module so that the HTML page can show a comparison without importing
the MLMD queries (`mlmd_runs.compare` builds it).
"""

from __future__ import annotations

import dataclasses

from embedding_guard.verdict.reasons import Reason, Severity


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
