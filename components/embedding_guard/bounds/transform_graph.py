"""Reads the bounds inputs from a Transform `transform_graph` output.

Also home of `embedding_input_dim`, the Trainer-side helper, so the Trainer sizes
its Embedding layers from the same answer the validator checks against.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Iterator, Mapping
from typing import Any

from absl import logging
from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import schema_pb2

from embedding_guard.bounds import graph_analysis
from embedding_guard.bounds import resolve as bounds_lib
from embedding_guard.errors import InputError
from embedding_guard.read import files, storage

_ASSETS_DIR = graph_analysis.ASSETS_DIR
_TFRECORD_GZIP_SUFFIX = graph_analysis.TFRECORD_GZIP_SUFFIX
_SCHEMA_FILE = "schema.pbtxt"
# The folders of a Transform output, as tft.TFTransformOutput names them
# (TRANSFORM_FN_DIR, TRANSFORMED_METADATA_DIR, RAW_METADATA_DIR); read here by
# name, so that reading them needs no TensorFlow.
TRANSFORM_FN_DIR = "transform_fn"
TRANSFORMED_METADATA_DIR = "transformed_metadata"
RAW_METADATA_DIR = "metadata"


class TransformGraphError(InputError):
    """A transform_graph directory cannot be used; the message names the path."""


@dataclasses.dataclass(frozen=True)
class TransformOutputFolders:
    """The folders of one Transform output (what tft.TFTransformOutput reads).

    Attributes:
      uri: The transform_graph folder.
    """

    uri: str

    @property
    def transform_savedmodel_dir(self) -> str:
        """transform_fn/: saved_model.pb, assets/, variables/."""
        return os.path.join(self.uri, TRANSFORM_FN_DIR)

    @property
    def transformed_metadata_dir(self) -> str:
        """transformed_metadata/: schema.pbtxt and asset_map."""
        return os.path.join(self.uri, TRANSFORMED_METADATA_DIR)


@dataclasses.dataclass(frozen=True)
class TransformGraphInfo:
    """What the validator needs from a transform graph.

    Attributes:
      uri: The transform_graph directory.
      schema: The transformed schema (transformed_metadata/schema.pbtxt).
      raw_schema: The raw schema (metadata/schema.pbtxt), or None when absent.
      vocabulary_sizes: Vocabulary name -> entries, without OOV buckets.
      derivations: Transformed feature -> how the transform graph computes it
        (`graph_analysis.FeatureDerivation`); empty when the graph has no
        transform_fn/saved_model.pb.
    """

    uri: str
    schema: schema_pb2.Schema
    raw_schema: schema_pb2.Schema | None
    vocabulary_sizes: Mapping[str, int]
    derivations: Mapping[str, graph_analysis.FeatureDerivation] = dataclasses.field(
        default_factory=dict
    )


def _asset_files(transform_savedmodel_dir: str) -> list[str]:
    assets = os.path.join(transform_savedmodel_dir, _ASSETS_DIR)
    if not storage.isdir(assets):
        return []
    return sorted(storage.listdir(assets))


def _vocabulary_files(output: TransformOutputFolders) -> dict[str, str]:
    """Vocabulary name -> asset file name.

    From transformed_metadata/asset_map where it names any; TFT itself falls back
    to the asset file names when asset_map is absent or empty, and so does this,
    so an emptied asset_map cannot drop vocabularies silently.
    """
    asset_map = graph_analysis.read_asset_map(output.transformed_metadata_dir)
    if asset_map:
        return dict(asset_map)
    return {
        graph_analysis.vocabulary_name_of_asset(name, None): name
        for name in _asset_files(output.transform_savedmodel_dir)
    }


class VocabularySizes(Mapping):
    """Vocabulary name -> entries (OOV buckets not included), read on first use.

    Entries are counted as TensorFlow's table initializer reads the file (a
    trailing "\\r" per line is dropped), so a file TensorFlow cannot build a table
    from is an error here too.

    Args:
      tf_transform_output: The transform output holding the vocabularies: its
        folders, or a tft.TFTransformOutput.
      derivations: The graph's derivations, kept here so that callers given only
        this mapping (validation.plan) still see what the graph says.
    """

    def __init__(
        self,
        tf_transform_output: Any,
        derivations: Mapping[str, graph_analysis.FeatureDerivation] | None = None,
    ) -> None:
        if not isinstance(tf_transform_output, TransformOutputFolders):
            tf_transform_output = TransformOutputFolders(_output_uri(tf_transform_output))
        self._output = tf_transform_output
        self._files = _vocabulary_files(tf_transform_output)
        self._names = sorted(self._files)
        self._sizes: dict[str, int] = {}
        self.derivations = dict(derivations or {})

    def __getitem__(self, name: str) -> int:
        if name not in self._files:
            raise KeyError(name)
        if name not in self._sizes:
            self._sizes[name] = self._read_size(name)
        return self._sizes[name]

    def file(self, name: str) -> str:
        """The vocabulary's asset file path."""
        return os.path.join(self._output.transform_savedmodel_dir, _ASSETS_DIR, self._files[name])

    def _read_size(self, name: str) -> int:
        assets = os.path.join(self._output.transform_savedmodel_dir, _ASSETS_DIR)
        path = self.file(name)
        if not storage.exists(path):
            raise TransformGraphError(
                f"Vocabulary {name!r} of the transform graph has no file {path!r} in "
                f"{assets!r} (looked up through transformed_metadata/asset_map, then by "
                "name). Re-run Transform, or restore the transform_fn/assets folder."
            )
        file_format = (
            graph_analysis.TFRECORD_GZIP
            if path.endswith(_TFRECORD_GZIP_SUFFIX)
            else graph_analysis.TEXT
        )
        try:
            return graph_analysis.count_vocabulary(path, file_format, name)
        except OSError as error:
            raise TransformGraphError(
                f"Vocabulary {name!r} in {assets!r} cannot be read: {error}. "
                "Re-run Transform, or restore the transform_fn/assets folder."
            ) from error

    def __contains__(self, name: object) -> bool:
        return name in self._files

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


