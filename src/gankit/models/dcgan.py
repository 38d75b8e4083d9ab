"""DCGAN networks: Radford et al., "Unsupervised Representation Learning with Deep Convolutional
Generative Adversarial Networks", ICLR 2016, arXiv:1511.06434 (section 3, "architecture guidelines",
and section 4 for the initialisation).

Generator: z -> a transposed conv to a 4x4 map (7x7 for 28 px) with `ngf * 2**k` channels, then
stride-2 transposed convs (kernel 4, padding 1) that double the resolution and halve the channels;
batch norm and ReLU after every layer but the last, which ends in tanh. Discriminator mirrors it:
stride-2 convs (kernel 4, padding 1) with LeakyReLU(0.2), batch norm on every conv but the first,
and a final conv over the last 4x4 (7x7) map to one logit; no fully-connected hidden layers.
Conv weights are drawn from N(0, 0.02) (section 4); batch-norm scales from N(1, 0.02) as in the
authors' Torch code (soumith/dcgan.torch); biases start at 0.

Options beyond the paper: `d_norm="layer"` (GroupNorm with one group: per-sample normalisation over
C, H, W) or `"none"` for the WGAN-GP critic, since Gulrajani et al. (arXiv:1704.00028, section 4)
advise against batch norm in a critic trained with a gradient penalty; `spectral_norm=True` wraps
every D conv in spectral normalisation (Miyato et al., arXiv:1802.05957). With `c_dim > 0` it is a
conditional GAN (Mirza & Osindero, arXiv:1411.1784): a label embedding is concatenated with z in G and
broadcast as `embed_dim` constant channels concatenated to D's input image. `pack=m` is PacDCGAN
(Lin et al., arXiv:1712.04086): D sees m images stacked on the channel axis (`gankit.nn.packing`).

Deviation: the paper's "project and reshape" of z is a dense layer; here it is the equivalent
transposed conv with a 4x4 (7x7) kernel on a 1x1 map.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from gankit.errors import ConfigError
from gankit.nn.conditioning import (
    LabelEmbedding,
    apply_spectral_norm,
    image_with_label_maps,
    resolve_embed_dim,
)
from gankit.nn.packing import check_pack, pack_samples
from gankit.registry import MODELS

LRELU_SLOPE = 0.2
# Resolution -> (side of the first feature map, number of 2x up/down-sampling layers).
LAYOUTS = {28: (7, 2), 32: (4, 3), 64: (4, 4)}
DNorm = Literal["batch", "none", "layer"]


def layout(img_resolution: int, img_channels: int) -> tuple[int, int]:
    """`(base, n)`: the first map is base x base and n stride-2 layers reach the resolution."""
    if img_resolution == 0 and img_channels == 0:
        raise ConfigError("dcgan makes images, not 2-D points; use --model mlp for 2-D data.")
    if img_resolution not in LAYOUTS:
        raise ConfigError(
            f"dcgan supports resolutions {', '.join(map(str, LAYOUTS))}; got {img_resolution}. "
            "Pass --resolution with one of them (the data is resized), or use another model."
        )
    if img_channels < 1:
        raise ConfigError(f"dcgan needs at least one image channel; got {img_channels}")
    return LAYOUTS[img_resolution]


class Generator(nn.Module):
    """`G(z [N, z_dim], c) -> img [N, C, H, W]` in [-1, 1]."""

    def __init__(
        self,
        z_dim: int,
        img_resolution: int,
        img_channels: int,
        ngf: int,
        c_dim: int,
        embed_dim: int,
    ) -> None:
        super().__init__()
        self.z_dim, self.c_dim = z_dim, c_dim
        self.img_resolution, self.img_channels = img_resolution, img_channels
        self.output_kind = "images"
        base, n = layout(img_resolution, img_channels)
        self.label = LabelEmbedding(c_dim, embed_dim)
        ch = ngf * 2 ** (n - 1)
        # Every hidden conv is followed by batch norm, whose mean subtraction cancels a bias.
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(z_dim + self.label.embed_dim, ch, base, bias=False),
            nn.BatchNorm2d(ch),
            nn.ReLU(),
        ]
        for _ in range(n - 1):
            layers += [
                nn.ConvTranspose2d(ch, ch // 2, 4, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(ch // 2),
                nn.ReLU(),
            ]
            ch //= 2
        layers += [nn.ConvTranspose2d(ch, img_channels, 4, stride=2, padding=1), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        if z.ndim != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"G takes z of shape [N, {self.z_dim}], got {list(z.shape)}")
        y = self.label(c, z.shape[0])
        x = z if y is None else torch.cat([z, y.to(z.dtype)], dim=1)
        img = self.net(x[:, :, None, None])
        assert img.shape[-1] == self.img_resolution
        return img


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "layer":
        return nn.GroupNorm(1, channels)
    return nn.Identity()


class Discriminator(nn.Module):
    """`D(img [N, C, H, W], c) -> logits [N / pack]`: strided convs only, no dense hidden layers."""

    def __init__(
        self,
        img_resolution: int,
        img_channels: int,
        ndf: int,
        d_norm: str,
        c_dim: int,
        embed_dim: int,
        pack: int = 1,
    ) -> None:
        super().__init__()
        self.c_dim, self.pack = c_dim, pack
        self.img_resolution, self.img_channels = img_resolution, img_channels
        base, n = layout(img_resolution, img_channels)
        self.label = LabelEmbedding(c_dim, embed_dim)
        layers: list[nn.Module] = [
            nn.Conv2d(img_channels * pack + self.label.embed_dim, ndf, 4, stride=2, padding=1),
            nn.LeakyReLU(LRELU_SLOPE),
        ]
        ch = ndf
        for _ in range(n - 1):
            layers += [
                nn.Conv2d(ch, ch * 2, 4, stride=2, padding=1, bias=d_norm == "none"),
                _norm(d_norm, ch * 2),
                nn.LeakyReLU(LRELU_SLOPE),
            ]
            ch *= 2
        layers.append(nn.Conv2d(ch, 1, base))  # the whole base x base map -> one logit
        self.net = nn.Sequential(*layers)

    def forward(self, img: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        img = image_with_label_maps(img, c, self.label, self.img_channels, self.img_resolution)
        return self.net(pack_samples(img, self.pack)).flatten()


def init_weights(module: nn.Module) -> None:
    """The paper's initialisation: conv weights N(0, 0.02), batch-norm scales N(1, 0.02), biases 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


