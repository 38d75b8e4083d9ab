"""The classic GAN presets: paper values, intervals, clipping, SGD schedule, training steps."""

from __future__ import annotations

import math
from dataclasses import replace
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from gankit.data.base import ArrayDataset
from gankit.data.toy import ring8
from gankit.errors import ConfigError
from gankit.recipes import gan
from gankit.recipes.base import fused_adam
from gankit.recipes.gan import GAN, MIN_SGD_LR, GANArgs, GANRecipe, Preset
from gankit.registry import MODELS, RECIPES
from gankit.train.distributed import DistInfo
from gankit.train.logging import RunLogger
from gankit.train.loop import LoopOptions, Trainer
from gankit.train.resolve import DataFacts

PRESETS = ["gan", "cgan", "dcgan", "wgan", "wgan-gp", "sngan", "lsgan"]

#: Tiny widths per model so a step takes milliseconds.
TINY_ARCH = {
    "mlp": {"g_hidden": (32, 32), "d_hidden": (16, 16)},
    "dcgan": {"ngf": 8, "ndf": 8, "z_dim": 16},
    "resnet": {"g_channels": 16, "d_channels": 16, "z_dim": 16},
}


def _images(n: int = 48, res: int = 32, channels: int = 1, classes: int = 10) -> ArrayDataset:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n, channels, res, res), dtype=np.uint8)
    return ArrayDataset(images, np.arange(n) % classes, name="noise", num_classes=classes)


def _trainer(
    preset: str,
    tmp_path: Path,
    *,
    points: bool = False,
    amp: str = "none",
    batch: int = 8,
    pack: int = 1,
    **recipe_args: object,
) -> Trainer:
    torch.manual_seed(0)
    cls = RECIPES.get(preset)
    facts = DataFacts("tiny", "points" if points else "images")
    model, arch = cls.model_defaults(cls.resolve_args({}, facts), facts)
    dataset = ring8() if points else _images(channels=3 if model == "resnet" else 1)
    c_dim = dataset.num_classes if cls.conditional else 0
    res, ch = (0, 0) if points else (dataset.resolution, dataset.channels)
    packing = {"pack": pack} if pack > 1 else {}
    nets = MODELS.get(model)(res, ch, c_dim, **{**arch, **TINY_ARCH[model], **packing})
    recipe = cls(nets, batch, **recipe_args)
    options = LoopOptions(
        total_kimg=1.0,
        ema_kimg=0.0,
        tick_kimg=1.0,
        snapshot_kimg=0.0,
        sample_kimg=0.0,
        device=torch.device("cpu"),
        amp=amp,
        grid_size=4,
        progress=False,
    )
    logger = RunLogger(tmp_path, enabled=False)
    return Trainer(nets, recipe, dataset, tmp_path, options, DistInfo(), logger)


