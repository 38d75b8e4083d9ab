"""Exponential moving average of the generator (G_ema), parameterised by a half-life in images.

The half-life ramps up with training (StyleGAN2-ADA, Karras et al. 2020, arXiv:2006.06676,
`training_loop.py`: `ema_nimg = min(ema_nimg, cur_nimg * ema_rampup)`, 0.05 in its `auto` and
`cifar` configs), for every recipe that averages.
"""

from __future__ import annotations

import torch
from torch import nn


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
