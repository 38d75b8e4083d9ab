"""CycleGAN end to end on greyscale A and RGB B: it trains through the CLI, writes translation
rows, and a run killed mid-checkpoint with its image pools full resumes to exactly the weights,
optimizer moments and pools of an uninterrupted run (the schedule's decay included)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from test_resume_processes import DIE_DURING_SECOND_SAVE, _gankit

from gankit.train.checkpoint import list_checkpoints, load_checkpoint

ARCH = ["ngf=2", "ndf=2", "n_blocks=1", "netD=n_layers", "n_layers_d=1"]


def _write_domains(root: Path, size: int = 8, count: int = 5) -> Path:
    rng = np.random.default_rng(0)
    for folder, shape, mode in (("trainA", (size, size), "L"), ("trainB", (size, size, 3), "RGB")):
        (root / folder).mkdir(parents=True)
        for k in range(count):
            Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode).save(
                root / folder / f"{k}.png"
            )
    return root


def _train_args(data: Path, out: Path) -> list[str]:
    sets = [x for a in ARCH for x in ("--set", f"model.arch.{a}")]
    return [
        "train", "cyclegan", "--data", str(data), "--out", str(out), "--kimg", "0.018",
        "--device", "cpu", "--threads", "1", "--no-progress", "--seed", "3",
        "--set", "recipe.args.pool_size=3", "--set", "train.snapshot_kimg=0.006",
        "--set", "train.sample_kimg=0.006", *sets,
    ]  # fmt: skip


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _write_domains(tmp_path_factory.mktemp("grey2rgb"))


def _last(run: Path) -> dict:
    return load_checkpoint(list_checkpoints(run / "checkpoints")[-1])


@pytest.mark.slow
def test_killed_with_full_pools_then_resumed_equals_uninterrupted(
    data: Path, tmp_path: Path
) -> None:
    full = _gankit(_train_args(data, tmp_path / "full"))
    assert full.returncode == 0, full.stderr[-2000:]
    killed = _gankit(_train_args(data, tmp_path / "killed"), script=DIE_DURING_SECOND_SAVE)
    assert killed.returncode == -9
    first = _last(tmp_path / "killed")
    assert first["cur_nimg"] == 6
    assert first["recipe"]["pool_a"].shape == (3, 1, 8, 8)  # full: 3 fakes of grey A
    assert first["recipe"]["pool_b"].shape == (3, 3, 8, 8)
    resumed = _gankit(["train", "--resume", str(tmp_path / "killed"), "--no-progress"])
    assert resumed.returncode == 0, resumed.stderr[-2000:]

    expected, actual = _last(tmp_path / "full"), _last(tmp_path / "killed")
    assert expected["cur_nimg"] == actual["cur_nimg"] == 18
    for name, weights in expected["nets"].items():
        for key, value in weights.items():
            assert torch.equal(actual["nets"][name][key], value), f"{name}.{key}"
    for key in ("G", "D"):
        assert actual["optimizers"][key]["param_groups"][0]["lr"] == pytest.approx(
            2e-4 * (1 - (17 - 9) / 9)
        )  # the last iteration: 17 images shown of 18, the decay from 9
        for index, moments in expected["optimizers"][key]["state"].items():
            assert torch.equal(actual["optimizers"][key]["state"][index]["exp_avg"],
                               moments["exp_avg"])  # fmt: skip
    for pool in ("pool_a", "pool_b"):
        assert torch.equal(actual["recipe"][pool], expected["recipe"][pool])

    # Translation rows: real A | A->B | A->B->A | real B | B->A | B->A->B, A's columns in grey.
    final = np.asarray(Image.open(tmp_path / "full" / "samples" / "final.png").convert("RGB"))
    tiles = final.astype(int).reshape(-1, 8, 6, 8, 3)
    grey = (tiles[..., 0] == tiles[..., 1]) & (tiles[..., 1] == tiles[..., 2])
    assert grey[:, :, 0].all() and grey[:, :, 2].all() and grey[:, :, 4].all()
    assert not grey[:, :, 1].all() and not grey[:, :, 3].all()
    assert (tmp_path / "full" / "samples" / "progress.gif").exists()


@pytest.mark.slow
def test_two_gloo_ranks_keep_identical_replicas_with_their_own_pools(
    data: Path, tmp_path: Path
) -> None:
    # Each process keeps its own pools and draws its own crops; the averaged gradients keep the
    # nets identical. Run through torchrun with the CLI, as a user would.
    from test_two_domain import _cli

    args = _train_args(data, tmp_path / "run")
    args[args.index("--kimg") + 1] = "0.012"
    _cli(tmp_path, args, dump=str(tmp_path), ranks=2)
    rank0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    rank1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    assert rank0["nimg"] == rank1["nimg"] == 12
    assert set(rank0["nets"]) == {"G_ab", "G_ba", "D_a", "D_b"}
    for name, weights in rank0["nets"].items():
        for key, value in weights.items():
            assert torch.equal(rank1["nets"][name][key], value), f"{name}.{key}"
