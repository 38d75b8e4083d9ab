"""Folders and zips of the user's own images: conversion, crop, resize, labels, errors, cache."""

from __future__ import annotations

import logging
import os
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import gankit.data.folder as folder_mod
import gankit.data.prepare as prepare_mod
from gankit.data import open_dataset
from gankit.errors import ConfigError, DataError

RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)


def noise(height: int, width: int, seed: int = 0, channels: int = 3) -> np.ndarray:
    """Reproducible uint8 noise `[H, W, C]` (or `[H, W]` for one channel)."""
    shape = (height, width) if channels == 1 else (height, width, channels)
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def save(path: Path, im: Image.Image) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    im.save(path)
    return path


def mixed_folder(root: Path) -> Path:
    """Eight images: every mode and format the loader must take, none square but one."""
    save(root / "rgb.jpg", Image.fromarray(noise(40, 60, 1)))
    save(root / "rgba.png", Image.fromarray(noise(64, 48, 2, channels=4), "RGBA"))
    save(root / "grey.png", Image.fromarray(noise(50, 50, 3, channels=1), "L"))
    save(root / "photo.webp", Image.fromarray(noise(36, 37, 6)))
    save(root / "palette.png", Image.fromarray(noise(45, 70, 4)).convert("P"))
    save(root / "deep.png", Image.fromarray(np.full((40, 44), 257 * 100, np.uint16)))
    save(root / "bitmap.bmp", Image.fromarray(noise(41, 33, 5)))
    save(root / "print.jpg", Image.new("CMYK", (40, 52), (0, 255, 255, 0)))
    return root


def banded(width: int, height: int) -> Image.Image:
    """Green centre square with red bands on the long sides (the bands are what a crop cuts)."""
    pixels = np.zeros((height, width, 3), np.uint8)
    pixels[:] = RED
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    pixels[top : top + side, left : left + side] = GREEN
    return Image.fromarray(pixels)


def zip_folder(folder: Path, target: Path, prefix: str = "") -> Path:
    with zipfile.ZipFile(target, "w") as archive:
        for file in sorted(folder.rglob("*")):
            if file.is_file():
                archive.write(file, prefix + file.relative_to(folder).as_posix())
    return target


# --- conversion, crop, resize ------------------------------------------------------------------


def test_every_mode_and_format_gives_uint8_rgb(tmp_path: Path) -> None:
    ds = open_dataset(str(mixed_folder(tmp_path / "mix")), resolution=32)
    assert (len(ds), ds.resolution, ds.channels, ds.num_classes) == (8, 32, 3, 0)
    item = ds[0]
    assert set(item) == {"img"}
    assert str(item["img"].dtype) == "torch.uint8" and tuple(item["img"].shape) == (3, 32, 32)
    assert "8 images" in ds.description and "bmp, jpg, png, webp" in ds.description
    assert "converted to RGB from CMYK/I;16/L/P/RGBA" in ds.description


def test_channels_one_gives_luma(tmp_path: Path) -> None:
    ds = open_dataset(str(mixed_folder(tmp_path / "mix")), resolution=32, channels=1)
    assert tuple(ds.images.shape) == (8, 1, 32, 32) and ds.channels == 1


def test_sixteen_bit_is_scaled_not_clipped(tmp_path: Path) -> None:
    save(tmp_path / "d" / "deep.png", Image.fromarray(np.full((40, 44), 257 * 100, np.uint16)))
    ds = open_dataset(str(tmp_path / "d"), resolution=40)
    assert np.unique(ds.images.numpy()).tolist() == [100]


def test_transparent_pixels_become_white(tmp_path: Path) -> None:
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[:, :4] = (0, 0, 255, 255)  # opaque blue on the left
    rgba[:, 4:] = (255, 0, 0, 0)  # fully transparent "red" on the right
    save(tmp_path / "d" / "a.png", Image.fromarray(rgba, "RGBA"))
    img = open_dataset(str(tmp_path / "d"), resolution=8).images[0].numpy()
    assert img[:, :, :4].reshape(3, -1).T.tolist() == [list(BLUE)] * 32
    assert img[:, :, 4:].reshape(3, -1).T.tolist() == [[255, 255, 255]] * 32


