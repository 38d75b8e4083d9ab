"""Sliced Wasserstein distance (SWD) between the patch distributions of two image sets.

Paper: Karras et al., "Progressive Growing of GANs for Improved Quality, Stability, and Variation",
arXiv:1710.10196 (section 5 and appendix D). Reference implementation followed step by step:
tkarras/progressive_growing_of_gans, `metrics/sliced_wasserstein.py`:

1. A Laplacian pyramid of each uint8 image as float in [0, 255]: the 5x5 binomial filter
   (`[1, 4, 6, 4, 1] / 16`, outer product) with mirror (reflect) borders; down = blur, keep every
   second pixel; up = insert zeros, blur with 4x the filter. Levels run from the full resolution
   down to 16x16; every level but the last is band-pass, the last is the low-pass image.
2. From every image, at every level, 128 random 7x7 neighbourhoods (7*7*3 values each).
3. The descriptors of one level of one set are normalised per colour channel by their mean and
   population std over all descriptors and pixels; the real and the fake set are normalised
   separately (so SWD cannot see a global per-channel brightness or contrast change).
4. Per level: 4 repeats of 128 random unit directions; project both sets, sort each projection,
   average the absolute differences; average over repeats; report x1e3 per level and the average.

Deviations, none of which changes an expectation: patch centres and directions come from seeded
torch generators (the official code uses numpy's global RNG); both sets reuse one stream of patch
centres (the official code draws independently), which makes SWD(x, x) exactly 0; and descriptors
keep the official component order (its neighbourhood indexing swaps rows and columns), so the same
direction matrix gives the same number as the official code.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from gankit.metrics.inception import to_uint8_rgb

_BINOMIAL = (1.0, 4.0, 6.0, 4.0, 1.0)
MIN_RESOLUTION = 16
# Elements of one chunk of projections (x4 bytes), bounding memory while sorting.
_PROJECTION_BUDGET = 1 << 26


def _blur(x: Tensor, gain: float, stride: int) -> Tensor:
    taps = torch.tensor(_BINOMIAL, dtype=x.dtype, device=x.device) / 16
    kernel = (torch.outer(taps, taps) * gain).expand(x.shape[1], 1, 5, 5)
    return F.conv2d(
        F.pad(x, (2, 2, 2, 2), mode="reflect"), kernel, stride=stride, groups=x.shape[1]
    )


def pyr_down(x: Tensor) -> Tensor:
    """Blur and keep every second pixel: `[N, C, H, W]` -> `[N, C, H/2, W/2]` (as `cv2.pyrDown`)."""
    return _blur(x, 1.0, stride=2)


def pyr_up(x: Tensor) -> Tensor:
    """Insert zeros and blur with 4x the filter: `[N, C, H, W]` -> `[N, C, 2H, 2W]` (as `cv2.pyrUp`)."""
    n, c, h, w = x.shape
    up = x.new_zeros(n, c, 2 * h, 2 * w)
    up[:, :, ::2, ::2] = x
    return _blur(up, 4.0, stride=1)


def laplacian_pyramid(images: Tensor, num_levels: int) -> list[Tensor]:
    """Float `[N, C, H, W]` -> `num_levels` levels, full resolution first, low-pass image last."""
    levels = [images.float()]
    for _ in range(1, num_levels):
        down = pyr_down(levels[-1])
        levels[-1] = levels[-1] - pyr_up(down)
        levels.append(down)
    return levels


def _laplacian_level(images: Tensor, level: int, num_levels: int) -> Tensor:
    # One level only: the Gaussian image at `level` minus the upsampled next one (if any).
    gaussian = images.float()
    for _ in range(level):
        gaussian = pyr_down(gaussian)
    return gaussian if level == num_levels - 1 else gaussian - pyr_up(pyr_down(gaussian))


def swd_resolutions(height: int, width: int | None = None) -> list[int]:
    """The pyramid's resolutions, full first, halving while >= 16 (64 -> [64, 32, 16])."""
    width = height if width is None else width
    resolutions = []
    res = height
    while res >= MIN_RESOLUTION:
        resolutions.append(res)
        res //= 2
    factor = 2 ** (len(resolutions) - 1)
    if not resolutions or height % factor or width % factor:
        raise ValueError(
            f"SWD needs images of at least {MIN_RESOLUTION}x{MIN_RESOLUTION} whose sides halve "
            f"evenly down to {MIN_RESOLUTION}; got {height}x{width}"
        )
    return resolutions


