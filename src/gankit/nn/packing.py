"""PacGAN packing: the discriminator judges `pack` samples at once.

Lin, Khetan, Fanti and Oh, "PacGAN: The power of two samples in generative adversarial networks",
NeurIPS 2018, arXiv:1712.04086. D's input is `pack` samples of the same kind (all real or all
generated) concatenated along the feature (MLP) or channel (conv) axis, so one logit judges the
joint distribution of `pack` independent draws; a generator that drops modes is then penalised much
more strongly. Nothing else changes: the losses see `N / pack` logits instead of `N`.
"""

from __future__ import annotations

import torch

from gankit.errors import ConfigError


def check_pack(pack: int, c_dim: int) -> int:
    """Validate the `pack` arch argument of a discriminator; returns it."""
    if isinstance(pack, bool) or not isinstance(pack, int) or pack < 1:
        raise ConfigError(f"model.arch.pack must be an integer >= 1 (1 = no packing); got {pack!r}")
    if pack > 1 and c_dim:
        raise ConfigError(
            "model.arch.pack > 1 (PacGAN) is for unconditional models; this one is conditional "
            f"on {c_dim} classes: set pack=1 or train an unconditional recipe"
        )
    return pack


def check_pack_batch(batch: int, pack: int) -> None:
    """A packed D splits every batch into groups of `pack`; refuse a batch it cannot split."""
    if batch % pack:
        raise ConfigError(
            f"a packed discriminator (model.arch.pack={pack}) needs a batch divisible by {pack}; "
            f"got {batch}: set --batch (train.batch_size) to a multiple of {pack}"
        )


def pack_samples(x: torch.Tensor, pack: int) -> torch.Tensor:
    """`[N, C, ...]` -> `[N / pack, pack * C, ...]`: consecutive samples side by side on axis 1."""
    if pack == 1:
        return x
    n = x.shape[0]
    check_pack_batch(n, pack)
    return x.reshape(n // pack, pack * x.shape[1], *x.shape[2:])
