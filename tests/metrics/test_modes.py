"""Stacked-MNIST mode counting and 2-D mixture coverage on inputs with known answers."""

from __future__ import annotations

import gzip
import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from filelock import FileLock

from gankit.data.toy import GRID25, RING8, grid25, ring8
from gankit.metrics.classifier import (
    Classifier,
    load_classifier,
    predict,
    save_classifier,
    train_classifier,
)
from gankit.metrics.modes import (
    kl_to_uniform,
    mixture_coverage,
    stacked_mnist_coverage,
    stacked_mnist_digits,
    stacked_mnist_from_digits,
    stacked_mnist_mode_ids,
)

# ---------------------------------------------------------------------------------------------
# Stacked MNIST


def hand_kl_to_uniform(counts: list[int], num_modes: int) -> float:
    total = sum(counts)
    return sum((c / total) * math.log((c / total) / (1 / num_modes)) for c in counts if c)


def test_mode_id_is_the_three_digit_number() -> None:
    ids = stacked_mnist_mode_ids(np.array([[1, 2, 3], [0, 0, 7], [9, 9, 9]]))
    assert ids.tolist() == [123, 7, 999]
    with pytest.raises(ValueError, match="digits 0-9"):
        stacked_mnist_mode_ids(np.array([[1, 2, 10]]))


