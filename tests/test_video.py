"""`gankit video`: looped walks in W (a tiny StyleGAN2 run trained through the CLI) and in z
(ProGAN), against `gankit generate` and an independent slerp."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import gankit.video
from fake_runs import hand_made_run, make_run, register_tiny_models
from gankit.cli import main
from gankit.generate import load_generator
from gankit.nets import run_generator
from gankit.video import latent_walk, loop_path
from gankit.viz import to_uint8


def video(*args: str) -> int:
    return main(["video", *args, "--device", "cpu"])


def generated(run: Path, out: Path, seed: int, *args: str) -> np.ndarray:
    """`gankit generate --seed SEED --num 1` of a run, uint8 `[C, H, W]`."""
    assert main(["generate", str(run), "--seed", str(seed), "--num", "1", "--out", str(out),
                 "--device", "cpu", *args]) == 0  # fmt: skip
    return np.load(out)[0]


def one_line_error(capsys: pytest.CaptureFixture) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("gankit video: error: "), err
    return err[0]


def test_loop_path_visits_every_point_and_returns() -> None:
    points = torch.tensor([[0.0], [1.0], [3.0]])
    path = loop_path(points, 2, spherical=False)
    assert path.flatten().tolist() == [0.0, 0.5, 1.0, 2.0, 3.0, 1.5]


def test_w_walk_frames_are_the_seeds_generate_images_and_loop(
    sg2_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "walk.gif"
    assert video(str(sg2_run), "--seeds", "4-6", "--frames-per-seed", "5", "--trunc", "0.7",
                 "--out", str(out)) == 0  # fmt: skip
    assert "wrote a 15-frame walk through seeds 4-6" in capsys.readouterr().out
    frames = latent_walk(sg2_run, [4, 5, 6], frames_per_seed=5, truncation_psi=0.7, device="cpu")
    assert frames.shape[0] == 15
    for k, seed in enumerate((4, 5, 6)):
        expected = generated(sg2_run, tmp_path / f"g{seed}.npy", seed, "--trunc", "0.7")
        np.testing.assert_array_equal(frames[5 * k].numpy(), expected)
    with Image.open(out) as gif:
        assert gif.n_frames == 15
        np.testing.assert_array_equal(np.asarray(gif.convert("L")), frames[0, 0].numpy())
    first, last, seed6 = (frames[i].float() for i in (0, 14, 10))
    # The last frame is 4/5 of the way back from seed 6 to the first seed.
    assert (last - first).abs().mean() < 0.5 * (seed6 - first).abs().mean()


def test_progan_walks_in_z_along_great_circles(tmp_path: Path) -> None:
    run, _ = hand_made_run(tmp_path / "pg", "progan", z_dim=4, channel_base=16, channel_max=4)
    out = tmp_path / "walk.gif"
    assert video(str(run), "--seeds", "3,5", "--frames-per-seed", "3", "--out", str(out)) == 0
    frames = latent_walk(run, [3, 5], frames_per_seed=3, device="cpu")
    assert frames.shape[0] == 6
    np.testing.assert_array_equal(frames[0].numpy(), generated(run, tmp_path / "a.npy", 3))
    np.testing.assert_array_equal(frames[3].numpy(), generated(run, tmp_path / "b.npy", 5))
    # Frame 1 is one third of the way along the great circle from seed 3's z to seed 5's.
    G, kwargs, _ = load_generator(run, "cpu")
    a, b = (torch.randn(1, 4, generator=torch.Generator().manual_seed(s))[0] for s in (3, 5))
    omega = torch.arccos(a.dot(b) / (a.norm() * b.norm()))
    z = (torch.sin(2 / 3 * omega) * a + torch.sin(omega / 3) * b) / torch.sin(omega)
    expected = to_uint8(run_generator(G, z[None], None, kwargs))[0].int()
    assert (frames[1].int() - expected).abs().max() <= 1
    with Image.open(out) as gif:
        assert gif.n_frames == 6


def test_refusals_are_one_line_errors(
    sg2_run: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    register_tiny_models(monkeypatch)
    points = make_run(tmp_path / "points", points=True).path
    monkeypatch.setattr(gankit.video, "_has_ffmpeg", lambda: False)
    cases = [
        (points, ["--seeds", "0-3"], "makes 2-D points, not images"),
        (sg2_run, ["--seeds", "0", "--out", str(tmp_path / "w.gif")], "at least two seeds"),
        (sg2_run, ["--seeds", "0-1", "--out", str(tmp_path / "w.mp4")], "or use a .gif"),
        (sg2_run, ["--seeds", "0-1", "--out", str(tmp_path / "w.avi")], "as a .gif (or .mp4)"),
        (sg2_run, ["--seeds", "a-b", "--out", str(tmp_path / "w.gif")], "give seeds as a list"),
    ]
    for run, args, message in cases:
        args = args if "--out" in args else [*args, "--out", str(tmp_path / "w.gif")]
        assert video(str(run), *args) == 2
        assert message in one_line_error(capsys)


@pytest.mark.skipif(
    not gankit.video._has_ffmpeg(), reason="imageio and imageio-ffmpeg not installed (test extra)"
)
def test_mp4_walk_reads_back_as_the_frames(sg2_run: Path, tmp_path: Path) -> None:
    import imageio.v2 as imageio

    out = tmp_path / "walk.mp4"
    assert video(str(sg2_run), "--seeds", "1,2", "--frames-per-seed", "4", "--out", str(out)) == 0
    frames = latent_walk(sg2_run, [1, 2], frames_per_seed=4, device="cpu")
    with imageio.get_reader(out) as reader:
        assert reader.get_meta_data()["fps"] == 25
        decoded = np.stack([frame for frame in reader])
    assert decoded.shape[0] == 8 and decoded.shape[1:3] == frames.shape[2:]
    # greyscale written as equal RGB channels; H.264 is lossy, so compare on average
    expected = frames.permute(0, 2, 3, 1).float().numpy()
    assert np.abs(decoded.astype(np.float32) - expected).mean() < 6
