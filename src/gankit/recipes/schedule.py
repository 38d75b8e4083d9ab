"""Progressive-growing schedules in images shown (Karras et al., arXiv:1710.10196, section 3).

Training starts with a stable phase at the lowest resolution; every further resolution first fades
in over `fade_nimg` images (alpha 0 -> 1), then trains stable for `stable_nimg` images. The last
resolution stays stable forever after. This matches the official `TrainingSchedule` (lod form).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from gankit.recipes.base import Stage


@dataclass(frozen=True)
class ProgressiveSchedule:
    """Maps images shown to a Stage (resolution, alpha, global batch)."""

    resolutions: tuple[int, ...]
    fade_nimg: int
    stable_nimg: int
    batch_size: int
    batch_sizes: tuple[tuple[int, int], ...] = ()

    def batch_at(self, resolution: int) -> int:
        """The global minibatch at a resolution (per-resolution table, else the default)."""
        return dict(self.batch_sizes).get(resolution, self.batch_size)

    def stage(self, cur_nimg: int) -> Stage:
        """The stage in force after `cur_nimg` images have been shown to D."""
        level, alpha = self.level_alpha(cur_nimg)
        res = self.resolutions[level]
        kind = "fade" if alpha < 1.0 else "stable"
        return Stage(res, alpha, self.batch_at(res), key=f"{res}x{res}-{kind}")

    def level_alpha(self, cur_nimg: int) -> tuple[int, float]:
        """(index into resolutions, fade-in alpha) at `cur_nimg`."""
        t = cur_nimg - self.stable_nimg
        if t < 0 or len(self.resolutions) == 1:
            return 0, 1.0
        period = self.fade_nimg + self.stable_nimg
        level = 1 + t // period if period > 0 else len(self.resolutions) - 1
        if level >= len(self.resolutions):
            return len(self.resolutions) - 1, 1.0
        within = t - (level - 1) * period
        alpha = within / self.fade_nimg if within < self.fade_nimg else 1.0
        return level, alpha

    @property
    def grown_nimg(self) -> int:
        """Images until the last resolution has finished its stable phase."""
        levels = len(self.resolutions) - 1
        return self.stable_nimg + levels * (self.fade_nimg + self.stable_nimg)


def downsample_to(img: torch.Tensor, resolution: int) -> torch.Tensor:
    """Area-downsample `[N, C, H, W]` to `resolution` (an integer factor of H)."""
    factor = img.shape[-1] // resolution
    if factor == 1:
        return img
    if factor * resolution != img.shape[-1]:
        raise ValueError(f"cannot area-downsample {img.shape[-1]}px images to {resolution}px")
    return F.avg_pool2d(img, factor)


def fade_reals(img: torch.Tensor, alpha: float) -> torch.Tensor:
    """Blend reals with their own 2x-blurred version by the fade-in alpha, as G's output is."""
    if alpha >= 1.0:
        return img
    coarse = F.interpolate(F.avg_pool2d(img, 2), scale_factor=2.0, mode="nearest")
    return torch.lerp(coarse, img, alpha)