def _snapshot(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _run(trainer: Trainer, iterations: int) -> None:
    for _ in range(iterations):
        trainer.step()


@pytest.mark.parametrize("amp", ["none", "bf16"])
@pytest.mark.parametrize("preset", PRESETS)
def test_a_few_steps_change_G_and_D_with_finite_losses(
    preset: str, amp: str, tmp_path: Path
) -> None:
    trainer = _trainer(preset, tmp_path, amp=amp)
    before = {name: _snapshot(net) for name, net in trainer.nets.items()}
    _run(trainer, trainer.recipe.args.n_critic + 1)  # at least one G step
    for name, net in trainer.nets.items():
        after = _snapshot(net)
        changed = [k for k in after if not torch.equal(before[name][k], after[k])]
        assert changed, f"{preset}: {name} did not change"
        assert all(torch.isfinite(v).all() for v in after.values())
    for key, values in trainer.tick_logs.items():
        assert all(torch.isfinite(v).all() for v in values), key


@pytest.mark.parametrize("preset", ["gan", "wgan-gp", "sngan", "lsgan"])
def test_point_presets_train_the_mlp_on_2d_mixtures(preset: str, tmp_path: Path) -> None:
    trainer = _trainer(preset, tmp_path, points=True)
    assert trainer.nets["G"].output_kind == "points"
    assert trainer.recipe.batch_size == 8  # the test's; the preset's default is PacGAN's 100
    assert RECIPES.get(preset).batch_size_for({}, DataFacts("ring8", "points")) == 100
    before = _snapshot(trainer.nets["G"])
    _run(trainer, trainer.recipe.args.n_critic + 1)
    after = _snapshot(trainer.nets["G"])
    assert any(not torch.equal(before[k], after[k]) for k in after)
    assert trainer.sample_grid(trainer.stage).shape == (2500, 2)


@pytest.mark.parametrize("points", [True, False])
@pytest.mark.parametrize("preset", ["gan", "wgan-gp"])
def test_packed_discriminators_train(preset: str, points: bool, tmp_path: Path) -> None:
    # PacGAN: D sees batch / pack logits; the gradient penalty works on packed inputs too.
    trainer = _trainer(preset, tmp_path, points=points, pack=2)
    assert trainer.nets["D"].pack == 2
    before = {name: _snapshot(net) for name, net in trainer.nets.items()}
    _run(trainer, trainer.recipe.args.n_critic + 1)
    for name, net in trainer.nets.items():
        after = _snapshot(net)
        assert any(not torch.equal(before[name][k], after[k]) for k in after), name
    assert all(torch.isfinite(v).all() for vs in trainer.tick_logs.values() for v in vs)


def _on_images(name: str) -> Preset:
    return RECIPES.get(name).defaults_for("images")


def test_presets_hold_their_papers_values() -> None:
    gan_, cgan = _on_images("gan"), _on_images("cgan")
    # Adam by default (the papers' SGD diverged here); the SGD schedule keeps the papers' values.
    assert (gan_.args.optimizer, gan_.args.lr, gan_.batch_size, gan_.args.n_critic) == (
        "adam",
        2e-4,
        100,
        1,
    )
    assert gan_.args.momentum == (0.5, 0.7) and gan_.args.lr_decay == 1.000004
    assert cgan.args.lr_decay == 1.00004 and RECIPES.get("cgan").conditional
    dcgan = _on_images("dcgan")
    assert (dcgan.args.optimizer, dcgan.args.lr, dcgan.args.betas, dcgan.batch_size) == (
        "adam",
        2e-4,
        (0.5, 0.999),
        128,
    )
    wgan = _on_images("wgan")
    assert (wgan.args, wgan.batch_size) == (
        GANArgs("wasserstein", "rmsprop", 5e-5, n_critic=5, clip=0.01),
        64,
    )
    gp = _on_images("wgan-gp")
    assert (gp.args.lr, gp.args.betas, gp.args.n_critic, gp.args.gp_weight, gp.arch) == (
        1e-4,
        (0.0, 0.9),
        5,
        10.0,
        {"d_norm": "layer"},
    )
    # 2-D points: WGAN-GP's own toy setting (gan_toy.py: lambda 0.1, betas (0.5, 0.9))
    gp_points = RECIPES.get("wgan-gp").defaults_for("points").args
    assert (gp_points.gp_weight, gp_points.betas, gp_points.lr) == (0.1, (0.5, 0.9), 1e-4)
    sn = _on_images("sngan")
    assert (sn.args.loss, sn.args.lr, sn.args.betas, sn.args.n_critic, sn.model) == (
        "hinge",
        2e-4,
        (0.0, 0.9),
        5,
        "resnet",
    )
    ls = _on_images("lsgan")
    assert (ls.args.loss, ls.args.lr, ls.args.betas) == ("least-squares", 2e-4, (0.5, 0.999))


@pytest.mark.parametrize("n_critic", [1, 3, 5])
def test_the_generator_steps_every_n_critic_iterations(n_critic: int, tmp_path: Path) -> None:
    trainer = _trainer("wgan-gp", tmp_path, n_critic=n_critic)
    _run(trainer, 7)
    adam_steps = {
        key: int(next(iter(opt.state.values()))["step"]) for key, opt in trainer.optimizers.items()
    }
    assert adam_steps == {"D": 7, "G": math.ceil(7 / n_critic)}
    assert len(trainer.tick_logs["D_main/loss"]) == 7
    assert len(trainer.tick_logs["G_main/loss"]) == math.ceil(7 / n_critic)


@pytest.mark.parametrize("preset", ["gan", "lsgan", "wgan-gp"])
def test_adam_presets_step_with_the_fused_kernel_and_adams_numerics(
    preset: str, tmp_path: Path
) -> None:
    trainer = _trainer(preset, tmp_path, points=True)
    for opt in trainer.optimizers.values():
        assert isinstance(opt, torch.optim.Adam) and opt.defaults["fused"]
    # Three steps of the fused kernel land where the per-tensor reference Adam lands.
    torch.manual_seed(1)
    start = [torch.randn(33, 7), torch.randn(7)]
    grads = [[torch.randn_like(w) for w in start] for _ in range(3)]
    ends = []
    for make in (fused_adam, partial(torch.optim.Adam, foreach=False)):
        params = [nn.Parameter(w.clone()) for w in start]
        opt = make(params, lr=1e-3, betas=(0.5, 0.9))
        for step_grads in grads:
            for w, g in zip(params, step_grads, strict=True):
                w.grad = g.clone()
            opt.step()
        ends.append([w.detach() for w in params])
    for fused, plain in zip(*ends, strict=True):
        torch.testing.assert_close(fused, plain, rtol=0, atol=1e-6)
        assert not torch.equal(fused, start[0] if fused.dim() == 2 else start[1])


def test_weight_clipping_keeps_every_critic_parameter_in_range(tmp_path: Path) -> None:
    trainer = _trainer("wgan", tmp_path, lr=0.5)  # a huge step pushes weights far past 0.01
    _run(trainer, 2)
    for name, param in trainer.nets["D"].named_parameters():
        assert param.abs().max() <= 0.01 + 1e-9, name
    assert max(p.abs().max().item() for p in trainer.nets["D"].parameters()) == pytest.approx(0.01)


def test_sgd_presets_follow_the_papers_lr_decay_and_momentum_ramp(tmp_path: Path) -> None:
    trainer = _trainer("gan", tmp_path, optimizer="sgd", lr=0.1)
    _run(trainer, 3)
    group = trainer.optimizers["D"].param_groups[0]
    assert group["lr"] == pytest.approx(0.1 / 1.000004**2)  # set before the third D step
    trainer.cur_nimg = 6_250_000  # half-way through the 250-epoch momentum ramp
    trainer.step()
    assert trainer.optimizers["G"].param_groups[0]["momentum"] == pytest.approx(0.6)
    assert trainer.recipe.state_dict() == {"steps": {"G": 4, "D": 4}}


def _tiny_point_recipe(name: str = "gan", **args: object) -> GANRecipe:
    torch.manual_seed(0)
    nets = MODELS.get("mlp")(0, 0, 0, g_hidden=(4,), d_hidden=(4,))
    return RECIPES.get(name)(nets, 8, **args)


@pytest.mark.parametrize(
    ("steps", "nimg"),
    [
        ({"G": 0, "D": 0}, 0),
        ({"G": 4, "D": 12}, 6_250_000),  # half-way through the momentum ramp, n_critic 3
        ({"G": 40_000, "D": 120_000}, 12_500_000),  # the ramp's end
        ({"G": 2_000_000, "D": 6_000_000}, 30_000_000),  # lr decayed below its floor
    ],
)
def test_sgd_settings_follow_the_papers_formulas_after_a_resume(
    steps: dict[str, int], nimg: int
) -> None:
    recipe = _tiny_point_recipe(optimizer="sgd", lr=0.1, lr_rampdown=0.0, n_critic=3)
    recipe.load_state_dict({"steps": steps})  # as a resumed run's checkpoint restores them
    momentum = 0.5 + 0.2 * min(1.0, nimg / (250 * 50_000))
    expected = {
        key: {"lr": max(0.1 / 1.000004 ** steps[key], MIN_SGD_LR), "momentum": momentum}
        for key in ("G", "D")
    }
    settings = recipe.optimizer_settings(nimg, 40_000_000)
    assert set(settings) == {"G", "D"}
    for key in ("G", "D"):
        assert settings[key] == pytest.approx(expected[key])
    assert recipe.optimizer_settings(nimg, 40_000_000) == settings  # asking changes nothing


@pytest.mark.parametrize(
    ("done", "factor"), [(0, 1.0), (500, 1.0), (700, 0.6), (950, 0.1), (1000, 0.0), (1200, 0.0)]
)
def test_the_lr_rampdown_setting_falls_linearly_over_the_end_of_the_run(
    done: int, factor: float
) -> None:
    recipe = _tiny_point_recipe("lsgan")  # 2-D points: ramped down over the last half
    assert recipe.optimizer_settings(done, 1000) == {
        "G": {"lr": pytest.approx(2e-4 * factor)},
        "D": {"lr": pytest.approx(2e-4 * factor)},
    }
    assert recipe.optimizer_settings(done, 0) == {}  # an unknown length: constant


def test_constant_rates_leave_the_optimizers_settings_alone() -> None:
    recipe = _tiny_point_recipe("wgan", lr_rampdown=0.0)
    assert recipe.optimizer_settings(500, 1000) == {}


def test_a_resumed_sgd_run_gets_the_uninterrupted_runs_settings(tmp_path: Path) -> None:
    args = {"optimizer": "sgd", "lr": 0.1, "lr_decay": 1.05, "n_critic": 3, "lr_rampdown": 0.0}

    def settings_at_each_step(trainer: Trainer, iterations: int) -> list[tuple]:
        seen = []
        for key, opt in trainer.optimizers.items():
            opt.register_step_pre_hook(
                lambda o, *_, key=key: seen.append(
                    (key, trainer.cur_nimg, o.param_groups[0]["lr"], o.param_groups[0]["momentum"])
                )
            )
        _run(trainer, iterations)
        return seen

    straight = settings_at_each_step(_trainer("gan", tmp_path, points=True, **args), 7)
    first = _trainer("gan", tmp_path, points=True, **args)
    _run(first, 4)
    resumed = _trainer("gan", tmp_path, points=True, **args)
    resumed.load_state_dict(first.state_dict())
    assert settings_at_each_step(resumed, 3) == straight[-4:]  # D at iterations 4-6, G at 6
    d_lrs = [lr for key, _, lr, _ in straight if key == "D"]
    g_lrs = [lr for key, _, lr, _ in straight if key == "G"]
    assert d_lrs == pytest.approx([0.1 / 1.05**i for i in range(7)])  # one step per iteration
    assert g_lrs == pytest.approx([0.1 / 1.05**i for i in range(3)])  # iterations 0, 3, 6


@pytest.mark.parametrize(("done", "factor"), [(0, 1.0), (700, 0.6), (950, 0.1), (1000, 0.0)])
def test_lr_rampdown_falls_linearly_to_zero_over_the_end_of_the_run(
    done: int, factor: float, tmp_path: Path
) -> None:
    trainer = _trainer("lsgan", tmp_path, lr_rampdown=0.5)  # 1 kimg run: ramp over the last 500
    trainer.cur_nimg = done
    trainer.step()
    for key in ("G", "D"):
        assert trainer.optimizers[key].param_groups[0]["lr"] == pytest.approx(2e-4 * factor)


@pytest.mark.parametrize("preset", PRESETS)
def test_the_lr_ramps_down_over_the_second_half_on_2d_points_only(preset: str) -> None:
    cls = RECIPES.get(preset)
    assert cls.defaults_for("images").args.lr_rampdown == 0.0  # the papers' constant rates
    assert cls.defaults_for("points").args.lr_rampdown == 0.5


def test_lr_rampdown_is_checked() -> None:
    with pytest.raises(ConfigError, match="lr_rampdown"):
        GANRecipe._check(replace(GAN.images.args, lr_rampdown=1.5))
    with pytest.raises(ConfigError, match="sgd has lr_decay"):
        GANRecipe._check(replace(GAN.images.args, optimizer="sgd", lr_rampdown=0.2))


def test_the_gradient_penalty_is_zero_for_a_unit_slope_critic_on_points() -> None:
    from gankit.losses import wgan_gp
    from gankit.losses.penalties import interpolate

    real, fake = torch.randn(16, 2), torch.randn(16, 2)
    mixed = interpolate(real, fake)
    assert mixed.shape == (16, 2)
    w = torch.tensor([0.6, 0.8])  # |w| = 1
    assert torch.allclose(wgan_gp(mixed @ w, mixed), torch.zeros(16), atol=1e-12)
    assert torch.allclose(wgan_gp(mixed @ (3 * w), mixed), torch.full((16,), 4.0))


class _LinearCritic(nn.Module):
    """D(x) = x . w: its input gradient is w everywhere, so R1 = |w|^2 for every real point."""

    def __init__(self, w: torch.Tensor) -> None:
        super().__init__()
        self.w = nn.Parameter(w)

    def forward(self, x: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        return x @ self.w


@pytest.mark.parametrize("gamma", [0.0, 0.5, 3.0])
def test_r1_adds_half_gamma_times_the_squared_input_gradient_at_the_reals(
    gamma: float, tmp_path: Path
) -> None:
    from gankit.losses import d_nonsaturating
    from gankit.recipes.base import StepContext

    trainer = _trainer("gan", tmp_path, points=True, r1_gamma=gamma)
    nets = nn.ModuleDict({"G": trainer.nets["G"], "D": _LinearCritic(torch.tensor([3.0, 4.0]))})

    def context() -> StepContext:  # the same seeded latents each time
        return StepContext(nets, None, 8, torch.device("cpu"), torch.Generator().manual_seed(1), 0)

    real = torch.randn(8, 2)
    logs = trainer.recipe.d_step({"points": real}, context())
    with torch.no_grad():
        fake = nets["G"](context().latents(8), None)
    expected = d_nonsaturating(real @ nets["D"].w, fake @ nets["D"].w) + 0.5 * gamma * 25.0
    assert logs["loss"].item() == pytest.approx(expected.item(), rel=1e-6)
    assert ("r1" in logs) == (gamma > 0)


def test_bad_recipe_values_are_rejected_with_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="n_critic"):
        _trainer("wgan", tmp_path, n_critic=0)
    with pytest.raises(ConfigError, match="loss"):
        _trainer("gan", tmp_path, loss="boxing")
    with pytest.raises(ConfigError, match="r1_gamma"):
        _trainer("gan", tmp_path, r1_gamma=-1.0)


def test_a_conditional_recipe_on_unlabelled_data_names_the_fix(tmp_path: Path) -> None:
    trainer = _trainer("cgan", tmp_path)
    trainer.dataset = ArrayDataset(trainer.dataset.images.numpy(), name="unlabelled")
    trainer.loader_iter = None
    with pytest.raises(ConfigError, match="no labels"):
        trainer.step()


def test_every_preset_is_a_class_of_its_own_with_typed_presets_for_each_kind() -> None:
    for name in PRESETS:
        cls = RECIPES.get(name)
        assert issubclass(cls, GANRecipe) and cls.preset_name == name
        assert getattr(gan, cls.__name__) is cls  # defined in gan.py: go-to-definition finds it
        for kind in ("images", "points"):
            preset = cls.defaults_for(kind)
            assert isinstance(preset, Preset) and isinstance(preset.args, GANArgs)
        kinds = ("images",) if cls.conditional else ("images", "points")
        assert RECIPES.entry(name).kinds == kinds
        with pytest.raises(ConfigError, match=f"recipe {name} trains on images or 2-D points"):
            cls.defaults_for("unpaired")


def test_a_batch_the_packing_cannot_split_is_refused_before_the_run_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    from gankit.cli import main

    out = tmp_path / "run"
    args = ["train", "gan", "--data", "ring8", "--out", str(out), "--batch", "10"]
    assert main([*args, "--set", "model.arch.pack=4"]) == 2
    assert "pack=4) needs a batch divisible by 4; got 10" in capsys.readouterr().err
    assert not out.exists()  # nothing written: the check runs before the run directory
    assert main([*args, "--set", "model.arch.pack=2", "--dry-run"]) == 0


@pytest.mark.parametrize(
    ("data", "extra", "kimg"),
    [("ring8", [], 4000.0), ("grid25", [], 8000.0), ("ring8", ["--kimg", "7"], 7.0)],
)
def test_a_2d_run_without_kimg_gets_its_mixture_budget(
    data: str, extra: list[str], kimg: float, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    from gankit.cli import main

    out = tmp_path / "run"
    assert main(["train", "gan", "--data", data, "--out", str(out), "--dry-run", *extra]) == 0
    assert f"kimg: {kimg}" in capsys.readouterr().out


def test_a_runs_config_records_the_preset_values_and_keeps_them_when_a_preset_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """config.yaml holds every recipe argument and model default the run used, so training from
    it under a gankit whose presets differ gives the same recipe (PacGAN's Adam: 1e-4, beta1 0.8)."""
    import yaml

    from gankit.config import config_from_dict, dump_config
    from gankit.models import mlp
    from gankit.train.run import build

    given = {"recipe": {"name": "gan"}, "data": {"name": "ring8"}, "train": {"out": str(tmp_path)}}
    saved = yaml.safe_load(dump_config(build(config_from_dict(given)).config))
    args = saved["recipe"]["args"]
    assert args["lr"] == 1e-4 and args["betas"] == [0.8, 0.999] and args["lr_rampdown"] == 0.5
    assert args["loss"] == "nonsaturating" and args["n_critic"] == 1 and args["gp_weight"] == 0.0
    arch = saved["model"]["arch"]
    assert arch["pack"] == 1 and arch["spectral_norm"] is False and arch["embed_dim"] is None
    assert arch["z_dim"] == 2 and arch["g_hidden"] == [128] * 8 and arch["d_hidden"] == [128] * 3
    assert arch["g_batchnorm"] is True and arch["maxout_pieces"] == 5 and arch["dropout"] == [0, 0]

    points = gan.GAN.points
    changed = replace(points, args=replace(points.args, lr=5e-4))  # a later version's preset
    monkeypatch.setattr(gan.GAN, "points", changed)
    monkeypatch.setitem(mlp.POINT_DEFAULTS, "g_hidden", (64, 64))  # ... and later widths
    assert build(config_from_dict(given)).recipe.args.lr == 5e-4
    again = build(config_from_dict(saved))
    assert again.recipe.args.lr == 1e-4
    widths = [m.out_features for m in again.nets["G"].modules() if isinstance(m, nn.Linear)]
    assert widths == [128] * 8 + [2]
