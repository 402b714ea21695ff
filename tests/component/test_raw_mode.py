"""Raw-data mode: the transform graph is applied to ExampleGen-like examples first.

Expected numbers are worked out by hand from the rows in
testdata/make_raw_examples.py and the checked-in vocabularies.
"""

import json
import os
import pathlib

import pytest
import tensorflow as tf
import tensorflow_transform as tft
import tfx

from embedding_guard.cli import main as cli

TESTDATA = pathlib.Path(__file__).parent / "testdata"
GRAPH = str(TESTDATA / "transform_graph")
RAW = str(TESTDATA / "raw_examples")


def _check(capsys, examples, *extra):
    code = cli.main(
        [
            "check",
            "--transform-graph",
            GRAPH,
            "--examples",
            examples,
            "--embedding-dim",
            "month_xf=12",
            "--json",
            *extra,
        ]
    )
    return code, json.loads(capsys.readouterr().out)


def _feature(report, name):
    return next(f for f in report["features"] if f["feature"] == name)


@pytest.fixture(scope="module")
def transformed_copy(tmp_path_factory):
    """The raw examples transformed by the same graph, written as Transform would."""
    output = tft.TFTransformOutput(GRAPH)
    spec = dict(output.raw_feature_spec())
    spec.pop("clicked")
    root = tmp_path_factory.mktemp("transformed")
    for split in ("train", "eval"):
        shard = os.path.join(RAW, f"Split-{split}", "data_tfrecord-00000-of-00001.gz")
        records = list(tf.data.TFRecordDataset(shard, compression_type="GZIP"))
        raw = tf.io.parse_example(tf.stack(records), spec)
        transformed = output.transform_raw_features(raw, drop_unused_features=True)
        folder = root / f"Split-{split}"
        folder.mkdir()
        with tf.io.TFRecordWriter(str(folder / "transformed.gz"), options="GZIP") as writer:
            for i in range(len(records)):
                feature = {
                    name: tf.train.Feature(
                        int64_list=tf.train.Int64List(value=[int(values[i].numpy())])
                    )
                    for name, values in transformed.items()
                    if name != "clicked"
                }
                example = tf.train.Example(features=tf.train.Features(feature=feature))
                writer.write(example.SerializeToString())
    return str(root)


def test_raw_values_behind_default_and_oov_buckets(capsys):
    code, reports = _check(capsys, RAW)
    assert code == 1
    city = _feature(reports["eval"], "city_xf")["counts"]
    # reykjavik x2, tallinn x1 and "" x1 are not in `city`, which has no OOV bucket.
    assert (city["negative"], city["at_default"], city["oov"], city["oov_rate"]) == (4, 4, 4, 0.5)
    assert city["top_raw_oov_values"] == [
        {"value": "reykjavik", "count": 2},
        {"value": "", "count": 1},
        {"value": "tallinn", "count": 1},
    ]
    # Seen: amsterdam, athens, vienna, berlin -> 21 of 25 entries never occur.
    assert city["vocab_entries_unseen"] == 21
    assert (city["raw_values_checked"], city["raw_empty_or_missing"]) == (True, 1)

    product = _feature(reports["eval"], "product_xf")["counts"]
    # product_99 x2, product_77 x1 and "" x1 fall into the 2 OOV buckets (40, 41).
    assert (product["oov_bucket"], product["negative"], product["oov_rate"]) == (4, 0, 0.5)
    assert product["top_raw_oov_values"] == [
        {"value": "product_99", "count": 2},
        {"value": "", "count": 1},
        {"value": "product_77", "count": 1},
    ]
    # Seen: product_00, product_01, product_39 -> 37 of 40 never occur.
    assert product["vocab_entries_unseen"] == 37
    assert product["raw_empty_or_missing"] == 1

    findings = {
        (f["feature"], f["reason"]): f for f in _feature(reports["eval"], "city_xf")["findings"]
    }
    negative = findings[("city_xf", "NEGATIVE_INDEX")]
    assert negative["severity"] == "ERROR"
    assert "'reykjavik' x2" in negative["description"]


def test_drift_against_train(capsys):
    _, reports = _check(capsys, RAW)
    product = _feature(reports["eval"], "product_xf")
    # Train holds only vocabulary values: OOV rate 0; eval 4 of 8.
    assert product["oov_drift"] == {
        "baseline_split": "train",
        "baseline_oov_rate": 0.0,
        "oov_rate": 0.5,
        "difference": 0.5,
        "ratio": None,
    }
    reasons = {f["reason"]: f["severity"] for f in product["findings"]}
    assert reasons["OOV_RATE_INCREASE"] == "WARNING"
    assert _feature(reports["train"], "product_xf")["oov_drift"] is None


