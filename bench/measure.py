"""One benchmark measurement, run by run_bench.py in a fresh process.

Usage: measure.py MODE --examples DIR --transform-graph DIR --result FILE [--scratch DIR]

MODE is one of:
  decode        tfx_bsl TFXIO RecordBatches over every feature (num_epochs=1), no Beam.
  tfdv          tfdv.generate_statistics_from_tfrecord + tfdv.validate_statistics.
  executor      embedding_guard's Executor.Do on DirectRunner in-memory.
  executor_mp   the same with --direct_running_mode=multi_processing --direct_num_workers=2.
  cli           `embedding-guard check --schema SCHEMA.pbtxt --examples DIR` (in-process).
  cli_tf_parse  the same with the compiled example parser off: TensorFlow parses every batch.
  vocab         load_transform_graph + resolving every feature's bounds.
  limit         the parallel-read limit: import TensorFlow, tf.data interleave of the
                shards on every CPU this process may use, parse_example of only the
                checked features mapped in parallel, a numpy pass over every value.
  import_tf     `import tensorflow` alone (its import_s is the start-up floor).

The result file gets JSON: import_s (heavy imports), work_s (everything after
them), work_cpu_s (CPU time of the work, this process's threads plus the worker
processes it reaped), num_examples, and what the mode found (per-feature counts
or anomalies).
Wall time and peak RSS are measured by the parent.
"""

from __future__ import annotations

import resource
import time

START = time.perf_counter()

import argparse  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402

import atomic_files  # noqa: E402

SPLIT = "train"
DECODE_BATCH_SIZE = 50_000


