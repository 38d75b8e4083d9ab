"""MS-SSIM: known values, pytorch-msssim agreement, and the official PGGAN (NumPy) algorithm."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from scipy import signal

from gankit.metrics.ms_ssim import WEIGHTS, gaussian_window, ms_ssim, ms_ssim_diversity


def reference_ms_ssim(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """`pytorch_msssim.ms_ssim` per pair (a test-only dependency: skip where it is absent)."""
    pytorch_msssim = pytest.importorskip("pytorch_msssim")
    return pytorch_msssim.ms_ssim(a, b, data_range=255, size_average=False)


def textured_images(n: int, res: int, seed: int) -> torch.Tensor:
    """uint8 `[n, 3, res, res]`: smooth colour fields with fine noise on top."""
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(n, 3, 6, 6, generator=g) * 200 + 28
    img = F.interpolate(low, size=(res, res), mode="bicubic", align_corners=False)
    img = img + 25 * torch.randn(n, 3, res, res, generator=g)
    return img.clamp(0, 255).round().to(torch.uint8)


def add_noise(images: torch.Tensor, sigma: float, seed: int) -> torch.Tensor:
    noise = torch.randn(images.shape, generator=torch.Generator().manual_seed(seed))
    return (images.float() + sigma * noise).clamp(0, 255).round().to(torch.uint8)


@pytest.fixture(scope="module")
def photos(shared_data: Path) -> torch.Tensor:
    """The four skimage RGB/grey photos, centre-cropped to 256x256, uint8 `[4, 3, 256, 256]`."""
    crops = []
    for name in ("astronaut", "coffee", "chelsea", "camera"):
        img = np.asarray(Image.open(shared_data / "skimage" / f"{name}.png").convert("RGB"))
        top, left = (img.shape[0] - 256) // 2, (img.shape[1] - 256) // 2
        crops.append(torch.from_numpy(img[top : top + 256, left : left + 256].copy()))
    return torch.stack(crops).permute(0, 3, 1, 2).contiguous()


# --- The official PGGAN MS-SSIM (metrics/ms_ssim.py, from TensorFlow's msssim.py), transcribed to
# NumPy for these tests; it returns the per-pair values the official code averages.


def np_pggan_msssim(img1: np.ndarray, img2: np.ndarray) -> np.ndarray:
    weights = np.array(WEIGHTS)
    im1, im2 = img1.astype(np.float32), img2.astype(np.float32)  # [N, H, W, C]
    mssim, mcs = [], []
    for _ in range(len(weights)):
        size = min(11, im1.shape[1], im1.shape[2])
        sigma = size * 1.5 / 11
        coords = np.arange(size) - (size - 1) / 2
        xx, yy = np.meshgrid(coords, coords)
        window = np.exp(-(xx**2 + yy**2) / (2 * sigma**2))
        window = (window / window.sum()).reshape(1, size, size, 1)
        mu1 = signal.fftconvolve(im1, window, mode="valid")
        mu2 = signal.fftconvolve(im2, window, mode="valid")
        s11 = signal.fftconvolve(im1 * im1, window, mode="valid") - mu1 * mu1
        s22 = signal.fftconvolve(im2 * im2, window, mode="valid") - mu2 * mu2
        s12 = signal.fftconvolve(im1 * im2, window, mode="valid") - mu1 * mu2
        c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
        v1, v2 = 2 * s12 + c2, s11 + s22 + c2
        mssim.append(
            np.mean((2 * mu1 * mu2 + c1) * v1 / ((mu1**2 + mu2**2 + c1) * v2), axis=(1, 2, 3))
        )
        mcs.append(np.mean(v1 / v2, axis=(1, 2, 3)))
        im1, im2 = (
            (x[:, 0::2, 0::2] + x[:, 1::2, 0::2] + x[:, 0::2, 1::2] + x[:, 1::2, 1::2]) * 0.25
            for x in (im1, im2)
        )
    mssim_arr = np.clip(np.asarray(mssim), 0, np.inf)
    mcs_arr = np.clip(np.asarray(mcs), 0, np.inf)
    return np.prod(mcs_arr[:-1] ** weights[:-1, None], axis=0) * mssim_arr[-1] ** weights[-1]


def _nhwc(x: torch.Tensor) -> np.ndarray:
    return x.permute(0, 2, 3, 1).numpy()


# --- Tests.


def test_gaussian_window_matches_fspecial() -> None:
    g = gaussian_window(11, 1.5)
    assert g.sum().item() == pytest.approx(1.0)
    assert g[5] / g[4] == pytest.approx(np.exp(1 / (2 * 1.5**2)))
    even = gaussian_window(4, 1.0)
    torch.testing.assert_close(even, even.flip(0))  # centred between the two middle pixels


@pytest.mark.parametrize("protocol", ["standard", "pggan"])
def test_ms_ssim_of_identical_images_is_one(protocol: str) -> None:
    images = textured_images(3, 176 if protocol == "standard" else 64, seed=0)
    torch.testing.assert_close(ms_ssim(images, images, protocol=protocol), torch.ones(3))


def test_matches_pytorch_msssim_on_random_pairs() -> None:
    a = textured_images(4, 192, seed=1)
    pairs = {"noisy": add_noise(a, 20, seed=2), "unrelated": textured_images(4, 192, seed=3)}
    for name, b in pairs.items():
        ours = ms_ssim(a, b)
        ref = reference_ms_ssim(a.float(), b.float())
        torch.testing.assert_close(ours, ref, atol=1e-4, rtol=0, msg=name)


def test_matches_pytorch_msssim_on_odd_sizes_and_float64() -> None:
    a = textured_images(2, 203, seed=4)[:, :, :, :199]
    b = add_noise(a, 30, seed=5)
    ref = reference_ms_ssim(a.double(), b.double())
    # pytorch-msssim builds its window in float32, so float64 agreement is to ~1e-6, not 1e-12.
    torch.testing.assert_close(ms_ssim(a.double(), b.double()), ref, atol=1e-5, rtol=0)


@pytest.mark.shared_data
def test_matches_pytorch_msssim_on_photos(photos: torch.Tensor) -> None:
    for b in (photos.roll(1, 0), add_noise(photos, 15, seed=6)):
        ours = ms_ssim(photos, b)
        ref = reference_ms_ssim(photos.float(), b.float())
        torch.testing.assert_close(ours, ref, atol=1e-4, rtol=0)


@pytest.mark.parametrize("res", [64, 128])
def test_pggan_protocol_matches_the_official_numpy_code(res: int) -> None:
    a = textured_images(4, res, seed=7)
    b = torch.cat([add_noise(a[:2], 25, seed=8), textured_images(2, res, seed=9)])
    ref = np_pggan_msssim(_nhwc(a), _nhwc(b))
    np.testing.assert_allclose(ms_ssim(a, b, protocol="pggan").numpy(), ref, atol=1e-5)


@pytest.mark.shared_data
def test_pggan_protocol_matches_official_on_photos(photos: torch.Tensor) -> None:
    b = add_noise(photos, 15, seed=10)
    ref = np_pggan_msssim(_nhwc(photos), _nhwc(b))
    np.testing.assert_allclose(ms_ssim(photos, b, protocol="pggan").numpy(), ref, atol=1e-5)
    # Where both protocols apply they differ only by the order of channel averaging.
    standard = ms_ssim(photos, b).numpy()
    np.testing.assert_allclose(standard, ref, atol=2e-3)


def test_standard_protocol_refuses_small_images_and_names_the_fix() -> None:
    small = textured_images(2, 64, seed=11)
    with pytest.raises(ValueError, match="protocol='pggan'"):
        ms_ssim(small, small)


def test_diversity_of_two_images_is_their_ms_ssim() -> None:
    # With two images every random pair is (A, B) or (B, A), and MS-SSIM is symmetric.
    a = textured_images(1, 64, seed=12)
    b = add_noise(a, 30, seed=13)
    expected = ms_ssim(a, b, protocol="pggan").item()
    images = torch.cat([a, b])
    value = ms_ssim_diversity(
        images, 20, generator=torch.Generator().manual_seed(0), protocol="pggan"
    )
    assert value == pytest.approx(expected, rel=1e-6)


def test_diversity_of_copies_is_one_and_batching_is_invisible() -> None:
    copies = textured_images(1, 64, seed=14).expand(5, -1, -1, -1)
    assert ms_ssim_diversity(copies, 7, protocol="pggan") == pytest.approx(1.0, abs=1e-6)
    mixed = textured_images(6, 64, seed=15)
    values = [
        ms_ssim_diversity(
            mixed, 9, generator=torch.Generator().manual_seed(1), batch_size=size, protocol="pggan"
        )
        for size in (64, 2)
    ]
    assert values[0] == pytest.approx(values[1], rel=1e-6)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_ms_ssim_on_cuda_matches_cpu() -> None:
    a = textured_images(2, 176, seed=16)
    b = add_noise(a, 20, seed=17)
    torch.testing.assert_close(ms_ssim(a.cuda(), b.cuda()).cpu(), ms_ssim(a, b), atol=1e-5, rtol=0)
