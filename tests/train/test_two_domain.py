"""The loop needs no special case for a family with two generators and two discriminators on
unpaired A/B images (tests/two_domain.py, CycleGAN's shape): it trains, averages the nets the
recipe declares, applies the recipe's learning rates, writes translation previews and checkpoints,
resumes bit for bit across processes and keeps identical replicas on 2 gloo ranks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gankit.train.checkpoint import list_checkpoints, load_checkpoint

TESTS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TESTS))
import two_domain  # noqa: E402  (registers the test-only model and recipe)

# Runs the CLI with the test-only family registered; after training each rank saves its nets.
RUN_CLI = f"""
import sys, torch
sys.path.insert(0, {str(TESTS)!r})
import two_domain
import gankit.train.loop as loop
dump, stop_at = sys.argv[1], int(sys.argv[2])
original_step, original_run = loop.Trainer.step, loop.Trainer.run
def step_then_stop(self):  # what a Ctrl-C after the iteration that reaches `stop_at` does
    original_step(self)
    if stop_at and self.cur_nimg >= stop_at:
        self.stop_requested = True
loop.Trainer.step = step_then_stop
def run_and_dump(self):
    original_run(self)
    if dump != "-":
        torch.save({{"nets": {{k: n.state_dict() for k, n in self.all_nets.items()}},
                     "nimg": self.cur_nimg}}, f"{{dump}}/rank{{self.dist.rank}}.pt")
loop.Trainer.run = run_and_dump
from gankit.cli import main
sys.exit(main(sys.argv[3:]))
"""


def _cli(
    tmp_path: Path, args: list[str], dump: str = "-", ranks: int = 1, stop_at: int = 0
) -> None:
    script = tmp_path / "run_cli.py"
    script.write_text(RUN_CLI)
    launcher = [sys.executable]
    if ranks > 1:
        launcher += ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(ranks)]
    result = subprocess.run(
        [*launcher, str(script), dump, str(stop_at), *args],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def _last_state(run: Path) -> dict:
    return load_checkpoint(list_checkpoints(run / "checkpoints")[-1])


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return two_domain.write_unpaired_folder(tmp_path_factory.mktemp("a2b"))


def test_a_two_generator_family_trains_through_the_loop(tmp_path: Path, data: Path) -> None:
    from gankit.cli import main

    assert main(two_domain.train_args(data, tmp_path / "run")) == 0
    state = _last_state(tmp_path / "run")
    assert state["cur_nimg"] == 32 and state["model"]["img_channels_b"] == 3
    assert set(state["nets"]) == {"G_ab", "G_ba", "D_a", "D_b", "G_ab_ema", "G_ba_ema"}
    # The recipe's schedule reached the optimizers: constant for half the run, then linear to 0.
    last_lr = state["optimizers"]["G"]["param_groups"][0]["lr"]
    assert last_lr == pytest.approx(2e-3 * (1 - (28 - 16) / 16))
    # Each declared average is kept beside its net, and lags it.
    for name in ("G_ab", "G_ba"):
        raw, ema = state["nets"][name], state["nets"][f"{name}_ema"]
        assert raw.keys() == ema.keys() and not torch.equal(
            raw["net.0.weight"], ema["net.0.weight"]
        )
    samples = tmp_path / "run" / "samples"
    # Rows of real A | A->B | A->B->A | real B | B->A | B->A->B: min(8, 64 // 6) rows, but the
    # folder holds 6 images per domain, so 6 rows of six 8 px tiles; A is grey, B in colour.
    final = np.asarray(Image.open(samples / "final.png").convert("RGB")).astype(int)
    assert final.shape == (6 * 8, 6 * 8, 3)
    tiles = final.reshape(6, 8, 6, 8, 3)
    grey = (tiles[..., 0] == tiles[..., 1]) & (tiles[..., 1] == tiles[..., 2])
    assert grey[:, :, 0].all() and grey[:, :, 2].all() and grey[:, :, 4].all()  # A's columns
    assert not grey[:, :, 3].all()  # real B
    assert [p.name for p in sorted(samples.glob("fakes-*.png"))] == [
        "fakes-000000000008.png", "fakes-000000000016.png", "fakes-000000000024.png",
        "fakes-000000000032.png",
    ]  # fmt: skip
    assert (samples / "reals.png").exists()


def test_learning_rates_come_from_the_recipe_before_each_iteration(
    data: Path, tmp_path: Path
) -> None:
    from gankit.config import config_from_dict
    from gankit.train.run import build_trainer

    config = {
        "recipe": {"name": "test-two-domain"},
        "data": {"name": str(data)},
        "train": {"out": str(tmp_path), "kimg": 0.032, "device": "cpu", "progress": False},
    }
    trainer = build_trainer(config_from_dict(config))
    seen = []
    for _ in range(8):
        trainer.step()
        seen.append(trainer.optimizers["D"].param_groups[0]["lr"])
    # cur_nimg 0, 4, ..., 28 of 32: constant up to 16, then (1 - (n - 16) / 16) * 2e-3
    expected = [2e-3 if n < 16 else 2e-3 * (1 - (n - 16) / 16) for n in range(0, 32, 4)]
    assert seen == pytest.approx(expected)


@pytest.mark.slow
def test_resume_across_processes_is_bit_exact(tmp_path: Path, data: Path) -> None:
    _cli(tmp_path, two_domain.train_args(data, tmp_path / "full"))
    # Stopped (as by Ctrl-C) after 12 of 32 images, mid-way between snapshots, then resumed.
    _cli(tmp_path, two_domain.train_args(data, tmp_path / "split"), stop_at=12)
    assert _last_state(tmp_path / "split")["cur_nimg"] == 12
    _cli(tmp_path, ["train", "--resume", str(tmp_path / "split"), "--no-progress"])
    full, split = _last_state(tmp_path / "full"), _last_state(tmp_path / "split")
    assert split["cur_nimg"] == full["cur_nimg"] == 32
    for name, weights in full["nets"].items():
        for key, value in weights.items():
            assert torch.equal(split["nets"][name][key], value), f"{name}.{key}"
    for key in ("G", "D"):
        for index, moments in full["optimizers"][key]["state"].items():
            for what, value in moments.items():
                assert torch.equal(split["optimizers"][key]["state"][index][what], value)


@pytest.mark.slow
def test_two_gloo_ranks_keep_identical_replicas(tmp_path: Path, data: Path) -> None:
    _cli(
        tmp_path, two_domain.train_args(data, tmp_path / "run", kimg=0.016), str(tmp_path), ranks=2
    )
    rank0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    rank1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    assert rank0["nimg"] == rank1["nimg"] == 16
    assert set(rank0["nets"]) == {"G_ab", "G_ba", "D_a", "D_b", "G_ab_ema", "G_ba_ema"}
    for name, weights in rank0["nets"].items():
        for key, value in weights.items():
            assert torch.equal(rank1["nets"][name][key], value), f"{name}.{key}"


def test_a_recipe_for_other_data_is_refused_before_anything_is_built(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """ProGAN is registered for images: unpaired data is one clear line, not a KeyError('img')."""
    from gankit.cli import main

    args = [
        "train",
        "progan",
        "--data",
        str(data),
        "--out",
        str(tmp_path / "run"),
        "--kimg",
        "0.01",
    ]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        f"gankit train: error: recipe progan trains on images, but {str(data)!r} holds unpaired "
        "A/B images; choose a recipe for that data (`gankit list` shows the data each one trains on)"
    )
    assert not (tmp_path / "run").exists()