def _cpu_seconds() -> float:
    """CPU time of this process (all threads) and of the children it has reaped."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def _imported() -> tuple[float, float]:
    return time.perf_counter(), _cpu_seconds()


def _schema_path(transform_graph: str) -> str:
    return os.path.join(transform_graph, "transformed_metadata", "schema.pbtxt")


def _split_glob(examples: str) -> str:
    return os.path.join(examples, f"Split-{SPLIT}", "*")


def decode(args) -> tuple[tuple[float, float], dict]:
    from tfx_bsl.public import tfxio

    imported = _imported()
    source = tfxio.TFExampleRecord(file_pattern=[_split_glob(args.examples)])
    options = tfxio.RecordBatchesOptions(batch_size=DECODE_BATCH_SIZE, num_epochs=1, shuffle=False)
    num_examples = 0
    columns = set()
    for record_batch in source.RecordBatches(options):
        num_examples += record_batch.num_rows
        columns.update(record_batch.schema.names)
    return imported, {"num_examples": num_examples, "columns": sorted(columns)}


def _tfdv_findings(anomalies) -> dict:
    from tensorflow_metadata.proto.v0 import anomalies_pb2

    findings = {}
    for feature, info in anomalies.anomaly_info.items():
        findings[feature] = [
            {
                "type": anomalies_pb2.AnomalyInfo.Type.Name(reason.type),
                "short_description": reason.short_description,
                "description": reason.description,
            }
            for reason in info.reason
        ]
    return findings


def run_tfdv(args) -> tuple[tuple[float, float], dict]:
    import tensorflow_data_validation as tfdv
    from tfx.utils import io_utils

    imported = _imported()
    schema = io_utils.SchemaReader().read(_schema_path(args.transform_graph))
    stats = tfdv.generate_statistics_from_tfrecord(
        data_location=_split_glob(args.examples),
        output_path=os.path.join(args.scratch, "stats.tfrecord"),
        stats_options=tfdv.StatsOptions(schema=schema),
    )
    anomalies = tfdv.validate_statistics(stats, schema)
    num_examples = int(stats.datasets[0].num_examples)
    return imported, {"num_examples": num_examples, "anomalies": _tfdv_findings(anomalies)}


def _feature_counts(report: dict) -> dict:
    return {feature["feature"]: feature["counts"] for feature in report["features"]}


def run_executor(args, beam_pipeline_args: list[str]) -> tuple[tuple[float, float], dict]:
    from tfx.dsl.components.base import base_beam_executor
    from tfx.types import artifact_utils, standard_artifacts

    from embedding_guard.component import executor
    from embedding_guard.reports import report_io

    imported = _imported()
    examples = standard_artifacts.Examples()
    examples.uri = args.examples
    examples.split_names = artifact_utils.encode_split_names([SPLIT])
    graph = standard_artifacts.TransformGraph()
    graph.uri = args.transform_graph
    anomalies = standard_artifacts.ExampleAnomalies()
    anomalies.uri = os.path.join(args.scratch, "anomalies")
    context = base_beam_executor.BaseBeamExecutor.Context(
        beam_pipeline_args=beam_pipeline_args, tmp_dir=os.path.join(args.scratch, "tmp")
    )
    component_executor = executor.Executor(context)
    made = time.perf_counter()
    component_executor.Do(
        {"examples": [examples], "transform_graph": [graph]},
        {"anomalies": [anomalies]},
        {},
    )
    report = report_io.read_report_json(artifact_utils.get_split_uri([anomalies], SPLIT))
    return imported, {
        "num_examples": report["num_examples"],
        "blessed": int(anomalies.get_int_custom_property("blessed")),
        "executor_init_s": made - imported[0],
        "counts": _feature_counts(report),
    }


def run_cli(args, compiled_parser: bool = True) -> tuple[tuple[float, float], dict]:
    import contextlib
    import io

    from embedding_guard.cli import main as cli
    from embedding_guard.read import example_parsing

    if not compiled_parser:
        # What an install without a C compiler runs, and the reference of the compiled parser.
        example_parsing._tfrecord_framing = None  # type: ignore[assignment]

    # As the console script does before its imports.
    cli.console_start_up()
    # What `check --schema` imports, the lazy imports of its run included, so
    # that import_s is its start-up and work_s its work.
    from embedding_guard.bounds import schema_io  # noqa: F401
    from embedding_guard.read import files, framing, reader  # noqa: F401
    from embedding_guard.reports import report_io
    from embedding_guard.run import orchestration, validation  # noqa: F401

    imported = _imported()
    before = set(sys.modules)
    output = os.path.join(args.scratch, "cli")
    with contextlib.redirect_stdout(io.StringIO()):
        exit_code = cli.main(
            [
                "check",
                "--schema",
                _schema_path(args.transform_graph),
                "--examples",
                args.examples,
                "--output",
                output,
            ]
        )
    report = report_io.read_report_json(os.path.join(output, f"Split-{SPLIT}"))
    # As the console script does before it exits.
    cli.console_teardown()
    return imported, {
        "num_examples": report["num_examples"],
        "exit_code": exit_code,
        "counts": _feature_counts(report),
        # Packages first imported during the work: its start-up that import_s missed.
        "imported_during_work": sorted({m.split(".")[0] for m in set(sys.modules) - before}),
    }


def load_vocabularies(args) -> tuple[tuple[float, float], dict]:
    from embedding_guard.bounds import resolve as bounds
    from embedding_guard.bounds import transform_graph

    imported = _imported()
    graph = transform_graph.load_transform_graph(args.transform_graph)
    feature_bounds = bounds.resolve_bounds(graph.schema, graph.vocabulary_sizes)
    return imported, {
        "num_examples": 0,
        "vocab_sizes": {b.feature: b.vocab_size for b in feature_bounds},
        "upper_bounds": {b.feature: b.upper_bound for b in feature_bounds},
    }


def parallel_read_limit(args) -> tuple[tuple[float, float], dict]:
    import numpy as np
    import tensorflow as tf
    from google.protobuf import text_format
    from tensorflow_metadata.proto.v0 import schema_pb2

    imported = _imported()
    schema = schema_pb2.Schema()
    with open(_schema_path(args.transform_graph)) as f:
        text_format.Parse(f.read(), schema)
    bounds = {
        feature.name: feature.int_domain.max + 1
        for feature in schema.feature
        if feature.int_domain.is_categorical
    }
    spec = {name: tf.io.RaggedFeature(tf.int64, row_splits_dtype=tf.int64) for name in bounds}
    parallelism = len(os.sched_getaffinity(0))
    shards = sorted(tf.io.gfile.glob(_split_glob(args.examples)))
    dataset = (
        tf.data.Dataset.from_tensor_slices(shards)
        .interleave(
            lambda shard: tf.data.TFRecordDataset(shard, compression_type="GZIP").batch(
                DECODE_BATCH_SIZE
            ),
            cycle_length=parallelism,
            num_parallel_calls=parallelism,
        )
        .map(lambda batch: tf.io.parse_example(batch, spec), num_parallel_calls=parallelism)
        .prefetch(parallelism)
    )
    num_examples = 0
    bad = dict.fromkeys(bounds, 0)
    for parsed in dataset:
        for name, upper in bounds.items():
            values = parsed[name].flat_values.numpy()
            bad[name] += int(np.count_nonzero((values < 0) | (values >= upper)))
        num_examples += int(parsed[next(iter(bounds))].nrows())
    return imported, {"num_examples": num_examples, "parallelism": parallelism, "bad": bad}


def import_tensorflow(args) -> tuple[tuple[float, float], dict]:
    import tensorflow  # noqa: F401

    return _imported(), {"num_examples": 0}


MODES = {
    "decode": decode,
    "tfdv": run_tfdv,
    "executor": lambda args: run_executor(args, []),
    "executor_mp": lambda args: run_executor(
        args, ["--direct_running_mode=multi_processing", "--direct_num_workers=2"]
    ),
    "cli": run_cli,
    "cli_tf_parse": lambda args: run_cli(args, compiled_parser=False),
    "vocab": load_vocabularies,
    "limit": parallel_read_limit,
    "import_tf": import_tensorflow,
}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=sorted(MODES))
    parser.add_argument("--examples", required=True)
    parser.add_argument("--transform-graph", required=True)
    parser.add_argument("--result", required=True)
    parser.add_argument("--scratch", required=True)
    parser.add_argument("--profile", metavar="FILE", help="write a cProfile of the work here")
    args = parser.parse_args(argv)
    os.makedirs(args.scratch, exist_ok=True)
    if args.profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    (imported, imported_cpu), result = MODES[args.mode](args)
    done = time.perf_counter()
    done_cpu = _cpu_seconds()
    if args.profile:
        profiler.disable()
        profiler.dump_stats(args.profile)
    result.update(
        {
            "mode": args.mode,
            "import_s": imported - START,
            "work_s": done - imported,
            "work_cpu_s": done_cpu - imported_cpu,
        }
    )
    atomic_files.write_json(args.result, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
