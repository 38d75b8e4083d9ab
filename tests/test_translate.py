"""`gankit translate` on a tiny CycleGAN run trained through the CLI (grey domain A, RGB domain
B): every PNG written is checked against round((G(x) + 1) * 127.5) of the generator loaded
from the checkpoint directly; sizes, inputs (folders, zips, odd modes), tiles, errors."""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from gankit.cli import main
from gankit.errors import GankitError
from gankit.nets import build_nets
from gankit.train import checkpoint as ckpt
from gankit.translate import (
    Translator,
    blend_weights,
    load_translator,
    tile_starts,
    translate_image,
    translate_tiled,
)
from two_domain import write_unpaired_folder

TINY_CYCLEGAN = [
    "--set", "model.arch.ngf=2", "--set", "model.arch.ndf=2", "--set", "model.arch.n_blocks=1",
    "--set", "model.arch.netD=n_layers", "--set", "model.arch.n_layers_d=1",
]  # fmt: skip


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CycleGAN run of 4 images (a snapshot after each) on 8 px grey A and RGB B images."""
    root = tmp_path_factory.mktemp("cyclegan")
    data = write_unpaired_folder(root / "AB")
    args = ["train", "cyclegan", "--data", str(data), "--out", str(root / "run"), "--kimg"]
    args += ["0.004", "--device", "cpu", "--threads", "1", "--no-progress", *TINY_CYCLEGAN]
    assert main(args) == 0
    return root / "run"


def translate(run: Path, direction: str, source: Path, out: Path, *more: str) -> int:
    return main(
        ["translate", str(run), "--direction", direction, "--input", str(source),
         "--out", str(out), "--device", "cpu", "--no-progress", *more]
    )  # fmt: skip


def generator(run: Path, name: str, checkpoint: str | None = None) -> nn.Module:
    """Net `name` of the run's newest (or the named) checkpoint, built and loaded the plain way."""
    folder = run / "checkpoints"
    path = folder / checkpoint if checkpoint else ckpt.list_checkpoints(folder)[-1]
    state = ckpt.load_checkpoint(path)
    G = build_nets(state["model"])[name]
    G.load_state_dict(state["nets"][name])
    return G.eval()


