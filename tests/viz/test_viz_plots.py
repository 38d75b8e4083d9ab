"""Latent interpolation (slerp/lerp and the strip), real-vs-fake pictures, GIFs of PIL frames,
loss curves."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from fake_runs import SAMPLING, TinyImageG, TinyPointG
from gankit.viz import make_grid, save_gif, to_uint8
from gankit.viz.plots import (
    lerp,
    loss_figure,
    plot_losses,
    save_interpolation_strip,
    save_real_vs_fake,
    slerp,
)


def test_slerp_endpoints_and_the_great_circle() -> None:
    a, b = torch.tensor([[2.0, 0.0]]), torch.tensor([[0.0, 2.0]])
    path = slerp(a, b, torch.linspace(0, 1, 5))
    assert path.shape == (1, 5, 2)
    torch.testing.assert_close(path[0, 0], a[0])
    torch.testing.assert_close(path[0, -1], b[0])
    # Equal norms: every point stays on the circle, at the evenly spaced angles.
    torch.testing.assert_close(path[0].norm(dim=1), torch.full((5,), 2.0))
    angles = torch.atan2(path[0, :, 1], path[0, :, 0])
    torch.testing.assert_close(angles, torch.linspace(0, math.pi / 2, 5))
    torch.testing.assert_close(lerp(a, b, torch.tensor([0.5]))[0, 0], torch.tensor([1.0, 1.0]))


def test_slerp_of_parallel_vectors_falls_back_to_lerp() -> None:
    a = torch.tensor([[1.0, 1.0], [1.0, 0.0]])
    b = torch.tensor([[3.0, 3.0], [-2.0, 0.0]])
    t = torch.tensor([0.0, 0.25, 1.0])
    torch.testing.assert_close(slerp(a, b, t), lerp(a, b, t))


def _strip_cells(path: Path, res: int, rows: int, steps: int) -> np.ndarray:
    grid = np.asarray(Image.open(path))
    assert grid.shape[:2] == (rows * res, steps * res)
    grid = grid.reshape(rows * res, steps * res, -1)
    return grid.reshape(rows, res, steps, res, -1).transpose(0, 2, 4, 1, 3)  # [r, s, C, H, W]


def test_strip_rows_run_from_one_latent_to_another(tmp_path: Path) -> None:
    torch.manual_seed(0)
    G = TinyImageG(8, 3, 0, z_dim=6).eval()
    path = save_interpolation_strip(G, tmp_path / "s.png", steps=5, rows=3, seed=9, kwargs=SAMPLING)
    cells = _strip_cells(path, 8, 3, 5)
    gen = torch.Generator().manual_seed(9)  # the documented draw order: starts, then ends
    z0, z1 = torch.randn(3, 6, generator=gen), torch.randn(3, 6, generator=gen)
    with torch.no_grad():
        expected = slerp(z0, z1, torch.linspace(0, 1, 5)).reshape(15, 6)
        images = to_uint8(G(expected, **SAMPLING)).reshape(3, 5, 3, 8, 8)
    np.testing.assert_array_equal(cells, images.numpy())
    lin = save_interpolation_strip(G, tmp_path / "l.png", steps=5, rows=3, seed=9, method="lerp")
    lin_cells = _strip_cells(lin, 8, 3, 5)
    np.testing.assert_array_equal(lin_cells[:, 0], to_uint8(G(z0)).numpy())  # same endpoints
    assert not np.array_equal(lin_cells[:, 2], cells[:, 2])  # a different middle


def test_conditional_strip_keeps_one_label_per_row(tmp_path: Path) -> None:
    torch.manual_seed(0)
    G = TinyImageG(4, 1, 3, z_dim=5).eval()
    path = save_interpolation_strip(G, tmp_path / "c.png", steps=4, rows=5, seed=1)
    cells = _strip_cells(path, 4, 5, 4)
    gen = torch.Generator().manual_seed(1)
    z0, z1 = torch.randn(5, 5, generator=gen), torch.randn(5, 5, generator=gen)
    z = slerp(z0, z1, torch.linspace(0, 1, 4)).reshape(20, 5)
    c = torch.tensor([0, 1, 2, 0, 1]).repeat_interleave(4)
    with torch.no_grad():
        expected = to_uint8(G(z, c)).reshape(5, 4, 1, 4, 4)
    np.testing.assert_array_equal(cells, expected.numpy())


def test_strip_refuses_point_generators_and_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="needs an image generator"):
        save_interpolation_strip(TinyPointG(0, 4), tmp_path / "p.png")
    G = TinyImageG(4, 1, 0, z_dim=2)
    with pytest.raises(ValueError, match="method must be 'slerp' or 'lerp'"):
        save_interpolation_strip(G, tmp_path / "x.png", method="cubic")
    with pytest.raises(ValueError, match="steps >= 2"):
        save_interpolation_strip(G, tmp_path / "x.png", steps=1)


def test_real_vs_fake_from_batches_and_from_grid_pictures(tmp_path: Path) -> None:
    reals = torch.randint(0, 256, (16, 1, 8, 8), dtype=torch.uint8)
    fakes = torch.randint(0, 256, (9, 3, 8, 8), dtype=torch.uint8)
    a = save_real_vs_fake(reals, fakes, tmp_path / "a.png")
    width, height = Image.open(a).size
    assert width > height > 256  # two panels side by side, at least 256 px tall
    b = save_real_vs_fake(make_grid(reals), make_grid(fakes)[..., 0], tmp_path / "b.png")
    assert Image.open(b).size == (width, height)  # the same grids, drawn the same size
    with pytest.raises(ValueError, match="expected uint8 images, got float32"):
        save_real_vs_fake(reals.float().numpy(), fakes, tmp_path / "c.png")


def test_save_gif_takes_pil_images(tmp_path: Path) -> None:
    frames = [Image.new("RGB", (10, 10), (40 * i, 0, 0)) for i in range(3)]
    path = save_gif(frames, tmp_path / "sub" / "x.gif")
    with Image.open(path) as gif:
        assert gif.n_frames == 3


def _stats(stages: list[str]) -> list[dict]:
    return [
        {"kimg": float(i), "stage": stage, "D_main/loss": 1.0 + i, "G_main/loss": -float(i)}
        for i, stage in enumerate(stages)
    ]


def test_loss_curves_mark_stage_changes_only_where_the_stage_changes(tmp_path: Path) -> None:
    import matplotlib.pyplot as plt

    fig = loss_figure(_stats(["4x4", "4x4", "8x8-fade", "8x8", "8x8"]))
    ax = fig.axes[0]
    curves = {
        line.get_label(): list(line.get_ydata()) for line in ax.lines if line.get_label()[0] != "_"
    }
    assert curves == {"D_main": [1.0, 2.0, 3.0, 4.0, 5.0], "G_main": [0.0, -1.0, -2.0, -3.0, -4.0]}
    vertical = [line.get_xdata()[0] for line in ax.lines if line.get_label()[0] == "_"]
    assert vertical == [2.0, 3.0]  # the fade-in starts at 2 kimg and ends at 3
    assert ax.get_title() == "Training losses (grey lines: stage changes)"
    plt.close(fig)
    # One stage (every classic recipe, 2-D points): no grey lines and no legend for them.
    fig = loss_figure(_stats(["points"] * 3))
    assert fig.axes[0].get_title() == "Training losses"
    assert len(fig.axes[0].lines) == 2
    plt.close(fig)
    assert loss_figure([{"kimg": 1.0, "img_per_s": 5.0}]) is None  # no losses logged yet
    out = _plot_from_stats_file(tmp_path, _stats(["4x4", "8x8"]))
    assert Image.open(out).size == (800, 450)


def _plot_from_stats_file(tmp_path: Path, records: list[dict]) -> Path:
    import json

    stats = tmp_path / "stats.jsonl"
    stats.write_text("".join(json.dumps(r) + "\n" for r in records))
    out = plot_losses(stats, tmp_path / "plots" / "losses.png")
    assert out is not None
    return out


def test_the_terms_of_each_phase_are_drawn_when_asked() -> None:
    # CycleGAN's G logs its GAN, cycle and identity terms beside its loss; D each critic's part.
    records = [
        {"kimg": k, "G_main/loss": 3.0, "G_main/gan": 1.0, "G_main/cycle": 2.0,
         "D_main/loss": 0.5, "D_main/D_a": 0.2, "D_main/D_b": 0.3, "img_per_s": 5.0}
        for k in (0.1, 0.2)
    ]  # fmt: skip
    labels = [line.get_label() for line in loss_figure(records).axes[0].get_lines()]
    assert labels == ["D_main", "G_main"]
    lines = loss_figure(records, terms=True).axes[0].get_lines()
    assert [line.get_label() for line in lines] == [
        "D_main", "G_main", "D_main/D_a", "D_main/D_b", "G_main/cycle", "G_main/gan",
    ]  # fmt: skip
    assert [line.get_linestyle() for line in lines] == ["-", "-", "--", "--", "--", "--"]
    assert list(lines[4].get_ydata()) == [2.0, 2.0]
