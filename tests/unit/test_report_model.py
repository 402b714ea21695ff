"""The typed report: JSON written and read back with its version, and what it may claim."""

import json

import numpy as np
import pytest

from embedding_guard.errors import InputError
from embedding_guard.reports import text
from embedding_guard.verdict import core, findings, report_model
from embedding_guard.verdict.reasons import Reason
from embedding_guard.verdict.report_model import SplitReport, UncheckedFeature

UNCHECKED = UncheckedFeature(
    "trip_start_hour_xf",
    "a pass-through integer in the transform graph, with no int_domain",
    "feature_vocabularies or an int_domain in the schema",
)


def _vocab_bounds():
    return core.FeatureBounds("item", upper_bound=10, embedding_input_dim=9, vocab_size=8,
                              num_oov_buckets=2, vocabulary="item_vocab",
                              bound_source="vocabulary 'item_vocab' (8 entries) + 2 OOV bucket(s)")  # fmt: skip


def _month_bounds():
    return core.FeatureBounds("month", upper_bound=12, embedding_input_dim=12,
                              bound_source="int_domain [0, 11]")  # fmt: skip


def _accumulator(item_values, month_values):
    accumulator = core.SplitAccumulator([_vocab_bounds(), _month_bounds()])
    accumulator.add_examples(len(item_values))
    for name, values in (("item", item_values), ("month", month_values)):
        values = np.asarray(values)
        accumulator.features[name].add_batch(values, np.ones(values.size, dtype=np.int64))
    return accumulator


def _reports():
    """train: clean; eval: every kind of finding, OOV drift, and an unchecked feature."""
    return findings.build_reports(
        {
            "train": _accumulator([0, 1, 2, 3], [0, 1, 2, 3]),
            "eval": _accumulator([-1, 8, 9, 12], [0, 12, 5, 11]),
            "empty": core.SplitAccumulator([_vocab_bounds()]),
        },
        findings.OovPolicy(max_oov_rate=0.1),
        unchecked_features=[UNCHECKED],
    )


def _document(split="eval"):
    return json.loads(json.dumps(_reports()[split].to_json()))


def test_json_reads_back_to_the_same_report():
    for report in _reports().values():
        document = json.loads(json.dumps(report.to_json()))

        assert SplitReport.from_json(document, "f.json") == report


def test_read_back_keeps_findings_drift_and_unchecked_features():
    report = SplitReport.from_json(_document("eval"), "f.json")

    assert [(f.feature, f.reason) for f in report.findings] == [
        ("item", Reason.NEGATIVE_INDEX),
        ("item", Reason.INDEX_OUT_OF_RANGE),
        ("item", Reason.INDEX_OVER_EMBEDDING_DIM),
        ("item", Reason.OOV_BUCKET_HITS),
        ("item", Reason.OOV_RATE_ABOVE_MAX),
        ("item", Reason.OOV_RATE_INCREASE),
        ("month", Reason.INDEX_OUT_OF_RANGE),
    ]
    # 2 of 4 values in the OOV buckets (8, 9): 50% against 0% in train.
    assert report.feature("item").oov_drift == report_model.OovDrift("train", 0.0, 0.5)
    assert report.unchecked_features == (UNCHECKED,)
    assert (report.blessed, report.num_errors, report.num_warnings) == (False, 4, 2)
    assert SplitReport.from_json(_document("empty"), "f.json").split_findings[0].reason is (
        Reason.EMPTY_SPLIT
    )


def test_format_version_is_written_and_checked():
    document = _document()
    assert document["format_version"] == report_model.REPORT_FORMAT_VERSION == 3

    for version in (4, 0, "2", None):
        document["format_version"] = version
        with pytest.raises(InputError) as raised:
            SplitReport.from_json(document, "'/a/Split-eval/index_report.json'")
        message = str(raised.value)
        assert message.startswith(
            f"'/a/Split-eval/index_report.json' has format_version {version!r}, which this "
            "embedding-guard cannot read (it reads [1, 2, 3])"
        )
        assert "\n" not in message


