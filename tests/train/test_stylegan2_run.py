"""A StyleGAN2 run through the CLI: it trains, and a resumed run ends where an unbroken one does."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from gankit.cli import main
from gankit.config import config_from_dict
from gankit.train import checkpoint as ckpt
from gankit.train.resolve import DataFacts, resolve_config

TINY = [
    "--set", "model.arch.z_dim=4", "--set", "model.arch.w_dim=4",
    "--set", "model.arch.mapping_layers=2", "--set", "model.arch.channel_base=16",
    "--set", "model.arch.channel_max=2",
    # every regularization phase fires within these few iterations
    "--set", "recipe.args.G_reg_interval=2", "--set", "recipe.args.D_reg_interval=3",
]  # fmt: skip


def _train(out: Path, kimg: str, *extra: str) -> int:
    args = ["train", "stylegan2", "--data", "digits", "--resolution", "8", "--batch", "4"]
    args += ["--kimg", kimg, "--out", str(out), "--device", "cpu", "--no-progress", *TINY]
    return main([*args, "--set", "train.grid_size=4", *extra])


def _final_state(run: Path) -> dict:
    return ckpt.load_checkpoint(ckpt.list_checkpoints(run / "checkpoints")[-1])


def test_an_interrupted_stylegan2_run_resumes_exactly(tmp_path: Path) -> None:
    assert _train(tmp_path / "whole", "0.036") == 0
    assert _train(tmp_path / "parts", "0.016") == 0
    assert main(["train", "--resume", str(tmp_path / "parts"), "--kimg", "0.036"]) == 0
    whole, parts = _final_state(tmp_path / "whole"), _final_state(tmp_path / "parts")
    assert whole["cur_nimg"] == parts["cur_nimg"] == 36
    for name in ("G", "D", "G_ema"):
        for key, value in whole["nets"][name].items():
            assert torch.equal(value, parts["nets"][name][key]), f"{name}.{key}"
    # the path-length mean and the tracked w_avg came through the checkpoint
    assert torch.equal(whole["recipe"]["pl_mean"], parts["recipe"]["pl_mean"])
    assert whole["recipe"]["pl_mean"] > 0
    assert whole["nets"]["G"]["mapping.w_avg"].abs().sum() > 0
    assert (tmp_path / "parts" / "samples" / "final.png").is_file()


@pytest.mark.parametrize(
    ("resolution", "processes", "cfg", "expected"),
    [
        # train.py's auto: batch max(min(gpus * min(4096 // res, 32), 64), gpus), half-life
        # batch * 10 / 32, channel base 16384 below 512 px, mbstd group min(batch / gpus, 4)
        (32, 1, "auto", (32, 10.0, 0.05, 16384, 4, 2)),
        (256, 2, "auto", (32, 10.0, 0.05, 16384, 4, 2)),
        (1024, 8, "auto", (32, 10.0, 0.05, 32768, 4, 2)),
        (1024, 1, "auto", (4, 1.25, 0.05, 32768, 4, 2)),
        # the paper256 preset: batch 64, half-life 20 kimg without ramp-up, 8 mapping layers
        (256, 1, "paper256", (64, 20.0, 0.0, 16384, 8, 8)),
    ],
)
def test_the_configuration_sets_batch_ema_and_architecture_for_the_data(
    resolution: int, processes: int, cfg: str, expected: tuple
) -> None:
    config = config_from_dict({"recipe": {"name": "stylegan2", "args": {"cfg": cfg}}})
    facts = DataFacts("faces", "images", resolution=resolution, channels=3, processes=processes)
    resolved = resolve_config(config, facts)
    t, arch = resolved.train, resolved.model.arch
    got = (t.batch_size, t.ema_kimg, t.ema_rampup, arch["channel_base"])
    assert (*got, arch["mbstd_group_size"], arch["mapping_layers"]) == expected
    assert resolved.recipe.args["gpus"] == processes


def test_naming_the_model_keeps_the_configurations_architecture() -> None:
    """`--model stylegan2` resolves the same networks as leaving the model to the recipe: the
    auto configuration's 2 mapping layers and channel base, not the builder's 8 and 32768."""
    facts = DataFacts("digits", "images", resolution=32, channels=1, processes=1)
    archs = []
    for model in ("auto", "stylegan2"):
        config = config_from_dict({"model": {"name": model}, "recipe": {"name": "stylegan2"}})
        archs.append(resolve_config(config, facts).model.arch)
    assert archs[0] == archs[1]
    assert (archs[1]["mapping_layers"], archs[1]["channel_base"]) == (2, 16384)
