"""`gankit style-mix`: the layer names and specs, and the figure of a tiny StyleGAN2 run trained
through the CLI against an independent recomputation of every cell."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from fake_runs import SMALL_STYLEGAN2, hand_made_run, official_z
from gankit.cli import main
from gankit.errors import GankitError
from gankit.stylemix import layer_resolution, named_layers, parse_layers, parse_seeds
from gankit.viz import to_uint8

#: num_ws of StyleGAN2 at each resolution: two per resolution from 4 px (the official 2 log2 R - 2).
NUM_WS = {8: 4, 16: 6, 32: 8, 64: 10, 1024: 18}


def mix(*args: str) -> int:
    return main(["style-mix", *args, "--device", "cpu"])


def one_line_error(capsys: pytest.CaptureFixture) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("gankit style-mix: error: "), err
    return err[0]


# ------------------------------------------------------------------------------ layers and seeds


def test_layer_numbers_follow_the_official_ws() -> None:
    assert [layer_resolution(i) for i in range(10)] == [4, 4, 8, 8, 16, 16, 32, 32, 64, 64]


def test_named_groups_at_8_32_64_and_1024_px() -> None:
    assert named_layers("coarse", NUM_WS[8], 8) == [0, 1, 2, 3]
    for name in ("middle", "fine"):  # an 8 px model is all coarse
        with pytest.raises(GankitError, match=f"this 8 px model has no {name} layers"):
            named_layers(name, NUM_WS[8], 8)
    assert named_layers("coarse", NUM_WS[32], 32) == [0, 1, 2, 3]
    assert named_layers("middle", NUM_WS[32], 32) == [4, 5, 6, 7]
    assert named_layers("fine", NUM_WS[32], 32) == [4, 5, 6, 7]  # above the coarse ones
    assert named_layers("fine", NUM_WS[16], 16) == [4, 5]
    assert named_layers("coarse", NUM_WS[64], 64) == [0, 1, 2, 3]
    assert named_layers("middle", NUM_WS[64], 64) == [4, 5, 6, 7]
    assert named_layers("fine", NUM_WS[64], 64) == [8, 9]
    assert named_layers("fine", NUM_WS[1024], 1024) == list(range(8, 18))  # the paper's 64-1024


def test_layer_specs_ranges_lists_names() -> None:
    assert parse_layers("0-6", 10, 64) == [0, 1, 2, 3, 4, 5, 6]
    assert parse_layers("0,1,2", 10, 64) == [0, 1, 2]
    assert parse_layers("fine, 1", 10, 64) == [1, 8, 9]
    assert parse_layers("Coarse,2-5", 10, 64) == [0, 1, 2, 3, 4, 5]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0-10", "layer 10 does not exist; this generator has num_ws = 10 style layers, 0-9"),
        ("3,10", "layer 10 does not exist; this generator has num_ws = 10"),
        ("6-2", "the range 6-2 runs backwards"),
        ("ears", "use layer numbers (a range 0-6 or a list 0,1,2) or the names coarse"),
        ("1,,2", "use layer numbers"),
    ],
)
def test_bad_layer_specs_are_errors(text: str, message: str) -> None:
    with pytest.raises(GankitError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_layers(text, 10, 64)


def test_seed_specs() -> None:
    assert parse_seeds("85,100,75", "--rows") == [85, 100, 75]
    assert parse_seeds("600-603,7", "--cols") == [600, 601, 602, 603, 7]
    with pytest.raises(GankitError, match="--rows 'a': give seeds as a list"):
        parse_seeds("a", "--rows")
    with pytest.raises(GankitError, match="--cols: seed 4294967296 is 4294967296"):
        parse_seeds("4294967296", "--cols")


# ------------------------------------------------------------------------------------ the figure


def own_ws(G: nn.Module, seed: int, psi: float = 1.0) -> torch.Tensor:
    """A seed's ws `[num_ws, w_dim]` as the official script makes them: map, then truncate by hand."""
    with torch.no_grad():
        w = G.mapping(official_z(seed, G.z_dim), None)[0]
    w_avg = G.mapping.w_avg
    return w_avg + (w - w_avg) * psi


