"""The `embedding-guard` command line.

`check` validates Transform outputs on disk with the component's own code.
Heavy imports (TensorFlow, TFT, Beam) happen inside the commands, so `--help`
answers at once.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import gc
import json
import logging
import os
import signal
import sys
import tempfile
import threading
import time
import traceback
import uuid
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, NoReturn, TextIO

from embedding_guard.errors import InputError
from embedding_guard.text import printable, report_table, write_out

EXIT_CLEAN = 0
EXIT_BLOCKED = 1
EXIT_USAGE = 2
EXIT_INTERNAL_ERROR = 3
# What a shell reports for a process ended by SIGINT (128 + 2).
EXIT_INTERRUPTED = 130
# What a shell reports for a process ended by SIGTERM (128 + 15).
EXIT_TERMINATED = 143


class UsageError(InputError):
    """Bad arguments or unreadable input; the message names the path or argument."""


def _key_value(parameter: str, convert: Callable[[str], Any]) -> Callable[[str], tuple[str, Any]]:
    def parse(text: str) -> tuple[str, Any]:
        feature, sep, value = text.partition("=")
        if not sep or not feature or not value:
            raise argparse.ArgumentTypeError(
                f"{parameter} takes FEATURE=VALUE, got {text!r}; e.g. {parameter} city_xf=1002"
            )
        try:
            return feature, convert(value)
        except ValueError as error:
            raise argparse.ArgumentTypeError(f"{parameter} {text!r}: {error}") from None

    return parse


# An embedding lookup's indices are int64.
_INT64_MAX = 2**63 - 1


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"{text!r} is not an integer") from None
    if not 0 < value <= _INT64_MAX:
        raise ValueError(f"embedding input_dim must be in [1, 2**63 - 1], got {value!r}")
    return value


def _rate_value(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a number between 0 and 1") from None
    if not 0 <= value <= 1:
        raise ValueError(f"a rate must be between 0 and 1, got {value!r}")
    return value


def _threshold(flag: str, allow_off: bool) -> Callable[[str], tuple[str | None, float | None]]:
    """Parses `RATE`, `FEATURE=RATE` or (if allowed) `off` into (feature or None, rate or None)."""

    def parse(text: str) -> tuple[str | None, float | None]:
        if allow_off and text == "off":
            return None, None
        feature, sep, rate = text.rpartition("=")
        try:
            if not sep:
                return None, _rate_value(text)
            if not feature:
                raise ValueError(f"no feature before '=' in {text!r}")
            return feature, _rate_value(rate)
        except ValueError as error:
            off = ", or off" if allow_off else ""
            raise argparse.ArgumentTypeError(
                f"{flag} takes RATE or FEATURE=RATE (0..1){off}: {error}"
            ) from None

    return parse


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
    check = commands.add_parser(
        "check",
        help="validate Transform outputs on disk",
        description=(
            "Check every categorical feature of every split against the transform graph's "
            "vocabularies (plus OOV buckets) and the embedding sizes. Exit code 0: clean; "
            "1: an index would fail (blocked); 2: bad usage or unreadable input; 3: internal "
            "error (the message says where the full log is); 130: interrupted; 143: "
            "terminated by SIGTERM."
        ),
    )
    bounds_source = check.add_mutually_exclusive_group(required=True)
    bounds_source.add_argument(
        "--transform-graph",
        metavar="DIR",
        help="Transform's transform_graph output (holds transform_fn/, transformed_metadata/)",
    )
    bounds_source.add_argument(
        "--schema",
        metavar="SCHEMA.pbtxt",
        help="take bounds from a schema's int_domains instead of a transform graph",
    )
    check.add_argument(
        "--model",
        metavar="DIR",
        help="the trained model whose embedding tables the indices must fit: a SavedModel, "
        "or a TFX Model artifact folder (its Format-Serving); sizes found in it replace the "
        "default input_dim, --embedding-dim still overrides",
    )
    check.add_argument(
        "--examples",
        required=True,
        metavar="DIR",
        help="folder holding Split-<name> folders of TFRecord tf.Examples (gzip or not)",
    )
    check.add_argument(
        "--split",
        action="append",
        metavar="NAME",
        help="validate only this split (repeatable; default: every Split-* folder)",
    )
    check.add_argument(
        "--exclude-split",
        action="append",
        metavar="NAME",
        help="do not validate this split (repeatable)",
    )
    check.add_argument(
        "--feature",
        action="append",
        metavar="FEATURE",
        help="check only this feature (repeatable; default: every categorical feature)",
    )
    check.add_argument(
        "--embedding-dim",
        action="append",
        default=[],
        type=_key_value("--embedding-dim", _positive_int),
        metavar="FEATURE=N",
        help="the Trainer's Embedding input_dim of a feature (repeatable)",
    )
    check.add_argument(
        "--feature-vocabulary",
        action="append",
        default=[],
        type=_key_value("--feature-vocabulary", str),
        metavar="FEATURE=VOCAB",
        help="link a feature to a vocabulary not named after it (repeatable)",
    )
    check.add_argument(
        "--output",
        metavar="DIR",
        help="write SchemaDiff.pb and index_report.json per split under DIR/Split-<name>/",
    )
    check.add_argument(
        "--examples-kind",
        choices=("auto", "transformed", "raw"),
        default="auto",
        help="raw examples get the transform graph applied first (default: auto-detect)",
    )
    check.add_argument(
        "--max-oov-rate",
        action="append",
        type=_threshold("--max-oov-rate", allow_off=False),
        metavar="[FEATURE=]RATE",
        help="flag features whose share of out-of-vocabulary values exceeds RATE (0..1); "
        "FEATURE=RATE sets it per feature (repeatable)",
    )
    check.add_argument(
        "--max-oov-rate-increase",
        action="append",
        type=_threshold("--max-oov-rate-increase", allow_off=True),
        metavar="[FEATURE=]RATE|off",
        help="flag OOV rates above the baseline split's by more than RATE (default 0.05); "
        "FEATURE=RATE per feature (repeatable); off: no drift check",
    )
    for flag in ("--max-oov-rate-severity", "--max-oov-rate-increase-severity"):
        check.add_argument(
            flag,
            choices=("WARNING", "ERROR"),
            default="WARNING",
            help="WARNING reports, ERROR blocks (default WARNING)",
        )
    check.add_argument(
        "--baseline-split",
        metavar="NAME",
        help="split that OOV drift is measured against (default: train, when there is one)",
    )
    check.add_argument(
        "--parallelism",
        type=int,
        metavar="N",
        help=(
            "threads reading each split (default: the CPUs this process may use); each "
            "keeps up to 4 batches of at most 16 MiB of records in memory"
        ),
    )
    check.add_argument(
        "--beam-pipeline-arg",
        action="append",
        metavar="ARG",
        help="run as a Beam pipeline with this option (repeatable), e.g. "
        "--beam-pipeline-arg=--runner=DataflowRunner; default: count in this process on "
        "every core, without Beam",
    )
    check.add_argument(
        "--junit-xml",
        metavar="FILE",
        help="also write one JUnit test case per split and feature (ERROR findings fail), "
        "for CI systems",
    )
    check.add_argument("--json", action="store_true", help="print the reports as JSON")
    check.set_defaults(handler=_run_check)
    inspect_model = commands.add_parser(
        "inspect-model",
        help="list a trained model's embedding lookups and table sizes",
        description=(
            "Find every lookup of a SavedModel's serving signature (Keras Embedding and "
            "CategoryEncoding, tf.nn.embedding_lookup, tf.gather, tf.one_hot, feature "
            "columns), the feature that indexes it and the size of its table, and say how "
            "each size was found. Exit code 0: listed; 2: not a readable SavedModel."
        ),
    )
    inspect_model.add_argument(
        "model", metavar="DIR", help="a SavedModel, or a TFX Model artifact folder"
    )
    inspect_model.add_argument(
        "--signature", default="serving_default", help="the signature to trace"
    )
    inspect_model.add_argument(
        "--no-probe",
        action="store_true",
        help="trace the graph only; do not call the model on CPU to confirm the sizes",
    )
    inspect_model.set_defaults(handler=_run_inspect_model)
    _add_report_command(commands)
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


def _is_remote(path: str) -> bool:
    # Imported here: reader loads TensorFlow, which `--help` must not wait for.
    from embedding_guard import reader

    return not reader.is_local(path)


def _existing_folder(flag: str, path: str, what: str) -> str:
    """Checks that a local input folder exists and is a folder; remote paths pass."""
    if _is_remote(path):
        return path
    if not os.path.exists(path):
        raise UsageError(f"{flag} {path!r} does not exist; pass {what}.")
    if not os.path.isdir(path):
        raise UsageError(f"{flag} {path!r} is a file, not a folder; pass {what}.")
    return path


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def _check_output_apart_from_inputs(
    output: str, inputs: Mapping[str, str | None], flag: str = "--output"
) -> None:
    """Refuses an output (--output, --junit-xml) that is, holds, or lies inside an input.

    Reports written into a Split-* folder would be read as shards by the Trainer
    and by the next run; an input inside the output would be replaced.
    """
    resolved_output = output.rstrip("/") if _is_remote(output) else os.path.realpath(output)
    for input_flag, path in inputs.items():
        if path is None:
            continue
        resolved = path.rstrip("/") if _is_remote(path) else os.path.realpath(path)
        if _inside(resolved_output, resolved) or _inside(resolved, resolved_output):
            raise UsageError(
                f"{flag} {output!r} overlaps {input_flag} {path!r}: reports written there "
                "would mix with the inputs (the Trainer would read them as shards). Pick a "
                "path outside every input."
            )


def _check_file_writable(flag: str, path: str) -> None:
    """Fails before Beam starts when an output file could not be written later."""
    if _is_remote(path):
        return
    parent = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise UsageError(f"{flag} {path!r} is a folder; pass a file name.")
    if not os.path.isdir(parent):
        raise UsageError(
            f"{flag} {path!r} cannot be written: {parent!r} is not a folder; create it or pass "
            "another path."
        )


_STAGING_PREFIX = ".staging-"


class _OutputFolder:
    """Where one run writes its reports, then publishes them into --output.

    The run writes into a fresh staging folder of its own and reads its verdict
    back from there, so a concurrent run into the same --output cannot hand it
    another verdict. A lock on the folder keeps a second run out while one runs.

    Args:
      output: The --output folder, or None for a scratch folder that is
        deleted afterwards.
    """

    def __init__(self, output: str | None) -> None:
        self.output = output
        self._lock_handle: int | None = None
        self._scratch: str | None = None
        self.staging = ""

    def __enter__(self) -> _OutputFolder:
        from tfx.dsl.io import fileio

        if self.output is None:
            self._scratch = tempfile.mkdtemp(prefix="embedding-guard-")
            self.staging = self._scratch
            return self
        try:
            fileio.makedirs(self.output)
            if not _is_remote(self.output):
                self._lock(self.output)
                self._remove_stale_staging(self.output)
            self.staging = os.path.join(self.output, f"{_STAGING_PREFIX}{uuid.uuid4().hex}")
            fileio.makedirs(self.staging)
        except InputError:
            raise
        except Exception as error:  # noqa: BLE001 - every I/O failure means the same here
            raise UsageError(
                f"--output {self.output!r} cannot be written ({printable(error)}); pass a "
                "writable folder."
            ) from None
        return self

    def _lock(self, output: str) -> None:
        import fcntl

        # flock on the folder itself: no lock file is left among the reports.
        handle = os.open(output, os.O_RDONLY)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(handle)
            raise UsageError(
                f"--output {output!r} is in use by another embedding-guard run; wait for "
                "it to finish, or pass another folder."
            ) from None
        self._lock_handle = handle

    @staticmethod
    def _remove_stale_staging(output: str) -> None:
        # With the folder locked, no other run can be writing: a staging folder
        # left there belongs to a run that was killed.
        from tfx.dsl.io import fileio

        for name in fileio.listdir(output):
            name = name.rstrip("/")
            if name.startswith(_STAGING_PREFIX):
                fileio.rmtree(os.path.join(output, name))

    def split_dirs(self, splits: Iterable[str]) -> dict[str, str]:
        from embedding_guard import reader

        return {
            name: os.path.join(self.staging, f"{reader.SPLIT_DIR_PREFIX}{name}") for name in splits
        }

    def publish(self, splits: Iterable[str]) -> None:
        """Moves each split's reports from staging into --output, the JSON report last."""
        from tfx.dsl.io import fileio

        from embedding_guard import report_io

        if self.output is None:
            return
        for staged in self.split_dirs(splits).values():
            final = os.path.join(self.output, os.path.basename(staged))
            report_io.discard_report(final)
            fileio.makedirs(final)
            names = sorted(fileio.listdir(staged), key=lambda f: f == report_io.REPORT_JSON_FILE)
            for file_name in names:
                fileio.rename(
                    os.path.join(staged, file_name), os.path.join(final, file_name), overwrite=True
                )

    def __exit__(self, *exc_info: object) -> None:
        from tfx.dsl.io import fileio

        with contextlib.suppress(Exception):
            if self.staging and fileio.exists(self.staging):
                fileio.rmtree(self.staging)
        if self._lock_handle is not None:
            os.close(self._lock_handle)