def _read_schema(path: str, what: str) -> schema_pb2.Schema:
    if storage.isdir(path):
        raise TransformGraphError(
            f"The {what} {path!r} is a folder, not a text Schema proto; the transform graph "
            "is damaged: re-run Transform."
        )
    try:
        with storage.open_file(path, "rb") as f:
            text = f.read().decode("utf-8")
        if not text.strip():
            raise TransformGraphError(
                f"The {what} {path!r} is empty; the transform graph is damaged: re-run Transform."
            )
        return text_format.Parse(text, schema_pb2.Schema())
    except UnicodeDecodeError as error:
        raise TransformGraphError(
            f"The {what} {path!r} is not UTF-8 text ({error}); the transform graph is "
            "damaged: re-run Transform."
        ) from error
    except text_format.ParseError as error:
        raise TransformGraphError(
            f"The {what} {path!r} is not a text Schema proto ({error}); the transform graph "
            "is damaged: re-run Transform."
        ) from error
    except OSError as error:
        raise TransformGraphError(
            f"The {what} {path!r} cannot be read: {storage.error_text(error)}."
        ) from error


def load_transform_graph(uri: str) -> TransformGraphInfo:
    """Reads the schemas, vocabulary sizes and graph derivations of a transform graph.

    Args:
      uri: A transform_graph artifact directory (holding transform_fn/ and
        transformed_metadata/).

    Returns:
      The schema, raw schema, vocabulary sizes and, when transform_fn holds a
      SavedModel, how the graph computes each output.

    Raises:
      TransformGraphError: The directory is not a usable Transform output.
      graph_analysis.GraphAnalysisError: transform_fn/saved_model.pb is damaged.
    """
    files.check_regular_files(uri, "transform graph")
    output = TransformOutputFolders(uri)
    schema_path = os.path.join(output.transformed_metadata_dir, _SCHEMA_FILE)
    try:
        schema_exists = storage.exists(schema_path)
    except OSError as error:
        # An unknown scheme (foo://) or an unreachable bucket: bad input, not a bug.
        raise TransformGraphError(
            f"The transform graph folder {uri!r} cannot be read "
            f"({storage.error_text(error)}); pass a local folder or a path on a filesystem "
            "TensorFlow reads (gs://, or s3:// and hdfs:// with tensorflow-io)."
        ) from None
    if not schema_exists:
        raise TransformGraphError(
            f"The transform graph folder {uri!r} has no {schema_path!r}. Pass the "
            "`transform_graph` output of a Transform component (it holds transform_fn/ and "
            "transformed_metadata/)."
        )
    schema = _read_schema(schema_path, "transformed schema")
    raw_schema_path = os.path.join(uri, RAW_METADATA_DIR, _SCHEMA_FILE)
    raw_schema = (
        _read_schema(raw_schema_path, "raw schema") if storage.exists(raw_schema_path) else None
    )
    derivations = {}
    saved_model = os.path.join(output.transform_savedmodel_dir, graph_analysis.SAVED_MODEL_FILE)
    if storage.exists(saved_model):
        derivations = graph_analysis.analyze_transform_fn(
            output.transform_savedmodel_dir,
            asset_map=graph_analysis.read_asset_map(output.transformed_metadata_dir),
        )
    else:
        logging.warning(
            "%r has no %s, so no bound is read from the graph; only the schema's "
            "int_domains and vocabulary names are used.",
            output.transform_savedmodel_dir,
            graph_analysis.SAVED_MODEL_FILE,
        )
    return TransformGraphInfo(
        uri, schema, raw_schema, VocabularySizes(output, derivations), derivations
    )


