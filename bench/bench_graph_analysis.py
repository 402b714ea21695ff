"""How long the transform-graph analysis takes on a graph with 100 vocabulary features.

Usage: bench_graph_analysis.py [--features 100] [--work DIR] [--repeats 3]

Builds (once, cached in --work) a Transform output whose preprocessing_fn calls
`tft.compute_and_apply_vocabulary` on each of N string features (every third with
OOV buckets, every fifth with a `vocab_filename`), in TF1 and TF2 form, through
TFT's Beam API on 20 rows. Then times `transform_graph.load_transform_graph`, which
parses the SavedModel, walks the graph for every output and counts every
vocabulary file, and prints the best of --repeats runs per graph. The target is
under 2 s for 100 features.

Measured on the shared 2-core machine (2026-12-01): TF1 graph best 0.162 s, TF2
graph best 0.273 s, 100 of 100 lookups traced each. Building the two graphs with
TFT took 423 s and 224 s; the cache in --work makes later runs time only the
analysis.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

ROWS = 20


def _preprocessing_fn(num_features: int):
    def preprocessing_fn(inputs):
        import tensorflow_transform as tft

        outputs = {}
        for i in range(num_features):
            outputs[f"f{i:03d}_xf"] = tft.compute_and_apply_vocabulary(
                inputs[f"f{i:03d}"],
                num_oov_buckets=i % 3,
                vocab_filename=f"named_{i:03d}" if i % 5 == 0 else None,
            )
        return outputs

    return preprocessing_fn


def _build(work: str, num_features: int, tf1: bool) -> str:
    import tensorflow as tf

    output_dir = os.path.join(work, f"graph_{num_features}_{'tf1' if tf1 else 'tf2'}")
    if os.path.exists(os.path.join(output_dir, "transform_fn", "saved_model.pb")):
        return output_dir
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "component"))
    import tft_graphs  # noqa: PLC0415 - the tests' TFT runner, reused.

    spec = {f"f{i:03d}": tf.io.FixedLenFeature([], tf.string) for i in range(num_features)}
    rows = [
        {name: f"v{(row * (j + 1)) % (7 + j % 11)}".encode() for j, name in enumerate(spec)}
        for row in range(ROWS)
    ]
    tft_graphs.build_transform_output(
        _preprocessing_fn(num_features), spec, rows, output_dir, tf1=tf1
    )
    return output_dir


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--features", type=int, default=100)
    parser.add_argument(
        "--work",
        default=os.path.join(tempfile.gettempdir(), "embedding_guard_bench_graph"),
        help="cache of the built graphs (building 100 features with TFT takes minutes)",
    )
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    os.makedirs(args.work, exist_ok=True)

    from embedding_guard.bounds import transform_graph

    for tf1 in (True, False):
        started = time.perf_counter()
        graph = _build(args.work, args.features, tf1)
        build_s = time.perf_counter() - started
        times = []
        for _ in range(args.repeats):
            started = time.perf_counter()
            info = transform_graph.load_transform_graph(graph)
            times.append(time.perf_counter() - started)
        vocabularies = sum(1 for d in info.derivations.values() if d.kind.value == "vocabulary")
        print(
            f"{'TF1' if tf1 else 'TF2'} graph, {args.features} features: "
            f"{vocabularies} vocabulary lookups traced; analysis best {min(times):.3f} s, "
            f"worst {max(times):.3f} s over {args.repeats} runs (graph build {build_s:.1f} s)"
        )
        if vocabularies != args.features:
            print(f"  ERROR: expected {args.features} vocabulary lookups")
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
