"""Every lookup shape of TFT, TF1 and TF2, against TFT's own output (issue #26 item 5).

tft_graphs.built_lookup_shapes runs real tf.Transform once per TF mode over
LOOKUP_TRAIN_TOKENS and writes TFT's transformed train and eval rows, each with its
raw token. The expected tables (LOOKUP_SHAPES) follow from how each shape is built:
the file holds a, b, c, d, "e f"; vocab_size=1 keeps "a" only; store_frequency keys
are column 1 of "freq token" lines. Every number below is counted from the tokens
here, without the tool, and compared with what TFT produced and what `check` reports.
"""

import collections
import contextlib
import io
import json
import pathlib

import pytest
import tensorflow as tf
import tft_graphs

from embedding_guard.bounds import resolve as bounds
from embedding_guard.bounds import transform_graph
from embedding_guard.bounds.graph_analysis import DerivationKind
from embedding_guard.cli import main as cli

pytestmark = pytest.mark.slow

SHAPES = sorted(tft_graphs.LOOKUP_SHAPES)
SPLITS = {"train": tft_graphs.LOOKUP_TRAIN_TOKENS, "eval": tft_graphs.LOOKUP_EVAL_TOKENS}


@pytest.fixture(scope="session")
def lookup_shapes(tmp_path_factory):
    """Both TF modes' transform graphs and TFT's transformed rows: two TFT runs in all."""
    return tft_graphs.built_lookup_shapes(str(tmp_path_factory.mktemp("lookup_shapes")))


@pytest.fixture(scope="session")
def loaded(lookup_shapes):
    return {
        mode: transform_graph.load_transform_graph(paths["graph"])
        for mode, paths in lookup_shapes.items()
    }


def _table(shape: str) -> tuple[str, ...]:
    entries, _, _ = tft_graphs.LOOKUP_SHAPES[shape]
    return tft_graphs.LOOKUP_VOCABULARY[:entries]


def _expected_range(shape: str) -> tuple[int, int]:
    """[low, high) of every index the shape can give, from its table alone."""
    entries, buckets, default = tft_graphs.LOOKUP_SHAPES[shape]
    if buckets:
        return 0, entries + buckets
    return min(0, default), max(entries, default + 1)


def _tft_rows(examples: str, split: str) -> list[dict]:
    """TFT's transformed rows of a split: token -> its index under every shape."""
    rows = []
    split_dir = pathlib.Path(examples) / f"Split-{split}"
    for shard in sorted(split_dir.iterdir()):
        for record in tf.data.TFRecordDataset(str(shard), compression_type="GZIP"):
            features = tf.train.Example.FromString(record.numpy()).features.feature
            row = {
                name: feature.int64_list.value[0]
                for name, feature in features.items()
                if name != tft_graphs.LOOKUP_TOKEN
            }
            row[tft_graphs.LOOKUP_TOKEN] = (
                features[tft_graphs.LOOKUP_TOKEN].bytes_list.value[0].decode()
            )
            rows.append(row)
    return rows


@pytest.mark.parametrize("mode", ["tf1", "tf2"])
@pytest.mark.parametrize("shape", SHAPES)
def test_graph_reads_the_table_tft_used(lookup_shapes, loaded, mode, shape):
    entries, buckets, default = tft_graphs.LOOKUP_SHAPES[shape]
    derivation = loaded[mode].derivations[shape]
    assert derivation.kind is DerivationKind.VOCABULARY, derivation.detail
    assert derivation.raw_features == ("x",)
    assert (derivation.vocab_size, derivation.num_oov_buckets, derivation.default_value) == (
        entries,
        buckets,
        default,
    )
    low, high = _expected_range(shape)
    assert derivation.value_range == (low, high)
    resolved = bounds.resolve_bounds(
        loaded[mode].schema,
        loaded[mode].vocabulary_sizes,
        features=[shape],
        derivations=loaded[mode].derivations,
    )[0]
    assert (resolved.vocab_size, resolved.upper_bound, resolved.default_value) == (
        entries,
        high,
        default,
    )
    # TFT's own output: every token got what the table above gives it.
    table = _table(shape)
    seen = 0
    for split in SPLITS:
        for row in _tft_rows(lookup_shapes[mode]["examples"], split):
            token, index = row[tft_graphs.LOOKUP_TOKEN], row[shape]
            seen += 1
            if token in table:
                assert index == table.index(token), (split, token)
            elif buckets:
                assert entries <= index < entries + buckets, (split, token, index)
            else:
                assert index == default, (split, token, index)
    assert seen == len(SPLITS["train"]) + len(SPLITS["eval"])


