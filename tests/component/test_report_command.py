"""`embedding-guard report` against a real MLMD written by real LocalDagRunner runs.

The two runs (validator_runs.py): run 1 validates train only and is blessed; run 2
validates train and eval and is blocked by eval's 3 ERROR findings (city_xf
NEGATIVE_INDEX, month_xf and product_xf INDEX_OUT_OF_RANGE).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import report_page
import validator_runs

from embedding_guard.cli import main as cli
from embedding_guard.reports import mlmd_runs
from embedding_guard.verdict.report_model import READABLE_FORMAT_VERSIONS, REPORT_FORMAT_VERSION


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> validator_runs.ValidatorRuns:
    return validator_runs.shared_runs(tmp_path_factory)


def _report(capsys, *arguments: str) -> tuple[int, str, str]:
    exit_code = cli.main(["report", *arguments])
    captured = capsys.readouterr()
    return exit_code, captured.out, captured.err


def _listed_rows(out: str) -> list[list[str]]:
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.split()[:3] == ["run", "id", "started"])
    rows = []
    for line in lines[start + 1 :]:
        if not line.strip():
            break
        rows.append(line.split())
    return rows


def test_validator_type_name_is_what_tfx_records():
    from embedding_guard.component import EmbeddingIndexValidator

    assert EmbeddingIndexValidator.get_class_type() == mlmd_runs.VALIDATOR_TYPE_NAME


def test_lists_both_runs_newest_first(runs, capsys):
    exit_code, out, err = _report(capsys, str(runs.pipeline_root))

    assert exit_code == 0, err
    assert out.startswith(f"EmbeddingIndexValidator runs in {runs.metadata}, newest first:\n")
    rows = _listed_rows(out)
    assert len(rows) == 2
    # run id, date, time, execution id, node, state, blessed, splits, errors, warnings
    blocked, blessed = rows
    assert blocked[0] == runs.run_ids[1]
    assert blocked[4:] == [validator_runs.VALIDATOR_ID, "COMPLETE", "no", "train,eval", "3", "2"]
    assert blessed[0] == runs.run_ids[0]
    assert blessed[4:] == [validator_runs.VALIDATOR_ID, "COMPLETE", "yes", "train", "0", "0"]
    assert int(blocked[3]) > int(blessed[3])


def test_shows_why_the_newest_run_was_blocked(runs, capsys):
    exit_code, out, _ = _report(capsys, str(runs.pipeline_root))

    assert exit_code == 0
    details = out[out.index("\nRun ") :]
    assert details.startswith(
        f"\nRun {runs.run_ids[1]} (execution {_execution_id(out, 0)}, pipeline "
        f"{validator_runs.PIPELINE_NAME}, node {validator_runs.VALIDATOR_ID}, started "
    )
    assert details.splitlines()[1].endswith("): BLOCKED")
    assert f"anomalies: {runs.blocked_anomalies}\n" in details
    assert "split eval: 20 examples, 3 error(s), 2 warning(s) -> BLOCKED" in details
    assert "split train: 20 examples, 0 error(s), 0 warning(s) -> ok" in details
    assert "ERROR NEGATIVE_INDEX: 3 of 19 values of 'city_xf' in split 'eval' are negative" in (
        details
    )
    assert "ERROR INDEX_OUT_OF_RANGE: 3 of 24 values of 'product_xf' in split 'eval'" in details
    # The table's row, not the bounds line above it nor a finding.
    city_row = next(
        row
        for row in map(str.split, details.splitlines())
        if row[:1] == ["city_xf"] and row[1].isdigit()
    )
    # feature values missing negative >=range >=dim non_int min..max ...
    assert city_row[:8] == ["city_xf", "19", "1", "3", "0", "0", "0", "-1..24"]


def test_says_how_the_blocked_run_compares_with_the_one_before(runs, capsys):
    _, out, _ = _report(capsys, str(runs.pipeline_root))

    comparison = out[out.index("\nCompared with the previous run:") :]
    assert f"0 in run {runs.run_ids[0]}" in comparison
    assert "That run did not check split(s) eval." in comparison
    assert "  ERROR   split eval city_xf NEGATIVE_INDEX: 3 (split not checked before)" in comparison


def test_run_option_shows_an_older_run(runs, capsys):
    exit_code, out, _ = _report(capsys, str(runs.pipeline_root), "--run", runs.run_ids[0])

    assert exit_code == 0
    details = out[out.index("\nRun ") :]
    assert details.startswith(f"\nRun {runs.run_ids[0]} (execution ")
    assert details.splitlines()[1].endswith("): blessed")
    assert "split train: 20 examples, 0 error(s), 0 warning(s) -> ok" in details
    assert "split eval" not in details
    assert "Compared with the previous run" not in details


def test_run_option_takes_an_execution_id(runs, capsys):
    _, listing, _ = _report(capsys, str(runs.pipeline_root))
    blessed_execution = _execution_id(listing, 1)

    exit_code, out, _ = _report(capsys, str(runs.pipeline_root), "--run", blessed_execution)

    assert exit_code == 0
    assert f"\nRun {runs.run_ids[0]} (execution {blessed_execution}," in out


def test_unknown_run_exits_2_and_names_the_newest(runs, capsys):
    exit_code, out, err = _report(capsys, str(runs.pipeline_root), "--run", "no-such-run")

    assert exit_code == 2
    assert out == ""
    assert err.startswith("embedding-guard: error: --run 'no-such-run' matches no ")
    assert repr(runs.run_ids[1]) in err


def test_json_output(runs, capsys, tmp_path):
    exit_code, out, _ = _report(capsys, "--metadata", str(runs.metadata), "--json")

    assert exit_code == 0
    document = json.loads(out)
    assert document["metadata"] == str(runs.metadata)
    assert [run["run_id"] for run in document["runs"]] == list(reversed(runs.run_ids))
    assert [run["blessed"] for run in document["runs"]] == [0, 1]
    assert [run["num_errors"] for run in document["runs"]] == [3, 0]
    assert [run["split_names"] for run in document["runs"]] == [["train", "eval"], ["train"]]
    shown = document["run"]
    assert shown["run_id"] == runs.run_ids[1]
    assert shown["anomalies_uri"] == runs.blocked_anomalies
    assert shown["reports"]["eval"]["num_errors"] == 3
    city = next(f for f in shown["reports"]["eval"]["features"] if f["feature"] == "city_xf")
    assert city["counts"]["negative"] == 3
    changes = {
        (c["split"], c["feature"], c["reason"]): (c["count"], c["previous_count"])
        for c in shown["comparison"]["changes"]
    }
    # Every ERROR and WARNING of eval, which the blessed run did not check.
    assert changes == {
        ("eval", "city_xf", "NEGATIVE_INDEX"): (3, None),
        ("eval", "city_xf", "OOV_RATE_INCREASE"): (3, None),
        ("eval", "month_xf", "INDEX_OUT_OF_RANGE"): (2, None),
        ("eval", "product_xf", "INDEX_OUT_OF_RANGE"): (3, None),
        ("eval", "product_xf", "OOV_RATE_INCREASE"): (3, None),
    }
    assert document["html"] is None


def test_html_option_writes_the_run_report(runs, capsys, tmp_path):
    out_file = tmp_path / "report.html"

    exit_code, out, _ = _report(capsys, str(runs.pipeline_root), "--html", str(out_file))

    assert exit_code == 0
    assert out.endswith(f"\nHTML report written to {out_file}\n")
    document = out_file.read_text(encoding="utf-8")
    assert document.startswith("<!DOCTYPE html>")
    page = report_page.read(document)
    assert page.verdict.startswith("BLOCKED: 3 errors in split eval.")
    assert page.counts["eval"]["city_xf"]["negative"] == "3"
    assert page.counts["eval"]["product_xf"]["out_of_range"] == "3"
    assert f"Compared with run {runs.run_ids[0]}" in page.text


def test_finds_metadata_inside_the_root_too(runs, capsys, tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    shutil.copy(runs.metadata, root / "metadata.db")

    exit_code, out, _ = _report(capsys, str(root))

    assert exit_code == 0
    assert out.startswith(f"EmbeddingIndexValidator runs in {root / 'metadata.db'}, newest")
    assert [row[0] for row in _listed_rows(out)] == list(reversed(runs.run_ids))


def test_finds_metadata_in_the_layout_of_tfxs_own_examples(runs, capsys, tmp_path):
    # taxi_pipeline_native_keras.py: _pipeline_root = <tfx_root>/pipelines/<name>,
    # _metadata_path = <tfx_root>/metadata/<name>/metadata.db, beside the root.
    tfx_root = tmp_path / "tfx"
    root = tfx_root / "pipelines" / "chicago_taxi_native_keras"
    root.mkdir(parents=True)
    metadata = tfx_root / "metadata" / "chicago_taxi_native_keras" / "metadata.db"
    metadata.parent.mkdir(parents=True)
    shutil.copy(runs.metadata, metadata)
    # Another pipeline's database beside it is not this root's.
    (tfx_root / "metadata" / "other").mkdir()
    shutil.copy(runs.metadata, tfx_root / "metadata" / "other" / "metadata.db")

    exit_code, out, err = _report(capsys, str(root) + os.sep)
    other_code, _, other_err = _report(capsys, str(tfx_root / "pipelines" / "unknown"))

    assert exit_code == 0, err
    assert f" in {metadata}, newest first:\n" in out.splitlines(keepends=True)[0]
    assert [row[0] for row in _listed_rows(out)] == list(reversed(runs.run_ids))
    assert other_code == 2
    assert "does not exist" in other_err
    (tfx_root / "pipelines" / "unknown").mkdir()
    other_code, _, other_err = _report(capsys, str(tfx_root / "pipelines" / "unknown"))
    assert other_code == 2
    assert str(tfx_root / "metadata" / "unknown" / "metadata.db") in other_err


def test_root_without_validator_runs_exits_2(capsys, tmp_path):
    from tfx import v1 as tfx

    root, metadata = tmp_path / "root", tmp_path / "metadata.sqlite"
    # An Importer writes nothing under the root; other components would.
    root.mkdir()
    _, importer = validator_runs.importers()
    tfx.orchestration.LocalDagRunner().run(
        validator_runs.sqlite_pipeline("no-validator", root, metadata, [importer])
    )
    capsys.readouterr()

    exit_code, out, err = _report(capsys, str(root))

    assert exit_code == 2
    assert out == ""
    assert err == (
        f"embedding-guard: error: MLMD database {str(metadata)!r} records no "
        "embedding_guard.component.EmbeddingIndexValidator execution, so PIPELINE_ROOT "
        f"{str(root)!r} has no validator run to report. Run a pipeline with "
        "EmbeddingIndexValidator first, or pass the database it used.\n"
    )


def test_root_without_database_exits_2(capsys, tmp_path):
    root = tmp_path / "pipelines" / "root"
    root.mkdir(parents=True)

    exit_code, out, err = _report(capsys, str(root))

    assert exit_code == 2
    assert out == ""
    assert err.startswith(
        f"embedding-guard: error: No MLMD database found for PIPELINE_ROOT {str(root)!r}; "
        f"looked for [{str(root / 'metadata.sqlite')!r}, {str(root / 'metadata.db')!r}, "
        f"{str(root.parent / 'metadata.sqlite')!r}, {str(root.parent / 'metadata.db')!r}, "
        # TFX's examples' layout, since the root is <tfx_root>/pipelines/<name>.
        f"{str(tmp_path / 'metadata' / 'root' / 'metadata.sqlite')!r}, "
        f"{str(tmp_path / 'metadata' / 'root' / 'metadata.db')!r}]."
    )
    assert "--metadata PATH" in err


def test_missing_root_and_missing_metadata_exit_2(capsys, tmp_path):
    missing = str(tmp_path / "nowhere")

    root_code, _, root_err = _report(capsys, missing)
    metadata_code, _, metadata_err = _report(capsys, "--metadata", missing + ".sqlite")
    bare_code, _, bare_err = _report(capsys)

    assert root_code == metadata_code == bare_code == 2
    assert root_err.startswith(f"embedding-guard: error: PIPELINE_ROOT {missing!r} does not exist.")
    assert metadata_err.startswith(
        f"embedding-guard: error: MLMD database {missing + '.sqlite'!r} does not exist."
    )
    assert bare_err.startswith("embedding-guard: error: report needs PIPELINE_ROOT or --metadata")


def test_root_that_is_a_file_says_so(capsys, tmp_path):
    a_file = tmp_path / "root.txt"
    a_file.write_text("x")

    exit_code, _, err = _report(capsys, str(a_file))

    assert exit_code == 2
    assert err.startswith(
        f"embedding-guard: error: PIPELINE_ROOT {str(a_file)!r} is a file, not a folder."
    )


def test_file_that_is_not_mlmd_exits_2(capsys, tmp_path):
    text_file = tmp_path / "metadata.sqlite"
    text_file.write_text("not a database " * 100)

    exit_code, _, err = _report(capsys, "--metadata", str(text_file))

    assert exit_code == 2
    assert err.startswith(f"embedding-guard: error: {str(text_file)!r} is not an sqlite database")


LOCK_HOLDER = """
import sqlite3, sys
connection = sqlite3.connect(sys.argv[1], isolation_level=None)
connection.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
sys.stdin.read()
"""


def test_locked_database_exits_2(runs, capsys, tmp_path):
    locked = tmp_path / "metadata.sqlite"
    shutil.copy(runs.metadata, locked)
    # sqlite locks are per process, so the lock must be held by another one.
    holder = subprocess.Popen(
        [sys.executable, "-c", LOCK_HOLDER, str(locked)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline() == "locked\n"

        exit_code, out, err = _report(capsys, "--metadata", str(locked))
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)

    assert exit_code == 2
    assert out == ""
    assert err.startswith(
        f"embedding-guard: error: MLMD database {str(locked)!r} is locked: another process"
    )


def test_failed_execution_is_listed_without_reports(capsys, tmp_path):
    from tfx import v1 as tfx

    from embedding_guard import EmbeddingIndexValidator
    from embedding_guard.component.executor import IndexValidationBlockedError

    root, metadata = tmp_path / "root", tmp_path / "metadata.sqlite"
    examples, graph = validator_runs.importers()
    validator = EmbeddingIndexValidator(
        examples=examples.outputs["result"],
        transform_graph=graph.outputs["result"],
        exclude_splits=["train", "test"],
        fail_on_block=True,
    )
    with pytest.raises(IndexValidationBlockedError):
        tfx.orchestration.LocalDagRunner().run(
            validator_runs.sqlite_pipeline(
                "fails-on-block", root, metadata, [examples, graph, validator]
            )
        )
    capsys.readouterr()

    exit_code, out, err = _report(capsys, str(root))
    json_code, json_out, _ = _report(capsys, str(root), "--json")
    html_code, _, html_err = _report(capsys, str(root), "--html", str(tmp_path / "r.html"))

    assert exit_code == json_code == 0, err
    assert [row[3:] for row in _listed_rows(out)] == [
        ["3", "EmbeddingIndexValidator", "FAILED", "-", "-", "?", "?"]
    ]
    assert (
        "(execution 3, state FAILED) published no anomalies artifact, so it has no reports. "
        "A FAILED validator raised (e.g. fail_on_block=True when blocked)"
    ) in out
    shown = json.loads(json_out)["run"]
    assert (shown["state"], shown["blessed"], shown["reports"]) == ("FAILED", None, None)
    assert "published no anomalies artifact" in shown["problem"]
    assert html_code == 2
    assert "published no anomalies artifact" in html_err
    assert not (tmp_path / "r.html").exists()


def _execution_id(listing: str, row: int) -> str:
    return _listed_rows(listing)[row][3]


def test_console_script_runs(runs):
    script = os.path.join(os.path.dirname(sys.executable), "embedding-guard")

    result = subprocess.run(
        [script, "report", str(runs.pipeline_root), "--json"],
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["run"]["run_id"] == runs.run_ids[1]


@pytest.fixture(scope="module")
def two_validators(tmp_path_factory) -> validator_runs.TwoValidatorRun:
    return validator_runs.shared_two_validator_run(tmp_path_factory)


def _digest(path) -> str:
    import hashlib

    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def _section(out: str, node: str) -> str:
    """The part of a report shown under a node's heading."""
    start = out.index(f"\n== {node} ==\n")
    end = out.find("\n== ", start + 1)
    return out[start : None if end < 0 else end]


