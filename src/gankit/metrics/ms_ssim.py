"""Multi-scale SSIM between image pairs, and the mean MS-SSIM of random pairs as a diversity score.

Paper: Wang, Simoncelli and Bovik, "Multiscale structural similarity for image quality assessment"
(Asilomar 2003; no arXiv id). Used to measure sample diversity by Odena et al., "Conditional Image
Synthesis with Auxiliary Classifier GANs", arXiv:1610.09585, and by Karras et al., "Progressive
Growing of GANs for Improved Quality, Stability, and Variation", arXiv:1710.10196 (lower = more
diverse). Settings as in PGGAN: 5 scales with weights (0.0448, 0.2856, 0.3001, 0.2363, 0.1333), an
11x11 Gaussian window with sigma 1.5, K = (0.01, 0.03), data range 255.

Two protocols:
- `"standard"` (default) matches `pytorch_msssim.ms_ssim(..., size_average=False)`: SSIM and
  contrast-structure terms averaged per channel, the weighted product taken per channel, then
  averaged over channels; odd sizes zero-padded before each 2x2 average pool; the image's shorter
  side must exceed 160 px so the window fits at the coarsest scale.
- `"pggan"` matches the official PGGAN code (`metrics/ms_ssim.py`, from TensorFlow's
  `research/compression/image_encoder/msssim.py`): terms averaged over channels *and* pixels before
  the product, and at scales smaller than the window the window shrinks (`size = min(11, H, W)`,
  `sigma = 1.5 * size / 11`), so 64x64 and 128x128 images work; 2x2 box downsampling drops an odd
  last row/column. On images large enough for both, the protocols differ only in where channels are
  averaged: within 1e-4 on similar pairs, but by up to ~0.07 on unrelated pairs (the diversity
  regime), where a negative term is clamped to 0 per channel in one and after pooling in the other.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from gankit.metrics.inception import to_uint8_rgb

WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
PROTOCOLS = ("standard", "pggan")


def gaussian_window(size: int = 11, sigma: float = 1.5) -> Tensor:
    """Normalised 1-D Gaussian `[size]` (float64), centred between pixels when `size` is even."""
    coords = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    return g / g.sum()


def _blur_valid(x: Tensor, window: Tensor) -> Tensor:
    # Separable 'valid' filtering, rows then columns, each channel on its own.
    k, c = window.to(x), x.shape[1]
    x = F.conv2d(x, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)
    return F.conv2d(x, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)


def _ssim_maps(
    x: Tensor, y: Tensor, window: Tensor, data_range: float, k: tuple[float, float]
) -> tuple[Tensor, Tensor]:
    c1, c2 = (k[0] * data_range) ** 2, (k[1] * data_range) ** 2
    mu_x, mu_y = _blur_valid(x, window), _blur_valid(y, window)
    var_x = _blur_valid(x * x, window) - mu_x**2
    var_y = _blur_valid(y * y, window) - mu_y**2
    cov = _blur_valid(x * y, window) - mu_x * mu_y
    cs = (2 * cov + c2) / (var_x + var_y + c2)
    return (2 * mu_x * mu_y + c1) / (mu_x**2 + mu_y**2 + c1) * cs, cs


def _standard(
    x: Tensor,
    y: Tensor,
    weights: Tensor,
    size: int,
    sigma: float,
    data_range: float,
    k: tuple[float, float],
) -> Tensor:
    window = gaussian_window(size, sigma)
    terms = []
    for scale in range(len(weights)):
        ssim_map, cs_map = _ssim_maps(x, y, window, data_range, k)
        if scale < len(weights) - 1:
            terms.append(cs_map.flatten(2).mean(-1).relu())  # [N, C]
            padding = [s % 2 for s in x.shape[2:]]
            x, y = F.avg_pool2d(x, 2, padding=padding), F.avg_pool2d(y, 2, padding=padding)
    terms.append(ssim_map.flatten(2).mean(-1).relu())
    per_channel = torch.prod(torch.stack(terms) ** weights.view(-1, 1, 1), dim=0)
    return per_channel.mean(1)


def _pggan(
    x: Tensor,
    y: Tensor,
    weights: Tensor,
    size: int,
    sigma: float,
    data_range: float,
    k: tuple[float, float],
) -> Tensor:
    terms = []
    for scale in range(len(weights)):
        fitted = min(size, *x.shape[2:])
        window = gaussian_window(fitted, sigma * fitted / size)
        ssim_map, cs_map = _ssim_maps(x, y, window, data_range, k)
        last = scale == len(weights) - 1
        terms.append((ssim_map if last else cs_map).flatten(1).mean(1).clamp_min(0))  # [N]
        if not last:
            x, y = F.avg_pool2d(x, 2), F.avg_pool2d(y, 2)
    return torch.prod(torch.stack(terms) ** weights.view(-1, 1), dim=0)


def ms_ssim(
    a: Tensor,
    b: Tensor,
    *,
    data_range: float = 255.0,
    weights: tuple[float, ...] = WEIGHTS,
    window_size: int = 11,
    sigma: float = 1.5,
    k: tuple[float, float] = (0.01, 0.03),
    protocol: str = "standard",
) -> Tensor:
    """MS-SSIM of each pair `a[i], b[i]` (`[N, C, H, W]`, uint8 or float in [0, data_range]) -> `[N]`."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown MS-SSIM protocol {protocol!r}; expected one of {PROTOCOLS}")
    if a.shape != b.shape or a.ndim != 4:
        raise ValueError(
            f"expected two [N, C, H, W] batches of one shape, got {a.shape}, {b.shape}"
        )
    smallest = (window_size - 1) * 2 ** (len(weights) - 1)
    if protocol == "standard" and min(a.shape[2:]) <= smallest:
        raise ValueError(
            f"protocol='standard' needs images larger than {smallest} px for {len(weights)} scales, "
            f"got {tuple(a.shape[2:])}; use protocol='pggan', which shrinks the window"
        )
    dtype = a.dtype if a.is_floating_point() else torch.float32
    x, y = a.to(dtype), b.to(device=a.device, dtype=dtype)
    w = torch.tensor(weights, dtype=dtype, device=a.device)
    fn = _standard if protocol == "standard" else _pggan
    return fn(x, y, w, window_size, sigma, data_range, k)


def ms_ssim_diversity(
    images: Tensor,
    num_pairs: int,
    *,
    generator: torch.Generator | None = None,
    batch_size: int = 64,
    protocol: str = "standard",
) -> float:
    """Mean MS-SSIM over `num_pairs` random pairs of distinct images (uint8, or float in [-1, 1])."""
    images = to_uint8_rgb(images)
    n = len(images)
    if n < 2:
        raise ValueError(f"MS-SSIM diversity needs at least 2 images, got {n}")
    first = torch.randint(0, n, (num_pairs,), generator=generator)
    # An offset in [1, n) makes the partner uniform over the other n - 1 images.
    second = (first + torch.randint(1, n, (num_pairs,), generator=generator)) % n
    total = 0.0
    for i, j in zip(first.split(batch_size), second.split(batch_size), strict=True):
        values = ms_ssim(
            images[i.to(images.device)], images[j.to(images.device)], protocol=protocol
        )
        total += float(values.double().sum())
    return total / num_pairs
