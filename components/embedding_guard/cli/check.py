"""`embedding-guard check`: validates Transform outputs on disk with the component's own code.

Its flags, the checks of its paths before anything is read, the output folder
it publishes reports into, and the run itself. TensorFlow, TFT and Beam are
imported inside `run`, so that `--help` answers at once.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar

from embedding_guard.cli import offending_flags, startup
from embedding_guard.cli.progress import progress_on_tty
from embedding_guard.cli.usage import (
    EXIT_BLOCKED,
    EXIT_CLEAN,
    UsageError,
    existing_folder,
    is_remote,
)
from embedding_guard.reports.text import printable, report_table, write_out
from embedding_guard.run import options as validator_options

_T = TypeVar("_T")

# The key of the run's verdict in --json's object, beside the split names; TFX's
# split names start with a letter or digit, so no split can take it.
VERDICT_JSON_KEY = "_verdict"


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


def _checked_from_text(
    text: str,
    convert: Callable[[str], _T],
    check: Callable[[_T], _T | None],
    not_converted: str,
    out_of_range: str,
) -> _T:
    """A flag's value: text made a value by convert, then held to the options' own check.

    Raises ValueError "{text!r} is not {not_converted}" when convert fails, and
    "{out_of_range}, got {value!r}" when check refuses the value.
    """
    try:
        value = convert(text)
    except ValueError:
        raise ValueError(f"{text!r} is not {not_converted}") from None
    checked = check(value)
    if checked is None:
        raise ValueError(f"{out_of_range}, got {value!r}")
    return checked


def _input_dim_from_text(text: str) -> int:
    """An --embedding-dim value: the text as an int, if it is a valid input_dim."""
    return _checked_from_text(
        text,
        int,
        validator_options._positive_int,
        "an integer",
        "embedding input_dim must be in [1, 2**63 - 1]",
    )


def _rate_from_text(text: str) -> float:
    """A threshold flag's rate: the text as a float, if it is between 0 and 1."""
    return _checked_from_text(
        text,
        float,
        validator_options._rate,
        "a number between 0 and 1",
        "a rate must be between 0 and 1",
    )


