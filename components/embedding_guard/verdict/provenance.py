"""Puts the locations of sample values and the per-shard read counts into split reports.

Findings are built from counts alone (`findings`); this adds, to each finding's
sample values, where each first occurs, and to each split's report what was
read of every shard. Pure Python.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from embedding_guard.verdict.core import SplitAccumulator
from embedding_guard.verdict.locations import (
    NEGATIVE,
    NON_INTEGER,
    RAW_OOV,
    TOO_LARGE,
    Location,
    ReadCounts,
)
from embedding_guard.verdict.reasons import Reason
from embedding_guard.verdict.report_model import FeatureReport, Finding, SplitReport

# Which samples each reason shows: the kind of location its sample values have.
_SAMPLE_KINDS = {
    Reason.NEGATIVE_INDEX: (NEGATIVE,),
    Reason.INDEX_OUT_OF_RANGE: (TOO_LARGE,),
    Reason.INDEX_OVER_EMBEDDING_DIM: (TOO_LARGE,),
    Reason.EMBEDDING_TABLE_TOO_SMALL: (TOO_LARGE,),
    Reason.NON_INTEGER_VALUES: (NON_INTEGER,),
    Reason.OOV_BUCKET_HITS: (RAW_OOV,),
    Reason.OOV_RATE_ABOVE_MAX: (RAW_OOV,),
    Reason.OOV_RATE_INCREASE: (RAW_OOV,),
}


def _located_finding(finding: Finding, feature: FeatureReport) -> Finding:
    # Another reason's integer samples are indices past a bound (SILENT_WRONG_LOOKUP).
    kinds = _SAMPLE_KINDS.get(finding.reason, (NEGATIVE, TOO_LARGE))
    if not finding.sample_values:
        return finding
    where: dict[tuple[str, int | str], Location] = {
        (s.kind, s.value): s.location for s in feature.stats.sample_locations
    }
    places = tuple(
        next((where[(kind, value)] for kind in kinds if (kind, value) in where), None)
        for value, _ in finding.sample_values
    )
    if not any(places):
        return finding
    return dataclasses.replace(finding, sample_locations=places)


def with_provenance(
    reports: Mapping[str, SplitReport], accumulators: Mapping[str, SplitAccumulator]
) -> dict[str, SplitReport]:
    """Each report with its findings' sample locations and its split's read counts.

    Args:
      reports: Split name -> report.
      accumulators: Split name -> the split's combined counts.

    Returns:
      Split name -> the report with locations and read counts.
    """
    result = {}
    for split, report in reports.items():
        features = tuple(
            dataclasses.replace(
                feature, findings=tuple(_located_finding(f, feature) for f in feature.findings)
            )
            for feature in report.features
        )
        accumulator = accumulators.get(split)
        read_counts = None if accumulator is None else ReadCounts.of(accumulator.shards)
        result[split] = dataclasses.replace(report, features=features, read_counts=read_counts)
    return result
