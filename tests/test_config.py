"""Typed config: unknown keys and wrong types are named; overrides; YAML round trip."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import pytest

from gankit.config import (
    Config,
    apply_override,
    check_arguments,
    check_value,
    config_from_dict,
    config_to_dict,
    load_yaml,
    save_config,
)
from gankit.errors import ConfigError
from gankit.recipes.progan import ProGANRecipe


def test_unknown_key_is_named_with_a_suggestion() -> None:
    with pytest.raises(
        ConfigError,
        match=r"unknown config key train\.'batchsize'.*Did you mean train\.'batch_size'",
    ):
        config_from_dict({"train": {"batchsize": 32}})


def test_wrong_type_names_key_expected_type_and_value() -> None:
    with pytest.raises(ConfigError, match=r"train\.batch_size: expected .*int.*got 'big' \(str\)"):
        config_from_dict({"train": {"batch_size": "big"}})
    with pytest.raises(ConfigError, match=r"train\.amp: 'fp8' is not one of"):
        config_from_dict({"train": {"amp": "fp8"}})
    with pytest.raises(ConfigError, match="expected int"):
        config_from_dict({"train": {"seed": True}})


def test_ints_widen_to_floats_and_nested_sections_build() -> None:
    cfg = config_from_dict({"train": {"kimg": 12}, "data": {"name": "mnist", "resolution": 32}})
    assert cfg.train.kimg == 12.0 and isinstance(cfg.train.kimg, float)
    assert cfg.data.resolution == 32 and cfg.model.name == "auto"  # the recipe's model


def test_dotted_overrides_parse_yaml_values() -> None:
    data: dict = {}
    for assignment in [
        "train.batch_size=32",
        "recipe.args.betas=[0.0, 0.9]",
        "data.name=~/faces",
        "train.out=runs/x",
    ]:
        apply_override(data, assignment)
    assert data == {
        "train": {"batch_size": 32, "out": "runs/x"},
        "recipe": {"args": {"betas": [0.0, 0.9]}},
        "data": {"name": "~/faces"},
    }
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        apply_override(data, "train.batch_size")


def test_exponents_without_a_dot_are_floats_in_overrides_and_config_files(
    tmp_path: Path,
) -> None:
    """YAML 1.2 reads `3e-4` as a number; PyYAML's YAML 1.1 would give the string '3e-4'."""
    data: dict = {}
    for assignment in ["recipe.args.lr=3e-4", "train.kimg=1e9", "recipe.args.clip=-2E+3"]:
        apply_override(data, assignment)
    assert data == {"recipe": {"args": {"lr": 3e-4, "clip": -2000.0}}, "train": {"kimg": 1e9}}
    path = tmp_path / "config.yaml"
    path.write_text(
        "recipe:\n  args: {lr: 1e-4, n_critic: 5, betas: [0, 9e-1]}\ndata: {name: 1e}\n"
    )
    assert load_yaml(path) == {
        "recipe": {"args": {"lr": 1e-4, "n_critic": 5, "betas": [0, 0.9]}},
        "data": {"name": "1e"},  # not a number: stays a string
    }
    assert isinstance(load_yaml(path)["recipe"]["args"]["n_critic"], int)


def test_recipe_arguments_are_checked_against_the_constructor() -> None:
    args = check_arguments(
        ProGANRecipe, {"lr": 1, "betas": [0, 0.99]}, ("nets", "batch_size"), "recipe.args"
    )
    assert args == {"lr": 1.0, "betas": (0.0, 0.99)}
    with pytest.raises(
        ConfigError, match=r"recipe\.args\.'fade_kmg'.*Did you mean recipe\.args\.'fade_kimg'"
    ):
        check_arguments(ProGANRecipe, {"fade_kmg": 3}, ("nets", "batch_size"), "recipe.args")
    with pytest.raises(ConfigError, match=r"recipe\.args\.batch_sizes\.64: expected int"):
        check_arguments(
            ProGANRecipe, {"batch_sizes": {64: "x"}}, ("nets", "batch_size"), "recipe.args"
        )


def test_check_value_handles_optional_lists_and_tuples() -> None:
    assert check_value(None, int | None, "x") is None
    assert check_value([1, 2], list[float], "x") == [1.0, 2.0]
    with pytest.raises(ConfigError, match=r"x\[1\]: expected int"):
        check_value([1, "a"], list[int], "x")
    with pytest.raises(ConfigError, match="expected 2 items"):
        check_value([1, 2, 3], tuple[float, float], "x")


def test_literals_match_by_type_as_well_as_value() -> None:
    channels = Literal[1, 3] | None
    assert check_value(3, channels, "c") == 3
    assert check_value(None, channels, "c") is None
    for wrong in (True, 3.0, "3", 2):  # True == 1 and 3.0 == 3 in Python, but are no channel count
        with pytest.raises(ConfigError, match="c: "):
            check_value(wrong, channels, "c")


def test_yaml_round_trip(tmp_path: Path) -> None:
    cfg = config_from_dict(
        {"model": {"arch": {"channel_max": 64}}, "train": {"kimg": 5.5, "metrics": ["swd"]}}
    )
    save_config(cfg, tmp_path / "c.yaml")
    again = config_from_dict(load_yaml(tmp_path / "c.yaml"))
    assert again == cfg and config_to_dict(again)["model"]["arch"] == {"channel_max": 64}
    assert Config() == config_from_dict({})


def test_bad_yaml_files_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_yaml(tmp_path / "missing.yaml")
    (tmp_path / "bad.yaml").write_text("train: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_yaml(tmp_path / "bad.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="mapping at the top level"):
        load_yaml(tmp_path / "list.yaml")
