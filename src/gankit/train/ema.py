"""Exponential moving average of the generator (G_ema), parameterised by a half-life in images."""

from __future__ import annotations

import torch
from torch import nn


def ema_beta(global_batch: int, ema_kimg: float) -> float:
    """Per-step decay so that weights halve their influence after `ema_kimg` thousand images."""
    if ema_kimg <= 0:
        return 0.0
    return 0.5 ** (global_batch / (ema_kimg * 1000.0))


@torch.no_grad()
def update_ema(ema: nn.Module, source: nn.Module, beta: float) -> None:
    """ema <- beta * ema + (1 - beta) * source for parameters; buffers are copied."""
    ema_params = list(ema.parameters())
    src_params = [p.detach() for p in source.parameters()]
    if beta == 0.0:
        torch._foreach_copy_(ema_params, src_params)
    else:
        torch._foreach_lerp_(ema_params, src_params, 1.0 - beta)
    for b_ema, b_src in zip(ema.buffers(), source.buffers(), strict=True):
        b_ema.copy_(b_src)
