"""One measurement of the Beam path or of the in-process reader, run by beam_cores.py.

Usage: beam_measure.py MODE --examples DIR --transform-graph DIR --result FILE --scratch DIR

MODE is one of:
  inproc         validation.run_in_process: what `check` runs, every CPU, no Beam.
  beam_inmem     beam_pipeline.run on DirectRunner in-memory.
  beam_mp        beam_pipeline.run on DirectRunner --direct_running_mode=multi_processing
                 --direct_num_workers=2.
  beam_portable  beam_pipeline.run on PortableRunner --job_endpoint=embed
                 --environment_type=LOOPBACK.

The Beam modes run the component's pipeline (not Executor.Do, whose TFX sdist
and artifact handling are start-up) and read the Beam distributions the
counting DoFn records per bundle (beam_pipeline.COUNT_TIME_DISTRIBUTIONS), so
that a worker's start-up (its imports, its unpickling) is left out:

  work_s          the run, from the pipeline's construction to its reports read back;
  counting_s      from the first bundle's counting start, on any worker, to the
                  reports read back in the launcher: counting, combining, writing;
  count_span_s    from the first bundle's counting start to the last one's end;
  count_busy_s    the bundles' counting wall time, summed over workers;
  count_cpu_s     the worker processes' CPU time while they counted, summed.

inproc gives the same figures for run_in_process (its counting is the whole call).
The result file gets JSON with these, num_examples and the per-feature counts.
"""

from __future__ import annotations

import time

START = time.perf_counter()

import argparse  # noqa: E402
import os  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402

import atomic_files  # noqa: E402

SPLIT = "train"
BEAM_ARGS = {
    "beam_inmem": ["--runner=DirectRunner", "--direct_running_mode=in_memory"],
    "beam_mp": [
        "--runner=DirectRunner",
        "--direct_running_mode=multi_processing",
        "--direct_num_workers=2",
    ],
    "beam_portable": [
        "--runner=PortableRunner",
        "--job_endpoint=embed",
        "--environment_type=LOOPBACK",
    ],
}


def _cpu_seconds() -> float:
    """CPU time of this process (all threads) and of the children it has reaped."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def _distributions(result) -> dict:
    from apache_beam.metrics.metric import MetricsFilter

    from embedding_guard.run import beam_pipeline

    query = MetricsFilter().with_namespace(beam_pipeline.METRICS_NAMESPACE)
    found = {}
    for item in result.metrics().query(query)["distributions"]:
        data = item.committed
        name = item.key.metric.name
        # One entry per step; one step counts here (one split).
        previous = found.get(name)
        found[name] = {
            "sum": data.sum + (previous["sum"] if previous else 0),
            "count": data.count + (previous["count"] if previous else 0),
            "min": min(data.min, previous["min"]) if previous else data.min,
            "max": max(data.max, previous["max"]) if previous else data.max,
        }
    return found


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["inproc", *BEAM_ARGS])
    parser.add_argument("--examples", required=True)
    parser.add_argument("--transform-graph", required=True)
    parser.add_argument("--result", required=True)
    parser.add_argument("--scratch", required=True)
    args = parser.parse_args(argv)

    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions

    from embedding_guard.bounds import transform_graph
    from embedding_guard.reports import report_io
    from embedding_guard.run import beam_pipeline, validation  # noqa: F401

    imported, imported_cpu = time.perf_counter(), _cpu_seconds()
    graph = transform_graph.load_transform_graph(args.transform_graph)
    splits = {SPLIT: os.path.join(args.examples, f"Split-{SPLIT}")}
    split_shards = validation.list_split_shards(splits)
    plan = validation.plan(split_shards, graph.schema, graph=graph)
    output = os.path.join(args.scratch, "out")
    jobs = validation.split_jobs(split_shards, {SPLIT: os.path.join(output, SPLIT)})
    result = {"mode": args.mode, "shards": len(split_shards[SPLIT])}
    if args.mode == "inproc":
        started, started_cpu = time.time(), time.process_time()
        validation.run_in_process(jobs, plan)
        finished = time.time()
        cpu = time.process_time() - started_cpu
        result.update(
            counting_s=finished - started,
            count_span_s=finished - started,
            count_busy_s=finished - started,
            count_cpu_s=cpu,
            bundles=1,
        )
    else:
        pipeline = beam.Pipeline(options=PipelineOptions(BEAM_ARGS[args.mode]))
        beam_pipeline.run(jobs, plan, pipeline)
        finished = time.time()
        found = _distributions(pipeline.result)
        first = found["count_started_unix_msecs"]["min"] / 1000
        result.update(
            counting_s=finished - first,
            count_span_s=found["count_finished_unix_msecs"]["max"] / 1000 - first,
            count_busy_s=found["count_wall_msecs"]["sum"] / 1000,
            count_cpu_s=found["count_cpu_msecs"]["sum"] / 1000,
            bundles=found["count_wall_msecs"]["count"],
            distributions=found,
        )
    report = report_io.read_report_json(os.path.join(output, SPLIT))
    done, done_cpu = time.perf_counter(), _cpu_seconds()
    result.update(
        num_examples=report["num_examples"],
        counts={f["feature"]: f["counts"] for f in report["features"]},
        import_s=imported - START,
        work_s=done - imported,
        work_cpu_s=done_cpu - imported_cpu,
    )
    atomic_files.write_json(args.result, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
