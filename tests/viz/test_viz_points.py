"""Scatter plots over the 2-D mixtures: what is drawn where, fixed frames, GIFs, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from PIL import Image

from gankit.data.toy import GRID25, RING8
from gankit.viz.points import (
    SIZE_PX,
    mixture_limits,
    resolve_mixture,
    save_scatter,
    save_scatter_gif,
    scatter_figure,
)


def is_red(rgb: np.ndarray) -> bool:
    """Mostly tab:red (214, 39, 40), allowing for antialiasing of thin marker strokes."""
    return bool(rgb[0] > 150 and rgb[0] - rgb[1] > 80 and rgb[0] - rgb[2] > 80)


def is_blue(rgb: np.ndarray) -> bool:
    """Mostly tab:blue (31, 119, 180), allowing for the small dots' antialiasing."""
    return bool(rgb[2] > 150 and rgb[2] - rgb[0] > 60)


def test_limits_hold_every_mode_and_circle_with_a_margin() -> None:
    assert mixture_limits(RING8) == pytest.approx((-1.25 * 1.03, 1.25 * 1.03))
    assert mixture_limits(GRID25) == pytest.approx((-1.25 * 4.15, 1.25 * 4.15))
    assert resolve_mixture("grid25") is GRID25 and resolve_mixture(None) is None
    with pytest.raises(ValueError, match="no 2-D mixture named 'ring9'; known: ring8, grid25"):
        resolve_mixture("ring9")


def _pixel(fig, ax, xy: tuple[float, float], rgb: np.ndarray) -> np.ndarray:
    x, y = ax.transData.transform(xy)
    return rgb[round(rgb.shape[0] - y), round(x)]


def test_modes_are_red_and_points_blue_where_they_belong() -> None:
    # Points far from every ring8 mode, densely at one spot so the dot is opaque there.
    points = torch.tensor([[0.0, 0.0]] * 200 + [[-0.5, 0.5]] * 200)
    fig = scatter_figure(points, RING8)
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    rgb = np.asarray(canvas.buffer_rgba())[..., :3].astype(int)
    assert rgb.shape == (SIZE_PX, SIZE_PX, 3)
    ax = fig.axes[0]
    assert ax.get_xlim() == ax.get_ylim() == pytest.approx(mixture_limits(RING8))
    for mean in RING8.means.tolist():
        assert is_red(_pixel(fig, ax, mean, rgb))
    for spot in ((0.0, 0.0), (-0.5, 0.5)):
        assert is_blue(_pixel(fig, ax, spot, rgb))
    assert np.abs(_pixel(fig, ax, (0.5, -0.5), rgb) - 255).max() < 30  # nothing drawn there
    assert "200 generated" not in ax.get_title() and "400 generated points" in ax.get_title()


def test_frames_line_up_whatever_the_points(tmp_path: Path) -> None:
    a = save_scatter(torch.randn(500, 2) * 0.01, tmp_path / "a.png", mixture="ring8")
    b = save_scatter(torch.randn(500, 2) * 3, tmp_path / "b.png", mixture="ring8", title="t")
    assert Image.open(a).size == Image.open(b).size == (SIZE_PX, SIZE_PX)
    small = scatter_figure(torch.randn(500, 2) * 0.01, "ring8").axes[0]
    large = scatter_figure(torch.randn(500, 2) * 3, "ring8").axes[0]
    assert small.get_xlim() == large.get_xlim()
    # Points outside the fixed frame are counted, not silently lost.
    assert any("outside the frame" in t.get_text() for t in large.texts)
    assert not small.texts


def test_limits_follow_the_points_without_a_mixture(tmp_path: Path) -> None:
    ax = scatter_figure(np.random.default_rng(0).normal(10, 1, (1000, 2))).axes[0]
    lo, hi = ax.get_xlim()
    assert 5 < lo < 9 and 11 < hi < 15
    ax = scatter_figure(torch.zeros(10, 2), limits=(-2.0, 3.0)).axes[0]
    assert ax.get_xlim() == ax.get_ylim() == (-2.0, 3.0)
    save_scatter(np.zeros((0, 2)), tmp_path / "empty.png")  # nothing to draw is still a picture


def test_bad_shapes_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"expected 2-D points \[N, 2\], got shape \(5, 3\)"):
        save_scatter(torch.zeros(5, 3), tmp_path / "x.png")


def test_scatter_gif_has_one_frame_per_snapshot(tmp_path: Path) -> None:
    frames = [RING8.sample(300, torch.Generator().manual_seed(s)) * s / 3 for s in range(1, 4)]
    path = save_scatter_gif(frames, tmp_path / "anim.gif", mixture=RING8, titles=["1", "2", "3"])
    with Image.open(path) as gif:
        assert gif.n_frames == 3 and gif.size == (SIZE_PX, SIZE_PX)
    assert save_scatter_gif([], tmp_path / "none.gif") is None
    with pytest.raises(ValueError, match="3 frames but 1 titles"):
        save_scatter_gif(frames, tmp_path / "bad.gif", titles=["x"])
