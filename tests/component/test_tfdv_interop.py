"""TFDV reads the validator's SchemaDiff.pb as one of its own Anomalies protos.

The executor runs once over the checked-in testdata (splits train, eval, test; see
component_testlib and test_executor for the hand counts). The artifact it writes is
loaded with TFDV's loaders, rendered by `tfdv.display_anomalies` in an IPython shell
and read with the `anomalies_util` helpers of the pinned TFDV (1.16.1): the
slicer, remove_anomaly_types and the text writer and loader. Where TFDV has its own
behaviour to compare with (the keys of feature paths, the reason types of values
outside an int_domain), `tfdv.validate_statistics` produces TFDV's own anomalies
for the same features.
"""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import tensorflow_data_validation as tfdv
from component_testlib import run_executor
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output
from tensorflow_data_validation.utils import anomalies_util
from tensorflow_metadata.proto.v0 import anomalies_pb2, schema_pb2, statistics_pb2

from embedding_guard.reports import report_io
from embedding_guard.verdict import core, findings, reasons, report_model

Info = anomalies_pb2.AnomalyInfo
SMALL_INT = Info.INT_TYPE_SMALL_INT
BIG_INT = Info.INT_TYPE_BIG_INT
UNEXPECTED_DATA_TYPE = Info.UNEXPECTED_DATA_TYPE
OOV_DRIFT = Info.ENUM_TYPE_UNEXPECTED_STRING_VALUES
SPLITS = ("train", "eval", "test")
# Hand-counted in test_executor: eval has negative city_xf values, product_xf values
# beyond [0, 42), month_xf values at its input_dim 12, and OOV drift over train in
# city_xf and product_xf; test stores product_xf as floats.
EXPECTED_REASON_TYPES = {
    "eval": {
        "city_xf": [SMALL_INT, OOV_DRIFT],
        "month_xf": [BIG_INT],
        "product_xf": [BIG_INT, OOV_DRIFT],
    },
    "test": {"product_xf": [UNEXPECTED_DATA_TYPE]},
}
# Feature names that need Path::Serialize()'s quoting, and ones that do not.
TRICKY_FEATURES = ("plain_xf", "a.b", "it's", "f(x)", "(ext)", "x)", "(a.b)")


@pytest.fixture(scope="module")
def artifact_dir(tmp_path_factory):
    """Runs the executor over the testdata and returns its anomalies folder."""
    output_dir = tmp_path_factory.mktemp("anomalies")
    run_executor(
        output_dir,
        {
            "exclude_splits": json.dumps([]),
            "embedding_input_dims": json.dumps({"month_xf": 12}),
            "feature_vocabularies": json.dumps({}),
            "features": json.dumps(None),
            "fail_on_block": 0,
        },
        splits=SPLITS,
    )
    return output_dir


def _schema_diff_path(artifact_dir, split) -> str:
    return str(artifact_dir / f"Split-{split}" / report_io.SCHEMA_DIFF_FILE)


@pytest.fixture(scope="module")
def schema_diffs(artifact_dir) -> dict[str, anomalies_pb2.Anomalies]:
    return {
        split: anomalies_util.load_anomalies_binary(_schema_diff_path(artifact_dir, split))
        for split in SPLITS
    }


@pytest.fixture(scope="module")
def shell():
    """An IPython shell, so display() publishes rich output as in Jupyter."""
    yield InteractiveShell.instance()
    InteractiveShell.clear_instance()


def _reason_types(anomalies) -> dict[str, list[int]]:
    return {
        key: [reason.type for reason in info.reason] for key, info in anomalies.anomaly_info.items()
    }


def _tfdv_anomalies(features: tuple[str, ...], min_value: int, max_value: int):
    """TFDV's own validation of int features whose values exceed int_domain [0, 3]."""
    schema = schema_pb2.Schema()
    stats = statistics_pb2.DatasetFeatureStatisticsList()
    dataset = stats.datasets.add(num_examples=10)
    for name in features:
        schema.feature.add(
            name=name, type=schema_pb2.INT, int_domain=schema_pb2.IntDomain(min=0, max=3)
        )
        feature_stats = dataset.features.add(type=statistics_pb2.FeatureNameStatistics.INT)
        feature_stats.path.step.append(name)
        feature_stats.num_stats.min = min_value
        feature_stats.num_stats.max = max_value
        common = feature_stats.num_stats.common_stats
        common.num_non_missing = 10
        common.min_num_values = common.max_num_values = 1
        common.avg_num_values = 1.0
        common.tot_num_values = 10
    return tfdv.validate_statistics(stats, schema)


