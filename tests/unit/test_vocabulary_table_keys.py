"""How many entries a text-file lookup table holds, as TensorFlow reads the file.

Hand-computed from the rules measured on TF 2.16 (issue #26 facts): vocab_size=N
reads the first N lines and fails when the file has fewer; store_frequency keys
are column 1 of "freq token" lines split on " ", duplicates count on that column.
"""

import pytest

from embedding_guard.bounds.graph_derivation import (
    DerivationKind,
    FeatureDerivation,
    GraphAnalysisError,
)
from embedding_guard.bounds.vocabulary_files import count_vocabulary

LINES = "a\nb\nc\nd\ne f\n"
FREQUENCIES = "6 a\n5 b\n4 c\n3 d\n2 e__SPACE__f\n"


def _file(tmp_path, text: str) -> str:
    path = tmp_path / "vocab"
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize(("declared", "entries"), [(None, 5), (1, 1), (3, 3), (5, 5)])
def test_vocab_size_keeps_the_first_lines(tmp_path, declared, entries):
    path = _file(tmp_path, LINES)
    assert count_vocabulary(path, "text", "v", declared_size=declared) == entries


def test_vocab_size_past_the_file_is_what_tensorflow_rejects(tmp_path):
    path = _file(tmp_path, LINES)
    with pytest.raises(GraphAnalysisError, match=r"has 5 lines .* vocab_size=7"):
        count_vocabulary(path, "text", "v", declared_size=7)


def test_vocab_size_does_not_read_a_duplicate_past_it(tmp_path):
    # TensorFlow stops after vocab_size lines, so a repeat after them builds fine.
    path = _file(tmp_path, "a\nb\na\n")
    assert count_vocabulary(path, "text", "v", declared_size=2) == 2
    with pytest.raises(GraphAnalysisError, match="twice"):
        count_vocabulary(path, "text", "v")


def test_store_frequency_lines_are_keyed_on_column_one(tmp_path):
    path = _file(tmp_path, FREQUENCIES)
    assert count_vocabulary(path, "text", "v", key_index=1, delimiter=" ") == 5


def test_store_frequency_duplicates_count_on_the_key_column(tmp_path):
    # Same count, different tokens: no clash. Different counts, same token: a clash.
    path = _file(tmp_path, "6 a\n6 b\n")
    assert count_vocabulary(path, "text", "v", key_index=1, delimiter=" ") == 2
    path = _file(tmp_path, "6 a\n5 a\n")
    with pytest.raises(GraphAnalysisError, match=r"holds b'a' twice \(lines 1 and 2\)"):
        count_vocabulary(path, "text", "v", key_index=1, delimiter=" ")


def test_store_frequency_line_without_its_key_column_fails(tmp_path):
    path = _file(tmp_path, "6 a\nb\n")
    with pytest.raises(GraphAnalysisError, match=r"line 2 \(b'b'\) has 1 column\(s\) split on ' '"):
        count_vocabulary(path, "text", "v", key_index=1, delimiter=" ")


def _vocabulary(**fields) -> FeatureDerivation:
    return FeatureDerivation(
        feature="f_xf",
        raw_features=("f",),
        kind=DerivationKind.VOCABULARY,
        vocabulary="v",
        **fields,
    )


def test_default_past_the_table_needs_its_row():
    derivation = _vocabulary(vocab_size=5, default_value=9)
    assert derivation.value_range == (0, 10)
    assert (
        "default_value 9 for unknown values (past the 5 entries, so the valid range is "
        "[0, 10): an embedding needs 10 rows)"
    ) in derivation.describe()
    assert "past the" not in _vocabulary(vocab_size=5, default_value=-3).describe()


def test_description_says_how_the_table_reads_its_file():
    truncated = _vocabulary(vocab_size=1, default_value=-1, file_entries=5)
    assert truncated.describe().startswith(
        "vocabulary 'v' (1 entry: the table reads the first 1 of the file's 5 lines, "
        "vocab_size=1), default_value -1"
    )
    frequencies = _vocabulary(vocab_size=5, default_value=-1, key_index=1, delimiter=" ")
    assert frequencies.describe().startswith(
        "vocabulary 'v' (5 entries; keys are column 1 of its lines split on ' ', as "
        "store_frequency writes them), default_value -1"
    )
    assert (
        _vocabulary(vocab_size=5, default_value=-1)
        .describe()
        .startswith("vocabulary 'v' (5 entries), default_value -1")
    )