@pytest.mark.parametrize("size", [(60, 40), (40, 60)])
def test_center_crop_removes_the_bands(tmp_path: Path, size: tuple[int, int]) -> None:
    save(tmp_path / "d" / "a.png", banded(*size))
    native = open_dataset(str(tmp_path / "d"), resolution=40).images[0].numpy()
    assert (native[0] == 0).all() and (native[1] == 255).all() and (native[2] == 0).all()
    small = open_dataset(str(tmp_path / "d"), resolution=16).images[0].numpy()
    assert (small[0] == 0).all() and (small[1] == 255).all()


def test_resize_equals_pil_lanczos_of_the_crop(tmp_path: Path) -> None:
    source = Image.fromarray(noise(70, 50, 7))  # 50 wide, 70 high: crop rows 10..60
    save(tmp_path / "d" / "a.png", source)
    got = open_dataset(str(tmp_path / "d"), resolution=32).images[0].numpy()
    expected = source.crop((0, 10, 50, 60)).resize((32, 32), Image.Resampling.LANCZOS)
    np.testing.assert_array_equal(got, np.asarray(expected).transpose(2, 0, 1))
    grey = open_dataset(str(tmp_path / "d"), resolution=32, channels=1).images[0, 0].numpy()
    expected_grey = source.convert("L").crop((0, 10, 50, 60)).resize((32, 32), Image.LANCZOS)
    np.testing.assert_array_equal(grey, np.asarray(expected_grey))


def test_auto_resolution_is_largest_fitting_power_of_two(tmp_path: Path) -> None:
    save(tmp_path / "d" / "a.png", Image.fromarray(noise(70, 90)))
    save(tmp_path / "d" / "b.png", Image.fromarray(noise(50, 45)))
    ds = open_dataset(str(tmp_path / "d"))
    assert ds.resolution == 32
    assert "resized to 32x32 with Lanczos (largest power of two" in ds.description


def test_exif_rotation_is_applied(tmp_path: Path) -> None:
    pixels = np.zeros((20, 40, 3), np.uint8)
    pixels[:, :20] = RED  # stored 40 wide: red left half, blue right half
    pixels[:, 20:] = BLUE
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display": the red half ends up on top
    Image.fromarray(pixels).save(tmp_path / "a.jpg", exif=exif, quality=100)
    (tmp_path / "d").mkdir()
    (tmp_path / "a.jpg").rename(tmp_path / "d" / "a.jpg")
    img = open_dataset(str(tmp_path / "d"), resolution=20).images[0].numpy().astype(int)
    assert img[0, :8].mean() > 240 and img[2, :8].mean() < 15  # top rows red
    assert img[2, 12:].mean() > 240 and img[0, 12:].mean() < 15  # bottom rows blue


# --- listing and labels -------------------------------------------------------------------------


def test_subfolders_become_sorted_labels(tmp_path: Path) -> None:
    for i in range(2):
        save(tmp_path / "d" / "zebra" / f"{i}.png", Image.fromarray(noise(32, 32, i)))
    save(tmp_path / "d" / "cat" / "deep" / "x.png", Image.fromarray(noise(32, 32, 9)))
    ds = open_dataset(str(tmp_path / "d"))
    assert ds.num_classes == 2 and ds.class_names == ["cat", "zebra"]
    assert ds.labels.tolist() == [0, 1, 1]
    assert ds[2]["label"].item() == 1 and str(ds[2]["label"].dtype) == "torch.int64"
    assert ds[2]["label"].dim() == 0
    assert "labelled by 2 subfolders (cat, zebra)" in ds.description


@pytest.mark.parametrize("layout", ["flat", "one-subfolder", "mixed"])
def test_unlabelled_layouts(tmp_path: Path, layout: str) -> None:
    names = {"flat": ["a.png", "b.png"], "one-subfolder": ["s/a.png", "s/b.png"]}
    for name in names.get(layout, ["a.png", "s/b.png", "t/c.png"]):
        save(tmp_path / "d" / name, Image.fromarray(noise(16, 16)))
    ds = open_dataset(str(tmp_path / "d"))
    assert ds.num_classes == 0 and ds.labels is None and "label" not in ds[0]
    assert "unlabelled" in ds.description


def test_hidden_and_non_image_files_are_ignored(tmp_path: Path) -> None:
    save(tmp_path / "d" / "UPPER.PNG", Image.fromarray(noise(16, 16)))
    save(tmp_path / "d" / ".hidden.png", Image.fromarray(noise(16, 16)))
    save(tmp_path / "d" / ".git" / "x.png", Image.fromarray(noise(16, 16)))
    (tmp_path / "d" / "notes.txt").write_text("not an image")
    assert len(open_dataset(str(tmp_path / "d"))) == 1


