"""StyleGAN2's modulated convolution, resampling convolution and equalized dense layer.

Karras et al., "Analyzing and Improving the Image Quality of StyleGAN", CVPR 2020,
arXiv:1912.04958, section 2.2, as in the official NVlabs/stylegan2-ada-pytorch
(`training/networks.py`, `torch_utils/ops/conv2d_resample.py` and `bias_act.py`), written with
public PyTorch ops only.

- `modulated_conv2d` scales the weight's input channels by per-sample styles and, with
  `demodulate`, rescales each output channel to unit expected variance. The fused form runs one
  grouped convolution with a weight per sample; the other scales the activations, convolves with
  the shared weight and demodulates the output: the same result, used while training where the
  official code prefers it.
- `conv2d_resample` convolves with optional 2x (or any integer) up- or downsampling around a FIR
  low-pass filter, as the official op: upsampling is a stride-`up` transposed convolution followed
  by the filter, downsampling the filter followed by a stride-`down` convolution; padding is
  applied once, with respect to the upsampled image.
- `FullyConnectedLayer` stores N(0, 1) / lr_multiplier weights and scales them at run time by
  lr_multiplier / sqrt(in_features) (the bias by lr_multiplier), so Adam's steps are equal across
  layers and the mapping network learns 100x slower with lr_multiplier 0.01.
- `bias_act` adds a bias, applies linear / relu / lrelu (slope 0.2), scales by the activation's
  gain (sqrt(2) for relu and lrelu) and optionally clamps to [-clamp, clamp].

With half-precision activations and demodulation the weight and styles are first divided by
their largest magnitudes (the official overflow guard); demodulation cancels the scale exactly.

Deviations: no custom CUDA kernels (the official bias_act, upfirdn2d and the conv gradient fix);
non-fused modulation adds noise out of place (no in-place `add_`), which changes no value. The
demodulation coefficients are computed as styles^2 @ (the weight's squared norms per output and
input channel)^T instead of from the per-sample weights `[N, O, I, k, k]` the official code
forms even in its non-fused path: the same sum in another order (equal to float rounding), with
far less work and memory in the forward and backward passes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from gankit.nn.upfirdn import Padding, filter_size, parse_padding, upfirdn2d

#: (default slope, default gain) of each activation `bias_act` knows.
ACTIVATIONS: dict[str, tuple[float, float]] = {
    "linear": (0.0, 1.0),
    "relu": (0.0, math.sqrt(2.0)),
    "lrelu": (0.2, math.sqrt(2.0)),
}


def activation_gain(activation: str) -> float:
    """The gain that keeps activations' magnitude: sqrt(2) for relu and lrelu, 1 for linear."""
    return _activation(activation)[1]


def _activation(activation: str) -> tuple[float, float]:
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}; got {activation!r}")
    return ACTIVATIONS[activation]


def bias_act(
    x: torch.Tensor,
    b: torch.Tensor | None = None,
    dim: int = 1,
    act: str = "linear",
    alpha: float | None = None,
    gain: float | None = None,
    clamp: float | None = None,
) -> torch.Tensor:
    """Add bias `b` along `dim`, apply `act` (slope `alpha` for lrelu), scale by `gain`, clamp."""
    default_alpha, default_gain = _activation(act)
    alpha = default_alpha if alpha is None else alpha
    gain = default_gain if gain is None else gain
    if b is not None:
        shape = [1] * x.ndim
        shape[dim] = -1
        x = x + b.to(x.dtype).reshape(shape)
    if act == "lrelu":
        x = F.leaky_relu(x, alpha)
    elif act == "relu":
        x = F.relu(x)
    if gain != 1:
        x = x * gain
    if clamp is not None:
        x = x.clamp(-clamp, clamp)
    return x