def test_a_run_with_two_validator_nodes_shows_each_under_its_name(two_validators, capsys):
    # The README's two validators: every report call needed --node.
    root = str(two_validators.pipeline_root)

    default_code, default_out, default_err = _report(capsys, root)
    run_code, run_out, _ = _report(capsys, root, "--run", two_validators.run_id)

    assert default_code == run_code == 0, default_err
    assert default_out == run_out
    assert default_out.startswith("EmbeddingIndexValidator and ModelIndexValidator runs in ")
    sections = {node: _section(default_out, node) for node in ("EmbeddingIndexValidator",
                                                                "ModelIndexValidator")}  # fmt: skip
    embedding, model = sections["EmbeddingIndexValidator"], sections["ModelIndexValidator"]
    assert default_out.index(embedding) < default_out.index(model)
    assert "node EmbeddingIndexValidator, started " in embedding
    assert embedding.splitlines()[2].endswith("): blessed")
    assert "split train: 20 examples, 0 error(s)" in embedding and "split eval" not in embedding
    assert "node ModelIndexValidator, started " in model
    assert model.splitlines()[2].endswith("): BLOCKED")
    assert "split eval: 20 examples, 3 error(s)" in model and "split train" not in model
    assert default_out.endswith(
        f"\n\nRun {two_validators.run_id}: EmbeddingIndexValidator blessed, "
        "ModelIndexValidator BLOCKED\n"
    )


