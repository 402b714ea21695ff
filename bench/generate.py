"""Generates (or finds cached) benchmark data; prints one JSON line describing it.

Usage: generate.py --data-dir DIR --sizes N [N ...] [--large-sizes N [N ...]]

run_bench.py runs this in its own process, so the parent never imports TensorFlow
and its memory stays out of the measurements.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import synthetic_data


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--sizes", type=int, nargs="*", required=True)
    parser.add_argument(
        "--large-sizes",
        type=int,
        nargs="*",
        default=[],
        help="also write this many examples of synthetic_data.LARGE_RECORD_BYTES each",
    )
    args = parser.parse_args(argv)
    # Imported up front so the first size's generation time leaves it out.
    import tensorflow  # noqa: F401

    graph = synthetic_data.write_transform_graph(os.path.join(args.data_dir, "transform_graph"))
    vocab_graph = synthetic_data.write_transform_graph(
        os.path.join(args.data_dir, "vocab_1m_graph"), (synthetic_data.VOCAB_FEATURE,), others=False
    )
    sizes = {}
    for n in args.sizes:
        started = time.perf_counter()
        sizes[str(n)] = synthetic_data.write_examples(args.data_dir, n)
        sizes[str(n)]["generated_s"] = time.perf_counter() - started
        print(f"N={n}: {sizes[str(n)]['generated_s']:.1f} s", file=sys.stderr, flush=True)
    large_sizes = {}
    for n in args.large_sizes:
        started = time.perf_counter()
        large_sizes[str(n)] = synthetic_data.write_large_examples(args.data_dir, n)
        large_sizes[str(n)]["generated_s"] = time.perf_counter() - started
        print(f"large N={n}: {large_sizes[str(n)]['generated_s']:.1f} s", file=sys.stderr)
    print(
        json.dumps(
            {
                "transform_graph": graph["transform_graph"],
                "schema": graph["schema"],
                "vocab_graph": vocab_graph["transform_graph"],
                "sizes": sizes,
                "large_sizes": large_sizes,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
