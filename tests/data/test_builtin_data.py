"""Built-in datasets on the real files in ../shared/data, and their offline errors."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import gankit.data.builtin as builtin_mod
import gankit.data.cifar as cifar_mod
from gankit.data import ImageDataset, open_dataset
from gankit.errors import ConfigError, DataError
from gankit.registry import DATASETS

MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
DIGITS_COUNTS = [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]


def pixel_mean(ds: ImageDataset) -> np.ndarray:
    """Per-channel mean over [0, 1]."""
    return ds.images.double().mean(dim=(0, 2, 3)).numpy() / 255.0


@pytest.fixture(scope="module")
def mnist_train(shared_data: Path) -> ImageDataset:
    return open_dataset("mnist", root=str(shared_data))


# --- digits (ships with scikit-learn) ----------------------------------------------------------


def test_digits() -> None:
    ds = open_dataset("digits")
    assert (len(ds), ds.resolution, ds.channels, ds.num_classes) == (1797, 32, 1, 10)
    assert np.bincount(ds.labels.numpy()).tolist() == DIGITS_COUNTS
    assert (ds.images.min().item(), ds.images.max().item()) == (0, 255)
    assert "bicubic" in ds.description


def test_digits_at_source_size_is_the_scaled_source() -> None:
    from sklearn.datasets import load_digits

    ds = open_dataset("digits", resolution=8, channels=3)
    expected = np.round(load_digits().images / 16.0 * 255).astype(np.uint8)
    assert tuple(ds.images.shape) == (1797, 3, 8, 8)
    np.testing.assert_array_equal(ds.images.numpy()[:, 2], expected)
    with pytest.raises(ConfigError, match="digits has the splits train"):
        open_dataset("digits", split="test")
    with pytest.raises(DataError, match="digits images are 32x32; resolution 64"):
        open_dataset("digits", resolution=64)


# --- mnist and fashion-mnist -------------------------------------------------------------------


@pytest.mark.shared_data
def test_mnist_train(mnist_train: ImageDataset) -> None:
    ds = mnist_train
    assert tuple(ds.images.shape) == (60000, 1, 28, 28)
    assert (ds.resolution, ds.channels, ds.num_classes, ds.name) == (28, 1, 10, "mnist")
    assert pixel_mean(ds)[0] == pytest.approx(0.1307, abs=5e-4)
    assert np.bincount(ds.labels.numpy()).tolist() == MNIST_TRAIN_COUNTS
    item = ds[0]
    assert item["img"].dtype == torch.uint8 and item["label"].dtype == torch.int64
    assert item["label"].item() == 5  # the famous first MNIST digit
    assert "60,000 28x28 greyscale images" in ds.description and "native size" in ds.description


@pytest.mark.shared_data
def test_mnist_test_split(shared_data: Path) -> None:
    ds = open_dataset("mnist", root=str(shared_data), split="test")
    assert tuple(ds.images.shape) == (10000, 1, 28, 28)
    assert pixel_mean(ds)[0] == pytest.approx(0.1325, abs=5e-4)


@pytest.mark.shared_data
def test_mnist_32_pads_and_3_channels_tile(shared_data: Path, mnist_train: ImageDataset) -> None:
    ds = open_dataset("mnist", root=str(shared_data), resolution=32, channels=3)
    assert tuple(ds.images.shape) == (60000, 3, 32, 32) and ds.resolution == 32
    padded = ds.images.numpy()
    border = np.ones((32, 32), bool)
    border[2:30, 2:30] = False
    assert padded[:, :, border].max() == 0
    for c in range(3):
        np.testing.assert_array_equal(padded[:, c, 2:30, 2:30], mnist_train.images.numpy()[:, 0])
    assert "zero-padded by 2 px" in ds.description and "repeated to RGB" in ds.description


@pytest.mark.shared_data
def test_mnist_downscale_and_refusals(shared_data: Path, mnist_train: ImageDataset) -> None:
    ds = open_dataset("mnist", root=str(shared_data), resolution=14)
    assert tuple(ds.images.shape) == (60000, 1, 14, 14)
    expected = [
        np.asarray(Image.fromarray(x[0]).resize((14, 14), Image.Resampling.LANCZOS))
        for x in mnist_train.images[:200].numpy()
    ]
    diff = np.abs(ds.images[:200, 0].numpy().astype(int) - np.stack(expected))
    assert diff.max() <= 1 and (diff > 0).mean() < 1e-3  # PIL's own Lanczos, up to rounding
    assert "downscaled to 14x14 with Lanczos" in ds.description
    for bad in (64, 30):
        with pytest.raises(DataError, match=f"mnist images are 28x28; resolution {bad} is larger"):
            open_dataset("mnist", root=str(shared_data), resolution=bad)


@pytest.mark.shared_data
def test_fashion_mnist(shared_data: Path) -> None:
    train = open_dataset("fashion-mnist", root=str(shared_data))
    test = open_dataset("fashion-mnist", root=str(shared_data), split="test")
    assert tuple(train.images.shape) == (60000, 1, 28, 28)
    assert tuple(test.images.shape) == (10000, 1, 28, 28)
    assert np.bincount(train.labels.numpy()).tolist() == [6000] * 10
    assert np.bincount(test.labels.numpy()).tolist() == [1000] * 10
    assert pixel_mean(train)[0] == pytest.approx(0.2860, abs=5e-4)


# --- cifar10 (the JPEG tar) --------------------------------------------------------------------


@pytest.mark.shared_data
@pytest.mark.slow
def test_cifar10_from_the_jpeg_tar(
    shared_data: Path, shared_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One test, so that under pytest-xdist only one worker decodes the tar (about half a minute).
    monkeypatch.setenv("GANKIT_CACHE_DIR", str(shared_cache))
    ds = open_dataset("cifar10", root=str(shared_data))
    assert tuple(ds.images.shape) == (50000, 3, 32, 32) and ds.num_classes == 10
    assert np.bincount(ds.labels.numpy()).tolist() == [5000] * 10
    np.testing.assert_allclose(pixel_mean(ds), [0.4913, 0.4821, 0.4465], atol=2e-3)
    assert ds.class_names[0] == "airplane" and ds.class_names[9] == "truck"
    assert "CIFAR-10-images.tar.xz (tar)" in ds.description

    # Both splits were prepared in that one pass over the tar: from now on the cache answers.
    monkeypatch.setattr(cifar_mod, "read", None)
    again = open_dataset("cifar10", root=str(shared_data))
    assert torch.equal(again.images[:100], ds.images[:100])
    test = open_dataset("cifar10", root=str(shared_data), split="test")
    assert tuple(test.images.shape) == (10000, 3, 32, 32)
    assert np.bincount(test.labels.numpy()).tolist() == [1000] * 10


# --- files absent ------------------------------------------------------------------------------


def test_offline_mnist_names_files_and_folders(tmp_path: Path) -> None:
    with pytest.raises(DataError) as info:
        open_dataset("mnist", root=str(tmp_path))
    text = str(info.value)
    for needed in (
        "train-images-idx3-ubyte.gz",
        "train-labels-idx1-ubyte.gz",
        str(tmp_path / "mnist"),
    ):
        assert needed in text
    assert "--data-root" in text and "GANKIT_DATA_ROOT" in text and "Downloads are disabled" in text


def test_failed_download_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def offline(name: str, base: Path) -> None:
        calls.append((name, base))
        raise OSError("network is unreachable")

    monkeypatch.setenv("GANKIT_NO_DOWNLOAD", "0")
    monkeypatch.setattr(builtin_mod, "download", offline)
    with pytest.raises(DataError, match=r"t10k-images-idx3-ubyte\.gz.*network is unreachable"):
        open_dataset("fashion-mnist", root=str(tmp_path), split="test")
    with pytest.raises(DataError, match=r"cifar-10-python\.tar\.gz.*cifar-10-batches-py"):
        open_dataset("cifar10", root=str(tmp_path))
    assert calls == [("fashion-mnist", tmp_path), ("cifar10", tmp_path)]


def test_download_into_torchvision_layout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def fake_download(name: str, base: Path) -> None:
        raw = base / "MNIST" / "raw"  # where torchvision.datasets.MNIST puts the files
        raw.mkdir(parents=True)
        images = bytes([0, 0, 8, 3]) + b"".join(n.to_bytes(4, "big") for n in (2, 28, 28))
        (raw / "train-images-idx3-ubyte").write_bytes(images + bytes(range(256)) * 6 + bytes(32))
        labels = bytes([0, 0, 8, 1]) + (2).to_bytes(4, "big") + bytes([3, 7])
        (raw / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(labels))

    monkeypatch.setenv("GANKIT_NO_DOWNLOAD", "0")
    monkeypatch.setattr(builtin_mod, "download", fake_download)
    ds = open_dataset("mnist", root=str(tmp_path))
    assert ds.labels.tolist() == [3, 7] and ds.images[0, 0, 0, :3].tolist() == [0, 1, 2]


def test_bad_requests_fail_before_reading() -> None:
    assert {"digits", "mnist", "fashion-mnist", "cifar10"} <= set(DATASETS.names())
    with pytest.raises(ConfigError, match="channels must be 1"):
        open_dataset("mnist", channels=4)
    with pytest.raises(ConfigError, match="resolution must be a positive integer"):
        open_dataset("mnist", resolution=0)
    with pytest.raises(ConfigError, match="mnist has the splits train, test; got split='val'"):
        open_dataset("mnist", split="val")