def test_node_option_shows_that_node_and_the_header_names_it(two_validators, capsys):
    root = str(two_validators.pipeline_root)

    model_code, model_out, _ = _report(capsys, root, "--node", "ModelIndexValidator")
    embedding_code, embedding_out, _ = _report(
        capsys, root, "--run", two_validators.run_id, "--node", "EmbeddingIndexValidator"
    )

    assert model_code == embedding_code == 0
    assert model_out.startswith("ModelIndexValidator runs in ")
    assert [row[4] for row in _listed_rows(model_out)] == ["ModelIndexValidator"]
    assert "node ModelIndexValidator, started " in model_out
    assert "split eval: 20 examples, 3 error(s)" in model_out
    assert "): BLOCKED\n" in model_out and "==" not in model_out
    assert embedding_out.startswith("EmbeddingIndexValidator runs in ")
    assert [row[4] for row in _listed_rows(embedding_out)] == ["EmbeddingIndexValidator"]
    assert "node EmbeddingIndexValidator, started " in embedding_out
    assert "): blessed\n" in embedding_out and "ModelIndexValidator" not in embedding_out


def test_fail_on_blocked_fails_if_any_node_blocks_or_the_node_given(two_validators, capsys):
    root = str(two_validators.pipeline_root)

    any_code, any_out, _ = _report(capsys, root, "--fail-on-blocked")
    json_code, json_out, _ = _report(capsys, root, "--fail-on-blocked", "--json")
    model_code, _, _ = _report(capsys, root, "--fail-on-blocked", "--node", "ModelIndexValidator")
    embedding_code, _, _ = _report(
        capsys, root, "--fail-on-blocked", "--node", "EmbeddingIndexValidator"
    )

    assert (any_code, json_code, model_code, embedding_code) == (1, 1, 1, 0)
    assert any_out.endswith(
        f"\n\n--fail-on-blocked: run {two_validators.run_id} of node ModelIndexValidator is "
        "blocked; exit code 1.\n"
    )
    document = json.loads(json_out)
    assert document["run"] is None
    assert [(shown["node_id"], shown["blessed"]) for shown in document["shown"]] == [
        ("EmbeddingIndexValidator", 1),
        ("ModelIndexValidator", 0),
    ]
    assert document["blocked_nodes"] == ["ModelIndexValidator"]


