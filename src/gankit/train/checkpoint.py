"""Checkpoints: full training state, written atomically, loadable with `weights_only=True`.

A checkpoint is written to a temporary file in the same folder, flushed to disk, then renamed over
its final name (`os.replace` is atomic on POSIX and Windows). A crash or SIGKILL at any moment
leaves either the new file complete or only a stray temporary file, never a torn checkpoint, and the
previous checkpoints are untouched. Files are named by the image count so they sort in order.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from gankit.atomic import write_atomic
from gankit.errors import CheckpointError, os_error_text

FORMAT = "gankit-checkpoint"
VERSION = 1
_NAME = re.compile(r"^ckpt-(\d+)\.pt$")


def rng_state(loop_generator: torch.Generator) -> dict[str, Any]:
    """Every random stream a run draws from: the loop's generator, torch's global one (CPU, and
    CUDA where there is one)."""
    rng = {"loop": loop_generator.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        rng["cuda"] = torch.cuda.get_rng_state_all()
    return rng


def restore_rng(loop_generator: torch.Generator, rng: dict[str, Any]) -> None:
    """Put back the streams `rng_state` saved."""
    loop_generator.set_state(rng["loop"])
    torch.set_rng_state(rng["torch"])
    if "cuda" in rng and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])


def checkpoint_name(cur_nimg: int) -> str:
    """`ckpt-<images shown, 12 digits>.pt`, e.g. ckpt-000000640000.pt at 640 kimg."""
    return f"ckpt-{cur_nimg:012d}.pt"


def save_atomic(obj: Any, path: Path) -> None:
    """torch.save to `path` via a temporary file and an atomic rename."""
    write_atomic(path, lambda f: torch.save(obj, f))


def _write_failure(path: Path, err: Exception) -> str:
    """Why writing checkpoint `path` failed, and which checkpoint is still good."""
    if isinstance(err, OSError):
        why = os_error_text(err)
    elif "write failed" in str(err) and _free_bytes(path.parent) < 64 * 2**20:
        why = "no space left on the device; free some space"
    else:
        why = f"the write failed ({str(err).strip().splitlines()[-1]})"
    good = list_checkpoints(path.parent)
    last = f"the last good checkpoint, {good[-1]}, is intact" if good else "no checkpoint was kept"
    return f"could not write checkpoint {str(path)!r}: {why}; {last}"


def _free_bytes(folder: Path) -> int:
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return 0


def list_checkpoints(folder: Path) -> list[Path]:
    """Complete checkpoints in `folder`, oldest first (temporary files are ignored)."""
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _NAME.match(p.name))]
    return [p for _, p in sorted(found)]


def save_checkpoint(state: dict[str, Any], folder: Path, cur_nimg: int, keep: int) -> Path:
    """Write `state` as the checkpoint for `cur_nimg` and delete all but the newest `keep`."""
    path = folder / checkpoint_name(cur_nimg)
    try:
        save_atomic({"format": FORMAT, "version": VERSION, **state}, path)
    except (OSError, RuntimeError) as err:  # torch reports a full disk as a RuntimeError
        raise CheckpointError(_write_failure(path, err)) from err
    for old in list_checkpoints(folder)[:-keep] if keep > 0 else []:
        old.unlink(missing_ok=True)
    for stray in folder.glob(".ckpt-*.tmp-*"):
        # Left by a process killed mid-write; never a complete checkpoint.
        stray.unlink(missing_ok=True)
    return path


#: Keys every gankit checkpoint has had since the first release; a file without them is not one.
REQUIRED_KEYS = ("model", "nets", "cur_nimg")


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load one checkpoint file (weights only), with a clear error if it is not one."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # torch raises many types for torn or foreign files
        raise CheckpointError(f"checkpoint {str(path)!r} {_unreadable_reason(path, err)}") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{str(path)!r} is not a gankit checkpoint")
    missing = [key for key in REQUIRED_KEYS if key not in state]
    if missing:
        raise CheckpointError(
            f"checkpoint {str(path)!r} is incomplete: it has no {', '.join(missing)} "
            "(damaged, or not written by gankit)"
        )
    return state


def _unreadable_reason(path: Path, err: Exception) -> str:
    """Why torch could not load `path`, in gankit's words (torch's own text advises loading
    with weights_only=False, which would run whatever code the file holds)."""
    try:
        size = path.stat().st_size
    except OSError:
        size = -1
    if size == 0:
        return "is an empty file (0 bytes): its write never finished"
    if isinstance(err, OSError):
        return f"cannot be read ({err.strerror or err})"
    if "Unsupported global" in str(err):
        return (
            "holds Python objects besides tensors and plain containers, which gankit never "
            "writes; it is not loaded, because loading it could run code"
        )
    return "is unreadable: cut short, damaged, or not a PyTorch file"


def load_latest(
    run_dir: Path,
    map_location: str | torch.device = "cpu",
    note: Callable[[str], None] | None = None,
) -> tuple[Path, dict[str, Any]]:
    """The newest loadable checkpoint of a run; a corrupt newest one falls back to the previous,
    and `note` (default: a line on stderr) is told which file was skipped and why."""
    note = note or _note_on_stderr
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
            note(f"skipping {err}; using an older checkpoint")
    raise CheckpointError(f"every checkpoint in {str(run_dir / 'checkpoints')!r} is corrupt")


def _note_on_stderr(text: str) -> None:
    print(f"gankit: note: {text}", file=sys.stderr)


def set_aside_newer(folder: Path, loaded: Path) -> list[Path]:
    """Rename the checkpoints newer than `loaded` (those a resume skipped as corrupt) to
    `NAME.corrupt`, so they neither count as the newest nor take one of the kept slots, and
    nothing is deleted; returns the new paths."""
    number = int(_NAME.match(loaded.name).group(1))
    moved = []
    for path in list_checkpoints(folder):
        if int(_NAME.match(path.name).group(1)) > number:
            target = path.with_name(f"{path.name}.corrupt")
            os.replace(path, target)
            moved.append(target)
    return moved


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
