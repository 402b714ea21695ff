"""`embedding_guard.check`: the same run as the CLI, as a Python call with typed results."""

import json
import shutil

import pytest
from component_testlib import EXAMPLES_DIR, TRANSFORM_GRAPH_DIR, check_testdata, file_digests

import embedding_guard
from embedding_guard.cli import main as cli
from embedding_guard.errors import InputError


@pytest.fixture(scope="module")
def result():
    return embedding_guard.check(
        EXAMPLES_DIR, TRANSFORM_GRAPH_DIR, embedding_input_dims={"month_xf": 12}
    )


def test_verdict_per_split(result):
    assert result.blessed is False
    assert result.blessed_by_split == {"eval": False, "test": False, "train": True}
    assert "NEGATIVE_INDEX" in result.summary()


def test_reports_equal_the_command_lines(result, capsys):
    code = check_testdata("--embedding-dim", "month_xf=12", "--json")

    assert code == cli.EXIT_BLOCKED
    printed = json.loads(capsys.readouterr().out)
    # Beside the splits, the run's verdict (cli --json's one extra key).
    assert printed.pop("_verdict")["blessed"] is result.blessed is False
    expected = {name: report.to_json() for name, report in result.reports.items()}
    # The one difference: each caller's hint is in its own syntax.
    for reports, words in ((printed, "--embedding-dim clicked=N"), (expected, "{'clicked': N}")):
        for report in reports.values():
            (unchecked,) = report["unchecked_features"]
            assert words in unchecked.pop("parameter_that_would_check_it")
    assert printed == expected


def test_dataframe_has_one_row_per_split_and_feature(result):
    frame = result.to_dataframe()

    assert len(frame) == 12
    city = frame[(frame.split == "eval") & (frame.feature == "city_xf")].iloc[0]
    # Hand-counted from testdata/make_examples.py (see test_executor.py).
    assert (city.num_values, city.negative, city.missing, city.verdict) == (19, 3, 1, "ERROR")
    month = frame[(frame.split == "eval") & (frame.feature == "month_xf")].iloc[0]
    assert (month.embedding_input_dim, month.over_embedding_dim) == (12, 2)


def test_notebook_shows_the_html_report(result):
    html = result._repr_html_()

    assert html.startswith("<style>")
    assert "city_xf" in html
    assert "BLOCKED" in html.upper()


def test_split_selection_and_output_folder(tmp_path):
    only_train = embedding_guard.check(
        EXAMPLES_DIR, TRANSFORM_GRAPH_DIR, splits=["train"], output=tmp_path / "out"
    )

    assert only_train.blessed is True
    assert list(only_train.reports) == ["train"]
    assert (tmp_path / "out" / "Split-train" / "index_report.json").is_file()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"embeding_input_dims": {"m": 3}}, "unknown options ['embeding_input_dims']"),
        ({"baseline_split": "trian"}, "baseline_split 'trian' is not a validated split"),
        ({"splits": ["tset"]}, "splits ['tset'] not found"),
        # A string was iterated as its letters: "splits ['a', 'i', 'n', 'r', 't'] not found".
        (
            {"splits": "train"},
            "splits='train' must be a list of split names, e.g. splits=['train']",
        ),
        ({"splits": ["train", "train"]}, "splits names ['train'] more than once"),
    ],
)
def test_bad_arguments_are_input_errors_naming_them(kwargs, message):
    with pytest.raises(InputError) as raised:
        embedding_guard.check(EXAMPLES_DIR, TRANSFORM_GRAPH_DIR, **kwargs)

    assert message in str(raised.value)


@pytest.mark.parametrize("where", ["examples", "split", "graph"])
def test_an_output_overlapping_an_input_is_refused_and_the_inputs_are_untouched(tmp_path, where):
    # check(output=...) wrote its reports straight into whatever folder it was given.
    examples = tmp_path / "examples"
    graph = tmp_path / "graph"
    shutil.copytree(EXAMPLES_DIR, examples)
    shutil.copytree(TRANSFORM_GRAPH_DIR, graph)
    output = {"examples": examples, "split": examples / "Split-eval", "graph": graph}[where]
    before = file_digests(tmp_path, base=tmp_path)

    with pytest.raises(InputError, match=rf"output '{output}' overlaps"):
        embedding_guard.check(examples, graph, output=output)

    assert file_digests(tmp_path, base=tmp_path) == before
