"""The `embedding-guard` command line: its parser, `main` and the console script.

Each command lives in a module of its own (`check`, `inspect_model`, `report`),
which adds its flags here. Heavy imports (TensorFlow, TFT, Beam) happen inside
the commands, so `--help` answers at once. Every failure is one line on stderr
and an exit code (`usage`), never a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
import tempfile
import traceback
import warnings
from collections.abc import Iterator, Sequence
from typing import Any, NoReturn

from embedding_guard.cli import check, inspect_model, startup
from embedding_guard.cli.startup import console_start_up, console_teardown, keep_freed_memory
from embedding_guard.cli.usage import (
    EXIT_BLOCKED,
    EXIT_CLEAN,
    EXIT_INTERNAL_ERROR,
    EXIT_INTERRUPTED,
    EXIT_TERMINATED,
    EXIT_USAGE,
    UsageError,
)
from embedding_guard.errors import InputError, first_line
from embedding_guard.reports.text import printable

# Callers and tests reach the exit codes and the console script's steps here.
__all__ = [
    "EXIT_BLOCKED",
    "EXIT_CLEAN",
    "EXIT_INTERNAL_ERROR",
    "EXIT_INTERRUPTED",
    "EXIT_TERMINATED",
    "EXIT_USAGE",
    "Terminated",
    "UsageError",
    "build_parser",
    "console_main",
    "console_start_up",
    "console_teardown",
    "keep_freed_memory",
    "main",
]


class _OneLineErrorParser(argparse.ArgumentParser):
    # argparse prints the whole usage before its error; the failure contract is one
    # line that names the flag and points at --help.
    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"embedding-guard: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _OneLineErrorParser(
        prog="embedding-guard",
        description=(
            "Find categorical indices that would fail an embedding lookup, before the Trainer does."
        ),
    )
    commands = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", parser_class=_OneLineErrorParser
    )
    check.add_parser(commands)
    inspect_model.add_parser(commands)
    _add_report_parser(commands)
    return parser


class _DropInputErrorTracebacks(logging.Filter):
    # Beam logs each exception raised in a DoFn, traceback included, before it
    # re-raises it. An InputError already names the file and the fix, and main()
    # prints it once; any other exception keeps Beam's log.
    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], InputError))


@contextlib.contextmanager
def _command_line_environment() -> Iterator[None]:
    """Quiets the libraries for the length of one command, then restores them."""
    previous_tf_log_level = os.environ.get("TF_CPP_MIN_LOG_LEVEL")
    # TensorFlow's C++ logging reads this once, when TensorFlow is first imported.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    beam_logger = logging.getLogger("apache_beam.runners.common")
    traceback_filter = _DropInputErrorTracebacks()
    beam_logger.addFilter(traceback_filter)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=FutureWarning)
            warnings.filterwarnings("ignore", category=DeprecationWarning)
            yield
    finally:
        beam_logger.removeFilter(traceback_filter)
        if previous_tf_log_level is None:
            os.environ.pop("TF_CPP_MIN_LOG_LEVEL", None)
        else:
            os.environ["TF_CPP_MIN_LOG_LEVEL"] = previous_tf_log_level


def _add_report_parser(commands: Any) -> None:
    # Here rather than in `report`, which imports numpy: --help must not wait for it.
    report = commands.add_parser(
        "report",
        help="review the validator's runs recorded in ML Metadata",
        description=(
            "List the validator's runs from the pipeline's MLMD database, newest first, and "
            "show a pipeline run's findings per split and feature, one verdict per validator "
            "node. The database is --metadata PATH, or else the first of metadata.sqlite and "
            "metadata.db found in PIPELINE_ROOT, its parent folder, and TFX's "
            "<tfx_root>/metadata/<pipeline>/ beside <tfx_root>/pipelines/<pipeline>. Exit "
            "code 0: shown; 1: --fail-on-blocked and a shown node (or the --node given) is "
            "blocked or has no verdict; 2: no database, no validator run, an unreadable one, "
            "or an unsafe --html."
        ),
    )
    report.add_argument(
        "pipeline_root",
        nargs="?",
        metavar="PIPELINE_ROOT",
        help="the pipeline_root the pipeline ran with",
    )
    report.add_argument("--metadata", metavar="PATH", help="the MLMD sqlite database")
    report.add_argument(
        "--run",
        metavar="ID",
        help="pipeline run id or execution id of the run to show (default: the newest)",
    )
    report.add_argument(
        "--node",
        metavar="NODE_ID",
        help="the validator node to show, when a pipeline has several (see the node column)",
    )
    report.add_argument(
        "--limit", type=int, default=20, metavar="N", help="list the N newest runs (default 20)"
    )
    report.add_argument("--json", action="store_true", help="print runs and findings as JSON")
    report.add_argument(
        "--html",
        metavar="OUT",
        help="write the shown run's report as one self-contained HTML file; with several "
        "validator nodes, one file per node, OUT's name with -<node> added (never onto the "
        "database, a pipeline root or an artifact)",
    )
    report.add_argument("--force", action="store_true", help="let --html replace an existing file")
    report.add_argument(
        "--fail-on-blocked",
        action="store_true",
        help="exit 1 when any shown validator node (or the --node given) is blocked or has "
        "no verdict",
    )
    report.set_defaults(handler=_run_report)


def _run_report(args: argparse.Namespace) -> int:
    from embedding_guard.cli import report
    from embedding_guard.reports import report_io  # noqa: F401

    startup.imports_done()

    return report.run_command(args)


def _crash_log(error: BaseException) -> str:
    """Writes the full traceback to a log file and returns its path."""
    handle, path = tempfile.mkstemp(prefix="embedding-guard-crash-", suffix=".log")
    with os.fdopen(handle, "w") as log:
        log.write("".join(traceback.format_exception(type(error), error, error.__traceback__)))
    return path


def _one_line(error: BaseException) -> str:
    # Library messages may carry data bytes: control characters escaped.
    return printable(first_line(error))


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command line; returns the exit code.

    0 clean, 1 blocked, 2 bad input or usage, 3 internal error, 130 interrupted, 143 terminated
    (SIGTERM, which only the console script turns into Terminated).
    Every failure is one line on stderr, never a traceback.
    """
    with _command_line_environment():
        try:
            args = build_parser().parse_args(argv)
            return args.handler(args)
        except SystemExit as exit_request:
            # argparse's usage errors (2) and --help (0).
            return exit_request.code if isinstance(exit_request.code, int) else EXIT_USAGE
        except InputError as error:
            print(f"embedding-guard: error: {_one_line(error)}", file=sys.stderr)
            return EXIT_USAGE
        except KeyboardInterrupt as interrupt:
            terminated = isinstance(interrupt, Terminated)
            # check's output folder notes what it holds; other commands write nothing.
            state = getattr(interrupt, "output_state", None)
            print(
                f"embedding-guard: {'terminated (SIGTERM)' if terminated else 'interrupted'}"
                f"{f'; {state}' if state else ''}.",
                file=sys.stderr,
            )
            return EXIT_TERMINATED if terminated else EXIT_INTERRUPTED
        except Exception as error:  # noqa: BLE001 - the contract: one line, never a traceback
            log = _crash_log(error)
            print(
                f"embedding-guard: internal error: {type(error).__name__}: {_one_line(error)} "
                f"(full log: {log}; please report it)",
                file=sys.stderr,
            )
            return EXIT_INTERNAL_ERROR


class Terminated(KeyboardInterrupt):
    """SIGTERM, which the console script takes as it takes Ctrl-C.

    Orchestrators (Kubeflow, Airflow, a CI job's timeout) stop a step with
    SIGTERM. Left to its default, it ended the process at once: no line said
    why, and the run's staging folder stayed in --output until the next run.
    """


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated()


def console_main() -> None:
    """The `embedding-guard` console script: main(), then exit with its code.

    Ctrl-C or SIGTERM after the command has finished (while TensorFlow and Beam
    shut down) must not turn a verdict that was printed into a signal death
    with no message.
    """
    console_start_up()
    signal.signal(signal.SIGTERM, _raise_terminated)
    code = main()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    console_teardown()
    sys.exit(code)


if __name__ == "__main__":
    console_main()
