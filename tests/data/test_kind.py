"""Every dataset says what it yields: `kind` is "images", "points" or "unpaired"."""

from __future__ import annotations

import typing
from pathlib import Path

import pytest

from gankit.data import open_dataset
from gankit.registry import DATASETS

BUILTIN_KINDS = {
    "digits": "images",
    "mnist": "images",
    "fashion-mnist": "images",
    "cifar10": "images",
    "stacked-mnist": "images",
    "ring8": "points",
    "grid25": "points",
}


def test_every_builtin_is_listed_here() -> None:
    assert sorted(DATASETS.names()) == sorted(BUILTIN_KINDS)


@pytest.mark.parametrize("name", sorted(BUILTIN_KINDS))
def test_each_builtin_returns_a_class_of_its_kind(name: str) -> None:
    returned = typing.get_type_hints(DATASETS.get(name))["return"]
    assert returned.kind == BUILTIN_KINDS[name]


@pytest.mark.parametrize("name", ["digits", "ring8", "grid25"])
def test_the_builtins_that_need_no_files_report_their_kind(name: str) -> None:
    assert open_dataset(name).kind == BUILTIN_KINDS[name]


@pytest.mark.parametrize("name", ["mnist", "fashion-mnist", "stacked-mnist"])
def test_the_shared_builtins_report_their_kind(name: str, shared_data: Path) -> None:
    dataset = open_dataset(name, root=str(shared_data))
    assert dataset.kind == "images" and dataset.num_classes > 0
