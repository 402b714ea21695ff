"""Bounds read from the transform graph itself, on TF1 and TF2 graphs and TFX's own data.

The TF1/TF2 graphs come from tft_graphs.preprocessing_fn, run through TFT once per
session; the expected numbers there follow from its 12 rows. The taxi numbers are
checked against an independent decode of TFX's shipped files.
"""

import collections
import contextlib
import io
import json
import os
import pathlib
import shutil
import subprocess
import sys

import pytest
import tensorflow as tf
import tft_graphs
import tfx

from embedding_guard.bounds import graph_analysis, transform_graph
from embedding_guard.bounds import resolve as bounds
from embedding_guard.bounds.graph_analysis import DerivationKind
from embedding_guard.cli import main as cli
from embedding_guard.run import validation

TFX_DIR = pathlib.Path(tfx.__file__).parent
TAXI = TFX_DIR / "components" / "testdata" / "transform"
TAXI_RAW = TFX_DIR / "components" / "testdata" / "csv_example_gen"
TESTDATA = pathlib.Path(__file__).parent / "testdata"
COMPANY_VOCAB = "vocab_compute_and_apply_vocabulary_1_vocabulary"
PAYMENT_VOCAB = "vocab_compute_and_apply_vocabulary_vocabulary"
TAXI_VOCABULARIES = {
    "company_xf": (COMPANY_VOCAB, 53, 10),
    "payment_type_xf": (PAYMENT_VOCAB, 6, 10),
}


@pytest.fixture(scope="session")
def graphs(tmp_path_factory):
    return tft_graphs.built_graphs(str(tmp_path_factory.mktemp("tft_graphs")))


@pytest.fixture(scope="session", params=["tf1", "tf2"])
def derivations(request, graphs):
    return transform_graph.load_transform_graph(graphs[request.param]).derivations


@pytest.mark.parametrize("feature", sorted(tft_graphs.EXPECTED_VOCABULARY))
def test_vocabulary_lookups(derivations, feature):
    raw, vocab_size, num_oov_buckets, default, offset = tft_graphs.EXPECTED_VOCABULARY[feature]
    derivation = derivations[feature]
    assert derivation.kind is DerivationKind.VOCABULARY
    assert derivation.raw_features == raw
    assert derivation.vocab_size == vocab_size
    assert derivation.num_oov_buckets == num_oov_buckets
    assert derivation.default_value == default
    assert derivation.offset == offset
    expected_format = "tfrecord_gzip" if feature == "payment_gz_xf" else "text"
    assert derivation.file_format == expected_format
    assert pathlib.Path(derivation.vocabulary_file).is_file()


def test_named_and_shared_vocabularies(derivations):
    for feature, name in tft_graphs.NAMED_VOCABULARY.items():
        assert derivations[feature].vocabulary == name
    # One tft.vocabulary applied twice: one file, two lookups with their own OOV setup.
    assert (
        derivations["home_city_xf"].vocabulary_file == derivations["work_city_xf"].vocabulary_file
    )
    # Default names are TFT's, linked by the graph although no name says so.
    defaults = {derivations[f].vocabulary for f in ("company_xf", "payment_xf", "user_id_xf")}
    assert len(defaults) == 3
    assert all(name.startswith("vocab_compute_and_apply_vocabulary") for name in defaults)


def test_value_ranges_include_the_default(derivations):
    assert derivations["payment_xf"].value_range == (-1, 3)
    # default_value=7 lies past the 5-entry vocabulary: the graph can produce 7.
    assert derivations["work_city_xf"].value_range == (0, 8)
    assert derivations["company_plus_one_xf"].value_range == (1, 9)


BUCKETED = {
    DerivationKind.HASH: tft_graphs.EXPECTED_HASH,
    DerivationKind.BUCKETIZE: tft_graphs.EXPECTED_BUCKETS,
}


@pytest.mark.parametrize(
    ("kind", "feature"),
    [(kind, feature) for kind, expected in BUCKETED.items() for feature in sorted(expected)],
)
def test_hash_buckets_and_bucketize(derivations, kind, feature):
    raw, num_buckets = BUCKETED[kind][feature]
    derivation = derivations[feature]
    assert (derivation.kind, derivation.raw_features, derivation.num_buckets) == (
        kind,
        raw,
        num_buckets,
    )