def _beam_pipeline(beam_args: list[str] | None) -> Any:
    """A Beam pipeline for --beam-pipeline-arg, or None to count in this process."""
    if not beam_args:
        return None
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions

    try:
        return beam.Pipeline(options=PipelineOptions(beam_args))
    except (ValueError, SystemExit) as error:
        raise UsageError(
            f"--beam-pipeline-arg {beam_args!r} is not a valid set of Beam options ({error})."
        ) from None


def _run_inspect_model(args: argparse.Namespace) -> int:
    from embedding_guard import model_analysis

    _imports_done()
    _existing_folder("model", args.model, "a SavedModel or a TFX Model artifact folder")
    analysis = model_analysis.analyse_model(
        args.model, signature_name=args.signature, probe=not args.no_probe
    )
    rendered = model_analysis.render_lookups(analysis)
    write_out("\n".join(printable(line) for line in rendered.splitlines()))
    return EXIT_CLEAN


def _run_check(args: argparse.Namespace) -> int:
    from embedding_guard import orchestration, reader, schema_io
    from embedding_guard.options import CLI_FLAGS, ValidatorOptions

    options = ValidatorOptions.from_cli_args(args)
    _existing_folder("--examples", args.examples, "the examples artifact folder")
    if args.transform_graph:
        _existing_folder(
            "--transform-graph", args.transform_graph, "Transform's transform_graph output"
        )
    schema = schema_io.read_schema(args.schema, "--schema") if args.schema else None
    if args.model:
        _existing_folder("--model", args.model, "a SavedModel or a TFX Model artifact folder")
    inputs = {
        "--examples": args.examples,
        "--transform-graph": args.transform_graph,
        "--schema": args.schema,
        "--model": args.model,
    }
    if args.output:
        _check_output_apart_from_inputs(args.output, inputs)
    if args.junit_xml:
        # Not into --output either: it would replace one of this run's own reports.
        _check_output_apart_from_inputs(
            args.junit_xml, {**inputs, "--output": args.output}, "--junit-xml"
        )
        _check_file_writable("--junit-xml", args.junit_xml)
    all_split_uris = reader.split_dirs(args.examples)
    if not all_split_uris:
        raise UsageError(
            f"--examples {args.examples!r} holds no Split-<name> folders; pass the examples "
            "artifact folder (e.g. .../Transform/transformed_examples/<id>)."
        )
    splits = orchestration.select_splits(
        list(all_split_uris),
        exclude_splits=options.exclude_splits,
        only=args.split,
        source=f"--examples {args.examples!r}",
        exclude_setting="--exclude-split",
    )
    split_uris = {name: all_split_uris[name] for name in splits}
    # What the run imports on its way (TFT to read a graph, Keras to read a
    # model, Beam to run a pipeline), imported while the start-up pause lasts.
    if args.transform_graph:
        from embedding_guard import transform_graph  # noqa: F401
    if args.model:
        from embedding_guard import model_analysis  # noqa: F401
    if args.beam_pipeline_arg:
        from embedding_guard import beam_pipeline  # noqa: F401
    _imports_done()
    with _OutputFolder(args.output) as output:
        output_dirs = output.split_dirs(splits)
        with _progress_on_tty(split_uris, sys.stderr):
            result = orchestration.validate(
                split_uris,
                output_dirs,
                options,
                transform_graph=args.transform_graph,
                schema=schema,
                model=args.model,
                pipeline=_beam_pipeline(args.beam_pipeline_arg),
                option_names=CLI_FLAGS,
            )
        output.publish(splits)
    if args.junit_xml:
        from embedding_guard import junit

        junit.write_junit_xml(result.reports.values(), args.junit_xml, "--junit-xml")
    if args.json:
        reports = {name: report.to_json() for name, report in result.reports.items()}
        write_out(json.dumps(reports, sort_keys=True, indent=2))
    else:
        write_out(report_table(result.reports))
        if args.output:
            write_out(f"reports written under {printable(args.output)}")
    return EXIT_CLEAN if result.blessed else EXIT_BLOCKED


