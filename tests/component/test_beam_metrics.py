"""The Beam pipeline reports its counts as Beam metrics, for runners' UIs (Dataflow's counters)."""

import time

import apache_beam as beam
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.options.pipeline_options import PipelineOptions
from component_testlib import EXAMPLES_DIR, TRANSFORM_GRAPH_DIR

from embedding_guard.bounds import transform_graph
from embedding_guard.run import beam_pipeline, validation


def test_examples_values_and_bad_values_are_counters(tmp_path):
    graph = transform_graph.load_transform_graph(str(TRANSFORM_GRAPH_DIR))
    splits = {name: str(EXAMPLES_DIR / f"Split-{name}") for name in ("train", "eval", "test")}
    split_shards = validation.list_split_shards(splits)
    plan = validation.plan(split_shards, graph.schema, graph=graph)
    jobs = validation.split_jobs(split_shards, {name: str(tmp_path / name) for name in splits})
    pipeline = beam.Pipeline(options=PipelineOptions(["--runner=DirectRunner"]))

    before = time.time()
    reports = beam_pipeline.run(jobs, plan, pipeline)
    after = time.time()

    # One counter per split's step, as a runner's UI shows them; summed here.
    counters: dict[str, int] = {}
    query = MetricsFilter().with_namespace(beam_pipeline.METRICS_NAMESPACE)
    for result in pipeline.result.metrics().query(query)["counters"]:
        name = result.key.metric.name
        counters[name] = counters.get(name, 0) + result.committed
    # By hand from testdata/make_examples.py: train 20, eval 20, test 6 examples.
    assert counters["examples_read"] == 46 == sum(r.num_examples for r in reports.values())
    assert counters["examples_read[eval]"] == 20
    # Checked: age_xf, city_xf, product_xf (month_xf has no bound without
    # embedding_input_dims). train: 20 + 20 + 21 product values; eval: 20 + 19 (one
    # example has no city_xf) + 24; test: 6 + 6 + 6.
    assert counters["values_checked"] == 61 + 63 + 18
    # The three unseen cities (-1) of eval, and no other.
    assert counters["bad_values[negative]"] == 3
    # The counters are the reports' counts.
    values = sum(f.stats.num_values for r in reports.values() for f in r.features)
    negative = sum(f.stats.negative for r in reports.values() for f in r.features)
    assert (values, negative) == (142, 3)
    # How long each bundle counted, for the cost model: one value per bundle of
    # every split's CountShard step, all within the run.
    timing: dict[str, list] = {}
    for result in pipeline.result.metrics().query(query)["distributions"]:
        timing.setdefault(result.key.metric.name, []).append(result.committed)
    assert set(timing) == set(beam_pipeline.COUNT_TIME_DISTRIBUTIONS)
    assert sum(d.count for d in timing["count_wall_msecs"]) >= 3
    assert all(d.min >= 0 for d in timing["count_wall_msecs"] + timing["count_cpu_msecs"])
    first = min(d.min for d in timing["count_started_unix_msecs"])
    last = max(d.max for d in timing["count_finished_unix_msecs"])
    assert int(before * 1000) <= first <= last <= int(after * 1000)
    assert max(d.max for d in timing["count_wall_msecs"]) <= last - first
