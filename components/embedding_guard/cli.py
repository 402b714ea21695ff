"""The `embedding-guard` command line.

`check` validates Transform outputs on disk with the component's own code.
Heavy imports (TensorFlow, TFT, Beam) happen inside the commands, so `--help`
answers at once.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
import tempfile
import threading
import time
import warnings

from embedding_guard.errors import InputError
from embedding_guard.text import printable, report_table

EXIT_CLEAN = 0
EXIT_BLOCKED = 1
EXIT_USAGE = 2


class UsageError(InputError):
    """Bad arguments or unreadable input; the message names the path or argument."""


def _key_value(parameter: str, convert):
    def parse(text: str):
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


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"{text!r} is not an integer") from None
    if value <= 0:
        raise ValueError(f"embedding input_dim must be positive, got {value!r}")
    return value


def _rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number between 0 and 1") from None
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"a rate must be between 0 and 1, got {value!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="embedding-guard",
        description=(
            "Find categorical indices that would fail an embedding lookup, before the Trainer does."
        ),
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    check = commands.add_parser(
        "check",
        help="validate Transform outputs on disk",
        description=(
            "Check every categorical feature of every split against the transform graph's "
            "vocabularies (plus OOV buckets) and the embedding sizes. Exit code 0: clean; "
            "1: an index would fail (blocked); 2: bad usage or unreadable input."
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
        type=_rate,
        metavar="RATE",
        help="flag features whose share of out-of-vocabulary values exceeds RATE (0..1)",
    )
    check.add_argument(
        "--max-oov-rate-increase",
        type=_rate,
        default=0.05,
        metavar="RATE",
        help="flag OOV rates above the baseline split's by more than RATE (default 0.05)",
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
        default="train",
        metavar="NAME",
        help="split that OOV drift is measured against (default train)",
    )
    check.add_argument("--json", action="store_true", help="print the reports as JSON")
    check.set_defaults(handler=_run_check)
    _add_report_command(commands)
    return parser


class _DropInputErrorTracebacks(logging.Filter):
    # Beam logs each exception raised in a DoFn, traceback included, before it
    # re-raises it. An InputError already names the file and the fix, and main()
    # prints it once; any other exception keeps Beam's log.
    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], InputError))


_INPUT_ERROR_TRACEBACK_FILTER = _DropInputErrorTracebacks()


def _quiet_libraries() -> None:
    # Must run before TensorFlow is imported: its C++ logging reads this once.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    logging.getLogger("apache_beam.runners.common").addFilter(_INPUT_ERROR_TRACEBACK_FILTER)


def _load_schema(args):
    """Returns (schema, vocabulary sizes, transform graph info or None)."""
    from tensorflow_metadata.proto.v0 import schema_pb2

    from embedding_guard import transform_graph

    if args.transform_graph:
        if not os.path.isdir(args.transform_graph) and "://" not in args.transform_graph:
            raise UsageError(f"--transform-graph {args.transform_graph!r} is not a folder.")
        graph = transform_graph.load_transform_graph(args.transform_graph)
        return graph.schema, graph.vocabulary_sizes, graph
    from google.protobuf import text_format
    from tfx.dsl.io import fileio

    if not fileio.exists(args.schema):
        raise UsageError(f"--schema {args.schema!r} does not exist.")
    schema = schema_pb2.Schema()
    with fileio.open(args.schema, "r") as f:
        try:
            text_format.Parse(f.read(), schema)
        except text_format.ParseError as error:
            raise UsageError(
                f"--schema {args.schema!r} is not a text Schema proto: {error}"
            ) from error
    return schema, {}, None


def _run_check(args) -> int:
    _quiet_libraries()
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions

    from embedding_guard import core, reader, validation

    schema, vocabulary_sizes, graph = _load_schema(args)
    split_uris = reader.split_dirs(args.examples)
    if not split_uris:
        raise UsageError(
            f"--examples {args.examples!r} holds no Split-<name> folders; pass the examples "
            "artifact folder (e.g. .../Transform/transformed_examples/<id>)."
        )
    if args.split:
        unknown = sorted(set(args.split) - set(split_uris))
        if unknown:
            raise UsageError(
                f"--split {unknown!r} not found under {args.examples!r}; "
                f"splits there: {sorted(split_uris)!r}."
            )
        split_uris = {name: split_uris[name] for name in args.split}
    validation_plan = validation.plan(
        split_uris,
        schema,
        vocabulary_sizes,
        transform_graph_uri=graph.uri if graph else None,
        raw_schema=graph.raw_schema if graph else None,
        features=args.feature,
        embedding_input_dims=dict(args.embedding_dim),
        feature_vocabularies=dict(args.feature_vocabulary),
        examples_kind=args.examples_kind,
    )
    policy = core.OovPolicy(
        max_oov_rate=args.max_oov_rate,
        max_oov_rate_severity=core.Severity(args.max_oov_rate_severity),
        max_oov_rate_increase=args.max_oov_rate_increase,
        max_oov_rate_increase_severity=core.Severity(args.max_oov_rate_increase_severity),
        baseline_split=args.baseline_split,
    )
    with tempfile.TemporaryDirectory(prefix="embedding-guard-") as scratch:
        output = args.output or scratch
        jobs = validation.split_jobs(
            split_uris,
            {name: os.path.join(output, f"{reader.SPLIT_DIR_PREFIX}{name}") for name in split_uris},
        )
        pipeline = beam.Pipeline(options=PipelineOptions(["--runner=DirectRunner"]))
        with _progress_on_tty(jobs, sys.stderr):
            reports = validation.run(
                jobs,
                validation_plan.bounds,
                pipeline,
                baseline=schema,
                policy=policy,
                parse=validation_plan.parse,
            )
    if args.json:
        print(json.dumps(reports, sort_keys=True, indent=2))
    else:
        print(report_table(reports))
        if args.output:
            print(f"reports written under {args.output}")
    return EXIT_CLEAN if all(r["blessed"] for r in reports.values()) else EXIT_BLOCKED


class _Progress:
    """Examples read so far per split, redrawn on one terminal line.

    Args:
      jobs: The splits being validated (validation.SplitJob).
      stream: The terminal to draw on.
    """

    # Redraws at most this often; a batch can take far less time than a redraw.
    REDRAW_SECONDS = 0.2

    def __init__(self, jobs, stream):
        self._stream = stream
        self._split_of_shard = {shard: job.name for job in jobs for shard in job.shards}
        self._shards = {job.name: len(job.shards) for job in jobs}
        self._examples = {job.name: 0 for job in jobs}
        self._shards_done = {job.name: 0 for job in jobs}
        self._lock = threading.Lock()
        self._last_draw = 0.0

    def add(self, shard: str, num_examples: int, shard_done: bool = False) -> None:
        split = self._split_of_shard.get(shard)
        if split is None:
            return
        with self._lock:
            self._examples[split] += num_examples
            self._shards_done[split] += int(shard_done)
            now = time.monotonic()
            if shard_done or now - self._last_draw >= self.REDRAW_SECONDS:
                self._last_draw = now
                self._draw()

    def _draw(self, end: str = "") -> None:
        parts = [
            f"{printable(split)} {self._examples[split]:,} "
            f"({self._shards_done[split]}/{self._shards[split]} shards)"
            for split in sorted(self._examples)
        ]
        # \r and erase-to-end-of-line redraw the same terminal line.
        self._stream.write(f"\r\x1b[Kexamples read: {', '.join(parts)}{end}")
        self._stream.flush()

    def finish(self) -> None:
        with self._lock:
            self._draw(end="\n")


@contextlib.contextmanager
def _progress_on_tty(jobs, stream):
    """Shows examples read per split on stream while the block runs, if it is a TTY."""
    if not stream.isatty():
        yield
        return
    from embedding_guard import validation

    progress = _Progress(jobs, stream)
    try:
        with validation.progress_listener(progress.add):
            yield
    finally:
        progress.finish()


def _add_report_command(commands) -> None:
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


def _run_report(args) -> int:
    _quiet_libraries()
    from embedding_guard import report_command

    return report_command.run_command(args)


def main(argv=None) -> int:
    """Runs the command line; returns the exit code."""
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except InputError as error:
        print(f"embedding-guard: error: {error}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