class FullyConnectedLayer(nn.Module):
    """Equalized dense layer `[N, in] -> [N, out]` with StyleGAN's learning-rate multiplier."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        activation: str = "linear",
        lr_multiplier: float = 1.0,
        bias_init: float = 0.0,
    ) -> None:
        super().__init__()
        _activation(activation)
        self.in_features, self.out_features = in_features, out_features
        self.activation = activation
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_multiplier)
        self.bias = nn.Parameter(torch.full([out_features], float(bias_init))) if bias else None
        self.weight_gain = lr_multiplier / math.sqrt(in_features)
        self.bias_gain = lr_multiplier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight.to(x.dtype) * self.weight_gain
        b = None if self.bias is None else self.bias.to(x.dtype) * self.bias_gain
        if self.activation == "linear" and b is not None:
            return torch.addmm(b.unsqueeze(0), x, w.t())
        return bias_act(x.matmul(w.t()), b, act=self.activation)

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"activation={self.activation}, lr_multiplier={self.bias_gain}"
        )


def _conv(
    x: torch.Tensor,
    w: torch.Tensor,
    stride: int = 1,
    padding: int | Sequence[int] = 0,
    groups: int = 1,
    transpose: bool = False,
    flip_weight: bool = True,
) -> torch.Tensor:
    """F.conv2d or F.conv_transpose2d; `flip_weight=False` makes it a true convolution."""
    if not flip_weight:
        w = w.flip([2, 3])
    if transpose:
        return F.conv_transpose2d(x, w, stride=stride, padding=padding, groups=groups)
    return F.conv2d(x, w, stride=stride, padding=padding, groups=groups)


def conv2d_resample(
    x: torch.Tensor,
    w: torch.Tensor,
    f: torch.Tensor | None = None,
    up: int = 1,
    down: int = 1,
    padding: Padding = 0,
    groups: int = 1,
    flip_weight: bool = True,
    flip_filter: bool = False,
) -> torch.Tensor:
    """Convolve `[N, I, H, W]` with `w` `[O, I / groups, kh, kw]`, upsampling or downsampling
    around the FIR filter `f` (from `setup_filter`); `padding` is relative to the upsampled image.

    `flip_weight=True` correlates (as F.conv2d), False convolves.
    """
    if x.ndim != 4 or w.ndim != 4:
        raise ValueError(f"conv2d_resample takes 4-D x and w; got {list(x.shape)}, {list(w.shape)}")
    if up < 1 or down < 1:
        raise ValueError(f"up and down must be integers >= 1; got {up} and {down}")
    out_channels, in_per_group, kh, kw = w.shape
    fw, fh = filter_size(f)
    px0, px1, py0, py1 = parse_padding(padding)
    # The resampling wrappers' own padding (upsample2d / downsample2d), added to the caller's.
    if up > 1:
        px0, px1 = px0 + (fw + up - 1) // 2, px1 + (fw - up) // 2
        py0, py1 = py0 + (fh + up - 1) // 2, py1 + (fh - up) // 2
    if down > 1:
        px0, px1 = px0 + (fw - down + 1) // 2, px1 + (fw - down) // 2
        py0, py1 = py0 + (fh - down + 1) // 2, py1 + (fh - down) // 2
    pad = [px0, px1, py0, py1]

    # A 1x1 kernel commutes with the filter: resample at the low resolution, which is cheaper.
    if kw == 1 and kh == 1 and down > 1 and up == 1:
        x = upfirdn2d(x, f, down=down, padding=pad, flip_filter=flip_filter)
        return _conv(x, w, groups=groups, flip_weight=flip_weight)
    if kw == 1 and kh == 1 and up > 1 and down == 1:
        x = _conv(x, w, groups=groups, flip_weight=flip_weight)
        return upfirdn2d(x, f, up=up, padding=pad, gain=up**2, flip_filter=flip_filter)

    if down > 1 and up == 1:
        x = upfirdn2d(x, f, padding=pad, flip_filter=flip_filter)
        return _conv(x, w, stride=down, groups=groups, flip_weight=flip_weight)

    if up > 1:
        # conv_transpose2d takes [I, O / groups, kh, kw]: swap the channel axes within each group.
        w = w.reshape(groups, out_channels // groups, in_per_group, kh, kw).transpose(1, 2)
        w = w.reshape(groups * in_per_group, out_channels // groups, kh, kw)
        px0, px1 = px0 - (kw - 1), px1 - (kw - up)
        py0, py1 = py0 - (kh - 1), py1 - (kh - up)
        # What both sides would crop is cropped by the transposed conv's own padding.
        pxt, pyt = max(min(-px0, -px1), 0), max(min(-py0, -py1), 0)
        x = _conv(
            x,
            w,
            stride=up,
            padding=[pyt, pxt],
            groups=groups,
            transpose=True,
            flip_weight=not flip_weight,
        )
        pad = [px0 + pxt, px1 + pxt, py0 + pyt, py1 + pyt]
        x = upfirdn2d(x, f, padding=pad, gain=up**2, flip_filter=flip_filter)
        if down > 1:
            x = upfirdn2d(x, f, down=down, flip_filter=flip_filter)
        return x

    if px0 == px1 and py0 == py1 and px0 >= 0 and py0 >= 0:
        return _conv(x, w, padding=[py0, px0], groups=groups, flip_weight=flip_weight)
    x = upfirdn2d(x, None, padding=pad)
    return _conv(x, w, groups=groups, flip_weight=flip_weight)


def modulated_conv2d(
    x: torch.Tensor,
    weight: torch.Tensor,
    styles: torch.Tensor,
    noise: torch.Tensor | None = None,
    up: int = 1,
    down: int = 1,
    padding: Padding = 0,
    resample_filter: torch.Tensor | None = None,
    demodulate: bool = True,
    flip_weight: bool = True,
    fused_modconv: bool = True,
) -> torch.Tensor:
    """Modulated (and demodulated) convolution of `x` `[N, I, H, W]` with `weight` `[O, I, k, k]`
    and per-sample `styles` `[N, I]`; `noise` (broadcastable to the output) is added last."""
    batch = x.shape[0]
    out_channels, in_channels, kh, kw = weight.shape
    if x.ndim != 4 or x.shape[1] != in_channels or styles.shape != (batch, in_channels):
        raise ValueError(
            f"modulated_conv2d: x {list(x.shape)} and styles {list(styles.shape)} do not fit "
            f"weight {list(weight.shape)} (x [N, {in_channels}, H, W], styles [N, {in_channels}])"
        )
    if x.dtype == torch.float16 and demodulate:
        # Keep the modulated weights' squares inside float16's range; demodulation undoes it.
        weight = weight * (
            1
            / math.sqrt(in_channels * kh * kw)
            / weight.norm(float("inf"), dim=[1, 2, 3], keepdim=True)
        )
        styles = styles / styles.norm(float("inf"), dim=1, keepdim=True)

    dcoefs = None
    if demodulate:
        # sum over i, k of (w[o, i, k] s[n, i])^2 = sum over i of s[n, i]^2 |w[o, i]|^2: a
        # matmul, without the [N, O, I, k, k] weights the official code builds for it.
        dtype = torch.promote_types(styles.dtype, weight.dtype)  # as the official product's
        norms = weight.to(dtype).square().sum(dim=[2, 3])  # [O, I]
        dcoefs = (styles.to(dtype).square() @ norms.T + 1e-8).rsqrt()  # [N, O]

    resample = dict(f=resample_filter, up=up, down=down, padding=padding, flip_weight=flip_weight)
    if not fused_modconv:
        x = x * styles.to(x.dtype).reshape(batch, -1, 1, 1)
        x = conv2d_resample(x, weight.to(x.dtype), **resample)
        if dcoefs is not None:
            x = x * dcoefs.to(x.dtype).reshape(batch, -1, 1, 1)
        return x if noise is None else x + noise.to(x.dtype)

    w = weight.unsqueeze(0) * styles.reshape(batch, 1, -1, 1, 1)  # [N, O, I, k, k]
    if dcoefs is not None:
        w = w * dcoefs.reshape(batch, -1, 1, 1, 1)
    # One grouped convolution: sample n's channels meet only sample n's weights.
    x = x.reshape(1, batch * in_channels, *x.shape[2:])
    w = w.reshape(batch * out_channels, in_channels, kh, kw)
    x = conv2d_resample(x, w.to(x.dtype), groups=batch, **resample)
    x = x.reshape(batch, out_channels, *x.shape[2:])
    return x if noise is None else x + noise.to(x.dtype)