class _Progress:
    """One progress bar per split: examples read, rate, and an ETA once it can be estimated.

    The total number of examples is stored nowhere; it is estimated from the
    shard sizes as soon as one shard is done (examples per byte so far, times the
    split's bytes).

    Args:
      split_uris: Split name -> folder of the splits being validated.
      stream: The terminal to draw on.
    """

    def __init__(self, split_uris: Mapping[str, str], stream: TextIO):
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TaskProgressColumn,
            TextColumn,
            TimeRemainingColumn,
        )

        from embedding_guard import reader

        self._split_of_shard = {
            shard: split for split, uri in split_uris.items() for shard in reader.list_shards(uri)
        }
        shards = list(self._split_of_shard)
        self._shard_bytes = dict(
            zip(shards, reader.call_at_once(_size_for_eta, shards), strict=True)
        )
        self._split_bytes = dict.fromkeys(split_uris, 0)
        for shard, split in self._split_of_shard.items():
            self._split_bytes[split] += self._shard_bytes[shard]
        self._examples_in_shard = dict.fromkeys(self._split_of_shard, 0)
        self._done_bytes = dict.fromkeys(split_uris, 0)
        self._done_examples = dict.fromkeys(split_uris, 0)
        self._examples = dict.fromkeys(split_uris, 0)
        self._lock = threading.Lock()
        console = Console(file=stream, force_terminal=True, width=_terminal_width(stream))
        self._bars = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TaskProgressColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeRemainingColumn(),
            console=console,
        )
        self._started = time.monotonic()
        self._tasks = {
            split: self._bars.add_task(printable(split), total=None, rate="")
            for split in sorted(split_uris)
        }
        self._bars.start()

    def add(self, shard: str, num_examples: int, shard_done: bool = False) -> None:
        split = self._split_of_shard.get(shard)
        if split is None:
            return
        with self._lock:
            self._examples_in_shard[shard] += num_examples
            self._examples[split] += num_examples
            total = None
            if shard_done:
                self._done_bytes[split] += self._shard_bytes[shard]
                self._done_examples[split] += self._examples_in_shard[shard]
            if self._done_bytes[split]:
                per_byte = self._done_examples[split] / self._done_bytes[split]
                total = max(self._examples[split], round(per_byte * self._split_bytes[split]))
            seconds = max(time.monotonic() - self._started, 1e-6)
            self._bars.update(
                self._tasks[split],
                completed=self._examples[split],
                total=total,
                rate=f"{self._examples[split] / seconds:,.0f} examples/s",
            )

    def finish(self, *, done: bool = True) -> None:
        """Stops drawing; a run that is done fills every bar, an interrupted one leaves them."""
        with self._lock:
            if done:
                for split, task in self._tasks.items():
                    self._bars.update(
                        task, total=self._examples[split], completed=self._examples[split]
                    )
            self._bars.stop()


