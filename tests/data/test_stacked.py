"""Stacked MNIST on the real MNIST files: channels, labels, seeding, padding and refusals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from gankit.data import ArrayDataset, StackedMNIST, open_dataset
from gankit.errors import ConfigError

pytestmark = pytest.mark.shared_data


@pytest.fixture(scope="module")
def mnist_test(shared_data: Path) -> ArrayDataset:
    return open_dataset("mnist", root=str(shared_data), split="test")


@pytest.fixture(scope="module")
def stacked_train(shared_data: Path) -> StackedMNIST:
    return open_dataset("stacked-mnist", root=str(shared_data))


def test_train_split_is_the_documented_size(stacked_train: StackedMNIST) -> None:
    ds = stacked_train
    assert (len(ds), ds.resolution, ds.channels, ds.num_classes) == (128_000, 28, 3, 1000)
    assert ds.name == "stacked-mnist" and tuple(ds.index.shape) == (128_000, 3)
    assert ds.index.min() >= 0 and ds.index.max() < 60_000
    # 128,000 uniform draws over 1,000 modes: every mode shows up (expected 128 each).
    assert len(torch.unique(ds.labels)) == 1000
    assert "128,000 RGB images" in ds.description and "seed 0" in ds.description


def test_channels_are_the_indexed_digits_and_labels_decode(
    shared_data: Path, stacked_train: StackedMNIST
) -> None:
    digits = open_dataset("mnist", root=str(shared_data))
    for i in (0, 1, 77, 127_999):
        item = stacked_train[i]
        assert item["img"].dtype == torch.uint8 and tuple(item["img"].shape) == (3, 28, 28)
        assert item["label"].dtype == torch.int64
        idx = stacked_train.index[i].tolist()
        for k in range(3):
            assert torch.equal(item["img"][k], digits.images[idx[k], 0])
        r, g, b = (int(digits.labels[j]) for j in idx)
        assert item["label"].item() == 100 * r + 10 * g + b


def test_same_seed_same_table_and_test_split_is_separate(
    shared_data: Path, mnist_test: ArrayDataset, stacked_train: StackedMNIST
) -> None:
    again = open_dataset("stacked-mnist", root=str(shared_data))
    assert torch.equal(again.index, stacked_train.index)
    a = StackedMNIST(mnist_test, size=500, seed=7)
    b = StackedMNIST(mnist_test, size=500, seed=7)
    c = StackedMNIST(mnist_test, size=500, seed=8)
    assert torch.equal(a.index, b.index) and not torch.equal(a.index, c.index)
    test = open_dataset("stacked-mnist", root=str(shared_data), split="test")
    assert len(test) == 26_000 and test.index.max() < 10_000
    assert test.split == "test" and "MNIST test digits" in test.description


def test_resolution_32_pads_two_black_pixels(mnist_test: ArrayDataset) -> None:
    native = StackedMNIST(mnist_test, size=64, seed=3)
    padded = StackedMNIST(mnist_test, size=64, seed=3, resolution=32)
    assert padded.resolution == 32 and "zero-padded by 2 px" in padded.description
    border = torch.ones(32, 32, dtype=torch.bool)
    border[2:30, 2:30] = False
    for i in range(64):
        img = padded[i]["img"]
        assert tuple(img.shape) == (3, 32, 32) and img[:, border].max() == 0
        assert torch.equal(img[:, 2:30, 2:30], native[i]["img"])
        assert torch.equal(padded[i]["label"], native[i]["label"])


def test_batches_through_a_data_loader(mnist_test: ArrayDataset) -> None:
    ds = StackedMNIST(mnist_test, size=40, seed=0)
    batch = next(iter(DataLoader(ds, batch_size=16)))
    assert tuple(batch["img"].shape) == (16, 3, 28, 28) and batch["img"].dtype == torch.uint8
    np.testing.assert_array_equal(batch["label"].numpy(), ds.labels[:16].numpy())


@pytest.mark.parametrize("resolution", [16, 64, 30])
def test_other_resolutions_are_refused(shared_data: Path, resolution: int) -> None:
    with pytest.raises(ConfigError, match=rf"resolution 28 .* or 32 .*got {resolution}"):
        open_dataset("stacked-mnist", root=str(shared_data), resolution=resolution)


def test_channels_and_split_errors(shared_data: Path) -> None:
    with pytest.raises(ConfigError, match=r"3 channels .* got channels=1"):
        open_dataset("stacked-mnist", root=str(shared_data), channels=1)
    with pytest.raises(ConfigError, match="splits train, test; got split='val'"):
        open_dataset("stacked-mnist", root=str(shared_data), split="val")
    assert open_dataset("stacked-mnist", root=str(shared_data), channels=3).channels == 3
