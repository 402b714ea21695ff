"""End-to-end: a real Transform run's post_transform_stats agree with the examples read.

The demo's validators are given no statistics: they find Transform's
post_transform_stats beside its transform_graph (same execution), and compare
its num_examples, one count over every transformed split, with the examples
they read, which the demo CSVs count independently.
"""

import pytest
from tensorflow_metadata.proto.v0 import statistics_pb2

SPLITS = ("train", "eval")


@pytest.mark.parametrize("config", ["clean", "broken"])
def test_transform_statistics_agree_with_the_examples_read(demo, csv_rows, config):
    total = sum(len(csv_rows[split]) for split in SPLITS)
    transform_stats = [
        a
        for a in demo[config].outputs["Transform"]
        if a.uri.rstrip("/").split("/")[-2:-1] == ["post_transform_stats"]
    ]
    (post_transform_stats,) = transform_stats
    path = f"{post_transform_stats.uri}/FeatureStats.pb"
    with open(path, "rb") as stats_file:
        (dataset,) = statistics_pb2.DatasetFeatureStatisticsList.FromString(
            stats_file.read()
        ).datasets

    for split in SPLITS:
        report = demo[config].report(split)
        check = report["example_count"]
        assert check["source"] == "transform"
        assert check["path"] == path
        assert check["counted"] == check["expected"] == dataset.num_examples == total
        assert check["sentence"] == (
            f"{total:,} of {total:,} examples in splits 'eval' and 'train' together, as "
            "Transform's statistics count them"
        )
        assert all(f["reason"] != "EXAMPLE_COUNT_MISMATCH" for f in report["split_findings"])
