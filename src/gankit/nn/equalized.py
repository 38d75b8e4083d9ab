"""Equalized learning-rate layers (Karras et al., "Progressive Growing of GANs", arXiv:1710.10196, 4.1).

Weights are stored as N(0, 1) (divided by `lr_multiplier`) and scaled at run time by the He constant
`gain / sqrt(fan_in)` (times `lr_multiplier`), so Adam's per-parameter step sizes are equal across
layers. `lr_multiplier` is StyleGAN's mapping-network trick (arXiv:1812.04948, 0.01 there).

CPU fast path (`conv2d_same`): float32 3x3 convolutions at batch >= 16 and maps of at least 16x16
run their forward pass and their input gradient (itself a 3x3 convolution) through NNPACK's
Winograd kernels, which do these faster than oneDNN's AVX2 kernels; weight gradients stay with
oneDNN. First and second derivatives (the gradient penalties) are those of `F.conv2d`; results
differ from oneDNN's in float32 rounding only (about 1e-5 relative).

NNPACK is reached through public API only: with oneDNN switched off (`torch.backends.mkldnn.enabled`)
and no gradient recorded, `F.conv2d` dispatches a batch of 16 or more to NNPACK (ATen's
`use_nnpack` rule). A PyTorch that dispatched otherwise would cost speed, never correctness;
tests/nn/test_fast_paths.py checks with the profiler that NNPACK runs the convolutions.

By default the path is used only on CPUs whose best PyTorch kernels are AVX2 (NNPACK has no
AVX-512 kernels, and oneDNN's AVX-512 ones are faster there), and only for convolutions of at
least `AUTO_MIN_CHANNELS` (256) input and output channels: narrower ones (the small-width models
of tests, CPU configurations, ProGAN's reduced widths) train faster on oneDNN
(benchmarks/conv_paths.py). NNPACK brings its own thread pool, whose workers spin after each
call and take a core from the OpenMP threads that run every other op (and OpenMP's spinning
workers take one from NNPACK's); so NNPACK's pool is made single-threaded and, with several
intra-op threads, the output channels are split over gankit's own sleeping worker threads
instead (each part keeps the whole batch, which NNPACK's dispatch needs). `set_cpu_winograd(True/False)` forces the path on or off.
"""

from __future__ import annotations

import functools
import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

#: Left to decide, the path takes only convolutions this wide (in and out channels).
AUTO_MIN_CHANNELS = 256
#: None: decide from the CPU (see the module docstring); True/False: forced on/off.
_cpu_winograd: bool | None = None
_nnpack_ready: bool | None = None  # None: not tried yet
_nnpack_lock = threading.Lock()
_workers: ThreadPoolExecutor | None = None


def set_cpu_winograd(enabled: bool | None) -> None:
    """Force the NNPACK (Winograd) path for CPU 3x3 convolutions on or off; None: by the CPU."""
    global _cpu_winograd
    _cpu_winograd = None if enabled is None else bool(enabled)


def cpu_winograd_enabled() -> bool:
    """Whether the NNPACK path is on: as forced, else on AVX2 CPUs (off with AVX-512)."""
    if _cpu_winograd is not None:
        return _cpu_winograd
    return not _has_avx512()


@functools.cache
def _has_avx512() -> bool:
    return torch.backends.cpu.get_cpu_capability().startswith("AVX512")


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
    # NNPACK only beats oneDNN from 16x16 maps and batch 16 up (measured on AVX2 CPUs).
    # Autocast and compile keep their own kernels.
    return (
        padding == 1
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
        and _winograd_wanted(weight)
        and _nnpack_initialised()
    )


def _winograd_wanted(weight: torch.Tensor) -> bool:
    """As forced; else on AVX2 CPUs for convolutions of at least `AUTO_MIN_CHANNELS` channels in
    and out (narrower ones train slower on NNPACK: benchmarks/RESULTS.md)."""
    if _cpu_winograd is not None:
        return _cpu_winograd
    return cpu_winograd_enabled() and min(weight.shape[0], weight.shape[1]) >= AUTO_MIN_CHANNELS


def _nnpack_initialised() -> bool:
    """Start NNPACK once, with a single-threaded pool; False where PyTorch has no NNPACK.

    PyTorch creates NNPACK's pool at its first call, sized by the intra-op thread count then, and
    keeps it; a one-thread pool runs on the calling thread and never spins.
    """
    global _nnpack_ready
    if _nnpack_ready is not None:
        return _nnpack_ready
    with _nnpack_lock:
        if _nnpack_ready is None:
            _nnpack_ready = torch.backends.nnpack.is_available()
            if _nnpack_ready:
                threads = torch.get_num_threads()
                torch.set_num_threads(1)
                try:
                    x, w = torch.zeros(16, 8, 8, 8), torch.zeros(8, 8, 3, 3)
                    _nnpack_call(lambda: _plain_conv(x, w, None))
                finally:
                    torch.set_num_threads(threads)
    return _nnpack_ready


def _plain_conv(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    # No graph, on whichever thread runs it: grad mode is per thread, and a convolution that
    # may need a backward pass is never sent to NNPACK.
    with torch.no_grad():
        return F.conv2d(x, weight, bias, padding=1)


def _nnpack_call(run: Any) -> Any:
    """`run()` with oneDNN off, so that `F.conv2d` without a graph picks NNPACK."""
    enabled = torch.backends.mkldnn.enabled
    torch.backends.mkldnn.enabled = False
    try:
        return run()
    finally:
        torch.backends.mkldnn.enabled = enabled


def _nnpack_same3x3(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None
) -> torch.Tensor:
    """NNPACK's 3x3 'same' convolution, the output channels split over the intra-op threads."""
    parts = min(torch.get_num_threads(), weight.shape[0])
    if parts == 1:
        return _nnpack_call(lambda: _plain_conv(x, weight, bias))
    weights = weight.tensor_split(parts)
    biases = [None] * parts if bias is None else bias.tensor_split(parts)
    # Worker threads that sleep between calls, unlike NNPACK's pool (see the module docstring);
    # the caller takes the first part. The whole batch goes to each part: NNPACK's dispatch
    # needs 16 or more images.
    pool = _worker_pool(parts - 1)

    def run() -> torch.Tensor:
        rest = [
            pool.submit(_plain_conv, x, w, b) for w, b in zip(weights[1:], biases[1:], strict=True)
        ]
        first = _plain_conv(x, weights[0], biases[0])
        return torch.cat([first, *(r.result() for r in rest)], dim=1)

    return _nnpack_call(run)


def _forget_workers() -> None:
    # A forked child (a data-loader worker) has none of its parent's threads.
    global _workers
    _workers = None


os.register_at_fork(after_in_child=_forget_workers)


def _worker_pool(size: int) -> ThreadPoolExecutor:
    global _workers
    with _nnpack_lock:
        if _workers is None or _workers._max_workers < size:
            _workers = ThreadPoolExecutor(size, thread_name_prefix="gankit-nnpack")
        return _workers


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
        return _nnpack_same3x3(x, weight, bias)

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
        return conv2d_same(x, *self.scaled(), self.padding)

    def scaled(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The weight and bias as applied: times the He constant and the lr multiplier."""
        bias = None if self.bias is None else self.bias * self.bias_scale
        return self.weight * self.weight_scale, bias

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, k={self.kernel_size}, "
            f"scale={self.weight_scale:.4g}"
        )
