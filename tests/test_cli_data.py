"""The data errors of `gankit train` as a user meets them, and training on a folder of images."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gankit.cli import main


def _folder(path: Path, count: int, size: tuple[int, int] = (40, 30)) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
        Image.fromarray(pixels).save(path / f"img{i:03d}.{'png' if i % 2 else 'jpg'}")
    return path


def _train(tmp_path: Path, data: str, *extra: str) -> list[str]:
    return [
        "train",
        "progan",
        "--data",
        data,
        "--out",
        str(tmp_path / "run"),
        "--kimg",
        "0.016",
        "--batch",
        "8",
        "--no-progress",
        "--set",
        "model.arch.channel_base=32",
        "--set",
        "model.arch.channel_max=8",
        "--set",
        "model.arch.z_dim=8",
        *extra,
    ]


def test_training_on_a_folder_of_mixed_images(tmp_path: Path) -> None:
    data = _folder(tmp_path / "imgs", 12)
    assert main(_train(tmp_path, str(data), "--resolution", "16")) == 0
    log = (tmp_path / "run" / "log.txt").read_text()
    assert "12 images from" in log and "16x16" in log and "Lanczos" in log
    assert (tmp_path / "run" / "samples" / "final.png").is_file()


def test_empty_folder(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "empty").mkdir()
    assert main(_train(tmp_path, str(tmp_path / "empty"))) == 2
    err = capsys.readouterr().err
    assert "no images" in err.lower() and ".png" in err


def test_corrupt_image_is_named_and_can_be_skipped(
    tmp_path: Path,
    capsys: pytest.CaptureFixture,
    caplog: pytest.LogCaptureFixture,
    recwarn: pytest.WarningsRecorder,
) -> None:
    data = _folder(tmp_path / "imgs", 9)
    (data / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not an image")
    assert main(_train(tmp_path, str(data), "--resolution", "16")) == 2
    err = capsys.readouterr().err
    assert "broken.png" in err and "--skip-bad-images to gankit train or gankit evaluate" in err
    with caplog.at_level(logging.WARNING, "gankit.data.folder"):
        assert main(_train(tmp_path, str(data), "--resolution", "16", "--skip-bad-images")) == 0
    assert caplog.messages == [
        f"gankit: left out 1 of the 10 images in {data} (--skip-bad-images): broken.png (not a "
        "recognised image format)"
    ]
    assert not [w for w in recwarn if "broken.png" in str(w.message)]  # no raw UserWarning
    log = (tmp_path / "run" / "log.txt").read_text()
    assert "9 images from" in log and "; 1 file skipped (1 unreadable)" in log


def test_a_thumbnail_among_larger_images_is_named_not_trained_at(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    data = _folder(tmp_path / "imgs", 4, size=(40, 36))
    Image.new("RGB", (6, 6)).save(data / "thumb.png")
    assert main(_train(tmp_path, str(data))) == 2  # no --resolution: 32 fits all but the thumb
    err = capsys.readouterr().err
    assert err.startswith("gankit train: error: cannot use 1 of the 5 images")
    assert "thumb.png (6x6)" in err and "--resolution 4" in err


def test_resolution_larger_than_the_images(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    data = _folder(tmp_path / "imgs", 4, size=(20, 24))
    assert main(_train(tmp_path, str(data), "--resolution", "32")) == 2
    err = capsys.readouterr().err
    assert "32" in err and "20x24" in err


def test_resolution_that_is_not_a_power_of_two(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    data = _folder(tmp_path / "imgs", 4)
    assert main(_train(tmp_path, str(data), "--resolution", "24")) == 2
    assert "power-of-two" in capsys.readouterr().err


def test_missing_path_suggests_a_builtin(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(_train(tmp_path, "mnsit")) == 2
    assert "mnist" in capsys.readouterr().err


def test_offline_builtin_says_which_files_to_put_where(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    assert main([*_train(tmp_path, "mnist"), "--data-root", str(tmp_path / "nothing")]) == 2
    err = capsys.readouterr().err
    assert "train-images-idx3-ubyte.gz" in err and str(tmp_path / "nothing") in err


def test_builtin_mnist_from_the_shared_data(tmp_path: Path, shared_data: Path) -> None:
    args = _train(tmp_path, "mnist", "--resolution", "32", "--data-root", str(shared_data))
    assert main(args) == 0
    assert "mnist train split: 60,000" in (tmp_path / "run" / "log.txt").read_text()
