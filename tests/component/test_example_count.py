"""Proof of completeness: the examples read against StatisticsGen's and Transform's counts.

Statistics are written here as TFX lays them out, with num_examples counted by
tf.data, independently of the tool: StatisticsGen's per split, Transform's
post_transform_stats as one count over every split, beside the transform graph
(TFX's layout) or inside it (TFT's). A count one off must be an
EXAMPLE_COUNT_MISMATCH error naming both figures.
"""

import json
import shutil

import pytest
import tensorflow as tf
from component_testlib import EXAMPLES_DIR, TRANSFORM_GRAPH_DIR, run_executor
from tensorflow_metadata.proto.v0 import statistics_pb2

import embedding_guard
from embedding_guard.cli import main as cli
from embedding_guard.errors import InputError

SPLITS = ("eval", "test", "train")


def _count_records(split):
    total = 0
    for shard in sorted((EXAMPLES_DIR / f"Split-{split}").iterdir()):
        compression = "GZIP" if shard.name.endswith(".gz") else ""
        total += sum(1 for _ in tf.data.TFRecordDataset(str(shard), compression_type=compression))
    return total


@pytest.fixture(scope="module")
def record_counts():
    return {split: _count_records(split) for split in SPLITS}


def _write_stats(path, num_examples):
    path.parent.mkdir(parents=True, exist_ok=True)
    statistics = statistics_pb2.DatasetFeatureStatisticsList()
    statistics.datasets.add(num_examples=num_examples)
    path.write_bytes(statistics.SerializeToString())


def _statistics_gen(root, counts):
    for split, count in counts.items():
        _write_stats(root / f"Split-{split}" / "FeatureStats.pb", count)
    return root


def _check(*extra):
    return [
        "check",
        "--examples",
        str(EXAMPLES_DIR),
        "--embedding-dim",
        "month_xf=12",
        "--json",
        *extra,
    ]


def _statistics_usage_error(stats, capsys) -> str:
    """The one line `check --statistics stats` prints, after checking it exits 2."""
    code = cli.main(
        _check("--transform-graph", str(TRANSFORM_GRAPH_DIR), "--statistics", str(stats))
    )
    assert code == cli.EXIT_USAGE
    err = capsys.readouterr().err
    (line,) = [line for line in err.splitlines() if line.strip() and "tensorflow" not in line]
    return line


def test_statistics_gen_counts_agree(tmp_path, record_counts):
    stats = _statistics_gen(tmp_path / "statistics", record_counts)

    result = embedding_guard.check(
        EXAMPLES_DIR, TRANSFORM_GRAPH_DIR, statistics=stats, embedding_input_dims={"month_xf": 12}
    )

    for split, report in result.reports.items():
        check = report.example_count
        assert (check.counted, check.expected) == (record_counts[split],) * 2
        assert report.num_examples == record_counts[split]
        assert check.sentence() == (
            f"{record_counts[split]:,} of {record_counts[split]:,} examples, as "
            "StatisticsGen's statistics count them"
        )
    # The proof adds no finding: the verdict is the one without statistics.
    assert result.blessed_by_split == {"eval": False, "test": False, "train": True}


def test_a_doctored_count_is_an_error_naming_both_figures(tmp_path, record_counts, capsys):
    doctored = {**record_counts, "train": record_counts["train"] + 1}
    stats = _statistics_gen(tmp_path / "statistics", doctored)

    code = cli.main(
        _check("--transform-graph", str(TRANSFORM_GRAPH_DIR), "--statistics", str(stats))
    )

    assert code == cli.EXIT_BLOCKED
    printed = json.loads(capsys.readouterr().out)
    (finding,) = printed["train"]["split_findings"]
    assert finding["reason"] == "EXAMPLE_COUNT_MISMATCH"
    assert finding["severity"] == "ERROR"
    assert finding["count"] == 1
    read, counted = f"{record_counts['train']:,}", f"{record_counts['train'] + 1:,}"
    assert f"This run read {read} examples of split 'train'" in finding["description"]
    assert f"count {counted}: 1 fewer" in finding["description"]
    assert "train" in printed["_verdict"]["blocked_splits"]
    assert all(f["reason"] != "EXAMPLE_COUNT_MISMATCH" for f in printed["eval"]["split_findings"])


@pytest.fixture
def tfx_layout(tmp_path):
    """A copy of the testdata graph as a TFX Transform execution lays it out."""
    graph = tmp_path / "Transform" / "transform_graph" / "7"
    shutil.copytree(TRANSFORM_GRAPH_DIR, graph)
    return graph, tmp_path / "Transform" / "post_transform_stats" / "7" / "FeatureStats.pb"


