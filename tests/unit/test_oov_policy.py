"""The OOV policy: global and per-feature thresholds, drift against the baseline split.

Two vocabulary features with 4 entries + 1 OOV bucket (values 0..3 in the
vocabulary, 4 the bucket); the counts below are worked out by hand.
"""

import numpy as np
import pytest

from embedding_guard.run.options import ValidatorOptions
from embedding_guard.verdict import core, findings
from embedding_guard.verdict.reasons import Reason, Severity

FEATURES = ("city_xf", "product_xf")


def _bounds(feature: str) -> core.FeatureBounds:
    return core.FeatureBounds(
        feature, upper_bound=5, embedding_input_dim=5, vocab_size=4, num_oov_buckets=1
    )


def _split(city: list[int], product: list[int]) -> core.SplitAccumulator:
    accumulator = core.SplitAccumulator([_bounds(f) for f in FEATURES])
    for feature, values in zip(FEATURES, (city, product), strict=True):
        accumulator.features[feature].add_batch(
            np.array(values, dtype=np.int64), np.ones(len(values), dtype=np.int64)
        )
    accumulator.add_examples(len(city))
    return accumulator


def _splits():
    # train: no OOV. eval: city 2 of 4 in the bucket (50%), product 1 of 4 (25%).
    return {
        "train": _split([0, 1, 2, 3], [0, 1, 2, 3]),
        "eval": _split([4, 4, 0, 1], [4, 0, 1, 2]),
    }


def _oov_findings(options: ValidatorOptions) -> set[tuple[str, str, Reason, Severity]]:
    reports = findings.build_reports(_splits(), options.validate().oov_policy(["train", "eval"]))
    return {
        (f.split, f.feature, f.reason, f.severity)
        for report in reports.values()
        for f in report.findings
        if f.reason in (Reason.OOV_RATE_ABOVE_MAX, Reason.OOV_RATE_INCREASE)
    }


def test_one_rate_for_every_feature():
    found = _oov_findings(ValidatorOptions(max_oov_rate=0.3, max_oov_rate_increase=None))

    assert found == {("eval", "city_xf", Reason.OOV_RATE_ABOVE_MAX, Severity.WARNING)}


def test_per_feature_rates_check_only_the_features_they_name():
    # product_xf's 25% is above its own 0.2; city_xf has no threshold at all.
    found = _oov_findings(
        ValidatorOptions(max_oov_rate={"product_xf": 0.2}, max_oov_rate_increase=None)
    )

    assert found == {("eval", "product_xf", Reason.OOV_RATE_ABOVE_MAX, Severity.WARNING)}


def test_per_feature_drift_with_error_severity_blocks():
    found = _oov_findings(
        ValidatorOptions(
            max_oov_rate_increase={"city_xf": 0.4, "product_xf": 0.4},
            max_oov_rate_increase_severity="ERROR",
        )
    )

    # city_xf rose by 0.50 over train's 0.00, product_xf by 0.25.
    assert found == {("eval", "city_xf", Reason.OOV_RATE_INCREASE, Severity.ERROR)}


def test_default_drift_threshold_warns_for_both_features():
    found = _oov_findings(ValidatorOptions())

    assert found == {
        ("eval", "city_xf", Reason.OOV_RATE_INCREASE, Severity.WARNING),
        ("eval", "product_xf", Reason.OOV_RATE_INCREASE, Severity.WARNING),
    }


@pytest.mark.parametrize(
    ("baseline", "expected"),
    [
        # eval's rates rose by 0.50 and 0.25 over train's 0.00.
        (
            "train",
            {
                ("eval", "city_xf", Reason.OOV_RATE_INCREASE, Severity.WARNING),
                ("eval", "product_xf", Reason.OOV_RATE_INCREASE, Severity.WARNING),
            },
        ),
        # eval has the most OOV (50%, 25%): against any rate but its own it would
        # have drifted; train's 0.00 is a fall below it, never a rise.
        ("eval", set()),
    ],
)
def test_every_split_but_the_baseline_is_compared_with_the_baseline(baseline, expected):
    found = _oov_findings(ValidatorOptions(baseline_split=baseline))

    assert found == expected


def test_without_a_train_split_and_no_baseline_named_there_is_no_drift_check():
    splits = {"eval": _splits()["eval"], "serving": _splits()["eval"]}
    policy = ValidatorOptions().validate().oov_policy(splits)

    reports = findings.build_reports(splits, policy)

    assert all(
        f.reason is not Reason.OOV_RATE_INCREASE for r in reports.values() for f in r.findings
    )
