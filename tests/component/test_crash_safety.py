"""Nothing lost, nothing forged: a run killed mid-write never leaves a report that looks complete.

Runs are killed with SIGKILL, so no `finally` or cleanup code runs, in a
subprocess: the command line or the executor. Two ways:

* A harness (written to tmp_path; product code has no test hooks) wraps the
  `storage` module of report_io so that the Nth report file write writes half
  its data, flushes it and SIGKILLs its own process: a crash mid-write, at a
  known point.
* The plain command line, killed from outside while it writes reports, at
  whatever point that is: frozen with SIGSTOP once it has started, and killed
  only where its staging folder shows it still writing.

After a kill, every file under a final name (SchemaDiff.pb, index_report.html,
index_report.json) must be byte-identical to a complete run's file, the earlier
run's or the killed run's; index_report.json, written last, must be present only
where the split's other files are the killed run's; a rerun must succeed and
write exactly what an uninterrupted run writes; an earlier artifact and the
inputs must be untouched.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from component_testlib import (
    EXAMPLES_DIR,
    TRANSFORM_GRAPH_DIR,
    file_digests,
    input_digests,
    run_executor,
)

from embedding_guard.cli import main as cli
from embedding_guard.reports import report_io

# The splits of the run killed from outside: many, so that writing takes a while.
SPANS = [f"span{index:02d}" for index in range(16)]
FINAL_NAMES = ("SchemaDiff.pb", "index_report.html", "index_report.json")
# Changes every report, so the earlier run's files and the killed run's differ.
NEW_OPTIONS = ["--embedding-dim", "month_xf=12"]
NEW_EXEC_PROPERTIES = {"embedding_input_dims": json.dumps({"month_xf": 12})}

HARNESS = '''
"""Runs the CLI or the executor; the Nth report file write dies halfway (SIGKILL)."""
import json
import os
import signal
import sys

from embedding_guard.read import storage
from embedding_guard.reports import report_io

kill_at, command, arguments = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
writes = 0


class DyingFile:
    def __init__(self, file):
        self._file = file

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        return self._file.__exit__(*exc_info)

    def write(self, data):
        self._file.write(data[: len(data) // 2])
        self._file.flush()
        os.kill(os.getpid(), signal.SIGKILL)


class StorageWithDyingWrite:
    def __getattr__(self, name):
        return getattr(storage, name)

    def open_file(self, path, mode="rb"):
        global writes
        file = storage.open_file(path, mode)
        if "w" in mode:
            writes += 1
            if writes == kill_at:
                return DyingFile(file)
        return file


report_io.storage = StorageWithDyingWrite()
if command == "cli":
    from embedding_guard.cli import main as cli

    sys.exit(cli.main(arguments))
from tfx.types import artifact_utils, standard_artifacts

from embedding_guard.component.executor import Executor

examples_uri, graph_uri, anomalies_uri, properties = arguments
examples = standard_artifacts.Examples()
examples.uri = examples_uri
examples.split_names = artifact_utils.encode_split_names(["train", "eval", "test"])
graph = standard_artifacts.TransformGraph()
graph.uri = graph_uri
anomalies = standard_artifacts.ExampleAnomalies()
anomalies.uri = anomalies_uri
Executor().Do(
    {"examples": [examples], "transform_graph": [graph]},
    {"anomalies": [anomalies]},
    json.loads(properties),
)
'''


def _environment() -> dict:
    return dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONWARNINGS="ignore")


def _check_argv(examples: Path, output: Path, *options: str) -> list[str]:
    return [
        "check",
        "--transform-graph",
        str(TRANSFORM_GRAPH_DIR),
        "--examples",
        str(examples),
        "--output",
        str(output),
        *options,
    ]


def _contents(output: Path) -> dict[str, bytes]:
    """Relative path -> bytes of every file under a final name, outside hidden folders.

    `check` writes into a hidden staging folder of its own and moves the files into
    place once every split's report is written; readers never look there.
    """
    return {
        str(path.relative_to(output)): path.read_bytes()
        for path in sorted(output.rglob("*"))
        if path.name in FINAL_NAMES
        and not any(part.startswith(".") for part in path.relative_to(output).parts)
    }


def _staged_name(path: Path, output: Path) -> str:
    """A file's path relative to output, or to its staging folder inside output."""
    parts = path.relative_to(output).parts
    if parts[0].startswith(".staging-"):
        parts = parts[1:]
    return str(Path(*parts))


