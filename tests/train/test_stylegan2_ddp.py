"""StyleGAN2 with ADA on 2 gloo ranks (torchrun, CPU): every replica and every piece of training
state the recipe keeps stays identical, and ADA's p moves by the global batch's amount."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from gankit.train.checkpoint import list_checkpoints, load_checkpoint

# Runs the CLI under torchrun; after training each rank saves its nets (G_ema included) and the
# recipe's state (pl_mean, ADA's p and sign sums).
DUMP_EACH_RANK = """
import sys, torch
import gankit.train.loop as loop
out, args = sys.argv[1], sys.argv[2:]
original_run = loop.Trainer.run
def run_and_dump(self):
    original_run(self)
    torch.save({"nets": {k: n.state_dict() for k, n in self.all_nets.items()},
                "recipe": self.recipe.state_dict(), "nimg": self.cur_nimg,
                "world": self.dist.world_size}, f"{out}/rank{self.dist.rank}.pt")
loop.Trainer.run = run_and_dump
from gankit.cli import main
sys.exit(main(args))
"""

P_START, ADA_KIMG, BATCH, ITERATIONS, ADA_INTERVAL = 0.5, 0.1, 4, 6, 2
#: How far one adjustment moves p: batch * interval / (ada_kimg * 1000).
P_STEP = BATCH * ADA_INTERVAL / (ADA_KIMG * 1000)

TINY_ADA = [
    "--set", "model.arch.z_dim=4", "--set", "model.arch.w_dim=4",
    "--set", "model.arch.mapping_layers=2", "--set", "model.arch.channel_base=16",
    "--set", "model.arch.channel_max=2",
    # every regularization phase fires within these few iterations, and one D_reg iteration
    # (3) is an iteration in which p is adjusted (1, 3, 5)
    "--set", "recipe.args.G_reg_interval=2", "--set", "recipe.args.D_reg_interval=3",
    # The signs observed per adjustment (8 or 12) never average to 0.6 exactly, so each of the
    # three adjustments moves p by +-P_STEP: p ends at an odd multiple away from where it started.
    "--set", "recipe.args.aug=ada", "--set", f"recipe.args.p={P_START}",
    "--set", "recipe.args.target=0.6", "--set", f"recipe.args.ada_interval={ADA_INTERVAL}",
    "--set", f"recipe.args.ada_kimg={ADA_KIMG}",
]  # fmt: skip


@pytest.fixture(scope="module")
def ranks(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, dict, Path]:
    """Both ranks' final state after a 2-process run, and the run directory."""
    tmp = tmp_path_factory.mktemp("sg2-ddp")
    script = tmp / "dump.py"
    script.write_text(DUMP_EACH_RANK)
    args = ["train", "stylegan2", "--data", "digits", "--resolution", "8", "--batch", str(BATCH)]
    args += ["--kimg", str(BATCH * ITERATIONS / 1000), "--out", str(tmp / "run")]
    args += ["--device", "cpu", "--no-progress", "--set", "train.grid_size=4", *TINY_ADA]
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    cmd = [*launcher, "--nproc_per_node", "2", str(script), str(tmp), *args]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    rank0 = torch.load(tmp / "rank0.pt", weights_only=True)
    rank1 = torch.load(tmp / "rank1.pt", weights_only=True)
    return rank0, rank1, tmp / "run"


def _differences(a: dict, b: dict, names: tuple[str, ...]) -> list[str]:
    return [
        f"{name}.{key}"
        for name in names
        for key, value in a["nets"][name].items()
        if not torch.equal(b["nets"][name][key], value)
    ]


@pytest.mark.slow
def test_weights_and_ada_state_are_identical_on_both_ranks(ranks: tuple[dict, dict, Path]) -> None:
    rank0, rank1, run = ranks
    assert rank0["world"] == rank1["world"] == 2
    assert rank0["nimg"] == rank1["nimg"] == BATCH * ITERATIONS
    assert set(rank0["nets"]) == {"G", "D", "G_ema"}
    # Every parameter and every buffer (w_avg too: see the next test) is equal bit for bit.
    assert _differences(rank0, rank1, ("G", "D", "G_ema")) == []
    ada0, ada1 = rank0["recipe"]["ada"], rank1["recipe"]["ada"]
    for key in ("p", "sign_sum", "sign_count"):
        assert torch.equal(ada0[key], ada1[key]), key
    assert ada0["iterations"] == ada1["iterations"] == 0  # the sixth iteration adjusted p
    # Three adjustments by +-P_STEP each, from the global batch of both ranks.
    moves = (float(ada0["p"]) - P_START) / P_STEP
    assert round(moves) in (-3, -1, 1, 3)
    assert moves == pytest.approx(round(moves), abs=1e-4)
    # Only rank 0 writes the run; its checkpoint holds the same p.
    state = load_checkpoint(list_checkpoints(run / "checkpoints")[-1])
    assert torch.equal(state["recipe"]["ada"]["p"], ada0["p"])
    for key, value in rank0["nets"]["G"].items():
        assert torch.equal(state["nets"]["G"][key], value), key


@pytest.mark.slow
def test_w_avg_and_pl_mean_are_identical_on_both_ranks(ranks: tuple[dict, dict, Path]) -> None:
    rank0, rank1, _ = ranks
    differ = _differences(rank0, rank1, ("G", "G_ema"))
    if not torch.equal(rank0["recipe"]["pl_mean"], rank1["recipe"]["pl_mean"]):
        differ.append("recipe.pl_mean")
    assert differ == []
    # ... and both moved: averaged over the ranks, not left at their start
    assert rank0["nets"]["G"]["mapping.w_avg"].abs().sum() > 0 and rank0["recipe"]["pl_mean"] > 0
