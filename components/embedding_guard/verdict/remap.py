"""Which token each embedding row was trained for: an old vocabulary against a new one.

TFT orders a vocabulary by frequency, so Transform on a new span can put a token
on another row while every index stays in range. A model whose rows were trained
on the old order then reads another token's row. `VocabularyRemap` compares the
old vocabulary (a baseline transform graph's, or the one inside the model) with
the current one; `RemapCounter` counts, batch by batch and mergeable like the
core's accumulators, the values that would reach a row trained for another token.
Pure Python and numpy; no TensorFlow or TFX.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np

# How many moved tokens a report names, most frequent first.
TOP_MOVED_TOKENS = 10
# How many added or removed tokens a report names, in vocabulary order.
NAMED_TOKENS = 10
# Longest token text kept in a report.
_TOKEN_MAX_CHARS = 100


def token_text(token: bytes) -> str:
    """A vocabulary token as report text: UTF-8, escaped where it is not, cut short."""
    text = token[:_TOKEN_MAX_CHARS].decode("utf-8", errors="backslashreplace")
    return text + ("..." if len(token) > _TOKEN_MAX_CHARS else "")


def _as_token(value: object) -> bytes:
    # Raw values are bytes (string features) or ints (integer features, whose
    # vocabulary holds their decimal text).
    if isinstance(value, bytes):
        return value
    return str(value).encode("utf-8")


@dataclasses.dataclass(frozen=True)
class VocabularyRemap:
    """An old vocabulary against the current one, for one transformed feature.

    Attributes:
      feature: The transformed feature.
      old_tokens: The old vocabulary's keys, in row order.
      new_tokens: The current vocabulary's keys, in row order.
      old_source: Where the old rows come from, as messages say it (e.g.
        "the model's transform layer ('/m/assets/vocab_x')").
      old_num_oov_buckets: OOV buckets after the old vocabulary.
      new_num_oov_buckets: OOV buckets after the current vocabulary.
      old_default_value: The old lookup's value for unknown keys without buckets.
      old_table_size: Rows of the old model's table for the feature, when known
        (the model's input_dim); else old vocabulary plus its OOV buckets.

    A current row is moved when it lies inside the old table and the old model
    trained it for another token: its token sat on another row of the old
    vocabulary, or on none while the row held an old token. A new token on a
    row past the old vocabulary (a vocabulary grown at its end) is not moved;
    rows past the old table are a table that must grow, counted apart.
    """

    feature: str
    old_tokens: tuple[bytes, ...]
    new_tokens: tuple[bytes, ...]
    old_source: str = ""
    old_num_oov_buckets: int = 0
    new_num_oov_buckets: int = 0
    old_default_value: int | None = -1
    old_table_size: int | None = None
    # Derived in __post_init__, per current row: its token's old row (-1: none),
    # whether the old vocabulary holds the token, and whether the row is moved.
    old_rows: np.ndarray = dataclasses.field(init=False, compare=False, repr=False)
    in_old: np.ndarray = dataclasses.field(init=False, compare=False, repr=False)
    moved: np.ndarray = dataclasses.field(init=False, compare=False, repr=False)
    _index: dict[bytes, int] | None = dataclasses.field(
        init=False, compare=False, repr=False, default=None
    )

    def __post_init__(self) -> None:
        index = self.old_index()
        size = len(self.new_tokens)
        old_rows = np.fromiter(
            (index.get(token, -1) for token in self.new_tokens), dtype=np.int64, count=size
        )
        in_old = old_rows >= 0
        rows = np.arange(size, dtype=np.int64)
        moved = np.where(in_old, old_rows != rows, rows < self.old_size)
        moved &= rows < self.old_rows_in_table
        object.__setattr__(self, "old_rows", old_rows)
        object.__setattr__(self, "in_old", in_old)
        object.__setattr__(self, "moved", moved)

    @property
    def old_size(self) -> int:
        return len(self.old_tokens)

    @property
    def new_size(self) -> int:
        return len(self.new_tokens)

    @property
    def old_rows_in_table(self) -> int:
        """Rows the old model's table has: its known size, else vocabulary plus buckets."""
        if self.old_table_size is not None:
            return self.old_table_size
        return self.old_size + self.old_num_oov_buckets

    @property
    def new_rows_needed(self) -> int:
        return self.new_size + self.new_num_oov_buckets

    @property
    def identical(self) -> bool:
        """Same tokens on the same rows, and OOV values on the same rows too."""
        return (
            self.old_tokens == self.new_tokens
            and self.old_num_oov_buckets == self.new_num_oov_buckets
        )

    def old_index(self) -> dict[bytes, int]:
        """Old token -> its old row; built once, and not pickled to Beam workers."""
        if self._index is None:
            object.__setattr__(
                self, "_index", {token: row for row, token in enumerate(self.old_tokens)}
            )
        return self._index  # type: ignore[return-value]

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_index"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    @property
    def num_added(self) -> int:
        return int(self.new_size - np.count_nonzero(self.in_old))

    @property
    def num_removed(self) -> int:
        # Keys of a table are unique: the tokens both hold are the current ones in_old.
        return int(self.old_size - np.count_nonzero(self.in_old))

    @property
    def num_moved(self) -> int:
        """Tokens both vocabularies hold, on different rows."""
        rows = np.arange(self.new_size, dtype=np.int64)
        return int(np.count_nonzero(self.in_old & (self.old_rows != rows)))

    def added(self, limit: int | None = None) -> list[bytes]:
        """Tokens of the current vocabulary that the old one lacks, in row order."""
        rows = np.flatnonzero(~self.in_old)[:limit]
        return [self.new_tokens[row] for row in rows.tolist()]

    def removed(self, limit: int | None = None) -> list[bytes]:
        """Tokens of the old vocabulary that the current one lacks, in old row order."""
        held = np.zeros(self.old_size, dtype=bool)
        held[self.old_rows[self.in_old]] = True
        rows = np.flatnonzero(~held)[:limit]
        return [self.old_tokens[row] for row in rows.tolist()]

    def moved_tokens(self) -> list[tuple[bytes, int, int]]:
        """(token, old row, new row) of every token both hold on different rows."""
        rows, held = self.old_rows.tolist(), self.in_old.tolist()
        return [
            (token, rows[new], new)
            for new, token in enumerate(self.new_tokens)
            if held[new] and rows[new] != new
        ]

    def oov_row_moves(self) -> bool:
        """Whether a value unknown to both vocabularies reaches another row now.

        With the same number of buckets, a key's bucket is the same hash in both,
        so its row moves exactly when the vocabulary size does. Without buckets
        both give their default_value (the current one is the value itself).
        Different bucket counts hash keys differently: counted as moved.
        """
        if self.old_num_oov_buckets != self.new_num_oov_buckets:
            return True
        return self.old_num_oov_buckets > 0 and self.old_size != self.new_size


@dataclasses.dataclass(frozen=True)
class MovedToken:
    """A token whose values reach another row than the old vocabulary gave it.

    Attributes:
      token: The token, as text.
      old_row: Its old row; None when the old vocabulary lacks it (it reached
        an old OOV row or default).
      new_row: Its row now; None when the current vocabulary lacks it (raw
        mode: it falls in an OOV bucket or on the default now).
      count: Values of the split that carry it.
    """

    token: str
    old_row: int | None
    new_row: int | None
    count: int

    def describe(self) -> str:
        old = "no row" if self.old_row is None else f"row {self.old_row}"
        new = "OOV" if self.new_row is None else f"row {self.new_row}"
        return f"{self.token!r} {old} -> {new} x{self.count}"


@dataclasses.dataclass(frozen=True)
class RemapStats:
    """The remapping of one feature over one split, as the report holds it.

    Attributes:
      old_source: Where the old rows come from.
      remapped_values: Values of the split that reach another row than the old
        vocabulary gives their token: on transformed examples the values below
        the current vocabulary size whose token sits elsewhere in the old one, or
        nowhere; in raw mode every value, OOV-bucket ones included.
      old_vocab_size: Entries of the old vocabulary.
      new_vocab_size: Entries of the current vocabulary.
      tokens_added: Tokens only the current vocabulary holds.
      tokens_removed: Tokens only the old vocabulary holds.
      tokens_moved: Tokens both hold, on different rows.
      old_table_rows: Rows of the old model's table for the feature.
      new_rows_needed: Rows the current vocabulary plus OOV buckets need.
      top_moved: The most frequent remapped tokens of the split.
      added_sample: The first added tokens, as text.
      removed_sample: The first removed tokens, as text.
      oov_values_remapped: Of remapped_values, those outside the current
        vocabulary (raw mode only).
      values_past_old_table: Values inside the current range but at or past the
        old table's rows: the table must grow before they have a row at all.
    """

    old_source: str
    remapped_values: int
    old_vocab_size: int
    new_vocab_size: int
    tokens_added: int
    tokens_removed: int
    tokens_moved: int
    old_table_rows: int
    new_rows_needed: int
    top_moved: tuple[MovedToken, ...] = ()
    added_sample: tuple[str, ...] = ()
    removed_sample: tuple[str, ...] = ()
    oov_values_remapped: int = 0
    values_past_old_table: int = 0

    @property
    def changed(self) -> bool:
        return bool(self.tokens_added or self.tokens_removed or self.tokens_moved)

    @property
    def table_must_grow(self) -> bool:
        return self.new_rows_needed > self.old_table_rows

    def to_json(self) -> dict:
        result = dataclasses.asdict(self)
        result["top_moved"] = [dataclasses.asdict(m) for m in self.top_moved]
        result["added_sample"] = list(self.added_sample)
        result["removed_sample"] = list(self.removed_sample)
        return result

    @classmethod
    def from_json(cls, document: Any, source: str) -> RemapStats:
        """Reads to_json's document back.

        Raises:
          ValueError: A field is missing or has the wrong type; the message names
            source and the field.
        """
        if not isinstance(document, Mapping):
            raise ValueError(f"{source} must be a JSON object, got {document!r:.80}")
        try:
            top = tuple(
                MovedToken(str(m["token"]), m["old_row"], m["new_row"], int(m["count"]))
                for m in document.get("top_moved", ())
            )
            return cls(
                old_source=str(document["old_source"]),
                remapped_values=_count(document, "remapped_values"),
                old_vocab_size=_count(document, "old_vocab_size"),
                new_vocab_size=_count(document, "new_vocab_size"),
                tokens_added=_count(document, "tokens_added"),
                tokens_removed=_count(document, "tokens_removed"),
                tokens_moved=_count(document, "tokens_moved"),
                old_table_rows=_count(document, "old_table_rows"),
                new_rows_needed=_count(document, "new_rows_needed"),
                top_moved=top,
                added_sample=tuple(str(t) for t in document.get("added_sample", ())),
                removed_sample=tuple(str(t) for t in document.get("removed_sample", ())),
                oov_values_remapped=_count(document, "oov_values_remapped", 0),
                values_past_old_table=_count(document, "values_past_old_table", 0),
            )
        except (KeyError, TypeError) as error:
            raise ValueError(f"{source} lacks or mistypes field {error}") from None


def _count(document: Mapping, key: str, default: int | None = None) -> int:
    value = document.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(repr(key))
    return value


class RemapCounter:
    """Counts one feature's remapped values, batch by batch; merge() combines shards.

    Args:
      remap: The comparison of the feature's old and current vocabularies.
    """

    __slots__ = (
        "remap",
        "remapped",
        "moved_counts",
        "oov_remapped",
        "oov_tokens",
        "past_old_table",
    )

    def __init__(self, remap: VocabularyRemap):
        self.remap = remap
        self.remapped = 0
        # Per current row, the values that reached it; only rows whose token moved
        # are ever counted, so the rest stay 0.
        self.moved_counts = np.zeros(remap.new_size, dtype=np.int64)
        self.oov_remapped = 0
        # Raw mode: tokens outside the current vocabulary that the old one held.
        self.oov_tokens: dict[bytes, int] = {}
        # Values inside the current range but past the old table's rows.
        self.past_old_table = 0

    def add(
        self,
        values: np.ndarray,
        row_lengths: np.ndarray,
        raw_values: np.ndarray | None = None,
        raw_row_lengths: np.ndarray | None = None,
    ) -> None:
        """Counts one batch: the feature's flat indices, and in raw mode its raw values.

        Values that are not integers are not indices of any row and count nowhere.
        """
        values = np.asarray(values)
        if values.size == 0 or not np.issubdtype(values.dtype, np.integer):
            return
        remap = self.remap
        in_vocab = (values >= 0) & (values < remap.new_size)
        rows = values[in_vocab].astype(np.int64, copy=False)
        flagged = rows[remap.moved[rows]]
        self.remapped += int(flagged.size)
        if flagged.size:
            self.moved_counts += np.bincount(flagged, minlength=remap.new_size)
        old_rows = remap.old_rows_in_table
        if old_rows < remap.new_rows_needed:
            self.past_old_table += int(
                np.count_nonzero((values >= old_rows) & (values < remap.new_rows_needed))
            )
        if raw_values is None:
            return
        raw_values = np.asarray(raw_values)
        # Raw and transformed values line up only for element-wise transforms (a
        # vocabulary lookup), as the core's raw OOV samples require too.
        if raw_values.shape != values.shape or not np.array_equal(
            np.asarray(raw_row_lengths), np.asarray(row_lengths)
        ):
            return
        outside = ~in_vocab & (values < remap.old_rows_in_table)
        if outside.any():
            self._add_outside(values[outside], raw_values[outside])

    def _add_outside(self, values: np.ndarray, raw_values: np.ndarray) -> None:
        """Raw mode: values outside the current vocabulary, inside the old table.

        An OOV-bucket value or default_value now: its old index is the old row of
        its raw token, or else the old lookup's bucket or default for it.
        """
        remap = self.remap
        index = remap.old_index()
        unknown_moves = remap.oov_row_moves()
        for value, raw in zip(values.tolist(), raw_values.tolist(), strict=True):
            token = _as_token(raw)
            old_row = index.get(token)
            if old_row is not None:
                if old_row != value:
                    self.oov_remapped += 1
                    self.oov_tokens[token] = self.oov_tokens.get(token, 0) + 1
            elif unknown_moves or (
                remap.old_num_oov_buckets == 0 and remap.old_default_value != value
            ):
                self.oov_remapped += 1

    def merge(self, other: RemapCounter) -> RemapCounter:
        """Adds other's counts into self and returns self."""
        self.remapped += other.remapped
        self.moved_counts += other.moved_counts
        self.oov_remapped += other.oov_remapped
        self.past_old_table += other.past_old_table
        for token, count in other.oov_tokens.items():
            self.oov_tokens[token] = self.oov_tokens.get(token, 0) + count
        return self

    def result(self) -> RemapStats:
        remap = self.remap
        order = np.argsort(-self.moved_counts, kind="stable")[:TOP_MOVED_TOKENS]
        old_rows, in_old = remap.old_rows, remap.in_old
        top = [
            (
                int(self.moved_counts[row]),
                MovedToken(
                    token_text(remap.new_tokens[row]),
                    int(old_rows[row]) if in_old[row] else None,
                    int(row),
                    int(self.moved_counts[row]),
                ),
            )
            for row in order.tolist()
            if self.moved_counts[row]
        ]
        old_index = remap.old_index()
        top += [
            (count, MovedToken(token_text(token), old_index[token], None, count))
            for token, count in self.oov_tokens.items()
        ]
        top.sort(key=lambda item: (-item[0], item[1].token))
        return RemapStats(
            old_source=remap.old_source,
            remapped_values=self.remapped + self.oov_remapped,
            old_vocab_size=remap.old_size,
            new_vocab_size=remap.new_size,
            tokens_added=remap.num_added,
            tokens_removed=remap.num_removed,
            tokens_moved=remap.num_moved,
            old_table_rows=remap.old_rows_in_table,
            new_rows_needed=remap.new_rows_needed,
            top_moved=tuple(m for _, m in top[:TOP_MOVED_TOKENS]),
            added_sample=tuple(token_text(t) for t in remap.added(NAMED_TOKENS)),
            removed_sample=tuple(token_text(t) for t in remap.removed(NAMED_TOKENS)),
            oov_values_remapped=self.oov_remapped,
            values_past_old_table=self.past_old_table,
        )
