"""Blocks shared by the conditional and spectrally normalised model families.

- Label embedding: Mirza & Osindero 2014 (arXiv:1411.1784) concatenate a label code with z and
  with D's input; here a learned embedding, as wide as a one-hot label by default.
- Spectral normalisation: Miyato et al. 2018 (arXiv:1802.05957).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as with_spectral_norm

from gankit.errors import ConfigError


class LabelEmbedding(nn.Module):
    """Class labels int64 `[N]` -> learned vectors `[N, embed_dim]`; None for an unconditional net.

    Checks the contract: a conditional net (c_dim > 0) needs labels, an unconditional one refuses them.
    """

    def __init__(self, c_dim: int, embed_dim: int) -> None:
        super().__init__()
        self.c_dim = c_dim
        self.embed_dim = embed_dim if c_dim else 0
        self.embed = nn.Embedding(c_dim, embed_dim) if c_dim else None

    def forward(self, c: torch.Tensor | None, batch: int) -> torch.Tensor | None:
        if self.embed is None:
            if c is not None:
                raise ValueError(
                    "this model is unconditional (c_dim = 0) but was given labels c; "
                    "call it without c, or build it with c_dim > 0"
                )
            return None
        if c is None:
            raise ValueError(
                f"this model is conditional on {self.c_dim} classes: pass the labels c "
                "(int64 [N]) as well"
            )
        if c.shape != (batch,):
            raise ValueError(f"labels c must have shape [{batch}], got {list(c.shape)}")
        return self.embed(c)


def apply_spectral_norm(module: nn.Module) -> None:
    """Spectral normalisation (Miyato et al. 2018, arXiv:1802.05957) of every conv and linear weight."""
    for m in list(module.modules()):
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            with_spectral_norm(m)


def resolve_embed_dim(c_dim: int, embed_dim: int | None) -> int:
    """The label embedding width: as wide as a one-hot label (Mirza & Osindero) unless given."""
    width = c_dim if embed_dim is None else embed_dim
    if c_dim and width < 1:
        raise ConfigError(f"embed_dim must be >= 1 for a conditional model; got {embed_dim}")
    return width


def image_with_label_maps(
    img: torch.Tensor, c: torch.Tensor | None, label: LabelEmbedding, channels: int, resolution: int
) -> torch.Tensor:
    """A conv D's input: check `img` is `[N, channels, resolution, resolution]`, then append the
    label embedding as constant feature maps (so the first conv sees it at every position)."""
    if img.shape[1:] != (channels, resolution, resolution):
        raise ValueError(
            f"D takes images [N, {channels}, {resolution}, {resolution}], got {list(img.shape)}"
        )
    y = label(c, img.shape[0])
    if y is None:
        return img
    maps = y.to(img.dtype)[:, :, None, None].expand(-1, -1, *img.shape[2:])
    return torch.cat([img, maps], dim=1)
