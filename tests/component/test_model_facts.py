"""What each model lookup really does with a bad index, claimed and measured.

For tf_keras and Keras 3 `Embedding(12)` and `CategoryEncoding(num_tokens=12)`
(one_hot and multi_hot), and a raw `tf.gather` on a variable, the model analysis
claims an outcome for a negative value and for a value past the table (raises,
wraps, zero row) and whether an Assert guards the lookup. Each claim is then
checked against the real loaded serving signature, fed -1 and 12 on CPU.
"""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from model_builders import build_keras_lookup, build_raw_gather, serve

from embedding_guard.bounds.model_analysis import (
    METHOD_GRAPH,
    METHOD_GRAPH_AND_PROBE,
    ModelLookup,
    analyze_model,
    render_lookups,
)
from embedding_guard.verdict.lookup import Outcome

pytestmark = pytest.mark.slow

RAISES, WRAPS, ZERO_ROW = Outcome.RAISES, Outcome.WRAPS, Outcome.ZERO_ROW
TABLE = 12

# (model, on_negative, on_too_large, guarded), as measured on this stack
# (/tmp/research26/FACTS.md section 2).
CASES = {
    "tf_keras_embedding": (RAISES, RAISES, False),
    # tf_keras puts an Assert(0 <= x < num_tokens) beside the DenseBincount.
    "tf_keras_one_hot": (RAISES, RAISES, True),
    "tf_keras_multi_hot": (RAISES, RAISES, True),
    # Keras 3 wraps negatives: SelectV2(x < 0, x + n, x) before its GatherV2.
    "keras3_embedding": (WRAPS, RAISES, False),
    # Keras 3 one_hot is a bare OneHot, multi_hot a bare DenseBincount.
    "keras3_one_hot": (ZERO_ROW, ZERO_ROW, False),
    "keras3_multi_hot": (RAISES, ZERO_ROW, False),
    "raw_gather": (RAISES, RAISES, False),
}


@pytest.fixture(scope="session")
def lookup_models(tmp_path_factory) -> dict[str, str]:
    base = str(tmp_path_factory.mktemp("lookup_models"))
    paths = {"raw_gather": build_raw_gather(base, num_tokens=TABLE)}
    for flavor in ("tf_keras", "keras3"):
        for layer in ("embedding", "one_hot", "multi_hot"):
            paths[f"{flavor}_{layer}"] = build_keras_lookup(base, flavor, layer, num_tokens=TABLE)
    return paths


@pytest.fixture(scope="session")
def analysed(lookup_models):
    cache: dict[tuple[str, bool], ModelLookup] = {}

    def lookup(name: str, probe: bool) -> ModelLookup:
        if (name, probe) not in cache:
            (found,) = analyze_model(lookup_models[name], probe=probe).lookups
            cache[name, probe] = found
        return cache[name, probe]

    return lookup


def _real_outcome(path: str, value: int) -> Outcome:
    """What the loaded serving signature really does with one bad value on CPU."""
    with tf.device("/CPU:0"):
        try:
            (out,) = serve(path, x=np.array([[value]], np.int64)).values()
        except tf.errors.InvalidArgumentError:
            return RAISES
        if not out.any():
            return ZERO_ROW
        (wrapped,) = serve(path, x=np.array([[value + TABLE]], np.int64)).values()
    return WRAPS if np.array_equal(out, wrapped) else Outcome.UNKNOWN


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_graph_alone_says_what_the_lookup_does(analysed, name):
    lookup = analysed(name, probe=False)

    assert lookup.method == METHOD_GRAPH
    assert (lookup.on_negative, lookup.on_too_large, lookup.guarded) == CASES[name]
    assert lookup.table_size == TABLE
    assert not lookup.evidence.startswith("measured")


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_probe_measures_the_same_outcomes(analysed, name):
    lookup = analysed(name, probe=True)

    assert lookup.method == METHOD_GRAPH_AND_PROBE
    assert lookup.probed_table_size == TABLE
    assert (lookup.on_negative, lookup.on_too_large, lookup.guarded) == CASES[name]
    assert lookup.evidence.startswith("measured on CPU: -1 -> ")


@pytest.mark.parametrize("name", sorted(CASES))
def test_fact_the_real_signature_does_what_the_analysis_claims(lookup_models, analysed, name):
    lookup = analysed(name, probe=False)

    assert _real_outcome(lookup_models[name], -1) is lookup.on_negative
    assert _real_outcome(lookup_models[name], TABLE) is lookup.on_too_large


def test_fact_tf_keras_category_encoding_raises_from_its_assert(lookup_models, analysed):
    lookup = analysed("tf_keras_one_hot", probe=True)

    with pytest.raises(tf.errors.InvalidArgumentError, match=r"assertion failed.*num_tokens=12"):
        serve(lookup_models["tf_keras_one_hot"], x=np.array([[TABLE]], np.int64))
    assert "/cat/Assert/Assert" in lookup.evidence
    assert "12 -> InvalidArgumentError (assertion failed)" in lookup.evidence
    assert not lookup.silent
    # The Assert runs before the op on every device: no GPU zero row either.
    assert lookup.on_gpu(negative=False) is RAISES


def test_inspect_model_words_a_guarded_lookup_as_loud_on_cpu_and_gpu(lookup_models):
    text = render_lookups(analyze_model(lookup_models["tf_keras_one_hot"]))

    assert (
        "bad index: negative -> raises InvalidArgumentError (an Assert guards it; on GPU "
        "too); >= 12 -> raises InvalidArgumentError (an Assert guards it; on GPU too)"
    ) in text
    assert "SILENT" not in text and "silently" not in text.split("decided by")[0]


def test_inspect_model_words_an_unguarded_gather_apart_on_gpu(lookup_models):
    text = render_lookups(analyze_model(lookup_models["tf_keras_embedding"]))

    assert (
        ">= 12 -> raises InvalidArgumentError (on GPU it silently returns an all-zero row)"
    ) in text
