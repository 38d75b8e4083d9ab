"""Shared fixtures: an isolated cache, no network, the ../shared/data folder when present."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"

# Each xdist worker gets one thread: two workers on a 2-core machine, no oversubscription.
torch.set_num_threads(1 if os.environ.get("PYTEST_XDIST_WORKER") else max(1, os.cpu_count() or 1))


@pytest.fixture(autouse=True)
def _isolated_environment(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test gets a private cache, no data root from the user's shell, and no downloads."""
    monkeypatch.setenv("GANKIT_CACHE_DIR", str(tmp_path_factory.mktemp("gankit-cache")))
    monkeypatch.delenv("GANKIT_DATA_ROOT", raising=False)
    monkeypatch.setenv("GANKIT_NO_DOWNLOAD", "1")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """`../shared/data` beside the checkout; tests that need it skip with a reason when absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"needs the shared test data at {SHARED_DATA} (present in CI, absent in a user's clone)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache folder kept for the whole session, for expensive prepared datasets."""
    return tmp_path_factory.mktemp("gankit-shared-cache")
