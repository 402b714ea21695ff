"""Runs the embedding-guard demo: one config pushes, two are blocked, before and after training.

clean pushes its model; broken is blocked before the Trainer (an index below 0);
small_table trains a city Embedding without its OOV row, and the post-Trainer
validator blocks the Pusher on that table alone. All three run into pipeline/_runs/
(wiped first, so every run starts fresh) with one pipeline name, root and MLMD
database. Pipeline logs go to pipeline/_runs/demo.log; the terminal gets a short
summary per run, read back from MLMD and each split's index_report.json.

Usage: .venv/bin/python pipeline/run_demo.py [--verbose]
       .venv/bin/python pipeline/run_demo.py --compile-kubeflow-v2 pipeline.json \
           --pipeline-root gs://BUCKET/root [--image REGISTRY/embedding-guard:TAG]

--compile-kubeflow-v2 only writes the Vertex AI / Kubeflow Pipelines job spec of the
clean config; it runs and submits nothing.
"""

import argparse
import contextlib
import json
import os
import pathlib
import shutil
import sys
import time

PIPELINE_DIR = pathlib.Path(__file__).resolve().parent
USER_MODULES_DIR = PIPELINE_DIR / "user_modules"
RUNS_DIR = PIPELINE_DIR / "_runs"
PIPELINE_ROOT = RUNS_DIR / "root"
METADATA_PATH = RUNS_DIR / "metadata.sqlite"
LOG_PATH = RUNS_DIR / "demo.log"
DATA_ROOT = PIPELINE_DIR / "data"
SCHEMA_PATH = PIPELINE_DIR.parent / "schemas" / "raw_schema.pbtxt"
PIPELINE_NAME = "embedding-guard-demo"
CONFIGS = ("clean", "broken", "small_table")
VALIDATOR_NODES = ("EmbeddingIndexValidator", "ServingIndexValidator", "ModelIndexValidator")
TRAINER_NODE = "Trainer"
PUSHER_NODE = "Pusher"
REPORT_JSON_FILE = "index_report.json"
TABLE_TOO_SMALL = "EMBEDDING_TABLE_TOO_SMALL"


def _use_user_modules() -> None:
    # TFX loads preprocessing_fn and run_fn by import path, in this process and in
    # any Beam worker process it starts, so both need the user modules importable
    # even when the script runs without `make demo`'s PYTHONPATH.
    sys.path.insert(0, str(USER_MODULES_DIR))
    python_path = os.environ.get("PYTHONPATH", "").split(os.pathsep)
    if not any(entry and os.path.realpath(entry) == str(USER_MODULES_DIR) for entry in python_path):
        os.environ["PYTHONPATH"] = os.pathsep.join(
            filter(None, [str(USER_MODULES_DIR), *python_path])
        )


@contextlib.contextmanager
def _output_to(log_path: pathlib.Path, enabled: bool):
    """Sends this process's stdout and stderr (TF, Beam, Keras) to log_path."""
    if not enabled:
        yield
        return
    sys.stdout.flush()
    sys.stderr.flush()
    saved_fds = os.dup(1), os.dup(2)
    with open(log_path, "ab") as log_file:
        os.dup2(log_file.fileno(), 1)
        os.dup2(log_file.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved_fds[0], 1)
            os.dup2(saved_fds[1], 2)
            for fd in saved_fds:
                os.close(fd)


def _shown(path) -> str:
    """Returns path relative to the working directory when it is below it (shorter)."""
    relative = os.path.relpath(path)
    return str(path) if relative.startswith(os.pardir) else relative


def _metadata_store(metadata_path: pathlib.Path):
    from embedding_guard.reports import mlmd_runs

    return mlmd_runs.open_store(str(metadata_path))


def _run_contexts(store) -> dict[int, str]:
    return {context.id: context.name for context in store.get_contexts_by_type("pipeline_run")}