def test_html_with_two_nodes_writes_a_page_per_node(two_validators, capsys, tmp_path):
    # It refused and asked for --node.
    page = tmp_path / "r.html"
    root = str(two_validators.pipeline_root)

    exit_code, out, err = _report(capsys, root, "--html", str(page), "--json")
    node_code, _, node_err = _report(
        capsys, root, "--html", str(page), "--node", "ModelIndexValidator"
    )

    assert exit_code == 0, err
    pages = {
        "EmbeddingIndexValidator": str(tmp_path / "r-EmbeddingIndexValidator.html"),
        "ModelIndexValidator": str(tmp_path / "r-ModelIndexValidator.html"),
    }
    assert json.loads(out)["html_files"] == pages
    for node, path in pages.items():
        assert f"{node} run" in Path(path).read_text(encoding="utf-8")
    assert node_code == 0, node_err
    assert "ModelIndexValidator run" in page.read_text(encoding="utf-8")
    # A folder is no file name, for one page or several.
    folder_code, _, folder_err = _report(capsys, root, "--html", str(tmp_path))
    assert folder_code == 2
    assert f"--html {str(tmp_path)!r} is a folder; pass a file name" in folder_err


def test_unknown_node_exits_2_and_lists_the_nodes(two_validators, capsys):
    exit_code, out, err = _report(capsys, str(two_validators.pipeline_root), "--node", "Nope")

    assert (exit_code, out) == (2, "")
    assert err == (
        "embedding-guard: error: --node 'Nope' names no EmbeddingIndexValidator node in this "
        "database; its validator nodes are ['EmbeddingIndexValidator', 'ModelIndexValidator'].\n"
    )


