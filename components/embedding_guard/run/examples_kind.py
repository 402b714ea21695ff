"""Which examples a run reads: Transform's output, or ExampleGen's raw examples.

Decided from one example's feature names against the transformed and raw
schemas, without TensorFlow: only raw examples need it (`raw_mode`).
"""

from __future__ import annotations

import enum

from tensorflow_metadata.proto.v0 import schema_pb2

from embedding_guard.bounds import resolve as bounds_lib
from embedding_guard.errors import InputError


class ExamplesKind(str, enum.Enum):
    """What the examples hold: Transform's output, or ExampleGen's raw examples."""

    AUTO = "auto"
    TRANSFORMED = "transformed"
    RAW = "raw"


class ExamplesKindError(InputError):
    """The examples match neither the transformed nor the raw schema."""


def raw_source_feature(
    feature: str, vocabulary: str | None, raw_schema: schema_pb2.Schema | None
) -> str | None:
    """Names the raw feature a transformed feature was made from, or None.

    TFT does not record it; a vocabulary is usually named after its raw feature,
    and transformed names usually add a suffix to the raw name (`city_xf`).
    """
    if raw_schema is None:
        return None
    raw_names = {proto.name for proto in raw_schema.feature}
    if vocabulary in raw_names:
        return vocabulary
    if feature in raw_names:
        return feature
    stripped = bounds_lib.infer_vocabulary(feature, raw_names)
    return stripped


def detect_kind(
    requested: ExamplesKind | str,
    present: set[str] | None,
    transformed_schema: schema_pb2.Schema,
    raw_schema: schema_pb2.Schema | None,
    setting: str = "examples_kind",
) -> ExamplesKind:
    """Decides whether the examples are transformed or raw.

    A feature only the raw schema has (`city`, not `city_xf`) in the sample
    example means raw examples; none means transformed examples.

    Args:
      requested: The examples_kind parameter; AUTO decides from the features.
      present: Feature names of a sample example; None when every split is empty.
        A sample with no features decides as no sample does: TRANSFORMED.
      transformed_schema: The transformed schema.
      raw_schema: The transform graph's raw schema, if it has one.
      setting: How the caller spells examples_kind (`--examples-kind` in the CLI).

    Returns:
      TRANSFORMED or RAW.

    Raises:
      ExamplesKindError: The examples hold features of neither schema, or RAW is
        requested but the graph has no raw schema or the examples are transformed.
    """
    requested = ExamplesKind(requested)

    def spelt(kind: str) -> str:
        return f"{setting} {kind}" if setting.startswith("--") else f"{setting}={kind!r}"

    if requested is ExamplesKind.RAW and raw_schema is None:
        raise ExamplesKindError(
            f"{spelt('raw')} needs the transform graph's raw schema "
            "(metadata/schema.pbtxt), which this graph lacks; pass transformed examples."
        )
    transformed_names = {proto.name for proto in transformed_schema.feature}
    raw_names = {proto.name for proto in raw_schema.feature} if raw_schema else set()
    raw_only = raw_names - transformed_names
    if requested is ExamplesKind.RAW and present is not None:
        transformed_only = transformed_names - raw_names
        # Applied to transformed examples, the graph finds none of its inputs and
        # maps every row to its default or OOV bucket: a verdict on nothing.
        if present & transformed_only and not present & raw_only:
            raise ExamplesKindError(
                f"{spelt('raw')}, but the examples are transformed: they hold "
                f"{sorted(present & transformed_only)!r} and none of the raw features "
                f"{sorted(raw_only)!r}. Pass the raw examples (ExampleGen's output), or "
                f"{spelt('auto')}."
            )
    if requested is not ExamplesKind.AUTO:
        return requested
    # An example with no features at all (every value null) says nothing of either
    # schema; its features are then counted as missing, as in any later example.
    if not present:
        return ExamplesKind.TRANSFORMED
    if raw_only & present:
        return ExamplesKind.RAW
    if transformed_names & present:
        return ExamplesKind.TRANSFORMED
    if raw_schema is None:
        raise ExamplesKindError(
            f"The examples hold none of the schema's features: they have {sorted(present)!r}, "
            f"the schema has {sorted(transformed_names)!r}. Pass the examples this schema "
            "describes."
        )
    raise ExamplesKindError(
        "The examples hold neither the transformed nor the raw features of this transform "
        f"graph: they have {sorted(present)!r}, the transformed schema has "
        f"{sorted(transformed_names)!r} and the raw schema {sorted(raw_names)!r}. Pass the "
        "examples this transform graph was made for."
    )
