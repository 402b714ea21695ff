"""What the transform graph analysis reports: how each output feature is made.

Plain data, no TensorFlow: `FeatureDerivation` per transformed feature, and the
error for a transform graph that cannot be read.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Sequence

from embedding_guard.errors import InputError


class GraphAnalysisError(InputError):
    """A transform_fn SavedModel cannot be read; the message names the path."""


class DerivationKind(str, enum.Enum):
    """How the graph makes an output feature."""

    VOCABULARY = "vocabulary"
    HASH = "hash"
    BUCKETIZE = "bucketize"
    PASSTHROUGH = "passthrough"
    NOT_TRACED = "not traced"


@dataclasses.dataclass(frozen=True)
class FeatureDerivation:
    """How one transformed output feature is computed, read from the graph.

    Attributes:
      feature: Transformed (output) feature name.
      raw_features: Raw input features the output is computed from, sorted.
      kind: The kind of computation that decides its values' range.
      integer: True when the output holds integers.
      vocabulary: The vocabulary's name (its `vocab_filename`, through
        transformed_metadata/asset_map where present), for VOCABULARY.
      vocabulary_file: The asset file the lookup table is built from.
      file_format: "text" or "tfrecord_gzip".
      vocab_size: Entries the table holds, read as TensorFlow reads the file.
      num_oov_buckets: Hash buckets after the vocabulary for unknown keys.
      default_value: The value for unknown keys when num_oov_buckets is 0.
      num_buckets: Hash or bucketize bucket count.
      offset: A constant added after the lookup, hash or bucketize.
      file_entries: Lines of the vocabulary file when the table reads only its
        first `vocab_size` (TextFileInitializer(vocab_size=N)); None otherwise.
      key_index: The file column keys come from: -2 the whole line, 1 for
        store_frequency's "freq token" lines.
      delimiter: The column separator of the file when key_index >= 0.
      missing_key: For a lookup whose keys are a sparse raw feature made dense,
        the key a row without values is looked up as (b"" in TFX's taxi
        example); None otherwise.
      detail: Why the output is not traced, or other facts worth showing.
    """

    feature: str
    raw_features: tuple[str, ...]
    kind: DerivationKind
    integer: bool = True
    vocabulary: str | None = None
    vocabulary_file: str | None = None
    file_format: str | None = None
    vocab_size: int | None = None
    num_oov_buckets: int = 0
    default_value: int | None = None
    num_buckets: int | None = None
    offset: int = 0
    missing_key: bytes | int | None = None
    detail: str = ""
    file_entries: int | None = None
    key_index: int = -2
    delimiter: str = "\t"

    @property
    def value_range(self) -> tuple[int, int] | None:
        """[low, high) of every value the graph can produce, or None when unbounded."""
        if self.kind is DerivationKind.VOCABULARY:
            if self.vocab_size is None:
                return None
            low, high = 0, self.vocab_size + self.num_oov_buckets
            if self.num_oov_buckets == 0 and self.default_value is not None:
                low = min(low, self.default_value)
                high = max(high, self.default_value + 1)
        elif (
            self.kind in (DerivationKind.HASH, DerivationKind.BUCKETIZE)
            and self.num_buckets is not None
        ):
            low, high = 0, self.num_buckets
        else:
            return None
        return low + self.offset, high + self.offset

    def describe(self) -> str:
        """One sentence on how the graph makes the feature, for reports."""
        where = f"in the transform graph (from raw {_names(self.raw_features)})"
        offset = f", then {self.offset:+d}" if self.offset else ""
        if self.kind is DerivationKind.VOCABULARY:
            if self.num_oov_buckets:
                unknown = f" + {self.num_oov_buckets} OOV bucket(s)"
            else:
                unknown = f", default_value {self.default_value} for unknown values"
                if (
                    self.default_value is not None
                    and self.vocab_size is not None
                    and self.default_value >= self.vocab_size
                ):
                    # Rows vocab_size..default-1 never occur, but a lookup of the
                    # default needs its row: the table must hold default + 1 rows.
                    unknown += (
                        f" (past the {self.vocab_size} entries, so the valid range "
                        f"is [0, {self.default_value + 1}): an embedding needs "
                        f"{self.default_value + 1} rows)"
                    )
            return (
                f"vocabulary {self.vocabulary!r} ({self._entries()}){unknown}{offset}, "
                f"from the lookup table that produces {self.feature} {where}"
            )
        if self.kind is DerivationKind.HASH:
            return (
                f"hash into {self.num_buckets} buckets{offset} that produces {self.feature} {where}"
            )
        if self.kind is DerivationKind.BUCKETIZE:
            return (
                f"bucketize into {self.num_buckets} buckets{offset} that produces "
                f"{self.feature} {where}"
            )
        if self.kind is DerivationKind.PASSTHROUGH:
            return (
                f"{self.feature} passes raw {_names(self.raw_features)} through unchanged: "
                "the transform graph gives it no bound"
            )
        return f"{self.feature} is not traced in the transform graph: {self.detail}"

    def _entries(self) -> str:
        """How many entries the table holds, and how it reads them from its file."""
        unit = "entry" if self.vocab_size == 1 else "entries"
        text = f"{self.vocab_size} {unit}"
        if self.file_entries is not None and self.file_entries != self.vocab_size:
            text += (
                f": the table reads the first {self.vocab_size} of the file's "
                f"{self.file_entries} lines, vocab_size={self.vocab_size}"
            )
        if self.key_index >= 0:
            text += (
                f"; keys are column {self.key_index} of its lines split on "
                f"{self.delimiter!r}, as store_frequency writes them"
            )
        return text


def _names(names: Sequence[str]) -> str:
    return ", ".join(repr(n) for n in names) if names else "(no raw feature)"