def is_tft_output(value: object) -> bool:
    """Whether value is a tft.TFTransformOutput, told without importing tensorflow_transform.

    An object of that class exists only once the caller imported the module.
    """
    tft = sys.modules.get("tensorflow_transform")
    output_class = getattr(tft, "TFTransformOutput", None)
    return output_class is not None and isinstance(value, output_class)


def _output_uri(tf_transform_output: Any) -> str:
    """The transform_graph folder of a tft.TFTransformOutput (its transform_fn's parent)."""
    return os.path.dirname(tf_transform_output.transform_savedmodel_dir.rstrip("/"))


def _graph_info(tf_transform_output: Any, function: str) -> TransformGraphInfo:
    if is_tft_output(tf_transform_output):
        uri = _output_uri(tf_transform_output)
    elif isinstance(tf_transform_output, (str, os.PathLike)):
        uri = os.fspath(tf_transform_output)
    else:
        raise TransformGraphError(
            f"{function}(tf_transform_output=...) must be a tft.TFTransformOutput or the "
            f"transform_graph path, got a {type(tf_transform_output).__name__}."
        )
    if not storage.isdir(uri):
        raise TransformGraphError(
            f"{function}(tf_transform_output={uri!r}): no such folder; pass "
            "fn_args.transform_output (the Transform component's transform_graph)."
        )
    return load_transform_graph(uri)


def embedding_input_dims(
    tf_transform_output: Any,
) -> dict[str, int]:
    """Returns every checked feature's Embedding input_dim, as the validator checks it.

    Call it once in the Trainer and size every Embedding / CategoryEncoding from
    it: vocab_size + num_oov_buckets for a lookup, the bucket count for a hash
    or bucketize, int_domain.max + 1 otherwise.

    Args:
      tf_transform_output: A `tft.TFTransformOutput`, or the transform_graph path.

    Returns:
      Transformed feature -> the number of rows its table needs.

    Raises:
      InputError: tf_transform_output is not a transform graph, or a bound
        cannot be worked out.
    """
    graph = _graph_info(tf_transform_output, "embedding_input_dims")
    resolved = bounds_lib.resolve_bounds(
        graph.schema, graph.vocabulary_sizes, derivations=graph.derivations
    )
    return {b.feature: b.upper_bound for b in resolved}


def embedding_input_dim(
    tf_transform_output: Any,
    feature: str,
    vocabulary: str | None = None,
) -> int:
    """Returns the Embedding input_dim the validator expects for a transformed feature.

    Use it in the Trainer so both sides agree: what the transform graph says
    (vocab_size + num_oov_buckets, or a bucket count), else int_domain.max + 1.

    Args:
      tf_transform_output: A `tft.TFTransformOutput`, or the transform_graph path.
      feature: Transformed feature name.
      vocabulary: The feature's vocabulary name, overriding the graph.

    Returns:
      The number of rows the feature's embedding table needs.

    Raises:
      InputError: The feature's range cannot be worked out from the graph.
    """
    graph = _graph_info(tf_transform_output, "embedding_input_dim")
    names = sorted(proto.name for proto in graph.schema.feature)
    if feature not in names:
        raise bounds_lib.BoundsError(
            f"embedding_input_dim(feature={feature!r}) is not a transformed feature of "
            f"tf_transform_output; valid names: {names!r}."
        )
    if vocabulary is not None and vocabulary not in graph.vocabulary_sizes:
        raise bounds_lib.BoundsError(
            f"embedding_input_dim(vocabulary={vocabulary!r}) is not a vocabulary of "
            f"tf_transform_output; valid names: {sorted(graph.vocabulary_sizes)!r}."
        )
    try:
        feature_bounds = bounds_lib.feature_bounds(
            feature,
            graph.schema,
            graph.vocabulary_sizes,
            vocabulary=vocabulary,
            derivation=graph.derivations.get(feature),
        )
    except bounds_lib.BoundsError as error:
        raise bounds_lib.BoundsError(
            f"embedding_input_dim(feature={feature!r}): {error}"
        ) from error
    return feature_bounds.upper_bound