def _our_anomalies(features: tuple[str, ...], values: list[int], empty_split: bool = False):
    """The validator's Anomalies proto for features holding values, checked against [0, 4)."""
    accumulator = core.SplitAccumulator(
        [
            core.FeatureBounds(feature=name, upper_bound=4, embedding_input_dim=4)
            for name in features
        ]
    )
    if not empty_split:
        accumulator.add_examples(len(values))
        for name in features:
            accumulator.features[name].add_batch(
                np.array(values), np.ones(len(values), dtype=np.int64)
            )
    return report_io.anomalies_proto(findings.split_report("eval", accumulator))


def test_tfdv_loaders_read_the_artifact_with_tfdv_name_format(artifact_dir, schema_diffs):
    for split in SPLITS:
        with open(_schema_diff_path(artifact_dir, split), "rb") as schema_diff_file:
            assert schema_diffs[split] == anomalies_pb2.Anomalies.FromString(
                schema_diff_file.read()
            )
        assert schema_diffs[split].anomaly_name_format == anomalies_pb2.Anomalies.SERIALIZED_PATH
    assert {split: _reason_types(schema_diffs[split]) for split in ("eval", "test")} == (
        EXPECTED_REASON_TYPES
    )
    assert _reason_types(schema_diffs["train"]) == {}


def test_tfdv_text_writer_and_loader_round_trip_the_artifact(schema_diffs, tmp_path):
    for split, anomalies in schema_diffs.items():
        path = str(tmp_path / f"{split}.pbtxt")
        tfdv.write_anomalies_text(anomalies, path)
        assert tfdv.load_anomalies_text(path) == anomalies


def test_keys_are_the_ones_tfdv_writes_for_the_same_feature_paths():
    theirs = _tfdv_anomalies(TRICKY_FEATURES, min_value=0, max_value=9)
    ours = _our_anomalies(TRICKY_FEATURES, [0, 9])
    assert theirs.anomaly_name_format == ours.anomaly_name_format
    assert sorted(ours.anomaly_info) == sorted(theirs.anomaly_info)
    # The quoted forms, spelled out, so a change on either side shows here.
    assert sorted(ours.anomaly_info) == sorted(
        ["plain_xf", "'a.b'", "'it''s'", "'f(x)'", "(ext)", "'x)'", "(a.b)"]
    )
    for key, info in ours.anomaly_info.items():
        assert list(info.path.step) == list(theirs.anomaly_info[key].path.step)


@pytest.mark.parametrize(
    ("values", "min_value", "max_value", "tfdv_type"),
    [([-1, 2], -1, 2, SMALL_INT), ([0, 9], 0, 9, BIG_INT)],
    ids=["below_min", "above_max"],
)
def test_range_reasons_use_the_type_tfdv_gives_the_same_violation(
    values, min_value, max_value, tfdv_type
):
    theirs = _tfdv_anomalies(("city_xf",), min_value, max_value)
    ours = _our_anomalies(("city_xf",), values)
    assert [r.type for r in theirs.anomaly_info["city_xf"].reason] == [tfdv_type]
    assert [r.type for r in ours.anomaly_info["city_xf"].reason] == [tfdv_type]
    assert ours.anomaly_info["city_xf"].severity == theirs.anomaly_info["city_xf"].severity


