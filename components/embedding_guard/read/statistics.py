"""Reads example counts from TFX statistics: StatisticsGen's and Transform's.

Layouts (TFX 1.16):
- StatisticsGen's `statistics` artifact: `<uri>/Split-<name>/FeatureStats.pb`,
  one `DatasetFeatureStatisticsList` per split.
- Transform's `post_transform_stats` artifact (an ExampleStatistics too):
  `<uri>/FeatureStats.pb`, one dataset for every split Transform transformed,
  flattened (tfx/components/transform/executor.py, "FlattenTransformedDatasets").
  In a pipeline root it lies beside the transform graph, under the same
  execution id: `<root>/Transform/post_transform_stats/<id>` next to
  `<root>/Transform/transform_graph/<id>`.
- Transform run without those outputs (TFT's own layout):
  `<transform_graph>/post_transform_feature_stats/FeatureStats.pb`.
Sharded statistics (`FeatureStats.rio-*`) always come with a FeatureStats.pb.
"""

from __future__ import annotations

import os
import warnings

from absl import logging

from embedding_guard.errors import InputError
from embedding_guard.read import files, storage
from embedding_guard.verdict.example_count import STATISTICS, TRANSFORM, StatisticsCounts

STATS_FILE = "FeatureStats.pb"
# tft.TFTransformOutput.POST_TRANSFORM_FEATURE_STATS_PATH's folder.
TFT_POST_TRANSFORM_DIR = "post_transform_feature_stats"
# standard_component_specs.POST_TRANSFORM_STATS_KEY: Transform's output folder name.
TFX_POST_TRANSFORM_DIR = "post_transform_stats"


def num_examples(path: str, parameter: str) -> int:
    """The num_examples of the one dataset in a FeatureStats.pb.

    Raises:
      InputError: The file cannot be read or parsed, or holds no single dataset.
    """
    from tensorflow_metadata.proto.v0 import statistics_pb2

    try:
        with storage.open_file(path, "rb") as stats_file:
            data = stats_file.read()
        with warnings.catch_warnings():
            # protobuf warns about some garbage before raising; the error says it all.
            warnings.simplefilter("ignore", RuntimeWarning)
            statistics = statistics_pb2.DatasetFeatureStatisticsList.FromString(data)
    except Exception as error:  # noqa: BLE001 - file systems and protobuf raise many kinds.
        raise InputError(
            f"{parameter}: {path!r} is not a readable DatasetFeatureStatisticsList "
            f"({type(error).__name__}); pass the folder StatisticsGen or Transform wrote, "
            "or leave it out."
        ) from None
    if len(statistics.datasets) != 1:
        raise InputError(
            f"{parameter}: {path!r} holds {len(statistics.datasets)} datasets, not one; pass "
            "the statistics of one Examples artifact (StatisticsGen's or Transform's)."
        )
    return int(statistics.datasets[0].num_examples)


def _check_stats_file(path: str, parameter: str) -> None:
    """Refuses a FeatureStats.pb that is no regular file, saying what the folder must hold."""
    if storage.is_local(path) and os.path.isdir(path):
        # The parameter takes a folder, so "pass the file inside it" would mislead.
        raise InputError(
            f"{parameter}: {path!r} is a folder, not a file; {parameter} takes the output "
            f"folder of StatisticsGen (or Transform), whose {STATS_FILE} are files: pass that "
            "folder as the component wrote it, or leave it out."
        )
    files.check_regular_file(path, parameter, f"{STATS_FILE} file")


def read_counts(folder: str, parameter: str = "statistics") -> StatisticsCounts:
    """Reads a statistics artifact folder, in either layout.

    Args:
      folder: StatisticsGen's statistics folder (Split-<name>/FeatureStats.pb) or
        Transform's post_transform_stats folder (FeatureStats.pb).
      parameter: How the caller names the folder in messages.

    Returns:
      The counts: per split (StatisticsGen) or over every transformed split
      (Transform).

    Raises:
      InputError: The folder holds neither layout, or a file cannot be read.
    """
    if not storage.isdir(folder):
        raise InputError(
            f"{parameter} {folder!r} is not a folder; pass StatisticsGen's statistics "
            "folder or Transform's post_transform_stats folder."
        )
    root_file = os.path.join(folder, STATS_FILE)
    if storage.exists(root_file):
        _check_stats_file(root_file, parameter)
        return StatisticsCounts(TRANSFORM, root_file, total=num_examples(root_file, parameter))
    by_split = {}
    for split, split_dir in files.split_dirs(folder).items():
        path = os.path.join(split_dir, STATS_FILE)
        if storage.exists(path):
            _check_stats_file(path, parameter)
            by_split[split] = (path, num_examples(path, parameter))
    if not by_split:
        raise InputError(
            f"{parameter} {folder!r} holds neither {STATS_FILE} nor Split-<name>/{STATS_FILE}; "
            "pass StatisticsGen's statistics folder or Transform's post_transform_stats folder."
        )
    return StatisticsCounts(STATISTICS, folder, by_split=by_split)


def transform_statistics(transform_graph: str) -> StatisticsCounts | None:
    """Transform's post-transform statistics of a transform graph, when they are at hand.

    Looks in the graph's own post_transform_feature_stats folder, then in the
    post_transform_stats folder Transform wrote in the same execution.

    Returns:
      The counts over every transformed split, or None when neither exists or
      the file found cannot be read (a warning says so).
    """
    graph = transform_graph.rstrip("/")
    candidates = [os.path.join(graph, TFT_POST_TRANSFORM_DIR, STATS_FILE)]
    execution_id = os.path.basename(graph)
    component_dir = os.path.dirname(os.path.dirname(graph))
    # Only a TFX layout, <component>/transform_graph/<execution id>, has a sibling.
    if os.path.basename(os.path.dirname(graph)) == "transform_graph" and component_dir:
        candidates.append(
            os.path.join(component_dir, TFX_POST_TRANSFORM_DIR, execution_id, STATS_FILE)
        )
    for path in candidates:
        try:
            found = storage.exists(path)
        except Exception:  # noqa: BLE001 - an unknown file system: nothing to compare.
            found = False
        if not found:
            continue
        try:
            total = num_examples(path, "Transform's statistics")
        except InputError as error:
            # Found, not given: a damaged file there is no reason to refuse the run.
            logging.warning("Not comparing the example count: %s", error)
            return None
        logging.info("Comparing the examples read with Transform's statistics %s.", path)
        return StatisticsCounts(TRANSFORM, path, total=total)
    return None
