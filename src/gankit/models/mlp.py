"""Fully-connected GAN: Goodfellow et al., "Generative Adversarial Nets", NIPS 2014, arXiv:1406.2661,
and the 2-D mixture networks of the mode-collapse benchmarks (VEEGAN, arXiv:1705.07761; PacGAN,
arXiv:1712.04086). With `c_dim > 0` it is the conditional GAN of Mirza & Osindero, arXiv:1411.1784.

Images (the MNIST model of the paper's released pylearn2 config, goodfeli/adversarial `mnist.yaml`):
G: z (100) -> 1200 ReLU -> 1200 ReLU -> C*H*W; D: maxout 240 units x 5 pieces, twice, -> 1 logit,
with dropout: input include-probability 0.8 and 0.5 before every later layer, i.e. drop rates 0.2 on
the input and 0.5 on the hidden layers. Weights uniform in +-0.05 (G) and +-0.005 (D), biases 0.
Any square image size and channel count (images are flattened).

2-D points (fjxmlzn/PacGAN `synthetic_data_experiments`, 2DRing/2DGrid `config.py` and
`pacgan_task.py`): G: z (2) -> 4 x [400, batch norm, ReLU] (no bias before batch norm) -> 2, linear;
D: maxout 200 units x 5 pieces, three times, -> 1 logit, no batch norm. Weights N(0, 0.02), biases 0.
That code builds a dropout variant of D (0.2 input, 0.5 hidden) but trains with it switched off,
so the default dropout for points is none. gankit's default widths for points are narrower and
deeper than PacGAN's (`PACGAN_POINT_WIDTHS` gives those back): G 8 x 128, D 3 x 128 maxout. Their
steps are cheaper on a CPU, so a run of a 2-D default budget takes a fraction of the time it takes
with PacGAN's widths, and lsgan with a packed D meets both mixtures' targets with them. Depth,
not width, is what lets G jump steeply between modes instead of drawing bridges of off-mode
samples between them, and D's 3 x 128 (rather than 3 x 64) keeps more of G's samples sharp
(benchmarks/RESULTS.md, section "Narrow deep nets for the 2-D mixtures").

Deviations: G ends in tanh on [-1, 1] data where the paper used a sigmoid on [0, 1] data, and the
output bias starts at 0 rather than at the data's pixel marginals. Labels enter through a learned
embedding concatenated with z (G) and with the flattened input (D).

`Maxout` is reusable; `LabelEmbedding` and `apply_spectral_norm` are shared with the convolutional
families. `spectral_norm=True` normalises D's weights (the sngan preset on 2-D points); `pack=m`
is PacGAN's packed D (its m-sample input concatenated, hidden layers unchanged).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from gankit.errors import ConfigError
from gankit.nn.conditioning import LabelEmbedding, apply_spectral_norm, resolve_embed_dim
from gankit.nn.packing import check_pack, pack_samples
from gankit.registry import MODELS

# The values for each kind of data, used where an arch argument is left as None: the GAN paper's
# for images; PacGAN's for 2-D points except the widths (see the module docstring).
IMAGE_DEFAULTS = {
    "z_dim": 100,
    "g_hidden": (1200, 1200),
    "g_batchnorm": False,
    "d_hidden": (240, 240),
    "maxout_pieces": 5,
    "dropout": (0.2, 0.5),
}
POINT_DEFAULTS = {
    "z_dim": 2,
    "g_hidden": (128,) * 8,
    "g_batchnorm": True,
    "d_hidden": (128, 128, 128),
    "maxout_pieces": 5,
    "dropout": (0.0, 0.0),
}
#: The widths of the VEEGAN/PacGAN protocol's 2-D nets (everything else is as POINT_DEFAULTS).
PACGAN_POINT_WIDTHS = {"g_hidden": (400, 400, 400, 400), "d_hidden": (200, 200, 200)}


class Maxout(nn.Module):
    """Maxout units (Goodfellow et al. 2013, arXiv:1302.4389): `[N, in] -> [N, out]`.

    Unit j is the maximum of `pieces` affine maps, rows `j * pieces ... (j + 1) * pieces - 1` of
    one linear layer.
    """

    def __init__(self, in_features: int, out_features: int, pieces: int) -> None:
        super().__init__()
        self.out_features, self.pieces = out_features, pieces
        self.linear = nn.Linear(in_features, out_features * pieces)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x).unflatten(-1, (self.out_features, self.pieces)).amax(-1)

    def extra_repr(self) -> str:
        return f"pieces={self.pieces}"


class Generator(nn.Module):
    """`G(z [N, z_dim], c) -> img [N, C, H, W]` in [-1, 1], or points `[N, 2]` (linear output)."""

    def __init__(
        self,
        z_dim: int,
        out_shape: tuple[int, ...],
        hidden: tuple[int, ...],
        batchnorm: bool,
        c_dim: int,
        embed_dim: int,
    ) -> None:
        super().__init__()
        self.z_dim, self.c_dim, self.out_shape = z_dim, c_dim, out_shape
        self.output_kind = "points" if len(out_shape) == 1 else "images"
        self.img_channels = 0 if self.output_kind == "points" else out_shape[0]
        self.img_resolution = 0 if self.output_kind == "points" else out_shape[-1]
        self.label = LabelEmbedding(c_dim, embed_dim)
        layers: list[nn.Module] = []
        width = z_dim + self.label.embed_dim
        for h in hidden:
            # A bias before batch norm is cancelled by its mean subtraction.
            layers.append(nn.Linear(width, h, bias=not batchnorm))
            layers += [nn.BatchNorm1d(h), nn.ReLU()] if batchnorm else [nn.ReLU()]
            width = h
        layers.append(nn.Linear(width, math.prod(out_shape)))
        if self.output_kind == "images":
            layers.append(nn.Tanh())
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        if z.ndim != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"G takes z of shape [N, {self.z_dim}], got {list(z.shape)}")
        y = self.label(c, z.shape[0])
        x = z if y is None else torch.cat([z, y.to(z.dtype)], dim=1)
        return self.net(x).reshape(-1, *self.out_shape)


class Discriminator(nn.Module):
    """`D(x [N, ...], c) -> logits [N / pack]`: dropout, maxout hidden layers, a linear logit."""

    def __init__(
        self,
        in_features: int,
        hidden: tuple[int, ...],
        pieces: int,
        dropout: tuple[float, float],
        c_dim: int,
        embed_dim: int,
        pack: int = 1,
    ) -> None:
        super().__init__()
        self.c_dim, self.in_features, self.pack = c_dim, in_features, pack
        self.label = LabelEmbedding(c_dim, embed_dim)
        p_input, p_hidden = dropout
        layers: list[nn.Module] = []
        width = in_features * pack + self.label.embed_dim
        for i, h in enumerate(hidden):
            layers += [nn.Dropout(p_input if i == 0 else p_hidden), Maxout(width, h, pieces)]
            width = h
        layers += [nn.Dropout(p_hidden if hidden else p_input), nn.Linear(width, 1)]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        x = x.flatten(1)
        if x.shape[1] != self.in_features:
            raise ValueError(f"D takes {self.in_features} values per sample, got {x.shape[1]}")
        y = self.label(c, x.shape[0])
        if y is not None:
            x = torch.cat([x, y.to(x.dtype)], dim=1)
        return self.net(pack_samples(x, self.pack)).squeeze(1)


def _init_uniform(module: nn.Module, bound: float) -> None:
    """pylearn2's `irange`: weights uniform in [-bound, bound], biases 0 (embeddings untouched)."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.uniform_(m.weight, -bound, bound)
            nn.init.zeros_(m.bias)


