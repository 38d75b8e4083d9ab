"""FIR resampling of image batches: upsample, pad, filter, downsample (StyleGAN2's `upfirdn2d`).

Karras et al., "Analyzing and Improving the Image Quality of StyleGAN", CVPR 2020,
arXiv:1912.04958, and the official NVlabs/stylegan2-ada-pytorch `torch_utils/ops/upfirdn2d.py`,
whose reference path these functions follow: for each channel, insert `up - 1` zeros after every
pixel, zero-pad (negative padding crops), convolve with the FIR filter `f` keeping only outputs
whose footprint lies inside the padded image, then keep every `down`-th pixel. Like
`scipy.signal.upfirdn` applied along both axes.

Filters come from `setup_filter`: a 1-D filter of fewer than 8 taps becomes its 2-D outer product,
a longer one stays separable (a row pass then a column pass). Everything is public PyTorch ops
(`F.pad`, depthwise `F.conv2d` / `F.conv_transpose2d`), so gradients of every order exist.
Upsampling runs as a strided transposed convolution and downsampling as a strided convolution:
the reference path's values without multiplying the inserted zeros or computing the dropped
outputs.

Deviation: the official code runs a custom CUDA kernel where it can; here there is only the
reference path (the design's "no compile step"). Its results are the official reference path's.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

Padding = int | Sequence[int]
Factor = int | Sequence[int]


def setup_filter(
    f: torch.Tensor | Sequence[float] | float | None,
    device: torch.device | str = "cpu",
    normalize: bool = True,
    flip_filter: bool = False,
    gain: float = 1,
    separable: bool | None = None,
) -> torch.Tensor:
    """A float32 FIR filter for `upfirdn2d`: `[taps]` (separable) or `[height, width]`.

    `f` is a 1-D or 2-D array, a scalar (an impulse) or None (identity). `normalize` scales the
    taps to sum to 1 (constant images keep their value); `gain` is the overall signal gain.
    """
    f = torch.as_tensor(1.0 if f is None else f, dtype=torch.float32).clone()
    if f.ndim not in (0, 1, 2) or f.numel() == 0:
        raise ValueError(f"a FIR filter is a scalar, 1-D or 2-D array; got shape {list(f.shape)}")
    if f.ndim == 0:
        f = f.reshape(1)
    if separable is None:
        # Short filters are cheaper as one 2-D pass; long ones as two 1-D passes.
        separable = f.ndim == 1 and f.numel() >= 8
    if f.ndim == 1 and not separable:
        f = torch.outer(f, f)
    if f.ndim != (1 if separable else 2):
        raise ValueError("a 2-D filter cannot be made separable; pass its 1-D taps instead")
    if normalize:
        f = f / f.sum()
    if flip_filter:
        f = f.flip(list(range(f.ndim)))
    # A separable filter is applied twice, so each pass takes the square root of the gain.
    f = f * (gain ** (f.ndim / 2))
    return f.to(device=device)


def _pair(value: Factor, name: str) -> tuple[int, int]:
    """(x, y) from an int or a pair."""
    pair = (value, value) if isinstance(value, int) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, int) and v >= 1 for v in pair):
        raise ValueError(f"{name} must be an int >= 1 or a pair of them; got {value!r}")
    return pair[0], pair[1]


def parse_padding(padding: Padding) -> tuple[int, int, int, int]:
    """(x0, x1, y0, y1) from an int, an (x, y) pair, or the four values."""
    if isinstance(padding, int):
        return padding, padding, padding, padding
    pad = [int(p) for p in padding]
    if len(pad) == 2:
        return pad[0], pad[0], pad[1], pad[1]
    if len(pad) != 4:
        raise ValueError(f"padding is an int, [x, y] or [x0, x1, y0, y1]; got {padding!r}")
    return pad[0], pad[1], pad[2], pad[3]


def filter_size(f: torch.Tensor | None) -> tuple[int, int]:
    """(width, height) of a filter from `setup_filter`; (1, 1) for None."""
    if f is None:
        return 1, 1
    if f.ndim not in (1, 2):
        raise ValueError(f"a filter from setup_filter is 1-D or 2-D; got shape {list(f.shape)}")
    return int(f.shape[-1]), int(f.shape[0])


def upfirdn2d(
    x: torch.Tensor,
    f: torch.Tensor | None,
    up: Factor = 1,
    down: Factor = 1,
    padding: Padding = 0,
    flip_filter: bool = False,
    gain: float = 1,
) -> torch.Tensor:
    """Upsample by zero insertion, pad (negative crops), FIR-filter, downsample: `[N, C, H, W]`.

    `padding` is relative to the upsampled image; `flip_filter=False` convolves (as
    `scipy.signal.upfirdn`), True correlates.
    """
    if x.ndim != 4:
        raise ValueError(f"upfirdn2d takes [N, C, H, W] images; got shape {list(x.shape)}")
    if f is None:
        f = torch.ones(1, 1, dtype=torch.float32, device=x.device)
    upx, upy = _pair(up, "up")
    downx, downy = _pair(down, "down")
    px0, px1, py0, py1 = parse_padding(padding)
    c = x.shape[1]

    f = (f * (gain ** (f.ndim / 2))).to(device=x.device, dtype=x.dtype)
    # F.conv2d correlates; flipping the taps makes it a true convolution.
    if not flip_filter:
        f = f.flip(list(range(f.ndim)))
    if upx > 1 or upy > 1:
        y = _upsample_full(x, f, upx, upy)
        # The full output starts (taps - 1) samples before the padded, zero-inserted image.
        fw, fh = filter_size(f)
        y = _pad_or_crop(y, px0 - fw + 1, px1 + upx - fw, py0 - fh + 1, py1 + upy - fh)
        return y[:, :, ::downy, ::downx]

    x = _pad_or_crop(x, px0, px1, py0, py1)
    # Striding the convolution keeps every down-th output without computing the others.
    if f.ndim == 2:
        return F.conv2d(x, f.expand(c, 1, *f.shape), stride=(downy, downx), groups=c)
    taps = f.shape[0]
    x = F.conv2d(x, f.reshape(1, 1, 1, taps).expand(c, 1, 1, taps), stride=(1, downx), groups=c)
    return F.conv2d(x, f.reshape(1, 1, taps, 1).expand(c, 1, taps, 1), stride=(downy, 1), groups=c)


def _pad_or_crop(x: torch.Tensor, x0: int, x1: int, y0: int, y1: int) -> torch.Tensor:
    """Zero-pad the sides given positive amounts, crop those given negative ones."""
    x = F.pad(x, [max(x0, 0), max(x1, 0), max(y0, 0), max(y1, 0)])
    return x[:, :, max(-y0, 0) : x.shape[2] - max(-y1, 0), max(-x0, 0) : x.shape[3] - max(-x1, 0)]


def _upsample_full(x: torch.Tensor, f: torch.Tensor, upx: int, upy: int) -> torch.Tensor:
    """The full correlation of the zero-inserted image with `f`, as a strided transposed
    convolution: the same values as inserting zeros first, without multiplying by them."""
    c = x.shape[1]
    # conv_transpose2d convolves, so it takes the taps in the opposite order.
    k = f.flip(list(range(f.ndim)))
    if f.ndim == 2:
        return F.conv_transpose2d(x, k.expand(c, 1, *k.shape), stride=(upy, upx), groups=c)
    taps = k.shape[0]
    x = F.conv_transpose2d(
        x, k.reshape(1, 1, 1, taps).expand(c, 1, 1, taps), stride=(1, upx), groups=c
    )
    return F.conv_transpose2d(
        x, k.reshape(1, 1, taps, 1).expand(c, 1, taps, 1), stride=(upy, 1), groups=c
    )


def filter2d(
    x: torch.Tensor,
    f: torch.Tensor | None,
    padding: Padding = 0,
    flip_filter: bool = False,
    gain: float = 1,
) -> torch.Tensor:
    """FIR-filter images keeping their size; `padding` is added on top (negative crops)."""
    px0, px1, py0, py1 = parse_padding(padding)
    fw, fh = filter_size(f)
    pad = [px0 + fw // 2, px1 + (fw - 1) // 2, py0 + fh // 2, py1 + (fh - 1) // 2]
    return upfirdn2d(x, f, padding=pad, flip_filter=flip_filter, gain=gain)


def upsample2d(
    x: torch.Tensor,
    f: torch.Tensor | None,
    up: Factor = 2,
    padding: Padding = 0,
    flip_filter: bool = False,
    gain: float = 1,
) -> torch.Tensor:
    """Upsample images `up` times with a FIR filter: `[N, C, H * up, W * up]` before `padding`.

    The gain is multiplied by `upx * upy` to make up for the inserted zeros, so a normalized
    filter keeps a constant image's value.
    """
    upx, upy = _pair(up, "up")
    px0, px1, py0, py1 = parse_padding(padding)
    fw, fh = filter_size(f)
    pad = [
        px0 + (fw + upx - 1) // 2,
        px1 + (fw - upx) // 2,
        py0 + (fh + upy - 1) // 2,
        py1 + (fh - upy) // 2,
    ]
    return upfirdn2d(
        x, f, up=(upx, upy), padding=pad, flip_filter=flip_filter, gain=gain * upx * upy
    )


def downsample2d(
    x: torch.Tensor,
    f: torch.Tensor | None,
    down: Factor = 2,
    padding: Padding = 0,
    flip_filter: bool = False,
    gain: float = 1,
) -> torch.Tensor:
    """Downsample images `down` times with a FIR filter: `[N, C, H // down, W // down]`."""
    downx, downy = _pair(down, "down")
    px0, px1, py0, py1 = parse_padding(padding)
    fw, fh = filter_size(f)
    pad = [
        px0 + (fw - downx + 1) // 2,
        px1 + (fw - downx) // 2,
        py0 + (fh - downy + 1) // 2,
        py1 + (fh - downy) // 2,
    ]
    return upfirdn2d(x, f, down=(downx, downy), padding=pad, flip_filter=flip_filter, gain=gain)
