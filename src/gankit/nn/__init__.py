"""Shared network parts used by more than one family."""

from gankit.nn.equalized import EqualConv2d, EqualLinear
from gankit.nn.normalization import MinibatchStdDev, PixelNorm, minibatch_group_size

__all__ = ["EqualConv2d", "EqualLinear", "MinibatchStdDev", "PixelNorm", "minibatch_group_size"]