def image_of(G: nn.Module, ws: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        return to_uint8(G.synthesis(ws[None], noise_mode="const"))[0].numpy()


def test_the_figure_against_an_independent_recomputation(
    sg2_run: Path, sg2_G: nn.Module, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    rows, cols, styles = [85, 100, 75], [55, 821], [1, 3]
    args = [str(sg2_run), "--rows", "85,100,75", "--cols", "55,821", "--styles", "1,3"]
    assert mix(*args, "--out", str(tmp_path / "mix.npy")) == 0
    assert "layers 1,3 from the columns" in capsys.readouterr().out
    figure = np.load(tmp_path / "mix.npy")
    assert figure.shape == (4, 3, 1, 8, 8) and figure.dtype == np.uint8
    assert figure[0, 0].max() == 0
    for j, seed in enumerate(cols):
        np.testing.assert_array_equal(figure[0, j + 1], image_of(sg2_G, own_ws(sg2_G, seed)))
    for i, seed in enumerate(rows):
        np.testing.assert_array_equal(figure[i + 1, 0], image_of(sg2_G, own_ws(sg2_G, seed)))
    for i, row_seed in enumerate(rows):
        for j, col_seed in enumerate(cols):
            ws = own_ws(sg2_G, row_seed)
            ws[styles] = own_ws(sg2_G, col_seed)[styles]
            cell = figure[i + 1, j + 1]
            np.testing.assert_array_equal(cell, image_of(sg2_G, ws))
            assert not np.array_equal(cell, figure[i + 1, 0])  # the column's layers changed it
    # The picture is the array laid out as a grid.
    assert mix(*args, "--out", str(tmp_path / "mix.png")) == 0
    picture = np.asarray(Image.open(tmp_path / "mix.png"))
    assert picture.shape == (4 * 8, 3 * 8)
    np.testing.assert_array_equal(picture, figure[:, :, 0].transpose(0, 2, 1, 3).reshape(32, 24))


def test_truncation_psi_0_makes_every_image_that_of_w_avg(
    sg2_run: Path, sg2_G: nn.Module, tmp_path: Path
) -> None:
    out = tmp_path / "t.npy"
    assert mix(str(sg2_run), "--rows", "1,2", "--cols", "3", "--trunc", "0", "--out", str(out)) == 0
    figure = np.load(out)
    w_avg_image = image_of(sg2_G, sg2_G.mapping.w_avg.expand(sg2_G.num_ws, -1))
    for i, j in [(0, 1), (1, 0), (2, 0), (1, 1), (2, 1)]:
        np.testing.assert_array_equal(figure[i, j], w_avg_image)
    # Half way: the own images are those of the official hand-made truncation.
    assert mix(str(sg2_run), "--rows", "1", "--cols", "3", "--trunc", "0.5", "--out", str(out)) == 0
    np.testing.assert_array_equal(np.load(out)[1, 0], image_of(sg2_G, own_ws(sg2_G, 1, 0.5)))


def test_folder_output_names_every_image_as_the_official_script(
    sg2_run: Path, tmp_path: Path
) -> None:
    args = [str(sg2_run), "--rows", "7,8", "--cols", "9", "--styles", "coarse"]
    assert mix(*args, "--out", str(tmp_path / "each") + "/") == 0
    assert mix(*args, "--out", str(tmp_path / "mix.npy")) == 0
    figure = np.load(tmp_path / "mix.npy")
    files = sorted(p.name for p in (tmp_path / "each").iterdir())
    assert files == ["7-7.png", "7-9.png", "8-8.png", "8-9.png", "9-9.png", "grid.png"]
    for name, (i, j) in {"9-9": (0, 1), "7-7": (1, 0), "8-9": (2, 1)}.items():
        image = np.asarray(Image.open(tmp_path / "each" / f"{name}.png"))
        np.testing.assert_array_equal(image, figure[i, j, 0])
    assert Image.open(tmp_path / "each" / "grid.png").size == (2 * 8, 3 * 8)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--styles", "4"], "layer 4 does not exist; this generator has num_ws = 4"),
        (["--styles", "0-9"], "layer 9 does not exist; this generator has num_ws = 4"),
        (["--styles", "middle"], "this 8 px model has no middle layers"),
        (["--styles", "x"], "use layer numbers"),
        (["--rows", "-3"], "--rows '-3': give seeds as a list"),
        (["--out", "mix.gif"], "use a .png/.jpg picture, a folder ending in '/', or a .npy"),
    ],
)
def test_bad_requests_are_one_line_errors(
    sg2_run: Path, tmp_path: Path, args: list[str], message: str, capsys: pytest.CaptureFixture
) -> None:
    given = dict(zip(args[::2], args[1::2], strict=True))
    base = {"--rows": "1,2", "--cols": "3", "--out": str(tmp_path / "m.npy")}
    flat = [text for key, value in {**base, **given}.items() for text in (key, value)]
    assert mix(str(sg2_run), *flat) == 2
    assert message in one_line_error(capsys)
    assert not (tmp_path / "m.npy").exists()


def test_a_progan_run_is_a_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    run, _ = hand_made_run(tmp_path / "pg", "progan", z_dim=4, channel_base=16, channel_max=4)
    assert mix(str(run), "--rows", "1", "--cols", "2", "--out", str(tmp_path / "m.png")) == 2
    assert "style-mix needs a StyleGAN2 generator" in (line := one_line_error(capsys))
    assert "'progan'" in line


