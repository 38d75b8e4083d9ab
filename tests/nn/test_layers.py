"""Equalized layers, PixelNorm and minibatch stddev against hand computations."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from gankit.nn import EqualConv2d, EqualLinear, MinibatchStdDev, PixelNorm, minibatch_group_size


def test_equal_conv_equals_plain_conv_with_he_scaled_weight() -> None:
    torch.manual_seed(0)
    layer = EqualConv2d(6, 5, 3)
    with torch.no_grad():
        layer.bias.normal_()
    x = torch.randn(2, 6, 8, 8)
    fan_in = 6 * 3 * 3
    expected = F.conv2d(x, layer.weight * math.sqrt(2 / fan_in), layer.bias, padding=1)
    torch.testing.assert_close(layer(x), expected, rtol=0, atol=1e-6)
    # Stored weights are N(0, 1): the scale lives in the forward pass, not the parameter.
    assert layer.weight.std().item() == pytest.approx(1.0, abs=0.15)


def test_equal_linear_equals_plain_linear_with_gain_and_lr_multiplier() -> None:
    torch.manual_seed(0)
    layer = EqualLinear(10, 4, gain=1.0, lr_multiplier=0.01, bias_init=1.0)
    x = torch.randn(3, 10)
    expected = F.linear(x, layer.weight * (1.0 / math.sqrt(10) * 0.01), layer.bias * 0.01)
    torch.testing.assert_close(layer(x), expected, rtol=0, atol=1e-6)
    # The effective bias starts at bias_init whatever the multiplier.
    torch.testing.assert_close(layer.bias * layer.bias_scale, torch.ones(4))


def test_pixel_norm_gives_unit_rms_over_channels_at_every_pixel() -> None:
    x = torch.randn(4, 16, 5, 5) * 7.0 + 3.0
    rms = PixelNorm()(x).square().mean(dim=1).sqrt()
    torch.testing.assert_close(rms, torch.ones(4, 5, 5), rtol=0, atol=1e-5)


def _mbstd_by_hand(x: torch.Tensor, group: int, num_channels: int) -> torch.Tensor:
    """Loops over groups: sample i belongs to group i mod (N / G), as in the official code."""
    n, c, h, w = x.shape
    x64 = x.double()
    out = torch.empty(n, num_channels, h, w, dtype=torch.float64)
    per = c // num_channels
    for member in range(n):
        peers = [j for j in range(n) if j % (n // group) == member % (n // group)]
        stack = x64[peers]  # [G, C, H, W]
        std = (stack.var(dim=0, unbiased=False) + 1e-8).sqrt()
        for f in range(num_channels):
            out[member, f] = std[f * per : (f + 1) * per].mean()
    return torch.cat([x64, out], dim=1).float()


@pytest.mark.parametrize(
    ("batch", "group_size", "num_channels", "used_group"),
    [
        (8, 1, 1, 1),
        (8, 2, 1, 2),
        (8, 4, 1, 4),
        (8, 4, 2, 4),
        (6, 4, 1, 3),
        (7, 4, 1, 1),
        (4, 0, 1, 4),
    ],
)
def test_minibatch_stddev_matches_hand_computation(
    batch: int, group_size: int, num_channels: int, used_group: int
) -> None:
    torch.manual_seed(batch)
    x = torch.randn(batch, 4, 3, 3)
    assert minibatch_group_size(batch, group_size or batch) == used_group
    out = MinibatchStdDev(group_size, num_channels)(x)
    assert out.shape == (batch, 4 + num_channels, 3, 3)
    torch.testing.assert_close(
        out, _mbstd_by_hand(x, used_group, num_channels), rtol=1e-5, atol=1e-6
    )


def test_minibatch_stddev_group_of_one_is_sqrt_eps() -> None:
    out = MinibatchStdDev(1)(torch.randn(3, 2, 2, 2))
    torch.testing.assert_close(out[:, 2], torch.full((3, 2, 2), math.sqrt(1e-8)))