@pytest.fixture(scope="module")
def cached(tmp_path_factory) -> validator_runs.CachedRuns:
    return validator_runs.shared_cached_runs(tmp_path_factory)


def test_a_cached_run_says_it_is_cached_and_is_not_compared(cached, capsys):
    exit_code, out, err = _report(capsys, str(cached.pipeline_root))
    json_code, json_out, _ = _report(capsys, str(cached.pipeline_root), "--json")
    older_code, older_out, _ = _report(
        capsys, str(cached.pipeline_root), "--run", cached.run_ids[0]
    )

    assert exit_code == json_code == older_code == 0, err
    newest, first = _listed_rows(out)
    assert (newest[0], newest[5], first[0], first[5]) == (
        cached.run_ids[1],
        "CACHED",
        cached.run_ids[0],
        "COMPLETE",
    )
    details = out[out.index("\nRun ") :]
    assert details.splitlines()[1].endswith("): BLOCKED")
    assert details.splitlines()[2] == (
        f"CACHED: TFX reused the anomalies artifact of run {cached.run_ids[0]} (execution "
        f"{first[3]}, started {first[1]} {first[2]} UTC) for the same inputs and parameters; "
        "nothing was checked again."
    )
    # Before, it was "compared" with the run whose artifact it republished.
    assert "Compared with the previous run" not in out
    shown = json.loads(json_out)["run"]
    assert shown["state"] == "CACHED" and shown["comparison"] is None
    assert shown["cached_from"] == {"run_id": cached.run_ids[0], "execution_id": int(first[3])}
    assert "CACHED:" not in older_out and "Compared with" not in older_out


