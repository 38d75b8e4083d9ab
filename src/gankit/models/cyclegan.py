"""CycleGAN's networks (Zhu et al., ICCV 2017, arXiv:1703.10593), as the official
junyanz/pytorch-CycleGAN-and-pix2pix `models/networks.py` builds them.

The model `cyclegan` is four networks: `G_ab` (A -> B), `G_ba` (B -> A), `D_a` (judges domain A
images) and `D_b` (judges domain B). The official code calls them G_A, G_B, D_B and D_A: its D_A
judges G_A's output, i.e. domain B; gankit names each discriminator after the domain it judges.
Each generator maps its source domain's channel count to its target's, so a greyscale domain
stays one channel beside an RGB one.

- ResNet generator (`netG: resnet`, the default): reflection pad 3, 7x7 conv to `ngf`, norm, ReLU;
  two stride-2 3x3 convs (ngf -> 2 ngf -> 4 ngf); `n_blocks` residual blocks (reflection pad 1,
  3x3 conv, norm, ReLU, optional dropout 0.5, reflection pad 1, 3x3 conv, norm; plus the input);
  two stride-2 3x3 transposed convs (output padding 1) back to `ngf`; reflection pad 3, 7x7 conv
  to the target's channels, tanh. `n_blocks` by default: 9 at 256 px and above, 6 below (the
  official `resnet_9blocks` / `resnet_6blocks`). Takes any size divisible by 4.
- U-Net generator (`netG: unet`): `num_downs` 4x4 stride-2 convs, each level's input concatenated
  onto its transposed-conv output (official `unet_256` has 8, `unet_128` 7; default log2 of the
  resolution); widths ngf, 2, 4, then 8 ngf; dropout on the 8-ngf middle levels when asked.
  Takes sizes divisible by 2^num_downs.
- PatchGAN discriminator (`netD: basic`, i.e. `n_layers_d` 3: the 70x70 PatchGAN; any
  `n_layers_d` for `netD: n_layers`): 4x4 convs with padding 1, stride 2 for the first
  `n_layers_d`, widths ndf * min(2^n, 8), LeakyReLU 0.2, norm after all but the first; one 4x4
  stride-1 conv at ndf * min(2^n_layers_d, 8), then a 4x4 conv to one channel: a map of scores,
  one per overlapping patch of `receptive_field(n_layers_d)` pixels. `netD: pixel` is the 1x1
  PixelGAN.
- Norm (`norm`): `instance` (the CycleGAN default: no affine parameters, no running statistics,
  so training and test mode compute the same), `batch` (affine, running statistics) or `none`.
  Convs have a bias exactly where the official code gives them one: not before batch norm.
- Weights N(0, 0.02), biases 0, batch-norm scales N(1, 0.02) (`init_gain`: the std).

The module layout (`model.N.weight`, `conv_block`) is the official one, so the official
generators' and discriminators' state dicts load into these networks.

Deliberate deviations:
- `norm: none` keeps the convs' biases; the official code drops them there too (its `use_bias`
  test only recognises instance norm), leaving a net without norm and without biases.
- The U-Net's skip connection carries LeakyReLU(x), not x, as in the official code (whose
  in-place LeakyReLU changes x before `torch.cat([x, model(x)])` reads it); gankit computes it
  out of place, so the function is the official one but written down.
- Any `num_downs` of 2 and up builds (the official builder needs 5 and up); the widths follow the
  official progression cut short.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import nn

from gankit.errors import ConfigError
from gankit.registry import MODELS

Norm = Literal["instance", "batch", "none"]
NORMS = ("instance", "batch", "none")


def norm_layer(kind: Norm, channels: int) -> nn.Module:
    """The official `get_norm_layer(kind)(channels)`."""
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)
    if kind == "batch":
        return nn.BatchNorm2d(channels, affine=True, track_running_stats=True)
    return nn.Identity()


class ResnetBlock(nn.Module):
    """x + (pad, conv 3x3, norm, ReLU, [dropout], pad, conv 3x3, norm)(x)."""

    def __init__(self, dim: int, norm: Norm, dropout: bool) -> None:
        super().__init__()
        bias = norm != "batch"
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=bias), norm_layer(norm, dim),
            nn.ReLU(True),
        ]  # fmt: skip
        if dropout:
            layers.append(nn.Dropout(0.5))
        layers += [nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=bias), norm_layer(norm, dim)]
        self.conv_block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv_block(x)


class ResnetGenerator(nn.Module):
    """c7s1-ngf, d2ngf, d4ngf, `n_blocks` x R4ngf, u2ngf, ungf, c7s1-out, tanh."""

    def __init__(
        self, c_in: int, c_out: int, *, ngf: int = 64, n_blocks: int = 9, norm: Norm = "instance",
        dropout: bool = False,
    ) -> None:  # fmt: skip
        super().__init__()
        self.img_channels_in, self.img_channels = c_in, c_out
        self.size_multiple = 4  # what an input's sides must divide by: two stride-2 convs
        bias = norm != "batch"
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3), nn.Conv2d(c_in, ngf, 7, bias=bias), norm_layer(norm, ngf),
            nn.ReLU(True),
        ]  # fmt: skip
        for mult in (1, 2):
            width = ngf * mult
            layers += [
                nn.Conv2d(width, width * 2, 3, stride=2, padding=1, bias=bias),
                norm_layer(norm, width * 2), nn.ReLU(True),
            ]  # fmt: skip
        layers += [ResnetBlock(ngf * 4, norm, dropout) for _ in range(n_blocks)]
        for mult in (4, 2):
            width = ngf * mult
            layers += [
                nn.ConvTranspose2d(width, width // 2, 3, 2, padding=1, output_padding=1, bias=bias),
                norm_layer(norm, width // 2), nn.ReLU(True),
            ]  # fmt: skip
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, c_out, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class UnetLevel(nn.Module):
    """One U-Net level: down (4x4 stride 2), the inner levels, up (4x4 transposed stride 2); every
    level but the outermost returns [LeakyReLU(x), up(...)] along the channels."""

    def __init__(
        self, outer: int, inner: int, *, c_in: int | None = None, inside: nn.Module | None = None,
        outermost: bool = False, norm: Norm = "instance", dropout: bool = False,
    ) -> None:  # fmt: skip
        super().__init__()
        bias = norm != "batch"
        self.outermost = outermost
        down_conv = nn.Conv2d(c_in or outer, inner, 4, stride=2, padding=1, bias=bias)
        up_in = inner if inside is None else inner * 2  # the innermost level has no skip below it
        if outermost:
            up = [nn.ReLU(True), nn.ConvTranspose2d(up_in, outer, 4, 2, 1), nn.Tanh()]
            layers = [down_conv, inside, *up]
        else:
            down = [nn.LeakyReLU(0.2), down_conv]
            if inside is not None:
                down.append(norm_layer(norm, inner))
            up = [
                nn.ReLU(True), nn.ConvTranspose2d(up_in, outer, 4, 2, 1, bias=bias),
                norm_layer(norm, outer),
            ]  # fmt: skip
            if dropout:
                up.append(nn.Dropout(0.5))
            layers = [*down, *([inside] if inside is not None else []), *up]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.outermost:
            return self.model(x)
        # The official in-place LeakyReLU turns x into LeakyReLU(x) before the skip reads it.
        return torch.cat([nn.functional.leaky_relu(x, 0.2), self.model(x)], 1)


class UnetGenerator(nn.Module):
    """`num_downs` U-Net levels, widths ngf * min(2^level, 8), tanh output."""

    def __init__(
        self, c_in: int, c_out: int, *, num_downs: int = 8, ngf: int = 64,
        norm: Norm = "instance", dropout: bool = False,
    ) -> None:  # fmt: skip
        super().__init__()
        self.img_channels_in, self.img_channels = c_in, c_out
        self.size_multiple = 2**num_downs
        widths = [ngf * min(2**level, 8) for level in range(num_downs)]
        level: nn.Module | None = None
        for i in reversed(range(num_downs)):
            outer = c_out if i == 0 else widths[i - 1]
            middle = 4 <= i < num_downs - 1  # the official 8-ngf levels that take dropout
            level = UnetLevel(
                outer, widths[i], c_in=c_in if i == 0 else None, inside=level, outermost=i == 0,
                norm=norm, dropout=dropout and middle,
            )  # fmt: skip
        self.model = level

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class NLayerDiscriminator(nn.Module):
    """The PatchGAN: `n_layers` stride-2 4x4 convs, a stride-1 one, a 4x4 conv to one channel."""

    def __init__(self, c_in: int, *, ndf: int = 64, n_layers: int = 3, norm: Norm = "instance"):
        super().__init__()
        bias = norm != "batch"
        layers: list[nn.Module] = [nn.Conv2d(c_in, ndf, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        width = ndf
        for n in range(1, n_layers + 1):
            out = ndf * min(2**n, 8)
            stride = 2 if n < n_layers else 1
            layers += [
                nn.Conv2d(width, out, 4, stride, 1, bias=bias), norm_layer(norm, out),
                nn.LeakyReLU(0.2, True),
            ]  # fmt: skip
            width = out
        layers.append(nn.Conv2d(width, 1, 4, 1, 1))
        self.model = nn.Sequential(*layers)
        self.n_layers = n_layers

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class PixelDiscriminator(nn.Module):
    """The 1x1 PixelGAN: one score per pixel."""

    def __init__(self, c_in: int, *, ndf: int = 64, norm: Norm = "instance") -> None:
        super().__init__()
        bias = norm != "batch"
        self.net = nn.Sequential(
            nn.Conv2d(c_in, ndf, 1), nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf, ndf * 2, 1, bias=bias), norm_layer(norm, ndf * 2),
            nn.LeakyReLU(0.2, True), nn.Conv2d(ndf * 2, 1, 1, bias=bias),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def receptive_field(n_layers: int) -> int:
    """The side in pixels of the patch one PatchGAN score sees: 70 for n_layers 3."""
    field = 1
    for _ in range(2):  # the last two 4x4 stride-1 convs
        field += 3
    for _ in range(n_layers):  # each stride-2 4x4 conv, innermost first
        field = field * 2 + 2
    return field


def patch_map_side(resolution: int, n_layers: int) -> int:
    """The side of the PatchGAN's score map for a `resolution` px input."""
    side = resolution
    for _ in range(n_layers):
        side = side // 2
    return side - 2  # two stride-1 4x4 convs with padding 1 take one pixel each


