"""`write_report` and `gankit plot` on hand-made image and 2-D point runs."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fake_runs import make_run, register_tiny_models
from gankit.cli import main
from gankit.errors import GankitError
from gankit.viz.report import write_report

IMAGE_FILES = ["plots/losses.png", "samples/progress.gif", "plots/real_vs_fake.png",
               "plots/interpolation.png"]  # fmt: skip
POINT_FILES = ["plots/losses.png", "samples/progress.gif", "plots/points.png"]


@pytest.fixture(autouse=True)
def _tiny_models(monkeypatch: pytest.MonkeyPatch) -> None:
    register_tiny_models(monkeypatch)


def relative(paths: list[Path], root: Path) -> list[str]:
    return [p.relative_to(root).as_posix() for p in paths]


def test_image_run_gets_every_picture(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run", c_dim=3, resolution=8)
    written = write_report(run.path)
    assert relative(written, run.path) == IMAGE_FILES
    with Image.open(run.path / "samples" / "progress.gif") as gif:
        assert gif.n_frames == 3  # one per fakes-*.png
    # The default strip: 4 rows of 10 steps at the generator's resolution.
    assert Image.open(run.path / "plots" / "interpolation.png").size == (10 * 8, 4 * 8)
    assert np.asarray(Image.open(run.path / "plots" / "real_vs_fake.png")).std() > 0


def test_point_run_gets_the_scatter_instead(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run", points=True, data="grid25")
    written = write_report(run.path, tmp_path / "elsewhere")
    assert relative(written, tmp_path / "elsewhere") == POINT_FILES
    assert not (run.path / "plots").exists()  # --out leaves the run itself alone
    with Image.open(tmp_path / "elsewhere" / "samples" / "progress.gif") as gif:
        assert gif.n_frames == 3  # one per points-*.png


def test_run_without_checkpoint_skips_what_needs_g(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    run = make_run(tmp_path / "run", checkpoint=False)
    with caplog.at_level(logging.WARNING, logger="gankit.viz.report"):
        written = write_report(run.path)
    assert relative(written, run.path) == IMAGE_FILES[:3]
    assert "skipped plots/interpolation.png: it needs G_ema from a checkpoint" in caplog.text


def test_empty_run_writes_nothing_and_says_why(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.yaml").write_text("data: {name: digits}\n")
    with caplog.at_level(logging.WARNING, logger="gankit.viz.report"):
        assert write_report(tmp_path / "run") == []
    for name in IMAGE_FILES:
        assert f"skipped {name}:" in caplog.text


def test_not_a_run_directory(tmp_path: Path) -> None:
    with pytest.raises(GankitError, match=r"is not a gankit run directory: it has no config\.yaml"):
        write_report(tmp_path)
    with pytest.raises(GankitError, match="not a gankit run directory"):
        write_report(tmp_path / "missing")


def test_cli_plot_prints_the_paths(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    run = make_run(tmp_path / "run")
    assert main(["plot", str(run.path)]) == 0
    printed = capsys.readouterr().out.split()
    assert printed == [str(run.path / f) for f in IMAGE_FILES]
    assert main(["plot", str(run.path), "--out", str(tmp_path / "o")]) == 0
    assert (tmp_path / "o" / "plots" / "interpolation.png").is_file()
    assert main(["plot", str(tmp_path / "nothing")]) == 2
    assert "gankit plot: error:" in capsys.readouterr().err


def test_cli_plot_help_says_what_it_writes(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit):
        main(["plot", "--help"])
    out = capsys.readouterr().out
    for name in [*IMAGE_FILES, "plots/points.png", "samples/points-*.png"]:
        assert name in out