def random_patch_centres(
    num_images: int,
    patches_per_image: int,
    height: int,
    width: int,
    patch_size: int = 7,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor]:
    """Uniform centres `(ys, xs)`, each int64 `[num_images, patches_per_image]`, of patches that fit."""
    half = patch_size // 2
    shape = (num_images, patches_per_image)
    ys = torch.randint(half, height - half, shape, generator=generator)
    xs = torch.randint(half, width - half, shape, generator=generator)
    return ys, xs


def extract_descriptors(level: Tensor, ys: Tensor, xs: Tensor, patch_size: int = 7) -> Tensor:
    """Patches of `level [N, C, H, W]` at centres `ys, xs [N, P]` -> `[N * P, C, k, k]`."""
    half = patch_size // 2
    offsets = torch.arange(-half, half + 1, device=level.device)
    rows = ys.to(level.device)[:, :, None, None] + offsets[:, None]  # [N, P, k, 1]
    cols = xs.to(level.device)[:, :, None, None] + offsets  # [N, P, 1, k]
    batch = torch.arange(level.shape[0], device=level.device)[:, None, None, None]
    patches = level.permute(0, 2, 3, 1)[batch, rows, cols]  # [N, P, row, col, C]
    # The official code lays a neighbourhood out as [channel, column, row]; keep that order.
    return patches.permute(0, 1, 4, 3, 2).reshape(-1, level.shape[1], patch_size, patch_size)


def _level_descriptors(
    images: Tensor,
    level: int,
    num_levels: int,
    centres: tuple[Tensor, Tensor],
    patch_size: int,
    batch_size: int,
    device: torch.device,
) -> Tensor:
    ys, xs = centres
    out = []
    for start in range(0, len(images), batch_size):
        batch = images[start : start + batch_size].to(device)
        lap = _laplacian_level(batch, level, num_levels)
        end = start + len(batch)
        out.append(extract_descriptors(lap, ys[start:end], xs[start:end], patch_size))
    return torch.cat(out)


def pyramid_descriptors(
    images: Tensor,
    *,
    patches_per_image: int = 128,
    patch_size: int = 7,
    generator: torch.Generator | None = None,
    batch_size: int = 256,
) -> list[Tensor]:
    """uint8 `[N, 1|3, H, W]` -> per level (full first) unnormalised descriptors `[N * P, 3, k, k]`."""
    images = to_uint8_rgb(images)
    n, _, h, w = images.shape
    num_levels = len(swd_resolutions(h, w))
    out = []
    for level in range(num_levels):
        size = (h >> level, w >> level)
        centres = random_patch_centres(n, patches_per_image, *size, patch_size, generator)
        out.append(
            _level_descriptors(
                images, level, num_levels, centres, patch_size, batch_size, images.device
            )
        )
    return out


def normalize_descriptors(descriptors: Tensor) -> Tensor:
    """`[M, C, k, k]` -> `[M, C * k * k]`, each channel at zero mean and unit (population) std."""
    var, mean = torch.var_mean(descriptors, dim=(0, 2, 3), keepdim=True, correction=0)
    # A constant channel (e.g. all-black images) would divide by zero; the official code gives NaN.
    normalised = (descriptors - mean).div_(var.sqrt().clamp_min(1e-8))
    return normalised.reshape(len(descriptors), -1)


