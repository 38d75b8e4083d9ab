"""StyleGAN2-ADA's augmentation pipeline (Karras et al., "Training Generative Adversarial Networks
with Limited Data", NeurIPS 2020, arXiv:2006.06676, appendix B), as NVlabs/stylegan2-ada-pytorch's
`training/augment.py` and the presets of its `train.py`.

Every image D sees, real or generated, goes through the same pipe. Each transformation is applied
to each image independently with probability `multiplier * p` (`p` is the pipe's buffer, set by
`gankit.augment.adaptive.AdaptiveP`), in the official order and with the official parameter
distributions:

- pixel blitting: x-flip, 90-degree rotations, integer translation (up to 1/8 of the size);
- general geometry: isotropic scaling, rotation (before and after the anisotropic scaling, each with
  the probability that makes "either" equal `rotate * p`), anisotropic scaling, fractional
  translation. The blits and the geometry are composed into one inverse affine map and applied
  once: reflect-pad, upsample 2x with the orthogonal `sym6` wavelet, bilinear `grid_sample`,
  downsample 2x with the same filter, crop;
- colour: brightness, contrast, luma flip, hue rotation, saturation, composed into one 4x4 matrix on
  homogeneous RGB (hue and saturation only for more than one channel);
- image-space filtering (four frequency bands built from `sym2`), additive RGB noise, cutout.

Images stay in gankit's [-1, 1] range, as the official pipe's do. The random draws are the
official ones, in the official order, from the `torch.Generator` passed to `forward` (the loop's
checkpointed one), so a resumed run draws the same augmentations.

Deviations from the official code:

- `grid_sample` is `gankit.augment.grid_sample`, written with public ops, so that R1 can
  differentiate through the pipe twice; the official code reaches PyTorch's backward kernel
  through a private operator for that. Same values and gradients.
- The official `debug_percentile` (fixed parameters for its visualization tool) is left out.
- Half-precision images are promoted to float32 (and returned so): the sampling coordinates and
  the colour matrices need more than bf16's eight bits. The matrices are computed in the images'
  dtype (the official: float32), from the same float32 draws; float64 images differ only by
  rounding.

As in the official pipe, x-flips and quarter turns go through the wavelet resampling too, and the
asymmetric sym6 filter makes them exact only to a fraction of a pixel (integer translations, which
commute with the filter, are exact).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from gankit.augment.grid_sample import grid_sample
from gankit.nn.upfirdn import downsample2d, setup_filter, upsample2d

#: Low-pass filters of two Daubechies symlets (orthogonal wavelets), as tabulated by the official code.
WAVELETS: dict[str, list[float]] = {
    "sym2": [-0.12940952255092145, 0.22414386804185735, 0.836516303737469, 0.48296291314469025],
    "sym6": [
        0.015404109327027373, 0.0034907120842174702, -0.11799011114819057, -0.048311742585633,
        0.4910559419267466, 0.787641141030194, 0.3379294217276218, -0.07263752278646252,
        -0.021060292512300564, 0.04472490177066578, 0.0017677118642428036, -0.007800708325034148,
    ],
}  # fmt: skip

#: The official `--augpipe` choices (train.py's augpipe_specs): multipliers set to 1.
PRESETS: dict[str, tuple[str, ...]] = {
    "blit": ("xflip", "rotate90", "xint"),
    "geom": ("scale", "rotate", "aniso", "xfrac"),
    "color": ("brightness", "contrast", "lumaflip", "hue", "saturation"),
    "filter": ("imgfilter",),
    "noise": ("noise",),
    "cutout": ("cutout",),
}
PRESETS["bg"] = PRESETS["blit"] + PRESETS["geom"]
PRESETS["bgc"] = PRESETS["bg"] + PRESETS["color"]
PRESETS["bgcf"] = PRESETS["bgc"] + PRESETS["filter"]
PRESETS["bgcfn"] = PRESETS["bgcf"] + PRESETS["noise"]
PRESETS["bgcfnc"] = PRESETS["bgcfn"] + PRESETS["cutout"]

#: Relative power of the four filter bands in natural images (a 1/f spectrum), as the official.
_BAND_POWER = (10 / 13, 1 / 13, 1 / 13, 1 / 13)
_LUMA = (3**-0.5, 3**-0.5, 3**-0.5, 0.0)  # the grey axis of homogeneous RGB


class AugmentPipe(nn.Module):
    """ADA's augmentation pipe: `pipe(images [N, C, H, W], generator) -> images`, C = 1 or 3.

    The multipliers (`xflip`, ..., `cutout`) scale the overall probability `p`; 0 switches a
    transformation off. The other arguments are the official distributions' parameters.
    """

    def __init__(
        self,
        xflip: float = 0,
        rotate90: float = 0,
        xint: float = 0,
        xint_max: float = 0.125,
        scale: float = 0,
        rotate: float = 0,
        aniso: float = 0,
        xfrac: float = 0,
        scale_std: float = 0.2,
        rotate_max: float = 1,
        aniso_std: float = 0.2,
        xfrac_std: float = 0.125,
        brightness: float = 0,
        contrast: float = 0,
        lumaflip: float = 0,
        hue: float = 0,
        saturation: float = 0,
        brightness_std: float = 0.2,
        contrast_std: float = 0.5,
        hue_max: float = 1,
        saturation_std: float = 1,
        imgfilter: float = 0,
        imgfilter_bands: Sequence[float] = (1, 1, 1, 1),
        imgfilter_std: float = 1,
        noise: float = 0,
        cutout: float = 0,
        noise_std: float = 0.1,
        cutout_size: float = 0.5,
    ) -> None:
        super().__init__()
        # The overall probability; a buffer so that a changing p never retraces a compiled pipe.
        self.register_buffer("p", torch.ones([]))
        # Pixel blitting: multipliers, and the translation range relative to the image size.
        self.xflip, self.rotate90, self.xint = float(xflip), float(rotate90), float(xint)
        self.xint_max = float(xint_max)
        # General geometry: multipliers; log2 std of the scalings, rotation range (1 = full
        # circle), std of the fractional translation relative to the image size.
        self.scale, self.rotate, self.aniso = float(scale), float(rotate), float(aniso)
        self.xfrac = float(xfrac)
        self.scale_std, self.rotate_max = float(scale_std), float(rotate_max)
        self.aniso_std, self.xfrac_std = float(aniso_std), float(xfrac_std)
        # Colour: multipliers; brightness std, log2 std of contrast and saturation, hue range.
        self.brightness, self.contrast = float(brightness), float(contrast)
        self.lumaflip, self.hue, self.saturation = float(lumaflip), float(hue), float(saturation)
        self.brightness_std, self.contrast_std = float(brightness_std), float(contrast_std)
        self.hue_max, self.saturation_std = float(hue_max), float(saturation_std)
        # Image-space filtering: multiplier, per-band multipliers, log2 std of the band gains.
        self.imgfilter = float(imgfilter)
        self.imgfilter_bands = [float(b) for b in imgfilter_bands]
        self.imgfilter_std = float(imgfilter_std)
        # Corruptions: multipliers, noise std, cutout square side relative to the image size.
        self.noise, self.cutout = float(noise), float(cutout)
        self.noise_std, self.cutout_size = float(noise_std), float(cutout_size)

        self.register_buffer("Hz_geom", setup_filter(WAVELETS["sym6"]))
        self.register_buffer("Hz_fbank", torch.as_tensor(_filter_bank(), dtype=torch.float32))
        if len(self.imgfilter_bands) != self.Hz_fbank.shape[0]:
            raise ValueError(
                f"imgfilter_bands has {len(self.imgfilter_bands)} values; expected one per band "
                f"({self.Hz_fbank.shape[0]})"
            )

    @classmethod
    def preset(cls, name: str, **params: float) -> AugmentPipe:
        """The official `--augpipe NAME` pipe (e.g. "bgc"), with any parameter overridden."""
        if name not in PRESETS:
            raise ValueError(f"augmentation pipe {name!r}: expected one of {', '.join(PRESETS)}")
        return cls(**{**dict.fromkeys(PRESETS[name], 1.0), **params})

    def forward(
        self, images: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Augment `images` [N, C, H, W] in [-1, 1], drawing from `generator` (global RNG if None)."""
        if images.ndim != 4:
            raise ValueError(f"expected images [N, C, H, W], got shape {tuple(images.shape)}")
        images = images.to(torch.promote_types(images.dtype, torch.float32))
        draw = _Draws(images, generator)
        G_inv = self._geometry(draw, images.shape[3], images.shape[2])
        if G_inv is not None:
            images = self._resample(images, G_inv)
        C = self._color(draw, images.shape[1])
        if C is not None:
            images = _apply_color(images, C)
        if self.imgfilter > 0:
            images = self._filter(images, draw)
        if self.noise > 0:
            images = self._add_noise(images, draw)
        if self.cutout > 0:
            images = self._cut_out(images, draw)
        return images

    def _gate(
        self, draw: _Draws, multiplier: float | torch.Tensor, shape: Sequence[int]
    ) -> torch.Tensor:
        """Which images get a transformation: U(0, 1) < multiplier * p, per image."""
        return draw.rand(shape) < multiplier * self.p

    def _geometry(self, draw: _Draws, width: int, height: int) -> torch.Tensor | None:
        """The inverse map [N, 3, 3] from output to input pixels (centred), or None if all off."""
        n = draw.n
        mats = []  # composed right to left below: the first drawn acts last on output pixels
        if self.xflip > 0:
            i = torch.floor(draw.rand([n]) * 2)
            i = torch.where(self._gate(draw, self.xflip, [n]), i, 0)
            mats.append(_scale2d(1 - 2 * i, torch.ones_like(i)))
        if self.rotate90 > 0:
            i = torch.floor(draw.rand([n]) * 4)
            i = torch.where(self._gate(draw, self.rotate90, [n]), i, 0)
            mats.append(_rotate2d(math.pi / 2 * i))
        if self.xint > 0:
            t = (draw.rand([n, 2]) * 2 - 1) * self.xint_max
            t = torch.where(self._gate(draw, self.xint, [n, 1]), t, 0)
            mats.append(_translate2d(-torch.round(t[:, 0] * width), -torch.round(t[:, 1] * height)))
        if self.scale > 0:
            s = torch.exp2(draw.randn([n]) * self.scale_std)
            s = torch.where(self._gate(draw, self.scale, [n]), s, 1)
            mats.append(_scale2d(1 / s, 1 / s))
        # Rotation happens before and/or after the anisotropic scaling; P(either) = rotate * p.
        p_rot = 1 - torch.sqrt((1 - self.rotate * self.p).clamp(0, 1))
        if self.rotate > 0:
            mats.append(_rotate2d(self._rotation_angle(draw, p_rot)))
        if self.aniso > 0:
            s = torch.exp2(draw.randn([n]) * self.aniso_std)
            s = torch.where(self._gate(draw, self.aniso, [n]), s, 1)
            mats.append(_scale2d(1 / s, s))
        if self.rotate > 0:
            mats.append(_rotate2d(self._rotation_angle(draw, p_rot)))
        if self.xfrac > 0:
            t = draw.randn([n, 2]) * self.xfrac_std
            t = torch.where(self._gate(draw, self.xfrac, [n, 1]), t, 0)
            mats.append(_translate2d(-t[:, 0] * width, -t[:, 1] * height))
        if not mats:
            return None
        G_inv = mats[0]
        for m in mats[1:]:
            G_inv = G_inv @ m
        return G_inv

    def _rotation_angle(self, draw: _Draws, p_rot: torch.Tensor) -> torch.Tensor:
        """A uniform angle within `rotate_max` half-turns, or 0, for each image."""
        theta = (draw.rand([draw.n]) * 2 - 1) * math.pi * self.rotate_max
        return torch.where(draw.rand([draw.n]) < p_rot, theta, 0)

    def _resample(self, images: torch.Tensor, G_inv: torch.Tensor) -> torch.Tensor:
        """Apply the inverse map: reflect-pad, upsample 2x, bilinear sample, downsample 2x, crop."""
        n, c, h, w = images.shape
        device = images.device
        f = self.Hz_geom
        pad = f.shape[0] // 4  # the filter's reach at the upsampled resolution, in input pixels
        # Pad by how far the transformed corners reach outside the image (plus the filter's
        # support), at most one image size (reflect padding cannot reach further).
        cx, cy = (w - 1) / 2, (h - 1) / 2
        corners = torch.tensor(
            [[-cx, cx, cx, -cx], [-cy, -cy, cy, cy], [1.0, 1.0, 1.0, 1.0]],
            dtype=G_inv.dtype,
            device=device,
        )
        reach = (G_inv @ corners)[:, :2, :].permute(1, 0, 2).flatten(1)  # [xy, N * 4]
        margin = torch.cat([-reach, reach]).amax(dim=1)  # [left, top, right, bottom]
        margin = margin + margin.new_tensor([2 * pad - cx, 2 * pad - cy] * 2)
        limit = margin.new_tensor([w - 1, h - 1] * 2)
        margin = torch.minimum(margin.clamp(min=0), limit)
        mx0, my0, mx1, my1 = (int(v) for v in margin.ceil().tolist())
        images = F.pad(images, [mx0, mx1, my0, my1], mode="reflect")
        G_inv = _translate2d((mx0 - mx1) / 2, (my0 - my1) / 2, G_inv) @ G_inv

        images = upsample2d(images, f, up=2)
        # The same map in the upsampled image's pixels: scale by 2 about the pixel grid's origin.
        G_inv = _scale2d(2, 2, G_inv) @ G_inv @ _scale2d(0.5, 0.5, G_inv)
        G_inv = _translate2d(-0.5, -0.5, G_inv) @ G_inv @ _translate2d(0.5, 0.5, G_inv)

        # Sample an output big enough for the downsampling filter, in grid_sample's [-1, 1].
        shape = [n, c, (h + 2 * pad) * 2, (w + 2 * pad) * 2]
        to_unit = _scale2d(2 / images.shape[3], 2 / images.shape[2], G_inv)
        from_unit = _scale2d(shape[3] / 2, shape[2] / 2, G_inv)
        G_inv = to_unit @ G_inv @ from_unit
        grid = F.affine_grid(G_inv[:, :2, :], shape, align_corners=False)
        images = grid_sample(images, grid)
        return downsample2d(images, f, down=2, padding=-2 * pad, flip_filter=True)

    def _color(self, draw: _Draws, channels: int) -> torch.Tensor | None:
        """The colour map [N, 4, 4] on homogeneous RGB, or None if all colour groups are off."""
        n = draw.n
        eye = torch.eye(4, dtype=draw.dtype, device=draw.device)
        luma = torch.tensor(_LUMA, dtype=draw.dtype, device=draw.device)
        luma_proj = torch.outer(luma, luma)
        mats = []  # composed left to right below: each acts on the previous one's output
        if self.brightness > 0:
            b = draw.randn([n]) * self.brightness_std
            b = torch.where(self._gate(draw, self.brightness, [n]), b, 0)
            mats.append(_translate3d(b, b, b))
        if self.contrast > 0:
            c = torch.exp2(draw.randn([n]) * self.contrast_std)
            c = torch.where(self._gate(draw, self.contrast, [n]), c, 1)
            mats.append(_scale3d(c, c, c))
        if self.lumaflip > 0:
            i = torch.floor(draw.rand([n, 1, 1]) * 2)
            i = torch.where(self._gate(draw, self.lumaflip, [n, 1, 1]), i, 0)
            mats.append(eye - 2 * luma_proj * i)  # a Householder reflection of the luma axis
        if self.hue > 0 and channels > 1:
            theta = (draw.rand([n]) * 2 - 1) * math.pi * self.hue_max
            theta = torch.where(self._gate(draw, self.hue, [n]), theta, 0)
            mats.append(_rotate3d(luma, theta))
        if self.saturation > 0 and channels > 1:
            s = torch.exp2(draw.randn([n, 1, 1]) * self.saturation_std)
            s = torch.where(self._gate(draw, self.saturation, [n, 1, 1]), s, 1)
            mats.append(luma_proj + (eye - luma_proj) * s)
        if not mats:
            return None
        C = mats[0]
        for m in mats[1:]:
            C = m @ C
        return C

    def _filter(self, images: torch.Tensor, draw: _Draws) -> torch.Tensor:
        """Amplify or attenuate the four frequency bands by random gains, keeping the power."""
        n, c, h, w = images.shape
        bank = self.Hz_fbank.to(images.dtype)
        bands = bank.shape[0]
        power = torch.tensor(_BAND_POWER, dtype=images.dtype, device=images.device)
        gains = torch.ones([n, bands], dtype=images.dtype, device=images.device)
        for i, band_multiplier in enumerate(self.imgfilter_bands):
            g = torch.exp2(draw.randn([n]) * self.imgfilter_std)
            g = torch.where(self._gate(draw, self.imgfilter * band_multiplier, [n]), g, 1)
            t = F.one_hot(torch.tensor(i), bands).to(gains) * (g[:, None] - 1) + 1
            # Each band's gain is normalized so the expected image power stays the same.
            gains = gains * t / (power * t.square()).sum(dim=1, keepdim=True).sqrt()
        taps = (gains @ bank).repeat_interleave(c, dim=0)  # [N * C, taps]
        half = bank.shape[1] // 2
        x = F.pad(images.reshape(1, n * c, h, w), [half] * 4, mode="reflect")
        x = F.conv2d(x, taps[:, None, None, :], groups=n * c)
        x = F.conv2d(x, taps[:, None, :, None], groups=n * c)
        return x.reshape(n, c, h, w)

    def _add_noise(self, images: torch.Tensor, draw: _Draws) -> torch.Tensor:
        """Add Gaussian RGB noise of a random (half-normal) strength."""
        n = draw.n
        sigma = draw.randn([n, 1, 1, 1]).abs() * self.noise_std
        sigma = torch.where(self._gate(draw, self.noise, [n, 1, 1, 1]), sigma, 0)
        return images + draw.randn(images.shape) * sigma

    def _cut_out(self, images: torch.Tensor, draw: _Draws) -> torch.Tensor:
        """Zero a square of side `cutout_size` (relative) centred at a uniform random point."""
        n, _, h, w = images.shape
        size = self._gate(draw, self.cutout, [n, 1, 1, 1, 1]) * self.cutout_size
        centre = draw.rand([n, 2, 1, 1, 1])
        x = (torch.arange(w, device=images.device).reshape(1, 1, 1, -1) + 0.5) / w
        y = (torch.arange(h, device=images.device).reshape(1, 1, -1, 1) + 0.5) / h
        keep = ((x - centre[:, 0]).abs() >= size[:, 0] / 2) | (
            (y - centre[:, 1]).abs() >= size[:, 0] / 2
        )
        return images * keep.to(images.dtype)