def init_weights(net: nn.Module, gain: float) -> None:
    """The official `init_weights(net, 'normal', gain)`."""
    for module in net.modules():
        if isinstance(module, nn.Conv2d | nn.ConvTranspose2d):
            nn.init.normal_(module.weight, 0.0, gain)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.normal_(module.weight, 1.0, gain)
            nn.init.zeros_(module.bias)


def default_blocks(resolution: int) -> int:
    """The official advice: 9 residual blocks at 256 px and above, 6 below."""
    return 9 if resolution >= 256 else 6


def _check(value: object, allowed: tuple[str, ...], key: str) -> None:
    if value not in allowed:
        raise ConfigError(f"model.arch.{key} must be one of {', '.join(allowed)}; got {value!r}")


def _check_sizes(resolution: int, netD: str, n_layers_d: int, generator: nn.Module) -> None:
    """Refuse a resolution the nets cannot take, naming the setting that fixes it."""
    multiple = generator.size_multiple
    if resolution % multiple:
        raise ConfigError(
            f"the generator takes sizes divisible by {multiple}, but the images are {resolution} "
            "px; choose --resolution a multiple of it (or fewer U-Net levels: model.arch.num_downs)"
        )
    if netD != "pixel" and patch_map_side(resolution, n_layers_d) < 1:
        fits = [n for n in range(1, n_layers_d) if patch_map_side(resolution, n) >= 1]
        fix = f"set model.arch.n_layers_d={fits[-1]}" if fits else "use model.arch.netD=pixel"
        raise ConfigError(
            f"a PatchGAN with n_layers_d={n_layers_d} needs images of at least "
            f"{3 * 2**n_layers_d} px, but they are {resolution} px; {fix} (with netD=n_layers)"
        )


