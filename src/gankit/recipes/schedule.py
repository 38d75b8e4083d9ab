"""Progressive-growing schedules in images shown (Karras et al., arXiv:1710.10196, section 3).

Training starts with a stable phase at the lowest resolution; every further resolution first fades
in over `fade_nimg` images (alpha 0 -> 1), then trains stable for `stable_nimg` images. The last
resolution stays stable forever after. This matches the official `TrainingSchedule` (lod form).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from gankit.recipes.base import Stage


@dataclass(frozen=True)
class ProgressiveSchedule:
    """Maps images shown to a Stage (resolution, alpha, global batch).

    `phase_nimg` optionally overrides (fade, stable) image counts per resolution, e.g. to spend
    longer at a cheap low resolution; other resolutions use `fade_nimg` and `stable_nimg`.
    """

    resolutions: tuple[int, ...]
    fade_nimg: int
    stable_nimg: int
    batch_size: int
    batch_sizes: tuple[tuple[int, int], ...] = ()
    phase_nimg: tuple[tuple[int, int, int], ...] = ()  # (resolution, fade, stable)

    def batch_at(self, resolution: int) -> int:
        """The global minibatch at a resolution (per-resolution table, else the default)."""
        return dict(self.batch_sizes).get(resolution, self.batch_size)

    def phases(self) -> list[tuple[int, int]]:
        """(fade, stable) images per resolution; the first resolution has no fade-in."""
        table = {res: (fade, stable) for res, fade, stable in self.phase_nimg}
        out = []
        for i, res in enumerate(self.resolutions):
            fade, stable = table.get(res, (self.fade_nimg, self.stable_nimg))
            out.append((0 if i == 0 else fade, stable))
        return out

    def stage(self, cur_nimg: int) -> Stage:
        """The stage in force after `cur_nimg` images have been shown to D."""
        level, alpha = self.level_alpha(cur_nimg)
        res = self.resolutions[level]
        kind = "fade" if alpha < 1.0 else "stable"
        return Stage(res, alpha, self.batch_at(res), key=f"{res}x{res}-{kind}")

    def level_alpha(self, cur_nimg: int) -> tuple[int, float]:
        """(index into resolutions, fade-in alpha) at `cur_nimg`."""
        t = max(cur_nimg, 0)
        last = len(self.resolutions) - 1
        for level, (fade, stable) in enumerate(self.phases()):
            if t < fade:
                return level, t / fade
            t -= fade
            if t < stable or level == last:
                return level, 1.0
            t -= stable
        return last, 1.0

    def fitted(self, total_nimg: int) -> ProgressiveSchedule:
        """This schedule with every fade and stable phase scaled by one factor, so that the last
        resolution's stable phase ends at `total_nimg` (boundaries rounded to whole images)."""
        factor = total_nimg / self.grown_nimg
        table, start, done = [], 0, 0
        for res, (fade, stable) in zip(self.resolutions, self.phases(), strict=True):
            fade_end = round((done + fade) * factor)
            stable_end = max(round((done + fade + stable) * factor), fade_end + 1)
            table.append((res, fade_end - start, stable_end - fade_end))
            start, done = stable_end, done + fade + stable
        return dataclasses.replace(self, phase_nimg=tuple(table))

    def starts(self) -> list[tuple[int, int]]:
        """(resolution, images shown when it begins to fade in) for each resolution."""
        out, t = [], 0
        for res, (fade, stable) in zip(self.resolutions, self.phases(), strict=True):
            out.append((res, t))
            t += fade + stable
        return out

    @property
    def grown_nimg(self) -> int:
        """Images until the last resolution has finished its stable phase."""
        return sum(fade + stable for fade, stable in self.phases())


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