class _Draws:
    """The pipe's random numbers, on the images' device and in their dtype.

    Drawn in float32 as the official ones (so float64 images see the same numbers), then cast:
    the transformations are computed in the images' precision.
    """

    def __init__(self, images: torch.Tensor, generator: torch.Generator | None) -> None:
        self.n = images.shape[0]
        self.device = images.device
        self.dtype = images.dtype
        self.generator = generator

    def rand(self, shape: Sequence[int]) -> torch.Tensor:
        u = torch.rand(list(shape), device=self.device, generator=self.generator)
        return u.to(self.dtype)

    def randn(self, shape: Sequence[int]) -> torch.Tensor:
        z = torch.randn(list(shape), device=self.device, generator=self.generator)
        return z.to(self.dtype)


def _apply_color(images: torch.Tensor, C: torch.Tensor) -> torch.Tensor:
    """Apply colour maps [N, 4, 4]: RGB as a matrix; one channel through the mean of the RGB rows."""
    n, c, h, w = images.shape
    C = C.to(images.dtype)
    x = images.reshape(n, c, h * w)
    if c == 3:
        x = C[:, :3, :3] @ x + C[:, :3, 3:]
    elif c == 1:
        # A grey image is (v, v, v): the mean output over R, G and B of that input.
        row = C[:, :3, :].mean(dim=1, keepdim=True)
        x = x * row[:, :, :3].sum(dim=2, keepdim=True) + row[:, :, 3:]
    else:
        raise ValueError(
            f"colour augmentation needs RGB (3) or greyscale (1) images, got {c} channels"
        )
    return x.reshape(n, c, h, w)


