"""Why each unchecked integer feature is listed, and hints in the caller's own syntax.

Hand-built schemas: TFX taxi's shape, with a vocabulary feature, a pass-through
integer and the label `tips_xf`.
"""

from __future__ import annotations

import dataclasses

from tensorflow_metadata.proto.v0 import schema_pb2

from embedding_guard.bounds.resolve import setting_hint, unchecked_features
from embedding_guard.run.options import CLI_FLAGS
from embedding_guard.verdict.report_model import UncheckedFeature


@dataclasses.dataclass(frozen=True)
class _Derivation:
    """The two things unchecked_features reads of a graph_analysis.FeatureDerivation."""

    text: str
    raw_features: tuple[str, ...] = ()

    def describe(self) -> str:
        return self.text


def _schema(*names: str) -> schema_pb2.Schema:
    schema = schema_pb2.Schema()
    for name in names:
        schema.feature.add(name=name, type=schema_pb2.INT)
    schema.feature.add(name="fare_xf", type=schema_pb2.FLOAT)
    return schema


# company_xf has a bound in the graph; hour_xf passes through; tips_xf is the label.
SCHEMA = _schema("company_xf", "hour_xf", "tips_xf")
DERIVATIONS = {
    "company_xf": _Derivation("vocabulary 'company' (10 entries) + 1 OOV bucket(s)", ("company",)),
    "hour_xf": _Derivation("a pass-through integer in the transform graph", ("hour",)),
}


def _by_name(unchecked: list[UncheckedFeature]) -> dict[str, UncheckedFeature]:
    return {u.name: u for u in unchecked}


def test_setting_hints_are_flags_for_the_cli_and_keywords_for_python():
    assert setting_hint("embedding_input_dims", "city_xf", "N", CLI_FLAGS) == (
        "--embedding-dim city_xf=N"
    )
    assert setting_hint("features", "city_xf", None, CLI_FLAGS) == "--feature city_xf"
    assert setting_hint("embedding_input_dims", "city_xf", "N") == (
        "embedding_input_dims={'city_xf': N}"
    )
    assert setting_hint("features", "city_xf") == "features=[..., 'city_xf']"


def test_without_features_or_model_every_unbounded_integer_is_not_checked():
    listed = _by_name(unchecked_features(SCHEMA, ["company_xf"], DERIVATIONS))

    assert sorted(listed) == ["hour_xf", "tips_xf"]
    assert {u.role for u in listed.values()} == {UncheckedFeature.NOT_CHECKED}
    assert listed["hour_xf"].why == "a pass-through integer in the transform graph"
    assert listed["hour_xf"].parameter_that_would_check_it.startswith(
        "embedding_input_dims={'hour_xf': N} (the Trainer's table size), a model that looks "
        "it up (the `model` input), or features=[..., 'hour_xf']"
    )


def test_the_cli_hints_name_flags_only():
    listed = _by_name(unchecked_features(SCHEMA, ["company_xf"], DERIVATIONS, names=CLI_FLAGS))

    hint = listed["hour_xf"].parameter_that_would_check_it
    assert hint == (
        "--embedding-dim hour_xf=N (the Trainer's table size), a model that looks it up "
        "(--model), or --feature hour_xf with an int_domain in the schema"
    )
    assert "embedding_input_dims" not in hint and "features=" not in hint


def test_features_left_out_by_the_features_parameter_are_excluded_not_unchecked():
    listed = _by_name(
        unchecked_features(SCHEMA, ["hour_xf"], DERIVATIONS, features=["hour_xf"], names=CLI_FLAGS)
    )

    assert sorted(listed) == ["company_xf", "tips_xf"]
    company = listed["company_xf"]
    assert company.role == UncheckedFeature.EXCLUDED
    # Its vocabulary bound is not why it went unchecked.
    assert company.why == "excluded by --feature"
    assert company.parameter_that_would_check_it == "--feature company_xf"
    assert company.raw_features == ("company",)
    python = _by_name(unchecked_features(SCHEMA, ["hour_xf"], DERIVATIONS, features=["hour_xf"]))
    assert python["company_xf"].why == "excluded by features"
    assert python["company_xf"].parameter_that_would_check_it == "features=[..., 'company_xf']"


def test_with_a_model_an_integer_it_never_looks_up_is_named_as_such():
    # The model looks up hour_xf (it has no bound anywhere) but never tips_xf, the label.
    listed = _by_name(
        unchecked_features(SCHEMA, ["company_xf"], DERIVATIONS, looked_up={"hour_xf", "company_xf"})
    )

    assert listed["tips_xf"].role == UncheckedFeature.NOT_LOOKED_UP
    assert "never looks it up" in listed["tips_xf"].why
    assert listed["hour_xf"].role == UncheckedFeature.NOT_CHECKED


def test_an_excluded_feature_stays_excluded_with_a_model():
    listed = _by_name(
        unchecked_features(
            SCHEMA, ["company_xf"], DERIVATIONS, features=["company_xf"], looked_up={"company_xf"}
        )
    )

    assert {name: u.role for name, u in listed.items()} == {
        "hour_xf": UncheckedFeature.EXCLUDED,
        "tips_xf": UncheckedFeature.EXCLUDED,
    }
