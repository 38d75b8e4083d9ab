"""Moving averages of networks (G_ema), parameterised by a half-life in images.

A recipe declares which nets are averaged (`Recipe.averaged()`, `{"G_ema": "G"}` by default);
`Averages` keeps them and gives batch-norm layers precise statistics before they are used.

The half-life ramps up with training (StyleGAN2-ADA, Karras et al. 2020, arXiv:2006.06676,
`training_loop.py`: `ema_nimg = min(ema_nimg, cur_nimg * ema_rampup)`, 0.05 in its `auto` and
`cifar` configs), for every recipe that averages.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from gankit.errors import ConfigError
from gankit.nets import draw_latents
from gankit.nn.batchnorm import batchnorm_layers, recompute_batchnorm_stats

#: Latents an average's batch-norm statistics are recomputed from before it samples or is saved,
#: and how many go through at once (see gankit.nn.batchnorm). Points: one chunk, so eval mode
#: gives what train mode gives on 16k latents. Images: conv statistics also average over pixels.
BN_STATS_SAMPLES = {"points": (16384, 16384), "images": (1024, 256)}


def ema_beta(
    global_batch: int, ema_kimg: float, cur_nimg: int | None = None, rampup: float = 0.0
) -> float:
    """Per-step decay so that weights halve their influence after `ema_kimg` thousand images.

    With `rampup` > 0 the half-life grows with training as in StyleGAN2-ADA's `ema_rampup`:
    `min(ema_kimg * 1000, cur_nimg * rampup)` images, so at `cur_nimg` 0 G_ema copies G and a
    short run's G_ema shows what G has learned instead of the random initialisation.
    """
    if ema_kimg <= 0:
        return 0.0
    half_life = ema_kimg * 1000.0
    if rampup > 0 and cur_nimg is not None:
        half_life = min(half_life, cur_nimg * rampup)
    if half_life <= 0:
        return 0.0
    return 0.5 ** (global_batch / half_life)


class MovingAverage:
    """Keeps `ema` an exponential moving average of `source`, a network of the same structure.

    The tensors are listed once: walking the module tree at every step cost a small 2-D G
    about a tenth of its training step. Loading a state dict copies into the same tensors, so
    the lists stay valid across resumes.
    """

    def __init__(self, ema: nn.Module, source: nn.Module) -> None:
        self.ema_params = list(ema.parameters())
        self.source_params = [p.detach() for p in source.parameters()]
        self.ema_buffers = list(ema.buffers())
        self.source_buffers = list(source.buffers())
        if len(self.ema_params) != len(self.source_params) or len(self.ema_buffers) != len(
            self.source_buffers
        ):
            raise ValueError("G_ema and G have different structures")

    @torch.no_grad()
    def update(self, beta: float) -> None:
        """ema <- beta * ema + (1 - beta) * source for parameters; buffers are copied."""
        if beta == 0.0:
            torch._foreach_copy_(self.ema_params, self.source_params)
        else:
            torch._foreach_lerp_(self.ema_params, self.source_params, 1.0 - beta)
        if self.ema_buffers:
            torch._foreach_copy_(self.ema_buffers, self.source_buffers)


class Averages:
    """The averaged copies of networks a recipe declares (`{"G_ema": "G"}`), in eval mode.

    `nets` maps each average's name to its module; checkpoints store them beside the nets under
    those names.
    """

    def __init__(self, nets: nn.ModuleDict, declared: dict[str, str], seed: int = 0) -> None:
        for name, source in declared.items():
            if source not in nets or name in nets:
                raise ConfigError(
                    f"the recipe averages {source!r} as {name!r}, but the model's networks are "
                    f"{sorted(nets)}: the source must be one of them and the name a new one"
                )
        self.nets = {
            name: copy.deepcopy(nets[src]).eval().requires_grad_(False)
            for name, src in declared.items()
        }
        self._followers = [MovingAverage(self.nets[n], nets[s]) for n, s in declared.items()]
        self.seed = seed
        self._stats_for: dict[str, Any] = {}  # name -> the (nimg, stage) of the last recompute

    def update(self, beta: float) -> None:
        """One step of every average (see `ema_beta`)."""
        for follower in self._followers:
            follower.update(beta)

    def loaded(self) -> None:
        """Forget the statistics' recompute marks after a checkpoint was loaded."""
        self._stats_for.clear()

    def refresh_batchnorm(self, kwargs: dict[str, Any], when: Any) -> None:
        """Give the averages' batch-norm layers precise statistics for their current weights.

        Their running statistics are copied from the source (an average of its last few dozen
        minibatches), noisy enough to move 2-D samples by several sigma between snapshots
        (gankit.nn.batchnorm). Done before an average samples, is scored or is saved, from the
        same seeded latents every time, so it depends on the weights only; the next step copies
        the buffers again, so training and exact resume are untouched. `when` (e.g. the image
        count and stage) skips a second recompute for the same weights.
        """
        for name, net in self.nets.items():
            if self._stats_for.get(name) == when or not _samples_latents(net):
                continue
            _recompute_stats(net, kwargs, self.seed)
            self._stats_for[name] = when


def _samples_latents(net: nn.Module) -> bool:
    """True for a generator of z with batch-norm layers (the nets whose statistics matter)."""
    return hasattr(net, "z_dim") and bool(batchnorm_layers(net))


def _recompute_stats(net: nn.Module, kwargs: dict[str, Any], seed: int) -> None:
    c_dim = getattr(net, "c_dim", 0)
    total, chunk = BN_STATS_SAMPLES[getattr(net, "output_kind", "images")]
    device = next(net.parameters()).device
    gen = torch.Generator().manual_seed(seed)

    def latents() -> Iterator[tuple[torch.Tensor, torch.Tensor | None]]:
        for start in range(0, total, chunk):
            n = min(chunk, total - start)
            z = draw_latents(net, n, gen, device)
            c = torch.randint(c_dim, (n,), generator=gen).to(device) if c_dim else None
            yield z, c

    def forward(module: nn.Module, zc: tuple[torch.Tensor, torch.Tensor | None]) -> None:
        z, c = zc
        module(z, **kwargs) if c is None else module(z, c, **kwargs)

    recompute_batchnorm_stats(net, latents(), forward)
