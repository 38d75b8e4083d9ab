"""StyleGAN (v1) networks: Karras et al., "A Style-Based Generator Architecture for Generative
Adversarial Networks", CVPR 2019, arXiv:1812.04948, as the official TensorFlow code builds them
(NVlabs/stylegan `training/networks_stylegan.py`: G_style, G_mapping, G_synthesis, D_basic).

Mapping: z (with the label embedding concatenated, when there are classes) pixel-normalised, then
`mapping_layers` equalized dense layers (width w_dim, LeakyReLU 0.2, learning-rate multiplier
0.01) make w, broadcast to `num_ws` = 2 log2(R) - 2 copies, one per synthesis layer. `w_avg`
(beta 0.995) is what truncation pulls towards: `w_avg + psi * (w - w_avg)` for the first
`truncation_cutoff` ws.

Synthesis: two layers per resolution. The 4x4 input is a learned constant (ones) or, with
`const_input=False`, a dense layer of w (the ProGAN input); every further resolution runs a 2x
nearest upsample, a 3x3 conv and the [1, 2, 1] blur, then a 3x3 conv. Every layer ends in the
official epilogue: noise (one N(0, 1) image per layer, scaled by per-channel weights that start
at 0), bias, LeakyReLU(0.2), pixel norm and/or instance norm, then the style
`x * (y_s + 1) + y_b` with (y_s, y_b) an affine map of that layer's w. toRGB is a 1x1 conv per
resolution.

Progressive growing as ProGAN's (`gankit.models.progan`): `G(z, c, resolution=R, alpha=a)`,
`D(img, c, alpha=a)`; the newest block fades in against the nearest-upsampled toRGB of the one
before (G) and the fromRGB of the 2x box-downsampled image (D). G keeps the stage it was last run
at (the official `lod` variable): `G.synthesis(ws)` without a resolution renders at that stage,
so the StyleGAN2 tools (`style-mix`, `project`, `video`, PPL) work on runs still growing.

D (`D_basic`): ProGAN's critic with the [1, 2, 1] blur before every downsampling conv, the
downsampling (2x2 mean) before the bias and activation, minibatch stddev (group 4) at 4x4;
with classes it outputs one logit per class and keeps the label's (the official `LabelSwitch`).

The flags are the official ones, so the paper's Table 1 rows are arguments: `use_styles`,
`const_input`, `use_noise`, `use_pixel_norm`, `use_instance_norm`, `mapping_layers`, `blur`
(`gankit.recipes.stylegan.LADDER` lists each row's values).

Deviations from the official code, and why:
- The fused transposed conv (G) and strided conv (D) that the official code uses at 128 px and
  up compute the same functions as the separate upsample/conv and conv/downsample used here at
  every resolution (they are a speed trick); gankit does not fuse.
- The mapping layers are StyleGAN2's `FullyConnectedLayer` (activation gain after the
  activation) with the bias gain divided by sqrt(2): the official v1 function exactly.
- The label embedding is a plain dense matrix initialised N(0, 1) as officially; gankit takes
  class indices `[N]` (or one-hot `[N, c_dim]`) as the other families.
- D returns logits `[N]` (gankit's model contract), not `[N, 1]`.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from gankit.errors import ConfigError
from gankit.models import progan
from gankit.models.progan import LRELU_SLOPE, channels_at, check_resolution
from gankit.models.stylegan2 import NOISE_MODES, MappingNetwork, labels_as_vectors
from gankit.nn import EqualConv2d, EqualLinear
from gankit.nn.resample import upsample2x
from gankit.registry import MODELS

SQRT2 = math.sqrt(2.0)


def blur_kernel(channels: int) -> torch.Tensor:
    """The official [1, 2, 1] x [1, 2, 1] / 16 low-pass filter, depthwise `[C, 1, 3, 3]`."""
    f = torch.tensor([1.0, 2.0, 1.0])
    f = torch.outer(f, f)
    return (f / f.sum()).expand(channels, 1, 3, 3).contiguous()


class _BlurFunction(torch.autograd.Function):
    """A depthwise 3x3 'same' filter whose gradient is the flipped filter, itself a
    `_BlurFunction`: as the official `blur2d`'s custom gradient, R1's double backward never
    computes the filter's own gradient, which autograd's convolution formula does, one
    convolution per channel (benchmarks/RESULTS.md)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(kernel)
        return F.conv2d(x, kernel, padding=1, groups=x.shape[1])

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        (kernel,) = ctx.saved_tensors
        return _BlurFunction.apply(grad, kernel.flip(2, 3)), None