def test_every_reason_maps_to_a_known_tfdv_type():
    split_level = {reasons.Reason.EMPTY_SPLIT}
    for reason in reasons.Reason:
        finding = report_model.Finding(
            split="eval",
            feature="" if reason in split_level else "city_xf",
            reason=reason,
            severity=reasons.Severity.WARNING,
            count=1,
            rate=0.5,
            description="one value",
        )
        report = report_model.SplitReport(
            split="eval", num_examples=2, features=(), split_findings=(finding,)
        )
        anomalies = report_io.anomalies_proto(report)
        info = (
            anomalies.dataset_anomaly_info
            if reason in split_level
            else anomalies.anomaly_info["city_xf"]
        )
        (proto_reason,) = info.reason
        assert proto_reason.type in Info.Type.values(), reason
        assert proto_reason.type != Info.UNKNOWN_TYPE, reason


def test_tfdv_slicer_yields_one_slice_per_feature_and_reason(schema_diffs):
    batch = pa.RecordBatch.from_arrays([pa.array([[1]])], ["city_xf"])
    for split, expected in EXPECTED_REASON_TYPES.items():
        slice_keys = [
            key for key, _ in anomalies_util.get_anomalies_slicer(schema_diffs[split])(batch)
        ]
        assert sorted(slice_keys) == sorted(
            f"{feature}_{Info.Type.Name(reason_type)}"
            for feature, reason_types in expected.items()
            for reason_type in reason_types
        )


def test_tfdv_remove_anomaly_types_keeps_the_descriptions_tfdv_would_write(schema_diffs):
    eval_diff = schema_diffs["eval"]
    # Removing nothing makes TFDV recompute every description from the reasons: it
    # must find the ones already written.
    recomputed = anomalies_pb2.Anomalies()
    recomputed.CopyFrom(eval_diff)
    anomalies_util.remove_anomaly_types(recomputed, frozenset())
    assert recomputed == eval_diff
    assert eval_diff.anomaly_info["city_xf"].short_description == "Multiple errors"

    without_drift = anomalies_pb2.Anomalies()
    without_drift.CopyFrom(eval_diff)
    anomalies_util.remove_anomaly_types(without_drift, frozenset([OOV_DRIFT]))
    assert _reason_types(without_drift) == {
        "city_xf": [SMALL_INT],
        "month_xf": [BIG_INT],
        "product_xf": [BIG_INT],
    }
    city = without_drift.anomaly_info["city_xf"]
    assert (city.short_description, city.description) == (
        city.reason[0].short_description,
        city.reason[0].description,
    )

    anomalies_util.remove_anomaly_types(without_drift, frozenset([SMALL_INT, BIG_INT]))
    assert dict(without_drift.anomaly_info) == {}


def _displayed_table(anomalies) -> pd.DataFrame:
    with capture_output() as captured:
        tfdv.display_anomalies(anomalies)
    (shown,) = [output.data["text/html"] for output in captured.outputs]
    (table,) = pd.read_html(io.StringIO(shown), index_col=0)
    # The second header row holds only the index name, "Feature name".
    table.columns = table.columns.get_level_values(0)
    return table


def test_display_anomalies_renders_a_row_per_anomalous_feature(schema_diffs, shell):
    table = _displayed_table(schema_diffs["eval"])
    info = schema_diffs["eval"].anomaly_info
    assert sorted(table.index) == ["'city_xf'", "'month_xf'", "'product_xf'"]
    for key in info:
        row = table.loc[f"'{key}'"]
        assert row["Anomaly short description"] == info[key].short_description
        assert row["Anomaly long description"] == info[key].description

    with capture_output() as captured:
        tfdv.display_anomalies(schema_diffs["train"])
    (shown,) = [output.data["text/html"] for output in captured.outputs]
    assert "No anomalies found." in shown


def test_display_anomalies_renders_quoted_keys_and_split_level_findings(shell):
    table = _displayed_table(_our_anomalies(("a.b",), [0, 9]))
    # TFDV quotes the key and escapes its quotes, as for a key of its own.
    assert list(table.index) == ["'\\'a.b\\''"]
    assert table.loc["'\\'a.b\\''", "Anomaly short description"] == ("Index beyond the valid range")

    table = _displayed_table(_our_anomalies(("city_xf",), [], empty_split=True))
    assert list(table.index) == ["[dataset anomaly]"]
    assert table.loc["[dataset anomaly]", "Anomaly short description"] == "Split has no examples"
