"""ProGAN networks: Karras et al., "Progressive Growing of GANs for Improved Quality, Stability,
and Variation", ICLR 2018, arXiv:1710.10196 (Table 2, sections 3-4).

Generator: pixel-normalised z -> dense to 4x4 -> 3x3 conv, then per doubling a nearest-neighbour
upsample and two 3x3 convs; LeakyReLU(0.2) then PixelNorm after every conv; a linear 1x1 toRGB per
resolution. Discriminator mirrors it with 1x1 fromRGB, two 3x3 convs and 2x average pooling per block,
and minibatch stddev, a 3x3 conv, a 4x4 "conv" (dense) and a linear layer at 4x4. Every layer uses
the equalized learning rate. Widths are `min(channel_base // resolution, channel_max)`, which with the
defaults gives the paper's 512 up to 32x32, then 256, 128, 64, 32, 16.

Progressive growing is explicit: `G(z, resolution=R, alpha=a)` and `D(img, alpha=a)` (D reads R from the
image). With a < 1 the newest block is faded in: `(1 - a) * upsample(toRGB_prev(x_prev)) + a * toRGB(x)`
in G, and `(1 - a) * fromRGB_prev(avgpool(img)) + a * block(fromRGB(img))` in D.

G's nearest upsample and the first 3x3 conv of a block always run as one stride-2 transposed conv
(`gankit.nn.resample.upsample_conv2d`): the same function as the two layers, at 4/9 of the
multiply-adds (none spent on the copies upsampling makes); the official code's fused G layer.
`fused_scale` (default true, as in the official `D_paper`): D's second 3x3 conv and its 2x average
pooling run as one stride-2 conv, pooled before its bias and LeakyReLU (the official fused layer,
4/9 of the work); false: the separate layers of the paper's text and rosinality's port, where D
pools after the LeakyReLU. Runs saved before the option existed keep the separate D layers
(`earlier_arch`).

Deviations: the 4x4 dense layer uses the official code's gain sqrt(2)/4; toRGB is applied before the
nearest upsample on the fade-in branch (identical result, 4x cheaper). The model is unconditional.

Speed: 3x3 convolutions go through `EqualConv2d`'s CPU Winograd path where it applies, and the
fade-in branch's 2x nearest upsampling is a broadcast copy whose gradient is a 2x2 sum pooling
(`upsample2x`), several times faster on CPU than `F.interpolate`'s nearest kernel at these sizes.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from gankit.errors import ConfigError
from gankit.nn import EqualConv2d, EqualLinear, MinibatchStdDev, PixelNorm
from gankit.nn.resample import conv2d_downsample, upsample2x, upsample_conv2d
from gankit.registry import MODELS

LRELU_SLOPE = 0.2


def channels_at(resolution: int, channel_base: int, channel_max: int) -> int:
    """Feature maps at a resolution: `min(channel_base // resolution, channel_max)`, at least 1."""
    return max(1, min(channel_base // resolution, channel_max))


def check_resolution(img_resolution: int, family: str = "progan") -> list[int]:
    """The progressive resolutions 4, 8, ..., img_resolution; a clear error if not a power of two."""
    if img_resolution < 4 or img_resolution & (img_resolution - 1):
        raise ConfigError(
            f"{family} needs a power-of-two resolution >= 4 (4, 8, 16, ..., 1024); got "
            f"{img_resolution}. Pass --resolution with a power of two, e.g. --resolution 64."
        )
    return [2**i for i in range(2, int(math.log2(img_resolution)) + 1)]


class _GBlock(nn.Module):
    """Upsample 2x (nearest), then two 3x3 conv -> LeakyReLU -> PixelNorm. The upsample and the
    first conv run as one transposed conv (`upsample_conv2d`: the same values, 4/9 of the work)."""

    def __init__(self, in_ch: int, out_ch: int, pixel_norm: bool) -> None:
        super().__init__()
        self.conv0 = EqualConv2d(in_ch, out_ch, 3)
        self.conv1 = EqualConv2d(out_ch, out_ch, 3)
        self.norm = PixelNorm() if pixel_norm else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm(F.leaky_relu(upsample_conv2d(x, *self.conv0.scaled()), LRELU_SLOPE))
        return self.norm(F.leaky_relu(self.conv1(x), LRELU_SLOPE))


class _GInput(nn.Module):
    """z -> dense to 4x4 -> LeakyReLU -> PixelNorm -> 3x3 conv -> LeakyReLU -> PixelNorm."""

    def __init__(self, z_dim: int, out_ch: int, pixel_norm: bool) -> None:
        super().__init__()
        self.out_ch = out_ch
        # The official code treats this dense layer as a 4x4 transposed conv: gain sqrt(2)/4.
        self.dense = EqualLinear(z_dim, out_ch * 16, gain=math.sqrt(2.0) / 4)
        self.conv = EqualConv2d(out_ch, out_ch, 3)
        self.norm = PixelNorm() if pixel_norm else nn.Identity()

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.dense(z).reshape(-1, self.out_ch, 4, 4)
        x = self.norm(F.leaky_relu(x, LRELU_SLOPE))
        return self.norm(F.leaky_relu(self.conv(x), LRELU_SLOPE))


class Generator(nn.Module):
    """Progressive generator: `G(z [N, z_dim], resolution=R, alpha=a) -> img [N, C, R, R]`."""

    def __init__(
        self,
        z_dim: int,
        img_resolution: int,
        img_channels: int,
        channel_base: int = 16384,
        channel_max: int = 512,
        normalize_latents: bool = True,
        pixel_norm: bool = True,
    ) -> None:
        super().__init__()
        self.z_dim, self.c_dim = z_dim, 0
        self.img_resolution, self.img_channels = img_resolution, img_channels
        self.resolutions = check_resolution(img_resolution)
        ch = [channels_at(r, channel_base, channel_max) for r in self.resolutions]
        self.latent_norm = PixelNorm() if normalize_latents else nn.Identity()
        blocks: list[nn.Module] = [_GInput(z_dim, ch[0], pixel_norm)]
        blocks += [_GBlock(ch[i - 1], ch[i], pixel_norm) for i in range(1, len(ch))]
        self.blocks = nn.ModuleList(blocks)
        self.to_rgb = nn.ModuleList(EqualConv2d(c, img_channels, 1, gain=1.0) for c in ch)

    def forward(
        self,
        z: torch.Tensor,
        c: torch.Tensor | None = None,
        resolution: int | None = None,
        alpha: float = 1.0,
    ) -> torch.Tensor:
        level = self.level(resolution or self.img_resolution)
        x = self.latent_norm(z)
        prev = x
        for block in self.blocks[: level + 1]:
            prev, x = x, block(x)
        img = self.to_rgb[level](x)
        if alpha < 1.0 and level > 0:
            # toRGB (1x1) commutes with nearest upsampling, so apply it at the lower resolution.
            skip = upsample2x(self.to_rgb[level - 1](prev))
            img = torch.lerp(skip, img, alpha)
        return img

    def level(self, resolution: int) -> int:
        """Index of `resolution` in 4, 8, ..., with a clear error for others."""
        if resolution not in self.resolutions:
            raise ValueError(f"resolution {resolution} is not one of {self.resolutions}")
        return self.resolutions.index(resolution)


class _DBlock(nn.Module):
    """3x3 conv -> LeakyReLU, then `fused` (the official default): 3x3 conv with 2x average
    pooling as one stride-2 conv -> bias -> LeakyReLU; else 3x3 conv -> LeakyReLU -> pooling."""

    def __init__(self, in_ch: int, out_ch: int, fused: bool) -> None:
        super().__init__()
        self.conv0 = EqualConv2d(in_ch, in_ch, 3)
        self.conv1 = EqualConv2d(in_ch, out_ch, 3)
        self.fused = fused

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.leaky_relu(self.conv0(x), LRELU_SLOPE)
        if self.fused:
            return F.leaky_relu(conv2d_downsample(x, *self.conv1.scaled()), LRELU_SLOPE)
        return F.avg_pool2d(F.leaky_relu(self.conv1(x), LRELU_SLOPE), 2)


class _DOutput(nn.Module):
    """Minibatch stddev -> 3x3 conv -> 4x4 dense -> linear to one logit."""

    def __init__(self, in_ch: int, mbstd_group_size: int, mbstd_num_channels: int) -> None:
        super().__init__()
        # mbstd_num_channels = 0 turns the layer off (an ablation of the paper's section 3).
        self.mbstd = (
            MinibatchStdDev(mbstd_group_size, mbstd_num_channels) if mbstd_num_channels else None
        )
        self.conv = EqualConv2d(in_ch + mbstd_num_channels, in_ch, 3)
        self.dense = EqualLinear(in_ch * 16, in_ch)
        self.out = EqualLinear(in_ch, 1, gain=1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mbstd is not None:
            x = self.mbstd(x)
        x = F.leaky_relu(self.conv(x), LRELU_SLOPE)
        x = F.leaky_relu(self.dense(x.flatten(1)), LRELU_SLOPE)
        return self.out(x).squeeze(1)


class Discriminator(nn.Module):
    """Progressive critic: `D(img [N, C, R, R], alpha=a) -> logits [N]`; R is read from the image."""

    def __init__(
        self,
        img_resolution: int,
        img_channels: int,
        channel_base: int = 16384,
        channel_max: int = 512,
        mbstd_group_size: int = 4,
        mbstd_num_channels: int = 1,
        fused_scale: bool = True,
    ) -> None:
        super().__init__()
        self.c_dim = 0
        self.img_resolution, self.img_channels = img_resolution, img_channels
        self.resolutions = check_resolution(img_resolution)
        ch = [channels_at(r, channel_base, channel_max) for r in self.resolutions]
        self.from_rgb = nn.ModuleList(EqualConv2d(img_channels, c, 1) for c in ch)
        # blocks[i] maps resolution 2**(i+2) down to the one below; blocks[0] is the 4x4 output.
        blocks: list[nn.Module] = [_DOutput(ch[0], mbstd_group_size, mbstd_num_channels)]
        blocks += [_DBlock(ch[i], ch[i - 1], fused_scale) for i in range(1, len(ch))]
        self.blocks = nn.ModuleList(blocks)

    def forward(
        self, img: torch.Tensor, c: torch.Tensor | None = None, alpha: float = 1.0
    ) -> torch.Tensor:
        level = self.level(img.shape[-1])
        x = F.leaky_relu(self.from_rgb[level](img), LRELU_SLOPE)
        for i in range(level, -1, -1):
            x = self.blocks[i](x)
            if i == level > 0 and alpha < 1.0:
                skip = self.from_rgb[level - 1](F.avg_pool2d(img, 2))
                x = torch.lerp(F.leaky_relu(skip, LRELU_SLOPE), x, alpha)
        return x

    def level(self, resolution: int) -> int:
        """Index of `resolution` in 4, 8, ..., with a clear error for others."""
        if resolution not in self.resolutions:
            raise ValueError(
                f"D got {resolution}x{resolution} images; it takes one of {self.resolutions}"
            )
        return self.resolutions.index(resolution)


@MODELS.register(
    "progan",
    resolutions=(4, 8, 16, 32, 64, 128, 256, 512, 1024),
    small_arch={"z_dim": 4, "channel_base": 16, "channel_max": 4},
    output_range=None,  # linear toRGB: images are not clamped to [-1, 1]
    earlier_arch={"fused_scale": False},  # runs saved before it computed the unfused layers
)
def build(
    img_resolution: int,
    img_channels: int,
    c_dim: int = 0,
    *,
    z_dim: int = 512,
    channel_base: int = 16384,
    channel_max: int = 512,
    normalize_latents: bool = True,
    pixel_norm: bool = True,
    mbstd_group_size: int = 4,
    mbstd_num_channels: int = 1,
    fused_scale: bool = True,
) -> nn.ModuleDict:
    """ProGAN G and D (progressive growing, equalized LR, PixelNorm, minibatch stddev).

    `fused_scale` (the official code's option and default): D's second conv + pooling run as
    the official fused layer (see the module docstring); false: the separate layers."""
    if c_dim:
        raise ConfigError(
            f"progan is unconditional but the data has {c_dim} classes; train it without labels "
            "(the default) or use a conditional model."
        )
    G = Generator(
        z_dim,
        img_resolution,
        img_channels,
        channel_base,
        channel_max,
        normalize_latents,
        pixel_norm,
    )
    D = Discriminator(
        img_resolution,
        img_channels,
        channel_base,
        channel_max,
        mbstd_group_size,
        mbstd_num_channels,
        fused_scale,
    )
    return nn.ModuleDict({"G": G, "D": D})