def _terminal_width(stream: TextIO) -> int:
    # A pseudo-terminal nobody sized reports 0 columns.
    try:
        columns = os.get_terminal_size(stream.fileno()).columns
    except (OSError, ValueError):
        columns = 0
    return columns or 100


def _size_for_eta(path: str) -> int:
    from embedding_guard import reader

    try:
        return reader.file_size(path)
    except reader.ShardError:
        # A size only feeds the ETA; the run itself reports the shard.
        return 0


@contextlib.contextmanager
def _progress_on_tty(split_uris: Mapping[str, str], stream: TextIO) -> Iterator[None]:
    """Shows a progress bar per split on stream while the block runs, if it is a TTY."""
    if not stream.isatty():
        yield
        return
    from embedding_guard import validation

    progress = _Progress(split_uris, stream)
    try:
        with validation.progress_listener(progress.add):
            yield
    except BaseException:
        # A bar at 100 % above "interrupted" would say the split was all read.
        progress.finish(done=False)
        raise
    progress.finish()


def _add_report_command(commands: Any) -> None:
    report = commands.add_parser(
        "report",
        help="review the validator's runs recorded in ML Metadata",
        description=(
            "List EmbeddingIndexValidator runs from the pipeline's MLMD database, newest "
            "first, and show one run's findings per split and feature. The database is "
            "--metadata PATH, or else the first of metadata.sqlite and metadata.db found in "
            "PIPELINE_ROOT and then in its parent folder. Exit code 0: shown; 1: "
            "--fail-on-blocked and the shown run is blocked or has no verdict; 2: no "
            "database, no validator run, an ambiguous or unreadable one, or an unsafe --html."
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
        help="write the shown run's report as one self-contained HTML file (never onto the "
        "database, a pipeline root or an artifact)",
    )
    report.add_argument("--force", action="store_true", help="let --html replace an existing file")
    report.add_argument(
        "--fail-on-blocked",
        action="store_true",
        help="exit 1 when the shown run (default: the newest) is blocked or has no verdict",
    )
    report.set_defaults(handler=_run_report)


def _run_report(args: argparse.Namespace) -> int:
    from embedding_guard import report_command, report_io  # noqa: F401

    _imports_done()

    return report_command.run_command(args)


def _crash_log(error: BaseException) -> str:
    """Writes the full traceback to a log file and returns its path."""
    handle, path = tempfile.mkstemp(prefix="embedding-guard-crash-", suffix=".log")
    with os.fdopen(handle, "w") as log:
        log.write("".join(traceback.format_exception(type(error), error, error.__traceback__)))
    return path


def _one_line(error: BaseException) -> str:
    # Library messages repeat paths and may carry data bytes: keep the first line,
    # with control characters escaped.
    lines = str(error).strip().splitlines() or [type(error).__name__]
    return printable(lines[0])


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
            print(
                f"embedding-guard: {'terminated (SIGTERM)' if terminated else 'interrupted'}; "
                "--output keeps the reports it had before this run.",
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


# mallopt parameters of glibc's malloc.h.
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


def keep_freed_memory() -> None:
    """Lets the process reuse the memory it frees rather than give it back (glibc).

    Every batch allocates and frees buffers of several MiB. glibc unmaps such
    buffers when they are freed, so each batch page-faults its memory in again,
    and on several threads the faults wait on one another. The console script
    owns its process and exits when the run is done, so it keeps freed memory
    for reuse. C libraries without mallopt are left as they are.
    """
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return
    # 32 MiB is glibc's largest threshold: batches (16 MiB) come from the heap.
    mallopt(_M_MMAP_THRESHOLD, 32 * 1024 * 1024)
    mallopt(_M_TRIM_THRESHOLD, 1024 * 1024 * 1024)


# Set by console_start_up alone: a process that calls main() itself keeps its
# collector as it is.
_collector_paused = False


def console_start_up() -> None:
    """Readies the console script's process, which it owns, for one command.

    It keeps freed memory (keep_freed_memory), and pauses Python's garbage
    collector until the command's imports are done. Importing TensorFlow makes
    millions of objects that live until the exit, and the collector scanned
    them over and over while they were made: about 1 s of a 3-4 s start-up.
    """
    global _collector_paused
    keep_freed_memory()
    gc.disable()
    _collector_paused = True


def _imports_done() -> None:
    """Ends console_start_up's pause, with what start-up made frozen: never scanned again."""
    global _collector_paused
    if _collector_paused:
        gc.freeze()
        gc.enable()
        _collector_paused = False


def console_teardown() -> None:
    """Leaves the objects still alive to the exit unscanned.

    The interpreter's teardown runs the collector over every object left, for
    more than a second once TensorFlow is loaded, after the verdict is printed.
    """
    gc.freeze()


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
