"""Resume across processes: a run killed (SIGKILL) while writing a checkpoint, then resumed,
ends with exactly the weights of an uninterrupted run."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import torch

from gankit.train.checkpoint import list_checkpoints, load_checkpoint

# Runs the CLI with torch.save replaced: the 2nd checkpoint write gets half-way, then SIGKILL.
DIE_DURING_SECOND_SAVE = """
import os, signal, sys, torch
real_save, calls = torch.save, []
def dying_save(obj, f, *args, **kwargs):
    calls.append(1)
    if len(calls) == 2:
        f.write(b"PK\\x03\\x04 partial checkpoint bytes")
        f.flush()
        os.kill(os.getpid(), signal.SIGKILL)
    return real_save(obj, f, *args, **kwargs)
torch.save = dying_save
from gankit.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _gankit(args: list[str], script: str | None = None) -> subprocess.CompletedProcess:
    cmd = (
        [sys.executable, "-c", script, *args] if script else [sys.executable, "-m", "gankit", *args]
    )
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600)


def _final_weights(run_dir: Path) -> dict[str, dict[str, torch.Tensor]]:
    state = load_checkpoint(list_checkpoints(run_dir / "checkpoints")[-1])
    assert state["cur_nimg"] == 160
    return {**state["nets"], "optimizers": state["optimizers"]["D"]["state"]}


def test_killed_mid_checkpoint_then_resumed_equals_uninterrupted(
    tmp_path: Path, tiny_run_args: Callable
) -> None:
    full = _gankit(tiny_run_args(tmp_path / "full"))
    assert full.returncode == 0, full.stderr

    killed = _gankit(tiny_run_args(tmp_path / "killed"), script=DIE_DURING_SECOND_SAVE)
    assert killed.returncode == -9, killed.stderr
    ckpt_dir = tmp_path / "killed" / "checkpoints"
    # The torn write left only a temporary file; the first snapshot (80 images) is intact.
    assert [p.name for p in list_checkpoints(ckpt_dir)] == ["ckpt-000000000080.pt"]
    assert any(p.name.startswith(".ckpt-") for p in ckpt_dir.iterdir())

    resumed = _gankit(["train", "--resume", str(tmp_path / "killed"), "--no-progress"])
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed from" in resumed.stdout + resumed.stderr

    expected, actual = _final_weights(tmp_path / "full"), _final_weights(tmp_path / "killed")
    for net in ("G", "D", "G_ema"):
        assert expected[net].keys() == actual[net].keys()
        for key in expected[net]:
            torch.testing.assert_close(actual[net][key], expected[net][key], rtol=0, atol=0)
    for index, moments in expected["optimizers"].items():
        torch.testing.assert_close(
            actual["optimizers"][index]["exp_avg"], moments["exp_avg"], rtol=0, atol=0
        )