class Blur(nn.Module):
    """Depthwise [1, 2, 1] blur with 'same' zero padding (the official `blur2d`)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.register_buffer("kernel", blur_kernel(channels), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _BlurFunction.apply(x, self.kernel.to(x.dtype))


def instance_norm(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Each map of each sample to zero mean and unit mean square, in float32 (the official op:
    `(x - mean) / sqrt(mean((x - mean)^2) + eps)`, which is torch's fused kernel's formula)."""
    return F.instance_norm(x.float(), eps=eps).to(x.dtype)


class StyleMapping(MappingNetwork):
    """v1 mapping: `[z, embed(c)]` pixel-normalised together, then the dense layers."""

    def __init__(self, z_dim: int, c_dim: int, w_dim: int, num_ws: int, num_layers: int) -> None:
        if num_layers == 0 and z_dim + (z_dim if c_dim else 0) != w_dim:
            raise ConfigError(
                f"stylegan with mapping_layers 0 uses the normalised z as w, so w_dim must be "
                f"z_dim ({z_dim}) without classes; got w_dim {w_dim} and {c_dim} classes"
            )
        super().__init__(z_dim, 0, w_dim, num_ws, num_layers, layer_features=w_dim)
        self.c_dim = c_dim
        if num_layers:  # the official dense layer: bias inside the activation, gain outside
            first = self.layers[0]
            self.layers[0] = type(first)(
                z_dim * (2 if c_dim else 1), first.out_features, activation="lrelu",
                lr_multiplier=first.bias_gain,
            )  # fmt: skip
        for layer in self.layers:
            layer.bias_gain /= SQRT2
        # The official `LabelConcat` weight: N(0, 1), no equalized scaling.
        self.label_embed = nn.Parameter(torch.randn(c_dim, z_dim)) if c_dim else None

    def embed_inputs(self, z: torch.Tensor | None, c: torch.Tensor | None) -> torch.Tensor:
        batch = z.shape[0] if z is not None else 0
        x = self.checked_z(z, batch).float()
        y = labels_as_vectors(c, self.c_dim, batch)
        if self.label_embed is not None and y is not None:
            x = torch.cat([x, y @ self.label_embed], dim=1)
        return x * torch.rsqrt(x.square().mean(dim=1, keepdim=True) + 1e-8)


