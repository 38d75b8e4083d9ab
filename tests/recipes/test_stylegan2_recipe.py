"""The StyleGAN2 recipe: the official configurations, lazy-regularisation Adam settings, R1 and
path length against independent computations, style mixing, cleaned gradients, D's augmentation
(ADA's pipe and p, DiffAugment) and training steps.

The maths runs on tiny stand-in networks with the StyleGAN2 API (a linear mapping, a small
nonlinear synthesis, a linear D), so it does not depend on the real networks' details.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from pathlib import Path
from typing import Any, get_args

import numpy as np
import pytest
import torch
from scipy import stats
from torch import nn

from gankit.augment import PRESETS as AUGMENT_PRESETS
from gankit.augment import AugmentPipe, DiffAugment, diff_augment
from gankit.config import config_from_dict
from gankit.data.base import ArrayDataset
from gankit.errors import ConfigError
from gankit.nets import run_generator
from gankit.recipes.base import Stage, StepContext
from gankit.recipes.stylegan2 import (
    PRESETS,
    AugPipeName,
    StyleGAN2Recipe,
    auto_config,
    config_for,
    lazy_adam_settings,
    mix_styles,
    mixing_cutoff,
    path_lengths,
)
from gankit.registry import MODELS
from gankit.train.distributed import DistInfo
from gankit.train.logging import RunLogger
from gankit.train.loop import LoopOptions, Trainer
from gankit.train.run import build_trainer

Z_DIM, W_DIM, NUM_WS, RES, CHANNELS = 6, 5, 4, 8, 1


class TinyMapping(nn.Module):
    """z -> w, broadcast to every layer; `w_avg` tracked with beta 0.995 as the real one."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(Z_DIM, W_DIM)
        self.register_buffer("w_avg", torch.zeros(W_DIM))

    def forward(
        self,
        z: torch.Tensor,
        c: torch.Tensor | None = None,
        truncation_psi: float = 1,
        truncation_cutoff: int | None = None,
        update_emas: bool = False,
    ) -> torch.Tensor:
        w = self.fc(z)
        if update_emas:
            self.w_avg.copy_(w.detach().float().mean(0).lerp(self.w_avg, 0.995))
        return w[:, None].repeat(1, NUM_WS, 1)


class TinySynthesis(nn.Module):
    """ws -> tanh(sum_i ws_i A_i): nonlinear, and each w entry acts differently."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(NUM_WS, W_DIM, CHANNELS * RES * RES) * 0.3)

    def forward(self, ws: torch.Tensor, noise_mode: str = "random") -> torch.Tensor:
        x = torch.einsum("niw,iwp->np", ws, self.weight.to(ws.dtype))
        return torch.tanh(x).view(-1, CHANNELS, RES, RES)


class TinyG(nn.Module):
    """A stand-in with the StyleGAN2 generator's API."""

    z_dim, c_dim, w_dim, num_ws = Z_DIM, 0, W_DIM, NUM_WS
    img_resolution, img_channels = RES, CHANNELS

    def __init__(self) -> None:
        super().__init__()
        self.mapping, self.synthesis = TinyMapping(), TinySynthesis()

    def forward(
        self, z: torch.Tensor, c: torch.Tensor | None = None, **kwargs: object
    ) -> torch.Tensor:
        return self.synthesis(self.mapping(z, c))


