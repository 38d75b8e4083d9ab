"""What a run shows while it trains: the pictures under `samples/`, chosen by the kind of data.

The loop asks its preview to `draw` from the current networks (averaged ones where the recipe
keeps them) and to `save` what it drew; it never looks at what the pictures are. A recipe can
return its own preview from `Recipe.preview`; otherwise the data's kind picks one here:

- images: a grid of G_ema's samples from fixed latents (a class per row for a conditional G);
- points: a scatter of 2,500 samples over the true mixture (the VEEGAN/PacGAN evaluation count);
- unpaired A/B images: rows of `real A | A->B | A->B->A | real B | B->A | B->A->B`;
- nets without a generator (a critic trained alone): no pictures.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from gankit.data.base import preview_reals
from gankit.nets import draw_latents, run_generator, sampling_net
from gankit.viz.grid import make_grid, save_grid

POINT_SNAPSHOT_SIZE = 2500  # samples per 2-D snapshot, the VEEGAN/PacGAN evaluation count
CHUNK = 256  # latents through G at once


class Preview:
    """Base class: `draw` pictures from the networks, `save` them; `reals` for samples/reals.png."""

    #: File name stem of the periodic pictures: samples/{prefix}-{cur_nimg:012d}.png.
    prefix: ClassVar[str] = "fakes"
    #: Whether a grid is also saved when the stage changes (samples/stage-{key}.png).
    per_stage: ClassVar[bool] = True

    def draw(self, nets: Mapping[str, nn.Module], kwargs: dict[str, Any]) -> torch.Tensor:
        """The picture's content from `nets` (raw and averaged, by name) at sampling `kwargs`."""
        raise NotImplementedError

    def save(self, drawn: torch.Tensor, path: Path, title: str, upscale: bool) -> np.ndarray | None:
        """Write `drawn` to `path`; returns the picture as uint8 `[H, W, C]` for TensorBoard, or
        None. `upscale`: bring low-resolution stages up to the final resolution (periodic grids,
        so that a progress GIF has frames of one size)."""
        raise NotImplementedError

    def reals(self, dataset: Any, count: int, seed: int) -> tuple[torch.Tensor, int | None] | None:
        """Real images for samples/reals.png and the grid's column count; None: no such picture."""
        return None


class NoPreview(Preview):
    """For nets with nothing to draw from: the loop's calls draw and write nothing."""

    per_stage: ClassVar[bool] = False

    def draw(self, nets: Mapping[str, nn.Module], kwargs: dict[str, Any]) -> torch.Tensor:
        return torch.empty(0)

    def save(self, drawn: torch.Tensor, path: Path, title: str, upscale: bool) -> None:
        return None


