"""`embedding-guard check` in-process on the checked-in testdata.

Counts are worked out by hand from testdata/make_examples.py (see test_executor.py).
Without --embedding-dim, month_xf (no int_domain) is not checked.
"""

import contextlib
import dataclasses
import gc
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from component_testlib import EXAMPLES_DIR, TRANSFORM_GRAPH_DIR, tree

from embedding_guard.cli import main as cli

REPORT_FILES = ["SchemaDiff.pb", "index_report.html", "index_report.json"]
CHECK = ["check", "--transform-graph", str(TRANSFORM_GRAPH_DIR), "--examples", str(EXAMPLES_DIR)]


def _main(argv) -> tuple[int, str, str]:
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = cli.main(argv)
    return code, stdout.getvalue(), stderr.getvalue()


@pytest.fixture(scope="module")
def every_split(tmp_path_factory):
    """One run over every split, writing reports under --output."""
    output = tmp_path_factory.mktemp("cli") / "reports"
    code, stdout, stderr = _main([*CHECK, "--output", str(output)])
    return {
        "code": code,
        "stdout": stdout,
        "stderr": stderr,
        "output": output,
    }


@pytest.fixture(scope="module")
def plain_run():
    """One run over every split, printing only the terminal report (no --output)."""
    code, stdout, _ = _main(CHECK)
    return code, stdout


# The table columns the tests look at, in a fixed order.
COLUMNS = (
    "values",
    "missing",
    "negative",
    ">=range",
    ">=dim",
    "non_int",
    "min..max",
    "oov%",
    "drift",
    "status",
)