def _digits_with_37_modes() -> tuple[np.ndarray, list[int]]:
    """Mode ids 27 k (k = 0..36) used k + 1 times each, as per-channel digits, shuffled."""
    ids = np.repeat(np.arange(37) * 27, np.arange(1, 38))
    np.random.default_rng(0).shuffle(ids)
    digits = np.stack([ids // 100, ids // 10 % 10, ids % 10], axis=1)
    return digits, list(range(1, 38))


def test_stacked_mnist_from_digits_known_histogram() -> None:
    digits, counts = _digits_with_37_modes()
    out = stacked_mnist_from_digits(digits)
    assert out["modes"] == 37
    assert out["num_samples"] == sum(counts) == 703
    assert out["kl"] == pytest.approx(hand_kl_to_uniform(counts, 1000), rel=1e-12)
    # All 1,000 modes equally used: KL 0. One mode only: KL ln 1000.
    every = np.stack(np.unravel_index(np.arange(1000), (10, 10, 10)), axis=1)
    assert stacked_mnist_from_digits(every) == {"modes": 1000, "kl": 0.0, "num_samples": 1000}
    one = stacked_mnist_from_digits(np.array([[4, 0, 4]] * 5))
    assert one["modes"] == 1 and one["kl"] == pytest.approx(math.log(1000), rel=1e-12)


class IntensityClassifier(Classifier):
    """A stand-in classifier: the digit is round(9 * mean brightness in [0, 1])."""

    def logits(self, img: torch.Tensor) -> torch.Tensor:
        x = self.prepare(img)
        digit = ((x.mean(dim=(1, 2, 3)) + 1) / 2 * 9).round().long()
        return torch.nn.functional.one_hot(digit, 10).float()


def test_stacked_mnist_coverage_classifies_each_channel_in_order() -> None:
    digits, counts = _digits_with_37_modes()
    # Channel k of sample i is a flat 28x28 image whose brightness encodes digit[i, k].
    images = torch.from_numpy(np.round(digits * 255 / 9).astype(np.uint8))[:, :, None, None]
    images = images.expand(-1, -1, 28, 28).contiguous()
    fake = IntensityClassifier()
    assert stacked_mnist_digits(images, fake, batch_size=100).tolist() == digits.tolist()
    out = stacked_mnist_coverage(images, fake, batch_size=64)
    assert out["modes"] == 37
    assert out["kl"] == pytest.approx(hand_kl_to_uniform(counts, 1000), rel=1e-12)
    with pytest.raises(ValueError, match=r"\[N, 3, H, W\]"):
        stacked_mnist_coverage(images[:, :1], fake)


def _read_idx(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(dims).copy()


@pytest.fixture(scope="module")
def mnist_classifier(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Classifier:
    """The MNIST classifier, trained once per test session (shared by xdist workers via a lock)."""
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    path = shared / "gankit-test-mnist-classifier.pt"
    with FileLock(f"{path}.lock"):
        if not path.is_file():
            folder = shared_data / "mnist"
            model = train_classifier(
                _read_idx(folder / "train-images-idx3-ubyte.gz")[:, None],
                _read_idx(folder / "train-labels-idx1-ubyte.gz"),
                epochs=3,
                seed=0,
                progress=False,
                test_images=_read_idx(folder / "t10k-images-idx3-ubyte.gz")[:, None],
                test_labels=_read_idx(folder / "t10k-labels-idx1-ubyte.gz"),
                dataset="mnist",
            )
            save_classifier(model, path)
    return load_classifier(path)


@pytest.mark.slow
@pytest.mark.shared_data
def test_stacked_real_mnist_digits(shared_data: Path, mnist_classifier: Classifier) -> None:
    images = _read_idx(shared_data / "mnist" / "t10k-images-idx3-ubyte.gz")
    labels = _read_idx(shared_data / "mnist" / "t10k-labels-idx1-ubyte.gz").astype(np.int64)
    pick = np.random.default_rng(0).integers(0, len(images), size=(3000, 3))
    stacks = torch.from_numpy(images[pick])  # [N, 3, 28, 28]: three random digits as R, G, B
    true = stacked_mnist_from_digits(labels[pick])
    got = stacked_mnist_coverage(stacks, mnist_classifier)
    digits = stacked_mnist_digits(stacks, mnist_classifier).numpy()
    # Channel-wise predictions are the classifier's own per-image predictions.
    own = predict(mnist_classifier, torch.from_numpy(images[:, None])).numpy()
    np.testing.assert_array_equal(digits, own[pick])
    assert got == stacked_mnist_from_digits(digits)
    # Each wrongly classified stack can remove at most one true mode and add at most one.
    wrong = int((digits != labels[pick]).any(axis=1).sum())
    assert wrong <= 0.03 * len(pick)
    assert abs(got["modes"] - true["modes"]) <= wrong
    assert got["kl"] == pytest.approx(true["kl"], abs=0.05)


# ---------------------------------------------------------------------------------------------
# 2-D mixtures


def test_samples_exactly_at_every_ring_mode() -> None:
    points = RING8.means.repeat(10, 1)
    assert mixture_coverage(points, RING8) == {
        "modes": 8,
        "high_quality": 1.0,
        "reverse_kl": 0.0,
        "num_samples": 80,
    }


@pytest.mark.parametrize(("mixture", "k"), [(RING8, 8), (GRID25, 25)])
def test_samples_at_one_mode_give_log_k(mixture: object, k: int) -> None:
    points = mixture.means[3].repeat(50, 1)
    out = mixture_coverage(points, mixture)
    assert (out["modes"], out["high_quality"]) == (1, 1.0)
    assert out["reverse_kl"] == pytest.approx(math.log(k), rel=1e-12)


def test_grid_two_modes_half_and_half() -> None:
    points = torch.cat([GRID25.means[0].repeat(30, 1), GRID25.means[24].repeat(30, 1)])
    out = mixture_coverage(points, "grid25")
    assert out["modes"] == 2
    assert out["reverse_kl"] == pytest.approx(math.log(25 / 2), rel=1e-12)
    every = mixture_coverage(GRID25.means.repeat(4, 1), grid25())
    assert (every["modes"], every["reverse_kl"]) == (25, 0.0)


def test_points_far_from_every_mode_are_not_high_quality() -> None:
    far = torch.tensor([[10.0, 10.0], [0.0, 0.0], [0.5, 0.5]])
    out = mixture_coverage(far, RING8)
    assert (out["modes"], out["high_quality"]) == (0, 0.0)
    assert math.isnan(out["reverse_kl"])
    empty = mixture_coverage(torch.empty(0, 2), "ring8")
    assert (empty["modes"], empty["num_samples"]) == (0, 0)
    assert math.isnan(empty["high_quality"]) and math.isnan(empty["reverse_kl"])


def test_three_sigma_boundary() -> None:
    sigma = RING8.sigma
    inside = RING8.means[0] + torch.tensor([2.99 * sigma, 0.0], dtype=torch.float64)
    outside = RING8.means[1] + torch.tensor([0.0, 3.01 * sigma], dtype=torch.float64)
    out = mixture_coverage(torch.stack([inside, outside, outside, outside]), RING8)
    assert (out["modes"], out["high_quality"]) == (1, 0.25)
    # Only high-quality samples enter the histogram: one mode of 8 -> ln 8.
    assert out["reverse_kl"] == pytest.approx(math.log(8), rel=1e-12)


def test_true_samples_are_high_quality_at_the_rayleigh_rate() -> None:
    # For a 2-D isotropic Gaussian, P(|x - mu| < 3 sigma) = 1 - exp(-9 / 2) = 0.98889.
    ds = ring8()
    out = mixture_coverage(ds.points, ds)
    assert out["modes"] == 8
    assert out["high_quality"] == pytest.approx(1 - math.exp(-4.5), abs=2e-3)
    assert out["reverse_kl"] == pytest.approx(0.0, abs=2e-4)
    assert kl_to_uniform(np.array([1, 1, 2])) == pytest.approx(
        hand_kl_to_uniform([1, 1, 2], 3), rel=1e-12
    )