def _node_outputs(store, run_context_id: int) -> dict[str, tuple[object, list]]:
    """Maps node id -> (execution, output artifacts) for one pipeline run."""
    from ml_metadata.proto import metadata_store_pb2

    node_prefix = PIPELINE_NAME + "."
    outputs = {}
    for execution in store.get_executions_by_context(run_context_id):
        node_ids = [
            context.name[len(node_prefix) :]
            for context in store.get_contexts_by_execution(execution.id)
            if context.name.startswith(node_prefix)
        ]
        artifact_ids = [
            event.artifact_id
            for event in store.get_events_by_execution_ids([execution.id])
            if event.type == metadata_store_pb2.Event.OUTPUT
        ]
        for node_id in node_ids:
            outputs[node_id] = (execution, store.get_artifacts_by_id(artifact_ids))
    return outputs


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


def _split_lines(report) -> list[str]:
    """Summary lines of one split's report (an embedding_guard SplitReport)."""
    lines = [
        f"{'Split-' + report.split:<12} {report.num_examples:>5} examples  "
        f"{_plural(report.num_errors, 'error')}, {_plural(report.num_warnings, 'warning')}"
    ]
    for feature in report.features:
        for finding in feature.findings:
            top_values = ", ".join(
                f"{value} x{count}" for value, count in finding.sample_values[:3]
            )
            lines.append(
                f"  {finding.severity.value:<7} {feature.feature:<11} {finding.reason.value:<25} "
                f"{finding.count:>4} ({finding.rate:.1%})"
                + (f"  top: {top_values}" if top_values else "")
            )
            if finding.reason.value == TABLE_TOO_SMALL:
                lines.append(f"          {_table_too_small_text(feature.bounds)}")
    return lines


def _table_too_small_text(bounds) -> str:
    """Says which layer's table is too small, its size and the bound it must reach."""
    bound = f"[0, {bounds.upper_bound})"
    if bounds.vocab_size is not None:
        bound += (
            f" = vocabulary {bounds.vocabulary!r} ({bounds.vocab_size} entries) + "
            f"{_plural(bounds.num_oov_buckets, 'OOV bucket')}"
        )
    return (
        f"layer {bounds.model_layer or '(unnamed)'!r}: table of {bounds.embedding_input_dim} rows, "
        f"bound {bound}"
    )


def _print_run(
    config: str, seconds: float, store, run_context_id: int, run_id: str
) -> tuple[list[str], list[str]]:
    """Prints one run's summary; returns its index_report.json paths and Model folders."""
    from embedding_guard.reports import report_io

    outputs = _node_outputs(store, run_context_id)
    print(f"\n[{config}] run {run_id} took {seconds:.0f} s")

    report_paths = []
    for node in VALIDATOR_NODES:
        if node not in outputs:
            continue
        _, artifacts = outputs[node]
        for anomalies in artifacts:
            blessed = anomalies.custom_properties["blessed"].int_value
            print(f"  {node}: blessed={blessed}  anomalies: {_shown(anomalies.uri)}")
            split_names = json.loads(anomalies.properties["split_names"].string_value)
            reports = report_io.read_split_reports(anomalies.uri, split_names)
            for split in sorted(reports, key=lambda name: (name != "train", name)):
                report_paths.append(os.path.join(anomalies.uri, f"Split-{split}", REPORT_JSON_FILE))
                for line in _split_lines(reports[split]):
                    print(f"    {line}")
        if node == VALIDATOR_NODES[0]:
            _print_trainer(outputs)

    if VALIDATOR_NODES[0] not in outputs:
        print(f"  {VALIDATOR_NODES[0]}: no execution in this run; see {LOG_PATH}")

    if PUSHER_NODE in outputs:
        (pushed_model,) = (a for a in outputs[PUSHER_NODE][1] if a.type == "PushedModel")
        destination = pushed_model.custom_properties["pushed_destination"].string_value
        print(f"  {PUSHER_NODE}: pushed to {_shown(destination)}")
    else:
        print(f"  {PUSHER_NODE}: skipped (no execution and no PushedModel in MLMD)")
    return report_paths, _models(outputs)


def _models(outputs) -> list[str]:
    return [
        artifact.uri
        for artifact in outputs.get(TRAINER_NODE, (None, []))[1]
        if artifact.type == "Model"
    ]