def _table_rows(stdout: str, split: str) -> dict[str, str]:
    """One split's table: feature -> its COLUMNS cells, space-separated."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"split {split}:"))
    header = lines[start + 1].split()
    assert header[0] == "feature"
    rows = {}
    for line in lines[start + 2 :]:
        cells = line.split()
        if len(cells) != len(header) or not line.startswith("  "):
            break
        row = dict(zip(header, cells, strict=True))
        rows[row["feature"]] = " ".join(row[column] for column in COLUMNS)
    return rows


def test_blocked_run_exits_1(every_split):
    assert every_split["code"] == cli.EXIT_BLOCKED == 1


def test_table_shows_the_counts(every_split):
    stdout = every_split["stdout"]
    # city_xf NEGATIVE_INDEX and product_xf INDEX_OUT_OF_RANGE. product_xf's 3 values
    # over its default input_dim 42 (over_dim below) are those out of range: no own finding.
    assert "split eval: 20 examples, 2 error(s), 2 warning(s) -> BLOCKED" in stdout
    assert "INDEX_OVER_EMBEDDING_DIM" not in stdout
    assert "split test: 6 examples, 1 error(s), 0 warning(s) -> BLOCKED" in stdout
    assert "split train: 20 examples, 0 error(s), 0 warning(s) -> ok" in stdout
    # The ranges and input_dims once, before the splits: the same in every split.
    assert "  age_xf [0, 5), input_dim 5: bucketize into 5 buckets" in stdout
    assert "  city_xf [0, 25), input_dim 25: vocabulary 'city' (25 entries)" in stdout
    assert "  product_xf [0, 42), input_dim 42: vocabulary 'product' (40 entries)" in stdout
    # Columns: values missing negative >=range >=dim non_int min..max oov% drift status.
    # age_xf is bucketized: no vocabulary, so no OOV rate. city_xf's OOV is its three
    # -1s (default_value, 3 of 19); product_xf's its 3 OOV-bucket hits of 24.
    assert _table_rows(stdout, "eval") == {
        "age_xf": "20 0 0 0 0 0 0..4 - - ok",
        "city_xf": "19 1 3 0 0 0 -1..24 15.8% +15.8% ERROR",
        "product_xf": "24 0 0 3 3 0 0..57 12.5% +12.5% ERROR",
    }
    assert _table_rows(stdout, "test")["product_xf"] == "6 0 0 0 0 6 - 0.0% +0.0% ERROR"
    assert _table_rows(stdout, "train") == {
        "age_xf": "20 0 0 0 0 0 0..4 - - ok",
        "city_xf": "20 0 0 0 0 0 0..24 0.0% - ok",
        "product_xf": "21 0 0 0 0 0 0..39 0.0% - ok",
    }


def test_table_lists_the_blocking_findings(every_split):
    stdout = every_split["stdout"]
    assert "ERROR NEGATIVE_INDEX: 3 of 19 values of 'city_xf' in split 'eval'" in stdout
    assert "ERROR INDEX_OUT_OF_RANGE: 3 of 24 values of 'product_xf' in split 'eval'" in stdout
    assert "ERROR NON_INTEGER_VALUES: 6 of 6 values of 'product_xf' in split 'test'" in stdout


def test_terminal_report_is_at_most_100_columns_wide(every_split, plain_run):
    _, stdout = plain_run

    for line in every_split["stdout"].splitlines() + stdout.splitlines():
        assert len(line) <= 100, line


def test_verdict_comes_last_with_the_coverage(plain_run):
    code, stdout = plain_run

    # The last paragraph: the verdict, wrapped at 100 with an indent. By hand:
    # errors: eval city_xf NEGATIVE_INDEX, product_xf INDEX_OUT_OF_RANGE, test
    # product_xf NON_INTEGER_VALUES; warnings: the two OOV_RATE_INCREASEs of eval.
    # Checked: age_xf city_xf product_xf; not checked: clicked, month_xf.
    assert code == cli.EXIT_BLOCKED
    assert _verdict(stdout) == (
        "BLOCKED: 3 errors in 2 of 3 splits (eval, test); 2 warnings; 3 of 5 categorical "
        "integer feature(s) checked, 2 not checked (listed above); the Trainer must not run."
    )


def test_unchecked_features_are_one_table_after_the_splits(plain_run):
    _, stdout = plain_run
    lines = stdout.splitlines()

    start = lines.index("Not checked (2 integer feature(s)):")
    assert start > max(i for i, line in enumerate(lines) if line.startswith("split "))
    assert lines[start + 1].split() == ["feature", "role", "what", "would", "check", "it"]
    verdict = next(i for i in range(start, len(lines)) if lines[i].startswith("BLOCKED: "))
    # Each row: feature, role, then what would check it, wrapped under its column.
    rows = [line.split()[:3] for line in lines[start + 2 : verdict] if line[2] != " "]
    assert rows == [["clicked", "not", "checked"], ["month_xf", "not", "checked"]]
    assert "--embedding-dim month_xf=N" in " ".join(lines[start:verdict])
    assert "not checked:" not in stdout


def test_output_dir_holds_every_split_report(every_split):
    output = every_split["output"]
    assert tree(output) == {
        ".": [],
        "Split-train": REPORT_FILES,
        "Split-eval": REPORT_FILES,
        "Split-test": REPORT_FILES,
        # Written by default beside the reports: up to 10 whole examples per feature.
        "Split-eval/offending_examples": ["city_xf.tfrecord.gz", "product_xf.tfrecord.gz"],
        "Split-test/offending_examples": ["product_xf.tfrecord.gz"],
    }
    report = json.loads((output / "Split-eval" / "index_report.json").read_text())
    (city,) = [f for f in report["features"] if f["feature"] == "city_xf"]
    assert (city["counts"]["negative"], city["counts"]["missing"]) == (3, 1)
    assert f"reports written under {output}" in every_split["stdout"]


def test_clean_split_exits_0(capsys):
    code = cli.main([*CHECK, "--split", "train"])

    stdout = capsys.readouterr().out
    assert code == cli.EXIT_CLEAN == 0
    assert "split train: 20 examples, 0 error(s), 0 warning(s) -> ok" in stdout
    assert "split eval" not in stdout
    assert "split test" not in stdout
    # The green verdict says how much was looked at: clicked and month_xf were not.
    assert _verdict(stdout) == (
        "OK: no checked index would fail an embedding lookup in split train; 3 of 5 categorical "
        "integer feature(s) checked, 2 not checked (listed above)."
    )


def _verdict(stdout: str) -> str:
    """The last paragraph of the terminal report, its wrapped lines joined."""
    lines = stdout.rstrip("\n").splitlines()
    start = max(i for i, line in enumerate(lines) if not line.startswith(" "))
    return " ".join(line.strip() for line in lines[start:])


def test_long_names_and_large_counts_still_fit_100_columns():
    import numpy as np

    from embedding_guard.reports import text
    from embedding_guard.verdict import core, findings, report_model

    name = "f" * 150 + "_xf"
    bounds = core.FeatureBounds(name, upper_bound=3, embedding_input_dim=3, bound_source="x" * 300)
    values = np.asarray([-1] * 1_000 + [7] * 10**6, dtype=np.int64)
    report = findings.check_arrays("eval", [bounds], {name: (values, np.ones(values.size))})
    unchecked = report_model.UncheckedFeature(name + "2", "why", "y " * 100)
    report = dataclasses.replace(report, unchecked_features=(unchecked,))

    lines = text.report_table({"eval": report}).splitlines()

    assert max(len(line) for line in lines) <= 100
    # The counts stay whole: a name too long for its column gets a line of its own.
    assert any(line.split()[:3] == ["1001000", "0", "1000"] for line in lines)


def test_json_output_parses_and_has_the_counts(capsys):
    code = cli.main([*CHECK, "--split", "eval", "--embedding-dim", "month_xf=12", "--json"])

    reports = json.loads(capsys.readouterr().out)
    assert code == 1
    # The run's verdict sits beside the split reports, under a key no split can have.
    assert list(reports) == ["_verdict", "eval"]
    assert reports["_verdict"]["verdict"] == "BLOCKED"
    counts = {f["feature"]: f["counts"] for f in reports["eval"]["features"]}
    assert list(counts) == ["age_xf", "city_xf", "month_xf", "product_xf"]
    assert (counts["month_xf"]["num_values"], counts["month_xf"]["over_embedding_dim"]) == (20, 2)
    assert counts["month_xf"]["top_offending_values"] == [{"value": 12, "count": 2}]
    product = counts["product_xf"]
    assert (product["num_values"], product["in_vocab"], product["oov_bucket"]) == (24, 18, 3)
    assert (product["out_of_range"], product["min"], product["max"]) == (3, 0, 57)
    assert reports["eval"]["num_examples"] == 20
    assert reports["eval"]["blessed"] is False


def test_missing_examples_dir_exits_2_naming_it(tmp_path, capsys):
    missing = tmp_path / "no-such-examples"

    code = cli.main(
        ["check", "--transform-graph", str(TRANSFORM_GRAPH_DIR), "--examples", str(missing)]
    )

    stderr = capsys.readouterr().err
    assert code == cli.EXIT_USAGE == 2
    assert repr(str(missing)) in stderr


@pytest.mark.parametrize(
    "not_a_graph",
    [EXAMPLES_DIR, TRANSFORM_GRAPH_DIR / "transform_fn"],
    ids=["examples-dir", "transform_fn-subdir"],
)
def test_folder_that_is_not_a_transform_graph_exits_2(not_a_graph, capsys):
    code = cli.main(
        ["check", "--transform-graph", str(not_a_graph), "--examples", str(EXAMPLES_DIR)]
    )

    stderr = capsys.readouterr().err
    assert code == 2
    assert repr(str(not_a_graph)) in stderr
    assert "transformed_metadata" in stderr


def test_missing_transform_graph_exits_2(tmp_path, capsys):
    missing = tmp_path / "no-such-graph"

    code = cli.main(["check", "--transform-graph", str(missing), "--examples", str(EXAMPLES_DIR)])

    assert code == 2
    assert repr(str(missing)) in capsys.readouterr().err


def test_installed_console_script_prints_usage():
    script = Path(sys.executable).parent / "embedding-guard"

    result = subprocess.run(
        [str(script), "--help"], capture_output=True, text=True, timeout=120, check=False
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: embedding-guard")
    assert "check" in result.stdout


# The console script's start-up, run, and teardown, in a fresh process: the
# collector's state is per process.
CONSOLE_PROCESS = """
import gc, io, json, sys, contextlib
from embedding_guard.cli import main as cli
from embedding_guard.run import orchestration

