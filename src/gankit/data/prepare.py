"""Prepare once, open instantly: the on-disk cache of decoded datasets and the parallel decoder.

A prepared dataset is a folder `cache_dir()/prepared/<slug>-<source hash>-<content hash>/` holding
`images.npy` (uint8 `[N, C, R, R]`), `labels.npy` (int64 `[N]`, when labelled) and `meta.json`
(name, description, class names, skipped files). The folder is built under a temporary name and
renamed into place, so a crash never leaves a half-written entry that looks valid. The source hash
covers what was asked (path, split, resolution, channels); the content hash covers the files
(name, size, mtime). Writing a new version removes older versions of the same source, so editing
a folder does not pile up stale copies. Images are opened with `mmap_mode="c"` (copy-on-write):
the array is backed by the file, so a dataset larger than RAM still works.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from tqdm import tqdm

from gankit.data.base import ArrayDataset
from gankit.paths import cache_dir

#: Below this many images, decoding in-process beats starting worker processes.
POOL_MIN_ITEMS = 2000

In = TypeVar("In")
Out = TypeVar("Out")


class PreparedDataset(ArrayDataset):
    """An `ArrayDataset` backed by a cache entry's memory-mapped `images.npy`."""

    def __init__(self, entry: Path) -> None:
        meta = json.loads((entry / "meta.json").read_text())
        images = np.load(entry / "images.npy", mmap_mode="c")
        labels_file = entry / "labels.npy"
        labels = np.load(labels_file) if labels_file.exists() else None
        num_classes = len(meta["class_names"]) if labels is not None else 0
        super().__init__(
            images, labels, name=meta["name"], description=meta["description"],
            num_classes=num_classes,
        )  # fmt: skip
        self.entry = entry
        self.class_names: list[str] = meta["class_names"]
        self.skipped: list[str] = meta.get("skipped", [])

    def __reduce__(self) -> tuple[Callable[[Path], PreparedDataset], tuple[Path]]:
        # Pickle (spawned DataLoader workers) as the path, never as the pixel data.
        return PreparedDataset, (self.entry,)


def stat_key(paths: Iterable[Path], base: Path) -> list[tuple[str, int, int]]:
    """(relative name, size, mtime in ns) of each file: changes whenever a file does."""
    rows = []
    for path in paths:
        info = path.stat()
        rows.append((path.relative_to(base).as_posix(), info.st_size, info.st_mtime_ns))
    return rows


def entry_for(slug: str, source: Any, content: Any) -> Path:
    """The cache folder for `source` (what was asked) at `content` (the files' state)."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", slug)[:40] or "dataset"
    return cache_dir() / "prepared" / f"{safe}-{_digest(source)}-{_digest(content)}"


def _digest(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def load_entry(entry: Path) -> PreparedDataset | None:
    """The prepared dataset at `entry`, or None when it was never completed."""
    if not (entry / "meta.json").is_file():
        return None
    try:
        return PreparedDataset(entry)
    except (OSError, ValueError, KeyError):
        return None  # Unreadable or from an incompatible version: prepare again.


class EntryWriter:
    """Builds a cache entry in a temporary folder; `commit` renames it into place."""

    def __init__(self, entry: Path) -> None:
        self.entry = entry
        entry.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = Path(tempfile.mkdtemp(prefix=f".{entry.name}.", dir=entry.parent))

    def images(self, shape: tuple[int, ...]) -> np.ndarray:
        """A writable uint8 memmap of `shape` to fill (no RAM needed for large datasets)."""
        return np.lib.format.open_memmap(self.tmp / "images.npy", "w+", np.uint8, shape)

    def shrink(self, images: np.ndarray, keep: np.ndarray) -> np.ndarray:
        """The rows of `images` where `keep` is True, as a new memmap (chunked: little RAM)."""
        kept = np.flatnonzero(keep)
        out = np.lib.format.open_memmap(
            self.tmp / "images.kept.npy", "w+", np.uint8, (len(kept), *images.shape[1:])
        )
        for start in range(0, len(kept), 4096):
            out[start : start + 4096] = images[kept[start : start + 4096]]
        out.flush()
        os.replace(self.tmp / "images.kept.npy", self.tmp / "images.npy")
        return out

    def commit(self, images: np.ndarray, labels: np.ndarray | None, meta: dict) -> Path:
        """Flush `images` (a memmap from `images()` or any array), write the rest, rename."""
        if isinstance(images, np.memmap):
            images.flush()
        else:
            np.save(self.tmp / "images.npy", np.ascontiguousarray(images))
        if labels is not None:
            np.save(self.tmp / "labels.npy", np.asarray(labels, dtype=np.int64))
        (self.tmp / "meta.json").write_text(json.dumps(meta, indent=1))
        _remove_older_versions(self.entry)
        try:
            os.replace(self.tmp, self.entry)
        except OSError:
            # Another process committed the same entry first; theirs is identical.
            self.abort()
        return self.entry

    def abort(self) -> None:
        """Remove the temporary folder."""
        shutil.rmtree(self.tmp, ignore_errors=True)


def save_entry(entry: Path, images: np.ndarray, labels: np.ndarray | None, meta: dict) -> Path:
    """Write in-memory arrays as the cache entry `entry` (atomically)."""
    writer = EntryWriter(entry)
    try:
        return writer.commit(images, labels, meta)
    except BaseException:
        writer.abort()
        raise


def _remove_older_versions(entry: Path) -> None:
    """Delete entries of the same source: older content, or `entry` itself left unreadable."""
    source_prefix = entry.name.rsplit("-", 1)[0] + "-"
    for other in entry.parent.glob(f"{glob_escape(source_prefix)}*"):
        shutil.rmtree(other, ignore_errors=True)


def glob_escape(text: str) -> str:
    """`text` with glob metacharacters made literal."""
    return re.sub(r"([*?\[])", r"[\1]", text)


def parallel_map(
    fn: Callable[[In], Out], items: Iterable[In], total: int, desc: str, chunksize: int = 64
) -> Iterator[Out]:
    """`map(fn, items)` in order with a progress bar; a process pool for large jobs, except in a
    daemonic process (a worker of someone else's pool), which may not start children."""
    workers = 1 if multiprocessing.current_process().daemon else min(os.cpu_count() or 1, 16)
    bar = tqdm(  # disable=None: shown only on a terminal, not in a log file
        total=total, desc=desc, unit="img", mininterval=0.5, dynamic_ncols=True, disable=None
    )
    try:
        if total < POOL_MIN_ITEMS or workers < 2:
            for item in items:
                yield fn(item)
                bar.update()
            return
        with multiprocessing.get_context().Pool(workers) as pool:
            for result in pool.imap(fn, items, chunksize=chunksize):
                yield result
                bar.update()
    finally:
        bar.close()
