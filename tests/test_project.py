"""`gankit project`: the official projector's schedule against hand values, the noise penalty,
the distances, and projections on a tiny StyleGAN2 run trained through the CLI."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from fake_runs import hand_made_run
from gankit.cli import main
from gankit.generate import load_generator, seed_latents
from gankit.metrics.lpips import LPIPS, resolve_heads, vgg16_features
from gankit.nets import build_nets
from gankit.project import (
    learning_rate,
    noise_regularization,
    normalize_noise_,
    pixel_msssim_distance,
    project_images,
    w_noise_scale,
    w_stats,
)
from gankit.train import checkpoint as ckpt
from gankit.viz import to_uint8


def proj(*args: str) -> int:
    return main(["project", *args, "--device", "cpu"])


def save_png(img: torch.Tensor, path: Path) -> Path:
    """uint8 `[C, H, W]` as a PNG (greyscale for one channel)."""
    array = img.permute(1, 2, 0).numpy()
    Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array).save(path)
    return path


def seed_image(G: nn.Module, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(ws `[num_ws, w_dim]`, uint8 image `[C, H, W]`) of a seed, with the stored noise."""
    ws = G.mapping(seed_latents(G.z_dim, [seed]), None)
    return ws[0], to_uint8(G.synthesis(ws, noise_mode="const"))[0]


# ------------------------------------------------------------------------------ pure functions


def test_learning_rate_schedule_at_hand_values() -> None:
    assert learning_rate(0, 1000) == 0.0  # ramp-up starts at zero
    assert learning_rate(25, 1000) == pytest.approx(0.05)  # halfway up the 5% ramp
    assert learning_rate(50, 1000) == pytest.approx(0.1)
    assert learning_rate(500, 1000) == pytest.approx(0.1)
    # t = 0.9: (1 - t) / 0.25 = 0.4 of the half cosine: 0.5 - 0.5 cos(0.4 pi).
    assert learning_rate(900, 1000) == pytest.approx(0.1 * (0.5 - 0.5 * math.cos(0.4 * math.pi)))
    assert learning_rate(900, 1000) == pytest.approx(0.0345492, abs=1e-7)
    assert learning_rate(999, 1000) == pytest.approx(3.94784e-6, rel=1e-4)


def test_w_noise_decays_quadratically_to_zero_at_three_quarters() -> None:
    assert w_noise_scale(0, 1000, 2.0) == pytest.approx(0.1)  # w_std x 0.05
    assert w_noise_scale(375, 1000, 2.0) == pytest.approx(0.1 * 0.25)  # (1 - 0.5)^2
    assert w_noise_scale(750, 1000, 2.0) == 0.0
    assert w_noise_scale(900, 1000, 2.0) == 0.0


def test_noise_penalty_of_known_maps() -> None:
    checker = (torch.arange(16)[:, None] + torch.arange(16)[None]) % 2 * 2.0 - 1
    # 16 px: each neighbour product is -1 (mean -1, squared 1) on both axes; pooled to 8 px the
    # checkerboard averages to 0.
    ones = torch.ones(16, 16)
    got = noise_regularization(torch.stack([checker, ones])[:, None])
    torch.testing.assert_close(got, torch.tensor([2.0, 4.0]))  # ones: 1 + 1 at 16 and at 8 px
    assert noise_regularization(torch.ones(1, 1, 4, 4)).item() == 2.0  # one scale below 8 px


def test_noise_normalisation_per_map() -> None:
    noise = torch.randn(3, 1, 8, 8, generator=torch.Generator().manual_seed(0)) * 3 + 2
    normalize_noise_(noise)
    torch.testing.assert_close(noise.mean(dim=(1, 2, 3)), torch.zeros(3), atol=1e-6, rtol=0)
    torch.testing.assert_close(noise.square().mean(dim=(1, 2, 3)), torch.ones(3))