def test_fail_on_blocked_exits_1_when_the_newest_run_is_blocked(runs, capsys):
    root = str(runs.pipeline_root)

    blocked_code, blocked_out, _ = _report(capsys, root, "--fail-on-blocked")
    json_code, json_out, _ = _report(capsys, root, "--fail-on-blocked", "--json")
    blessed_code, _, _ = _report(capsys, root, "--fail-on-blocked", "--run", runs.run_ids[0])
    plain_code, _, _ = _report(capsys, root)

    assert (blocked_code, json_code, blessed_code, plain_code) == (1, 1, 0, 0)
    assert blocked_out.endswith(
        f"\n--fail-on-blocked: run {runs.run_ids[1]} of node EmbeddingIndexValidator is "
        "blocked; exit code 1.\n"
    )
    assert json.loads(json_out)["run"]["blessed"] == 0


def test_html_never_overwrites_the_database(runs, capsys):
    before = _digest(runs.metadata)

    for extra in ((), ("--force",)):
        exit_code, out, err = _report(
            capsys, "--metadata", str(runs.metadata), "--html", str(runs.metadata), *extra
        )

        assert (exit_code, out) == (2, "")
        assert err.startswith(
            f"embedding-guard: error: --html {str(runs.metadata)!r} is the MLMD database"
        )
    assert _digest(runs.metadata) == before