@MODELS.register(
    "dcgan", resolutions=tuple(LAYOUTS), small_arch={"z_dim": 4, "ngf": 1, "ndf": 1}, labels=True
)
def build(
    img_resolution: int,
    img_channels: int,
    c_dim: int = 0,
    *,
    z_dim: int = 100,
    ngf: int = 64,
    ndf: int = 64,
    d_norm: DNorm = "batch",
    spectral_norm: bool = False,
    embed_dim: int | None = None,
    pack: int = 1,
) -> nn.ModuleDict:
    """DCGAN G and D (Radford et al. 2016) at 28, 32 or 64 px; optional layer/no norm and SN in D.

    `pack` > 1 makes D judge that many images at once, stacked on the channel axis (PacDCGAN).
    """
    if d_norm not in ("batch", "none", "layer"):
        raise ConfigError(
            f"dcgan d_norm must be 'batch', 'layer' or 'none'; got {d_norm!r} "
            "(use 'layer' or 'none' with a gradient penalty)"
        )
    if min(z_dim, ngf, ndf) < 1:
        raise ConfigError(f"z_dim, ngf and ndf must be >= 1; got {z_dim}, {ngf}, {ndf}")
    embed = resolve_embed_dim(c_dim, embed_dim)
    G = Generator(z_dim, img_resolution, img_channels, ngf, c_dim, embed)
    D = Discriminator(
        img_resolution, img_channels, ndf, d_norm, c_dim, embed, check_pack(pack, c_dim)
    )
    init_weights(G)
    init_weights(D)
    if spectral_norm:
        apply_spectral_norm(D)  # after the init: the parametrisation keeps the drawn weights
    return nn.ModuleDict({"G": G, "D": D})
