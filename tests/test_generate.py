"""`gankit generate` on hand-made runs: classes, class-by-row grids, 2-D points, errors; on a tiny
StyleGAN2 run trained through the CLI: official seeds, truncation, noise modes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from fake_runs import (
    SMALL_STYLEGAN2,
    FakeRun,
    expected_outputs,
    hand_made_run,
    make_run,
    official_z,
    register_tiny_models,
)
from gankit.cli import main
from gankit.errors import GankitError
from gankit.generate import (
    class_labels,
    class_rows,
    generate,
    seed_latents,
    write_samples,
)
from gankit.viz import to_uint8

RES = 8


@pytest.fixture(autouse=True)
def _tiny_models(monkeypatch: pytest.MonkeyPatch) -> None:
    register_tiny_models(monkeypatch)


@pytest.fixture
def cond_run(tmp_path: Path) -> FakeRun:
    return make_run(tmp_path / "cond", c_dim=10, resolution=RES)


@pytest.fixture
def point_run(tmp_path: Path) -> FakeRun:
    return make_run(tmp_path / "points", points=True)


def gen(*args: str) -> int:
    return main(["generate", *args, "--device", "cpu"])


def test_class_gives_every_sample_that_class(cond_run: FakeRun, tmp_path: Path) -> None:
    out = tmp_path / "sevens.npy"
    assert (
        gen(str(cond_run.path), "--class", "7", "--num", "12", "--seed", "5", "--out", str(out))
        == 0
    )
    expected = expected_outputs(cond_run.G, 12, 5, torch.full((12,), 7, dtype=torch.int64))
    np.testing.assert_array_equal(np.load(out), expected.numpy())
    labels = np.load(tmp_path / "sevens.labels.npy")
    assert labels.dtype == np.int64 and labels.tolist() == [7] * 12
    # Another class from the same latents gives other images.
    assert (
        gen(
            str(cond_run.path),
            "--class",
            "3",
            "--num",
            "12",
            "--seed",
            "5",
            "--out",
            str(tmp_path / "t.npy"),
        )
        == 0
    )
    assert not np.array_equal(np.load(tmp_path / "t.npy"), np.load(out))


def test_class_grid_matches_the_array(cond_run: FakeRun, tmp_path: Path) -> None:
    assert (
        gen(str(cond_run.path), "--class", "2", "--num", "6", "--out", str(tmp_path / "g.png")) == 0
    )
    expected = expected_outputs(cond_run.G, 6, 0, torch.full((6,), 2, dtype=torch.int64))
    grid = np.asarray(Image.open(tmp_path / "g.png"))
    assert grid.shape == (2 * RES, 3 * RES, 3)  # a plain square-ish grid: 2 rows x 3
    np.testing.assert_array_equal(grid[RES:, 2 * RES :], expected[5].permute(1, 2, 0).numpy())


@pytest.mark.parametrize("bad", ["10", "-1"])
def test_class_outside_the_range_is_a_clear_error(
    cond_run: FakeRun, tmp_path: Path, bad: str, capsys: pytest.CaptureFixture
) -> None:
    assert gen(str(cond_run.path), f"--class={bad}", "--out", str(tmp_path / "x.png")) == 2
    err = capsys.readouterr().err
    assert f"--class {bad} is outside this run's classes: use 0 to 9 (10 classes)" in err
    assert not (tmp_path / "x.png").exists()


def test_class_on_an_unconditional_run_is_a_clear_error(tmp_path: Path) -> None:
    run = make_run(tmp_path / "uncond")
    with pytest.raises(GankitError, match="--class 0: this run's generator is unconditional"):
        generate(run.path, num=4, device="cpu", class_index=0)


def test_conditional_grid_has_one_row_per_class(cond_run: FakeRun, tmp_path: Path) -> None:
    assert (
        gen(str(cond_run.path), "--num", "25", "--seed", "1", "--out", str(tmp_path / "a.npy")) == 0
    )
    assert (
        gen(str(cond_run.path), "--num", "25", "--seed", "1", "--out", str(tmp_path / "a.png")) == 0
    )
    labels = np.load(tmp_path / "a.labels.npy")
    assert labels.tolist() == [i % 10 for i in range(25)]  # balanced, cyclic
    images = np.load(tmp_path / "a.npy")
    expected = expected_outputs(cond_run.G, 25, 1, torch.from_numpy(labels))
    np.testing.assert_array_equal(images, expected.numpy())
    grid = np.asarray(Image.open(tmp_path / "a.png"))
    assert grid.shape == (10 * RES, 3 * RES, 3)  # 10 classes x ceil(25 / 10) columns
    for k in range(10):
        for j in range(3):
            cell = grid[k * RES : (k + 1) * RES, j * RES : (j + 1) * RES]
            i = j * 10 + k
            if i < 25:
                np.testing.assert_array_equal(cell, images[i].transpose(1, 2, 0))
            else:
                assert cell.max() == 0  # classes 5-9 have two samples: the third cell is empty


def test_class_rows_layout_and_few_samples_in_reading_order(tmp_path: Path) -> None:
    images = torch.arange(7, dtype=torch.uint8)[:, None, None, None].expand(7, 1, 1, 1)
    canvas, cols = class_rows(images, 3)
    assert cols == 3 and canvas[:, 0, 0, 0].tolist() == [0, 3, 6, 1, 4, 0, 2, 5, 0]
    assert class_labels(0, 4) is None
    assert class_labels(4, 6).tolist() == [0, 1, 2, 3, 0, 1]
    run = make_run(tmp_path / "many", c_dim=10, resolution=RES)
    samples = generate(run.path, num=6, device="cpu")  # fewer samples than classes
    assert not samples.rows_by_class and samples.labels.tolist() == [0, 1, 2, 3, 4, 5]
    path = write_samples(samples, tmp_path / "six.png")
    assert Image.open(path).size == (3 * RES, 2 * RES)


def test_conditional_folder_output_lists_labels(cond_run: FakeRun, tmp_path: Path) -> None:
    assert gen(str(cond_run.path), "--num", "12", "--out", str(tmp_path / "each") + "/") == 0
    files = sorted(p.name for p in (tmp_path / "each").iterdir())
    assert files == [f"{i:06d}.png" for i in range(12)] + ["labels.csv"]
    rows = (tmp_path / "each" / "labels.csv").read_text().splitlines()
    assert rows[0] == "file,label" and rows[1:] == [f"{i:06d}.png,{i % 10}" for i in range(12)]


def test_unconditional_run_writes_no_labels(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    run = make_run(tmp_path / "uncond", channels=1)
    assert gen(str(run.path), "--num", "5", "--seed", "2", "--out", str(tmp_path / "u.npy")) == 0
    np.testing.assert_array_equal(
        np.load(tmp_path / "u.npy"), expected_outputs(run.G, 5, 2, None).numpy()
    )
    assert not (tmp_path / "u.labels.npy").exists()
    assert "wrote 5 images (8x8) to" in capsys.readouterr().out


def test_points_npy_and_scatter(
    point_run: FakeRun, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    assert (
        gen(str(point_run.path), "--num", "300", "--seed", "4", "--out", str(tmp_path / "p.npy"))
        == 0
    )
    points = np.load(tmp_path / "p.npy")
    assert points.shape == (300, 2) and points.dtype == np.float32
    np.testing.assert_array_equal(points, expected_outputs(point_run.G, 300, 4, None).numpy())
    assert gen(str(point_run.path), "--out", str(tmp_path / "p.png")) == 0
    image = Image.open(tmp_path / "p.png")
    assert image.format == "PNG" and image.size == (480, 480)
    out = capsys.readouterr().out
    assert "wrote 300 points to" in out and "wrote 2500 points to" in out  # the default count


def test_points_from_a_checkpoint_file_know_their_mixture(point_run: FakeRun) -> None:
    ckpt_file = next((point_run.path / "checkpoints").glob("ckpt-*.pt"))
    samples = generate(ckpt_file, num=10, device="cpu")
    assert samples.kind == "points" and samples.mixture == "ring8" and len(samples) == 10


def test_points_into_a_folder_is_a_clear_error(
    point_run: FakeRun, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    assert gen(str(point_run.path), "--num", "10", "--out", str(tmp_path / "dir") + "/") == 2
    assert "generates 2-D points; use --out points.npy" in capsys.readouterr().err


# --------------------------------------------------------------------------- StyleGAN2 options


def synthesize(G: nn.Module, ws: torch.Tensor, noise_mode: str = "const") -> np.ndarray:
    with torch.no_grad():
        return to_uint8(G.synthesis(ws, noise_mode=noise_mode)).numpy()


def sample(run: Path, out: Path, *args: str) -> np.ndarray:
    assert gen(str(run), *args, "--out", str(out)) == 0
    return np.load(out)


def test_seed_latents_are_the_official_generate_latents() -> None:
    z = seed_latents(5, [85, 100, 0])
    assert z.dtype == torch.float32 and z.shape == (3, 5)
    for row, seed in zip(z, [85, 100, 0], strict=True):
        np.testing.assert_array_equal(row.numpy(), official_z(seed, 5)[0].float().numpy())


def test_stylegan2_sample_i_has_the_official_image_of_seed_plus_i(
    sg2_run: Path, sg2_G: nn.Module, tmp_path: Path
) -> None:
    images = sample(sg2_run, tmp_path / "a.npy", "--seed", "600", "--num", "3")
    assert images.shape == (3, 1, 8, 8) and images.dtype == np.uint8
    for i in range(3):  # as the official loop: one seed at a time, float64 z, const noise
        with torch.no_grad():
            official = to_uint8(sg2_G(official_z(600 + i, 4), noise_mode="const"))
        np.testing.assert_array_equal(images[i], official[0].numpy())
    assert not np.array_equal(images[0], images[1])
    # A later seed alone gives the same image as inside the longer request.
    np.testing.assert_array_equal(
        sample(sg2_run, tmp_path / "b.npy", "--seed", "602", "--num", "1")[0], images[2]
    )
    # psi 1 is no truncation at all.
    again = sample(sg2_run, tmp_path / "c.npy", "--seed", "600", "--num", "3", "--trunc", "1")
    np.testing.assert_array_equal(again, images)


def test_psi_0_gives_every_seed_the_image_of_w_avg(
    sg2_run: Path, sg2_G: nn.Module, tmp_path: Path
) -> None:
    images = sample(sg2_run, tmp_path / "t.npy", "--num", "4", "--trunc", "0")
    w_avg = sg2_G.mapping.w_avg.expand(1, sg2_G.num_ws, -1)
    for image in images:
        np.testing.assert_array_equal(image, synthesize(sg2_G, w_avg)[0])
    assert len({image.tobytes() for image in sample(sg2_run, tmp_path / "u.npy", "--num", "4")}) > 1


def test_cutoff_truncates_only_the_first_ws(
    sg2_run: Path, sg2_G: nn.Module, tmp_path: Path
) -> None:
    args = ("--seed", "3", "--num", "2", "--trunc", "0.2")
    cut = sample(sg2_run, tmp_path / "cut.npy", *args, "--trunc-cutoff", "2")
    z = torch.cat([official_z(3, 4), official_z(4, 4)])
    with torch.no_grad():
        ws = sg2_G.mapping(z, None)  # untruncated
    w_avg = sg2_G.mapping.w_avg
    expected = ws.clone()
    expected[:, :2] = w_avg + 0.2 * (ws[:, :2] - w_avg)
    np.testing.assert_array_equal(cut, synthesize(sg2_G, expected))
    whole = sample(sg2_run, tmp_path / "whole.npy", *args)
    np.testing.assert_array_equal(whole, synthesize(sg2_G, w_avg + 0.2 * (ws - w_avg)))
    assert not np.array_equal(cut, whole) and not np.array_equal(cut, synthesize(sg2_G, ws))


def test_conditional_stylegan2_takes_a_class_and_the_noise_modes(tmp_path: Path) -> None:
    run, G = hand_made_run(tmp_path / "cond", "stylegan2", c_dim=3, **SMALL_STYLEGAN2)
    args = ("--seed", "9", "--num", "2", "--class", "2", "--trunc", "0.5")
    const = sample(run, tmp_path / "k.npy", *args)
    z = torch.cat([official_z(9, 4), official_z(10, 4)])
    one_hot = torch.tensor([[0.0, 0.0, 1.0]] * 2)  # the official label input
    with torch.no_grad():
        expected = to_uint8(G(z, one_hot, truncation_psi=0.5, noise_mode="const")).numpy()
        other_class = to_uint8(G(z, one_hot.roll(1, 1), truncation_psi=0.5, noise_mode="const"))
    np.testing.assert_array_equal(const, expected)
    assert not np.array_equal(const, other_class.numpy())
    assert np.array_equal(labels := np.load(tmp_path / "k.labels.npy"), [2, 2]), labels
    with torch.no_grad():
        none = to_uint8(G(z, one_hot, truncation_psi=0.5, noise_mode="none")).numpy()
    np.testing.assert_array_equal(
        sample(run, tmp_path / "n.npy", *args, "--noise-mode", "none"), none
    )
    assert not np.array_equal(none, const)
    random = sample(run, tmp_path / "r.npy", *args, "--noise-mode", "random")
    assert not np.array_equal(random, const) and not np.array_equal(random, none)
    # Random noise is drawn from the seed: the command repeats itself.
    np.testing.assert_array_equal(
        sample(run, tmp_path / "r2.npy", *args, "--noise-mode", "random"), random
    )


@pytest.mark.parametrize(
    ("flag", "value"), [("--trunc", "0.7"), ("--trunc-cutoff", "2"), ("--noise-mode", "none")]
)
def test_style_options_on_a_progan_run_are_one_line_errors(
    tmp_path: Path, flag: str, value: str, capsys: pytest.CaptureFixture
) -> None:
    run, _ = hand_made_run(tmp_path / "pg", "progan", z_dim=4, channel_base=16, channel_max=4)
    assert gen(str(run), flag, value, "--out", str(tmp_path / "x.png")) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("gankit generate: error: ")
    assert f"{flag} applies to StyleGAN2 generators" in err[0] and "'progan'" in err[0]
    assert not (tmp_path / "x.png").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--trunc", "0.5", "--trunc-cutoff", "5"],
            "outside 0 .. 4: this generator has num_ws = 4",
        ),
        (["--trunc-cutoff", "2"], "give --trunc as well"),
        (["--seed", "4294967295", "--num", "2"], "the last sample's seed is 4294967296"),
    ],
)
def test_bad_stylegan2_options_are_one_line_errors(
    sg2_run: Path, tmp_path: Path, args: list[str], message: str, capsys: pytest.CaptureFixture
) -> None:
    assert gen(str(sg2_run), *args, "--out", str(tmp_path / "x.npy")) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err


# ------------------------------------------------ one sample per seed, stages, saved ws


def first_sample(run: Path, out: Path, seed: int, *args: str) -> np.ndarray:
    """Sample 0 of `gankit generate RUN --seed SEED --num 1 ARGS`."""
    return sample(run, out, "--seed", str(seed), "--num", "1", *args)[0]


def test_seeds_give_each_seed_the_first_sample_of_its_own_seed(
    sg2_run: Path, cond_run: FakeRun, tmp_path: Path
) -> None:
    pg, _ = hand_made_run(tmp_path / "pg", "progan", z_dim=4, channel_base=16, channel_max=4)
    cases = [(sg2_run, ("--trunc", "0.6")), (pg, ()), (cond_run.path, ("--class", "3"))]
    for run, args in cases:
        picked = sample(run, tmp_path / "s.npy", "--seeds", "7,2,30-31", *args)
        assert picked.shape[0] == 4
        for k, seed in enumerate([7, 2, 30, 31]):
            single = first_sample(run, tmp_path / "one.npy", seed, *args)
            np.testing.assert_array_equal(picked[k], single, err_msg=f"{run.name} seed {seed}")
    # StyleGAN2: consecutive seeds are the official --seeds, the same as --seed/--num.
    np.testing.assert_array_equal(
        sample(sg2_run, tmp_path / "a.npy", "--seeds", "600-602"),
        sample(sg2_run, tmp_path / "b.npy", "--seed", "600", "--num", "3"),
    )


def test_random_noise_is_seeded_per_seed(tmp_path: Path) -> None:
    run, _ = hand_made_run(tmp_path / "sg2", "stylegan2", **SMALL_STYLEGAN2)
    args = ("--noise-mode", "random", "--trunc", "0.8")
    picked = sample(run, tmp_path / "s.npy", "--seeds", "4,9", *args)
    for k, seed in enumerate([4, 9]):
        np.testing.assert_array_equal(picked[k], first_sample(run, tmp_path / "o.npy", seed, *args))


def test_sample_from_a_loaded_generator_is_the_command(sg2_run: Path, tmp_path: Path) -> None:
    from gankit.generate import load_generator
    from gankit.generate import sample as sample_seeds

    G, sampling, spec = load_generator(sg2_run, "cpu")
    got = sample_seeds(G, spec, sampling, seeds=[11, 3], truncation_psi=0.5)
    assert got.values.shape == (2, 1, 8, 8)
    for k, seed in enumerate([11, 3]):
        single = first_sample(sg2_run, tmp_path / "o.npy", seed, "--trunc", "0.5")
        np.testing.assert_array_equal(got.values[k].numpy(), single)


@pytest.fixture
def growing_progan(tmp_path: Path) -> tuple[Path, nn.Module]:
    """A 16 px ProGAN checkpoint recorded halfway through the 8 px fade-in."""
    run, G = hand_made_run(tmp_path / "pg", "progan", z_dim=4, channel_base=16, channel_max=4)
    path = next((run / "checkpoints").iterdir())
    state = torch.load(path, map_location="cpu", weights_only=False)
    state["sampling"] = {"resolution": 8, "alpha": 0.5}
    torch.save(state, path)
    return run, G


def test_stage_renders_earlier_stages_of_a_growing_run(
    growing_progan: tuple[Path, nn.Module], tmp_path: Path
) -> None:
    run, G = growing_progan
    default = sample(run, tmp_path / "d.npy", "--num", "3")
    assert default.shape == (3, 1, 8, 8)
    z = torch.randn(3, G.z_dim, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        for stage, (res, alpha) in {"8": (8, 0.5), "8:0.25": (8, 0.25), "4": (4, 1.0)}.items():
            got = sample(run, tmp_path / "s.npy", "--num", "3", "--stage", stage)
            expected = to_uint8(G(z, resolution=res, alpha=alpha)).numpy()
            np.testing.assert_array_equal(got, expected, err_msg=stage)
    np.testing.assert_array_equal(
        sample(run, tmp_path / "e.npy", "--num", "3", "--stage", "8"), default
    )
    # Alpha 0 is the faded branch: the 4 px image, nearest-upsampled.
    faded = sample(run, tmp_path / "f.npy", "--num", "3", "--stage", "8:0")
    small = sample(run, tmp_path / "g.npy", "--num", "3", "--stage", "4:1")
    np.testing.assert_array_equal(faded, small.repeat(2, axis=2).repeat(2, axis=3))
    assert not np.array_equal(faded, default)


@pytest.mark.parametrize(
    ("stage", "message"),
    [
        ("16", "has been trained at 4, 8 px (it is at 8 px, alpha 0.5)"),
        ("5", "has been trained at 4, 8 px"),
        ("8:0.7", "faded 8 px in only to alpha 0.5; choose an alpha in 0 .. 0.5"),
        ("4:1.5", "the fade-in alpha lies in 0 .. 1"),
        ("4:-0.1", "the fade-in alpha lies in 0 .. 1"),
        ("eight", "give a resolution, optionally with a fade-in alpha"),
    ],
)
def test_bad_stages_are_one_line_errors(
    growing_progan: tuple[Path, nn.Module],
    tmp_path: Path,
    stage: str,
    message: str,
    capsys: pytest.CaptureFixture,
) -> None:
    run, _ = growing_progan
    assert gen(str(run), "--stage", stage, "--out", str(tmp_path / "x.png")) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert not (tmp_path / "x.png").exists()


def test_stage_on_a_run_that_does_not_grow_is_an_error(
    sg2_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    assert gen(str(sg2_run), "--stage", "8", "--out", str(tmp_path / "x.png")) == 2
    assert "stages exist for progressive runs (progan, stylegan)" in capsys.readouterr().err


def seed_ws(G: nn.Module, seeds: list[int]) -> np.ndarray:
    """The untruncated ws `[N, num_ws, w_dim]` of seeds, as `gankit project` would save them."""
    with torch.no_grad():
        return G.mapping(seed_latents(G.z_dim, seeds), None).numpy()


@pytest.mark.parametrize("psi", ["1", "0.5"])
def test_saved_ws_render_as_their_seeds(
    sg2_run: Path, sg2_G: nn.Module, tmp_path: Path, psi: str
) -> None:
    np.save(tmp_path / "w.npy", seed_ws(sg2_G, [5])[0])  # projected_w.npy: [num_ws, w_dim]
    got = sample(sg2_run, tmp_path / "a.npy", "--ws", str(tmp_path / "w.npy"), "--trunc", psi)
    np.testing.assert_array_equal(
        got[0], first_sample(sg2_run, tmp_path / "o.npy", 5, "--trunc", psi)
    )
    np.save(tmp_path / "ws.npy", seed_ws(sg2_G, [5, 6, 7]))  # [N, num_ws, w_dim]
    args = ("--trunc", psi, "--trunc-cutoff", "2")
    got = sample(sg2_run, tmp_path / "b.npy", "--ws", str(tmp_path / "ws.npy"), *args)
    np.testing.assert_array_equal(got, sample(sg2_run, tmp_path / "c.npy", "--seeds", "5-7", *args))


def test_bad_ws_files_are_one_line_errors(
    sg2_run: Path, sg2_G: nn.Module, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    np.save(tmp_path / "wide.npy", np.zeros((4, 5), np.float32))
    (tmp_path / "text.npy").write_text("not an array")
    np.save(tmp_path / "ok.npy", seed_ws(sg2_G, [1])[0])
    pg, _ = hand_made_run(tmp_path / "pg", "progan", z_dim=4, channel_base=16, channel_max=4)
    cases = [
        (sg2_run, ["--ws", str(tmp_path / "wide.npy")], "takes float ws [num_ws, w_dim] = [4, 4]"),
        (sg2_run, ["--ws", str(tmp_path / "text.npy")], "is not a .npy array file"),
        (sg2_run, ["--ws", str(tmp_path / "none.npy")], "no such file"),
        (sg2_run, ["--ws", str(tmp_path / "ok.npy"), "--num", "2"], "leave out --num"),
        (sg2_run, ["--ws", str(tmp_path / "ok.npy"), "--seeds", "1"], "give one"),
        (sg2_run, ["--seeds", "1,2", "--seed", "3"], "--seed with --seeds"),
        (pg, ["--ws", str(tmp_path / "ok.npy")], "'progan', which has no mapping network"),
    ]
    for run, args, message in cases:
        assert gen(str(run), *args, "--out", str(tmp_path / "x.png")) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0], (args, err)
    assert not (tmp_path / "x.png").exists()