def test_html_never_writes_into_an_artifact_or_the_pipeline_root(runs, capsys):
    report_file = os.path.join(runs.blocked_anomalies, "Split-eval", "index_report.json")
    before = _digest(report_file)
    in_root = runs.pipeline_root / "report.html"
    in_artifact = os.path.join(runs.blessed_anomalies, "report.html")
    in_input = validator_runs.TESTDATA / "transformed_examples" / "Split-eval" / "report.html"

    cases = [
        ((str(runs.pipeline_root), "--html", report_file, "--force"), "artifact"),
        (("--metadata", str(runs.metadata), "--html", str(in_root)), "the pipeline root"),
        ((str(runs.pipeline_root), "--html", str(in_root)), "PIPELINE_ROOT"),
        (("--metadata", str(runs.metadata), "--html", in_artifact), "artifact"),
        (("--metadata", str(runs.metadata), "--html", str(in_input)), "artifact"),
    ]
    for arguments, what in cases:
        exit_code, out, err = _report(capsys, *arguments)

        assert (exit_code, out) == (2, ""), arguments
        assert f"lies inside {what} " in err, (arguments, err)
    assert _digest(report_file) == before
    assert not in_root.exists()
    assert not os.path.exists(in_artifact)
    assert not in_input.exists()


def test_html_replaces_an_existing_file_only_with_force(runs, capsys, tmp_path):
    existing = tmp_path / "notes.html"
    existing.write_text("keep me")

    refused, _, err = _report(capsys, str(runs.pipeline_root), "--html", str(existing))
    assert refused == 2
    assert err == (
        f"embedding-guard: error: --html {str(existing)!r} already exists; pass --force to "
        "replace it, or another file.\n"
    )
    assert existing.read_text() == "keep me"

    forced, _, _ = _report(capsys, str(runs.pipeline_root), "--html", str(existing), "--force")
    assert forced == 0
    assert existing.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_html_onto_a_folder_or_under_a_file_exits_2(runs, capsys, tmp_path):
    a_file = tmp_path / "plain.txt"
    a_file.write_text("x")

    folder_code, _, folder_err = _report(capsys, str(runs.pipeline_root), "--html", str(tmp_path))
    under_code, _, under_err = _report(
        capsys, str(runs.pipeline_root), "--html", str(a_file / "r.html")
    )

    assert folder_code == under_code == 2
    assert folder_err.startswith(f"embedding-guard: error: --html {str(tmp_path)!r} is a folder")
    assert under_err == (
        f"embedding-guard: error: --html {str(a_file / 'r.html')!r} lies under "
        f"{str(a_file)!r}, which is a file, not a folder.\n"
    )


def test_metadata_that_is_a_folder_says_so(runs, capsys):
    folder = runs.metadata.parent

    exit_code, out, err = _report(capsys, "--metadata", str(folder))

    assert (exit_code, out) == (2, "")
    assert err.startswith(
        f"embedding-guard: error: MLMD database {str(folder)!r} is a folder, not an sqlite file."
    )
    assert err.endswith(f"It holds {str(runs.metadata)!r}: pass that.\n")


