"""Checkpoints: full training state, written atomically, loadable with `weights_only=True`.

A checkpoint is written to a temporary file in the same folder, flushed to disk, then renamed over
its final name (`os.replace` is atomic on POSIX and Windows). A crash or SIGKILL at any moment
leaves either the new file complete or only a stray temporary file, never a torn checkpoint, and the
previous checkpoints are untouched. Files are named by the image count so they sort in order.
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path
from typing import Any

import torch

from gankit.errors import CheckpointError

FORMAT = "gankit-checkpoint"
VERSION = 1
_NAME = re.compile(r"^ckpt-(\d+)\.pt$")


def checkpoint_name(cur_nimg: int) -> str:
    """`ckpt-<images shown, 12 digits>.pt`, e.g. ckpt-000000640000.pt at 640 kimg."""
    return f"ckpt-{cur_nimg:012d}.pt"


def save_atomic(obj: Any, path: Path) -> None:
    """torch.save to `path` via a temporary file and an atomic rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    # Makes the rename itself durable; not possible on every platform, so best effort.
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


def list_checkpoints(folder: Path) -> list[Path]:
    """Complete checkpoints in `folder`, oldest first (temporary files are ignored)."""
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _NAME.match(p.name))]
    return [p for _, p in sorted(found)]


def save_checkpoint(state: dict[str, Any], folder: Path, cur_nimg: int, keep: int) -> Path:
    """Write `state` as the checkpoint for `cur_nimg` and delete all but the newest `keep`."""
    path = folder / checkpoint_name(cur_nimg)
    save_atomic({"format": FORMAT, "version": VERSION, **state}, path)
    for old in list_checkpoints(folder)[:-keep] if keep > 0 else []:
        old.unlink(missing_ok=True)
    for stray in folder.glob(".ckpt-*.tmp-*"):
        # Left by a process killed mid-write; never a complete checkpoint.
        stray.unlink(missing_ok=True)
    return path


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load one checkpoint file (weights only), with a clear error if it is not one."""
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist") from None
    except Exception as err:  # torch raises many types for torn or foreign files
        raise CheckpointError(f"checkpoint {str(path)!r} is unreadable or corrupt: {err}") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{str(path)!r} is not a gankit checkpoint")
    return state


def load_latest(
    run_dir: Path, map_location: str | torch.device = "cpu"
) -> tuple[Path, dict[str, Any]]:
    """The newest loadable checkpoint of a run; a corrupt newest one falls back to the previous."""
    candidates = list_checkpoints(run_dir / "checkpoints")
    if not candidates:
        raise CheckpointError(
            f"no checkpoint in {str(run_dir / 'checkpoints')!r}; is {str(run_dir)!r} a gankit run "
            "directory that reached its first snapshot (see --snapshot-kimg)?"
        )
    for path in reversed(candidates):
        try:
            return path, load_checkpoint(path, map_location)
        except CheckpointError as err:
            warnings.warn(f"skipping {err}", stacklevel=2)
    raise CheckpointError(f"every checkpoint in {str(run_dir / 'checkpoints')!r} is corrupt")


def resolve_checkpoint(
    target: str | os.PathLike, map_location: str | torch.device = "cpu"
) -> tuple[Path, dict[str, Any]]:
    """A run directory (its newest checkpoint) or a checkpoint file."""
    path = Path(target)
    if path.is_dir():
        return load_latest(path, map_location)
    if path.is_file():
        return path, load_checkpoint(path, map_location)
    raise CheckpointError(f"{str(path)!r} is neither a run directory nor a checkpoint file")