@torch.no_grad()
def expected(G: nn.Module, pixels: np.ndarray, pad_mode: str = "reflect") -> np.ndarray:
    """uint8 `[H, W(, C)]` of G on uint8 pixels `[H, W(, C)]`, padded right and bottom to
    multiples of 4 (at least 8) and cropped back."""
    chw = pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1)
    x = torch.from_numpy(chw.copy())[None].float() / 127.5 - 1
    h, w = x.shape[-2:]
    pad_h, pad_w = max(-h % 4 + h, 8) - h, max(-w % 4 + w, 8) - w
    y = G(F.pad(x, (0, pad_w, 0, pad_h), mode=pad_mode))[0, :, :h, :w]
    out = ((y + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()
    return out[..., 0] if out.shape[-1] == 1 else out


def pixels(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def save(array: np.ndarray, path: Path, mode: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array, mode).save(path)
    return path


def read(path: Path) -> tuple[str, np.ndarray]:
    with Image.open(path) as im:
        return im.mode, np.asarray(im)


def test_folder_with_subfolder_a2b_gives_G_ab_of_each_image(run: Path, tmp_path: Path) -> None:
    grey, colour = pixels((8, 8), 1), pixels((12, 16, 3), 2)
    save(grey, tmp_path / "in" / "x.png")
    save(colour, tmp_path / "in" / "sub" / "y.jpg")
    assert translate(run, "a2b", tmp_path / "in", tmp_path / "out") == 0
    G = generator(run, "G_ab")
    mode, got = read(tmp_path / "out" / "x.png")
    assert mode == "RGB" and got.shape == (8, 8, 3)
    np.testing.assert_array_equal(got, expected(G, grey))
    # An RGB input into the grey domain A: PIL's "L" conversion of the decoded JPEG.
    with Image.open(tmp_path / "in" / "sub" / "y.jpg") as im:
        luma = np.asarray(im.convert("L"))
    mode, got = read(tmp_path / "out" / "sub" / "y.png")
    assert mode == "RGB" and got.shape == (12, 16, 3)
    np.testing.assert_array_equal(got, expected(G, luma))


def test_odd_size_is_reflect_padded_and_cropped_back(run: Path, tmp_path: Path) -> None:
    grey = pixels((21, 13), 3)  # 13 wide, 21 high
    save(grey, tmp_path / "odd.png")
    assert translate(run, "a2b", tmp_path / "odd.png", tmp_path / "out") == 0
    _, got = read(tmp_path / "out" / "odd.png")
    assert got.shape == (21, 13, 3)
    np.testing.assert_array_equal(got, expected(generator(run, "G_ab"), grey))


def test_tiny_image_falls_back_to_replicate_padding(run: Path, tmp_path: Path) -> None:
    grey = pixels((3, 5), 4)  # reflection cannot pad 3 px to 8
    save(grey, tmp_path / "tiny.png")
    assert translate(run, "a2b", tmp_path / "tiny.png", tmp_path / "out.png") == 0
    _, got = read(tmp_path / "out.png")
    np.testing.assert_array_equal(got, expected(generator(run, "G_ab"), grey, "replicate"))


def test_b2a_translates_rgb_rgba_palette_into_the_grey_domain(run: Path, tmp_path: Path) -> None:
    colour = pixels((8, 8, 3), 5)
    save(colour, tmp_path / "in" / "rgb.png")
    rgba = np.concatenate([colour, np.zeros((8, 8, 1), np.uint8)], axis=2)  # all transparent
    save(rgba, tmp_path / "in" / "rgba.png", "RGBA")
    Image.fromarray(colour).quantize(4).save(tmp_path / "in" / "palette.png")
    assert translate(run, "b2a", tmp_path / "in", tmp_path / "out") == 0
    G = generator(run, "G_ba")
    mode, got = read(tmp_path / "out" / "rgb.png")
    assert mode == "L" and got.shape == (8, 8)
    np.testing.assert_array_equal(got, expected(G, colour))
    # Transparent pixels are shown on white, as training composites them.
    np.testing.assert_array_equal(
        read(tmp_path / "out" / "rgba.png")[1], expected(G, np.full_like(colour, 255))
    )
    with Image.open(tmp_path / "in" / "palette.png") as im:
        palette_rgb = np.asarray(im.convert("RGB"))
    np.testing.assert_array_equal(
        read(tmp_path / "out" / "palette.png")[1], expected(G, palette_rgb)
    )


def test_sixteen_bit_grey_is_scaled_to_eight_bits(run: Path, tmp_path: Path) -> None:
    deep = (pixels((8, 8), 6).astype(np.uint16) * 257).astype(np.uint16)
    Image.fromarray(deep).save(tmp_path / "deep.png")
    assert translate(run, "a2b", tmp_path / "deep.png", tmp_path / "out") == 0
    eight = (deep // 257).astype(np.uint8)
    np.testing.assert_array_equal(
        read(tmp_path / "out" / "deep.png")[1], expected(generator(run, "G_ab"), eight)
    )


def test_zip_keeps_subfolders_below_its_top_folder(run: Path, tmp_path: Path) -> None:
    a, b = pixels((8, 8), 7), pixels((8, 12), 8)
    archive = tmp_path / "in.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for name, array in (("photos/a.png", a), ("photos/deep/b.png", b)):
            save(array, tmp_path / "tmp.png")
            z.write(tmp_path / "tmp.png", name)
    assert translate(run, "a2b", archive, tmp_path / "out") == 0
    G = generator(run, "G_ab")
    np.testing.assert_array_equal(read(tmp_path / "out" / "a.png")[1], expected(G, a))
    np.testing.assert_array_equal(read(tmp_path / "out" / "deep" / "b.png")[1], expected(G, b))


def test_npy_holds_uint8_nchw_like_generate(run: Path, tmp_path: Path) -> None:
    images = [pixels((8, 8, 3), 10 + k) for k in range(3)]
    for k, image in enumerate(images):
        save(image, tmp_path / "in" / f"{k}.png")
    assert translate(run, "b2a", tmp_path / "in", tmp_path / "out.npy") == 0
    array = np.load(tmp_path / "out.npy")
    assert array.dtype == np.uint8 and array.shape == (3, 1, 8, 8)
    G = generator(run, "G_ba")
    for k, image in enumerate(images):
        np.testing.assert_array_equal(array[k, 0], expected(G, image))


def test_npy_of_different_sizes_is_refused_naming_both(
    run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    save(pixels((8, 8)), tmp_path / "in" / "a.png")
    save(pixels((8, 12)), tmp_path / "in" / "b.png")
    assert translate(run, "a2b", tmp_path / "in", tmp_path / "out.npy") == 2
    err = capsys.readouterr().err
    assert "8x8" in err and "12x8" in err and "a.png" in err and "b.png" in err
    assert not (tmp_path / "out.npy").exists()


def test_resolution_scales_the_width_keeping_the_aspect(run: Path, tmp_path: Path) -> None:
    grey = pixels((21, 13), 11)
    save(grey, tmp_path / "odd.png")
    assert translate(run, "a2b", tmp_path / "odd.png", tmp_path / "out", "--resolution", "8") == 0
    _, got = read(tmp_path / "out" / "odd.png")
    assert got.shape == (12, 8, 3)  # 8 wide, 21 * 8 // 13 = 12 high
    resized = np.asarray(Image.fromarray(grey).resize((8, 12), Image.Resampling.BICUBIC))
    np.testing.assert_array_equal(got, expected(generator(run, "G_ab"), resized))


def test_checkpoint_option_picks_an_older_snapshot(run: Path, tmp_path: Path) -> None:
    grey = pixels((8, 8), 12)
    save(grey, tmp_path / "x.png")
    name = ckpt.list_checkpoints(run / "checkpoints")[0].name
    assert translate(run, "a2b", tmp_path / "x.png", tmp_path / "out", "--checkpoint", name) == 0
    got = read(tmp_path / "out" / "x.png")[1]
    np.testing.assert_array_equal(got, expected(generator(run, "G_ab", name), grey))
    assert not np.array_equal(got, expected(generator(run, "G_ab"), grey))  # it trained since


def test_a_corrupt_newest_checkpoint_falls_back_with_a_note(
    run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    copy = tmp_path / "run"
    shutil.copytree(run / "checkpoints", copy / "checkpoints")
    *older, newest = ckpt.list_checkpoints(copy / "checkpoints")
    newest.write_bytes(newest.read_bytes()[:100])
    grey = pixels((8, 8), 16)
    save(grey, tmp_path / "x.png")
    assert translate(copy, "a2b", tmp_path / "x.png", tmp_path / "out") == 0
    assert f"skipping checkpoint {str(newest)!r}" in capsys.readouterr().err
    got = read(tmp_path / "out" / "x.png")[1]
    np.testing.assert_array_equal(got, expected(generator(run, "G_ab", older[-1].name), grey))


def test_tile_at_least_the_image_is_the_one_pass_image(run: Path, tmp_path: Path) -> None:
    save(pixels((21, 13), 13), tmp_path / "odd.png")
    assert translate(run, "a2b", tmp_path / "odd.png", tmp_path / "one.png") == 0
    assert translate(run, "a2b", tmp_path / "odd.png", tmp_path / "tiled.png", "--tile", "21") == 0
    np.testing.assert_array_equal(read(tmp_path / "tiled.png")[1], read(tmp_path / "one.png")[1])


def test_tiles_give_the_full_size_close_to_one_pass(run: Path) -> None:
    tr = load_translator(run, "a2b", device="cpu")
    x = torch.from_numpy(pixels((1, 1, 100, 130), 14)).float() / 127.5 - 1
    whole, tiled = translate_image(tr, x), translate_image(tr, x, tile=64)
    assert tiled.shape == whole.shape == (1, 3, 100, 130)
    # Each tile is normalised by its own statistics and sees its own borders: close, not equal.
    assert 0 < (tiled - whole).abs().mean() < 0.3 * whole.std()


def test_blending_is_exact_for_a_pointwise_generator() -> None:
    """With a generator that sees one pixel at a time, tiles blend to the one-pass image."""
    G = nn.Sequential(nn.Conv2d(1, 3, 1), nn.Tanh()).eval()
    tr = Translator(G, "a2b", Path("x.pt"), 1, 3, 4, 8, torch.device("cpu"))
    x = torch.rand(1, 1, 37, 50) * 2 - 1
    torch.testing.assert_close(translate_tiled(tr, x, 16), tr(x), rtol=0, atol=1e-6)


def test_tile_layout_and_ramps() -> None:
    assert tile_starts(40, 16, 4) == [0, 12, 24]  # 4 px overlaps, evenly spread
    assert tile_starts(260, 128, 4) == [0, 64, 132]  # starts on the stride-4 grid
    assert tile_starts(16, 16, 4) == [0]
    first, second = blend_weights([0, 12], 0, 16), blend_weights([0, 12], 1, 16)
    torch.testing.assert_close(first[12:], torch.tensor([0.875, 0.625, 0.375, 0.125]))
    torch.testing.assert_close(first[12:] + second[:4], torch.ones(4))
    assert (first[:12] == 1).all() and (second[4:] == 1).all()


def test_out_of_memory_is_retried_in_tiles(run: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import gankit.translate as translate_module

    monkeypatch.setattr(translate_module, "OOM_TILE", 16)
    tr = load_translator(run, "a2b", device="cpu")
    real = tr.G

    def small_only(x: torch.Tensor) -> torch.Tensor:
        if max(x.shape[-2:]) > 16:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 9.00 GiB")
        return real(x)

    tr.G = small_only  # type: ignore[assignment]
    notes: list[str] = []
    x = torch.from_numpy(pixels((1, 1, 30, 40), 15)).float() / 127.5 - 1
    got = translate_image(tr, x, note=notes.append)
    tr.G = real
    torch.testing.assert_close(got, translate_tiled(tr, x, 16), rtol=0, atol=0)
    assert len(notes) == 1 and "40x30" in notes[0] and "16 px tiles" in notes[0]


def test_name_clash_is_refused_before_writing(
    run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    save(pixels((8, 8)), tmp_path / "in" / "a.png")
    save(pixels((8, 8)), tmp_path / "in" / "a.bmp")
    assert translate(run, "a2b", tmp_path / "in", tmp_path / "out") == 2
    err = capsys.readouterr().err
    assert "a.png" in err and "a.bmp" in err and "'a.png'" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_a_run_without_translation_generators_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = {
        "format": ckpt.FORMAT,
        "version": ckpt.VERSION,
        "cur_nimg": 0,
        "nets": {"G": {}, "D": {}, "G_ema": {}},
    }
    state["model"] = {
        "name": "dcgan",
        "img_resolution": 8,
        "img_channels": 3,
        "c_dim": 0,
        "arch": {},
    }
    ckpt.save_atomic(state, tmp_path / "run" / "checkpoints" / ckpt.checkpoint_name(0))
    save(pixels((8, 8)), tmp_path / "x.png")
    assert translate(tmp_path / "run", "a2b", tmp_path / "x.png", tmp_path / "out") == 2
    err = capsys.readouterr().err
    assert "'dcgan' model" in err and "not a translation model" in err
    assert f"gankit generate {tmp_path / 'run'}" in err
    with pytest.raises(GankitError, match="G_ab and G_ba"):
        load_translator(tmp_path / "run", "b2a")


def test_corrupt_images_are_named(
    run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    save(pixels((8, 8)), tmp_path / "in" / "good.png")
    (tmp_path / "in" / "junk.png").write_bytes(b"not an image at all")
    assert translate(run, "a2b", tmp_path / "in", tmp_path / "out") == 2
    err = capsys.readouterr().err
    assert "junk.png (not a recognised image format)" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()  # found while reading the headers, before any work
    # Cut short: the header reads, the pixels do not.
    whole = (tmp_path / "in" / "good.png").read_bytes()
    (tmp_path / "in" / "junk.png").write_bytes(whole[: len(whole) // 2])
    assert translate(run, "a2b", tmp_path / "in", tmp_path / "out") == 2
    assert "cannot read the input image" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("direction", "source", "extra", "message"),
    [
        ("a2b", "missing", [], "does not exist"),
        ("a2b", "empty", [], "no images found in the folder"),
        ("x2y", "x.png", [], "--direction 'x2y': use a2b"),
        ("a2b", "x.png", ["--tile", "0"], "--tile must be at least 1 px"),
        ("a2b", "x.png", ["--device", "mps"], "'mps': this PyTorch build or machine has no MPS"),
    ],
)
def test_bad_arguments_are_one_line_errors(
    run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    direction: str, source: str, extra: list[str], message: str,
) -> None:  # fmt: skip
    (tmp_path / "empty").mkdir()
    save(pixels((8, 8)), tmp_path / "x.png")
    assert translate(run, direction, tmp_path / source, tmp_path / "out", *extra) == 2
    err = capsys.readouterr().err
    assert err.startswith("gankit translate: error: ") and message in err
    assert err.count("\n") == 1 and not (tmp_path / "out").exists()


def test_out_of_memory_in_tiles_too_is_a_clear_error(
    run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_memory(self: Translator, x: torch.Tensor) -> torch.Tensor:
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 9.00 GiB")

    monkeypatch.setattr(Translator, "__call__", no_memory)
    save(pixels((8, 8)), tmp_path / "x.png")
    assert translate(run, "a2b", tmp_path / "x.png", tmp_path / "out") == 2
    err = capsys.readouterr().err
    assert "out of memory translating" in err and "x.png (8x8)" in err and "--tile" in err


def test_help_explains_with_the_example(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["translate", "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert "gankit translate runs/h2z --direction a2b --input photos/ --out zebras/" in text
    for flag in ("--tile", "--resolution", "--checkpoint", "--no-progress", ".npy"):
        assert flag in text