class LatentGrid(Preview):
    """G_ema's images for fixed latents; a conditional G gets class k on row k."""

    def __init__(
        self,
        G: nn.Module,
        grid_size: int,
        seed: int,
        full_resolution: int,
        fixed_kwargs: dict[str, Any] | None = None,
    ) -> None:
        """`fixed_kwargs`: passed to G at every draw besides the stage's (e.g. StyleGAN2's
        constant noise, so that the grids of a run differ by training alone)."""
        self.fixed_kwargs = dict(fixed_kwargs or {})
        gen = torch.Generator().manual_seed(seed)
        c_dim = getattr(G, "c_dim", 0)
        self.labels: torch.Tensor | None = None
        self.cols: int | None = None
        if not c_dim:
            self.z = draw_latents(G, grid_size, gen)
        else:
            per_class = max(1, grid_size // c_dim)
            self.labels = torch.arange(min(c_dim, grid_size)).repeat_interleave(per_class)
            self.z = draw_latents(G, self.labels.shape[0], gen)
            self.cols = per_class if c_dim <= grid_size else None
        self.full_resolution = full_resolution

    @torch.no_grad()
    def draw(self, nets: Mapping[str, nn.Module], kwargs: dict[str, Any]) -> torch.Tensor:
        kwargs = {**kwargs, **self.fixed_kwargs}
        return run_generator(sampling_net(nets), self.z, self.labels, kwargs, CHUNK).float()

    def save(self, drawn: torch.Tensor, path: Path, title: str, upscale: bool) -> np.ndarray:
        size = self.full_resolution if upscale else None
        save_grid(drawn, path, cols=self.cols, upscale_to=size)
        return make_grid(drawn, self.cols, upscale_to=size)

    def reals(self, dataset: Any, count: int, seed: int) -> tuple[torch.Tensor, int | None] | None:
        return preview_reals(dataset, count, seed, by_class=self.labels is not None)


class PointScatter(Preview):
    """2,500 samples of a 2-D generator over the dataset's mixture."""

    prefix = "points"
    per_stage = False

    def __init__(self, G: nn.Module, seed: int, mixture: Any = None) -> None:
        self.z = draw_latents(G, POINT_SNAPSHOT_SIZE, torch.Generator().manual_seed(seed))
        self.mixture = mixture

    @torch.no_grad()
    def draw(self, nets: Mapping[str, nn.Module], kwargs: dict[str, Any]) -> torch.Tensor:
        return run_generator(sampling_net(nets), self.z, None, kwargs, CHUNK * 16).float()

    def save(self, drawn: torch.Tensor, path: Path, title: str, upscale: bool) -> None:
        from gankit.viz.points import save_scatter  # matplotlib: only for 2-D runs

        save_scatter(drawn, path, mixture=self.mixture, title=title)
        return None


class TranslationRows(Preview):
    """Fixed real A and B images through both generators: per row `real A | A->B | A->B->A |
    real B | B->A | B->A->B`. The generators are `G_ab` and `G_ba` (their averages when kept:
    `G_ab_ema`, `G_ba_ema`); a one-channel domain is shown in grey beside a colour one."""

    def __init__(
        self, dataset: Any, rows: int, seed: int, names: tuple[str, str] = ("G_ab", "G_ba")
    ) -> None:
        gen = torch.Generator().manual_seed(seed)
        self.names = names
        picks = [torch.randperm(n, generator=gen)[:rows] for n in dataset.domain_sizes]
        items = dataset.gather(list(zip(*(p.tolist() for p in picks), strict=False)))
        self.real_a = items["img_a"].float() / 127.5 - 1.0
        self.real_b = items["img_b"].float() / 127.5 - 1.0

    @torch.no_grad()
    def draw(self, nets: Mapping[str, nn.Module], kwargs: dict[str, Any]) -> torch.Tensor:
        g_ab, g_ba = (nets.get(f"{n}_ema", nets[n]) for n in self.names)  # type: ignore[attr-defined]
        device = next(g_ab.parameters()).device
        a, b = self.real_a.to(device), self.real_b.to(device)
        fake_b, fake_a = g_ab(a), g_ba(b)
        columns = [a, fake_b, g_ba(fake_b), b, fake_a, g_ab(fake_a)]
        channels = max(c.shape[1] for c in columns)
        columns = [c.float().cpu().expand(-1, channels, -1, -1) for c in columns]
        return torch.stack(columns, dim=1).flatten(0, 1)  # row-major: 6 pictures per row

    def save(self, drawn: torch.Tensor, path: Path, title: str, upscale: bool) -> np.ndarray:
        save_grid(drawn, path, cols=6)
        return make_grid(drawn, 6)

    def reals(self, dataset: Any, count: int, seed: int) -> tuple[torch.Tensor, int | None] | None:
        return preview_reals(dataset, count, seed, by_class=False)  # domain A's images


def preview_for(dataset: Any, nets: Mapping[str, nn.Module], seed: int, grid_size: int) -> Preview:
    """The preview for the data's kind (see the module docstring)."""
    kind = getattr(dataset, "kind", "images")
    if kind == "unpaired":
        return TranslationRows(dataset, rows=max(1, min(8, grid_size // 6)), seed=seed)
    G = sampling_net(nets)
    if G is None:
        return NoPreview()
    if kind == "points":
        return PointScatter(G, seed, getattr(dataset, "mixture", None))
    return LatentGrid(G, grid_size, seed, getattr(G, "img_resolution", dataset.resolution))
