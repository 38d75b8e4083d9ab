"""The registry: lookups, did-you-mean, and that every builtin is registered."""

from __future__ import annotations

import pytest

from gankit.errors import ConfigError
from gankit.registry import DATASETS, MODELS, RECIPES, Registry


def test_unknown_name_suggests_close_matches_and_lists_all() -> None:
    with pytest.raises(
        ConfigError,
        match=r"unknown recipe 'pogan'\. Did you mean 'progan'.*Known recipes: .*progan",
    ):
        RECIPES.get("pogan")


def test_builtins_are_registered() -> None:
    assert "progan" in MODELS and "progan" in RECIPES and "digits" in DATASETS


def test_names_must_be_lowercase_and_hyphenated() -> None:
    registry: Registry = Registry("thing")
    with pytest.raises(ValueError, match="lowercase and hyphenated"):
        registry.register("Bad_Name")
    registry.register("good-name")(len)
    assert registry.get("good-name") is len
    assert [e.description for e in registry if e.name == "good-name"] == [
        "Return the number of items in a container."
    ]