def _matrix(
    rows: Sequence[Sequence[torch.Tensor | float]], like: torch.Tensor | None = None
) -> torch.Tensor:
    """A [N, R, K] batch of matrices from [N] tensor or constant entries.

    All constants: one [R, K] matrix with the dtype and device of `like`.
    """
    ref = next((e for row in rows for e in row if isinstance(e, torch.Tensor)), None)
    if ref is None:
        assert like is not None, "a constant matrix needs `like` for its dtype and device"
        return like.new_tensor(rows)
    entries = [
        e if isinstance(e, torch.Tensor) else torch.full_like(ref, e) for row in rows for e in row
    ]
    return torch.stack(entries, dim=-1).reshape(*ref.shape, len(rows), len(rows[0]))


def _translate2d(
    tx: torch.Tensor | float, ty: torch.Tensor | float, like: torch.Tensor | None = None
) -> torch.Tensor:
    return _matrix([[1, 0, tx], [0, 1, ty], [0, 0, 1]], like)


def _scale2d(
    sx: torch.Tensor | float, sy: torch.Tensor | float, like: torch.Tensor | None = None
) -> torch.Tensor:
    return _matrix([[sx, 0, 0], [0, sy, 0], [0, 0, 1]], like)


def _rotate2d(theta: torch.Tensor) -> torch.Tensor:
    cos, sin = torch.cos(theta), torch.sin(theta)
    return _matrix([[cos, -sin, 0], [sin, cos, 0], [0, 0, 1]])


