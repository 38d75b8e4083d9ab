"""Exponential moving average of the generator (G_ema), parameterised by a half-life in images."""

from __future__ import annotations

import torch
from torch import nn


def ema_beta(global_batch: int, ema_kimg: float) -> float:
    """Per-step decay so that weights halve their influence after `ema_kimg` thousand images."""
    if ema_kimg <= 0:
        return 0.0
    return 0.5 ** (global_batch / (ema_kimg * 1000.0))


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
