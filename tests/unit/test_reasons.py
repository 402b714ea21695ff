"""The reasons registry: one entry per reason, read by findings, pages and the README."""

import pathlib

import numpy as np
import pytest

from embedding_guard.verdict import core, findings, reasons
from embedding_guard.verdict.reasons import REASONS, Reason, Severity

README = pathlib.Path(__file__).resolve().parents[2] / "README.md"


def test_every_reason_has_an_entry():
    assert set(REASONS) == set(Reason)
    for reason, entry in REASONS.items():
        assert entry.short_description and entry.when and entry.fix, reason


def test_anomaly_types_are_tfdv_types():
    from tensorflow_metadata.proto.v0 import anomalies_pb2

    known = set(anomalies_pb2.AnomalyInfo.Type.keys())
    for reason, entry in REASONS.items():
        assert entry.anomaly_type in known, reason
        assert entry.anomaly_type != "UNKNOWN_TYPE", reason


@pytest.mark.parametrize(
    ("reason", "severity"),
    [
        (Reason.SCHEMA_DOMAIN_MISMATCH, Severity.WARNING),
        (Reason.EMBEDDING_TABLE_TOO_SMALL, Severity.ERROR),
        (Reason.SILENT_WRONG_LOOKUP, Severity.ERROR),
        (Reason.MODEL_LOOKUP_UNCHECKED, Severity.WARNING),
    ],
)
def test_model_and_graph_reasons_are_registered(reason, severity):
    assert reason.value == reason.name
    assert REASONS[reason].severity is severity


def test_readme_reasons_table_is_the_registry():
    assert reasons.reasons_table() in README.read_text(encoding="utf-8")


def test_fix_fills_in_the_bound():
    assert reasons.fix_text(Reason.INDEX_OVER_EMBEDDING_DIM, 42).startswith(
        "Size the Embedding as 42 (vocabulary plus OOV buckets)"
    )
    assert "vocab_size + num_oov_buckets" in reasons.fix_text(Reason.INDEX_OVER_EMBEDDING_DIM)


def test_findings_take_severity_and_fix_from_the_registry():
    bounds = core.FeatureBounds("item", upper_bound=10, embedding_input_dim=9, vocab_size=8,
                                num_oov_buckets=2, vocabulary="item")  # fmt: skip
    values = np.array([-1, 9, 12, 1.5], dtype=object)

    report = findings.check_arrays("eval", [bounds], {"item": (values, np.ones(4))})

    # By hand: -1 is negative; 9 is in the OOV buckets [8, 10) and not under the
    # input_dim 9; 12 is past the bound 10 and the input_dim; 1.5 is no integer.
    # Each finding's severity, and the fix its description carries in the
    # registry's words (with the bound 10).
    expected = {
        Reason.NEGATIVE_INDEX: (Severity.ERROR, "set num_oov_buckets >= 1 and size the"),
        Reason.INDEX_OUT_OF_RANGE: (Severity.ERROR, "embedding_input_dims to fit."),
        Reason.INDEX_OVER_EMBEDDING_DIM: (
            Severity.ERROR, "Size the Embedding as 10 (vocabulary plus OOV buckets)",
        ),
        Reason.NON_INTEGER_VALUES: (Severity.ERROR, "cast the feature or look it up"),
        # INFO: nothing to fix.
        Reason.OOV_BUCKET_HITS: (Severity.INFO, None),
    }  # fmt: skip
    assert {f.reason: f.severity for f in report.findings} == {
        reason: severity for reason, (severity, _) in expected.items()
    }
    for finding in report.findings:
        assert finding.severity is REASONS[finding.reason].severity
        fix = expected[finding.reason][1]
        if fix is not None:
            assert fix in finding.description
            assert reasons.fix_text(finding.reason, 10) in finding.description
