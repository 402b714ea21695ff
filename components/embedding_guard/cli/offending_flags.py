"""`check`'s flags that name where offending values are and write the whole offending examples.

`check` writes files only when asked to: with `--output DIR` the offending
examples go beside the reports, under DIR/Split-<name>/offending_examples/;
`--offending-examples DIR` writes them under DIR/Split-<name>/offending_examples/
instead (with or without --output). Up to `--offending-examples-limit` (default
10; 0 writes none) per split and feature.
"""

from __future__ import annotations

import argparse
import os
import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

from embedding_guard.cli.usage import UsageError
from embedding_guard.reports.text import printable

DEFAULT_LIMIT = 10


def add_arguments(check: Any) -> None:
    """Adds --locator-feature, --offending-examples and --offending-examples-limit."""
    check.add_argument(
        "--locator-feature",
        metavar="FEATURE",
        help="a feature that identifies a record (a trip or user id); its value is shown "
        "with the shard and record where each offending value first occurs",
    )
    check.add_argument(
        "--offending-examples",
        metavar="DIR",
        help="write whole offending examples, as gzip TFRecords tf.data reads, under "
        "DIR/Split-<name>/offending_examples/<feature>.tfrecord.gz (default: beside the "
        "reports when --output is given, else none)",
    )
    check.add_argument(
        "--offending-examples-limit",
        type=int,
        metavar="N",
        help=f"most offending examples written per split and feature (default {DEFAULT_LIMIT}; "
        "0 writes none); at most 16 MiB of records each",
    )


def effective_limit(args: argparse.Namespace) -> int:
    """The offending examples to keep per split and feature: none when nothing is written."""
    if not (args.output or args.offending_examples):
        return 0
    limit = args.offending_examples_limit
    return DEFAULT_LIMIT if limit is None else limit


def check_target(
    args: argparse.Namespace, inputs: Mapping[str, str | None], splits: Sequence[str]
) -> None:
    """Makes the --offending-examples folder, or refuses it, before anything is read.

    Refused: empty text, a folder that overlaps an input, a file, a Split-<name>
    in it that is a link or a file, and a folder that cannot be made.
    """
    from embedding_guard.read import storage
    from embedding_guard.run import output_folder

    target = args.offending_examples
    if target is None:
        return
    if target == "":
        raise UsageError(
            "--offending-examples '' is an empty path; pass a folder or leave the flag out."
        )
    flag = "--offending-examples"
    output_folder.check_apart_from_inputs(target, inputs, flag)
    output_folder.check_split_entries(target, splits, flag)
    try:
        storage.makedirs(target)
    except OSError as error:
        raise UsageError(
            f"{flag} {target!r} cannot be made ({printable(storage.error_text(error))}); pass "
            "a writable folder."
        ) from None


def publish(args: argparse.Namespace, staged: Mapping[str, str]) -> str | None:
    """Copies the run's offending examples from its staged report folders to --offending-examples.

    Args:
      args: The parsed flags.
      staged: Split name -> the folder the run wrote the split's reports to.

    Returns:
      The lines (wrapped, printable) saying where the examples went, or None
      when none were written.
    """
    from embedding_guard.run import offending_examples

    if args.offending_examples:
        from embedding_guard.run import output_folder

        # Ctrl-C waits until every file is in place, as for --output's reports.
        with output_folder.signals_deferred():
            written = offending_examples.copy_split_examples(staged, args.offending_examples)
        where = args.offending_examples
    else:
        written = offending_examples.count_files(staged)
        where = args.output
    if not written:
        return None
    folder = os.path.join(where, "Split-<name>", offending_examples.OFFENDING_EXAMPLES_DIR)
    # As wide as the rest of the terminal report: a long path wraps.
    return "\n".join(
        textwrap.wrap(
            printable(f"{written} file(s) of offending examples written under {folder}"),
            width=100,
            subsequent_indent="  ",
            break_on_hyphens=False,
        )
    )