cli.console_start_up()
seen = {"paused_at_start_up": not gc.isenabled()}
validate = orchestration.validate

def watched_validate(*args, **kwargs):
    seen["enabled_in_run"] = gc.isenabled()
    seen["frozen_in_run"] = gc.get_freeze_count()
    return validate(*args, **kwargs)

orchestration.validate = watched_validate
with contextlib.redirect_stdout(io.StringIO()):
    seen["code"] = cli.main(sys.argv[1:])
cli.console_teardown()
seen["frozen_at_exit"] = gc.get_freeze_count()
print(json.dumps(seen))
"""


def test_the_console_script_pauses_the_collector_for_start_up_only(tmp_path):
    done = subprocess.run(
        [sys.executable, "-c", CONSOLE_PROCESS, *CHECK, "--output", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    seen = json.loads(done.stdout.splitlines()[-1])

    assert seen["code"] == cli.EXIT_BLOCKED
    assert seen["paused_at_start_up"]
    # The run itself collects, with the imports' objects frozen (some 37,000 of
    # them: a check of transformed examples imports no TensorFlow).
    assert seen["enabled_in_run"]
    assert seen["frozen_in_run"] > 10_000, seen
    # The teardown leaves what the run made alive to the exit as well.
    assert seen["frozen_at_exit"] > seen["frozen_in_run"], seen


def test_main_and_the_python_api_leave_the_callers_collector_as_it_is(capsys):
    import embedding_guard

    frozen = gc.get_freeze_count()
    gc.disable()
    try:
        code = cli.main(CHECK)
        enabled_after_main = gc.isenabled()
        result = embedding_guard.check(examples=EXAMPLES_DIR, transform_graph=TRANSFORM_GRAPH_DIR)
        enabled_after_check = gc.isenabled()
    finally:
        gc.enable()

    assert code == cli.EXIT_BLOCKED
    assert not result.blessed
    assert not enabled_after_main
    assert not enabled_after_check
    assert gc.get_freeze_count() == frozen
