"""`gankit cache`: what gankit keeps under `gankit.paths.cache_dir()`, and clearing it.

Everything there is rebuilt on demand (datasets prepared again, features recomputed, weights and
built-in data downloaded again, classifiers retrained), so clearing never loses results.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from gankit.errors import ConfigError
from gankit.paths import cache_dir

#: The cache's folders and what they hold.
PARTS = {
    "prepared": "datasets decoded from image folders and built-in files",
    "metrics": "features of real images (FID, KID, PR, clf-*)",
    "weights": "Inception, VGG16 and LPIPS weights",
    "classifiers": "domain classifiers for the clf-* metrics and modes",
    "data": "downloaded built-in datasets (when GANKIT_DATA_ROOT is unset)",
}


@dataclass(frozen=True)
class CacheEntry:
    """One top-level item of the cache: its path, size in bytes, file count and description."""

    name: str
    path: Path
    size: int
    files: int
    description: str


def _size(path: Path) -> tuple[int, int]:
    """(bytes, files) under `path`, not following links."""
    if path.is_symlink() or path.is_file():
        return path.lstat().st_size, 1
    total = count = 0
    for folder, _, files in os.walk(path):
        for name in files:
            total += (Path(folder) / name).lstat().st_size
            count += 1
    return total, count


def cache_entries() -> list[CacheEntry]:
    """The cache's top-level items, the known folders first; empty when there is no cache."""
    root = cache_dir()
    if not root.is_dir():
        return []
    order = {name: i for i, name in enumerate(PARTS)}
    found = sorted(root.iterdir(), key=lambda p: (order.get(p.name, len(order)), p.name))
    entries = []
    for path in found:
        size, files = _size(path)
        entries.append(CacheEntry(path.name, path, size, files, PARTS.get(path.name, "other")))
    return entries


def clear_cache(what: str | None = None) -> list[CacheEntry]:
    """Remove `what` (one top-level item) or the whole cache's content; returns what was removed."""
    entries = cache_entries()
    if what is not None:
        known = sorted({*PARTS, *(e.name for e in entries)})
        if what not in known:
            raise ConfigError(
                f"the cache has no part {what!r}; name one of {', '.join(known)}, or give no "
                "name to clear everything"
            )
        entries = [e for e in entries if e.name == what]
    for entry in entries:
        if entry.path.is_dir() and not entry.path.is_symlink():
            shutil.rmtree(entry.path)
        else:
            entry.path.unlink()
    return entries


def format_size(size: int) -> str:
    """1536 -> '1.5 KB', 412_000_000 -> '412 MB' (powers of 1000, as disks are sold)."""
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" or value >= 100 else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")