def test_passthrough_and_not_traced(derivations):
    hour = derivations["hour_xf"]
    assert (hour.kind, hour.raw_features) == (DerivationKind.PASSTHROUGH, ("hour",))
    assert "no bound" in hour.describe()
    times_two = derivations["company_times_two_xf"]
    assert (times_two.kind, times_two.raw_features) == (DerivationKind.NOT_TRACED, ("company",))
    assert "Mul" in times_two.detail


def test_bounds_come_from_the_graph(graphs):
    graph = transform_graph.load_transform_graph(graphs["tf2"])
    resolved = {
        b.feature: b
        for b in bounds.resolve_bounds(
            graph.schema,
            graph.vocabulary_sizes,
            derivations=graph.derivations,
            embedding_input_dims={"company_times_two_xf": 20},
        )
    }
    company = resolved["company_xf"]
    assert (company.vocab_size, company.num_oov_buckets, company.upper_bound) == (6, 3, 9)
    assert company.bound_kind == "vocabulary"
    assert company.raw_feature == "company"
    assert company.bound_source.startswith(
        f"vocabulary {company.vocabulary!r} (6 entries) + 3 OOV bucket(s), from the lookup "
        "table that produces company_xf in the transform graph"
    )
    plus_one = resolved["company_plus_one_xf"]
    # Offset: no in_vocab/OOV labels, the range is shifted.
    assert (plus_one.vocab_size, plus_one.upper_bound) == (None, 9)
    assert resolved["company_hash_xf"].upper_bound == 17
    assert resolved["score_bucket_xf"].upper_bound == 4
    assert resolved["payment_xf"].default_value == -1
    assert "hour_xf" not in resolved
    unchecked = {
        u.name: u
        for u in bounds.unchecked_features(graph.schema, resolved.values(), graph.derivations)
    }
    assert set(unchecked) == {"hour_xf"}
    assert "embedding_input_dims" in unchecked["hour_xf"].parameter_that_would_check_it


def test_schema_disagreement_is_recorded(graphs, tmp_path):
    copy = tmp_path / "graph"
    shutil.copytree(graphs["tf1"], copy)
    schema_path = copy / "transformed_metadata" / "schema.pbtxt"
    schema = transform_graph._read_schema(str(schema_path), "schema")  # noqa: SLF001
    domain = bounds.int_domain(schema, "company_xf")
    assert (domain.min, domain.max) == (0, 8)
    domain.max = 5
    from google.protobuf import text_format

    schema_path.write_text(text_format.MessageToString(schema))
    graph = transform_graph.load_transform_graph(str(copy))
    company = bounds.feature_bounds(
        "company_xf",
        graph.schema,
        graph.vocabulary_sizes,
        derivation=graph.derivations["company_xf"],
    )
    assert company.upper_bound == 9
    assert "[0, 8]" in company.schema_disagreement and "[0, 5]" in company.schema_disagreement


# --- TFX's shipped taxi Transform output --------------------------------------------------


@pytest.fixture(scope="module")
def taxi_expected():
    """Independent counts per split of the taxi vocabulary features (one decode)."""
    expected = {}
    for split in ("train", "eval"):
        counts = {f: collections.Counter() for f in TAXI_VOCABULARIES}
        for shard in sorted((TAXI / "transformed_examples" / f"Split-{split}").iterdir()):
            for record in tf.data.TFRecordDataset(str(shard), compression_type="GZIP"):
                example = tf.train.Example.FromString(record.numpy())
                for feature, (_, size, oov) in TAXI_VOCABULARIES.items():
                    for value in example.features.feature[feature].int64_list.value:
                        counts[feature]["num_values"] += 1
                        counts[feature]["in_vocab"] += 0 <= value < size
                        counts[feature]["oov_bucket"] += size <= value < size + oov
                        counts[feature]["out_of_range"] += value >= size + oov or value < 0
        expected[split] = counts
    return expected


def _run(args):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(args)
    return code, out.getvalue(), err.getvalue()


def _features(report):
    return {f["feature"]: f for f in report["features"]}


@pytest.fixture(scope="module")
def taxi_zero_config():
    code, out, _ = _run(
        [
            "check",
            "--transform-graph",
            str(TAXI / "transform_graph"),
            "--examples",
            str(TAXI / "transformed_examples"),
            "--json",
        ]
    )
    return code, json.loads(out)