def test_pixel_msssim_distance_zero_on_identical_and_growing_with_noise() -> None:
    gen = torch.Generator().manual_seed(0)
    for size, channels in ((8, 1), (16, 3)):
        x = torch.rand(2, channels, size, size, generator=gen) * 1.6 - 0.8
        noise = torch.randn(x.shape, generator=gen)
        torch.testing.assert_close(pixel_msssim_distance(x, x), torch.zeros(2), atol=1e-6, rtol=0)
        small = pixel_msssim_distance(x, x + 0.05 * noise)
        large = pixel_msssim_distance(x, x + 0.3 * noise)
        assert (small > 1e-4).all() and (large > 2 * small).all()


def test_w_stats_are_the_mean_and_spread_of_the_official_samples(sg2_G: nn.Module) -> None:
    w_avg, w_std = w_stats(sg2_G, num_samples=500)
    z = torch.from_numpy(np.random.RandomState(123).randn(500, sg2_G.z_dim)).float()
    w = sg2_G.mapping(z, None)[:, 0].double().numpy()
    np.testing.assert_allclose(w_avg.numpy(), w.mean(0), rtol=1e-5, atol=1e-6)
    assert w_std == pytest.approx(float(np.sqrt(((w - w.mean(0)) ** 2).sum() / 500)), rel=1e-6)


# ----------------------------------------------------------------------------------- projecting


def fresh_stylegan2_run(root: Path) -> Path:
    """A run holding a freshly built 8 px RGB StyleGAN2 (w_dim 4, 8 channels, no noise).

    Wider than the CLI-trained run, whose 2 channels leave w far from identifiable from its image.
    """
    spec = {"name": "stylegan2", "img_resolution": 8, "img_channels": 3, "c_dim": 0}
    spec["arch"] = {"z_dim": 4, "w_dim": 4, "mapping_layers": 2, "channel_base": 64}
    spec["arch"]["channel_max"] = 8
    with torch.random.fork_rng():
        torch.manual_seed(0)
        G = build_nets(spec)["G"]
    state = {"cur_nimg": 0, "model": spec, "nets": {"G_ema": G.state_dict()}, "sampling": {}}
    ckpt.save_checkpoint(state, root / "checkpoints", 0, keep=1)
    return root


def test_projecting_a_generated_image_recovers_its_w(tmp_path: Path) -> None:
    run = fresh_stylegan2_run(tmp_path / "run")
    G = load_generator(run, "cpu")[0]
    true_ws, image = seed_image(G, 1)
    target = save_png(image, tmp_path / "seed1.png")
    (result,), _ = project_images(
        run, [target], num_steps=100, distance="pixel", device="cpu", progress=False
    )
    assert result.final_distance < 0.1 * result.start_distance
    w_avg = w_stats(G)[0]
    assert (result.ws[0] - true_ws[0]).norm() < 0.3 * (w_avg - true_ws[0]).norm()
    torch.testing.assert_close(result.ws, result.ws[:1].expand_as(result.ws))  # W: one w


