"""SWD: known values, and agreement with a NumPy transcription of the official PGGAN algorithm."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage
import torch
import torch.nn.functional as F

from gankit.metrics import swd as swd_module
from gankit.metrics.swd import (
    extract_descriptors,
    laplacian_pyramid,
    normalize_descriptors,
    pyramid_descriptors,
    random_directions,
    random_patch_centres,
    sliced_wasserstein,
    swd,
    swd_resolutions,
)


def smooth_images(n: int, res: int, seed: int) -> torch.Tensor:
    """uint8 `[n, 3, res, res]`: bicubic-upsampled 8x8 noise plus a little fine texture."""
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(n, 3, 8, 8, generator=g) * 160 + 48
    img = F.interpolate(low, size=(res, res), mode="bicubic", align_corners=False)
    img = img + 6 * torch.randn(n, 3, res, res, generator=g)
    return img.clamp(0, 255).round().to(torch.uint8)


# --- The official algorithm (tkarras/progressive_growing_of_gans, metrics/sliced_wasserstein.py),
# transcribed to NumPy for these tests, with the random draws passed in instead of drawn.

_NP_FILTER = np.outer([1, 4, 6, 4, 1], [1, 4, 6, 4, 1]).astype(np.float32) / 256.0


def np_laplacian_pyramid(images: np.ndarray, num_levels: int) -> list[np.ndarray]:
    def down(x: np.ndarray) -> np.ndarray:
        return scipy.ndimage.convolve(x, _NP_FILTER[None, None], mode="mirror")[:, :, ::2, ::2]

    def up(x: np.ndarray) -> np.ndarray:
        z = np.zeros((*x.shape[:2], 2 * x.shape[2], 2 * x.shape[3]), x.dtype)
        z[:, :, ::2, ::2] = x
        return scipy.ndimage.convolve(z, _NP_FILTER[None, None] * 4.0, mode="mirror")

    pyramid = [np.float32(images)]
    for _ in range(1, num_levels):
        pyramid.append(down(pyramid[-1]))
        pyramid[-2] -= up(pyramid[-1])
    return pyramid


def np_descriptors(level: np.ndarray, ys: np.ndarray, xs: np.ndarray, size: int) -> np.ndarray:
    n, c, h, w = level.shape
    per_image = ys.shape[1]
    half = size // 2
    # As the official code: the third ogrid axis is named x (columns), the fourth y (rows).
    nhood, chan, x, y = np.ogrid[0 : n * per_image, 0:c, -half : half + 1, -half : half + 1]
    img = nhood // per_image
    x = x + xs.reshape(-1, 1, 1, 1)
    y = y + ys.reshape(-1, 1, 1, 1)
    return level.flat[((img * c + chan) * h + y) * w + x]


def np_finalize(desc: np.ndarray) -> np.ndarray:
    desc = desc - np.mean(desc, axis=(0, 2, 3), keepdims=True)
    desc /= np.std(desc, axis=(0, 2, 3), keepdims=True)
    return desc.reshape(desc.shape[0], -1)


def np_sliced_wasserstein(a: np.ndarray, b: np.ndarray, directions: np.ndarray) -> float:
    results = []
    for dirs in directions:  # [D, dirs_per_repeat]
        proj_a = np.sort(np.matmul(a, dirs), axis=0)
        proj_b = np.sort(np.matmul(b, dirs), axis=0)
        results.append(np.mean(np.abs(proj_a - proj_b)))
    return float(np.mean(results))


# --- Tests.


def test_resolutions_follow_the_official_rule() -> None:
    assert swd_resolutions(64) == [64, 32, 16]
    assert swd_resolutions(16) == [16]
    assert swd_resolutions(1024) == [1024, 512, 256, 128, 64, 32, 16]
    with pytest.raises(ValueError, match="at least 16x16"):
        swd_resolutions(8)


def test_laplacian_pyramid_matches_numpy_reference() -> None:
    images = smooth_images(4, 64, seed=0)
    ours = laplacian_pyramid(images.float(), 3)
    ref = np_laplacian_pyramid(images.numpy(), 3)
    assert [tuple(x.shape) for x in ours] == [r.shape for r in ref]
    for level, r in zip(ours, ref, strict=True):
        np.testing.assert_allclose(level.numpy(), r, atol=2e-4)


def test_pyramid_reconstructs_the_image() -> None:
    images = smooth_images(2, 32, seed=1).float()
    levels = laplacian_pyramid(images, 2)
    rebuilt = levels[0] + swd_module.pyr_up(levels[1])
    torch.testing.assert_close(rebuilt, images, atol=1e-3, rtol=0)


def test_descriptors_match_official_indexing() -> None:
    level = torch.randn(3, 3, 16, 24)
    ys, xs = random_patch_centres(3, 5, 16, 24, 7, torch.Generator().manual_seed(0))
    assert int(ys.min()) >= 3 and int(ys.max()) <= 12 and int(xs.max()) <= 20
    ours = extract_descriptors(level, ys, xs, 7)
    ref = np_descriptors(level.numpy(), ys.numpy(), xs.numpy(), 7)
    np.testing.assert_array_equal(ours.numpy(), ref)


def test_swd_matches_numpy_reference_end_to_end() -> None:
    real, fake = smooth_images(24, 32, seed=2), smooth_images(24, 32, seed=3)
    seed = 7
    result = swd(real, fake, seed=seed)

    # Replay swd()'s documented draws, then run the official algorithm on them.
    pos_gen, dir_gen = torch.Generator().manual_seed(seed), torch.Generator().manual_seed(seed + 1)
    pyramids = [np_laplacian_pyramid(x.numpy(), 2) for x in (real, fake)]
    expected = {}
    for level, res in enumerate((32, 16)):
        ys, xs = random_patch_centres(24, 128, res, res, 7, pos_gen)
        a, b = (np_finalize(np_descriptors(p[level], ys.numpy(), xs.numpy(), 7)) for p in pyramids)
        dirs = random_directions(a.shape[1], 4, 128, dir_gen).numpy()
        expected[f"swd/{res}"] = 1e3 * np_sliced_wasserstein(a, b, dirs)
    expected["swd/avg"] = (expected["swd/32"] + expected["swd/16"]) / 2

    assert result.keys() == expected.keys()
    for key, value in expected.items():
        assert result[key] == pytest.approx(value, rel=1e-4), key


def test_public_pieces_compose_to_swd() -> None:
    real, fake = smooth_images(8, 32, seed=4), smooth_images(8, 32, seed=5)
    result = swd(real, fake, seed=3)
    desc = [
        pyramid_descriptors(x, generator=torch.Generator().manual_seed(3)) for x in (real, fake)
    ]
    dir_gen = torch.Generator().manual_seed(4)
    for level, res in enumerate((32, 16)):
        a, b = (normalize_descriptors(d[level]) for d in desc)
        value = 1e3 * sliced_wasserstein(a, b, generator=dir_gen)
        assert result[f"swd/{res}"] == pytest.approx(value, rel=1e-6)


def test_normalisation_is_per_channel_population_statistics() -> None:
    d = torch.randn(500, 3, 7, 7) * torch.tensor([1.0, 5.0, 0.1]).view(1, 3, 1, 1) + 3
    flat = normalize_descriptors(d).view(500, 3, 7, 7)
    torch.testing.assert_close(flat.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-5, rtol=0)
    torch.testing.assert_close(
        flat.var(dim=(0, 2, 3), correction=0), torch.ones(3), atol=1e-5, rtol=0
    )


def test_sliced_wasserstein_known_value_in_one_dimension() -> None:
    # One direction in 1-D is +-1: SWD is the L1 between sorted samples, here a shift by 2.
    a = torch.tensor([[0.0], [1.0], [5.0]])
    directions = torch.ones(1, 1, 1)
    assert sliced_wasserstein(a, a + 2, directions=directions) == pytest.approx(2.0)


def test_projection_chunking_does_not_change_the_result(monkeypatch: pytest.MonkeyPatch) -> None:
    a, b = torch.randn(300, 147), torch.randn(300, 147) * 1.5
    directions = random_directions(147, 2, 128, torch.Generator().manual_seed(0))
    whole = sliced_wasserstein(a, b, directions=directions)
    monkeypatch.setattr(swd_module, "_PROJECTION_BUDGET", 300 * 10)  # 10 directions per chunk
    assert sliced_wasserstein(a, b, directions=directions) == pytest.approx(whole, rel=1e-6)


def test_swd_of_a_set_with_itself_is_zero() -> None:
    images = smooth_images(16, 32, seed=6)
    assert swd(images, images.clone()) == {"swd/32": 0.0, "swd/16": 0.0, "swd/avg": 0.0}


def test_grayscale_is_tiled_and_batching_does_not_matter() -> None:
    gray = smooth_images(10, 32, seed=7)[:, :1]
    fake = smooth_images(10, 32, seed=8)
    tiled = swd(gray.expand(-1, 3, -1, -1), fake, batch_size=256)
    assert swd(gray, fake, batch_size=3) == pytest.approx(tiled, rel=1e-6)


def test_swd_ignores_a_global_brightness_offset() -> None:
    # Official normalisation is per set: a per-channel offset (no clipping here) cancels exactly.
    images = smooth_images(16, 32, seed=9).clamp_max(235)
    result = swd(images, images + 20)
    assert result == pytest.approx({"swd/32": 0.0, "swd/16": 0.0, "swd/avg": 0.0}, abs=1e-6)


def test_swd_grows_with_added_noise() -> None:
    real = smooth_images(32, 32, seed=10)
    g = torch.Generator().manual_seed(11)
    noise = torch.randn(real.shape, generator=g)
    values = []
    for sigma in (0, 10, 20, 40):
        fake = (real.float() + sigma * noise).clamp(0, 255).round().to(torch.uint8)
        values.append(swd(real, fake))
    for key in ("swd/32", "swd/16", "swd/avg"):
        series = [v[key] for v in values]
        assert series[0] == 0.0
        assert series == sorted(series) and len(set(series)) == 4, (key, series)


def test_mismatched_sets_are_rejected() -> None:
    with pytest.raises(ValueError, match="equally many"):
        swd(smooth_images(4, 32, seed=0), smooth_images(5, 32, seed=0))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_swd_on_cuda_matches_cpu() -> None:
    real, fake = smooth_images(16, 32, seed=12), smooth_images(16, 32, seed=13)
    cpu = swd(real, fake)
    assert swd(real.cuda(), fake.cuda()) == pytest.approx(cpu, rel=1e-3)