def random_directions(
    dim: int,
    dir_repeats: int = 4,
    dirs_per_repeat: int = 128,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Unit directions, float32 `[dir_repeats, dim, dirs_per_repeat]` (one column per direction)."""
    dirs = torch.randn(dir_repeats, dim, dirs_per_repeat, generator=generator, dtype=torch.float64)
    return (dirs / dirs.norm(dim=1, keepdim=True)).float()


def _sorted_rows(x: Tensor) -> Tensor:
    # torch's CPU sort also builds an index tensor, which makes it much slower than numpy's here.
    if x.device.type == "cpu":
        return torch.from_numpy(np.sort(x.numpy(), axis=1))
    return x.sort(dim=1).values


def sliced_wasserstein(
    a: Tensor,
    b: Tensor,
    *,
    dir_repeats: int = 4,
    dirs_per_repeat: int = 128,
    generator: torch.Generator | None = None,
    directions: Tensor | None = None,
) -> float:
    """SWD between descriptor sets `a, b [M, D]`: mean over repeats of the sorted-projection L1."""
    if a.ndim != 2 or a.shape != b.shape:
        raise ValueError(
            f"expected two descriptor sets of equal shape [M, D], got {a.shape}, {b.shape}"
        )
    if directions is None:
        directions = random_directions(a.shape[1], dir_repeats, dirs_per_repeat, generator)
    directions = directions.to(device=a.device, dtype=a.dtype)
    # Project a few directions at a time so the sorted copies stay around 256 MB.
    chunk = max(1, min(directions.shape[2], _PROJECTION_BUDGET // len(a)))
    results = []
    for dirs in directions:
        total = 0.0
        for part in dirs.split(chunk, dim=1):
            proj_a = _sorted_rows((a @ part).T.contiguous())
            proj_b = _sorted_rows((b @ part).T.contiguous())
            total += float((proj_a - proj_b).abs().sum(dtype=torch.float64))
        results.append(total / (len(a) * dirs.shape[1]))
    return float(np.mean(results))


def swd(
    real: Tensor,
    fake: Tensor,
    *,
    patches_per_image: int = 128,
    patch_size: int = 7,
    dir_repeats: int = 4,
    dirs_per_repeat: int = 128,
    seed: int = 0,
    batch_size: int = 256,
    device: str | torch.device | None = None,
) -> dict[str, float]:
    """SWD x1e3 per pyramid level (`swd/64`, `swd/32`, ...) and their mean (`swd/avg`).

    Both sets draw patch centres from `torch.Generator().manual_seed(seed)` level by level, and the
    directions come from `torch.Generator().manual_seed(seed + 1)`. One level's descriptors are held
    at a time (`N * 128 * 147 * 4` bytes per set: 1.2 GB for 16k images); images move to `device`
    in batches of `batch_size`.
    """
    real, fake = to_uint8_rgb(real), to_uint8_rgb(fake)
    if real.shape != fake.shape:
        raise ValueError(
            f"SWD compares equally many images of one size; got real {tuple(real.shape)}, "
            f"fake {tuple(fake.shape)}"
        )
    device = torch.device(device) if device is not None else real.device
    n, _, h, w = real.shape
    resolutions = swd_resolutions(h, w)
    gens = [torch.Generator().manual_seed(seed) for _ in range(2)]
    dir_gen = torch.Generator().manual_seed(seed + 1)
    out = {}
    for level, res in enumerate(resolutions):
        size = (h >> level, w >> level)
        descriptors = [
            normalize_descriptors(
                _level_descriptors(
                    images,
                    level,
                    len(resolutions),
                    random_patch_centres(n, patches_per_image, *size, patch_size, gen),
                    patch_size,
                    batch_size,
                    device,
                )
            )
            for images, gen in zip((real, fake), gens, strict=True)
        ]
        out[f"swd/{res}"] = 1e3 * sliced_wasserstein(
            *descriptors,
            dir_repeats=dir_repeats,
            dirs_per_repeat=dirs_per_repeat,
            generator=dir_gen,
        )
        del descriptors
    out["swd/avg"] = float(np.mean(list(out.values())))
    return out
