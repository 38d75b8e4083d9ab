"""Data-parallel training: 2 ranks on CPU (gloo) via torchrun; replicas stay identical."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

# Runs the CLI under torchrun and, after training, saves each rank's networks for comparison.
DUMP_EACH_RANK = """
import sys, torch
import gankit.train.loop as loop
out, args = sys.argv[1], sys.argv[2:]
original_run = loop.Trainer.run
def run_and_dump(self):
    original_run(self)
    torch.save({"nets": self.nets.state_dict(), "nimg": self.cur_nimg, "world": self.dist.world_size},
               f"{out}/rank{self.dist.rank}.pt")
loop.Trainer.run = run_and_dump
from gankit.cli import main
sys.exit(main(args))
"""


@pytest.mark.slow
def test_two_gloo_ranks_keep_identical_replicas(tmp_path: Path, tiny_run_args: Callable) -> None:
    script = tmp_path / "dump.py"
    script.write_text(DUMP_EACH_RANK)
    args = tiny_run_args(tmp_path / "run", kimg=0.048)
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        str(script),
        str(tmp_path),
        *args,
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    rank0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    rank1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    assert rank0["world"] == rank1["world"] == 2 and rank0["nimg"] == rank1["nimg"] == 48
    for key, value in rank0["nets"].items():
        torch.testing.assert_close(rank1["nets"][key], value, rtol=0, atol=0)
    # Only rank 0 writes the run directory; the checkpoint holds rank 0's (= every rank's) weights.
    ckpts = sorted((tmp_path / "run" / "checkpoints").glob("ckpt-*.pt"))
    assert [p.name for p in ckpts] == ["ckpt-000000000048.pt"]
    final = torch.load(ckpts[-1], weights_only=True)["nets"]
    for key, value in rank0["nets"].items():
        assert torch.equal(final[key.split(".", 1)[0]][key.split(".", 1)[1]], value)