def test_oov_thresholds_block_only_when_set_to_error(capsys):
    only_product = ["--feature", "product_xf", "--feature", "month_xf"]
    code, reports = _check(capsys, RAW, *only_product)
    assert code == 0
    assert reports["eval"]["num_warnings"] == 1

    code, reports = _check(capsys, RAW, *only_product, "--max-oov-rate", "0.4")
    assert code == 0
    reasons = {
        f["reason"]: f["severity"] for f in _feature(reports["eval"], "product_xf")["findings"]
    }
    assert reasons["OOV_RATE_ABOVE_MAX"] == "WARNING"

    code, reports = _check(
        capsys, RAW, *only_product, "--max-oov-rate", "0.4", "--max-oov-rate-severity", "ERROR"
    )
    assert code == 1
    assert not reports["eval"]["blessed"]

    code, _ = _check(
        capsys, RAW, *only_product, "--max-oov-rate", "0.5", "--max-oov-rate-severity", "ERROR"
    )
    assert code == 0, "a rate equal to the threshold is accepted"

    code, _ = _check(capsys, RAW, *only_product, "--max-oov-rate-increase-severity", "ERROR")
    assert code == 1


def test_raw_and_transformed_modes_agree(capsys, transformed_copy):
    _, raw_reports = _check(capsys, RAW)
    _, transformed_reports = _check(capsys, transformed_copy)
    # Locations name different shards, and raw mode locates OOV raw values too;
    # the records and list positions they point at are the same.
    raw_only = {
        "raw_values_checked",
        "raw_empty_or_missing",
        "top_raw_oov_values",
        "sample_locations",
    }
    for split in ("train", "eval"):
        for raw_feature, transformed_feature in zip(
            raw_reports[split]["features"], transformed_reports[split]["features"], strict=True
        ):
            places = [
                [
                    (s["kind"], s["value"], s["location"]["record_index"])
                    for s in feature["counts"]["sample_locations"]
                    if s["kind"] != "raw_oov"
                ]
                for feature in (raw_feature, transformed_feature)
            ]
            assert places[0] == places[1], raw_feature["feature"]
            raw_counts = {k: v for k, v in raw_feature["counts"].items() if k not in raw_only}
            counts = {k: v for k, v in transformed_feature["counts"].items() if k not in raw_only}
            assert raw_counts == counts, raw_feature["feature"]
    assert _feature(transformed_reports["eval"], "city_xf")["counts"]["raw_values_checked"] is False


def test_forced_kind_mismatch_is_a_clear_error(capsys):
    code = cli.main(
        [
            "check",
            "--transform-graph",
            GRAPH,
            "--examples",
            RAW,
            "--examples-kind",
            "transformed",
            "--embedding-dim",
            "month_xf=12",
        ]
    )
    assert code == 1
    # Forced transformed mode on raw data: every checked feature is missing.
    assert "FEATURE_MISSING_FROM_SPLIT" in capsys.readouterr().out


def test_forced_raw_mode_on_transformed_examples_is_a_one_line_error(capsys):
    taxi = pathlib.Path(tfx.__file__).parent / "components" / "testdata" / "transform"
    code = cli.main(
        [
            "check",
            "--transform-graph",
            str(taxi / "transform_graph"),
            "--examples",
            str(taxi / "transformed_examples"),
            "--examples-kind",
            "raw",
        ]
    )
    err = capsys.readouterr().err

    # Every raw feature of TFX's taxi graph is optional: applied to transformed
    # examples, it found none and called every company OOV, and exited 0.
    assert code == 2
    assert len(err.strip().splitlines()) == 1, err
    assert "--examples-kind raw, but the examples are transformed" in err
    assert "'company_xf'" in err and "'company'" in err
    assert "or --examples-kind auto." in err


def test_examples_of_neither_schema_name_the_features(capsys, tmp_path):
    folder = tmp_path / "Split-train"
    folder.mkdir()
    with tf.io.TFRecordWriter(str(folder / "x.gz"), options="GZIP") as writer:
        feature = {"user": tf.train.Feature(int64_list=tf.train.Int64List(value=[1]))}
        writer.write(
            tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()
        )
    code = cli.main(["check", "--transform-graph", GRAPH, "--examples", str(tmp_path)])
    assert code == 2
    error = capsys.readouterr().err
    assert "neither the transformed nor the raw features" in error
    assert "'user'" in error and "'city_xf'" in error and "'city'" in error
