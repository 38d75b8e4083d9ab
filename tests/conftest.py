"""Shared fixtures: an isolated cache, no network, the ../shared/data folder when present."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from fake_runs import tiny_progan_overrides  # also imported by test modules

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"

# One thread per test process: the suite runs as two xdist workers on a 2-core machine, and two
# OpenMP threads competing for a busy core spin-wait each other down by 50x or more.
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _isolated_environment(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every test gets a private cache, no data root from the user's shell, and no downloads."""
    monkeypatch.setenv("GANKIT_CACHE_DIR", str(tmp_path_factory.mktemp("gankit-cache")))
    monkeypatch.delenv("GANKIT_DATA_ROOT", raising=False)
    monkeypatch.setenv("GANKIT_NO_DOWNLOAD", "1")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # for the CLI subprocesses some tests start


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """`../shared/data` beside the checkout; tests that need it skip with a reason when absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(
            f"needs the shared test data at {SHARED_DATA} (present in CI, absent in a user's clone)"
        )
    return SHARED_DATA


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache folder kept for the whole session, for expensive prepared datasets."""
    return tmp_path_factory.mktemp("gankit-shared-cache")


@pytest.fixture
def tiny_run_args() -> Callable[..., list[str]]:
    """`tiny_run_args(out, kimg=...)` -> the CLI argument list of a tiny ProGAN run."""
    return tiny_progan_overrides


@pytest.fixture(scope="session")
def inception_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A FID-Inception weights file with random weights whose BatchNorm statistics were
    re-estimated on textured images through the real preprocessing (otherwise features collapse or
    explode): the real file is not available offline, so the metric plumbing is tested on this."""
    from gankit.metrics.inception import WEIGHTS_FILE, calibrated_random_inception

    net = calibrated_random_inception()
    path = tmp_path_factory.mktemp("inception") / WEIGHTS_FILE
    torch.save(net.state_dict(), path)
    return path


@pytest.fixture(scope="module")
def sg2_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny StyleGAN2 run trained through the CLI, once per test module."""
    from fake_runs import train_tiny_stylegan2

    return train_tiny_stylegan2(tmp_path_factory.mktemp("sg2") / "run")


@pytest.fixture(scope="module")
def sg2_G(sg2_run: Path) -> torch.nn.Module:
    """That run's G_ema, as `gankit generate` loads it."""
    from gankit.generate import load_generator

    return load_generator(sg2_run, "cpu")[0]
