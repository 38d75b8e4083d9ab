"""Scatter plots of generated 2-D points over the true mixture (ring8, grid25), and their GIFs.

The axes are fixed by the mixture, not by the points, so the frames of a training animation line
up and a collapsed generator is seen as such instead of being zoomed in on.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from PIL import Image

from gankit.viz.plots import save_gif

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from gankit.data.toy import Mixture2D

#: Drawing size in pixels (square); fixed so animation frames match.
SIZE_PX = 480
_DPI = 100


def resolve_mixture(mixture: Mixture2D | str | None) -> Mixture2D | None:
    """A `Mixture2D`, or the built-in one named `mixture` (ring8, grid25); None stays None."""
    if mixture is None or not isinstance(mixture, str):
        return mixture
    from gankit.data.toy import MIXTURES

    if mixture not in MIXTURES:
        raise ValueError(f"no 2-D mixture named {mixture!r}; known: {', '.join(MIXTURES)}")
    return MIXTURES[mixture]


def mixture_limits(mixture: Mixture2D) -> tuple[float, float]:
    """Square axis limits (lo, hi) that show every mode and its 3-sigma circle with a margin."""
    reach = float(mixture.means.abs().max()) + 3 * mixture.sigma
    half = 1.25 * reach
    return -half, half


def _points_array(points: torch.Tensor | np.ndarray) -> np.ndarray:
    array = points.detach().float().cpu().numpy() if torch.is_tensor(points) else np.asarray(points)
    if array.ndim != 2 or array.shape[1] != 2:
        raise ValueError(f"expected 2-D points [N, 2], got shape {tuple(array.shape)}")
    return array.astype(np.float64)


def _limits_from_points(array: np.ndarray) -> tuple[float, float]:
    # Quantiles, so a handful of outliers does not shrink the bulk to a dot.
    if len(array) == 0:
        return -1.0, 1.0
    lo, hi = np.quantile(array, [0.005, 0.995])
    centre, half = (lo + hi) / 2, max(hi - lo, 1e-6) * 0.6
    return centre - half, centre + half


def scatter_figure(
    points: torch.Tensor | np.ndarray,
    mixture: Mixture2D | str | None = None,
    title: str | None = None,
    limits: tuple[float, float] | None = None,
) -> Figure:
    """The scatter as a matplotlib Figure (not attached to pyplot, so nothing global changes)."""
    from matplotlib.figure import Figure
    from matplotlib.patches import Circle

    array, mix = _points_array(points), resolve_mixture(mixture)
    lo, hi = limits or (mixture_limits(mix) if mix is not None else _limits_from_points(array))
    fig = Figure(figsize=(SIZE_PX / _DPI, SIZE_PX / _DPI), dpi=_DPI)
    ax = fig.add_axes((0.1, 0.08, 0.85, 0.84))
    ax.scatter(array[:, 0], array[:, 1], s=3, alpha=0.5, linewidths=0, color="tab:blue")
    if mix is not None:
        means = mix.means.double().numpy()
        for x, y in means:
            ax.add_patch(Circle((x, y), 3 * mix.sigma, fill=False, color="tab:red", lw=0.7))
        ax.scatter(means[:, 0], means[:, 1], marker="x", s=25, color="tab:red", linewidths=1)
    outside = int(((array < lo) | (array > hi)).any(axis=1).sum())
    if outside:
        ax.text(0.01, 0.01, f"{outside:,} of {len(array):,} points outside the frame",
                transform=ax.transAxes, fontsize=8, color="0.3")  # fmt: skip
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    ax.set_aspect("equal")
    ax.grid(alpha=0.2)
    ax.set_title(title or _default_title(len(array), mix), fontsize=10)
    return fig


def _default_title(n: int, mixture: Mixture2D | None) -> str:
    if mixture is None:
        return f"{n:,} generated points"
    return f"{n:,} generated points; {mixture.name} modes (x) with 3-sigma circles"


def save_scatter(
    points: torch.Tensor | np.ndarray,
    path: str | Path,
    mixture: Mixture2D | str | None = None,
    title: str | None = None,
    limits: tuple[float, float] | None = None,
) -> Path:
    """Draw points `[N, 2]` (small dots) over the mixture's modes and 3-sigma circles; a PNG.

    `mixture` is a `Mixture2D` or a built-in name; it also fixes the axis limits unless `limits`
    (lo, hi for both axes) are given. Without either the limits follow the points.
    """
    fig = scatter_figure(points, mixture, title, limits)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path


def render_scatter(
    points: torch.Tensor | np.ndarray,
    mixture: Mixture2D | str | None = None,
    title: str | None = None,
    limits: tuple[float, float] | None = None,
) -> Image.Image:
    """The scatter as an RGB PIL image of `SIZE_PX` x `SIZE_PX` pixels."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = scatter_figure(points, mixture, title, limits)
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return Image.fromarray(np.asarray(canvas.buffer_rgba())[..., :3].copy())


def save_scatter_gif(
    frames: Sequence[torch.Tensor | np.ndarray],
    path: str | Path,
    mixture: Mixture2D | str | None = None,
    titles: Sequence[str] | None = None,
    frame_ms: int = 400,
) -> Path | None:
    """An animated GIF with one scatter per point set in `frames`, all on the same axes.

    The limits come from the mixture, else from the last frame (usually the most spread out
    one that matters); None when `frames` is empty.
    """
    if not frames:
        return None
    mix = resolve_mixture(mixture)
    limits = (
        mixture_limits(mix) if mix is not None else _limits_from_points(_points_array(frames[-1]))
    )
    titles = list(titles) if titles is not None else [None] * len(frames)
    if len(titles) != len(frames):
        raise ValueError(f"{len(frames)} frames but {len(titles)} titles")
    images = [render_scatter(f, mix, t, limits) for f, t in zip(frames, titles, strict=True)]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return save_gif(images, path, frame_ms)