class LinearD(nn.Module):
    """D(x) = w . x, logits `[N, 1]`."""

    img_resolution = RES

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(CHANNELS * RES * RES, 1)

    def forward(self, img: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        return self.fc(img.flatten(1))


def _nets() -> nn.ModuleDict:
    torch.manual_seed(0)
    return nn.ModuleDict({"G": TinyG(), "D": LinearD()})


def _ctx(nets: nn.ModuleDict, seed: int = 1, batch: int = 4) -> StepContext:
    return StepContext(
        nets=nets, stage=Stage(RES, batch_size=batch), batch_size=batch,
        device=torch.device("cpu"), generator=torch.Generator().manual_seed(seed), cur_nimg=0,
    )  # fmt: skip


def _reals(n: int = 4) -> dict[str, torch.Tensor]:
    return {"img": torch.randn(n, CHANNELS, RES, RES, generator=torch.Generator().manual_seed(9))}


# ---------------------------------------------------------------------- configurations


@pytest.mark.parametrize(
    ("res", "gpus", "batch", "mbstd", "base", "lr", "gamma", "ema"),
    [  # train.py's auto rules, evaluated by hand
        (32, 1, 32, 4, 16384, 0.0025, 0.0002 * 32**2 / 32, 10.0),
        (256, 1, 16, 4, 16384, 0.0025, 0.0002 * 256**2 / 16, 5.0),
        (128, 4, 64, 4, 16384, 0.0025, 0.0002 * 128**2 / 64, 20.0),
        (512, 2, 16, 4, 32768, 0.0025, 0.0002 * 512**2 / 16, 5.0),
        (1024, 8, 32, 4, 32768, 0.002, 0.0002 * 1024**2 / 32, 10.0),
        (1024, 1, 4, 4, 32768, 0.002, 0.0002 * 1024**2 / 4, 1.25),
    ],
)
def test_auto_configuration_follows_the_official_rules(
    res: int, gpus: int, batch: int, mbstd: int, base: int, lr: float, gamma: float, ema: float
) -> None:
    c = auto_config(res, gpus)
    assert (c.batch_size, c.mbstd_group, c.channel_base, c.channel_max) == (batch, mbstd, base, 512)
    assert c.lr == lr and c.r1_gamma == pytest.approx(gamma) and c.ema_kimg == ema
    assert (c.ema_rampup, c.mapping_layers, c.kimg, c.batch_gpu) == (0.05, 2, 25000, batch // gpus)
    assert (c.pl_weight, c.style_mixing_prob, c.d_architecture) == (2.0, 0.9, "resnet")


def test_presets_hold_the_official_table() -> None:
    # (ref_gpus, kimg, mb, mbstd, fmaps * 32768, lrate, gamma, ema, ramp, map) from train.py
    table = {
        "stylegan2": (8, 25000, 32, 4, 32768, 0.002, 10, 10, 0, 8),
        "paper256": (8, 25000, 64, 8, 16384, 0.0025, 1, 20, 0, 8),
        "paper512": (8, 25000, 64, 8, 32768, 0.0025, 0.5, 20, 0, 8),
        "paper1024": (8, 25000, 32, 4, 32768, 0.002, 2, 10, 0, 8),
        "cifar": (2, 100000, 64, 32, 32768, 0.0025, 0.01, 500, 0.05, 2),
    }
    assert set(PRESETS) == set(table)
    for name, row in table.items():
        c = config_for(name, resolution=64, gpus=3)  # presets ignore both
        got = (c.gpus, c.kimg, c.batch_size, c.mbstd_group, c.channel_base, c.lr, c.r1_gamma,
               c.ema_kimg, c.ema_rampup, c.mapping_layers)  # fmt: skip
        assert got == row, name
    cifar = PRESETS["cifar"]
    assert (cifar.pl_weight, cifar.style_mixing_prob, cifar.d_architecture) == (0, 0, "orig")
    assert PRESETS["stylegan2"].batch_gpu == 4 and cifar.batch_gpu == 32
    with pytest.raises(ConfigError, match="paper256"):
        config_for("paper128", 128)


def test_plan_prints_every_resolved_value_and_the_runs_batch() -> None:
    recipe = StyleGAN2Recipe(_nets(), 8)
    plan = recipe.plan(1000)
    for field in ("batch_size 32", "mbstd_group 4", "channel_base 16384", "lr 0.0025",
                  "r1_gamma 0.0004", "ema_kimg 10", "ema_rampup 0.05", "mapping_layers 2",
                  "batch_gpu 32", "pl_weight 2", "style_mixing_prob 0.9",
                  "trains with batch 8"):  # fmt: skip
        assert field in plan, field  # r1_gamma: 0.0002 * 8^2 / 32, the auto rule at 8 px
    assert "R1 gamma 0.0004 every 16 steps" in recipe.describe()
    assert StyleGAN2Recipe.default_length_kimg({"cfg": "cifar"}, _Facts(), 32) == 100000
    assert StyleGAN2Recipe.default_length_kimg({}, _Facts(), 32) == 25000


class _Facts:
    resolution = 32


# ---------------------------------------------------------------------- optimizers and phases


def test_lazy_regularisation_corrects_learning_rates_and_betas() -> None:
    recipe = StyleGAN2Recipe(_nets(), 4)
    g, d = recipe.optimizers()["G"].param_groups[0], recipe.optimizers()["D"].param_groups[0]
    assert g["lr"] == pytest.approx(0.0025 * 4 / 5) and d["lr"] == pytest.approx(0.0025 * 16 / 17)
    assert g["betas"] == pytest.approx((0.0, 0.99**0.8))
    assert d["betas"] == pytest.approx((0.0, 0.99 ** (16 / 17)))
    assert g["eps"] == 1e-8 and g["fused"]
    assert all(type(o) is torch.optim.Adam for o in recipe.optimizers().values())
    assert lazy_adam_settings(0.002, (0.5, 0.99), None) == (0.002, (0.5, 0.99))
    phases = recipe.phases()
    assert [(p.name, p.optimizer, p.every) for p in phases] == [
        ("G_main", "G", 1), ("G_reg", "G", 4), ("D_main", "D", 1), ("D_reg", "D", 16),
    ]  # fmt: skip
    assert [p.autocast for p in phases] == [True, False, True, False]
    assert all(p.clean_grads for p in phases)  # the loop's NaN -> 0, +-inf -> +-1e5


def test_glr_and_dlr_give_each_net_its_own_rate_before_the_lazy_correction() -> None:
    # stylegan3's train.py: --glr and --dlr; here left at None they are `lr`.
    recipe = StyleGAN2Recipe(_nets(), 4, lr=0.002, glr=0.001)
    g, d = recipe.optimizers()["G"].param_groups[0], recipe.optimizers()["D"].param_groups[0]
    assert g["lr"] == pytest.approx(0.001 * 4 / 5) and d["lr"] == pytest.approx(0.002 * 16 / 17)
    assert "lr G 0.001 D 0.002" in recipe.describe()
    assert StyleGAN2Recipe(_nets(), 4, dlr=0.004).lrs == {"G": 0.0025, "D": 0.004}
    with pytest.raises(ConfigError, match="dlr=0"):
        StyleGAN2Recipe(_nets(), 4, dlr=0.0)


def test_cifar_drops_path_length_and_style_mixing_but_keeps_the_correction() -> None:
    recipe = StyleGAN2Recipe(_nets(), 4, cfg="cifar")
    assert [p.name for p in recipe.phases()] == ["G_main", "D_main", "D_reg"]
    assert recipe.optimizers()["G"].param_groups[0]["lr"] == pytest.approx(0.0025 * 0.8)
    not_lazy = StyleGAN2Recipe(_nets(), 4, G_reg_interval=None, D_reg_interval=None, lr=1e-3)
    assert [p.name for p in not_lazy.phases()] == ["G_main", "D_main"]
    assert not_lazy.optimizers()["D"].param_groups[0]["lr"] == 1e-3
    with pytest.raises(ConfigError, match="G_reg_interval"):
        StyleGAN2Recipe(_nets(), 4, G_reg_interval=0)


def test_a_nan_gradient_never_reaches_the_weights_through_a_training_step(
    tmp_path: Path,
) -> None:
    # No R1 and no augmentation: D is stepped once per iteration, by D_main, on plain reals.
    trainer = _trainer(tmp_path, "none", r1_gamma=0.0, aug="noaug")
    weight = trainer.nets["D"].fc.weight
    start = weight.detach().clone()
    raw: list[torch.Tensor] = []

    def corrupt(grad: torch.Tensor) -> torch.Tensor:
        raw.append(grad.clone())
        bad = grad.clone()
        bad[0, 0], bad[0, 1], bad[0, 2] = float("nan"), float("inf"), -float("inf")
        return bad

    weight.register_hook(corrupt)
    trainer.step()
    assert len(raw) == 1 and torch.isfinite(weight).all()
    # One plain Adam step on the cleaned gradient, with the D optimizer's settings.
    clean = raw[0].clone()
    clean[0, 0], clean[0, 1], clean[0, 2] = 0.0, 1e5, -1e5
    group = trainer.recipe.optimizers()["D"].param_groups[0]
    expected = nn.Parameter(start.clone())
    expected.grad = clean
    torch.optim.Adam([expected], lr=group["lr"], betas=group["betas"], eps=group["eps"]).step()
    torch.testing.assert_close(weight.detach(), expected.detach())
    assert weight[0, 0] == start[0, 0]  # NaN -> 0: the weight stays


# ---------------------------------------------------------------------- penalties


@pytest.mark.parametrize("scale", [1.0, 2.0])
def test_r1_of_a_linear_critic_is_its_squared_weight_norm(scale: float) -> None:
    nets = _nets()
    recipe = StyleGAN2Recipe(nets, 4, r1_gamma=0.3, aug="fixed", p=1.0)
    assert recipe.augment_pipe is not None
    # The pipe is inside R1 too: D(a x) has gradient a w.
    recipe.augment_pipe.forward = lambda img, generator=None: img * scale  # type: ignore[method-assign]
    logs = recipe.d_reg(_reals(), _ctx(nets))
    w2 = nets["D"].fc.weight.detach().square().sum()
    torch.testing.assert_close(logs["r1"], scale**2 * w2)
    torch.testing.assert_close(logs["loss"], 0.3 / 2 * 16 * scale**2 * w2)


def _finite_difference_lengths(
    synthesis: nn.Module, ws: torch.Tensor, noise: torch.Tensor, eps: float = 1e-6
) -> torch.Tensor:
    """|d sum(img * noise) / d ws| per sample, by central differences in float64."""
    synthesis = synthesis.double()
    grad = torch.zeros_like(ws)
    with torch.no_grad():
        for index in np.ndindex(*ws.shape):
            step = torch.zeros_like(ws)
            step[index] = eps
            plus = (synthesis(ws + step) * noise).sum()
            minus = (synthesis(ws - step) * noise).sum()
            grad[index] = (plus - minus) / (2 * eps)
    return grad.square().sum(2).mean(1).sqrt()


def test_path_lengths_match_finite_differences() -> None:
    nets = _nets()
    ws = torch.randn(3, NUM_WS, W_DIM, dtype=torch.float64, requires_grad=True)
    synthesis = nets["G"].synthesis.double()
    img = synthesis(ws)
    noise = torch.randn(img.shape, dtype=torch.float64) / RES
    expected = _finite_difference_lengths(synthesis, ws.detach(), noise)
    torch.testing.assert_close(path_lengths(img, ws, noise).double(), expected, rtol=1e-5, atol=0)


def test_regularisers_run_uncompiled_since_compile_has_no_double_backward() -> None:
    lazy = StyleGAN2Recipe(_nets(), 8).phases()
    assert [(p.name, p.compiled) for p in lazy] == [
        ("G_main", True), ("G_reg", False), ("D_main", True), ("D_reg", False)
    ]  # fmt: skip
    eager = StyleGAN2Recipe(_nets(), 8, G_reg_interval=None, D_reg_interval=None).phases()
    assert [(p.name, p.compiled) for p in eager] == [("G_main", False), ("D_main", False)]


def test_path_length_phase_against_an_independent_computation() -> None:
    nets = _nets()
    recipe = StyleGAN2Recipe(nets, 4, style_mixing_prob=0.0, pl_weight=2.0)
    recipe.pl_mean = torch.tensor(0.3)
    reference = copy.deepcopy(nets["G"])
    logs = recipe.g_reg({}, _ctx(nets, seed=5))
    logs["loss"].backward()
    # Redraw the phase's random numbers in its order: 4 latents, then noise for the first 2.
    generator = torch.Generator().manual_seed(5)
    z = torch.randn(4, Z_DIM, generator=generator)[:2]
    noise = torch.randn(2, CHANNELS, RES, RES, generator=generator) / math.sqrt(RES * RES)
    G = _nets()["G"].double()
    ws = G.mapping(z.double())
    lengths = _finite_difference_lengths(G.synthesis, ws, noise.double())
    pl_mean = 0.3 + 0.01 * (lengths.mean() - 0.3)
    expected = 2.0 * 4 * (lengths - pl_mean).square().mean()  # weight 2, times the interval 4
    torch.testing.assert_close(logs["loss"].double(), expected, rtol=1e-4, atol=0)
    torch.testing.assert_close(recipe.pl_mean.double(), pl_mean, rtol=1e-5, atol=0)
    # The gradient, by plain autograd: pl_mean's dependence on this minibatch is kept.
    ws = reference.mapping(z)
    img = reference.synthesis(ws)
    (grad,) = torch.autograd.grad((img * noise).sum(), ws, create_graph=True)
    plain = grad.square().sum(2).mean(1).sqrt()
    (8 * (plain - (0.3 + 0.01 * (plain.mean() - 0.3))).square().mean()).backward()
    for mine, theirs in zip(nets["G"].parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(mine.grad, theirs.grad)
    assert recipe.state_dict()["pl_mean"] == recipe.pl_mean
    fresh = StyleGAN2Recipe(_nets(), 4)
    fresh.load_state_dict(recipe.state_dict())
    assert torch.equal(fresh.pl_mean, recipe.pl_mean)
    # The first mapping call of each phase tracks w_avg; the mixing latent's would not.
    assert nets["G"].mapping.w_avg.abs().sum() > 0


# ---------------------------------------------------------------------- style mixing


def test_the_crossover_is_uniform_in_1_to_num_ws_with_probability_0_9() -> None:
    generator = torch.Generator().manual_seed(0)
    draws = torch.stack([mixing_cutoff(5, 0.9, generator) for _ in range(20000)])
    counts = torch.bincount(draws, minlength=6)[1:].numpy()
    expected = 20000 * np.array([0.9 / 4] * 4 + [0.1])  # cutoffs 1..4, then 5 = no mixing
    assert stats.chisquare(counts, expected).pvalue > 1e-3
    assert mixing_cutoff(5, 0.0, generator) == 5 and mixing_cutoff(1, 0.9, generator) == 1
    ones = torch.stack([mixing_cutoff(5, 1.0, generator) for _ in range(200)])
    assert ones.min() >= 1 and ones.max() <= 4


def test_mixing_takes_the_second_ws_from_the_cutoff_on() -> None:
    ws, ws_mix = torch.zeros(2, 5, 3), torch.ones(2, 5, 3)
    mixed = mix_styles(ws, ws_mix, torch.tensor(2))
    assert mixed[:, :2].eq(0).all() and mixed[:, 2:].eq(1).all()
    assert torch.equal(mix_styles(ws, ws_mix, torch.tensor(5)), ws)


def test_generator_mixes_two_latents_at_the_drawn_crossover() -> None:
    nets = _nets()
    recipe = StyleGAN2Recipe(nets, 4, style_mixing_prob=1.0)
    z = torch.randn(3, Z_DIM)
    _, ws = recipe.run_generator(_ctx(nets, seed=3), z, None)
    generator = torch.Generator().manual_seed(3)
    cutoff = int(mixing_cutoff(NUM_WS, 1.0, generator))
    z_mix = torch.randn(z.shape, generator=generator)
    mapping = nets["G"].mapping
    torch.testing.assert_close(ws[:, :cutoff], mapping(z)[:, :cutoff])
    torch.testing.assert_close(ws[:, cutoff:], mapping(z_mix)[:, cutoff:])


# ---------------------------------------------------------------------- training


def _trainer(tmp_path: Path, amp: str, **args: Any) -> Trainer:
    nets = _nets()
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (16, CHANNELS, RES, RES), dtype=np.uint8)
    dataset = ArrayDataset(images, np.zeros(16, dtype=np.int64), name="noise", num_classes=1)
    options = LoopOptions(
        total_kimg=1.0, ema_kimg=10.0, ema_rampup=0.05, tick_kimg=1.0, snapshot_kimg=0.0,
        sample_kimg=0.0, device=torch.device("cpu"), amp=amp, grid_size=4, progress=False,
    )  # fmt: skip
    recipe = StyleGAN2Recipe(nets, 4, **args)
    logger = RunLogger(tmp_path, enabled=False)
    return Trainer(nets, recipe, dataset, tmp_path, options, DistInfo(), logger)


@pytest.mark.parametrize("amp", ["none", "bf16"])
def test_training_steps_fire_every_phase_at_its_interval(amp: str, tmp_path: Path) -> None:
    trainer = _trainer(tmp_path, amp)
    before = {k: [p.detach().clone() for p in n.parameters()] for k, n in trainer.nets.items()}
    for _ in range(17):
        trainer.step()
    counts = {key: len(values) for key, values in trainer.tick_logs.items()}
    # Iterations 0..16: the main phases every time, G_reg at 0, 4, 8, 12, 16, D_reg at 0 and 16.
    assert counts["G_main/loss"] == counts["D_main/loss"] == 17
    assert counts["G_reg/loss"] == 5 and counts["D_reg/loss"] == 2
    for values in trainer.tick_logs.values():
        assert all(torch.isfinite(v).all() for v in values)
    for name, net in trainer.nets.items():
        assert any(
            not torch.equal(b, a) for b, a in zip(before[name], net.parameters(), strict=True)
        ), name
    assert trainer.recipe.pl_mean > 0


# ---------------------------------------------------------------------- the real networks


def _real_trainer(tmp_path: Path, amp: str, **args: Any) -> Trainer:
    """The stylegan2 model in its smallest arch at 8 px, built as `gankit train` builds it."""
    args = {"G_reg_interval": 2, "D_reg_interval": 3, **args}
    config = config_from_dict(
        {
            "recipe": {"name": "stylegan2", "args": args},
            "model": {"name": "auto", "arch": dict(MODELS.entry("stylegan2").small_arch)},
            "data": {"name": "digits", "resolution": 8},
            "train": {"out": str(tmp_path / "run"), "kimg": 1.0, "batch_size": 4, "amp": amp,
                      "device": "cpu", "grid_size": 1, "progress": False},
        }
    )  # fmt: skip
    return build_trainer(config)


@pytest.mark.parametrize("amp", ["none", "bf16"])
def test_the_stylegan2_model_trains_with_every_phase(amp: str, tmp_path: Path) -> None:
    torch.manual_seed(0)
    trainer = _real_trainer(tmp_path, amp)
    G, D = trainer.nets["G"], trainer.nets["D"]
    assert G.mapping.num_layers == 2  # the auto configuration's mapping depth
    before = {k: [p.detach().clone() for p in n.parameters()] for k, n in trainer.nets.items()}
    for _ in range(4):
        trainer.step()
    counts = {key: len(values) for key, values in trainer.tick_logs.items()}
    # Iterations 0..3: G_reg at 0 and 2, D_reg at 0 and 3.
    assert (counts["G_main/loss"], counts["G_reg/loss"]) == (4, 2)
    assert (counts["D_main/loss"], counts["D_reg/loss"]) == (4, 2)
    for values in trainer.tick_logs.values():
        assert all(torch.isfinite(v).all() for v in values)
    for name, net in (("G", G), ("D", D)):
        after = list(net.parameters())
        assert any(not torch.equal(b, a) for b, a in zip(before[name], after, strict=True)), name
    assert trainer.recipe.pl_mean > 0 and G.mapping.w_avg.abs().sum() > 0
    state = trainer.state_dict()["recipe"]
    assert torch.equal(state["pl_mean"], trainer.recipe.pl_mean)


def test_previews_use_the_constant_noise_and_metrics_the_random(tmp_path: Path) -> None:
    trainer = _real_trainer(tmp_path, "none")
    G = trainer.nets["G"]
    with torch.no_grad():  # the noise strengths start at 0, as officially
        for net in (G, trainer.all_nets["G_ema"]):
            for name, param in net.named_parameters():
                if name.endswith("noise_strength"):
                    param.fill_(1.0)
    # The grids are drawn with the constant noise buffers, as the official snapshots.
    const = run_generator(
        trainer.all_nets["G_ema"], trainer.preview.z, None, {"noise_mode": "const"}
    )
    torch.testing.assert_close(trainer.sample_grid(), const)
    random = run_generator(
        trainer.all_nets["G_ema"], trainer.preview.z, None, {"noise_mode": "random"}
    )
    assert not torch.allclose(const, random)
    # Metrics and the checkpoint's sampling kwargs keep G's default, random noise (official).
    assert trainer.recipe.generator_kwargs(Stage(RES)) == {}
    z = torch.randn(3, G.z_dim)
    assert not torch.equal(run_generator(G, z), run_generator(G, z))


# ---------------------------------------------------------------------- augmentation


def _count_pipe_calls(module: nn.Module) -> list[tuple[tuple[int, ...], bool]]:
    """Wrap `module.forward` to record (shape, requires_grad) of every image batch it gets."""
    calls: list[tuple[tuple[int, ...], bool]] = []
    original = module.forward

    def counting(img: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        calls.append((tuple(img.shape), img.requires_grad))
        return original(img, generator)

    module.forward = counting  # type: ignore[method-assign]
    return calls


def test_the_pipe_gets_every_image_d_sees_in_every_phase() -> None:
    nets = _nets()
    recipe = StyleGAN2Recipe(nets, 4, aug="fixed", p=1.0)
    assert recipe.augment_pipe is not None and recipe.ada is not None
    assert recipe.ada.p == 1.0 and not recipe.ada.adaptive
    calls = _count_pipe_calls(recipe.augment_pipe)
    shape = (4, CHANNELS, RES, RES)
    recipe.g_main(_reals(), _ctx(nets))
    assert calls == [(shape, True)]  # the fakes, in G's graph
    recipe.g_reg(_reals(), _ctx(nets))
    assert len(calls) == 1  # path length: no D
    logs = recipe.d_main(_reals(), _ctx(nets))
    assert calls[1:] == [(shape, False), (shape, False)]  # fakes, then reals
    assert logs["aug_p"] == 1.0
    recipe.d_reg(_reals(), _ctx(nets))
    assert calls[3:] == [(shape, True)]  # the reals, R1 differentiates through the pipe


def test_d_sees_the_pipes_images_and_r1_goes_through_it() -> None:
    nets = _nets()
    recipe = StyleGAN2Recipe(nets, 4, aug="fixed", p=1.0, r1_gamma=0.3)
    seen: list[torch.Tensor] = []
    nets["D"].register_forward_pre_hook(lambda module, args: seen.append(args[0].detach()))
    reals = _reals()
    logs = recipe.d_reg(reals, _ctx(nets, seed=7))
    # D's input: the official bgc pipe at p = 1, drawing first from the loop's generator.
    pipe = AugmentPipe.preset("bgc")
    pipe.p.fill_(1.0)
    expected = pipe(reals["img"], torch.Generator().manual_seed(7))
    assert not torch.allclose(expected, reals["img"], atol=1e-3)
    torch.testing.assert_close(seen[0], expected)
    # With these draws bgc is affine in x (resampling, then a colour map), so D(pipe(x)) = w.(Ax
    # + b) has the gradient A^T w everywhere: read it off at x = 0 with the same draws.
    zeros = torch.zeros_like(reals["img"], requires_grad=True)
    out = nets["D"](pipe(zeros, torch.Generator().manual_seed(7))).sum()
    (grad,) = torch.autograd.grad(out, zeros)
    torch.testing.assert_close(logs["r1"], grad.square().sum((1, 2, 3)).mean())
    w2 = nets["D"].fc.weight.detach().square().sum()
    assert not torch.allclose(logs["r1"], w2, rtol=1e-2)  # not R1 of D without the pipe


@pytest.mark.parametrize("aug", ["fixed", "diffaug"])
def test_augmentation_runs_in_float32_under_bf16_autocast(aug: str) -> None:
    nets = _nets()
    recipe = StyleGAN2Recipe(nets, 4, aug=aug, p=1.0)
    ctx = dataclasses.replace(_ctx(nets, seed=4), autocast_dtype=torch.bfloat16)
    img = _reals()["img"]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = recipe.augment(img.bfloat16(), ctx)
    augment = recipe.augment_pipe if aug == "fixed" else recipe.diffaug
    expected = augment(img.bfloat16().float(), torch.Generator().manual_seed(4))
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, expected, rtol=0, atol=0)


def test_ada_observes_the_signs_of_d_real_in_d_main_and_d_reg() -> None:
    nets = _nets()
    recipe = StyleGAN2Recipe(nets, 4)
    seen: list[torch.Tensor] = []
    nets["D"].register_forward_hook(lambda module, args, out: seen.append(out.detach()))
    recipe.g_main(_reals(), _ctx(nets))
    recipe.d_main(_reals(), _ctx(nets))
    recipe.d_reg(_reals(), _ctx(nets, seed=2))
    # D ran on G_main's fakes, D_main's fakes and reals, D_reg's reals: the reals' signs count.
    signs = torch.cat([seen[2], seen[3]]).sign()
    assert recipe.ada.sign_count == 8 and recipe.ada.sign_sum == signs.sum().double()


def test_ada_raises_p_after_its_interval_when_d_is_sure_of_the_reals(tmp_path: Path) -> None:
    trainer = _trainer(tmp_path, "none")  # the default: ADA from p = 0, every 4, 500 kimg
    recipe = trainer.recipe
    assert recipe.ada is not None and recipe.ada.adaptive and recipe.ada.target == 0.6
    with torch.no_grad():  # D(real) about 100: every sign +1, over the target
        trainer.nets["D"].fc.weight.zero_()
        trainer.nets["D"].fc.bias.fill_(100.0)
    step = 4 * 4 / (500 * 1000)  # batch * interval / (ada_kimg * 1000)
    for _ in range(3):
        trainer.step()
    assert recipe.ada.p == 0.0
    trainer.step()
    first = torch.tensor(step, dtype=torch.float32)
    assert recipe.augment_pipe.p == first
    for _ in range(4):
        trainer.step()
    assert recipe.augment_pipe.p == torch.tensor(float(first) + step, dtype=torch.float32)
    logged = [float(v) for v in trainer.tick_logs["D_main/aug_p"]]
    assert logged == [0.0] * 4 + [float(first)] * 4  # p as D_main saw it


def test_ada_keeps_p_at_0_when_d_doubts_the_reals(tmp_path: Path) -> None:
    trainer = _trainer(tmp_path, "none", ada_interval=2)
    with torch.no_grad():
        trainer.nets["D"].fc.weight.zero_()
        trainer.nets["D"].fc.bias.fill_(-100.0)
    for _ in range(4):
        trainer.step()
    assert trainer.recipe.ada.p == 0.0  # moved down twice, floored at 0


def test_ada_state_round_trips_and_a_resumed_run_is_exact(tmp_path: Path) -> None:
    args = {"aug": "ada", "p": 0.5, "ada_interval": 3, "ada_kimg": 0.1}
    torch.manual_seed(0)
    whole = _real_trainer(tmp_path / "whole", "none", **args)
    for _ in range(8):
        whole.step()
    torch.manual_seed(0)
    first = _real_trainer(tmp_path / "first", "none", **args)
    for _ in range(4):
        first.step()
    state = first.state_dict()
    ada = state["recipe"]["ada"]
    assert ada["iterations"] == 1 and ada["sign_count"] > 0  # stopped within an interval
    assert ada["p"] == first.recipe.ada.p != 0.5  # p moved at iteration 2
    second = _real_trainer(tmp_path / "second", "none", **args)
    second.load_state_dict(state)
    assert second.recipe.ada.p == first.recipe.ada.p
    for _ in range(4):
        second.step()
    assert whole.recipe.ada.p == second.recipe.ada.p
    for key in ("p", "sign_sum", "sign_count", "iterations"):
        assert whole.recipe.state_dict()["ada"][key] == second.recipe.state_dict()["ada"][key]
    for name in ("G", "D", "G_ema"):
        mine, theirs = whole.all_nets[name].state_dict(), second.all_nets[name].state_dict()
        for key, value in mine.items():
            assert torch.equal(value, theirs[key]), (name, key)


def test_noaug_never_calls_a_pipe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("an augmentation ran")

    monkeypatch.setattr(AugmentPipe, "forward", refuse)
    monkeypatch.setattr(DiffAugment, "forward", refuse)
    for args in ({"aug": "noaug"}, {"aug": "fixed", "p": 0.0}):
        trainer = _trainer(tmp_path, "none", **args)
        assert trainer.recipe.augment_pipe is None and trainer.recipe.diffaug is None
        trainer.step()  # every phase runs at iteration 0
        assert "D_main/aug_p" not in trainer.tick_logs and trainer.recipe.state_dict().keys() == {
            "pl_mean"
        }


def test_diffaug_applies_diffaugment_to_what_d_sees(tmp_path: Path) -> None:
    nets = _nets()
    recipe = StyleGAN2Recipe(nets, 4, aug="diffaug", diffaug_policy="translation,cutout")
    assert recipe.augment_pipe is None and recipe.diffaug is not None
    calls = _count_pipe_calls(recipe.diffaug)
    seen: list[torch.Tensor] = []
    nets["D"].register_forward_pre_hook(lambda module, args: seen.append(args[0].detach()))
    reals = _reals()
    recipe.d_reg(reals, _ctx(nets, seed=3))
    expected = diff_augment(reals["img"], "translation,cutout", torch.Generator().manual_seed(3))
    assert (expected == 0).any() and not (reals["img"] == 0).any()  # cutout's zeros
    torch.testing.assert_close(seen[0], expected)
    recipe.g_main(reals, _ctx(nets))
    recipe.d_main(reals, _ctx(nets))
    assert len(calls) == 4  # R1's reals; G's fakes; D's fakes and reals
    trainer = _trainer(tmp_path, "none", aug="diffaug")
    trainer.step()
    assert trainer.recipe.state_dict().keys() == {"pl_mean"}


@pytest.mark.parametrize(
    ("args", "key"),
    [
        ({"aug": "adaptive"}, "recipe.args.aug"),
        ({"aug": "fixed", "p": 1.5}, "recipe.args.p"),
        ({"p": -0.1}, "recipe.args.p"),
        ({"target": 1.2}, "recipe.args.target"),
        ({"augpipe": "bgcx"}, "recipe.args.augpipe"),
        ({"aug": "diffaug", "diffaug_policy": "color,zoom"}, "recipe.args.diffaug_policy"),
        ({"ada_interval": 0}, "ada_interval"),
        ({"ada_kimg": 0.0}, "ada_kimg"),
    ],
)
def test_bad_augmentation_values_are_config_errors_naming_the_key(
    args: dict[str, Any], key: str
) -> None:
    with pytest.raises(ConfigError, match=key):
        StyleGAN2Recipe(_nets(), 4, **args)


def test_the_augpipe_names_are_the_official_presets() -> None:
    assert set(get_args(AugPipeName)) == set(AUGMENT_PRESETS)
    assert "bgcfnc" in AUGMENT_PRESETS and len(AUGMENT_PRESETS) == 11


def test_bad_augmentation_values_are_refused_by_the_config_check(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="augpipe"):
        _real_trainer(tmp_path, "none", augpipe="bgcx")
