"""Tiny runs of every family `gankit explore` shows, trained once per test session through the
CLI (8 px, tiny widths, a handful of images on one CPU thread), and an app factory over them.

Shared by the server tests (`test_explore_app.py`) and the browser tests: each fixture returns
the run directory as `gankit train` left it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from fake_runs import TINY_STYLEGAN2  # tests/ is on sys.path (tests/conftest.py's folder)
from gankit.cli import main
from two_domain import write_unpaired_folder

#: Flags every tiny run shares: CPU, one thread, no progress bar, no data workers.
COMMON = ["--device", "cpu", "--threads", "1", "--no-progress", "--workers", "0"]

#: ProGAN 8 px, tiny widths; 4 px for 8 images, then fading 8 px in over 16: stopping after
#: 16 images leaves the run in the fade-in (its checkpoint's stage: 8 px, alpha 0.25).
TINY_PROGAN = [
    "--set", "model.arch.channel_base=32", "--set", "model.arch.channel_max=4",
    "--set", "model.arch.z_dim=4", "--set", "train.grid_size=4",
    "--set", "recipe.args.batch_sizes={}",
    "--set", "recipe.args.phase_kimg={4: [0, 0.008], 8: [0.016, 0.1]}",
]  # fmt: skip

#: StyleGAN (v1) 8 px, tiny widths, stopped in the 8 px fade-in like ProGAN.
TINY_STYLEGAN = [
    "--set", "model.arch.z_dim=4", "--set", "model.arch.w_dim=4",
    "--set", "model.arch.mapping_layers=2", "--set", "model.arch.channel_base=32",
    "--set", "model.arch.channel_max=4", "--set", "train.grid_size=4",
    "--set", "recipe.args.start_resolution=4", "--set", "recipe.args.batch_sizes={}",
    "--set", "recipe.args.phase_kimg={4: [0, 0.008], 8: [0.016, 0.1]}",
]  # fmt: skip

#: CycleGAN with the smallest generator and critic (as tests/test_translate.py).
TINY_CYCLEGAN = [
    "--set", "model.arch.ngf=2", "--set", "model.arch.ndf=2", "--set", "model.arch.n_blocks=1",
    "--set", "model.arch.netD=n_layers", "--set", "model.arch.n_layers_d=1",
]  # fmt: skip


def _train(out: Path, *args: str) -> Path:
    """`gankit train ARGS --out OUT` on the CPU; the run directory."""
    assert main(["train", *args, "--out", str(out), *COMMON]) == 0, f"training {args} failed"
    return out


@pytest.fixture(scope="session")
def stylegan2_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """StyleGAN2, 8 px digits (1 channel, num_ws 4), 8 images."""
    out = tmp_path_factory.mktemp("explore-sg2") / "run"
    args = ["stylegan2", "--data", "digits", "--resolution", "8", "--batch", "4", "--kimg"]
    return _train(out, *args, "0.008", *TINY_STYLEGAN2)


@pytest.fixture(scope="session")
def progan_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """ProGAN, 8 px digits, stopped in the 8 px fade-in (stage 8 px, alpha 0.25)."""
    out = tmp_path_factory.mktemp("explore-progan") / "run"
    args = ["progan", "--data", "digits", "--resolution", "8", "--batch", "4", "--kimg"]
    return _train(out, *args, "0.016", *TINY_PROGAN)


@pytest.fixture(scope="session")
def stylegan_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """StyleGAN (v1), 8 px digits (num_ws 4), stopped in the 8 px fade-in (8 px, alpha 0.25)."""
    out = tmp_path_factory.mktemp("explore-sg1") / "run"
    args = ["stylegan", "--data", "digits", "--resolution", "8", "--batch", "4", "--kimg"]
    return _train(out, *args, "0.016", *TINY_STYLEGAN)


@pytest.fixture(scope="session")
def points_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The MLP GAN on ring8 (2-D points), 40 points."""
    out = tmp_path_factory.mktemp("explore-points") / "run"
    return _train(out, "gan", "--data", "ring8", "--batch", "20", "--kimg", "0.04")


@pytest.fixture(scope="session")
def cgan_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The conditional GAN on digits (10 classes, 8 px, narrow MLPs), 32 images."""
    out = tmp_path_factory.mktemp("explore-cgan") / "run"
    args = ["cgan", "--data", "digits", "--resolution", "8", "--batch", "16", "--kimg", "0.032"]
    narrow = ["--set", "model.arch.g_hidden=[32,32]", "--set", "model.arch.d_hidden=[16,16]"]
    return _train(out, *args, *narrow)


@pytest.fixture(scope="session")
def cyclegan_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """CycleGAN between 8 px grey A and RGB B images (6 each), 4 images."""
    root = tmp_path_factory.mktemp("explore-cyclegan")
    data = write_unpaired_folder(root / "AB")
    return _train(root / "run", "cyclegan", "--data", str(data), "--kimg", "0.004", *TINY_CYCLEGAN)


@pytest.fixture(scope="session")
def explore_app() -> Callable[..., Any]:
    """`explore_app(run_dir, **kwargs)` -> the Flask app `gankit explore` serves (testing mode)."""
    pytest.importorskip("flask", reason="gankit explore needs Flask: pip install 'gankit[explore]'")

    def make(run_dir: Path, **kwargs: Any) -> Any:
        from gankit.explore import create_app

        app = create_app(run_dir, device="cpu", **kwargs)
        app.config["TESTING"] = True
        return app

    return make
