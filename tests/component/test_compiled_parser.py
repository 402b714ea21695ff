"""`check` writes the same reports whether the compiled parser or TensorFlow parses.

tests/unit/test_example_parsing.py compares the two parsers record by record, and
test_reader_properties.py runs the reader and the core on both; this runs the
command on the checked-in Transform output, which TensorFlow wrote.
"""

from __future__ import annotations

from test_hostile_shards import _check_outputs

from embedding_guard.read import example_parsing


def test_reports_are_byte_identical_whichever_parser_reads_the_examples(tmp_path, monkeypatch):
    reasons = []
    parse_problem = example_parsing.parse_problem

    def counted(*args, **kwargs):
        columns, problem = parse_problem(*args, **kwargs)
        reasons.append(None if problem is None else problem[0])
        return columns, problem

    monkeypatch.setattr(example_parsing, "parse_problem", counted)
    compiled = _check_outputs(tmp_path / "compiled", monkeypatch, 2)
    # One batch per shard: three parsed in C, and the test split's, where
    # product_xf holds a float: handed back, then its int64 features read in C
    # and product_xf in Python.
    assert sorted(reasons, key=str) == [example_parsing.NOT_INT64, None, None, None, None]
    # The test split's float batch parsed by TensorFlow, the rest in C.
    monkeypatch.setattr(example_parsing, "PYTHON_PARSE_MAX_RECORDS", 0)
    float_batch_by_tensorflow = _check_outputs(tmp_path / "float-by-tf", monkeypatch, 2)
    monkeypatch.setattr(example_parsing, "_tfrecord_framing", None)
    tensorflow = _check_outputs(tmp_path / "tensorflow", monkeypatch, 2)

    assert len(tensorflow) == 12
    assert compiled == tensorflow
    assert float_batch_by_tensorflow == tensorflow