def _init_normal(module: nn.Module, std: float) -> None:
    """Blocks' `IsotropicGaussian(std)`: weights N(0, std), biases 0 (embeddings untouched)."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def _data_shape(img_resolution: int, img_channels: int) -> tuple[int, ...]:
    """`(2,)` for 2-D points (resolution and channels both 0), else `(C, H, W)`."""
    if img_resolution == 0 and img_channels == 0:
        return (2,)
    if img_resolution < 1 or img_channels < 1:
        raise ConfigError(
            f"mlp needs a positive image resolution and channel count (or both 0 for 2-D points); "
            f"got resolution {img_resolution}, channels {img_channels}. Check --resolution/--data."
        )
    return (img_channels, img_resolution, img_resolution)


def _check_arch(hidden: tuple[int, ...], pieces: int, dropout: tuple[float, float]) -> None:
    if any(h < 1 for h in hidden):
        raise ConfigError(f"hidden layer widths must be >= 1; got {list(hidden)}")
    if pieces < 1:
        raise ConfigError(f"maxout_pieces must be >= 1; got {pieces}")
    if not all(0.0 <= p < 1.0 for p in dropout):
        raise ConfigError(f"dropout rates (input, hidden) must lie in [0, 1); got {dropout}")


@MODELS.register(
    "mlp",
    kinds=("images", "points"),
    resolutions=(8, 28),  # any square size: two representative ones
    small_arch={"z_dim": 4, "g_hidden": (4,), "d_hidden": (4,), "maxout_pieces": 2},
    labels=True,
)
def build(
    img_resolution: int,
    img_channels: int,
    c_dim: int = 0,
    *,
    z_dim: int | None = None,
    g_hidden: tuple[int, ...] | None = None,
    g_batchnorm: bool | None = None,
    d_hidden: tuple[int, ...] | None = None,
    maxout_pieces: int | None = None,
    dropout: tuple[float, float] | None = None,
    embed_dim: int | None = None,
    spectral_norm: bool = False,
    pack: int = 1,
) -> nn.ModuleDict:
    """Fully-connected G and maxout D (Goodfellow et al. 2014; 2-D mixtures: VEEGAN/PacGAN).

    Every None means the default for the data kind (see IMAGE_DEFAULTS / POINT_DEFAULTS);
    `dropout` is (input rate, hidden rate) in D; `embed_dim` defaults to `c_dim`;
    `spectral_norm` normalises every D weight (the sngan preset on 2-D points); `pack` > 1 makes
    D judge that many samples at once (PacGAN, see `gankit.nn.packing`).
    """
    shape = _data_shape(img_resolution, img_channels)
    points = len(shape) == 1
    defaults = POINT_DEFAULTS if points else IMAGE_DEFAULTS
    z_dim = defaults["z_dim"] if z_dim is None else z_dim
    g_hidden = tuple(defaults["g_hidden"] if g_hidden is None else g_hidden)
    d_hidden = tuple(defaults["d_hidden"] if d_hidden is None else d_hidden)
    g_batchnorm = defaults["g_batchnorm"] if g_batchnorm is None else g_batchnorm
    maxout_pieces = defaults["maxout_pieces"] if maxout_pieces is None else maxout_pieces
    dropout = tuple(defaults["dropout"] if dropout is None else dropout)
    if z_dim < 1:
        raise ConfigError(f"z_dim must be >= 1; got {z_dim}")
    _check_arch(g_hidden + d_hidden, maxout_pieces, dropout)
    embed = resolve_embed_dim(c_dim, embed_dim)
    G = Generator(z_dim, shape, g_hidden, g_batchnorm, c_dim, embed)
    pack = check_pack(pack, c_dim)
    D = Discriminator(math.prod(shape), d_hidden, maxout_pieces, dropout, c_dim, embed, pack)
    if points:
        _init_normal(G, 0.02)
        _init_normal(D, 0.02)
    else:
        _init_uniform(G, 0.05)
        _init_uniform(D, 0.005)
    if spectral_norm:
        apply_spectral_norm(D)  # after the init: the parametrisation keeps the drawn weights
    return nn.ModuleDict({"G": G, "D": D})


def data_arch(img_resolution: int, img_channels: int) -> dict[str, object]:
    """What each None arch argument of `build` becomes for this kind of data (images or 2-D
    points): the run's config.yaml writes these out, so it rebuilds the same networks."""
    points = len(_data_shape(img_resolution, img_channels)) == 1
    defaults = POINT_DEFAULTS if points else IMAGE_DEFAULTS
    return {k: list(v) if isinstance(v, tuple) else v for k, v in defaults.items()}  # as YAML has


build.data_defaults = data_arch  # type: ignore[attr-defined]  # read by train.run.resolve_model