def _damaged_copy(runs, tmp_path, damage) -> tuple[validator_runs.ValidatorRuns, str]:
    copied = validator_runs.copy_runs(runs, tmp_path / "copy")
    path = os.path.join(copied.blocked_anomalies, "Split-eval", "index_report.json")
    with open(path, encoding="utf-8") as f:
        text = f.read()
    with open(path, "w", encoding="utf-8") as f:
        f.write(damage(text))
    return copied, path


def test_truncated_report_exits_2_naming_the_file(runs, capsys, tmp_path):
    copied, path = _damaged_copy(runs, tmp_path, lambda text: text[: len(text) // 2])

    exit_code, out, err = _report(capsys, str(copied.pipeline_root), "--html", str(tmp_path / "r"))
    list_code, list_out, _ = _report(capsys, str(copied.pipeline_root))

    assert (exit_code, out) == (2, "")
    assert err.startswith(f"embedding-guard: error: {path!r} is not complete JSON (")
    assert err.endswith("the file is truncated or damaged; re-run the validator to rewrite it.\n")
    # Without --html the listing still shows, with the reason the run cannot be shown.
    assert list_code == 0
    assert f"{path!r} is not complete JSON" in list_out
    assert [row[-2:] for row in _listed_rows(list_out)] == [["?", "?"], ["0", "0"]]


def test_unknown_format_version_exits_2_naming_the_file(runs, capsys, tmp_path):
    copied, path = _damaged_copy(
        runs,
        tmp_path,
        lambda text: text.replace(
            f'"format_version": {REPORT_FORMAT_VERSION}', '"format_version": 99'
        ),
    )

    exit_code, _, err = _report(capsys, str(copied.pipeline_root), "--json", "--html",
                                str(tmp_path / "r.html"))  # fmt: skip

    assert exit_code == 2
    assert err.startswith(
        f"embedding-guard: error: {path!r} has format_version 99, which this embedding-guard "
        f"cannot read (it reads {list(READABLE_FORMAT_VERSIONS)!r})"
    )


def test_control_characters_in_a_report_never_reach_the_terminal(runs, capsys, tmp_path):
    copied, _ = _damaged_copy(
        runs,
        tmp_path,
        lambda text: text.replace('"severity": "ERROR"', '"severity": "\\u001b]0;pwned\\u0007"', 1),
    )

    exit_code, out, err = _report(capsys, str(copied.pipeline_root))

    assert exit_code == 0
    assert "\x1b" not in out + err and "\x07" not in out + err
    assert "'\\x1b]0;pwned\\x07'" in out


@pytest.mark.parametrize("split_names", ["train,eval", '{"train": 1}', "[1, 2]"])
def test_split_names_that_are_no_json_list_exit_2_naming_the_artifact(
    runs, capsys, tmp_path, split_names
):
    import sqlite3

    copied = validator_runs.copy_runs(runs, tmp_path / "copy")
    with sqlite3.connect(copied.metadata) as connection:
        (artifact_id,) = connection.execute(
            "SELECT id FROM Artifact WHERE uri = ?", (copied.blocked_anomalies,)
        ).fetchone()
        updated = connection.execute(
            "UPDATE ArtifactProperty SET string_value = ? "
            "WHERE artifact_id = ? AND name = 'split_names'",
            (split_names, artifact_id),
        ).rowcount
    connection.close()
    assert updated == 1

    exit_code, out, err = _report(capsys, str(copied.pipeline_root))

    assert (exit_code, out) == (2, "")
    assert err == (
        f"embedding-guard: error: The anomalies artifact {artifact_id} at "
        f"{copied.blocked_anomalies!r} has the property split_names {split_names!r}, not a JSON "
        'list of split names such as \'["train", "eval"]\'. The MLMD database was altered or '
        "written by another tool; re-run the validator, or set the property to the "
        "Split-<name> folders it holds.\n"
    )