def _share_from_text(text: str) -> float:
    """--max-hash-collision-share's value; argparse prints an ArgumentTypeError as it is."""
    try:
        return _rate_from_text(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(
            f"--max-hash-collision-share {text!r}: {error}; pass a share such as 0.5"
        ) from None


def _threshold(flag: str, allow_off: bool) -> Callable[[str], tuple[str | None, float | None]]:
    """Parses `RATE`, `FEATURE=RATE` or (if allowed) `off` into (feature or None, rate or None)."""

    def parse(text: str) -> tuple[str | None, float | None]:
        if allow_off and text == "off":
            return None, None
        feature, sep, rate = text.rpartition("=")
        try:
            if not sep:
                return None, _rate_from_text(text)
            if not feature:
                raise ValueError(f"no feature before '=' in {text!r}")
            return feature, _rate_from_text(rate)
        except ValueError as error:
            off = ", or off" if allow_off else ""
            raise argparse.ArgumentTypeError(
                f"{flag} takes RATE or FEATURE=RATE (0..1){off}: {error}"
            ) from None

    return parse


def add_parser(commands: Any) -> None:
    """Adds the `check` command to the command line's subparsers."""
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
        "--baseline-transform-graph",
        metavar="DIR",
        help="the transform graph an earlier model was trained with (the previous span's): "
        "values whose token now sits on another row give VOCABULARY_REMAPPED (default: the "
        "--model's own transform layer)",
    )
    check.add_argument(
        "--statistics",
        metavar="DIR",
        help="statistics of the same examples whose num_examples the examples read must "
        "match: StatisticsGen's statistics (per split) or Transform's post_transform_stats "
        "(all splits together; default: found beside --transform-graph)",
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
        type=_key_value("--embedding-dim", _input_dim_from_text),
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
        help=(
            "write each split's index_report.html (the page to open), index_report.json and "
            "SchemaDiff.pb (TFDV Anomalies) under DIR/Split-<name>/ (default: no files)"
        ),
    )
    offending_flags.add_arguments(check)
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
        "--vocabulary-remapped-severity",
        choices=("WARNING", "ERROR"),
        default="ERROR",
        help="what values reaching rows trained for other tokens give: ERROR blocks "
        "(default), WARNING reports",
    )
    check.add_argument(
        "--unchecked-severity",
        choices=validator_options.UNCHECKED_SEVERITIES,
        default="INFO",
        help="what an integer feature that looks categorical but has no bound (so is not "
        "checked) gives: INFO lists it, WARNING reports it, ERROR blocks (default INFO)",
    )
    check.add_argument(
        "--max-hash-collision-share",
        type=_share_from_text,
        default=validator_options.DEFAULT_MAX_HASH_COLLISION_SHARE,
        metavar="SHARE",
        help="in raw mode, warn when more than SHARE (0..1] of a hashed feature's distinct raw "
        "values share their bucket with another value (default 0.5; 1: never)",
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
    check.add_argument(
        "--json",
        action="store_true",
        help=f"print the reports as JSON: split name -> report, plus {VERDICT_JSON_KEY!r}, "
        "the run's verdict (no split name can start with '_')",
    )
    check.set_defaults(handler=run)


def _check_file_writable(flag: str, path: str) -> None:
    """Fails before Beam starts when an output file could not be written later."""
    if is_remote(path):
        return
    parent = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise UsageError(f"{flag} {path!r} is a folder; pass a file name.")
    if not os.path.isdir(parent):
        raise UsageError(
            f"{flag} {path!r} cannot be written: {parent!r} is not a folder; create it or pass "
            "another path."
        )


def _beam_pipeline(beam_args: list[str] | None) -> Any:
    """A Beam pipeline for --beam-pipeline-arg, or None to count in this process."""
    if not beam_args:
        return None
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions

    # Beam parses the options with argparse, which prints its 100-line usage
    # before it exits: keep only its last line, the reason.
    beam_usage = io.StringIO()
    try:
        with contextlib.redirect_stderr(beam_usage):
            options = PipelineOptions(beam_args)
            options.get_all_options()  # parses every value now, not when the run starts
            return beam.Pipeline(options=options)
    except (ValueError, SystemExit) as error:
        lines = beam_usage.getvalue().strip().splitlines()
        reason = lines[-1].split("error: ", 1)[-1] if lines else str(error)
        raise UsageError(
            f"--beam-pipeline-arg {beam_args!r} is not a valid set of Beam options ({reason}); "
            "see Beam's pipeline options."
        ) from None


def verdict_json(result: Any, model: str | None = None) -> dict[str, Any]:
    """The run's verdict for --json: what a CI step reads without walking every split.

    Args:
      result: The run's orchestration.ValidationResult.
      model: The --model checked, if any.

    Returns:
      verdict ("OK" or "BLOCKED"), blessed, gate (the stage it gates), problems
      (ERROR and WARNING findings over every split; one per problem), errors,
      warnings, blocked_splits, coverage (the sentence) and the unchecked
      feature names by role; model and model_sized_features (the checked
      features whose table size the model gave) when a model was checked.
    """
    from embedding_guard.verdict.report_model import UncheckedFeature

    reports = [report for _, report in sorted(result.reports.items())]
    return {
        "verdict": "OK" if result.blessed else "BLOCKED",
        "blessed": result.blessed,
        "gate": result.gate,
        "problems": sum(len(report.problems()) for report in reports),
        "errors": sum(report.num_errors for report in reports),
        "warnings": sum(report.num_warnings for report in reports),
        "blocked_splits": [report.split for report in reports if not report.blessed],
        "coverage": result.coverage,
        "checked_features": sorted({f.feature for report in reports for f in report.features}),
        "not_checked_features": [u.name for u in result.unchecked()],
        "excluded_features": [u.name for u in result.unchecked(UncheckedFeature.EXCLUDED)],
        "not_looked_up_features": [
            u.name for u in result.unchecked(UncheckedFeature.NOT_LOOKED_UP)
        ],
        "model": model,
        "model_sized_features": sorted(
            b.feature for b in result.bounds if b.embedding_dim_kind == "model"
        ),
    }


def run(args: argparse.Namespace) -> int:
    """Runs `check`; returns the exit code (0 clean, 1 blocked)."""
    from embedding_guard.bounds import schema_io
    from embedding_guard.read import files
    from embedding_guard.run import orchestration, output_folder
    from embedding_guard.run.options import CLI_FLAGS, ValidatorOptions

    args.offending_examples_limit = offending_flags.effective_limit(args)
    options = ValidatorOptions.from_cli_args(args)
    existing_folder("--examples", args.examples, "the examples artifact folder")
    if args.transform_graph:
        existing_folder(
            "--transform-graph", args.transform_graph, "Transform's transform_graph output"
        )
    schema = schema_io.read_schema(args.schema, "--schema") if args.schema else None
    if args.model:
        existing_folder("--model", args.model, "a SavedModel or a TFX Model artifact folder")
    if args.statistics is not None:
        existing_folder("--statistics", args.statistics, "a statistics artifact folder")
    if args.baseline_transform_graph is not None:
        existing_folder(
            "--baseline-transform-graph",
            args.baseline_transform_graph,
            "the transform_graph output an earlier model was trained with",
        )
    inputs = {
        "--examples": args.examples,
        "--transform-graph": args.transform_graph,
        "--schema": args.schema,
        "--model": args.model,
        "--statistics": args.statistics,
        "--baseline-transform-graph": args.baseline_transform_graph,
    }
    for flag, value in (("--junit-xml", args.junit_xml), ("--model", args.model)):
        # An empty path would be read as "not given" below and pass silently.
        if value == "":
            raise UsageError(f"{flag} '' is an empty path; pass a path or leave {flag} out.")
    if args.output:
        output_folder.check_apart_from_inputs(args.output, inputs, "--output")
    if args.junit_xml:
        if os.path.isdir(args.junit_xml):
            # Said first: a folder such as /tmp would otherwise "overlap" an input in it.
            raise UsageError(f"--junit-xml {args.junit_xml!r} is a folder; pass a file name.")
        # Not into --output either: it would replace one of this run's own reports.
        output_folder.check_apart_from_inputs(
            args.junit_xml, {**inputs, "--output": args.output}, "--junit-xml"
        )
        _check_file_writable("--junit-xml", args.junit_xml)
    all_split_uris = files.split_dirs(args.examples)
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
    offending_flags.check_target(args, inputs, splits)
    # What the run imports on its way (the graph and model wings, Beam to run a
    # pipeline), imported while the start-up pause lasts. TensorFlow comes when
    # the run needs it (a model, raw examples), through heavy_imports.
    if args.transform_graph:
        from embedding_guard.bounds import transform_graph  # noqa: F401
    if args.model:
        from embedding_guard.bounds import model_analysis  # noqa: F401
    if args.beam_pipeline_arg:
        from embedding_guard.run import beam_pipeline  # noqa: F401
    startup.imports_done()
    with output_folder.OutputFolder(args.output, splits, inputs, "--output") as output:
        output_dirs = output.split_dirs()
        with progress_on_tty(split_uris, sys.stderr):
            result = orchestration.validate(
                split_uris,
                output_dirs,
                options,
                transform_graph=args.transform_graph,
                schema=schema,
                model=args.model,
                pipeline=_beam_pipeline(args.beam_pipeline_arg),
                option_names=CLI_FLAGS,
                statistics=args.statistics,
                all_splits=list(all_split_uris),
                baseline_transform_graph=args.baseline_transform_graph,
            )
        examples_written = offending_flags.publish(args, output_dirs)
        output.publish()
    if args.junit_xml:
        from embedding_guard.reports import junit

        junit.write_junit_xml(result.reports.values(), args.junit_xml, "--junit-xml")
    if args.json:
        document: dict[str, Any] = {
            name: report.to_json() for name, report in result.reports.items()
        }
        document[VERDICT_JSON_KEY] = verdict_json(result, args.model)
        write_out(json.dumps(document, sort_keys=True, indent=2))
    else:
        # The verdict is the table's last line, so where the reports went comes first.
        if args.output:
            write_out(f"reports written under {printable(args.output)}")
        if examples_written:
            write_out(examples_written)
        write_out(report_table(result.reports))
    return EXIT_CLEAN if result.blessed else EXIT_BLOCKED
