"""upfirdn2d and its wrappers against scipy, hand-built arrays and known filters."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal
import torch
import torch.nn.functional as F

from gankit.nn.upfirdn import downsample2d, filter2d, setup_filter, upfirdn2d, upsample2d


def _scipy_separable(x: np.ndarray, h: np.ndarray, up: int, down: int) -> np.ndarray:
    """scipy.signal.upfirdn along the width, then the height, of [N, C, H, W]."""
    y = scipy.signal.upfirdn(h, x, up=up, down=down, axis=-1)
    return scipy.signal.upfirdn(h, y, up=up, down=down, axis=-2)


def _by_hand_2d(
    x: np.ndarray, f: np.ndarray, up: int, down: int, pad: tuple[int, int, int, int]
) -> np.ndarray:
    """Zero insertion, pad or crop, valid 2-D convolution, decimation: the op's definition."""
    n, c, h, w = x.shape
    px0, px1, py0, py1 = pad
    big = np.zeros((n, c, h * up, w * up))
    big[:, :, ::up, ::up] = x
    big = np.pad(big, [(0, 0), (0, 0), (max(py0, 0), max(py1, 0)), (max(px0, 0), max(px1, 0))])
    big = big[:, :, max(-py0, 0) : big.shape[2] - max(-py1, 0)]
    big = big[:, :, :, max(-px0, 0) : big.shape[3] - max(-px1, 0)]
    out = np.stack(
        [
            np.stack([scipy.signal.convolve2d(img, f, mode="valid") for img in sample])
            for sample in big
        ]
    )
    return out[:, :, ::down, ::down]


@pytest.mark.parametrize(("up", "down"), [(1, 1), (2, 1), (1, 2), (2, 2), (3, 2)])
@pytest.mark.parametrize("taps", [4, 8])
def test_separable_filter_matches_scipy_upfirdn(up: int, down: int, taps: int) -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 7, 9))
    h = rng.standard_normal(taps)
    # Padding fw - 1 before and fw - up after gives scipy's "full" output (scipy inserts no
    # zeros after the last sample); a negative value crops.
    pad = [taps - 1, taps - up, taps - 1, taps - up]
    out = upfirdn2d(torch.from_numpy(x), torch.from_numpy(h), up=up, down=down, padding=pad)
    np.testing.assert_allclose(out.numpy(), _scipy_separable(x, h, up, down), atol=1e-12)


@pytest.mark.parametrize(
    ("up", "down", "pad"),
    [
        (1, 1, (0, 0, 0, 0)),
        (1, 1, (2, 1, 0, 3)),
        (2, 1, (3, -1, 1, 2)),
        (1, 2, (-1, 2, 2, -2)),
        (2, 2, (1, 1, 1, 1)),
        (3, 1, (0, -2, 2, 0)),
    ],
)
def test_2d_filter_matches_hand_built_convolution(
    up: int, down: int, pad: tuple[int, int, int, int]
) -> None:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 2, 6, 5))
    f = rng.standard_normal((3, 4))  # non-square: height and width must not be swapped
    out = upfirdn2d(torch.from_numpy(x), torch.from_numpy(f), up=up, down=down, padding=list(pad))
    np.testing.assert_allclose(out.numpy(), _by_hand_2d(x, f, up, down, pad), atol=1e-12)


def test_padding_forms_agree() -> None:
    x = torch.randn(1, 2, 5, 6, dtype=torch.float64)
    f = torch.randn(3, 3, dtype=torch.float64)
    torch.testing.assert_close(upfirdn2d(x, f, padding=2), upfirdn2d(x, f, padding=[2, 2, 2, 2]))
    torch.testing.assert_close(
        upfirdn2d(x, f, padding=[1, 3]), upfirdn2d(x, f, padding=[1, 1, 3, 3])
    )


def test_flip_filter_correlates() -> None:
    x = torch.randn(2, 3, 6, 6, dtype=torch.float64)
    f = torch.randn(3, 2, dtype=torch.float64)
    flipped = upfirdn2d(x, f, padding=1, flip_filter=True)
    torch.testing.assert_close(flipped, upfirdn2d(x, f.flip([0, 1]), padding=1))
    # Correlation is what F.conv2d computes.
    torch.testing.assert_close(
        flipped, F.conv2d(F.pad(x, [1, 1, 1, 1]), f.expand(3, 1, 3, 2), groups=3)
    )


@pytest.mark.parametrize("shape", [(4,), (3, 3)])
def test_gain_scales_the_output(shape: tuple[int, ...]) -> None:
    x = torch.randn(1, 2, 6, 6, dtype=torch.float64)
    f = torch.rand(shape, dtype=torch.float64)
    torch.testing.assert_close(
        upfirdn2d(x, f, up=2, padding=2, gain=3.0), 3.0 * upfirdn2d(x, f, up=2, padding=2)
    )


