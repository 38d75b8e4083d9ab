"""ResNet GAN of SN-GAN: Miyato et al., "Spectral Normalization for Generative Adversarial Networks",
ICLR 2018, arXiv:1802.05957 (appendix B.4, Table 4, the CIFAR-10 ResNet; blocks as in its code,
pfnet-research/sngan_projection `gen_models/resnet_32.py`, `dis_models/snresnet_32.py`). Without
spectral normalisation it is the ResNet critic of WGAN-GP (Gulrajani et al., arXiv:1704.00028,
igul222/improved_wgan_training `gan_cifar_resnet.py`), which Table 4 says it follows.

Generator: z (128) -> linear -> 4x4 x 256 -> three up-blocks (BN, ReLU, 2x nearest upsample, 3x3
conv, BN, ReLU, 3x3 conv; shortcut: upsample then 1x1 conv) -> BN, ReLU, 3x3 conv to C, tanh.
Discriminator: an "optimized" first block (3x3 conv, ReLU, 3x3 conv, 2x average pool; shortcut: pool
then 1x1 conv) to 128 channels, a down-block, two blocks without resampling (identity shortcut),
then ReLU, global sum pooling and a linear layer (no bias) to one logit. `spectral_norm=True`
normalises every D conv and linear weight. Initialisation as in the SN-GAN code: Glorot-uniform
weights, gain sqrt(2) on the residual convs and 1 on the shortcuts, the linear layers and G's output
conv; biases 0.

Resolutions: 32 (the paper's) and 64, which adds one up-block to G and one down-block to D with the
same widths (SN-GAN's own 64 px models widen with depth instead). The WGAN-GP ResNet differs in
details that are arch arguments or recipe choices here: its G has 128 channels
(`g_channels=128`; SN-GAN doubled them, appendix B.2) and its critic averages rather than sums over positions (a constant factor the
linear layer absorbs). With `c_dim > 0` labels enter as in the conditional GAN of Mirza & Osindero
(arXiv:1411.1784): an embedding concatenated with z in G, and broadcast as constant channels
concatenated to D's input (not the projection discriminator of Miyato & Koyama).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from gankit.errors import ConfigError
from gankit.nn.conditioning import (
    LabelEmbedding,
    apply_spectral_norm,
    image_with_label_maps,
    resolve_embed_dim,
)
from gankit.nn.resample import upsample2x
from gankit.registry import MODELS

RESOLUTIONS = (32, 64)


def check_resolution(img_resolution: int, img_channels: int) -> int:
    """The number of 2x resampling steps between 4x4 and the image (3 at 32 px)."""
    if img_resolution == 0 and img_channels == 0:
        raise ConfigError("resnet makes images, not 2-D points; use --model mlp for 2-D data.")
    if img_resolution not in RESOLUTIONS:
        raise ConfigError(
            f"resnet supports resolutions {', '.join(map(str, RESOLUTIONS))}; got "
            f"{img_resolution}. Pass --resolution 32 (or 64), or use --model dcgan."
        )
    if img_channels < 1:
        raise ConfigError(f"resnet needs at least one image channel; got {img_channels}")
    return int(math.log2(img_resolution // 4))


def _conv(in_ch: int, out_ch: int, kernel: int, gain: float) -> nn.Conv2d:
    conv = nn.Conv2d(in_ch, out_ch, kernel, padding=kernel // 2)
    nn.init.xavier_uniform_(conv.weight, gain)
    nn.init.zeros_(conv.bias)
    return conv


def _linear(in_features: int, out_features: int, bias: bool = True) -> nn.Linear:
    linear = nn.Linear(in_features, out_features, bias=bias)
    nn.init.xavier_uniform_(linear.weight)
    if bias:
        nn.init.zeros_(linear.bias)
    return linear


class _GBlock(nn.Module):
    """Residual up-block: `[N, C, H, W] -> [N, C', 2H, 2W]`."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.bn1, self.bn2 = nn.BatchNorm2d(in_ch), nn.BatchNorm2d(out_ch)
        self.conv1 = _conv(in_ch, out_ch, 3, math.sqrt(2))
        self.conv2 = _conv(out_ch, out_ch, 3, math.sqrt(2))
        self.shortcut = _conv(in_ch, out_ch, 1, 1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(upsample2x(F.relu(self.bn1(x))))
        h = self.conv2(F.relu(self.bn2(h)))
        return h + self.shortcut(upsample2x(x))


class Generator(nn.Module):
    """`G(z [N, z_dim], c) -> img [N, C, H, W]` in [-1, 1]."""

    def __init__(
        self,
        z_dim: int,
        img_resolution: int,
        img_channels: int,
        channels: int,
        c_dim: int,
        embed_dim: int,
    ) -> None:
        super().__init__()
        self.z_dim, self.c_dim = z_dim, c_dim
        self.img_resolution, self.img_channels = img_resolution, img_channels
        self.output_kind = "images"
        self.channels = channels
        n_up = check_resolution(img_resolution, img_channels)
        self.label = LabelEmbedding(c_dim, embed_dim)
        self.dense = _linear(z_dim + self.label.embed_dim, 16 * channels)
        self.blocks = nn.Sequential(*(_GBlock(channels, channels) for _ in range(n_up)))
        self.bn = nn.BatchNorm2d(channels)
        self.out = _conv(channels, img_channels, 3, 1.0)

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        if z.ndim != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"G takes z of shape [N, {self.z_dim}], got {list(z.shape)}")
        y = self.label(c, z.shape[0])
        x = z if y is None else torch.cat([z, y.to(z.dtype)], dim=1)
        x = self.blocks(self.dense(x).reshape(-1, self.channels, 4, 4))
        return torch.tanh(self.out(F.relu(self.bn(x))))