def _translate3d(tx: torch.Tensor, ty: torch.Tensor, tz: torch.Tensor) -> torch.Tensor:
    return _matrix([[1, 0, 0, tx], [0, 1, 0, ty], [0, 0, 1, tz], [0, 0, 0, 1]])


def _scale3d(sx: torch.Tensor, sy: torch.Tensor, sz: torch.Tensor) -> torch.Tensor:
    return _matrix([[sx, 0, 0, 0], [0, sy, 0, 0], [0, 0, sz, 0], [0, 0, 0, 1]])


def _rotate3d(axis: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """Rotation by `theta` [N] about the unit `axis` (Rodrigues' formula), homogeneous [N, 4, 4]."""
    cos, sin = torch.cos(theta), torch.sin(theta)
    a = axis[:3]
    cos, sin = cos[:, None, None], sin[:, None, None]
    rot = cos * torch.eye(3, dtype=axis.dtype, device=axis.device) + sin * _cross_matrix(a)
    rot = rot + (1 - cos) * torch.outer(a, a)
    # Homogeneous: pad with a zero column and row, then the 1 that keeps the offset coordinate.
    out = F.pad(rot, [0, 1, 0, 1])
    return out + F.pad(axis.new_ones(1, 1), [3, 0, 3, 0])


def _cross_matrix(axis: torch.Tensor) -> torch.Tensor:
    """[a]_x, the matrix of the cross product a x (.)."""
    ax, ay, az = axis[0], axis[1], axis[2]
    zero = torch.zeros_like(ax)
    return torch.stack(
        [torch.stack([zero, -az, ay]), torch.stack([az, zero, -ax]), torch.stack([-ay, ax, zero])]
    )


def _filter_bank() -> np.ndarray:
    """Four band-pass filters [4, taps] splitting the spectrum into octaves (from `sym2`).

    Band 0 is the lowest octave, band 3 the highest; they sum to an impulse, so equal gains leave
    an image unchanged. Built as the official code does: repeatedly stretch the bank to the next
    octave down (insert zeros) and low-pass it, then add the new highest band.
    """
    lo = np.asarray(WAVELETS["sym2"])
    hi = lo * (-1.0) ** np.arange(lo.size)  # H(-z): the mirror high-pass
    lo2 = np.convolve(lo, lo[::-1]) / 2  # H(z) H(1/z) / 2
    hi2 = np.convolve(hi, hi[::-1]) / 2
    bank = np.eye(4, 1)
    for band in range(1, 4):
        stretched = np.zeros([4, bank.shape[1] * 2 - 1])
        stretched[:, ::2] = bank
        bank = np.stack([np.convolve(row, lo2) for row in stretched])
        start = (bank.shape[1] - hi2.size) // 2
        bank[band, start : start + hi2.size] += hi2
    return bank
