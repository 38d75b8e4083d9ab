"""Equalized learning-rate layers (Karras et al., "Progressive Growing of GANs", arXiv:1710.10196, 4.1).

Weights are stored as N(0, 1) (divided by `lr_multiplier`) and scaled at run time by the He constant
`gain / sqrt(fan_in)` (times `lr_multiplier`), so Adam's per-parameter step sizes are equal across
layers. `lr_multiplier` is StyleGAN's mapping-network trick (arXiv:1812.04948, 0.01 there).

CPU fast path (`conv2d_same`): float32 3x3 convolutions at batch >= 16 and maps of at least 16x16
run their forward pass and their input gradient (itself a 3x3 convolution) through PyTorch's NNPACK
backend, whose Winograd kernels do these about 1.4-1.9x faster than oneDNN on AVX2 CPUs; weight
gradients stay with oneDNN. First and second derivatives (the gradient penalties) are those of
`F.conv2d`; results differ from oneDNN's in float32 rounding only (about 1e-5 relative).
`set_cpu_winograd(False)` turns the fast path off.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

_cpu_winograd = True


def set_cpu_winograd(enabled: bool) -> None:
    """Turn the NNPACK (Winograd) fast path for CPU 3x3 convolutions on or off (default on)."""
    global _cpu_winograd
    _cpu_winograd = bool(enabled)


def conv2d_same(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, padding: int
) -> torch.Tensor:
    """`F.conv2d(x, weight, bias, padding=padding)` (stride 1), through the CPU fast path if it applies."""
    if _winograd_applies(x, weight, padding):
        link = None
        if torch.is_grad_enabled() and (
            weight.requires_grad or (bias is not None and bias.requires_grad)
        ):
            link = _Conv3x3ParamGrads.apply(x.detach(), weight, bias, x.requires_grad)
        return _Conv3x3.apply(x, weight, bias, link)
    return F.conv2d(x, weight, bias, padding=padding)


def _winograd_applies(x: torch.Tensor, weight: torch.Tensor, padding: int) -> bool:
    # NNPACK only beats oneDNN from 16x16 maps up, and PyTorch uses it only from batch 16 (below,
    # disabling oneDNN would fall back to its slowest kernels). Autocast and compile keep their own.
    return (
        _cpu_winograd
        and padding == 1
        and x.device.type == "cpu"
        and x.dtype == torch.float32
        and weight.dtype == torch.float32
        and x.dim() == 4
        and weight.shape[2] == 3
        and weight.shape[3] == 3
        and x.shape[0] >= 16
        and x.shape[2] >= 16
        and x.shape[3] >= 16
        and x.is_contiguous()
        and not torch.is_autocast_enabled("cpu")
        and not torch.compiler.is_compiling()
        and torch.backends.nnpack.is_available()
    )


@contextlib.contextmanager
def _nnpack_backend() -> Iterator[None]:
    # With oneDNN off, PyTorch's own backend choice picks NNPACK for these shapes.
    previous = torch.backends.mkldnn.enabled
    torch.backends.mkldnn.enabled = False
    try:
        yield
    finally:
        torch.backends.mkldnn.enabled = previous


class _Conv3x3(torch.autograd.Function):
    """3x3 'same' convolution on NNPACK whose backward returns the input gradient only.

    The weight and bias gradients come from `_Conv3x3ParamGrads`, a separate graph node whose zero
    output is passed in as `link`; this node hands the output gradient on to it unchanged. Kept
    apart, autograd skips the weight gradients whenever they are not asked for, as in the gradient
    penalty's `autograd.grad(..., inputs=images)`, exactly as it does for `F.conv2d`.
    """

    @staticmethod
    def forward(
        ctx: Any,
        x: torch.Tensor,
        weight: torch.Tensor,
        bias: torch.Tensor | None,
        link: torch.Tensor | None,
    ) -> torch.Tensor:
        ctx.save_for_backward(weight)
        with _nnpack_backend():
            return F.conv2d(x, weight, bias, padding=1)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        (weight,) = ctx.saved_tensors
        grad_x = None
        if ctx.needs_input_grad[0]:
            # The input gradient of a 'same' 3x3 convolution is the 'same' convolution of the output
            # gradient with the flipped, transposed kernel; written with differentiable ops, it
            # gives the second derivatives a gradient penalty needs.
            flipped = weight.flip(2, 3).transpose(0, 1).contiguous()
            grad_x = conv2d_same(grad, flipped, None, 1)
        return grad_x, None, None, grad if ctx.needs_input_grad[3] else None


class _Conv3x3ParamGrads(torch.autograd.Function):
    """Zero output (a broadcast view) whose backward gives a 3x3 convolution's weight/bias grads."""

    @staticmethod
    def forward(
        ctx: Any,
        x: torch.Tensor,
        weight: torch.Tensor,
        bias: torch.Tensor | None,
        x_requires_grad: bool,
    ) -> torch.Tensor:
        ctx.save_for_backward(x, weight)
        ctx.has_bias, ctx.x_requires_grad = bias is not None, x_requires_grad
        n, _, h, w = x.shape
        return weight.new_zeros(()).expand(n, weight.shape[0], h, w)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        x, weight = ctx.saved_tensors
        if torch.is_grad_enabled() and ctx.x_requires_grad:
            raise RuntimeError(
                "the CPU Winograd convolution path does not build the graph of weight gradients "
                "(create_graph through them); call gankit.nn.equalized.set_cpu_winograd(False)"
            )
        grad_w = grad_b = None
        if ctx.needs_input_grad[1]:
            grad_w = torch.nn.grad.conv2d_weight(x, weight.shape, grad, padding=1)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_b = grad.sum(dim=(0, 2, 3))
        return None, grad_w, grad_b, None


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
        return conv2d_same(x, self.weight * self.weight_scale, bias, self.padding)

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, k={self.kernel_size}, "
            f"scale={self.weight_scale:.4g}"
        )