def _discriminator(c_in: int, netD: str, ndf: int, n_layers_d: int, norm: Norm) -> nn.Module:
    if netD == "pixel":
        return PixelDiscriminator(c_in, ndf=ndf, norm=norm)
    layers = 3 if netD == "basic" else n_layers_d
    return NLayerDiscriminator(c_in, ndf=ndf, n_layers=layers, norm=norm)


@MODELS.register(
    "cyclegan",
    kinds=("unpaired",),
    resolutions=(8, 16, 32),
    small_arch={"ngf": 2, "ndf": 2, "n_blocks": 1, "netD": "n_layers", "n_layers_d": 1},
)
def build(
    img_resolution: int,
    img_channels: int,
    c_dim: int = 0,
    img_channels_b: int = 3,
    *,
    netG: Literal["resnet", "unet"] = "resnet",
    ngf: int = 64,
    n_blocks: int | None = None,
    num_downs: int | None = None,
    netD: Literal["basic", "n_layers", "pixel"] = "basic",
    ndf: int = 64,
    n_layers_d: int = 3,
    norm: Norm = "instance",
    dropout: bool = False,
    init_gain: float = 0.02,
) -> nn.ModuleDict:
    """CycleGAN's G_ab, G_ba (ResNet or U-Net) and D_a, D_b (PatchGAN or PixelGAN; Zhu 2017).

    Domain A has `img_channels` channels, B `img_channels_b`."""
    _check(netG, ("resnet", "unet"), "netG")
    _check(netD, ("basic", "n_layers", "pixel"), "netD")
    _check(norm, NORMS, "norm")
    if c_dim:
        raise ConfigError("cyclegan takes no class labels")
    if netD == "basic":
        n_layers_d = 3
    a, b = img_channels, img_channels_b

    def generator(c_in: int, c_out: int) -> nn.Module:
        if netG == "unet":
            downs = num_downs or int(math.log2(img_resolution))
            return UnetGenerator(c_in, c_out, num_downs=downs, ngf=ngf, norm=norm, dropout=dropout)
        blocks = default_blocks(img_resolution) if n_blocks is None else n_blocks
        return ResnetGenerator(c_in, c_out, ngf=ngf, n_blocks=blocks, norm=norm, dropout=dropout)

    nets = nn.ModuleDict(
        {
            "G_ab": generator(a, b),
            "G_ba": generator(b, a),
            "D_a": _discriminator(a, netD, ndf, n_layers_d, norm),
            "D_b": _discriminator(b, netD, ndf, n_layers_d, norm),
        }
    )
    _check_sizes(img_resolution, netD, n_layers_d, nets["G_ab"])
    for net in nets.values():
        init_weights(net, init_gain)
        net.img_resolution = img_resolution  # trained at; the nets take other sizes too
    return nets
