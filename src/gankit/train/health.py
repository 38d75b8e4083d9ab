"""Divergence: what is not finite in a run, and the message that says what to do next."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from gankit.errors import TrainingDivergedError
from gankit.train import checkpoint as ckpt


def not_finite_values(record: Mapping[str, Any]) -> list[str]:
    """`key = value` for each number of a tick's record that is NaN or infinite."""
    return [
        f"{k} = {v}" for k, v in record.items() if isinstance(v, float) and not math.isfinite(v)
    ]


def clean_gradients(params: list[nn.Parameter]) -> None:
    """Replace NaN gradients by 0 and infinities by +-1e5 in place, as the official StyleGAN2-ADA
    loop does before each optimizer step."""
    for p in params:
        if p.grad is not None:
            torch.nan_to_num(p.grad, nan=0.0, posinf=1e5, neginf=-1e5, out=p.grad)


def not_finite_state(
    nets: Mapping[str, nn.Module], losses: Mapping[str, list[torch.Tensor]]
) -> list[str]:
    """What is not finite among the nets' weights and the losses since the last tick (a
    snapshot can come before the tick that would see a NaN loss)."""
    bad = [f"{name} weights not finite" for name, net in nets.items() if not finite(net)]
    for key, values in losses.items():
        stacked = torch.stack(values)
        if not bool(torch.isfinite(stacked).all()):
            bad.append(f"{key} = {stacked[~torch.isfinite(stacked)][0].item()}")
    return bad


def finite(net: nn.Module) -> bool:
    """True when every floating-point parameter and buffer of `net` is finite."""
    return all(torch.isfinite(t).all() for t in net.state_dict().values() if t.is_floating_point())


def divergence_message(
    bad: list[str], run_dir: Path, cur_nimg: int, stage_key: str, amp: str
) -> str:
    """What is not finite, where, and how to go on (from the last good checkpoint, if any)."""
    last = ckpt.list_checkpoints(run_dir / "checkpoints")
    advice = ["lowering the learning rate (--set recipe.args.lr=...)"]
    if amp != "none":
        advice.append("--amp none")
    if last:
        then = (
            f"the last good checkpoint is {last[-1]}; resume from it with `gankit train "
            f"--resume {run_dir}` after {' or '.join(advice)}"
        )
    else:
        then = f"no checkpoint was written yet; start the run again after {' or '.join(advice)}"
    return (
        f"training diverged at {cur_nimg / 1000:g} kimg (stage {stage_key}): "
        f"{', '.join(bad)}; {then}"
    )


def raise_divergence(
    log: Any, bad: list[str], run_dir: Path, cur_nimg: int, stage_key: str, amp: str
) -> None:
    """Log the divergence (`divergence_message`) to the run log only, then raise it."""
    message = divergence_message(bad, run_dir, cur_nimg, stage_key, amp)
    log.info(f"error: {message}", echo=False)
    raise TrainingDivergedError(message)
