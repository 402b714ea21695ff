"""`check` on Transform outputs of a pipeline this project did not build.

TFX ships its Chicago-taxi component test data (tfx/components/testdata/transform):
default vocabulary names that cannot be linked by name, 10 OOV buckets per
vocabulary. The counts must equal an independent decode with the protobuf API.
"""

import collections
import contextlib
import io
import json
import pathlib

import pytest
import tensorflow as tf
import tfx

from embedding_guard import cli

TAXI = pathlib.Path(tfx.__file__).parent / "components" / "testdata" / "transform"
COMPANY_VOCAB = "vocab_compute_and_apply_vocabulary_1_vocabulary"
PAYMENT_VOCAB = "vocab_compute_and_apply_vocabulary_vocabulary"
# The Trainer mistake this catches: Embedding(input_dim=vocab_size), no OOV buckets.
COMPANY_DIM_WITHOUT_OOV = 53


def _independent_counts(split: str, feature: str, vocab_size: int, upper: int, dim: int):
    counts = collections.Counter()
    shards = sorted((TAXI / "transformed_examples" / f"Split-{split}").iterdir())
    for shard in shards:
        for record in tf.data.TFRecordDataset(str(shard), compression_type="GZIP"):
            example = tf.train.Example.FromString(record.numpy())
            counts["num_examples"] += 1
            values = list(example.features.feature[feature].int64_list.value)
            counts["missing"] += not values
            for value in values:
                counts["num_values"] += 1
                counts["in_vocab"] += 0 <= value < vocab_size
                counts["oov_bucket"] += vocab_size <= value < upper
                counts["out_of_range"] += value >= upper
                counts["negative"] += value < 0
                counts["over_embedding_dim"] += value >= dim
    return counts


@pytest.fixture(scope="module")
def reports():
    """Exit code and JSON reports of one `check` run over both splits."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = cli.main(
            [
                "check",
                "--transform-graph",
                str(TAXI / "transform_graph"),
                "--examples",
                str(TAXI / "transformed_examples"),
                "--feature-vocabulary",
                f"company_xf={COMPANY_VOCAB}",
                "--feature-vocabulary",
                f"payment_type_xf={PAYMENT_VOCAB}",
                "--embedding-dim",
                f"company_xf={COMPANY_DIM_WITHOUT_OOV}",
                "--json",
            ]
        )
    return code, json.loads(out.getvalue())


def _feature(report, name):
    return next(f for f in report["features"] if f["feature"] == name)


def test_vocabularies_linked_explicitly_give_sizes_and_oov_buckets(reports):
    _, result = reports
    company = _feature(result["train"], "company_xf")["bounds"]
    # 53 lines in the vocabulary file; int_domain.max 62 -> 10 OOV buckets.
    assert (company["vocab_size"], company["num_oov_buckets"], company["upper_bound"]) == (
        53,
        10,
        63,
    )
    payment = _feature(result["train"], "payment_type_xf")["bounds"]
    assert (payment["vocab_size"], payment["num_oov_buckets"], payment["upper_bound"]) == (
        6,
        10,
        16,
    )


@pytest.mark.parametrize("split", ["train", "eval"])
@pytest.mark.parametrize(
    "feature, vocab_size, upper, dim",
    [
        ("company_xf", 53, 63, COMPANY_DIM_WITHOUT_OOV),
        ("payment_type_xf", 6, 16, 16),
        ("pickup_latitude_xf", 10, 10, 10),
    ],
)
def test_counts_equal_an_independent_decode(reports, split, feature, vocab_size, upper, dim):
    _, result = reports
    counts = _feature(result[split], feature)["counts"]
    expected = _independent_counts(split, feature, vocab_size, upper, dim)
    assert expected["num_examples"] > 1000
    for key in (
        "num_examples",
        "num_values",
        "missing",
        "negative",
        "in_vocab",
        "oov_bucket",
        "out_of_range",
        "over_embedding_dim",
    ):
        assert counts[key] == expected[key], (split, feature, key)


def test_embedding_sized_without_oov_buckets_blocks(reports):
    code, result = reports
    company = _feature(result["eval"], "company_xf")
    assert company["counts"]["over_embedding_dim"] > 0
    assert "INDEX_OVER_EMBEDDING_DIM" in {f["reason"] for f in company["findings"]}
    assert code == cli.EXIT_BLOCKED
