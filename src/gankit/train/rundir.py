"""The run directory's own files: an exclusive lock, atomic text writes, and stats.jsonl upkeep.

A run directory belongs to one training process at a time: `RunLock` takes an advisory
`flock` on `RUN_DIR/.lock` and writes the holder's PID into it, so a second `gankit train`
(or `--resume`) on the same folder is refused with the PID instead of mixing two runs'
checkpoints and stats. The kernel drops the lock when the process dies, however it dies, so a
killed run never leaves a stale lock behind.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from types import TracebackType

from gankit.atomic import write_text_atomic
from gankit.errors import ConfigError

try:  # POSIX only; elsewhere runs are not locked
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

LOCK_NAME = ".lock"


class RunLock:
    """An exclusive lock on a run directory for as long as the `with` block runs."""

    def __init__(self, run_dir: Path) -> None:
        self.path = run_dir / LOCK_NAME
        self.fd: int | None = None

    def __enter__(self) -> RunLock:
        if fcntl is None:
            return self
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = _read_holder(fd)
            os.close(fd)
            raise ConfigError(
                f"{str(self.path.parent)!r} is in use by another training process ({holder}); "
                "wait for it to finish, stop it (Ctrl-C, or kill -INT PID), or choose another --out"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()} {socket.gethostname()}\n".encode())
        self.fd = fd
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing releases the flock
            self.fd = None


def _read_holder(fd: int) -> str:
    try:
        text = os.pread(fd, 200, 0).decode(errors="replace").split()
    except OSError:
        text = []
    return f"PID {text[0]} on {text[1]}" if len(text) >= 2 else "PID unknown"


def truncate_stats(path: Path, cur_nimg: int) -> int:
    """Drop the stats.jsonl records written after `cur_nimg` images (a resume from an older
    snapshot trains those ticks again); returns how many were dropped. Unreadable lines stay."""
    if not path.is_file():
        return 0
    kept, dropped = [], 0
    limit = cur_nimg / 1000 + 1e-9
    for line in path.read_text().splitlines():
        try:
            kimg = float(json.loads(line)["kimg"])
        except (ValueError, KeyError, TypeError):
            kept.append(line)
            continue
        if kimg > limit:
            dropped += 1
        else:
            kept.append(line)
    if dropped:
        write_text_atomic(path, "".join(f"{line}\n" for line in kept))
    return dropped