def test_a_conditional_run_needs_a_class(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    run, G = hand_made_run(tmp_path / "cond", "stylegan2", c_dim=3, **SMALL_STYLEGAN2)
    args = [str(run), "--rows", "1", "--cols", "2", "--styles", "0,1"]
    assert mix(*args, "--out", str(tmp_path / "m.npy")) == 2
    assert "conditional on 3 classes: choose the class" in one_line_error(capsys)
    assert mix(*args, "--class", "1", "--out", str(tmp_path / "m.npy")) == 0
    with torch.no_grad():
        ws = G.mapping(torch.cat([official_z(1, 4), official_z(2, 4)]), torch.tensor([1, 1]))
    mixed = ws[0].clone()
    mixed[[0, 1]] = ws[1, [0, 1]]
    np.testing.assert_array_equal(np.load(tmp_path / "m.npy")[1, 1], image_of(G, mixed))


def test_each_seed_can_have_its_own_class(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """--row-classes / --col-classes: row seed i maps with its class, column seed j with its,
    and a cell mixes them (coarse layers of a "7" into a "3")."""
    run, G = hand_made_run(tmp_path / "cond", "stylegan2", c_dim=3, **SMALL_STYLEGAN2)
    out = str(tmp_path / "m.npy")
    args = [str(run), "--rows", "1,5", "--cols", "2", "--styles", "0,1", "--out", out]
    assert mix(*args, "--row-classes", "0,2", "--col-classes", "1") == 0
    with torch.no_grad():
        z = torch.cat([official_z(1, 4), official_z(5, 4), official_z(2, 4)])
        ws = G.mapping(z, torch.tensor([0, 2, 1]))
    figure = np.load(out)
    np.testing.assert_array_equal(figure[2, 0], image_of(G, ws[1]))  # seed 5 as class 2
    np.testing.assert_array_equal(figure[0, 1], image_of(G, ws[2]))  # seed 2 as class 1
    mixed = ws[1].clone()
    mixed[[0, 1]] = ws[2, [0, 1]]
    np.testing.assert_array_equal(figure[2, 1], image_of(G, mixed))
    # The same seed as another class is another image: the class reached the mapping.
    assert mix(*args, "--row-classes", "1", "--col-classes", "1") == 0
    assert not np.array_equal(np.load(out)[2, 0], figure[2, 0])
    for bad, message in [
        (["--row-classes", "0,1,2"], "give one class for all 2 seeds or one per seed"),
        (["--row-classes", "0", "--col-classes", "3"], "--col-classes: class 3 is outside"),
        (["--row-classes", "a"], "give class indices as a list"),
        (["--row-classes", "0"], "conditional on 3 classes: choose the class"),  # cols have none
    ]:
        assert mix(*args, *bad) == 2
        assert message in one_line_error(capsys)


def test_an_unconditional_run_refuses_classes(
    sg2_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    args = [str(sg2_run), "--rows", "1", "--cols", "2", "--out", str(tmp_path / "m.npy")]
    assert mix(*args, "--col-classes", "1") == 2
    assert "--col-classes: this run's generator is unconditional" in one_line_error(capsys)


def test_rows_from_saved_ws_mix_as_their_seeds(
    sg2_run: Path, sg2_G: nn.Module, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    from gankit.generate import seed_latents

    with torch.no_grad():  # untruncated ws, as `gankit project` saves them
        ws = sg2_G.mapping(seed_latents(sg2_G.z_dim, [85, 100]), None).numpy()
    np.save(tmp_path / "one.npy", ws[0])
    np.save(tmp_path / "two.npy", ws)
    common = [str(sg2_run), "--cols", "5,6", "--styles", "coarse", "--trunc", "0.7"]
    assert mix(*common, "--rows", "85,100", "--out", str(tmp_path / "seeds.npy")) == 0
    assert (
        mix(*common, "--row-ws", str(tmp_path / "two.npy"), "--out", str(tmp_path / "w.npy")) == 0
    )
    np.testing.assert_array_equal(np.load(tmp_path / "w.npy"), np.load(tmp_path / "seeds.npy"))
    assert "2 row ws and 2 column seeds" in capsys.readouterr().out
    assert (
        mix(*common, "--row-ws", str(tmp_path / "one.npy"), "--out", str(tmp_path / "d") + "/") == 0
    )
    assert (tmp_path / "d" / "w0-5.png").is_file() and (tmp_path / "d" / "w0-w0.png").is_file()
    np.testing.assert_array_equal(
        np.asarray(Image.open(tmp_path / "d" / "w0-6.png")),
        np.load(tmp_path / "seeds.npy")[1, 2, 0],
    )
    for args, message in [
        (
            ["--rows", "1", "--row-ws", str(tmp_path / "one.npy")],
            "or as saved ws (--row-ws FILE.npy)",
        ),
        ([], "or as saved ws (--row-ws FILE.npy)"),
    ]:
        assert mix(str(sg2_run), "--cols", "5", *args) == 2
        assert message in one_line_error(capsys)
    np.save(tmp_path / "bad.npy", np.zeros((3, 4), np.float32))
    assert mix(str(sg2_run), "--cols", "5", "--row-ws", str(tmp_path / "bad.npy")) == 2
    assert "[num_ws, w_dim] = [4, 4]" in one_line_error(capsys)
