"""Hash load in raw mode, against a brute-force count of real TFT output.

The session's TFT graphs (tft_graphs.preprocessing_fn, TF1 and TF2) hash
`company` with tft.hash_strings into 17 buckets, `payment` with
tf.strings.to_hash_bucket_strong into 13, and give `company` a vocabulary with 3
OOV buckets. Raw examples with many more distinct values than buckets are
checked; the expected figures come from applying the graph independently and
counting (raw value, bucket) pairs with plain dicts.
"""

import collections
import json

import pytest
import tensorflow as tf
import tft_graphs

from embedding_guard.cli import main as cli
from embedding_guard.verdict import hash_load

FEATURES = {"company_hash_xf": "company", "payment_strong_xf": "payment", "company_xf": "company"}
# 600 rows: 150 distinct companies (some in the vocabulary), 40 distinct payments.
ROWS = [
    {
        "company": (["acme", "bolt", "cabs"][i % 3] if i % 7 == 0 else f"company-{i % 150}"),
        "payment": f"pay-{(i * 7) % 40}",
    }
    for i in range(600)
]
RAW_SPEC = {name: tf.io.FixedLenFeature([], tf.string) for name in ("company", "payment")}


@pytest.fixture(scope="session")
def graphs(tmp_path_factory):
    return tft_graphs.built_graphs(str(tmp_path_factory.mktemp("tft_graphs")))


@pytest.fixture(scope="module")
def raw_examples(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hash_raw") / "Split-train"
    folder.mkdir()
    with tf.io.TFRecordWriter(str(folder / "data.gz"), options="GZIP") as writer:
        for row in ROWS:
            feature = {
                name: tf.train.Feature(bytes_list=tf.train.BytesList(value=[value.encode()]))
                for name, value in row.items()
            }
            writer.write(
                tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()
            )
    return folder.parent


def _brute_force(graph, low, num_buckets, feature, raw_feature):
    """The load of the graph's real output for ROWS, by dict counting."""
    import tensorflow_transform as tft

    serialized = tf.constant(
        [
            tf.train.Example(
                features=tf.train.Features(
                    feature={
                        name: tf.train.Feature(bytes_list=tf.train.BytesList(value=[v.encode()]))
                        for name, v in row.items()
                    }
                )
            ).SerializeToString()
            for row in ROWS
        ]
    )
    layer = tft.TFTransformOutput(graph).transform_features_layer()
    outputs = layer(tf.io.parse_example(serialized, RAW_SPEC))
    indices = outputs[feature].numpy().reshape(-1).tolist()
    bucket_of, occurrences = {}, collections.Counter()
    for row, index in zip(ROWS, indices, strict=True):
        if low <= index < low + num_buckets:
            bucket_of[row[raw_feature]] = index - low
            occurrences[row[raw_feature]] += 1
    per_bucket = collections.Counter(bucket_of.values())
    colliding = [v for v, b in bucket_of.items() if per_bucket[b] > 1]
    return {
        "num_buckets": num_buckets,
        "distinct_values": len(bucket_of),
        "buckets_used": len(per_bucket),
        "max_per_bucket": max(per_bucket.values()),
        "mean_per_used_bucket": len(bucket_of) / len(per_bucket),
        "colliding_share": len(colliding) / len(bucket_of),
        "colliding_occurrence_share": sum(occurrences[v] for v in colliding)
        / sum(occurrences.values()),
        "expected_colliding_share": hash_load.expected_collision_share(len(bucket_of), num_buckets),
    }


def _check(capsys, graph, examples, *extra):
    features = [arg for name in FEATURES for arg in ("--feature", name)]
    code = cli.main(
        ["check", "--transform-graph", graph, "--examples", str(examples), "--json"]
        + features
        + list(extra)
    )
    return code, json.loads(capsys.readouterr().out)["train"]


@pytest.mark.parametrize("version", ["tf1", "tf2"])
def test_hash_load_equals_a_brute_force_count(graphs, raw_examples, capsys, version):
    code, report = _check(capsys, graphs[version], raw_examples)

    assert code == cli.EXIT_CLEAN  # crowded buckets warn, they do not block
    by_feature = {f["feature"]: f for f in report["features"]}
    ranges = {
        "company_hash_xf": (0, tft_graphs.EXPECTED_HASH["company_hash_xf"][1]),
        "payment_strong_xf": (0, tft_graphs.EXPECTED_HASH["payment_strong_xf"][1]),
        # 6 vocabulary entries, then 3 OOV buckets.
        "company_xf": (6, 3),
    }
    for feature, (low, num_buckets) in ranges.items():
        expected = _brute_force(graphs[version], low, num_buckets, feature, FEATURES[feature])
        load = by_feature[feature]["hash_load"]
        assert {k: load[k] for k in expected} == pytest.approx(expected), feature
        assert load["kind"] == ("oov_buckets" if feature == "company_xf" else "hash")
        assert load["complete"] is True
    # The raw values behind the indices do collide: the counts are not vacuous.
    assert by_feature["company_hash_xf"]["hash_load"]["distinct_values"] == 150 + 3


def test_crowded_buckets_warn_with_the_buckets_that_would_fit(graphs, raw_examples, capsys):
    _, report = _check(capsys, graphs["tf2"], raw_examples, "--max-hash-collision-share", "0.3")

    by_feature = {f["feature"]: f for f in report["features"]}
    crowded = [
        f
        for f in by_feature["company_hash_xf"]["findings"]
        if f["reason"] == "HASH_BUCKETS_CROWDED"
    ]
    (finding,) = crowded
    assert finding["severity"] == "WARNING"
    # OOV buckets report their load but do not warn: the OOV findings cover them.
    company_oov = by_feature["company_xf"]
    assert company_oov["hash_load"]["colliding_share"] > 0.3
    assert all(f["reason"] != "HASH_BUCKETS_CROWDED" for f in company_oov["findings"])
    load = by_feature["company_hash_xf"]["hash_load"]
    needed = hash_load.buckets_for_share(load["distinct_values"], 0.3)
    assert f"{needed:,} hash buckets (now 17) would bring" in finding["fix"]
    assert finding["rate"] == pytest.approx(load["colliding_share"])


def test_no_warning_when_the_threshold_allows_every_collision(graphs, raw_examples, capsys):
    _, report = _check(capsys, graphs["tf2"], raw_examples, "--max-hash-collision-share", "1")

    reasons = [f["reason"] for feature in report["features"] for f in feature["findings"]]
    assert "HASH_BUCKETS_CROWDED" not in reasons
    assert all(feature["hash_load"] is not None for feature in report["features"])


def test_beam_counts_the_same_load(graphs, raw_examples, capsys):
    # Shards go through Beam's ParDo and CombineGlobally: the load must survive
    # pickling and merging.
    _, in_process = _check(capsys, graphs["tf2"], raw_examples)
    _, beam = _check(
        capsys, graphs["tf2"], raw_examples, "--beam-pipeline-arg=--runner=DirectRunner"
    )

    assert [f["hash_load"] for f in beam["features"]] == [
        f["hash_load"] for f in in_process["features"]
    ]
