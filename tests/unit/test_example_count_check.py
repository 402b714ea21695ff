"""The examples read against statistics' counts: what compares with what, and the finding."""

import pytest

from embedding_guard.verdict import example_count, proof_findings
from embedding_guard.verdict.example_count import ExampleCountCheck, StatisticsCounts
from embedding_guard.verdict.reasons import Reason, Severity
from embedding_guard.verdict.report_model import SplitReport

PER_SPLIT = StatisticsCounts(
    example_count.STATISTICS,
    "/stats",
    by_split={"train": ("/stats/Split-train/FeatureStats.pb", 9909), "eval": ("e.pb", 5091)},
)
TRANSFORM = StatisticsCounts(example_count.TRANSFORM, "/t/FeatureStats.pb", total=15000)


def test_statistics_gen_counts_compare_per_split():
    checks = example_count.compare(PER_SPLIT, {"train": 9909, "eval": 5090, "test": 7}, ["train"])

    assert set(checks) == {"train", "eval", "test"}
    # No statistics of 'test': its report says so rather than falling silent.
    assert not checks["test"].compared and not checks["test"].matches
    assert checks["test"].sentence() == (
        "Example count not compared with StatisticsGen's statistics (/stats): they have no "
        "Split-test/FeatureStats.pb, only splits 'eval' and 'train'"
    )
    assert proof_findings.count_mismatch("test", checks["test"]) is None
    assert checks["train"].matches
    assert checks["train"].sentence() == (
        "9,909 of 9,909 examples, as StatisticsGen's statistics count them"
    )
    assert not checks["eval"].matches
    assert checks["eval"].sentence() == (
        "5,090 examples read, but StatisticsGen's statistics (e.pb) count 5,091"
    )


def test_transform_counts_compare_with_every_split_together():
    checks = example_count.compare(TRANSFORM, {"train": 9909, "eval": 5091}, ["eval", "train"])

    assert checks["train"] == checks["eval"]
    assert checks["train"].matches
    assert checks["train"].sentence() == (
        "15,000 of 15,000 examples in splits 'eval' and 'train' together, as Transform's "
        "statistics count them"
    )


@pytest.mark.parametrize(
    ("all_splits", "raw", "why"),
    [
        (["eval", "train"], False, "this run read only 'train'"),
        (["train"], True, "this run read raw examples"),
    ],
)
def test_transform_counts_are_not_compared_with_part_of_them(all_splits, raw, why):
    (check,) = example_count.compare(TRANSFORM, {"train": 9909}, all_splits, raw).values()

    assert not check.compared
    assert why in check.sentence()
    assert proof_findings.count_mismatch("train", check) is None


def test_a_mismatch_is_an_error_naming_both_figures():
    check = ExampleCountCheck(example_count.TRANSFORM, "/t/FeatureStats.pb", ("eval", "train"),
                              14999, 15000)  # fmt: skip

    finding = proof_findings.count_mismatch("eval", check)

    assert finding.reason is Reason.EXAMPLE_COUNT_MISMATCH
    assert finding.severity is Severity.ERROR
    assert (finding.count, finding.rate) == (1, pytest.approx(1 / 15000))
    assert "read 14,999 examples of splits 'eval', 'train'" in finding.description
    assert "count 15,000: 1 fewer" in finding.description


def test_the_check_and_its_finding_go_into_the_report_and_back():
    check = ExampleCountCheck(example_count.STATISTICS, "s.pb", ("eval",), 5092, 5091)
    report = SplitReport("eval", 5092, ())

    (with_proof,) = proof_findings.with_proofs({"eval": report}, {"eval": check}, {}).values()

    assert with_proof.example_count == check
    assert [f.reason for f in with_proof.findings] == [Reason.EXAMPLE_COUNT_MISMATCH]
    assert not with_proof.blessed
    assert SplitReport.from_json(with_proof.to_json()) == with_proof
    assert with_proof.to_json()["example_count"]["sentence"] == check.sentence()


def test_a_damaged_count_check_is_a_report_format_error():
    from embedding_guard.verdict.report_model import ReportFormatError

    document = SplitReport("eval", 3, ()).to_json()
    document["example_count"] = {"source": "statistics", "path": "p", "splits": ["eval"]}

    with pytest.raises(ReportFormatError, match="example_count lacks field 'counted'"):
        SplitReport.from_json(document, "r.json")
