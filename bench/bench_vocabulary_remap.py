"""What comparing two 100,000-token vocabularies adds to a run (issue #27: under 2 s).

Writes two vocabulary files of N tokens (the second one reordered, with 1% of its
tokens new), then times, in this process:

* reading both files as the lookup tables read them (remap_sources.tokens_of);
* building the comparison (VocabularyRemap: old row per current row, moved mask);
* shipping it to a Beam worker (pickle round trip of the bounds that carry it);
* counting remapped values of V values in batches of 50,000, and the result.

    .venv/bin/python bench/bench_vocabulary_remap.py [--tokens N] [--values V]
"""

from __future__ import annotations

import argparse
import os
import pickle  # noqa: TID251 - times shipping our own bounds, as Beam does.
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "components"))

from embedding_guard.bounds.graph_derivation import DerivationKind, FeatureDerivation  # noqa: E402
from embedding_guard.bounds.remap_sources import tokens_of  # noqa: E402
from embedding_guard.verdict import core  # noqa: E402
from embedding_guard.verdict.remap import RemapCounter, VocabularyRemap  # noqa: E402

BATCH = 50_000


def _vocabulary_file(folder: str, name: str, tokens: list[bytes]) -> FeatureDerivation:
    path = os.path.join(folder, name)
    with open(path, "wb") as f:
        f.write(b"\n".join(tokens) + b"\n")
    return FeatureDerivation(
        feature="x_xf",
        raw_features=("x",),
        kind=DerivationKind.VOCABULARY,
        vocabulary=name,
        vocabulary_file=path,
        file_format="text",
        vocab_size=len(tokens),
        num_oov_buckets=1,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=100_000)
    parser.add_argument("--values", type=int, default=1_000_000)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    old = [b"token_%07d" % i for i in range(args.tokens)]
    new = [old[i] for i in rng.permutation(args.tokens)]
    for i in range(args.tokens // 100):
        new[rng.integers(args.tokens)] = b"new_token_%07d" % i
    new = list(dict.fromkeys(new))
    timings = {}
    with tempfile.TemporaryDirectory() as folder:
        old_derivation = _vocabulary_file(folder, "old", old)
        new_derivation = _vocabulary_file(folder, "new", new)
        start = time.perf_counter()
        old_tokens, new_tokens = tokens_of(old_derivation), tokens_of(new_derivation)
        timings["read both vocabulary files"] = time.perf_counter() - start
    start = time.perf_counter()
    remap = VocabularyRemap("x_xf", old_tokens, new_tokens, "bench", 1, 1)
    timings["compare (old row per row, moved mask)"] = time.perf_counter() - start
    bounds = core.FeatureBounds(
        "x_xf", len(new_tokens) + 1, len(new_tokens) + 1, len(new_tokens), 1, remap=remap
    )
    start = time.perf_counter()
    shipped = pickle.loads(pickle.dumps(bounds))  # noqa: S301 - our own object.
    timings["pickle the bounds to a worker and back"] = time.perf_counter() - start
    values = rng.integers(0, len(new_tokens) + 1, size=args.values)
    counter = RemapCounter(shipped.remap)
    ones = np.ones(BATCH, dtype=np.int64)
    start = time.perf_counter()
    for begin in range(0, values.size, BATCH):
        batch = values[begin : begin + BATCH]
        counter.add(batch, ones[: batch.size])
    stats = counter.result()
    timings[f"count {args.values:,} values and build the result"] = time.perf_counter() - start
    print(
        f"{args.tokens:,} tokens, {len(new_tokens):,} now; {stats.tokens_moved:,} moved, "
        f"{stats.tokens_added:,} added; {stats.remapped_values:,} of {args.values:,} values remapped"
    )
    for what, seconds in timings.items():
        print(f"  {what:<48} {seconds:7.3f} s")
    print(f"  {'total':<48} {sum(timings.values()):7.3f} s")


if __name__ == "__main__":
    main()