def _run(args: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(args)
    return code, out.getvalue(), err.getvalue()


def _check(paths: dict[str, str], *extra: str) -> tuple[int, dict, str]:
    code, out, err = _run(
        [
            "check",
            "--transform-graph",
            paths["graph"],
            "--examples",
            paths["examples"],
            *extra,
            "--json",
        ]
    )
    assert out, f"exit {code}: {err[-3000:]}"
    return code, json.loads(out), err


@pytest.mark.parametrize("mode", ["tf1", "tf2"])
def test_check_counts_equal_an_independent_count(lookup_shapes, mode):
    _, reports, err = _check(lookup_shapes[mode])
    for split, tokens in SPLITS.items():
        features = {f["feature"]: f for f in reports[split]["features"]}
        assert sorted(features) == SHAPES, err
        for shape in SHAPES:
            entries, buckets, default = tft_graphs.LOOKUP_SHAPES[shape]
            counted = collections.Counter(t in _table(shape) for t in tokens)
            result = features[shape]
            b, counts = result["bounds"], result["counts"]
            assert (b["vocab_size"], b["upper_bound"], b["default_value"]) == (
                entries,
                _expected_range(shape)[1],
                default,
            ), (split, shape)
            assert counts["num_values"] == len(tokens)
            assert (counts["in_vocab"], counts["oov"]) == (counted[True], counted[False]), (
                split,
                shape,
                counts,
            )
            # A default is OOV whatever its value (-1, -3, -7 or 9), never an OOV bucket.
            if buckets:
                assert (counts["oov_bucket"], counts["at_default"]) == (counted[False], 0)
            else:
                assert (counts["oov_bucket"], counts["at_default"]) == (0, counted[False])


def test_lookup_fn_vocab_size_fails_max_oov_rate(lookup_shapes):
    """vocab_size=1 keeps "a" only: 14 of the 20 training tokens are OOV (buckets 1 and 2)."""
    oov = sum(t != "a" for t in tft_graphs.LOOKUP_TRAIN_TOKENS)
    assert (oov, len(tft_graphs.LOOKUP_TRAIN_TOKENS)) == (14, 20)
    common = ["--feature", "lookup_fn_vs1_oov2", "--split", "train"]
    code, reports, err = _check(lookup_shapes["tf2"], *common)
    assert code == 0, err
    code, reports, err = _check(
        lookup_shapes["tf2"], *common, "--max-oov-rate", "0.5", "--max-oov-rate-severity", "ERROR"
    )
    assert code == 1, err
    (feature,) = reports["train"]["features"]
    assert feature["bounds"]["upper_bound"] == 3
    assert (feature["counts"]["oov"], feature["counts"]["oov_rate"]) == (14, 0.7)
    errors = [(f["reason"], f["count"]) for f in feature["findings"] if f["severity"] == "ERROR"]
    assert errors == [("OOV_RATE_ABOVE_MAX", 14)]
    # TFT's schema takes lookup_fn's min from apply_vocabulary's own default_value, -1.
    reasons = {f["reason"] for f in feature["findings"]}
    assert reasons == {"OOV_RATE_ABOVE_MAX", "OOV_BUCKET_HITS", "SCHEMA_DOMAIN_MISMATCH"}


def test_store_frequency_oov_rise_is_reported(lookup_shapes):
    """Eval has 4 of 10 tokens outside the vocabulary (zzz, zzz, "", yyy); train has none."""
    _, reports, _ = _check(lookup_shapes["tf2"], "--feature", "store_frequency")
    (feature,) = reports["eval"]["features"]
    assert feature["counts"]["oov_rate"] == 0.4
    rises = [f for f in feature["findings"] if f["reason"] == "OOV_RATE_INCREASE"]
    assert [f["severity"] for f in rises] == ["WARNING"]


def test_default_past_the_table_is_worded_and_bounded(lookup_shapes):
    _, reports, _ = _check(lookup_shapes["tf1"], "--feature", "default_9", "--split", "eval")
    (feature,) = reports["eval"]["features"]
    assert feature["bounds"]["upper_bound"] == 10
    assert (
        "past the 5 entries, so the valid range is [0, 10)" in (feature["bounds"]["bound_source"])
    )
    assert feature["bounds"]["embedding_dim_source"] == (
        "default: default_value 9 + 1 read from the transform graph (unknown values are "
        "looked up at that row)"
    )
    (hits,) = [f for f in feature["findings"] if f["reason"] == "OOV_BUCKET_HITS"]
    assert "mapped to default_value 9" in hits["description"]
    assert "OOV bucket(s)" not in hits["description"]


def test_lookup_fn_schema_is_not_trusted(loaded):
    """lookup_fn with default -7: TFT's schema says min -1; the graph's -7 is what TFT gives."""
    domain = bounds.int_domain(loaded["tf2"].schema, "lookup_fn_dm7")
    assert domain.min == -1
    resolved = bounds.feature_bounds(
        "lookup_fn_dm7",
        loaded["tf2"].schema,
        loaded["tf2"].vocabulary_sizes,
        derivation=loaded["tf2"].derivations["lookup_fn_dm7"],
    )
    assert resolved.default_value == -7
    assert "[-7, 4]" in resolved.schema_disagreement