def test_taxi_graph_derivations():
    derivations = transform_graph.load_transform_graph(str(TAXI / "transform_graph")).derivations
    for feature, (name, size, oov) in TAXI_VOCABULARIES.items():
        d = derivations[feature]
        assert (d.kind, d.vocabulary, d.vocab_size, d.num_oov_buckets) == (
            DerivationKind.VOCABULARY,
            name,
            size,
            oov,
        )
    assert derivations["company_xf"].raw_features == ("company",)
    assert derivations["payment_type_xf"].raw_features == ("payment_type",)
    for feature in ("pickup_latitude_xf", "dropoff_longitude_xf"):
        assert (derivations[feature].kind, derivations[feature].num_buckets) == (
            DerivationKind.BUCKETIZE,
            10,
        )
    for feature in ("trip_start_hour_xf", "trip_start_month_xf"):
        assert derivations[feature].kind is DerivationKind.PASSTHROUGH


def test_taxi_zero_configuration_links_vocabularies(taxi_zero_config, taxi_expected):
    code, reports = taxi_zero_config
    assert code == 0
    for split in ("train", "eval"):
        features = _features(reports[split])
        for feature, (name, size, oov) in TAXI_VOCABULARIES.items():
            b = features[feature]["bounds"]
            assert (b["vocabulary"], b["vocab_size"], b["num_oov_buckets"], b["upper_bound"]) == (
                name,
                size,
                oov,
                size + oov,
            )
            assert b["bound_kind"] == "vocabulary"
            counts = features[feature]["counts"]
            for key in ("num_values", "in_vocab", "oov_bucket", "out_of_range"):
                assert counts[key] == taxi_expected[split][feature][key], (split, feature, key)
    company = _features(reports["eval"])["company_xf"]["bounds"]["bound_source"]
    assert company.startswith(
        f"vocabulary {COMPANY_VOCAB!r} (53 entries) + 10 OOV bucket(s), from the lookup table "
        "that produces company_xf in the transform graph"
    )
    assert taxi_expected["eval"]["company_xf"]["oov_bucket"] == 1787


def test_taxi_unchecked_passthrough_features_are_listed():
    graph = transform_graph.load_transform_graph(str(TAXI / "transform_graph"))
    plan = validation.plan(
        validation.list_split_shards(reader_split_uris(TAXI / "transformed_examples")),
        graph.schema,
        graph=graph,
    )
    unchecked = {u.name: u for u in plan.unchecked}
    assert {"trip_start_hour_xf", "trip_start_month_xf", "trip_start_day_xf"} <= set(unchecked)
    assert "company_xf" not in unchecked
    hour = unchecked["trip_start_hour_xf"]
    assert hour.raw_features == ("trip_start_hour",)
    assert hour.why.startswith("trip_start_hour_xf passes raw 'trip_start_hour'")
    assert "embedding_input_dims={'trip_start_hour_xf': N}" in hour.parameter_that_would_check_it


def reader_split_uris(examples):
    from embedding_guard.read import files

    return files.split_dirs(str(examples))


def test_feature_vocabularies_override_the_graph():
    graph = transform_graph.load_transform_graph(str(TAXI / "transform_graph"))
    company = bounds.resolve_bounds(
        graph.schema,
        graph.vocabulary_sizes,
        features=["company_xf"],
        feature_vocabularies={"company_xf": PAYMENT_VOCAB},
        derivations=graph.derivations,
    )[0]
    assert (company.vocabulary, company.vocab_size, company.num_oov_buckets) == (
        PAYMENT_VOCAB,
        6,
        57,
    )
    assert company.bound_kind == "feature_vocabularies"


def test_trainer_helpers():
    dims = transform_graph.embedding_input_dims(str(TAXI / "transform_graph"))
    assert dims["company_xf"] == 63 and dims["payment_type_xf"] == 16
    assert dims["pickup_latitude_xf"] == 10
    assert transform_graph.embedding_input_dim(str(TAXI / "transform_graph"), "company_xf") == 63
    with pytest.raises(bounds.BoundsError, match=r"embedding_input_dim\(feature='nope'\)"):
        transform_graph.embedding_input_dim(str(TAXI / "transform_graph"), "nope")
    with pytest.raises(transform_graph.TransformGraphError, match=r"tf_transform_output="):
        transform_graph.embedding_input_dims(42)


