"""FID, KID and IS: closed forms, estimator properties, and agreement with torch-fidelity."""

from __future__ import annotations

import types
from pathlib import Path

import numpy as np
import pytest
import scipy.linalg
import torch
import torch.nn.functional as F

from gankit.metrics.fid import feature_statistics, fid_from_features, frechet_distance
from gankit.metrics.inception import (
    WEIGHTS_FILE,
    calibrated_random_inception,
    load_inception,
    textured_images,
)
from gankit.metrics.inception_score import inception_score
from gankit.metrics.kid import kid, mmd2_unbiased, polynomial_kernel


def _reference(module: str) -> types.ModuleType:
    """A torch-fidelity module; the comparison tests skip where it is not installed."""
    return pytest.importorskip(f"torch_fidelity.{module}")


def gaussian_features(n: int, d: int, seed: int, shift: float = 0.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    mixing = torch.randn(d, d, generator=torch.Generator().manual_seed(1234)) / d**0.5
    return torch.randn(n, d, generator=g) @ mixing + shift


# --- FID.


def test_frechet_distance_of_diagonal_gaussians_matches_the_closed_form() -> None:
    g = torch.Generator().manual_seed(0)
    mu1, mu2 = (torch.randn(50, generator=g, dtype=torch.float64) for _ in range(2))
    s1 = torch.rand(50, generator=g, dtype=torch.float64) + 0.1
    s2 = torch.rand(50, generator=g, dtype=torch.float64) * 3
    expected = ((mu1 - mu2) ** 2).sum() + (s1 + s2 - 2 * (s1 * s2).sqrt()).sum()
    assert frechet_distance(mu1, s1.diag(), mu2, s2.diag()) == pytest.approx(
        float(expected), rel=1e-10
    )


def test_frechet_distance_of_rotated_gaussians_matches_the_closed_form() -> None:
    # Equal spectra in different bases: the trace term is tr(S1) + tr(S2) - 2 tr((S1 S2)^(1/2)).
    q, _ = torch.linalg.qr(
        torch.randn(6, 6, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    )
    s1 = torch.diag(torch.tensor([1.0, 2, 3, 4, 5, 6], dtype=torch.float64))
    s2 = q @ s1 @ q.T
    root = torch.from_numpy(np.real(scipy.linalg.sqrtm((s1 @ s2).numpy())))
    expected = float(2 * s1.trace() - 2 * root.trace())
    zeros = torch.zeros(6)
    assert frechet_distance(zeros, s1, zeros, s2) == pytest.approx(expected, rel=1e-9)


def test_fid_of_a_set_with_itself_is_zero() -> None:
    mu, sigma = feature_statistics(gaussian_features(400, 64, seed=2))
    assert abs(frechet_distance(mu, sigma, mu, sigma)) < 1e-6 * float(sigma.trace())


def test_feature_statistics_match_numpy() -> None:
    f = gaussian_features(100, 8, seed=3).numpy()
    mu, sigma = feature_statistics(f)
    np.testing.assert_allclose(mu.numpy(), f.astype(np.float64).mean(0), rtol=1e-12)
    np.testing.assert_allclose(
        sigma.numpy(), np.cov(f.astype(np.float64), rowvar=False), rtol=1e-10
    )


@pytest.mark.filterwarnings("ignore:The `disp` argument is deprecated")
@pytest.mark.parametrize(("n", "d"), [(500, 64), (40, 256)])  # full rank, rank deficient
def test_fid_agrees_with_torch_fidelity_and_pytorch_fid(n: int, d: int) -> None:
    pytorch_fid = pytest.importorskip("pytorch_fid.fid_score")
    a, b = gaussian_features(n, d, seed=4).abs(), gaussian_features(n, d, seed=5, shift=0.2).abs()
    ours = fid_from_features(a, b)
    metric_fid = _reference("metric_fid")
    stats = [metric_fid.fid_features_to_statistics(x) for x in (a, b)]
    fidelity = metric_fid.fid_statistics_to_metric(*stats, verbose=False)[
        "frechet_inception_distance"
    ]
    assert ours == pytest.approx(fidelity, rel=1e-6)
    if n > d:  # scipy's sqrtm is only dependable on full-rank products
        mu1, s1 = (x.numpy() for x in feature_statistics(a))
        mu2, s2 = (x.numpy() for x in feature_statistics(b))
        assert ours == pytest.approx(
            pytorch_fid.calculate_frechet_distance(mu1, s1, mu2, s2), rel=1e-8
        )


def test_frechet_distance_rejects_mismatched_statistics() -> None:
    with pytest.raises(ValueError, match="mismatched statistics"):
        frechet_distance(torch.zeros(3), torch.eye(3), torch.zeros(4), torch.eye(4))


# --- KID.


def test_kid_from_whole_set_kernels_equals_kid_from_each_subset(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Small sets take the gather-from-whole-set-kernels path; it must give the per-subset values.
    real, fake = gaussian_features(80, 16, seed=1), gaussian_features(90, 16, seed=2, shift=0.3)
    gathered = kid(real, fake, subsets=7, subset_size=40)
    monkeypatch.setattr("gankit.metrics.kid.GRAM_MAX_ROWS", 0)  # forces kernels per subset
    per_subset = kid(real, fake, subsets=7, subset_size=40)
    assert gathered == pytest.approx(per_subset, rel=1e-6)


def test_kid_of_identical_sets_is_the_estimator_identity() -> None:
    # With X = Y the unbiased estimate is 2 [(S - T) / (m (m - 1)) - S / m^2] (S: kernel sum, T: trace).
    f = gaussian_features(50, 16, seed=6).double()
    k = polynomial_kernel(f, f)
    s, t, m = float(k.sum()), float(k.trace()), 50
    expected = 2 * ((s - t) / (m * (m - 1)) - s / m**2)
    mean, std = kid(f, f, subsets=3, subset_size=50)
    assert mean == pytest.approx(expected, rel=1e-10) and std == pytest.approx(0.0, abs=1e-15)
    assert abs(mean) < 0.05 * kid(f, f + 1.0, subsets=1, subset_size=50)[0]


def test_kid_is_unbiased_where_the_biased_estimator_is_not() -> None:
    m, trials, d = 10, 400, 4
    g = torch.Generator().manual_seed(7)
    unbiased, biased, k_self, k_cross = [], [], [], []
    for _ in range(trials):
        x, y = torch.randn(m, d, generator=g).double(), torch.randn(m, d, generator=g).double()
        kxx, kxy, kyy = polynomial_kernel(x, x), polynomial_kernel(x, y), polynomial_kernel(y, y)
        unbiased.append(float(mmd2_unbiased(kxx, kxy, kyy)))
        biased.append(float((kxx.sum() + kyy.sum() - 2 * kxy.sum()) / m**2))
        k_self.append(float(kxx.diagonal().mean()))
        k_cross.append(float(kxy.mean()))
    se = float(np.std(unbiased) / np.sqrt(trials))
    assert np.mean(unbiased) == pytest.approx(0.0, abs=3 * se)
    # The biased estimator's expectation is 2 (E k(x, x) - E k(x, x')) / m, far from 0 here.
    bias = 2 * (np.mean(k_self) - np.mean(k_cross)) / m
    assert bias > 10 * se
    assert np.mean(biased) == pytest.approx(bias, abs=3 * se)


def test_kid_agrees_with_torch_fidelity_subsets_included() -> None:
    # float64 on both sides: KID is a small difference of large kernel sums, so float32 results
    # move by 1e-4 relative with the BLAS kernels of the CPU (AVX2 or AVX-512) they run on.
    a, b = gaussian_features(120, 64, seed=8), gaussian_features(110, 64, seed=9, shift=0.1)
    a, b = a.double(), b.double()
    ref = _reference("metric_kid").kid_features_to_metric(
        a, b, kid_subsets=20, kid_subset_size=50, verbose=False
    )
    mean, std = kid(a, b, subsets=20, subset_size=50, seed=2020)
    assert mean == pytest.approx(ref["kernel_inception_distance_mean"], rel=1e-10)
    assert std == pytest.approx(ref["kernel_inception_distance_std"], rel=1e-10)


def test_kid_rejects_subsets_larger_than_the_sets() -> None:
    with pytest.raises(ValueError, match="lower subset_size"):
        kid(torch.zeros(10, 4), torch.zeros(20, 4), subset_size=15)


# --- Inception Score.


def test_inception_score_of_uniform_predictions_is_one() -> None:
    assert inception_score(torch.zeros(40, 1008), splits=4) == (
        pytest.approx(1.0),
        pytest.approx(0.0),
    )


def test_inception_score_of_confident_balanced_predictions_is_the_class_count() -> None:
    k = 7
    logits = 60.0 * F.one_hot(torch.arange(70) % k, 1008).double()
    mean, std = inception_score(logits, splits=5, seed=None)  # each split holds every class twice
    assert mean == pytest.approx(k, rel=1e-9) and std == pytest.approx(0.0, abs=1e-9)
    assert inception_score(logits, splits=1)[0] == pytest.approx(k, rel=1e-9)


def test_inception_score_agrees_with_torch_fidelity_shuffle_included() -> None:
    logits = 3 * torch.randn(103, 1008, generator=torch.Generator().manual_seed(10))
    metric_isc = _reference("metric_isc")
    ref = metric_isc.isc_features_to_metric(logits, splits=10, shuffle=True, rng_seed=2020)
    mean, std = inception_score(logits, splits=10, seed=2020)
    assert mean == pytest.approx(ref["inception_score_mean"], rel=1e-12)
    assert std == pytest.approx(ref["inception_score_std"], rel=1e-9)
    unshuffled = metric_isc.isc_features_to_metric(logits, splits=10, shuffle=False)
    assert inception_score(logits, splits=10, seed=None)[1] == pytest.approx(
        unshuffled["inception_score_std"], rel=1e-9
    )


# --- End to end against torch-fidelity, same images, same weights file.


def synthetic_images(n: int, res: int, seed: int, texture: float) -> torch.Tensor:
    return textured_images(n, res, seed=seed, texture=texture)


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Random InceptionV3 weights with BatchNorm statistics re-estimated on images, so the
    features spread out (the real weights are not available offline)."""
    net = calibrated_random_inception(synthetic_images(4, 32, seed=99, texture=12))
    path = tmp_path_factory.mktemp("inception") / WEIGHTS_FILE
    torch.save(net.state_dict(), path)
    return path


class _Images(torch.utils.data.Dataset):
    def __init__(self, images: torch.Tensor) -> None:
        self.images = images

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.images[i]


@pytest.mark.slow
def test_fid_kid_is_agree_with_torch_fidelity_end_to_end(
    weights_file: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    torch_fidelity = pytest.importorskip("torch_fidelity")
    extractor = pytest.importorskip("torch_fidelity.feature_extractor_inceptionv3")

    def no_download(*args: object, **kwargs: object) -> None:
        raise AssertionError("torch-fidelity tried to download")

    monkeypatch.setattr(extractor, "load_state_dict_from_url", no_download)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    real = synthetic_images(8, 32, seed=1, texture=4)
    fake = synthetic_images(8, 32, seed=2, texture=30)
    ref = torch_fidelity.calculate_metrics(
        input1=_Images(real),
        input2=_Images(fake),
        cuda=False,
        fid=True,
        kid=True,
        isc=True,
        feature_extractor_weights_path=str(weights_file),
        kid_subsets=10,
        kid_subset_size=6,
        isc_splits=2,
        batch_size=8,
        cache=False,
        save_cpu_ram=True,
        verbose=False,
    )

    net = load_inception(weights_file)
    f_real, f_fake = net(real), net(fake)
    fid = fid_from_features(f_real["pool3"], f_fake["pool3"])
    kid_mean, kid_std = kid(f_real["pool3"], f_fake["pool3"], subsets=10, subset_size=6)
    is_mean, is_std = inception_score(f_real["logits_unbiased"], splits=2)

    assert fid == pytest.approx(ref["frechet_inception_distance"], rel=1e-3)
    assert kid_mean == pytest.approx(ref["kernel_inception_distance_mean"], rel=1e-3)
    assert kid_std == pytest.approx(ref["kernel_inception_distance_std"], rel=1e-3)
    assert is_mean == pytest.approx(ref["inception_score_mean"], rel=1e-3)
    assert is_std == pytest.approx(ref["inception_score_std"], rel=1e-3)
    assert fid > 1.0 and is_mean > 1.05  # the calibrated features are informative