def test_two_targets_write_their_folders_named_by_stem(
    sg2_run: Path, sg2_G: nn.Module, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    paths = [
        save_png(seed_image(sg2_G, s)[1], tmp_path / f"{n}.png") for s, n in ((1, "a"), (2, "b"))
    ]
    out = tmp_path / "out"
    args = ["--target", str(paths[0]), "--target", str(paths[1]), "--steps", "6"]
    assert (
        proj(str(sg2_run), *args, "--gif-every", "2", "--distance", "pixel", "--out", str(out)) == 0
    )
    printed = capsys.readouterr().out
    assert "distance: pixel + MS-SSIM (chosen)" in printed
    assert sorted(p.name for p in out.iterdir()) == ["a", "b"]
    for path in paths:
        folder = out / path.stem
        files = sorted(p.name for p in folder.iterdir())
        assert files == ["progress.gif", "proj.png", "projected_w.npy", "target.png"]
        ws = np.load(folder / "projected_w.npy")
        assert ws.dtype == np.float32 and ws.shape == (sg2_G.num_ws, sg2_G.w_dim)
        # proj.png is the image of projected_w with the stored constant noise
        expected = to_uint8(sg2_G.synthesis(torch.from_numpy(ws)[None], noise_mode="const"))[0, 0]
        np.testing.assert_array_equal(np.asarray(Image.open(folder / "proj.png")), expected.numpy())
        np.testing.assert_array_equal(
            np.asarray(Image.open(folder / "target.png")), np.asarray(Image.open(path))
        )
        with Image.open(folder / "progress.gif") as gif:
            assert gif.n_frames == 4  # w_avg, then steps 2, 4, 6
            assert gif.size == (2 * 256, 256)  # target | current, enlarged


def test_wplus_writes_one_w_per_layer(sg2_run: Path, sg2_G: nn.Module, tmp_path: Path) -> None:
    target = save_png(seed_image(sg2_G, 3)[1], tmp_path / "t.png")
    out = tmp_path / "out"
    assert proj(str(sg2_run), "--target", str(target), "--steps", "5", "--wplus", "--out", str(out),
                "--distance", "pixel") == 0  # fmt: skip
    ws = np.load(out / "t" / "projected_w.npy")
    assert ws.shape == (sg2_G.num_ws, sg2_G.w_dim)
    assert all(not np.allclose(ws[0], ws[i]) for i in range(1, sg2_G.num_ws))


def test_lpips_is_used_when_vgg_weights_are_given(
    sg2_run: Path, sg2_G: nn.Module, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    with torch.random.fork_rng():
        torch.manual_seed(0)
        features = vgg16_features()
    vgg = tmp_path / "vgg16-random.pth"
    torch.save({f"features.{k}": v for k, v in features.state_dict().items()}, vgg)
    _, image = seed_image(sg2_G, 4)
    target = save_png(image, tmp_path / "t.png")
    out = tmp_path / "out"
    assert proj(str(sg2_run), "--target", str(target), "--steps", "2", "--vgg-weights", str(vgg),
                "--out", str(out)) == 0  # fmt: skip
    printed = capsys.readouterr().out
    assert f"distance: LPIPS (VGG16 weights {vgg})" in printed
    # The printed start distance is LPIPS of the w_avg image, both enlarged 4x (8 -> 32 px).
    lpips = LPIPS(vgg16_weights=vgg, heads=resolve_heads())
    w_avg = w_stats(sg2_G)[0]
    start = sg2_G.synthesis(w_avg.expand(1, sg2_G.num_ws, -1), noise_mode="const")
    real = image[None].float() / 127.5 - 1
    big = [
        torch.nn.functional.interpolate(x, scale_factor=4, mode="nearest") for x in (start, real)
    ]
    expected = float(lpips(*big)[0])
    start_text = printed.split("distance ")[1].split(" at w_avg")[0]
    assert float(start_text) == pytest.approx(expected, rel=1e-3)
    assert expected > 0


def one_line_error(capsys: pytest.CaptureFixture) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("gankit project: error: "), err
    return err[0]


def test_bad_targets_are_one_line_errors(
    sg2_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    garbage = tmp_path / "notes.png"
    garbage.write_text("not an image")
    same = [tmp_path / "x" / "a.png", tmp_path / "y" / "a.png"]
    for path in same:
        path.parent.mkdir()
        Image.new("L", (8, 8)).save(path)
    cases = [
        (["--target", str(tmp_path)], "is a folder; give image files"),
        (["--target", str(tmp_path / "missing.png")], "no such file"),
        (["--target", str(garbage)], "notes.png (not a recognised image format)"),
        (
            ["--target", str(same[0]), "--target", str(same[1])],
            "would all be written to the folder",
        ),
        (["--target", str(same[0]), "--distance", "lpips"], "--distance lpips needs"),
    ]
    for args, message in cases:
        assert proj(str(sg2_run), *args, "--steps", "1", "--out", str(tmp_path / "o")) == 2
        assert message in one_line_error(capsys)


def test_a_run_without_a_mapping_network_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    run, _ = hand_made_run(tmp_path / "pg", "progan", z_dim=4, channel_base=16, channel_max=4)
    target = tmp_path / "t.png"
    Image.new("L", (8, 8)).save(target)
    assert proj(str(run), "--target", str(target), "--steps", "1") == 2
    assert "project needs a StyleGAN2 generator" in one_line_error(capsys)