def test_a_version_2_report_reads_back_with_one_finding_per_problem():
    # Version 2 wrote SILENT_WRONG_LOOKUP beside the finding it follows from: the
    # same values counted twice by `report`, the HTML and the JUnit file.
    document = _document()
    document["format_version"] = 2
    (month,) = [f for f in document["features"] if f["bounds"]["feature"] == "month"]
    consequence = dict(month["findings"][0], reason="SILENT_WRONG_LOOKUP")
    month["findings"].append(consequence)

    report = SplitReport.from_json(document, "f.json")

    assert [f.reason for f in report.feature("month").findings] == [Reason.INDEX_OUT_OF_RANGE]
    assert report.num_errors == 4


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ((), "format_version"),
        ((), "features"),
        (("features", 0), "bounds"),
        (("features", 0, "counts"), "in_range"),
        (("features", 0, "findings", 0), "severity"),
    ],
)
def test_missing_field_is_an_input_error_naming_file_and_field(path, field):
    document = _document()
    target = document
    for step in path:
        target = target[step]
    del target[field]

    with pytest.raises(InputError) as raised:
        SplitReport.from_json(document, "'r.json'")

    assert str(raised.value).startswith("'r.json'")
    assert f"lacks field {field!r}" in str(raised.value)


@pytest.mark.parametrize(
    ("field", "value"),
    [("num_examples", "20"), ("features", {}), ("split", None), ("num_examples", True)],
)
def test_field_of_the_wrong_type_is_an_input_error(field, value):
    document = _document()
    document[field] = value

    with pytest.raises(InputError) as raised:
        SplitReport.from_json(document, "'r.json'")

    assert f"field {field!r} must be" in str(raised.value)


def test_unknown_reason_or_severity_is_an_input_error_without_raw_control_characters():
    for key in ("reason", "severity"):
        document = _document()
        document["features"][0]["findings"][0][key] = "\x1b[2J\x07BOOM"

        with pytest.raises(InputError) as raised:
            SplitReport.from_json(document, "'index_report.json'")

        assert "\x1b" not in str(raised.value) and "\x07" not in str(raised.value)
        assert "'\\x1b[2J\\x07BOOM'" in str(raised.value)


def test_document_that_is_not_an_object_is_an_input_error():
    with pytest.raises(InputError) as raised:
        SplitReport.from_json([1, 2], "'r.json'")

    assert str(raised.value).startswith("'r.json' must be a JSON object, got list [1, 2]")


def test_feature_without_vocabulary_claims_nothing_about_a_vocabulary():
    report = _reports()["eval"]
    month = report.feature("month")

    # 0 5 11 in [0, 12); 12 out of range.
    assert (month.stats.in_range, month.stats.out_of_range) == (3, 1)
    assert month.stats.in_vocab is None
    assert month.stats.oov_bucket is None
    assert month.stats.oov is None
    assert month.stats.oov_rate is None
    counts = report.to_json()["features"][1]["counts"]
    assert counts["in_range"] == 3
    for key in ("in_vocab", "oov_bucket", "at_default", "oov", "oov_rate"):
        assert counts[key] is None, key
    # With a vocabulary: -1 negative; 8 9 in the OOV buckets; 12 out of range.
    item = report.feature("item").stats
    assert (item.in_range, item.in_vocab, item.oov_bucket, item.oov) == (2, 0, 2, 2)


def test_version_1_documents_are_read_with_in_range():
    document = _document()
    document["format_version"] = 1
    del document["unchecked_features"]
    for feature in document["features"]:
        counts = feature["counts"]
        # Version 1 wrote a feature without vocabulary's valid values as in_vocab.
        if feature["bounds"]["vocab_size"] is None:
            counts.update(in_vocab=counts["in_range"], oov_bucket=0, at_default=0)
        del counts["in_range"]

    report = SplitReport.from_json(document, "old.json")

    month = report.feature("month").stats
    assert (month.in_range, month.in_vocab, month.oov_bucket) == (3, None, None)
    item = report.feature("item").stats
    assert (item.in_range, item.in_vocab, item.oov_bucket) == (2, 0, 2)
    assert report.unchecked_features == ()