def test_setup_filter_known_values() -> None:
    f = setup_filter([1, 3, 3, 1])
    expected = torch.tensor([1.0, 3.0, 3.0, 1.0])
    torch.testing.assert_close(f, torch.outer(expected, expected) / 64)
    assert f.dtype == torch.float32
    long = setup_filter(list(range(1, 9)))  # 8 taps: kept separable
    torch.testing.assert_close(long, torch.arange(1.0, 9.0) / 36)
    torch.testing.assert_close(
        setup_filter([1, 2], flip_filter=True, separable=True), torch.tensor([2 / 3, 1 / 3])
    )
    torch.testing.assert_close(
        setup_filter([1, 1], gain=4, separable=True), torch.tensor([1.0, 1.0])
    )
    torch.testing.assert_close(setup_filter([1, 1], gain=4), torch.ones(2, 2))
    torch.testing.assert_close(setup_filter([2, 2], normalize=False), torch.full((2, 2), 4.0))
    torch.testing.assert_close(setup_filter(None), torch.ones(1, 1))
    with pytest.raises(ValueError, match="separable"):
        setup_filter(torch.ones(2, 2), separable=True)


def test_upsample2d_with_box_filter_is_nearest_neighbour() -> None:
    x = torch.randn(2, 3, 4, 5)
    out = upsample2d(x, setup_filter([1, 1]))
    torch.testing.assert_close(out, x.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3))


def test_downsample2d_with_box_filter_is_average_pooling() -> None:
    x = torch.randn(2, 3, 8, 6)
    torch.testing.assert_close(downsample2d(x, setup_filter([1, 1])), F.avg_pool2d(x, 2))


def test_upsample2d_matches_scipy_with_the_official_alignment() -> None:
    rng = np.random.default_rng(2)
    x = rng.standard_normal((1, 2, 5, 6))
    taps = np.array([1.0, 3.0, 3.0, 1.0])
    out = upsample2d(torch.from_numpy(x), setup_filter(taps, separable=True).double())
    # The wrapper pads 2 before and 1 after: scipy's full output shifted by one sample, each
    # axis with gain 2 for the inserted zeros.
    full = _scipy_separable(x, taps / taps.sum() * 2, up=2, down=1)
    np.testing.assert_allclose(out.numpy(), full[:, :, 1 : 1 + 10, 1 : 1 + 12], atol=1e-12)


def test_resampling_keeps_a_constant_image_constant_inside() -> None:
    f = setup_filter([1, 3, 3, 1])
    x = torch.full((1, 2, 8, 8), 2.5)
    up = upsample2d(x, f)
    assert up.shape == (1, 2, 16, 16)
    # Only the border sees the zero padding.
    torch.testing.assert_close(up[:, :, 2:-2, 2:-2], torch.full((1, 2, 12, 12), 2.5))
    assert up[0, 0, 0, 0].item() < 2.5
    down = downsample2d(x, f)
    assert down.shape == (1, 2, 4, 4)
    torch.testing.assert_close(down[:, :, 1:-1, 1:-1], torch.full((1, 2, 2, 2), 2.5))
    same = filter2d(x, f)
    assert same.shape == x.shape
    torch.testing.assert_close(same[:, :, 2:-2, 2:-2], torch.full((1, 2, 4, 4), 2.5))


def test_filter2d_of_an_impulse_is_the_centred_filter() -> None:
    x = torch.zeros(1, 1, 7, 7)
    x[0, 0, 3, 3] = 1.0
    f = setup_filter([1, 2, 1])
    out = filter2d(x, f)
    expected = torch.zeros(1, 1, 7, 7)
    expected[0, 0, 2:5, 2:5] = f
    torch.testing.assert_close(out, expected)


@pytest.mark.parametrize(
    ("f", "up", "down", "pad"),
    [
        (torch.tensor([[1.0, 2.0], [0.5, -1.0]]), 2, 1, [1, 0, 0, 1]),
        (torch.tensor([1.0, 3.0, 3.0, 1.0]), 1, 2, [1, 2, 2, 1]),
    ],
)
def test_upfirdn2d_is_twice_differentiable(
    f: torch.Tensor, up: int, down: int, pad: list[int]
) -> None:
    x = torch.randn(1, 2, 4, 4, dtype=torch.float64, requires_grad=True)
    f = f.double()

    def fn(inp: torch.Tensor) -> torch.Tensor:
        return upfirdn2d(inp, f, up=up, down=down, padding=pad)

    assert torch.autograd.gradcheck(fn, (x,))
    assert torch.autograd.gradgradcheck(fn, (x,))