class _DBlockFirst(nn.Module):
    """The "optimized" first D block (no ReLU on the raw image): `[N, C, H, W] -> [N, C', H/2, W/2]`."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.conv1 = _conv(in_ch, out_ch, 3, math.sqrt(2))
        self.conv2 = _conv(out_ch, out_ch, 3, math.sqrt(2))
        self.shortcut = _conv(in_ch, out_ch, 1, 1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.avg_pool2d(self.conv2(F.relu(self.conv1(x))), 2)
        return h + self.shortcut(F.avg_pool2d(x, 2))


class _DBlock(nn.Module):
    """Residual D block, optionally halving the resolution; identity shortcut when it can."""

    def __init__(self, in_ch: int, out_ch: int, down: bool) -> None:
        super().__init__()
        self.down = down
        self.conv1 = _conv(in_ch, in_ch, 3, math.sqrt(2))
        self.conv2 = _conv(in_ch, out_ch, 3, math.sqrt(2))
        self.shortcut = _conv(in_ch, out_ch, 1, 1.0) if down or in_ch != out_ch else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv2(F.relu(self.conv1(F.relu(x))))
        s = x if self.shortcut is None else self.shortcut(x)
        if self.down:
            h, s = F.avg_pool2d(h, 2), F.avg_pool2d(s, 2)
        return h + s


class Discriminator(nn.Module):
    """`D(img [N, C, H, W], c) -> logits [N]`."""

    def __init__(
        self,
        img_resolution: int,
        img_channels: int,
        channels: int,
        c_dim: int,
        embed_dim: int,
    ) -> None:
        super().__init__()
        self.c_dim = c_dim
        self.img_resolution, self.img_channels = img_resolution, img_channels
        # The last feature map is 8x8 at every resolution: one fewer down step than G's up steps.
        n_down = check_resolution(img_resolution, img_channels) - 1
        self.label = LabelEmbedding(c_dim, embed_dim)
        blocks: list[nn.Module] = [_DBlockFirst(img_channels + self.label.embed_dim, channels)]
        blocks += [_DBlock(channels, channels, down=True) for _ in range(n_down - 1)]
        blocks += [_DBlock(channels, channels, down=False) for _ in range(2)]
        self.blocks = nn.Sequential(*blocks)
        self.out = _linear(channels, 1, bias=False)

    def forward(self, img: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        img = image_with_label_maps(img, c, self.label, self.img_channels, self.img_resolution)
        h = F.relu(self.blocks(img)).sum(dim=(2, 3))  # global sum pooling
        return self.out(h).squeeze(1)


@MODELS.register(
    "resnet",
    resolutions=RESOLUTIONS,
    small_arch={"z_dim": 4, "g_channels": 4, "d_channels": 4},  # 1: ReLUs can all die
    labels=True,
)
def build(
    img_resolution: int,
    img_channels: int,
    c_dim: int = 0,
    *,
    z_dim: int = 128,
    g_channels: int = 256,
    d_channels: int = 128,
    spectral_norm: bool = True,
    embed_dim: int | None = None,
) -> nn.ModuleDict:
    """SN-GAN's CIFAR ResNet G and D (spectral norm in D); without SN, WGAN-GP's ResNet critic."""
    if min(z_dim, g_channels, d_channels) < 1:
        raise ConfigError(
            f"z_dim, g_channels and d_channels must be >= 1; got {z_dim}, {g_channels}, {d_channels}"
        )
    embed = resolve_embed_dim(c_dim, embed_dim)
    G = Generator(z_dim, img_resolution, img_channels, g_channels, c_dim, embed)
    D = Discriminator(img_resolution, img_channels, d_channels, c_dim, embed)
    if spectral_norm:
        apply_spectral_norm(D)
    return nn.ModuleDict({"G": G, "D": D})
