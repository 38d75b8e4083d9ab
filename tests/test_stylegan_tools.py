"""The StyleGAN2 tools on a StyleGAN (v1) run trained through the CLI and stopped while it grows
(16 px model, halfway through the fade-in of 8x8): `generate` with truncation, `style-mix`,
`video`, `project` and PPL all render the stage the run reached, against independent
recomputations on the run's G_ema."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from gankit.cli import main
from gankit.generate import load_generator, seed_latents
from gankit.metrics.ppl import EPSILON, perceptual_path_length, slerp
from gankit.project import project_images
from gankit.viz import to_uint8

TINY = [
    "--set", "model.arch.z_dim=4", "--set", "model.arch.w_dim=4",
    "--set", "model.arch.mapping_layers=2", "--set", "model.arch.channel_base=32",
    "--set", "model.arch.channel_max=4", "--set", "train.grid_size=4",
    "--set", "recipe.args.start_resolution=4", "--set", "recipe.args.batch_sizes={}",
    "--set", "recipe.args.phase_kimg={4: [0, 0.008], 8: [0.016, 0.1], 16: [0.1, 0.1]}",
]  # fmt: skip

pytestmark = pytest.mark.slow  # one shared tiny run of a few seconds


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """16 px StyleGAN on digits, 4 iterations of 4 images: 2 at 4x4, 2 into the 8x8 fade-in."""
    out = tmp_path_factory.mktemp("stylegan-tools") / "run"
    args = ["train", "stylegan", "--data", "digits", "--resolution", "16", "--batch", "4"]
    args += ["--kimg", "0.016", "--out", str(out), "--device", "cpu", "--no-progress", *TINY]
    assert main(args) == 0
    return out


@pytest.fixture(scope="module")
def G(run: Path) -> nn.Module:
    G = load_generator(run, "cpu")[0]
    with torch.no_grad():  # noise strong enough to matter, so the noise modes show
        for name, p in G.named_parameters():
            if name.endswith("noise_weight"):
                p.fill_(0.5)
    return G


def image_of(G: nn.Module, ws: Tensor) -> np.ndarray:
    with torch.no_grad():
        return to_uint8(G.synthesis(ws, noise_mode="const")).numpy()


def test_the_run_stopped_in_the_fade_in_and_g_ema_knows_it(G: nn.Module) -> None:
    assert G.synthesis.stage() == (8, 0.25)  # the last step's stage: 4 of 16 images faded


def test_generate_renders_the_stage_and_truncation_pulls_towards_w_avg(
    run: Path, G: nn.Module, tmp_path: Path
) -> None:
    out = tmp_path / "g.npy"
    base = ["generate", str(run), "--seed", "3", "--num", "3", "--device", "cpu"]
    assert main([*base, "--trunc", "1", "--out", str(out)]) == 0
    images = np.load(out)
    assert images.shape == (3, 1, 8, 8)
    G0 = load_generator(run, "cpu")[0]  # the weights as saved
    z = seed_latents(G0.z_dim, [3, 4, 5])
    np.testing.assert_array_equal(images, image_of(G0, G0.mapping(z)))
    # Without --trunc: the official G_style default for pictures, psi 0.7 on the first 8 ws
    # (all 6 of this 16 px model).
    assert main([*base, "--out", str(out)]) == 0
    with torch.no_grad():
        w_avg = G0.mapping.w_avg
        official = w_avg + 0.7 * (G0.mapping(z) - w_avg)
    np.testing.assert_array_equal(np.load(out), image_of(G0, official))
    assert main([*base, "--trunc", "0", "--out", str(out)]) == 0
    truncated = np.load(out)
    np.testing.assert_array_equal(truncated[0], truncated[2])
    w_avg = G0.mapping.w_avg.expand(1, G0.num_ws, -1)
    np.testing.assert_array_equal(truncated[:1], image_of(G0, w_avg))
    assert main([*base, "--trunc", "0", "--trunc-cutoff", "2", "--out", str(out)]) == 0
    assert not np.array_equal(np.load(out)[0], np.load(out)[2])  # layers 2-7 keep their ws


def test_style_mix_copies_the_columns_layers_into_each_row(run: Path, tmp_path: Path) -> None:
    out = tmp_path / "mix.npy"
    args = [
        "style-mix",
        str(run),
        "--rows",
        "1,2",
        "--cols",
        "7",
        "--styles",
        "0-1",
        "--trunc",
        "1",
    ]
    assert main([*args, "--out", str(out), "--device", "cpu"]) == 0
    figure = np.load(out)
    assert figure.shape == (3, 2, 1, 8, 8)
    G0 = load_generator(run, "cpu")[0]
    rows = G0.mapping(seed_latents(G0.z_dim, [1, 2]))
    col = G0.mapping(seed_latents(G0.z_dim, [7]))
    mixed = rows.clone()
    mixed[:, :2] = col[:, :2]
    np.testing.assert_array_equal(figure[1:, 1], image_of(G0, mixed))
    np.testing.assert_array_equal(figure[0, 1], image_of(G0, col)[0])


def test_video_walks_through_the_seeds_images(run: Path, tmp_path: Path) -> None:
    out = tmp_path / "walk.gif"
    args = ["video", str(run), "--seeds", "1-2", "--frames-per-seed", "3", "--trunc", "1"]
    args += ["--out", str(out)]
    assert main([*args, "--device", "cpu"]) == 0
    from PIL import Image

    G0 = load_generator(run, "cpu")[0]
    with Image.open(out) as gif:
        assert gif.n_frames == 6
        first = np.asarray(gif.convert("L"))
    expected = image_of(G0, G0.mapping(seed_latents(G0.z_dim, [1])))[0, 0]
    np.testing.assert_array_equal(first, expected)


def test_project_finds_a_w_that_renders_closer_to_the_target(run: Path, tmp_path: Path) -> None:
    from PIL import Image

    G0 = load_generator(run, "cpu")[0]
    target = image_of(G0, G0.mapping(seed_latents(G0.z_dim, [5])))[0, 0]
    path = tmp_path / "t.png"
    Image.fromarray(target).resize((16, 16), Image.Resampling.NEAREST).save(path)
    (result,), _ = project_images(
        run, [path], num_steps=30, distance="pixel", device="cpu", progress=False
    )
    assert result.ws.shape == (G0.num_ws, G0.w_dim)
    assert result.final_distance < result.start_distance


def _sq_l2(a: Tensor, b: Tensor) -> Tensor:
    return (a - b).square().flatten(1).sum(1)


@pytest.mark.parametrize("space", ["w", "z"])
def test_ppl_in_w_and_z_is_the_path_length_at_the_runs_stage(G: nn.Module, space: str) -> None:
    got = perceptual_path_length(
        G, num_samples=4, batch_size=4, space=space, distance=_sq_l2, progress=False
    )
    gen, buffers = torch.Generator().manual_seed(0), dict(G.named_buffers())
    with torch.no_grad():
        z = torch.randn(8, G.z_dim, generator=gen, dtype=torch.float64).float()
        t = torch.rand(4, generator=gen, dtype=torch.float64).float()
        for name in [n for n in buffers if n.endswith("noise_const")]:
            buffers[name].copy_(
                torch.randn(buffers[name].shape, generator=gen, dtype=torch.float64)
            )
        z0, z1 = z.chunk(2)
        if space == "w":
            w0, w1 = G.mapping(z).chunk(2)
            ends = (w0, w0.lerp(w1, EPSILON))  # "end" sampling: t = 0
        else:  # slerp in z from t = 0
            zs = torch.cat([slerp(z0, z1, 0 * t), slerp(z0, z1, 0 * t + EPSILON)])
            ends = G.mapping(zs).chunk(2)
        # Both ends in one batch, as the metric runs them: the distances divide by eps^2 = 1e-8,
        # so float32 rounding that differs between batch shapes (AVX-512 kernels) would show.
        images = G.synthesis(torch.cat(ends), noise_mode="const").chunk(2)
    assert images[0].shape[-1] == 8  # the run's stage
    expected = (_sq_l2(*images) / EPSILON**2).double().mean()
    assert got["ppl_unfiltered"] == pytest.approx(float(expected), rel=1e-4)
