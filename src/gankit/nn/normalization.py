"""Normalisation layers of the progressive/style GAN families.

PixelNorm and minibatch standard deviation follow Karras et al., arXiv:1710.10196, sections 3 and 4.2.
"""

from __future__ import annotations

import torch
from torch import nn


class PixelNorm(nn.Module):
    """Pixelwise feature vector normalisation: each pixel's channel vector gets unit RMS."""

    def __init__(self, eps: float = 1e-8) -> None:
        super().__init__()
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.square().mean(dim=1, keepdim=True) + self.eps)


def minibatch_group_size(batch: int, group_size: int) -> int:
    """The group size actually used: the largest divisor of `batch` that is <= `group_size`.

    The paper assumes the batch divides by the group (4); for any other batch (e.g. the last
    partial batch of an evaluation) this keeps every group the same size instead of failing.
    """
    for size in range(min(group_size, batch), 0, -1):
        if batch % size == 0:
            return size
    return 1


class MinibatchStdDev(nn.Module):
    """Appends `num_channels` feature maps holding the minibatch standard deviation. `[N, C, H, W]`.

    Samples are grouped as in the official code: sample i joins group i mod (N / G). Within a group
    the population std of every feature is taken, averaged over the features of each of the
    `num_channels` channel slices and over pixels, then broadcast to each member's H x W.
    ProGAN uses `num_channels = 1` (average over all features); StyleGAN's variant uses more.
    `group_size = 0` means one group holding the whole minibatch.
    """

    def __init__(self, group_size: int = 4, num_channels: int = 1, eps: float = 1e-8) -> None:
        super().__init__()
        if group_size < 0 or num_channels < 1:
            raise ValueError(
                f"minibatch stddev needs group_size >= 0 and num_channels >= 1, "
                f"got {group_size} and {num_channels}"
            )
        self.group_size, self.num_channels, self.eps = group_size, num_channels, eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        f = self.num_channels
        if c % f:
            raise ValueError(f"minibatch stddev: {c} channels do not split into {f} slices")
        g = minibatch_group_size(n, self.group_size or n)
        y = x.reshape(g, n // g, f, c // f, h, w).float()
        y = (y - y.mean(dim=0)).square().mean(dim=0)  # population variance within each group
        y = (y + self.eps).sqrt().mean(dim=(2, 3, 4))  # [N/G, F]
        y = y.to(x.dtype).reshape(1, n // g, f, 1, 1).expand(g, -1, -1, h, w).reshape(n, f, h, w)
        return torch.cat([x, y], dim=1)

    def extra_repr(self) -> str:
        return f"group_size={self.group_size}, num_channels={self.num_channels}"