@pytest.mark.parametrize("prefix", ["", "top/"])
def test_zip_equals_folder(tmp_path: Path, prefix: str) -> None:
    for cls in ("a", "b"):
        for i in range(2):
            save(tmp_path / "d" / cls / f"{i}.jpg", Image.fromarray(noise(40, 50, i + ord(cls))))
    archive = zip_folder(tmp_path / "d", tmp_path / "d.zip", prefix)
    from_folder = open_dataset(str(tmp_path / "d"), resolution=32)
    from_zip = open_dataset(str(archive), resolution=32)
    np.testing.assert_array_equal(from_zip.images.numpy(), from_folder.images.numpy())
    assert from_zip.labels.tolist() == from_folder.labels.tolist() == [0, 0, 1, 1]


def test_worker_pool_gives_the_same_arrays(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for i in range(6):
        save(tmp_path / "d" / f"{i}.png", Image.fromarray(noise(40, 30 + i, i)))
    archive = zip_folder(tmp_path / "d", tmp_path / "d.zip")
    in_process = open_dataset(str(tmp_path / "d"), resolution=16).images.numpy()
    monkeypatch.setattr(prepare_mod, "POOL_MIN_ITEMS", 1)
    monkeypatch.setenv("GANKIT_CACHE_DIR", str(tmp_path / "other-cache"))
    np.testing.assert_array_equal(open_dataset(str(archive), resolution=16).images, in_process)


# --- errors -------------------------------------------------------------------------------------


def test_missing_path_suggests_a_builtin(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"'mnsit' is not a built-in.*Did you mean 'mnist'"):
        open_dataset("mnsit")
    with pytest.raises(DataError, match="no file or folder") as info:
        open_dataset(str(tmp_path / "nowhere"))
    assert str(tmp_path / "nowhere") in str(info.value)


def test_empty_folder_names_the_extensions(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "readme.txt").write_text("no images here")
    with pytest.raises(DataError, match=r"no images found in the folder .*\.jpg, \.jpeg, \.png"):
        open_dataset(str(tmp_path / "d"))


def test_corrupt_file_is_named(tmp_path: Path) -> None:
    save(tmp_path / "d" / "good.png", Image.fromarray(noise(16, 16)))
    (tmp_path / "d" / "broken.png").write_bytes(b"\x89PNG but not really")
    # The flag is offered for both commands that open a dataset.
    hint = r"--skip-bad-images to gankit train or gankit evaluate \(skip_bad_images=True"
    with pytest.raises(DataError, match=rf"1 unreadable: broken\.png.*{hint}"):
        open_dataset(str(tmp_path / "d"))


def test_truncated_file_is_named(tmp_path: Path) -> None:
    save(tmp_path / "d" / "good.png", Image.fromarray(noise(16, 16)))
    data = (save(tmp_path / "full.png", Image.fromarray(noise(64, 64, 3)))).read_bytes()
    (tmp_path / "d" / "cut.png").write_bytes(data[: len(data) // 2])  # header fine, pixels cut
    with pytest.raises(DataError, match=r"cut\.png.*--skip-bad-images"):
        open_dataset(str(tmp_path / "d"))


def cut_short(path: Path, size: int = 64) -> Path:
    """A PNG whose header reads but whose pixel data stops halfway."""
    data = save(path.with_suffix(".full.png"), Image.fromarray(noise(size, size, 3))).read_bytes()
    path.with_suffix(".full.png").unlink()
    path.write_bytes(data[: len(data) // 2])
    return path


def test_every_unusable_file_is_named_in_one_error(tmp_path: Path) -> None:
    root = tmp_path / "d"
    for i in range(3):
        save(root / f"good{i}.png", Image.fromarray(noise(64, 64, i)))
    (root / "junk.jpg").write_bytes(b"junk")  # no header: found in the first pass
    cut_short(root / "cut.png")  # header fine: found only by decoding
    save(root / "tiny.png", Image.fromarray(noise(8, 8)))
    save(root / "small.png", Image.fromarray(noise(30, 20)))
    with pytest.raises(DataError) as info:
        open_dataset(str(root), resolution=32)
    message = str(info.value)
    assert message.startswith(f"cannot use 4 of the 7 images in {root}. 2 unreadable: ")
    assert "junk.jpg (not a recognised image format)" in message and "cut.png (OSError" in message
    small = (
        "2 smaller than resolution 32 (gankit never upscales): small.png (20x30); tiny.png (8x8)"
    )
    assert small in message
    assert (
        "pass --resolution 8 to keep the small ones" in message and "--skip-bad-images" in message
    )


def test_files_cut_short_are_all_named_together(tmp_path: Path) -> None:
    save(tmp_path / "d" / "good.png", Image.fromarray(noise(64, 64)))
    for i in range(7):
        cut_short(tmp_path / "d" / f"cut{i}.png")
    with pytest.raises(
        DataError, match=r"7 unreadable: cut0\.png .*cut4\.png \([^;]*\) and 2 more"
    ):
        open_dataset(str(tmp_path / "d"))


def test_a_tiny_image_does_not_lower_the_automatic_resolution(tmp_path: Path) -> None:
    for i in range(3):
        save(tmp_path / "d" / f"{i}.png", Image.fromarray(noise(70, 64, i)))
    save(tmp_path / "d" / "thumb.png", Image.fromarray(noise(8, 8)))
    with pytest.raises(
        DataError, match=r"1 smaller than 64x64, the largest power of two that at least half.*"
        r"thumb\.png \(8x8\).*--resolution 8"
    ):  # fmt: skip
        open_dataset(str(tmp_path / "d"))
    ds = open_dataset(str(tmp_path / "d"), skip_bad_images=True)
    assert ds.resolution == 64 and len(ds) == 3
    assert "(largest power of two that fits at least half of the images)" in ds.description
    assert open_dataset(str(tmp_path / "d"), resolution=8).resolution == 8


def test_skip_bad_images_logs_one_line_and_drops_them(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    for i in range(3):
        save(tmp_path / "d" / "a" / f"{i}.png", Image.fromarray(noise(16, 16, i)))
    save(tmp_path / "d" / "b" / "ok.png", Image.fromarray(noise(16, 16, 5)))
    save(tmp_path / "d" / "b" / "tiny.png", Image.fromarray(noise(8, 8, 5)))
    (tmp_path / "d" / "a" / "junk.jpg").write_bytes(b"junk")
    cut_short(tmp_path / "d" / "a" / "cut.png")
    with warnings.catch_warnings(), caplog.at_level(logging.WARNING, "gankit.data.folder"):
        warnings.simplefilter("error")  # a summary line, not a UserWarning with its source line
        ds = open_dataset(str(tmp_path / "d"), skip_bad_images=True)
    [line] = caplog.messages
    assert line.startswith(f"gankit: left out 3 of the 7 images in {tmp_path / 'd'} (--skip-")
    assert "a/junk.jpg (not a recognised" in line and "a/cut.png (OSError" in line
    assert "b/tiny.png (8x8, smaller than 16x16)" in line
    assert len(ds) == 4 and ds.labels.tolist() == [0, 0, 0, 1] and ds.resolution == 16
    assert ds.description.endswith("; 3 files skipped (2 unreadable, 1 smaller than 16x16)")
    expected = np.asarray(Image.open(tmp_path / "d" / "b" / "ok.png")).transpose(2, 0, 1)
    np.testing.assert_array_equal(ds.images[3].numpy(), expected)
    caplog.clear()
    with caplog.at_level(logging.WARNING, "gankit.data.folder"):  # a cache hit says it again
        assert len(open_dataset(str(tmp_path / "d"), skip_bad_images=True)) == 4
    assert caplog.messages == [line]


def test_all_bad_is_an_error_even_when_skipping(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a.png").write_bytes(b"nope")
    with pytest.raises(DataError, match="none of the 1 images"):
        open_dataset(str(tmp_path / "d"), skip_bad_images=True)


def test_too_small_images_are_listed(tmp_path: Path) -> None:
    save(tmp_path / "d" / "big.png", Image.fromarray(noise(80, 80)))
    save(tmp_path / "d" / "small.png", Image.fromarray(noise(40, 60)))
    with pytest.raises(
        DataError,
        match=r"cannot use 1 of the 2 images.*1 smaller than resolution 64 \(gankit never "
        r"upscales\): small\.png \(60x40\)\. Remove them, pass --resolution 32",
    ):
        open_dataset(str(tmp_path / "d"), resolution=64)
    with pytest.raises(DataError, match=r"none of the 2 images .* can be used") as info:
        open_dataset(str(tmp_path / "d"), resolution=128, skip_bad_images=True)
    assert "--skip-bad-images" not in str(info.value)  # skipping is what left nothing


def test_not_a_zip(tmp_path: Path) -> None:
    (tmp_path / "data.zip").write_bytes(b"this is not a zip archive")
    with pytest.raises(DataError, match=r"data\.zip is not a readable zip file"):
        open_dataset(str(tmp_path / "data.zip"))
    with zipfile.ZipFile(tmp_path / "empty.zip", "w") as archive:
        archive.writestr("readme.txt", "nothing")
    with pytest.raises(DataError, match="no images found in the zip"):
        open_dataset(str(tmp_path / "empty.zip"))


def test_a_plain_file_and_bad_arguments(tmp_path: Path) -> None:
    image = save(tmp_path / "one.png", Image.fromarray(noise(16, 16)))
    with pytest.raises(DataError, match=r"is a file, not a folder or a \.zip"):
        open_dataset(str(image))
    with pytest.raises(ConfigError, match="channels must be 1"):
        open_dataset(str(tmp_path), channels=2)
    with pytest.raises(ConfigError, match="built-in datasets only"):
        open_dataset(str(tmp_path), split="test")


# --- cache --------------------------------------------------------------------------------------


def count_decodes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Wrap the per-image decoder so a test can count how often it runs."""
    calls = [0]
    real = folder_mod.decode_square

    def counting(*args: object) -> np.ndarray:
        calls[0] += 1
        return real(*args)

    monkeypatch.setattr(folder_mod, "decode_square", counting)
    return calls


def test_second_open_reads_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for i in range(3):
        save(tmp_path / "d" / f"{i}.png", Image.fromarray(noise(20, 20, i)))
    calls = count_decodes(monkeypatch)
    first = open_dataset(str(tmp_path / "d"), resolution=16)
    second = open_dataset(str(tmp_path / "d"), resolution=16)
    assert calls[0] == 3
    np.testing.assert_array_equal(first.images.numpy(), second.images.numpy())
    assert second.description == first.description
    open_dataset(str(tmp_path / "d"), resolution=8)  # another resolution is another entry
    assert calls[0] == 6


def test_changed_files_invalidate_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for i in range(3):
        save(tmp_path / "d" / f"{i}.png", Image.fromarray(noise(20, 20, i)))
    calls = count_decodes(monkeypatch)
    open_dataset(str(tmp_path / "d"))
    stamp = (tmp_path / "d" / "1.png").stat().st_mtime_ns + 5_000_000_000
    os.utime(tmp_path / "d" / "1.png", ns=(stamp, stamp))  # touched, same bytes
    open_dataset(str(tmp_path / "d"))
    assert calls[0] == 6
    save(tmp_path / "d" / "1.png", Image.fromarray(np.full((20, 20, 3), 7, np.uint8)))
    os.utime(tmp_path / "d" / "1.png", ns=(stamp * 2, stamp * 2))
    replaced = open_dataset(str(tmp_path / "d"))
    assert calls[0] == 9 and replaced.images[1].unique().tolist() == [7]
    entries = list((Path(os.environ["GANKIT_CACHE_DIR"]) / "prepared").iterdir())
    assert len(entries) == 1  # the stale versions were removed


def test_prepared_dataset_pickles_as_a_path(tmp_path: Path) -> None:
    import pickle

    save(tmp_path / "d" / "a.png", Image.fromarray(noise(20, 20)))
    ds = open_dataset(str(tmp_path / "d"))
    data = pickle.dumps(ds)
    assert len(data) < 1000
    np.testing.assert_array_equal(pickle.loads(data).images.numpy(), ds.images.numpy())


def test_replaced_zip_invalidates_the_cache(tmp_path: Path) -> None:
    save(tmp_path / "d" / "a.png", Image.fromarray(np.full((16, 16, 3), 1, np.uint8)))
    archive = zip_folder(tmp_path / "d", tmp_path / "d.zip")
    assert open_dataset(str(archive)).images.unique().tolist() == [1]
    stamp = archive.stat().st_mtime_ns + 5_000_000_000
    save(tmp_path / "d" / "a.png", Image.fromarray(np.full((16, 16, 3), 2, np.uint8)))
    zip_folder(tmp_path / "d", archive)
    os.utime(archive, ns=(stamp, stamp))
    assert open_dataset(str(archive)).images.unique().tolist() == [2]
