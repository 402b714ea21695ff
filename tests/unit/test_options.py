"""ValidatorOptions: one place that checks, defaults and serialises every setting."""

import argparse

import numpy as np
import pytest

from embedding_guard.cli import check as cli_check
from embedding_guard.cli import main as cli
from embedding_guard.run.options import (
    CLI_FLAGS,
    OptionsError,
    OptionsTypeError,
    ValidatorOptions,
)


def _cli_options(*flags: str) -> ValidatorOptions:
    args = cli.build_parser().parse_args(["check", "--schema", "s", "--examples", "e", *flags])
    return ValidatorOptions.from_cli_args(args)


def test_defaults_warn_on_drift_and_compare_with_train_when_it_exists():
    options = ValidatorOptions().validate()

    assert options.max_oov_rate is None
    assert options.max_oov_rate_increase == 0.05
    assert options.effective_baseline_split(["eval", "train"]) == "train"
    # No train split and no baseline named: no drift check, and no error either.
    assert options.effective_baseline_split(["eval", "serving"]) is None


def test_exec_properties_round_trip_every_setting():
    options = ValidatorOptions(
        features=("month_xf", "city_xf"),
        exclude_splits=("test",),
        embedding_input_dims={"month_xf": 12},
        feature_vocabularies={"city_xf": "city"},
        fail_on_block=True,
        examples_kind="raw",
        max_oov_rate={"city_xf": 0.25},
        max_oov_rate_severity="ERROR",
        max_oov_rate_increase=None,
        max_oov_rate_increase_severity="ERROR",
        baseline_split="eval",
        parallelism=3,
        unchecked_severity="ERROR",
    ).validate()

    properties = options.to_exec_properties()

    assert ValidatorOptions.from_exec_properties(properties) == options
    assert properties["max_oov_rate_increase"] == "null"
    assert properties["max_oov_rate"] == '{"city_xf": 0.25}'
    assert properties["unchecked_severity"] == "ERROR"


def test_exec_properties_without_keys_take_the_defaults():
    assert ValidatorOptions.from_exec_properties({}) == ValidatorOptions().validate()


def test_broken_json_in_an_exec_property_names_the_property():
    with pytest.raises(OptionsError, match=r"exec property 'features' = '\[oops' is not JSON"):
        ValidatorOptions.from_exec_properties({"features": "[oops"})


def test_numpy_scalars_are_accepted_as_python_numbers():
    options = ValidatorOptions(
        embedding_input_dims={"month_xf": np.int64(12)},
        max_oov_rate=np.float32(0.5),
        parallelism=np.int32(2),
    ).validate()

    assert options.embedding_input_dims == {"month_xf": 12}
    assert type(options.embedding_input_dims["month_xf"]) is int
    assert (options.max_oov_rate, type(options.max_oov_rate)) == (0.5, float)
    assert options.parallelism == 2


@pytest.mark.parametrize(
    ("settings", "error", "message"),
    [
        ({"embedding_input_dims": {"m": "25"}}, OptionsError, "got '25' (str)"),
        ({"embedding_input_dims": {"m": np.float64(2.5)}}, OptionsError, "got 2.5 (float64)"),
        ({"embedding_input_dims": {"m": True}}, OptionsError, "got True"),
        ({"max_oov_rate": 1.5}, OptionsError, "max_oov_rate must be a rate between 0 and 1"),
        ({"max_oov_rate": {"m": -0.1}}, OptionsError, "max_oov_rate['m'] must be a rate"),
        ({"parallelism": 0}, OptionsError, "parallelism must be a positive int"),
        ({"features": "city_xf"}, OptionsTypeError, "e.g. features=['city_xf']"),
        ({"fail_on_block": 1}, OptionsTypeError, "fail_on_block must be True or False"),
        ({"baseline_split": "-x"}, OptionsError, "Split names are expected to be alphanumeric"),
        ({"examples_kind": "csv"}, OptionsError, "['auto', 'raw', 'transformed']"),
        (
            {"unchecked_severity": "warning"},
            OptionsError,
            "unchecked_severity must be one of ['ERROR', 'INFO', 'WARNING'], got 'warning'",
        ),
    ],
)
def test_bad_settings_name_the_setting_and_show_the_value(settings, error, message):
    with pytest.raises(error) as raised:
        ValidatorOptions(**settings).validate()

    assert message in str(raised.value)