def test_taxi_raw_mode_equals_transformed_mode(taxi_zero_config):
    _, transformed = taxi_zero_config
    code, out, err = _run(
        [
            "check",
            "--transform-graph",
            str(TAXI / "transform_graph"),
            "--examples",
            str(TAXI_RAW),
            "--json",
        ]
    )
    assert code == 0, err
    raw = json.loads(out)
    # "_verdict" is the run's verdict beside the splits.
    assert sorted(raw) == ["_verdict", "eval", "train"]
    # Locations name other shards, and raw mode locates OOV raw values too
    # (test_raw_mode compares the records they point at).
    raw_only = {
        "raw_values_checked",
        "raw_empty_or_missing",
        "top_raw_oov_values",
        "sample_locations",
    }
    for split in ("train", "eval"):
        raw_features, transformed_features = _features(raw[split]), _features(transformed[split])
        assert sorted(raw_features) == sorted(transformed_features)
        for name, feature in raw_features.items():
            raw_counts = {k: v for k, v in feature["counts"].items() if k not in raw_only}
            counts = {
                k: v for k, v in transformed_features[name]["counts"].items() if k not in raw_only
            }
            assert raw_counts == counts, (split, name)
    company = _features(raw["eval"])["company_xf"]["counts"]
    assert company["raw_values_checked"] is True
    assert company["top_raw_oov_values"], "raw companies behind the OOV buckets"
    assert all(isinstance(v["value"], str) for v in company["top_raw_oov_values"])


def _serialized_rows(rows) -> list[bytes]:
    def feature(values):
        if isinstance(values[0], int):
            return tf.train.Feature(int64_list=tf.train.Int64List(value=values))
        if isinstance(values[0], float):
            return tf.train.Feature(float_list=tf.train.FloatList(value=values))
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[v.encode() for v in values]))

    def example(row):
        lists = {k: v if isinstance(v, list) else [v] for k, v in row.items()}
        # An empty list is a feature the row does not have.
        return {k: feature(v) for k, v in lists.items() if v}

    return [
        tf.train.Example(features=tf.train.Features(feature=example(row))).SerializeToString()
        for row in rows
    ]


@pytest.mark.parametrize("kind", ["tf1", "tf2"])
def test_raw_batches_of_any_shape_get_what_tft_gives_from_one_trace(graphs, kind, monkeypatch):
    import tensorflow_transform as tft
    from tensorflow_transform import output_wrapper

    from embedding_guard.run import raw_mode

    graph = graphs[kind]
    features = ["tags_xf", "color_xf", "company_xf", "user_id_xf"]
    transformer = raw_mode.RawExamplesTransformer(
        graph, features, {}, needed_raw_features=set(tft_graphs.RAW_FEATURE_SPEC)
    )
    calls = []
    layer_call = output_wrapper.TransformFeaturesLayer.call

    # Keras reads call's signature: the spy keeps it.
    def counted_call(self, inputs):
        calls.append(1)
        return layer_call(self, inputs)

    monkeypatch.setattr(output_wrapper.TransformFeaturesLayer, "call", counted_call)

    # Every batch in one graph (parse, apply, flatten): the step-by-step path is
    # only for naming what failed.
    def no_apart(self, serialized, num_examples):
        raise AssertionError("a batch left the one-graph path")

    monkeypatch.setattr(raw_mode.RawExamplesTransformer, "_apart", no_apart)
    rows = tft_graphs.ROWS
    # One tag, then two (a VarLenFeature's dense shape grows), a row without tags
    # or colours, two colours, then all 12 rows.
    batches = [rows[0:1], rows[1:2], rows[2:3], rows[4:5], rows]
    got = [transformer(tf.constant(_serialized_rows(batch))) for batch in batches]
    traced = len(calls)

    output = tft.TFTransformOutput(graph)
    layer = output.transform_features_layer()
    spec = output.raw_feature_spec()
    for batch, result in zip(batches, got, strict=True):
        expected = layer(tf.io.parse_example(tf.constant(_serialized_rows(batch)), spec))
        for name in features:
            values, lengths = raw_mode._column(expected[name])
            assert result.columns[name][0].tolist() == values.tolist(), (name, batch)
            assert result.columns[name][1].tolist() == lengths.tolist(), (name, batch)
    assert traced == 1


# --- Issue 11: hostile transform graphs ------------------------------------------------


