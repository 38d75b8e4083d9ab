"""The StyleGAN (v1) recipe: the official schedule and tables, the Table 1 ladder presets, style
mixing among the active layers, R1 and WGAN-GP steps, training in fp32 and bf16, and an exact
resume in the middle of a fade-in."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from gankit.config import config_from_dict
from gankit.errors import ConfigError
from gankit.recipes.base import Stage, StepContext
from gankit.recipes.stylegan import LADDER, OFFICIAL_BATCH_SIZES, StyleGANRecipe
from gankit.registry import MODELS
from gankit.train.loop import Trainer
from gankit.train.run import build_trainer

#: The smallest arch, its depth of mapping left to the ladder row.
SMALL = {k: v for k, v in MODELS.entry("stylegan").small_arch.items() if k != "mapping_layers"}


def _trainer(tmp_path: Path, amp: str = "none", res: int = 8, **args: Any) -> Trainer:
    """The stylegan model in its smallest arch on the 8x8 digits, as `gankit train` builds it;
    growth 4x4 (2 steps of 4 images) -> fade-in to 8x8 (4 steps) -> 8x8."""
    args = {"start_resolution": 4, "batch_sizes": {}, "phase_kimg": {4: [0, 0.008],
            8: [0.016, 1.0]}, **args}  # fmt: skip
    config = config_from_dict(
        {
            "recipe": {"name": "stylegan", "args": args},
            "model": {"name": "auto", "arch": SMALL},
            "data": {"name": "digits", "resolution": res},
            "train": {"out": str(tmp_path / "run"), "kimg": 1.0, "batch_size": 4, "amp": amp,
                      "device": "cpu", "grid_size": 1, "progress": False},
        }
    )  # fmt: skip
    return build_trainer(config)


def test_the_defaults_are_the_official_schedule_and_tables(tmp_path: Path) -> None:
    recipe = _trainer(tmp_path, batch_sizes=None, phase_kimg=None, start_resolution=8).recipe
    s = recipe.schedule_
    assert (s.fade_nimg, s.stable_nimg, s.resolutions) == (600_000, 600_000, (8,))
    assert dict(s.batch_sizes) == OFFICIAL_BATCH_SIZES == {
        4: 128, 8: 128, 16: 128, 32: 64, 64: 32, 128: 16, 256: 8, 512: 4}  # fmt: skip
    assert recipe.lr_table == {128: 0.0015, 256: 0.002, 512: 0.003, 1024: 0.003}
    assert (recipe.r1_gamma, recipe.loss, recipe.style_mixing_prob) == (10.0, "logistic", 0.9)
    assert StyleGANRecipe.default_ema_rampup == 0 and StyleGANRecipe.default_ema_kimg == 10
    opt = recipe.optimizers()["G"]
    assert opt.defaults["betas"] == (0.0, 0.99) and opt.defaults["eps"] == 1e-8


def test_the_learning_rate_follows_the_resolution(tmp_path: Path) -> None:
    recipe = _trainer(tmp_path, lr_per_resolution={8: 0.003}).recipe
    assert recipe.optimizer_settings(0, 1000) == {"G": {"lr": 0.001}, "D": {"lr": 0.001}}
    assert recipe.optimizer_settings(8 + 16, 1000) == {"G": {"lr": 0.003}, "D": {"lr": 0.003}}


def test_the_growth_starts_at_8x8_as_officially_and_fades_each_resolution_in() -> None:
    schedule = StyleGANRecipe.default_length_kimg
    facts = type("Facts", (), {"resolution": 32})()
    # 8x8: 600 stable; 16x16 and 32x32: 600 fade + 600 stable each.
    assert schedule({}, facts, 4) == 3000


@pytest.mark.parametrize("row", list(LADDER))
@pytest.mark.parametrize("amp", ["none", "bf16"])
def test_every_ladder_row_trains_with_its_networks_and_loss(
    row: str, amp: str, tmp_path: Path
) -> None:
    torch.manual_seed(0)
    trainer = _trainer(tmp_path, amp, ladder=row)
    G, D = trainer.nets["G"], trainer.nets["D"]
    flags, values = LADDER[row]
    synthesis = G.synthesis
    assert G.mapping.num_layers == flags["mapping_layers"]
    assert (synthesis.const is not None) == flags["const_input"]
    assert (synthesis.layers[0].style is not None) == flags["use_styles"]
    assert synthesis.layers[0].use_noise == flags["use_noise"]
    assert (synthesis.layers[2].conv.blur is not None) == flags["blur"]
    assert (D.blocks[1].blur is not None) == flags["blur"]
    assert trainer.recipe.style_mixing_prob == values["style_mixing_prob"]
    before = {k: [p.detach().clone() for p in n.parameters()] for k, n in trainer.nets.items()}
    for _ in range(3):
        trainer.step()
    logs = trainer.tick_logs
    assert ("D_main/gp" in logs) == (values["loss"] == "wgangp")
    assert ("D_main/r1" in logs) == (values["loss"] == "logistic")
    for values_ in logs.values():
        assert all(torch.isfinite(v).all() for v in values_)
    for name, net in trainer.nets.items():
        after = list(net.parameters())
        assert any(not torch.equal(b, a) for b, a in zip(before[name], after, strict=True)), name


def test_the_ladder_and_explicit_values_resolve_into_config_yaml(tmp_path: Path) -> None:
    trainer = _trainer(tmp_path, ladder="C", style_mixing_prob=0.5)
    config = trainer.config if hasattr(trainer, "config") else None
    recipe = trainer.recipe
    assert (recipe.loss, recipe.style_mixing_prob) == ("logistic", 0.5)
    args = StyleGANRecipe.resolve_args({"ladder": "A"}, None)
    assert (args["loss"], args["style_mixing_prob"]) == ("wgangp", 0.0)
    assert args["batch_sizes"] == OFFICIAL_BATCH_SIZES and args["lr_per_resolution"][512] == 0.003
    assert config is None or config.recipe.args["ladder"] == "C"


def test_unknown_rows_and_bad_values_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="ladder: 'G' is not one of 'A', 'B', 'C', 'D', 'E'"):
        _trainer(tmp_path, ladder="G")
    with pytest.raises(ConfigError, match="loss: 'hinge' is not one of"):
        _trainer(tmp_path / "b", loss="hinge")
    with pytest.raises(ConfigError, match="style_mixing_prob"):
        _trainer(tmp_path / "c", style_mixing_prob=1.5)


def _ctx(trainer: Trainer, stage: Stage, seed: int) -> StepContext:
    return StepContext(
        nets=trainer.nets, stage=stage, batch_size=2, device=torch.device("cpu"),
        generator=torch.Generator().manual_seed(seed), cur_nimg=0,
    )  # fmt: skip


def _crossovers(trainer: Trainer, resolution: int, draws: int) -> list[int]:
    """The first w index of each G run that is not the first latent's."""
    G, recipe = trainer.nets["G"], trainer.recipe
    seen: list[int] = []
    synthesis = G.synthesis.forward

    def record(ws: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        own = G.mapping(z)
        same = (ws == own).all(dim=2).all(dim=0)
        seen.append(int(same.logical_not().nonzero()[0]) if not same.all() else G.num_ws)
        return synthesis(ws, *args, **kwargs)

    G.synthesis.forward = record
    z = torch.randn(2, G.z_dim)
    ctx = _ctx(trainer, Stage(resolution, 1.0, 2), seed=3)
    with torch.no_grad():
        for _ in range(draws):
            recipe.run_generator(ctx, z, None)
    return seen


def test_style_mixing_crosses_over_only_among_the_active_layers(tmp_path: Path) -> None:
    trainer = _trainer(tmp_path, res=16, phase_kimg={4: [0, 1], 8: [1, 1], 16: [1, 1]})
    G = trainer.nets["G"]
    assert G.num_ws == 6
    # Officially a minibatch without mixing gets crossover = the active layers, the unused
    # layers above them coming from the second latent: its images are the first latent's.
    at_4 = _crossovers(trainer, 4, 300)  # 2 active layers: crossover 1, or none (2)
    assert set(at_4) == {1, 2}
    at_8 = _crossovers(trainer, 8, 300)  # 4 active layers: crossover 1, 2, 3, or none (4)
    assert set(at_8) == {1, 2, 3, 4}
    assert 0.04 < at_8.count(4) / 300 < 0.17  # probability 1 - 0.9
    assert set(_crossovers(trainer, 16, 300)) == {1, 2, 3, 4, 5, 6}


def test_training_records_the_stage_in_g_and_g_ema(tmp_path: Path) -> None:
    trainer = _trainer(tmp_path)
    for _ in range(4):  # 2 steps at 4x4, then 2 of the fade-in: 8 of its 16 images
        trainer.step()
    assert trainer.stage.key == "8x8-fade"
    G, G_ema = trainer.nets["G"], trainer.all_nets["G_ema"]
    resolution, alpha = G_ema.synthesis.stage()
    assert resolution == 8 and alpha == pytest.approx(0.25)  # the stage of the last step
    assert G.synthesis.stage() == (resolution, alpha)


def test_a_run_resumed_in_the_middle_of_a_fade_in_is_exact(tmp_path: Path) -> None:
    torch.manual_seed(0)
    whole = _trainer(tmp_path / "whole")
    for _ in range(7):
        whole.step()
    torch.manual_seed(0)
    first = _trainer(tmp_path / "first")
    for _ in range(3):  # 2 at 4x4, 1 into the fade-in
        first.step()
    assert first.stage.key == "8x8-fade"
    state = first.state_dict()
    torch.manual_seed(123)  # the resumed run must not depend on the process's random state
    second = _trainer(tmp_path / "second")
    second.load_state_dict(state)
    for _ in range(4):
        second.step()
    assert whole.stage == second.stage
    for name in ("G", "D", "G_ema"):
        mine, theirs = whole.all_nets[name].state_dict(), second.all_nets[name].state_dict()
        for key, value in mine.items():
            assert torch.equal(value, theirs[key]), (name, key)
