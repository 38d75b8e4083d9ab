"""Where gankit keeps files: the cache, the built-in datasets' root, and the download switch.

- `GANKIT_CACHE_DIR` (default `~/.cache/gankit`): prepared datasets, real-image statistics, weights.
- `GANKIT_DATA_ROOT` (default `<cache>/data`): where built-in datasets look for their files.
- `GANKIT_NO_DOWNLOAD=1`: never touch the network (the test suite sets it).
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """The root of gankit's cache (created on demand by the code that writes into it)."""
    env = os.environ.get("GANKIT_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "gankit"


def data_root(explicit: str | os.PathLike | None = None) -> Path:
    """The folder built-in datasets read from: `explicit`, else `GANKIT_DATA_ROOT`, else the cache."""
    if explicit:
        return Path(explicit).expanduser()
    env = os.environ.get("GANKIT_DATA_ROOT")
    return Path(env).expanduser() if env else cache_dir() / "data"


def downloads_allowed() -> bool:
    """False when `GANKIT_NO_DOWNLOAD` is set to anything but '' or '0'."""
    return os.environ.get("GANKIT_NO_DOWNLOAD", "") in ("", "0")
