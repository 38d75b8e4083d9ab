"""Equalized learning-rate layers (Karras et al., "Progressive Growing of GANs", arXiv:1710.10196, 4.1).

Weights are stored as N(0, 1) (divided by `lr_multiplier`) and scaled at run time by the He constant
`gain / sqrt(fan_in)` (times `lr_multiplier`), so Adam's per-parameter step sizes are equal across
layers. `lr_multiplier` is StyleGAN's mapping-network trick (arXiv:1812.04948, 0.01 there).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class EqualLinear(nn.Module):
    """Linear layer with run-time He scaling; `[N, in_features] -> [N, out_features]`."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        gain: float = math.sqrt(2.0),
        lr_multiplier: float = 1.0,
        bias_init: float = 0.0,
    ) -> None:
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_multiplier)
        self.bias = (
            nn.Parameter(torch.full((out_features,), bias_init / lr_multiplier)) if bias else None
        )
        self.weight_scale = gain / math.sqrt(in_features) * lr_multiplier
        self.bias_scale = lr_multiplier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bias = None if self.bias is None else self.bias * self.bias_scale
        return F.linear(x, self.weight * self.weight_scale, bias)

    def extra_repr(self) -> str:
        return f"{self.in_features}, {self.out_features}, scale={self.weight_scale:.4g}"


class EqualConv2d(nn.Module):
    """2-D convolution (stride 1, 'same' padding) with run-time He scaling."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        bias: bool = True,
        gain: float = math.sqrt(2.0),
        lr_multiplier: float = 1.0,
        padding: int | None = None,
    ) -> None:
        super().__init__()
        self.in_channels, self.out_channels, self.kernel_size = (
            in_channels,
            out_channels,
            kernel_size,
        )
        self.padding = kernel_size // 2 if padding is None else padding
        shape = (out_channels, in_channels, kernel_size, kernel_size)
        self.weight = nn.Parameter(torch.randn(shape) / lr_multiplier)
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.weight_scale = (
            gain / math.sqrt(in_channels * kernel_size * kernel_size) * lr_multiplier
        )
        self.bias_scale = lr_multiplier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bias = None if self.bias is None else self.bias * self.bias_scale
        return F.conv2d(x, self.weight * self.weight_scale, bias, padding=self.padding)

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, k={self.kernel_size}, "
            f"scale={self.weight_scale:.4g}"
        )