def test_type_errors_are_also_input_errors():
    # The CLI maps every InputError to exit 2; Python callers expect TypeError.
    with pytest.raises(TypeError) as raised:
        ValidatorOptions(features=3).validate()

    assert isinstance(raised.value, OptionsError)


def test_messages_use_the_cli_flag_names():
    with pytest.raises(OptionsError, match=r"^--parallelism must be a positive int"):
        ValidatorOptions(parallelism=-1).validate(CLI_FLAGS)


def test_cli_expresses_per_feature_thresholds_and_switches_drift_off():
    options = _cli_options(
        "--max-oov-rate", "city_xf=0.1", "--max-oov-rate", "product_xf=0.3",
        "--max-oov-rate-increase", "off",
    )  # fmt: skip

    assert options.max_oov_rate == {"city_xf": 0.1, "product_xf": 0.3}
    assert options.max_oov_rate_increase is None


def test_cli_defaults_equal_the_component_defaults():
    assert _cli_options() == ValidatorOptions().validate()


def test_unchecked_severity_defaults_to_only_listing_and_takes_the_cli_flag():
    assert ValidatorOptions().validate().unchecked_severity == "INFO"
    assert ValidatorOptions.from_exec_properties({}).unchecked_severity == "INFO"
    assert _cli_options("--unchecked-severity", "ERROR").unchecked_severity == "ERROR"


def test_a_bad_unchecked_severity_names_the_flag_in_the_cli():
    with pytest.raises(OptionsError, match=r"^--unchecked-severity must be one of"):
        ValidatorOptions(unchecked_severity="FATAL").validate(CLI_FLAGS)


def test_the_cli_refuses_an_unknown_unchecked_severity(capsys):
    with pytest.raises(SystemExit) as exited:
        _cli_options("--unchecked-severity", "FATAL")

    assert exited.value.code == cli.EXIT_USAGE
    assert "--unchecked-severity: invalid choice: 'FATAL'" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--embedding-dim", "m=3", "--embedding-dim", "m=4"], "--embedding-dim names 'm' twice"),
        (["--max-oov-rate", "0.1", "--max-oov-rate", "c=0.2"], "--max-oov-rate mixes one rate"),
        (["--max-oov-rate", "0.1", "--max-oov-rate", "0.2"], "--max-oov-rate is given 2 times"),
        (["--feature", "a", "--embedding-dim", "b=3"], "--embedding-dim names ['b']"),
    ],
)
def test_contradicting_cli_flags_fail_naming_the_flag(flags, message):
    with pytest.raises(OptionsError) as raised:
        _cli_options(*flags)

    assert message in str(raised.value)


def test_bad_rate_flag_is_a_usage_error_naming_the_flag():
    parse = cli_check._threshold("--max-oov-rate", allow_off=False)  # noqa: SLF001

    with pytest.raises(argparse.ArgumentTypeError, match=r"--max-oov-rate takes RATE"):
        parse("off")


def test_misspelled_baseline_split_lists_the_splits():
    options = ValidatorOptions(baseline_split="trian").validate()

    with pytest.raises(OptionsError) as raised:
        options.check_against_run(["eval", "train"], ["city_xf"])

    assert "baseline_split 'trian' is not a validated split; splits: ['eval', 'train']" in str(
        raised.value
    )


def test_misspelled_feature_in_a_threshold_lists_the_checked_features():
    options = ValidatorOptions(max_oov_rate_increase={"cty_xf": 0.1}).validate()

    with pytest.raises(OptionsError) as raised:
        options.check_against_run(["train"], ["city_xf", "product_xf"], CLI_FLAGS)

    assert "--max-oov-rate-increase names ['cty_xf']" in str(raised.value)
    assert "['city_xf', 'product_xf']" in str(raised.value)