def _graph_copy(tmp_path, source=TAXI / "transform_graph"):
    copy = tmp_path / "transform_graph"
    shutil.copytree(source, copy)
    return copy


def test_empty_asset_map_keeps_vocabularies(tmp_path):
    copy = _graph_copy(tmp_path)
    (copy / "transformed_metadata" / "asset_map").write_text("{}")
    graph = transform_graph.load_transform_graph(str(copy))
    assert sorted(graph.vocabulary_sizes) == sorted([COMPANY_VOCAB, PAYMENT_VOCAB])
    assert graph.vocabulary_sizes[COMPANY_VOCAB] == 53
    assert graph.derivations["company_xf"].vocabulary == COMPANY_VOCAB


def test_crlf_vocabulary_with_a_repeated_entry_is_what_tensorflow_rejects(tmp_path):
    copy = _graph_copy(tmp_path, TESTDATA / "transform_graph")
    vocabulary = copy / "transform_fn" / "assets" / "city"
    entries = vocabulary.read_bytes().split(b"\n")[:-1]
    vocabulary.write_bytes(b"".join(e + b"\r\n" for e in entries) + entries[0] + b"\n")
    with pytest.raises(graph_analysis.GraphAnalysisError, match="twice"):
        transform_graph.load_transform_graph(str(copy))
    # TensorFlow reads the same file the same way: the table cannot be built.
    initializer = tf.lookup.TextFileInitializer(str(vocabulary), tf.string, -2, tf.int64, -1)
    with pytest.raises(tf.errors.FailedPreconditionError, match="same key"):
        tf.lookup.StaticHashTable(initializer, -1)


def test_crlf_vocabulary_counts_as_tensorflow_reads_it(tmp_path):
    copy = _graph_copy(tmp_path, TESTDATA / "transform_graph")
    vocabulary = copy / "transform_fn" / "assets" / "city"
    entries = vocabulary.read_bytes().split(b"\n")[:-1]
    vocabulary.write_bytes(b"".join(e + b"\r\n" for e in entries))
    assert graph_analysis.vocabulary_entries(str(vocabulary), "text") == entries


def _split(root, name, records):
    folder = root / f"Split-{name}"
    folder.mkdir(parents=True)
    with tf.io.TFRecordWriter(str(folder / "data.gz"), options="GZIP") as writer:
        for record in records:
            writer.write(record)


def _records(split):
    shard = TESTDATA / "raw_examples" / f"Split-{split}" / "data_tfrecord-00000-of-00001.gz"
    return [r.numpy() for r in tf.data.TFRecordDataset(str(shard), compression_type="GZIP")]


def test_raw_features_are_decided_per_split_not_from_the_first(tmp_path):
    examples = tmp_path / "examples"
    _split(examples, "train", _records("train"))
    # The eval rows carry no label, like a serving log; "train" sorts first.
    serving = _records("eval")
    assert all("clicked" not in tf.train.Example.FromString(r).features.feature for r in serving)
    assert "clicked" in tf.train.Example.FromString(_records("train")[0]).features.feature
    _split(examples, "zserving", serving)
    args = ["check", "--transform-graph", str(TESTDATA / "transform_graph")]
    code, out, err = _run(
        [*args, "--examples", str(examples), "--embedding-dim", "month_xf=12", "--json"]
    )
    assert code in (0, 1), err
    reports = json.loads(out)
    assert _features(reports["zserving"])["city_xf"]["counts"]["num_examples"] == len(serving)


def _assert_one_line_input_error(args):
    code, _, err = _run(args)
    assert code == 2, err
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert "Traceback" not in err
    assert len(lines) == 1, err
    return lines[0]


@pytest.mark.parametrize(
    "damage, expected",
    [
        ("schema_not_utf8", "not UTF-8"),
        ("schema_folder", "is a folder"),
        ("raw_schema_garbage", "raw schema"),
        ("asset_map_list", "must be a JSON object"),
        ("asset_map_null", "must be a JSON object"),
        ("asset_map_numbers", "must be a JSON object"),
    ],
)
def test_damaged_transform_graph_is_one_line_error(tmp_path, damage, expected):
    copy = _graph_copy(tmp_path, TESTDATA / "transform_graph")
    schema = copy / "transformed_metadata" / "schema.pbtxt"
    asset_map = copy / "transformed_metadata" / "asset_map"
    if damage == "schema_not_utf8":
        schema.write_bytes(b"\xff\xfe\x00garbage")
    elif damage == "schema_folder":
        schema.unlink()
        schema.mkdir()
    elif damage == "raw_schema_garbage":
        (copy / "metadata" / "schema.pbtxt").write_text("{{{")
    elif damage == "asset_map_list":
        asset_map.write_text('["city"]')
    elif damage == "asset_map_null":
        asset_map.write_text("null")
    elif damage == "asset_map_numbers":
        asset_map.write_text('{"city": 3}')
    line = _assert_one_line_input_error(
        ["check", "--transform-graph", str(copy), "--examples", str(TESTDATA / "raw_examples")]
    )
    assert expected in line


