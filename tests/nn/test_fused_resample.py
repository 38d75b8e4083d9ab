"""The official ProGAN code's fused resampling convolutions equal the two ops they replace."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from gankit.nn.resample import conv2d_downsample, upsample_conv2d


def _inputs(h: int, w: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, h, w, generator=gen, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(4, 3, 3, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(4, generator=gen, dtype=torch.float64, requires_grad=True)
    return x, weight, bias


def _upsample_then_conv(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return F.conv2d(F.interpolate(x, scale_factor=2, mode="nearest"), w, b, padding=1)


def _conv_then_pool(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return F.avg_pool2d(F.conv2d(x, w, padding=1), 2) + b[:, None, None]


@pytest.mark.parametrize("size", [(1, 1), (3, 5), (4, 4)])
def test_upsample_conv_equals_nearest_upsample_then_3x3_conv(size: tuple[int, int]) -> None:
    x, w, b = _inputs(*size)
    out = upsample_conv2d(x, w, b)
    assert out.shape == (2, 4, 2 * size[0], 2 * size[1])
    torch.testing.assert_close(out, _upsample_then_conv(x, w, b), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("size", [(2, 2), (4, 6), (8, 8)])
def test_conv_downsample_equals_3x3_conv_then_average_pooling(size: tuple[int, int]) -> None:
    x, w, b = _inputs(*size)
    out = conv2d_downsample(x, w, b)
    assert out.shape == (2, 4, size[0] // 2, size[1] // 2)
    torch.testing.assert_close(out, _conv_then_pool(x, w, b), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    ("fused", "plain", "size"),
    [(upsample_conv2d, _upsample_then_conv, (3, 3)), (conv2d_downsample, _conv_then_pool, (4, 4))],
)
def test_first_and_second_derivatives_match_the_separate_ops(
    fused: object, plain: object, size: tuple[int, int]
) -> None:
    """Gradient penalties differentiate D's gradients again: both orders must agree."""
    x, w, b = _inputs(*size)
    grads = []
    for fn in (fused, plain):
        (gx,) = torch.autograd.grad(fn(x, w, b).square().sum(), x, create_graph=True)
        grads.append(torch.autograd.grad(gx.square().sum(), (x, w, b)))
        grads[-1] = (gx, *grads[-1])
    for a, c in zip(*grads, strict=True):
        torch.testing.assert_close(a, c, rtol=1e-10, atol=1e-10)