def test_text_table_shows_no_vocabulary_counts_as_dashes():
    table = text.report_table({"eval": _reports()["eval"]})

    lines = table.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("split eval:"))
    header, item, month = (line.split() for line in lines[start + 1 : start + 4])
    columns = dict(zip(header, month, strict=True))
    # month has no vocabulary: no OOV rate and no drift.
    assert (columns["oov%"], columns["drift"]) == ("-", "-")
    assert dict(zip(header, item, strict=True))["oov%"] == "50.0%"


def test_text_lists_unchecked_features():
    table = text.report_table({"eval": _reports()["eval"]})

    # One table for the run, after the splits and before the verdict.
    lines = table.splitlines()
    start = lines.index("Not checked (1 integer feature(s)):")
    assert lines[start + 2].split() == [
        "trip_start_hour_xf", "not", "checked", "feature_vocabularies", "or", "an", "int_domain",
        "in", "the", "schema",
    ]  # fmt: skip
    assert lines[start + 3].startswith("BLOCKED: 4 errors in split eval;")


def test_huge_sample_values_are_truncated_and_marked():
    huge = [bytes([65 + i]) * 2_000_000 for i in range(12)]
    bounds = core.FeatureBounds("blob", upper_bound=4, embedding_input_dim=4)

    report = findings.check_arrays("eval", [bounds], {"blob": (np.array(huge, dtype=object),
                                                                np.ones(12))})  # fmt: skip

    stats = report.feature("blob").stats
    limit = core.SAMPLE_VALUE_MAX_CHARS
    assert len(stats.top_non_integer_values) == 10
    for value, count in stats.top_non_integer_values:
        assert value.startswith(value[0] * limit) and value[limit] != value[0]
        assert value.endswith("... [truncated, 2000000 bytes]")
        assert count == 1
    assert len(json.dumps(report.to_json())) < 20_000
    assert len(text.report_table({"eval": report})) < 10_000


def test_truncated_samples_stay_apart_when_their_lengths_differ():
    bounds = core.FeatureBounds("blob", upper_bound=4, embedding_input_dim=4)
    values = np.array([b"x" * 300, b"x" * 301, b"x" * 300], dtype=object)

    stats = findings.check_arrays("e", [bounds], {"blob": (values, np.ones(3))}).features[0].stats

    assert [count for _, count in stats.top_non_integer_values] == [2, 1]


def test_long_sample_in_an_old_document_is_truncated_on_reading():
    document = _document()
    document["features"][0]["findings"][0]["sample_values"] = [{"value": "y" * 5000, "count": 1}]

    report = SplitReport.from_json(document, "r.json")

    (value, _), = report.findings[0].sample_values  # fmt: skip
    assert len(value) < 300 and value.endswith("[truncated]")


def test_blocked_summary_lists_every_error_with_its_top_values():
    reports = _reports()

    summary = report_model.blocked_summary(reports)

    assert summary.splitlines() == [
        "  split 'eval' feature 'item': NEGATIVE_INDEX 1 of 4 values (top: -1 x1)",
        "  split 'eval' feature 'item': INDEX_OUT_OF_RANGE 1 of 4 values (top: 12 x1)",
        # 12 is past the range and the input_dim alike: INDEX_OUT_OF_RANGE's alone.
        "  split 'eval' feature 'item': INDEX_OVER_EMBEDDING_DIM 1 of 4 values (top: 9 x1)",
        "  split 'eval' feature 'month': INDEX_OUT_OF_RANGE 1 of 4 values (top: 12 x1)",
    ]