def test_transform_statistics_beside_the_graph_count_every_split_together(
    tfx_layout, record_counts, capsys
):
    graph, stats = tfx_layout
    total = sum(record_counts.values())
    _write_stats(stats, total)

    code = cli.main(_check("--transform-graph", str(graph)))

    printed = json.loads(capsys.readouterr().out)
    assert code == cli.EXIT_BLOCKED  # the testdata's own bad values, not the count
    for split in SPLITS:
        check = printed[split]["example_count"]
        assert check["sentence"] == (
            f"{total:,} of {total:,} examples in splits 'eval', 'test' and 'train' together, "
            "as Transform's statistics count them"
        )
        assert check["path"] == str(stats)


def test_transform_statistics_are_not_compared_with_part_of_the_splits(
    tfx_layout, record_counts, capsys
):
    graph, stats = tfx_layout
    _write_stats(stats, sum(record_counts.values()))

    cli.main(_check("--transform-graph", str(graph), "--split", "train"))

    check = json.loads(capsys.readouterr().out)["train"]["example_count"]
    assert check["expected"] is None
    assert "this run read only 'train'" in check["note"]


def test_a_doctored_transform_count_inside_the_graph_blocks_every_split(tmp_path, record_counts):
    graph = tmp_path / "transform_graph"
    shutil.copytree(TRANSFORM_GRAPH_DIR, graph)
    total = sum(record_counts.values())
    _write_stats(graph / "post_transform_feature_stats" / "FeatureStats.pb", total - 2)
    # TFT's layout: post_transform_feature_stats inside the graph.
    result = embedding_guard.check(EXAMPLES_DIR, graph)
    for split in SPLITS:
        (mismatch,) = [
            f
            for f in result.reports[split].split_findings
            if f.reason.value == "EXAMPLE_COUNT_MISMATCH"
        ]
        assert f"count {total - 2:,}: 2 more" in mismatch.description


def test_the_executor_reads_the_statistics_channel(tmp_path, record_counts):
    stats = _statistics_gen(tmp_path / "statistics", {**record_counts, "eval": 1})
    anomalies = tmp_path / "anomalies"

    run_executor(anomalies, {}, statistics_dir=stats)

    eval_report = json.loads((anomalies / "Split-eval" / "index_report.json").read_text())
    assert eval_report["example_count"]["expected"] == 1
    assert eval_report["split_findings"][0]["reason"] == "EXAMPLE_COUNT_MISMATCH"
    train_report = json.loads((anomalies / "Split-train" / "index_report.json").read_text())
    assert train_report["example_count"]["matches"] is True


@pytest.mark.parametrize("layout", ["empty", "garbage"])
def test_unusable_statistics_are_one_line_input_errors(tmp_path, layout, capsys):
    stats = tmp_path / "statistics"
    stats.mkdir()
    if layout == "garbage":
        (stats / "FeatureStats.pb").write_bytes(b"\xff\xff not a proto")

    with pytest.raises(InputError, match=r"^statistics\b.*FeatureStats.pb") as raised:
        embedding_guard.check(EXAMPLES_DIR, TRANSFORM_GRAPH_DIR, statistics=stats)
    assert "\n" not in str(raised.value)

    assert "--statistics" in _statistics_usage_error(stats, capsys)


def test_damaged_transform_statistics_found_beside_the_graph_are_left_out(tfx_layout):
    graph, stats = tfx_layout
    stats.parent.mkdir(parents=True)
    stats.write_bytes(b"\xff\xff not a proto")

    # Given, such a file is an input error (above); found, it only goes uncompared.
    result = embedding_guard.check(EXAMPLES_DIR, graph, embedding_input_dims={"month_xf": 12})

    assert all(report.example_count is None for report in result.reports.values())


def test_statistics_of_none_of_the_validated_splits_are_refused(tmp_path, capsys):
    stats = _statistics_gen(tmp_path / "statistics", {"foo": 1, "bar": 2})

    line = _statistics_usage_error(stats, capsys)

    assert f"--statistics {str(stats)!r}" in line
    assert "['bar', 'foo']" in line and "['eval', 'test', 'train']" in line


def test_a_split_the_statistics_lack_says_it_was_not_compared(tmp_path, record_counts):
    stats = _statistics_gen(tmp_path / "statistics", {"train": record_counts["train"]})

    result = embedding_guard.check(
        EXAMPLES_DIR, TRANSFORM_GRAPH_DIR, statistics=stats, embedding_input_dims={"month_xf": 12}
    )

    assert result.reports["train"].example_count.matches
    for split in ("eval", "test"):
        check = result.reports[split].example_count
        assert check.expected is None
        assert check.sentence() == (
            f"Example count not compared with StatisticsGen's statistics ({stats}): they have "
            f"no Split-{split}/FeatureStats.pb, only splits 'train'"
        )


def test_a_feature_stats_folder_is_named_as_such_and_the_flag_as_a_folder(tmp_path, capsys):
    stats = tmp_path / "statistics"
    (stats / "Split-train" / "FeatureStats.pb").mkdir(parents=True)

    line = _statistics_usage_error(stats, capsys)

    assert "Split-train/FeatureStats.pb' is a folder, not a file" in line
    assert "--statistics takes the output folder of StatisticsGen" in line
