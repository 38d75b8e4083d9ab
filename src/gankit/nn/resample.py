"""Resampling with cheap CPU kernels.

`upsample2x` is a broadcast copy whose gradient is a 2x2 sum pooling; on CPU it is several times
faster than `F.interpolate`'s nearest kernel at GAN feature-map sizes, with equal values.

`upsample_conv2d` and `conv2d_downsample` are the official ProGAN code's fused layers
(`upscale2d_conv2d`, `conv2d_downscale2d`): a 2x nearest upsample followed by a 3x3 convolution
is one stride-2 transposed convolution, and a 3x3 convolution followed by 2x2 average pooling one
stride-2 convolution, each with the 3x3 kernel summed over its four 1-pixel shifts into a 4x4
one. Same values as the two ops in sequence (up to float rounding) at 4/9 of the multiply-adds,
since no output is computed that pooling would average away or upsampling would copy.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F


class _NearestUpsample2x(torch.autograd.Function):
    """2x nearest upsampling `[N, C, H, W] -> [N, C, 2H, 2W]`; backward: each 2x2 block's sum."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        return x[:, :, :, None, :, None].expand(n, c, h, 2, w, 2).reshape(n, c, 2 * h, 2 * w)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        # 4 * mean is the 2x2 sum exactly (scaling by 4 is exact); written with differentiable ops
        # so that second derivatives through G stay available.
        return 4.0 * F.avg_pool2d(grad, 2)


def upsample2x(x: torch.Tensor) -> torch.Tensor:
    """Nearest-neighbour 2x upsampling, equal to `F.interpolate(x, scale_factor=2, mode="nearest")`."""
    return _NearestUpsample2x.apply(x)


def _box_sum_4x4(weight: torch.Tensor) -> torch.Tensor:
    """A `[..., 3, 3]` kernel summed over its four placements in a 4x4 window."""
    w = F.pad(weight, (1, 1, 1, 1))
    return w[..., 1:, 1:] + w[..., :-1, 1:] + w[..., 1:, :-1] + w[..., :-1, :-1]


def upsample_conv2d(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None
) -> torch.Tensor:
    """`F.conv2d(upsample2x(x), weight, bias, padding=1)` for a 3x3 `weight` `[out, in, 3, 3]`,
    as one transposed convolution `[N, in, H, W] -> [N, out, 2H, 2W]`."""
    # conv_transpose2d correlates with the flipped kernel and takes it as [in, out, kh, kw].
    kernel = _box_sum_4x4(weight).flip(-2, -1).transpose(0, 1)
    return F.conv_transpose2d(x, kernel, bias, stride=2, padding=1)


def conv2d_downsample(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None
) -> torch.Tensor:
    """`F.avg_pool2d(F.conv2d(x, weight, padding=1), 2)` plus `bias`, for a 3x3 `weight`, as one
    stride-2 convolution `[N, in, H, W] -> [N, out, H/2, W/2]` (H, W even)."""
    return F.conv2d(x, _box_sum_4x4(weight) * 0.25, bias, stride=2, padding=1)