class StyleLayer(nn.Module):
    """One synthesis layer: its conv (if any), then noise, bias, LeakyReLU, norms and style."""

    def __init__(
        self,
        conv: nn.Module | None,
        channels: int,
        w_dim: int,
        resolution: int,
        *,
        use_styles: bool,
        use_noise: bool,
        use_pixel_norm: bool,
        use_instance_norm: bool,
    ) -> None:
        super().__init__()
        self.conv, self.channels, self.resolution = conv, channels, resolution
        self.use_pixel_norm, self.use_instance_norm = use_pixel_norm, use_instance_norm
        self.use_noise = use_noise
        if use_noise:
            self.register_buffer("noise_const", torch.randn(resolution, resolution))
            self.noise_weight = nn.Parameter(torch.zeros(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.style = EqualLinear(w_dim, 2 * channels, gain=1.0) if use_styles else None

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise_mode: str) -> torch.Tensor:
        if self.conv is not None:
            x = self.conv(x)
        x = self.add_noise(x, noise_mode)
        x = F.leaky_relu(x + self.bias.to(x.dtype).view(1, -1, 1, 1), LRELU_SLOPE)
        if self.use_pixel_norm:
            x = x * torch.rsqrt(x.square().mean(dim=1, keepdim=True) + 1e-8)
        if self.use_instance_norm:
            x = instance_norm(x)
        if self.style is None:
            return x
        style = self.style(w).to(x.dtype).view(-1, 2, self.channels, 1, 1)
        return torch.addcmul(style[:, 1], x, style[:, 0] + 1)  # x * (y_s + 1) + y_b

    def add_noise(self, x: torch.Tensor, noise_mode: str) -> torch.Tensor:
        """x + noise image x per-channel weight (`random`: fresh per sample; `const`: stored)."""
        if not self.use_noise or noise_mode == "none":
            return x
        if noise_mode == "random":
            noise = torch.randn(x.shape[0], 1, *x.shape[2:], device=x.device, dtype=x.dtype)
        else:
            noise = self.noise_const.to(x.dtype)
        return x + noise * self.noise_weight.to(x.dtype).view(1, -1, 1, 1)


class UpConv(nn.Module):
    """2x nearest upsampling, 3x3 conv (no bias: the epilogue adds it), optional blur."""

    def __init__(self, in_ch: int, out_ch: int, blur: bool) -> None:
        super().__init__()
        self.conv = EqualConv2d(in_ch, out_ch, 3, bias=False)
        self.blur = Blur(out_ch) if blur else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(upsample2x(x))
        return x if self.blur is None else self.blur(x)


class DenseInput(nn.Module):
    """The traditional 4x4 input: w -> dense (gain sqrt(2)/4, as ProGAN's) -> `[N, C, 4, 4]`."""

    def __init__(self, w_dim: int, channels: int) -> None:
        super().__init__()
        self.channels = channels
        self.dense = EqualLinear(w_dim, channels * 16, bias=False, gain=SQRT2 / 4)

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        return self.dense(w).view(-1, self.channels, 4, 4)


class StyleSynthesis(nn.Module):
    """ws `[N, num_ws, w_dim]` -> images `[N, C, R, R]` at a stage of progressive growing."""

    def __init__(
        self,
        w_dim: int,
        img_resolution: int,
        img_channels: int,
        channel_base: int,
        channel_max: int,
        *,
        use_styles: bool = True,
        const_input: bool = True,
        use_noise: bool = True,
        use_pixel_norm: bool = False,
        use_instance_norm: bool = True,
        blur: bool = True,
    ) -> None:
        super().__init__()
        self.w_dim, self.img_resolution, self.img_channels = w_dim, img_resolution, img_channels
        self.resolutions = check_resolution(img_resolution, "stylegan")
        self.num_layers = 2 * len(self.resolutions)
        self.num_ws = self.num_layers if use_styles else 1
        ch = [channels_at(r, channel_base, channel_max) for r in self.resolutions]
        flags = dict(use_styles=use_styles, use_noise=use_noise, use_pixel_norm=use_pixel_norm,
                     use_instance_norm=use_instance_norm)  # fmt: skip
        self.const = nn.Parameter(torch.ones(1, ch[0], 4, 4)) if const_input else None
        self.dense_input = None if const_input else DenseInput(w_dim, ch[0])
        layers = []
        for i, (res, c) in enumerate(zip(self.resolutions, ch, strict=True)):
            first = None if i == 0 else UpConv(ch[i - 1], c, blur)
            layers += [StyleLayer(first, c, w_dim, res, **flags),
                       StyleLayer(EqualConv2d(c, c, 3, bias=False), c, w_dim, res, **flags)]  # fmt: skip
        self.layers = nn.ModuleList(layers)
        self.to_rgb = nn.ModuleList(EqualConv2d(c, img_channels, 1, gain=1.0) for c in ch)
        # The official `lod` variable: where growing stands (0 = fully grown).
        self.register_buffer("lod", torch.zeros([]))

    def set_stage(self, resolution: int, alpha: float = 1.0) -> None:
        """Record the stage G was trained at; `forward` without a resolution renders it."""
        level = self.level(resolution)
        self.lod.fill_(len(self.resolutions) - 1 - level + (1.0 - alpha))

    def stage(self) -> tuple[int, float]:
        """(resolution, alpha) of the recorded `lod`."""
        lod = float(self.lod)
        level = len(self.resolutions) - 1 - math.floor(lod)
        return self.resolutions[max(level, 0)], 1.0 - (lod - math.floor(lod))

    def level(self, resolution: int) -> int:
        """Index of `resolution` in 4, 8, ..., with a clear error for others."""
        if resolution not in self.resolutions:
            raise ValueError(f"resolution {resolution} is not one of {self.resolutions}")
        return self.resolutions.index(resolution)

    def forward(
        self,
        ws: torch.Tensor,
        resolution: int | None = None,
        alpha: float | None = None,
        noise_mode: str = "random",
    ) -> torch.Tensor:
        if noise_mode not in NOISE_MODES:
            raise ValueError(f"noise_mode must be one of {NOISE_MODES}; got {noise_mode!r}")
        if ws.ndim != 3 or ws.shape[1:] != (self.num_ws, self.w_dim):
            raise ValueError(
                f"synthesis takes ws [N, {self.num_ws}, {self.w_dim}]; got {list(ws.shape)}"
            )
        if resolution is None:
            resolution, stored_alpha = self.stage()
            alpha = stored_alpha if alpha is None else alpha
        level, alpha = self.level(resolution), 1.0 if alpha is None else alpha
        layer_ws = ws.unbind(1) if self.num_ws > 1 else [ws[:, 0]] * self.num_layers
        x = self._input(layer_ws[0], ws.shape[0])
        prev = x
        for i in range(2 * level + 2):
            if i % 2 == 0 and i > 0:
                prev = x
            x = self.layers[i](x, layer_ws[i], noise_mode)
        img = self.to_rgb[level](x)
        if alpha < 1.0 and level > 0:
            # toRGB (1x1) commutes with nearest upsampling, so apply it at the lower resolution.
            img = torch.lerp(upsample2x(self.to_rgb[level - 1](prev)), img, alpha)
        return img

    def _input(self, w0: torch.Tensor, batch: int) -> torch.Tensor:
        if self.const is None:
            assert self.dense_input is not None
            return self.dense_input(w0)
        return self.const.expand(batch, -1, -1, -1)


class Generator(nn.Module):
    """StyleGAN G: `G(z [N, z_dim], c, resolution=R, alpha=a) -> img [N, C, R, R]` via
    `mapping` and `synthesis` (the StyleGAN2 tools' interface)."""

    def __init__(
        self,
        z_dim: int,
        c_dim: int,
        w_dim: int,
        img_resolution: int,
        img_channels: int,
        *,
        mapping_layers: int = 8,
        channel_base: int = 16384,
        channel_max: int = 512,
        **synthesis_flags: bool,
    ) -> None:
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim = z_dim, c_dim, w_dim
        self.img_resolution, self.img_channels = img_resolution, img_channels
        self.output_kind = "images"
        self.synthesis = StyleSynthesis(
            w_dim, img_resolution, img_channels, channel_base, channel_max, **synthesis_flags
        )
        self.num_ws = self.synthesis.num_ws
        self.resolutions = self.synthesis.resolutions
        self.mapping = StyleMapping(z_dim, c_dim, w_dim, self.num_ws, mapping_layers)

    def forward(
        self,
        z: torch.Tensor,
        c: torch.Tensor | None = None,
        resolution: int | None = None,
        alpha: float | None = None,
        truncation_psi: float = 1,
        truncation_cutoff: int | None = None,
        noise_mode: str = "random",
        update_emas: bool = False,
    ) -> torch.Tensor:
        ws = self.mapping(z, c, truncation_psi, truncation_cutoff, update_emas=update_emas)
        return self.synthesis(ws, resolution, alpha, noise_mode)


class StyleDBlock(nn.Module):
    """3x3 conv -> LeakyReLU, then blur -> 3x3 conv -> 2x2 mean -> LeakyReLU (`D_basic`)."""

    def __init__(self, in_ch: int, out_ch: int, blur: bool) -> None:
        super().__init__()
        self.conv0 = EqualConv2d(in_ch, in_ch, 3)
        self.blur = Blur(in_ch) if blur else None
        self.conv1 = EqualConv2d(in_ch, out_ch, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.leaky_relu(self.conv0(x), LRELU_SLOPE)
        if self.blur is not None:
            x = self.blur(x)
        # The mean commutes with the conv's bias but not with the activation: pool first.
        return F.leaky_relu(F.avg_pool2d(self.conv1(x), 2), LRELU_SLOPE)


class Discriminator(progan.Discriminator):
    """StyleGAN D: `D(img [N, C, R, R], c, alpha=a) -> logits [N]`; ProGAN's growing critic
    with `D_basic`'s blocks and, with classes, one logit per class of which the label's is kept."""

    def __init__(
        self,
        c_dim: int,
        img_resolution: int,
        img_channels: int,
        channel_base: int = 16384,
        channel_max: int = 512,
        mbstd_group_size: int = 4,
        mbstd_num_channels: int = 1,
        blur: bool = True,
    ) -> None:
        super().__init__(
            img_resolution, img_channels, channel_base, channel_max, mbstd_group_size,
            mbstd_num_channels,
        )  # fmt: skip
        self.resolutions = check_resolution(img_resolution, "stylegan")
        self.c_dim = c_dim
        ch = [channels_at(r, channel_base, channel_max) for r in self.resolutions]
        for i in range(1, len(ch)):
            self.blocks[i] = StyleDBlock(ch[i], ch[i - 1], blur)
        if c_dim:
            self.blocks[0].out = EqualLinear(ch[0], c_dim, gain=1.0)

    def forward(
        self, img: torch.Tensor, c: torch.Tensor | None = None, alpha: float = 1.0
    ) -> torch.Tensor:
        logits = super().forward(img, alpha=alpha)
        y = labels_as_vectors(c, self.c_dim, img.shape[0])
        if y is None:
            return logits
        return (logits.reshape(y.shape) * y.to(logits.dtype)).sum(dim=1)


@MODELS.register(
    "stylegan",
    resolutions=(4, 8, 16, 32, 64, 128, 256, 512, 1024),
    small_arch={"z_dim": 4, "w_dim": 4, "mapping_layers": 2, "channel_base": 16, "channel_max": 4},
    labels=True,
    output_range=None,  # linear toRGB: images are not clamped to [-1, 1]
)
def build(
    img_resolution: int,
    img_channels: int,
    c_dim: int = 0,
    *,
    z_dim: int = 512,
    w_dim: int = 512,
    mapping_layers: int = 8,
    channel_base: int = 16384,
    channel_max: int = 512,
    use_styles: bool = True,
    const_input: bool = True,
    use_noise: bool = True,
    use_pixel_norm: bool = False,
    use_instance_norm: bool = True,
    blur: bool = True,
    mbstd_group_size: int = 4,
    mbstd_num_channels: int = 1,
) -> nn.ModuleDict:
    """StyleGAN (v1) G and D: mapping network, AdaIN styles, constant input, noise, growing."""
    check_resolution(img_resolution, "stylegan")
    if mapping_layers < 0:
        raise ConfigError(f"stylegan's mapping_layers must be >= 0; got {mapping_layers}")
    G = Generator(
        z_dim, c_dim, w_dim, img_resolution, img_channels, mapping_layers=mapping_layers,
        channel_base=channel_base, channel_max=channel_max, use_styles=use_styles,
        const_input=const_input, use_noise=use_noise, use_pixel_norm=use_pixel_norm,
        use_instance_norm=use_instance_norm, blur=blur,
    )  # fmt: skip
    D = Discriminator(
        c_dim, img_resolution, img_channels, channel_base, channel_max, mbstd_group_size,
        mbstd_num_channels, blur,
    )  # fmt: skip
    return nn.ModuleDict({"G": G, "D": D})