def _print_trainer(outputs) -> None:
    if TRAINER_NODE not in outputs:
        print(f"  {TRAINER_NODE}: skipped (no execution and no Model in MLMD)")
        return
    models = _models(outputs)
    print(f"  {TRAINER_NODE}: ran, Model: {', '.join(map(_shown, models)) or 'none published'}")


def _compile_kubeflow_v2(output_path: str, pipeline_root: str, image: str | None) -> None:
    _use_user_modules()
    import demo_pipeline

    demo_pipeline.compile_for_kubeflow_v2(
        pipeline_name=PIPELINE_NAME,
        pipeline_root=pipeline_root,
        output_path=output_path,
        image=image or demo_pipeline.CONTAINER_IMAGE,
    )
    print(
        f"Wrote {_shown(output_path)}: the clean config, every step in image "
        f"{image or demo_pipeline.CONTAINER_IMAGE}. Nothing was submitted."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--verbose", action="store_true", help="print pipeline logs instead of writing demo.log"
    )
    parser.add_argument(
        "--compile-kubeflow-v2",
        metavar="FILE",
        help="write the Vertex AI / Kubeflow Pipelines job spec to FILE instead of running",
    )
    parser.add_argument(
        "--pipeline-root",
        help="with --compile-kubeflow-v2: the pipeline root, e.g. gs://BUCKET/root",
    )
    parser.add_argument(
        "--image",
        help="with --compile-kubeflow-v2: the image built from docker/Dockerfile "
        "(default: demo_pipeline.CONTAINER_IMAGE)",
    )
    args = parser.parse_args()
    if args.compile_kubeflow_v2:
        if not args.pipeline_root:
            parser.error("--compile-kubeflow-v2 needs --pipeline-root, e.g. gs://BUCKET/root")
        _compile_kubeflow_v2(args.compile_kubeflow_v2, args.pipeline_root, args.image)
        return

    shutil.rmtree(RUNS_DIR, ignore_errors=True)
    RUNS_DIR.mkdir(parents=True)
    _use_user_modules()
    print(f"Running the embedding-guard demo (logs: {_shown(LOG_PATH)}) ...", flush=True)

    with _output_to(LOG_PATH, enabled=not args.verbose):
        import demo_pipeline
        from tfx import v1 as tfx

    report_paths, model_uris = [], []
    for config in CONFIGS:
        pipeline = demo_pipeline.create_pipeline(
            pipeline_name=PIPELINE_NAME,
            pipeline_root=str(PIPELINE_ROOT),
            data_root=str(DATA_ROOT),
            schema_path=str(SCHEMA_PATH),
            metadata_path=str(METADATA_PATH),
            config=config,
        )
        runs_before = (
            _run_contexts(_metadata_store(METADATA_PATH)) if METADATA_PATH.exists() else {}
        )
        start = time.monotonic()
        try:
            with _output_to(LOG_PATH, enabled=not args.verbose):
                tfx.orchestration.LocalDagRunner().run(pipeline)
        except Exception:
            print(
                f"\n[{config}] the pipeline run failed; the full log is {LOG_PATH}", file=sys.stderr
            )
            raise
        seconds = time.monotonic() - start

        store = _metadata_store(METADATA_PATH)
        ((run_context_id, run_id),) = (
            item for item in _run_contexts(store).items() if item[0] not in runs_before
        )
        run_report_paths, run_model_uris = _print_run(
            config, seconds, store, run_context_id, run_id
        )
        report_paths += run_report_paths
        model_uris += run_model_uris

    # The console script sits next to this interpreter (the venv's bin), which is
    # not always on PATH.
    command = pathlib.Path(sys.executable).parent / "embedding-guard"
    print("\nReview the findings of all runs:")
    print(f"  {_shown(command)} report {_shown(PIPELINE_ROOT)}")
    print(f"  {_shown(command)} report {_shown(PIPELINE_ROOT)} --html report.html")
    for model_uri in model_uris:
        print(f"  {_shown(command)} inspect-model {_shown(model_uri)}")
    print("  or open the reports (index_report.html beside each JSON file):")
    for report_path in report_paths:
        print(f"    {_shown(report_path)}")


if __name__ == "__main__":
    main()