def _temporaries(output: Path) -> list[Path]:
    return sorted(path for path in output.rglob(".*") if path.is_file())


@dataclasses.dataclass
class Killed:
    output: Path
    returncode: int
    stderr: str
    old: dict[str, bytes]
    new: dict[str, bytes]
    killed_write: int | None = None


def _wait(process: subprocess.Popen, timeout: float = 300) -> tuple[int, str]:
    _, stderr = process.communicate(timeout=timeout)
    return process.returncode, stderr


def _kill_while_writing(
    argv: list[str], earlier: Path, output: Path, splits: int, attempts: int = 5
) -> tuple[int, str, int]:
    """Runs `check` over a copy of earlier and SIGKILLs it while it writes its reports.

    `check` writes each split's reports into a folder of its staging folder, one
    split after another, and publishes nothing until every split's folder is
    there. Once a split folder shows, the run is frozen (SIGSTOP, then waited
    for until it is stopped), its staging folder counted, and killed where it
    stands. Frozen with fewer split folders than splits, it was killed while
    writing whatever the machine's speed; frozen with all of them (or exited
    first), it may have been publishing, so the run is thrown away and started
    again over a fresh copy.

    Returns the killed run's return code, its stderr, and the split folders it had staged.
    """
    for _ in range(attempts):
        if output.exists():
            shutil.rmtree(output)
        shutil.copytree(earlier, output)
        process = subprocess.Popen(argv, stderr=subprocess.PIPE, text=True, env=_environment())
        staged = splits
        deadline = time.monotonic() + 300
        while process.poll() is None and time.monotonic() < deadline:
            try:
                writing = any(output.glob(".staging-*/Split-*"))
            except FileNotFoundError:
                # The run moved or removed a folder while it was being scanned.
                continue
            if not writing:
                time.sleep(0.0005)
                continue
            process.send_signal(signal.SIGSTOP)
            _, status = os.waitpid(process.pid, os.WUNTRACED)
            if os.WIFSTOPPED(status):
                staged = len([path for path in output.glob(".staging-*/Split-*")])
                process.send_signal(signal.SIGKILL)
            else:  # It exited before it could be stopped.
                process.returncode = os.waitstatus_to_exitcode(status)
            break
        returncode, stderr = _wait(process)
        if staged < splits:
            return returncode, stderr, staged
    raise AssertionError(f"no run of {argv} was caught writing in {attempts} attempts")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Complete runs, the killed runs beside them, then reruns; inputs hashed around it all."""
    tmp_path = tmp_path_factory.mktemp("crash")
    inputs_before = input_digests()
    harness = tmp_path / "harness.py"
    harness.write_text(HARNESS)

    # Many splits for the run killed from outside, so that writing takes a while.
    many = tmp_path / "many_splits"
    for span in SPANS:
        shutil.copytree(EXAMPLES_DIR / "Split-eval", many / f"Split-{span}")

    # Complete runs: the earlier (old) output and what the killed runs would write.
    golden = {}
    for name, examples, options in (
        ("old", EXAMPLES_DIR, []),
        ("new", EXAMPLES_DIR, NEW_OPTIONS),
        ("many_old", many, []),
        ("many_new", many, NEW_OPTIONS),
    ):
        assert cli.main(_check_argv(examples, tmp_path / name, *options)) == cli.EXIT_BLOCKED
        golden[name] = _contents(tmp_path / name)
    run_executor(tmp_path / "executor_old", {})
    run_executor(tmp_path / "executor_new", NEW_EXEC_PROPERTIES)
    old_artifact_digests = file_digests(tmp_path / "executor_old", base=tmp_path)

    # The killed runs write over a copy of the earlier output, as a rerun into
    # the same --output folder does.
    processes = {}
    for kill_at in (1, 5):
        output = tmp_path / f"killed_at_{kill_at}"
        shutil.copytree(tmp_path / "old", output)
        processes[f"killed_at_{kill_at}"] = subprocess.Popen(
            [sys.executable, str(harness), str(kill_at), "cli"]
            + _check_argv(EXAMPLES_DIR, output, *NEW_OPTIONS),
            stderr=subprocess.PIPE,
            text=True,
            env=_environment(),
        )
    executor_output = tmp_path / "executor_killed"
    processes["executor"] = subprocess.Popen(
        [sys.executable, str(harness), "4", "executor"]
        + [str(EXAMPLES_DIR), str(TRANSFORM_GRAPH_DIR), str(executor_output)]
        + [json.dumps(NEW_EXEC_PROPERTIES)],
        stderr=subprocess.PIPE,
        text=True,
        env=_environment(),
    )
    outside = tmp_path / "killed_from_outside"
    outside_code, outside_stderr, _ = _kill_while_writing(
        [sys.executable, "-m", "embedding_guard.cli.main"]
        + _check_argv(many, outside, *NEW_OPTIONS),
        tmp_path / "many_old",
        outside,
        len(SPANS),
    )

    killed = {}
    for name in ("killed_at_1", "killed_at_5"):
        returncode, stderr = _wait(processes[name])
        killed[name] = Killed(
            tmp_path / name,
            returncode,
            stderr,
            golden["old"],
            golden["new"],
            int(name.rsplit("_", 1)[1]),
        )
    returncode, stderr = _wait(processes["executor"])
    killed["executor"] = Killed(
        executor_output, returncode, stderr, {}, _contents(tmp_path / "executor_new"), 4
    )
    killed["outside"] = Killed(
        outside, outside_code, outside_stderr, golden["many_old"], golden["many_new"]
    )
    # Read now: a rerun drops a dead run's staging folder.
    after_kill = {
        name: (_contents(k.output), {path: path.read_bytes() for path in _temporaries(k.output)})
        for name, k in killed.items()
    }
    staged_complete = {
        name: sorted(
            _staged_name(path, k.output)
            for path in k.output.glob(".staging-*/**/index_report.json")
        )
        for name, k in killed.items()
    }

    # Reruns into the same folders.
    rerun_codes = {}
    for name, examples in (("killed_at_1", EXAMPLES_DIR), ("killed_at_5", EXAMPLES_DIR)):
        rerun_codes[name] = cli.main(_check_argv(examples, killed[name].output, *NEW_OPTIONS))
    rerun_codes["outside"] = cli.main(_check_argv(many, outside, *NEW_OPTIONS))
    run_executor(executor_output, NEW_EXEC_PROPERTIES)
    return {
        "killed": killed,
        "after_kill": after_kill,
        "staged_complete": staged_complete,
        "rerun_codes": rerun_codes,
        "inputs_before": inputs_before,
        "inputs_after": input_digests(),
        "old_artifact_before": old_artifact_digests,
        "old_artifact_after": file_digests(tmp_path / "executor_old", base=tmp_path),
    }


KILLED = ["killed_at_1", "killed_at_5", "executor", "outside"]


@pytest.mark.parametrize("name", KILLED)
def test_runs_were_killed_mid_run(runs, name):
    killed = runs["killed"][name]
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]


@pytest.mark.parametrize("name", ["killed_at_1", "killed_at_5", "executor"])
def test_the_killed_write_left_only_a_hidden_partial_file(runs, name):
    killed = runs["killed"][name]
    _, temporaries = runs["after_kill"][name]
    ((partial, data),) = temporaries.items()
    final = partial.parent / partial.name[1:].split(".tmp-")[0]
    complete = killed.new[_staged_name(final, killed.output)]
    assert 0 < len(data) < len(complete)
    assert complete.startswith(data)


@pytest.mark.parametrize("name", KILLED)
def test_no_file_under_a_final_name_is_partial(runs, name):
    killed = runs["killed"][name]
    contents, _ = runs["after_kill"][name]
    for path, data in contents.items():
        assert data in (killed.old.get(path), killed.new.get(path)), path


@pytest.mark.parametrize("name", KILLED)
def test_a_report_marked_complete_is_wholly_from_one_run(runs, name):
    # index_report.json marks a split's report as complete: where it is present,
    # the split's other files are from the same run.
    killed = runs["killed"][name]
    contents, _ = runs["after_kill"][name]
    complete_splits = [
        os.path.dirname(path) for path in contents if path.endswith("index_report.json")
    ]
    for split in complete_splits:
        paths = [os.path.join(split, file_name) for file_name in FINAL_NAMES]
        found = [contents.get(path) for path in paths]
        assert found in ([killed.old.get(p) for p in paths], [killed.new[p] for p in paths]), split


def test_kill_points_fall_before_and_after_a_complete_split(runs):
    # Splits are written in name order (eval, test, train), three files each:
    # write 1 is eval's SchemaDiff.pb; write 5 is test's index_report.html, after
    # eval is complete. The CLI writes them into its staging folder.
    def staged_complete(name):
        return runs["staged_complete"][name]

    assert staged_complete("killed_at_1") == []
    assert staged_complete("killed_at_5") == ["Split-eval/index_report.json"]
    contents, _ = runs["after_kill"]["executor"]
    assert sorted(p for p in contents if p.endswith("index_report.json")) == [
        "Split-eval/index_report.json"
    ]


@pytest.mark.parametrize("name", ["killed_at_1", "killed_at_5", "outside"])
def test_a_killed_check_leaves_the_earlier_reports_in_place_untouched(runs, name):
    # Nothing under --output changes until every split's new report is complete.
    killed = runs["killed"][name]
    contents, _ = runs["after_kill"][name]
    assert contents == killed.old


@pytest.mark.parametrize("name", KILLED)
def test_rerun_succeeds_and_writes_what_an_uninterrupted_run_writes(runs, name):
    killed = runs["killed"][name]
    if name != "executor":
        assert runs["rerun_codes"][name] == cli.EXIT_BLOCKED
    assert _contents(killed.output) == killed.new
    # The rerun holds the folder's lock, so the dead run's staging folder is its to drop.
    assert not list(killed.output.glob(".staging-*"))
    reports = report_io.read_split_reports(str(killed.output))
    assert {split: report.to_json() for split, report in reports.items()} == {
        os.path.dirname(path)[len("Split-") :]: json.loads(data)
        for path, data in killed.new.items()
        if path.endswith("index_report.json")
    }


def test_earlier_artifact_and_inputs_are_untouched(runs):
    assert runs["old_artifact_after"] == runs["old_artifact_before"]
    assert len(runs["old_artifact_before"]) == 9
    assert runs["inputs_after"] == runs["inputs_before"]
    assert "transform_graph/transform_fn/saved_model.pb" in runs["inputs_before"]


def test_killed_executor_leaves_only_the_finished_split_under_final_names(runs):
    # Splits are written in name order: eval, test, train; write 4 is test's first.
    contents, temporaries = runs["after_kill"]["executor"]
    assert sorted(contents) == [
        "Split-eval/SchemaDiff.pb",
        "Split-eval/index_report.html",
        "Split-eval/index_report.json",
    ]
    assert [path.parent.name for path in temporaries] == ["Split-test"]
