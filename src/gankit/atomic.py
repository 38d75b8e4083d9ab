"""Atomic file writes: a temporary file in the same folder, fsync, then a rename over the target.

`os.replace` is atomic on POSIX and Windows, so a full disk, a crash or a SIGKILL at any moment
leaves either the complete new file or the previous one, never a cut one.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import IO


def write_atomic(path: Path, write: Callable[[IO[bytes]], None]) -> None:
    """Call `write(file)` on a temporary file, make it durable, and rename it to `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    fsync_dir(path.parent)


def write_text_atomic(path: Path, text: str) -> None:
    """`path.write_text(text)`, atomically (see the module docstring)."""
    write_atomic(Path(path), lambda f: f.write(text.encode()))


def fsync_dir(folder: Path) -> None:
    """Make a rename in `folder` durable; not possible on every platform, so best effort."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
