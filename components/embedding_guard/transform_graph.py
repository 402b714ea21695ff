"""Reads the bounds inputs from a Transform `transform_graph` output.

Also home of `embedding_input_dim`, the Trainer-side helper, so the Trainer sizes
its Embedding layers from the same answer the validator checks against.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping

import tensorflow as tf
import tensorflow_transform as tft
from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import schema_pb2
from tfx.dsl.io import fileio

from embedding_guard import bounds as bounds_lib
from embedding_guard.errors import InputError

_ASSETS_DIR = "assets"
_TFRECORD_GZIP_SUFFIX = ".tfrecord.gz"


class TransformGraphError(InputError):
    """A transform_graph directory cannot be used; the message names the path."""


@dataclasses.dataclass(frozen=True)
class TransformGraphInfo:
    """What the validator needs from a transform graph.

    Attributes:
      uri: The transform_graph directory.
      schema: The transformed schema (transformed_metadata/schema.pbtxt).
      raw_schema: The raw schema (metadata/schema.pbtxt), or None when absent.
      vocabulary_sizes: Vocabulary name -> entries, without OOV buckets.
    """

    uri: str
    schema: schema_pb2.Schema
    raw_schema: schema_pb2.Schema | None
    vocabulary_sizes: Mapping[str, int]


def _vocabulary_names(tf_transform_output: tft.TFTransformOutput) -> list[str]:
    # TFT writes asset_map (vocab_filename -> asset file) but has no call that
    # lists vocabularies; fall back to the assets folder for older graphs.
    mapping_path = os.path.join(
        tf_transform_output._transformed_metadata_dir,  # noqa: SLF001
        tft.TFTransformOutput.ASSET_MAP,
    )
    if fileio.exists(mapping_path):
        with fileio.open(mapping_path, "r") as f:
            try:
                return sorted(json.loads(f.read()))
            except json.JSONDecodeError as error:
                raise TransformGraphError(
                    f"{mapping_path!r} is not valid JSON ({error}); the transform graph is "
                    "damaged: re-run Transform."
                ) from error
    assets = os.path.join(tf_transform_output.transform_savedmodel_dir, _ASSETS_DIR)
    if not fileio.isdir(assets):
        return []
    names = []
    for name in fileio.listdir(assets):
        name = name.rstrip("/")
        names.append(
            name[: -len(_TFRECORD_GZIP_SUFFIX)] if name.endswith(_TFRECORD_GZIP_SUFFIX) else name
        )
    return sorted(names)


def _output(transform_graph) -> tft.TFTransformOutput:
    if isinstance(transform_graph, tft.TFTransformOutput):
        return transform_graph
    return tft.TFTransformOutput(os.fspath(transform_graph))


def _vocabulary_entries(path: str) -> list[bytes]:
    # What a lookup table built from the file would hold: one entry per line, or
    # per record for tfrecord_gzip vocabularies.
    if path.endswith(_TFRECORD_GZIP_SUFFIX):
        entries = []
        for batch in tf.data.TFRecordDataset(path, compression_type="GZIP").batch(100_000):
            entries.extend(batch.numpy().tolist())
        return entries
    with fileio.open(path, "rb") as f:
        lines = f.read().split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    return lines


def _first_duplicate(entries: list[bytes]) -> tuple[bytes, int, int] | None:
    if len(set(entries)) == len(entries):
        return None
    first_seen: dict[bytes, int] = {}
    for number, entry in enumerate(entries, 1):
        if entry in first_seen:
            return entry, first_seen[entry], number
        first_seen[entry] = number
    return None


class VocabularySizes(Mapping):
    """Vocabulary name -> entries (OOV buckets not included), read on first use.

    Args:
      tf_transform_output: The transform output holding the vocabularies.
    """

    def __init__(self, tf_transform_output: tft.TFTransformOutput):
        self._output = tf_transform_output
        self._names = _vocabulary_names(tf_transform_output)
        self._sizes: dict[str, int] = {}

    def __getitem__(self, name: str) -> int:
        if name not in self._names:
            raise KeyError(name)
        if name not in self._sizes:
            self._sizes[name] = self._read_size(name)
        return self._sizes[name]

    def _read_size(self, name: str) -> int:
        # Counts the file as the lookup table will load it, and rejects files
        # Transform never writes: empty ones and ones with an entry twice.
        assets = os.path.join(self._output.transform_savedmodel_dir, _ASSETS_DIR)
        try:
            path = self._output.vocabulary_file_by_name(name)
            entries = None if path is None else _vocabulary_entries(path)
        except (ValueError, OSError, tf.errors.OpError) as error:
            raise TransformGraphError(
                f"Vocabulary {name!r} in {assets!r} cannot be read: {error}. "
                "Re-run Transform, or restore the transform_fn/assets folder."
            ) from error
        if path is None:
            raise TransformGraphError(
                f"Vocabulary {name!r} of the transform graph has no file in {assets!r} "
                "(looked up through transformed_metadata/asset_map, then by name). Re-run "
                "Transform, or restore the transform_fn/assets folder."
            )
        unit = "record" if path.endswith(_TFRECORD_GZIP_SUFFIX) else "line"
        if not entries:
            raise TransformGraphError(
                f"Vocabulary {name!r} ({path!r}) is empty. Transform never writes an empty "
                "vocabulary (it adds a placeholder entry), so the file was truncated or "
                "replaced: re-run Transform, or restore the transform_fn/assets folder."
            )
        duplicate = _first_duplicate(entries)
        if duplicate is not None:
            entry, first, second = duplicate
            raise TransformGraphError(
                f"Vocabulary {name!r} ({path!r}) holds {entry!r} twice ({unit}s {first} and "
                f"{second}), so no lookup table can be built from it (TensorFlow fails with "
                "'HashTable has different value for same key'). Transform never writes an "
                "entry twice: the file was edited or damaged; re-run Transform."
            )
        return len(entries)

    def __contains__(self, name) -> bool:
        return name in self._names

    def __iter__(self):
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


def load_transform_graph(uri: str) -> TransformGraphInfo:
    """Reads the transformed schema and vocabulary sizes of a transform graph.

    Args:
      uri: A transform_graph artifact directory (holding transform_fn/ and
        transformed_metadata/).

    Returns:
      The schema, raw schema and vocabulary sizes.

    Raises:
      TransformGraphError: The directory is not a Transform output.
    """
    output = tft.TFTransformOutput(uri)
    schema_path = os.path.join(
        output._transformed_metadata_dir,  # noqa: SLF001
        "schema.pbtxt",
    )
    if not fileio.exists(schema_path):
        raise TransformGraphError(
            f"transform_graph {uri!r} has no {schema_path!r}. Pass the `transform_graph` "
            "output of a Transform component (it holds transform_fn/ and "
            "transformed_metadata/)."
        )
    try:
        schema = output.transformed_metadata.schema
    except text_format.ParseError as error:
        raise TransformGraphError(
            f"{schema_path!r} is not a text Schema proto ({error}); the transform graph is "
            "damaged: re-run Transform."
        ) from error
    raw_schema = None
    try:
        raw_schema = output.raw_metadata.schema
    except (OSError, ValueError):
        raw_schema = None
    return TransformGraphInfo(uri, schema, raw_schema, VocabularySizes(output))


def embedding_input_dim(tf_transform_output, feature: str, vocabulary: str | None = None) -> int:
    """Returns the Embedding input_dim the validator expects for a transformed feature.

    Use it in the Trainer so both sides agree: vocab_size + num_oov_buckets for a
    feature made with a vocabulary, int_domain.max + 1 otherwise.

    Args:
      tf_transform_output: A `tft.TFTransformOutput`, or the transform_graph path.
      feature: Transformed feature name.
      vocabulary: The feature's vocabulary name when it is not the feature's
        name or its name without a suffix such as `_xf`.

    Returns:
      The number of rows the feature's embedding table needs.

    Raises:
      ValueError: The feature's range cannot be worked out from the graph.
    """
    output = _output(tf_transform_output)
    schema = output.transformed_metadata.schema
    if feature not in {proto.name for proto in schema.feature}:
        raise bounds_lib.BoundsError(
            f"feature={feature!r} is not a transformed feature; valid names: "
            f"{sorted(proto.name for proto in schema.feature)!r}."
        )
    feature_bounds = bounds_lib.feature_bounds(
        feature, schema, VocabularySizes(output), vocabulary=vocabulary
    )
    return feature_bounds.upper_bound