@pytest.mark.parametrize("missing", ["saved_model.pb", "variables"])
def test_raw_mode_without_saved_model_or_variables_is_one_line_error(tmp_path, missing):
    copy = _graph_copy(tmp_path, TESTDATA / "transform_graph")
    target = copy / "transform_fn" / missing
    shutil.rmtree(target) if target.is_dir() else target.unlink()
    line = _assert_one_line_input_error(
        [
            "check",
            "--transform-graph",
            str(copy),
            "--examples",
            str(TESTDATA / "raw_examples"),
            "--examples-kind",
            "raw",
            "--embedding-dim",
            "month_xf=12",
        ]
    )
    assert missing in line and "cannot be applied" in line


def test_raw_record_that_is_not_utf8_clean_is_one_line_error(tmp_path):
    examples = tmp_path / "examples"
    records = _records("train")
    _split(examples, "train", [*records, b"\n\xff\xfe\xfdnot an example\xff"])
    line = _assert_one_line_input_error(
        [
            "check",
            "--transform-graph",
            str(TESTDATA / "transform_graph"),
            "--examples",
            str(examples),
            "--embedding-dim",
            "month_xf=12",
        ]
    )
    assert "Raw examples" in line


# --- TFX's own taxi preprocessing_fn, run through TFT on TFX's data.csv --------------------


@pytest.fixture(scope="session")
def taxi_tft(tmp_path_factory):
    return tft_graphs.built_taxi_graph(str(tmp_path_factory.mktemp("taxi_tft")))


def _independent_vocabulary_counts(examples, vocabulary_file, raw_feature, num_oov_buckets):
    """Decodes the raw examples and the vocabulary file without the tool or TFT."""
    entries = pathlib.Path(vocabulary_file).read_bytes().split(b"\n")
    entries = {entry: i for i, entry in enumerate(e for e in entries if e)}
    counts = {}
    for split_dir in sorted(pathlib.Path(examples).iterdir()):
        split = collections.Counter()
        for shard in split_dir.iterdir():
            for record in tf.data.TFRecordDataset(str(shard), compression_type="GZIP"):
                example = tf.train.Example.FromString(record.numpy())
                values = example.features.feature[raw_feature].bytes_list.value
                # taxi's _fill_in_missing looks a missing value up as b"".
                key = values[0] if values else b""
                split["num_values"] += 1
                split["in_vocab" if key in entries else "oov_bucket"] += 1
        counts[split_dir.name.removeprefix("Split-")] = split
    assert num_oov_buckets > 0
    return counts, len(entries)


def test_taxi_preprocessing_fn_with_zero_configuration(taxi_tft):
    graph = transform_graph.load_transform_graph(taxi_tft["graph"])
    code, out, err = _run(
        [
            "check",
            "--transform-graph",
            taxi_tft["graph"],
            "--examples",
            taxi_tft["examples"],
            "--json",
        ]
    )
    assert code == 0, err
    reports = json.loads(out)
    for feature, raw_feature in (("company_xf", "company"), ("payment_type_xf", "payment_type")):
        derivation = graph.derivations[feature]
        assert derivation.raw_features == (raw_feature,)
        assert derivation.num_oov_buckets == 10  # taxi_utils_native_keras._OOV_SIZE
        expected, vocab_size = _independent_vocabulary_counts(
            taxi_tft["examples"], derivation.vocabulary_file, raw_feature, 10
        )
        assert derivation.vocab_size == vocab_size
        for split in ("train", "eval"):
            result = _features(reports[split])[feature]
            assert result["bounds"]["vocab_size"] == vocab_size
            assert result["bounds"]["upper_bound"] == vocab_size + 10
            for key in ("num_values", "in_vocab", "oov_bucket"):
                assert result["counts"][key] == expected[split][key], (feature, split, key)
    assert expected["train"]["num_values"] == 10_000
    company = _features(reports["train"])["company_xf"]["counts"]
    assert company["oov_bucket"] > 0
    assert company["top_raw_oov_values"] == [{"value": "", "count": company["oov_bucket"]}]
    for feature in ("pickup_latitude_xf", "dropoff_longitude_xf"):
        assert _features(reports["eval"])[feature]["bounds"]["upper_bound"] == 10


