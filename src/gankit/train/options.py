"""The loop's options: the mechanics of one run, every default already resolved."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch


@dataclass
class LoopOptions:
    """Mechanics of one run (all resolved: no `None` defaults left)."""

    total_kimg: float
    ema_kimg: float
    tick_kimg: float
    snapshot_kimg: float
    sample_kimg: float
    device: torch.device
    ema_rampup: float = 0.0  # see gankit.train.ema.ema_beta
    amp: str = "none"
    channels_last: bool = False
    compile: bool = False
    seed: int = 0
    grid_size: int = 64
    keep_checkpoints: int = 3
    progress: bool = True
    workers: int = 0
    mirror: bool = False
    metrics_kimg: float = 0.0
    max_seconds: float = 0.0  # 0: no time limit
    #: Images per forward pass per process; a larger batch is done in rounds whose gradients
    #: add up to the whole batch's (StyleGAN2-ADA's `batch_gpu`). 0: the whole batch at once.
    batch_gpu: int = 0
    model_spec: dict[str, Any] = field(default_factory=dict)
