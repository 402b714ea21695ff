"""`embedding-guard inspect-model`: lists a trained model's embedding lookups and table sizes."""

from __future__ import annotations

import argparse
from typing import Any

from embedding_guard.cli import startup
from embedding_guard.cli.usage import EXIT_CLEAN, existing_folder
from embedding_guard.reports.text import printable, write_out


def add_parser(commands: Any) -> None:
    """Adds the `inspect-model` command to the command line's subparsers."""
    inspect_model = commands.add_parser(
        "inspect-model",
        help="list a trained model's embedding lookups and table sizes",
        description=(
            "Find every lookup of a SavedModel's serving signature (Keras Embedding and "
            "CategoryEncoding, tf.nn.embedding_lookup, tf.gather, tf.one_hot, feature "
            "columns), the feature that indexes it and the size of its table, and say how "
            "each size was found, and what the lookup does with a negative and a too large "
            "value on CPU and on GPU (raises, wraps, zero row), decided from the saved graph "
            "(an Assert guarding the lookup makes it raise everywhere) and measured on CPU "
            "where the signature takes the feature. Exit code 0: listed; 2: not a readable "
            "SavedModel."
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
        help=(
            "trace the graph only; do not call the model on CPU to confirm the sizes and "
            "what a bad index does"
        ),
    )
    inspect_model.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Runs `inspect-model`; returns the exit code."""
    from embedding_guard.bounds import model_analysis

    startup.imports_done()
    existing_folder("model", args.model, "a SavedModel or a TFX Model artifact folder")
    analysis = model_analysis.analyze_model(
        args.model, signature_name=args.signature, probe=not args.no_probe
    )
    rendered = model_analysis.render_lookups(analysis)
    write_out("\n".join(printable(line) for line in rendered.splitlines()))
    return EXIT_CLEAN