# --- Issue 30: the graph read without TensorFlow ---------------------------------------

GRAPH_SOURCES = {"testdata": TESTDATA / "transform_graph", "tfx_taxi": TAXI / "transform_graph"}
HEAVY_MODULES = ("tensorflow", "tensorflow_transform", "keras", "tf_keras", "apache_beam")


def _tensorflow_read_saved_model(transform_fn_dir):
    """read_saved_model as it was: TensorFlow's own SavedModel proto."""
    from tensorflow.core.protobuf import saved_model_pb2

    with open(pathlib.Path(transform_fn_dir) / graph_analysis.SAVED_MODEL_FILE, "rb") as f:
        return saved_model_pb2.SavedModel.FromString(f.read())


def _bounds_per_feature(uri):
    graph = transform_graph.load_transform_graph(str(uri))
    resolved = bounds.resolve_bounds(
        graph.schema, graph.vocabulary_sizes, derivations=graph.derivations
    )
    return dict(graph.derivations), {b.feature: b for b in resolved}


@pytest.mark.parametrize("source", ["testdata", "tfx_taxi", "tf1", "tf2"])
def test_analysis_of_tensorflow_s_protos_equals_the_tensorflow_free_one(
    source, graphs, monkeypatch
):
    uri = GRAPH_SOURCES[source] if source in GRAPH_SOURCES else graphs[source]
    ours = _bounds_per_feature(uri)
    read = []

    def tensorflow_reader(transform_fn_dir):
        read.append(transform_fn_dir)
        return _tensorflow_read_saved_model(transform_fn_dir)

    # TensorFlow's MetaGraphDef through the same tracer, as model code hands it over.
    monkeypatch.setattr(graph_analysis, "read_saved_model", tensorflow_reader)
    reference = _bounds_per_feature(uri)

    assert read
    assert ours == reference
    assert ours[1]


def test_analysing_a_transform_graph_imports_no_tensorflow():
    script = (
        "import json, sys\n"
        "from embedding_guard.bounds import resolve, transform_graph\n"
        "graph = transform_graph.load_transform_graph(sys.argv[1])\n"
        "found = resolve.resolve_bounds(graph.schema, graph.vocabulary_sizes,"
        " derivations=graph.derivations)\n"
        "heavy = [m for m in json.loads(sys.argv[2]) if m in sys.modules]\n"
        "print(json.dumps({'bounds': sorted((b.feature, b.upper_bound) for b in found),"
        " 'heavy': heavy}))\n"
    )
    components = pathlib.Path(__file__).resolve().parents[2] / "components"
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            script,
            str(TESTDATA / "transform_graph"),
            json.dumps(HEAVY_MODULES),
        ],
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(components), TF_CPP_MIN_LOG_LEVEL="3"),
        timeout=300,
        check=False,
    )

    assert done.returncode == 0, done.stderr[-2000:]
    ran = json.loads(done.stdout.strip().splitlines()[-1])
    assert ran["heavy"] == []
    assert ran["bounds"] == [["age_xf", 5], ["city_xf", 25], ["product_xf", 42]]


def test_trainer_helpers_take_a_tft_output_and_read_it_by_folder():
    import tensorflow_transform as tft

    output = tft.TFTransformOutput(str(TAXI / "transform_graph"))

    assert transform_graph.is_tft_output(output)
    assert not transform_graph.is_tft_output(str(TAXI / "transform_graph"))
    assert transform_graph.embedding_input_dims(output) == transform_graph.embedding_input_dims(
        str(TAXI / "transform_graph")
    )
    assert transform_graph.embedding_input_dim(output, "company_xf") == 63
    with pytest.raises(transform_graph.TransformGraphError, match=r"tft.TFTransformOutput or"):
        transform_graph.embedding_input_dim(object(), "company_xf")
