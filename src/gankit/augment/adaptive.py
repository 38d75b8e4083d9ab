"""The adaptive augmentation probability p of StyleGAN2-ADA (arXiv:2006.06676, section 3).

ADA watches the overfitting heuristic r_t = E[sign(D(real))] over the reals D sees and moves the
augmentation probability p every `interval` iterations by `sign(r_t - target) * batch *
interval / (speed_kimg * 1000)`, so that p can go from 0 to 1 in `speed_kimg` thousand images.
The defaults are the official ones: target 0.6, every 4 iterations, 500 kimg.

`AdaptiveP` keeps p in the `AugmentPipe`'s `p` buffer (a tensor, so a changing p never makes
`torch.compile` recompile the pipe) and accumulates the signs on the device (one host sync per
adjustment, not per iteration). Its state (p, the sign accumulators, the iterations since the last
adjustment) is a plain dict of tensors and ints, so a resumed run adjusts p exactly as an
uninterrupted one. With `target=None` p stays fixed (`--aug fixed --p X`; p = 0 is `noaug`).

As in the official code, p is floored at 0 but not capped at 1: with the official presets every
probability saturates at p = 1 already, and the overshoot only delays the return below 1 when D
stops overfitting. Under DDP the accumulators are summed over the ranks before each adjustment (the
official statistics collector does the same), so every rank moves p identically.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist

from gankit.augment.ada import AugmentPipe


class AdaptiveP:
    """ADA's controller of `pipe.p`: `observe` D's logits on reals, `step` once per iteration."""

    def __init__(
        self,
        pipe: AugmentPipe,
        p: float = 0.0,
        target: float | None = 0.6,
        interval: int = 4,
        speed_kimg: float = 500.0,
    ) -> None:
        if target is not None and not 0 <= target <= 1:
            raise ValueError(f"ADA target={target}: expected a mean sign in [0, 1] (official 0.6)")
        if interval < 1 or speed_kimg <= 0:
            raise ValueError(
                f"ADA interval={interval}, speed_kimg={speed_kimg}: expected interval >= 1 "
                "iterations and speed_kimg > 0 (official 4 and 500)"
            )
        if p < 0:
            raise ValueError(f"augmentation probability p={p}: expected p >= 0")
        self.pipe = pipe
        self.target = target
        self.interval = interval
        self.speed_kimg = speed_kimg
        device = pipe.p.device
        # float64 sums: a long interval at a large batch counts exactly.
        self.sign_sum = torch.zeros([], dtype=torch.float64, device=device)
        self.sign_count = torch.zeros([], dtype=torch.float64, device=device)
        self.iterations = 0  # since the last adjustment
        self.set_p(p)

    @property
    def adaptive(self) -> bool:
        """Whether p follows the heuristic (else it stays as set)."""
        return self.target is not None

    @property
    def p(self) -> float:
        """The current augmentation probability (a host sync)."""
        return float(self.pipe.p)

    def set_p(self, p: float) -> None:
        """Overwrite p (fixed mode, or a run's starting value)."""
        self.pipe.p.fill_(p)

    def observe(self, real_logits: torch.Tensor) -> None:
        """Add the signs of D's logits on (augmented) reals to this interval's mean."""
        if not self.adaptive:
            return
        signs = real_logits.detach().sign().to(torch.float64)
        self._move_to(signs.device)
        self.sign_sum += signs.sum()
        self.sign_count += signs.numel()

    def step(self, batch_size: int) -> float | None:
        """End an iteration of `batch_size` images (global); every `interval`-th, adjust p.

        Returns the mean sign r_t that drove an adjustment, else None.
        """
        if not self.adaptive:
            return None
        self.iterations += 1
        if self.iterations < self.interval:
            return None
        self.iterations = 0
        totals = torch.stack([self.sign_sum, self.sign_count])
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(totals)
        self.sign_sum.zero_()
        self.sign_count.zero_()
        total, count = totals.tolist()
        if count == 0:
            return None  # nothing observed (a recipe that never showed D a real): keep p
        mean_sign = total / count
        adjust = _sign(mean_sign - self.target) * batch_size * self.interval
        adjust /= self.speed_kimg * 1000
        self.set_p(max(self.p + adjust, 0.0))
        return mean_sign

    def state_dict(self) -> dict[str, Any]:
        """p, the sign accumulators and the iterations since the last adjustment."""
        return {
            "p": self.pipe.p.detach().cpu().clone(),
            "sign_sum": self.sign_sum.detach().cpu().clone(),
            "sign_count": self.sign_count.detach().cpu().clone(),
            "iterations": self.iterations,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what `state_dict` saved, on this controller's device."""
        self.pipe.p.copy_(state["p"])
        self.sign_sum.copy_(state["sign_sum"])
        self.sign_count.copy_(state["sign_count"])
        self.iterations = int(state["iterations"])

    def _move_to(self, device: torch.device) -> None:
        # The recipe may move the pipe to the training device after building the controller.
        if self.sign_sum.device != device:
            self.sign_sum = self.sign_sum.to(device)
            self.sign_count = self.sign_count.to(device)


def _sign(value: float) -> float:
    """np.sign for a float: -1, 0 or +1 (a mean exactly at the target leaves p unchanged)."""
    return float((value > 0) - (value < 0))
