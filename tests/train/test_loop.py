"""The training loop on tiny settings: every stepped net changes, intervals, NaN, exact resume."""

from __future__ import annotations

import copy
import io
import json
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from gankit.data.base import ArrayDataset
from gankit.errors import TrainingDivergedError
from gankit.models import progan
from gankit.recipes.base import Phase, Recipe, Stage, StepContext
from gankit.recipes.progan import ProGANRecipe
from gankit.train.distributed import DistInfo
from gankit.train.logging import RunLogger
from gankit.train.loop import LoopOptions, Trainer
from gankit.train.signals import SOFT_STOP_SIGNAL, keep_stop_requests


def _dataset(n: int = 40, res: int = 16) -> ArrayDataset:
    rng = np.random.default_rng(0)
    return ArrayDataset(rng.integers(0, 256, (n, 1, res, res), dtype=np.uint8), name="noise")


def _trainer(
    run_dir: Path, total_kimg: float, amp: str = "none", progress: bool = False, **recipe_args
) -> Trainer:
    torch.manual_seed(0)
    nets = progan.build(16, 1, channel_base=64, channel_max=16, z_dim=16)
    args = {"fade_kimg": 0.032, "stable_kimg": 0.032, **recipe_args}
    recipe = ProGANRecipe(nets, 8, **args)
    options = LoopOptions(
        total_kimg=total_kimg,
        ema_kimg=0.05,
        tick_kimg=0.016,
        snapshot_kimg=0.04,
        sample_kimg=0.08,
        device=torch.device("cpu"),
        amp=amp,
        grid_size=4,
        progress=progress,
        model_spec={"name": "progan"},
    )
    logger = RunLogger(run_dir, tensorboard=False)
    return Trainer(nets, recipe, _dataset(), run_dir, options, DistInfo(), logger)


def _params(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


@pytest.mark.parametrize("amp", ["none", "bf16"])
def test_a_few_steps_change_G_D_and_G_ema_with_finite_losses(tmp_path: Path, amp: str) -> None:
    trainer = _trainer(tmp_path, total_kimg=0.048, amp=amp)
    before = {
        name: _params(net)
        for name, net in [*trainer.nets.items(), ("G_ema", trainer.all_nets["G_ema"])]
    }
    trainer.run()
    after = {
        name: _params(net)
        for name, net in [*trainer.nets.items(), ("G_ema", trainer.all_nets["G_ema"])]
    }
    for name in before:
        changed = [k for k in before[name] if not torch.equal(before[name][k], after[name][k])]
        assert changed, f"{name} did not change"
        assert all(torch.isfinite(v).all() for v in after[name].values())
    records = [json.loads(line) for line in (tmp_path / "stats.jsonl").read_text().splitlines()]
    assert records and all(
        np.isfinite(r["D_main/loss"]) and np.isfinite(r["G_main/loss"]) for r in records
    )
    assert trainer.cur_nimg == 48 and trainer.cur_iter == 6


def test_every_tick_is_a_line_in_log_txt_and_on_the_console_without_a_bar(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trainer = _trainer(tmp_path, total_kimg=0.048)  # ticks every 0.016 kimg: three of them
    trainer.run()
    lines = [line for line in (tmp_path / "log.txt").read_text().splitlines() if " tick " in line]
    assert [line.split(" tick ")[1].split(":")[0] for line in lines] == [
        "0.016 kimg",
        "0.032 kimg",
        "0.048 kimg",
    ]
    assert all("img/s" in line and "D_main " in line and "G_main " in line for line in lines)
    # the resolution of each tick's stage, and the fade-in's alpha only while it fades
    assert [line.split(": ")[1].split(" img/s")[0].rsplit(" ", 1)[0] for line in lines] == [
        "4px",
        "4px",
        "8px a=0.25",
    ]
    assert capsys.readouterr().out.count("tick 0.0") == 3  # progress=False: printed as lines


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("terminal", [True, False])
def test_the_progress_bar_is_drawn_on_a_terminal_and_not_into_a_log_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, terminal: bool
) -> None:
    stderr = _Terminal() if terminal else io.StringIO()
    monkeypatch.setattr(sys, "stderr", stderr)
    _trainer(tmp_path, total_kimg=0.048, progress=True).run()
    assert ("100%|" in stderr.getvalue()) == terminal


def test_the_schedule_grows_the_networks_through_every_stage(tmp_path: Path) -> None:
    trainer = _trainer(tmp_path, total_kimg=0.16)
    trainer.run()
    stages = [
        json.loads(line)["stage"] for line in (tmp_path / "stats.jsonl").read_text().splitlines()
    ]
    assert list(dict.fromkeys(stages)) == [
        "4x4-stable",
        "8x8-fade",
        "8x8-stable",
        "16x16-fade",
        "16x16-stable",
    ]
    samples = tmp_path / "samples"
    assert {p.name for p in samples.glob("stage-*.png")} == {
        f"stage-{s}.png" for s in dict.fromkeys(stages)
    }
    assert (samples / "progress.gif").is_file() and (samples / "final.png").is_file()
    assert (tmp_path / "plots" / "losses.png").is_file()


class _CountingRecipe(Recipe):
    """Two phases with intervals 1 and 3, counting calls; the loop must fire them accordingly."""

    def __init__(self, nets: nn.ModuleDict, every: int, clip: float | None = None) -> None:
        super().__init__(nets, batch_size=4)
        self.calls = {"D_main": 0, "G_main": 0}
        self.every, self.clip = every, clip
        self._optimizers = {
            "G": torch.optim.SGD(nets["G"].parameters(), lr=0.1),
            "D": torch.optim.SGD(nets["D"].parameters(), lr=0.1),
        }

    def phases(self) -> list[Phase]:
        return [
            Phase("D_main", "D", self._d, after_step=self._after_d),
            Phase("G_main", "G", self._g, every=self.every),
        ]

    def generator_kwargs(self, stage: Stage) -> dict:
        return {"resolution": stage.resolution}

    def _d(self, batch: dict, ctx: StepContext) -> dict:
        self.calls["D_main"] += 1
        fake = ctx.G(ctx.latents(), resolution=16).detach()
        return {"loss": ctx.D(fake).mean() - ctx.D(batch["img"]).mean()}

    def _after_d(self) -> None:
        if self.clip is not None:
            for p in self.nets["D"].parameters():
                p.data.clamp_(-self.clip, self.clip)

    def _g(self, batch: dict, ctx: StepContext) -> dict:
        self.calls["G_main"] += 1
        # G's phase must not compute weight gradients for D.
        assert all(not p.requires_grad for p in ctx.D.parameters())
        return {"loss": -ctx.D(ctx.G(ctx.latents(), resolution=16)).mean()}


def test_phases_fire_at_their_intervals_and_after_step_runs(tmp_path: Path) -> None:
    torch.manual_seed(0)
    nets = progan.build(16, 1, channel_base=64, channel_max=16, z_dim=16)
    recipe = _CountingRecipe(nets, every=3, clip=0.01)
    options = LoopOptions(
        total_kimg=0.04,
        ema_kimg=0.0,
        tick_kimg=0.02,
        snapshot_kimg=1.0,
        sample_kimg=1.0,
        device=torch.device("cpu"),
        grid_size=4,
        progress=False,
    )
    Trainer(
        nets,
        recipe,
        _dataset(),
        tmp_path,
        options,
        DistInfo(),
        RunLogger(tmp_path, tensorboard=False),
    ).run()
    assert recipe.calls == {"D_main": 10, "G_main": 4}  # iterations 0..9; G at 0, 3, 6, 9
    assert max(p.abs().max().item() for p in nets["D"].parameters()) <= 0.01


class _CriticOnlyRecipe(Recipe):
    """One deterministic phase on the reals (no random draws), recording the rounds it sees."""

    def __init__(self, nets: nn.ModuleDict, loss: Callable[[torch.Tensor], torch.Tensor]) -> None:
        super().__init__(nets, batch_size=8)
        self.loss, self.rounds = loss, []
        self._optimizers = {"D": torch.optim.SGD(nets["D"].parameters(), lr=0.5)}

    def phases(self) -> list[Phase]:
        return [Phase("D_main", "D", self._d, clean_grads=True)]

    def _d(self, batch: dict, ctx: StepContext) -> dict:
        self.rounds.append((len(batch["img"]), ctx.batch_size))
        return {"loss": self.loss(ctx.D(batch["img"].flatten(1)))}


def _critic_trainer(
    run_dir: Path, loss: Callable[[torch.Tensor], torch.Tensor], batch_gpu: int = 0
) -> tuple[Trainer, _CriticOnlyRecipe]:
    torch.manual_seed(0)
    nets = nn.ModuleDict({"D": nn.Sequential(nn.Linear(256, 4), nn.Tanh(), nn.Linear(4, 1))})
    recipe = _CriticOnlyRecipe(nets, loss)
    options = LoopOptions(
        total_kimg=1.0, ema_kimg=0.0, tick_kimg=1.0, snapshot_kimg=1.0, sample_kimg=1.0,
        device=torch.device("cpu"), grid_size=4, progress=False, batch_gpu=batch_gpu,
    )  # fmt: skip
    logger = RunLogger(run_dir, tensorboard=False)
    return Trainer(nets, recipe, _dataset(), run_dir, options, DistInfo(), logger), recipe


def test_rounds_of_batch_gpu_images_step_as_the_whole_batch_does(tmp_path: Path) -> None:
    def loss(logits: torch.Tensor) -> torch.Tensor:
        return logits.square().mean()  # a mean over the batch, nonlinear in the weights

    whole, _ = _critic_trainer(tmp_path / "whole", loss)
    rounds, recipe = _critic_trainer(tmp_path / "rounds", loss, batch_gpu=3)
    for trainer in (whole, rounds):
        trainer.step()
        trainer.step()
    assert recipe.rounds == [(3, 3), (3, 3), (2, 2)] * 2  # 8 images as evenly as they split
    for (name, got), want in zip(rounds.nets["D"].state_dict().items(), whole.nets["D"].state_dict().values(), strict=True):  # fmt: skip
        torch.testing.assert_close(got, want, msg=name)
    assert rounds.cur_nimg == whole.cur_nimg == 16


def test_clean_grads_turns_nan_into_no_step_and_inf_into_a_bounded_one(tmp_path: Path) -> None:
    trainer, _ = _critic_trainer(tmp_path, lambda logits: logits.mean())
    D = trainer.nets["D"]
    weight = D[2].weight
    before = weight.detach().clone()

    def poisoned(logits: torch.Tensor) -> torch.Tensor:
        # d/dw of (w * s).sum() is s: NaN in column 0, +inf in column 1, finite elsewhere.
        s = torch.tensor([[float("nan"), float("inf"), 1.0, 1.0]])
        return logits.mean() + (weight * s).sum()

    trainer.recipe.loss = poisoned
    trainer.step()
    after = weight.detach()
    assert after[0, 0] == before[0, 0]  # NaN became 0: no step for that weight
    assert after[0, 1] == pytest.approx(before[0, 1].item() - 0.5 * 1e5)  # +inf became 1e5
    assert torch.isfinite(after).all() and not torch.equal(after[0, 2:], before[0, 2:])


def test_phases_marked_not_compiled_get_the_uncompiled_nets(tmp_path: Path) -> None:
    trainer, _ = _critic_trainer(tmp_path, lambda logits: logits.mean())
    trainer.step_nets = nn.ModuleDict({"D": nn.Identity()})  # stands for the compiled nets
    seen = {}

    def record(name: str) -> Callable:
        def compute(batch: dict, ctx: StepContext) -> dict:
            seen[name] = ctx.nets
            return {"loss": sum(p.sum() for p in trainer.nets["D"].parameters())}

        return compute

    trainer.phases = [
        Phase("D_main", "D", record("D_main")),
        Phase("D_reg", "D", record("D_reg"), compiled=False),  # a double backward: eager
    ]
    trainer.step()
    assert seen["D_main"] is trainer.step_nets and seen["D_reg"] is trainer.nets


def test_nan_loss_stops_with_a_clear_error_and_keeps_the_last_checkpoint(tmp_path: Path) -> None:
    trainer = _trainer(tmp_path, total_kimg=0.16)
    original = trainer.phases[1].compute

    def poisoned(batch, ctx):
        logs = original(batch, ctx)
        if ctx.cur_nimg >= 64:
            logs["loss"] = logs["loss"] * float("nan")
        return logs

    trainer.phases[1].compute = poisoned
    with pytest.raises(
        TrainingDivergedError,
        match=r"diverged at 0\.08 kimg.*G_main/loss = nan.*ckpt-000000000040\.pt.*--resume",
    ):
        trainer.run()
    assert [p.name for p in (tmp_path / "checkpoints").iterdir()] == ["ckpt-000000000040.pt"]


@pytest.mark.skipif(SOFT_STOP_SIGNAL is None, reason="this platform has no SIGUSR1")
def test_sigusr1_stops_after_the_iteration_with_a_snapshot_and_a_ctrl_c_then_does_not_abort(
    tmp_path: Path,
) -> None:
    trainer = _trainer(tmp_path, total_kimg=0.16)  # 20 iterations of 8 images
    step = trainer.step

    def step_then_signal() -> None:
        step()
        if trainer.cur_iter == 3:  # each handler runs as soon as its os.kill returns
            os.kill(os.getpid(), SOFT_STOP_SIGNAL)
            os.kill(os.getpid(), signal.SIGINT)  # the first Ctrl-C: not the second, no abort

    trainer.step = step_then_signal
    trainer.run()
    assert trainer.cur_iter == 3
    assert [p.name for p in (tmp_path / "checkpoints").iterdir()] == ["ckpt-000000000024.pt"]
    assert "asked to stop (SIGUSR1): finishing this iteration" in (tmp_path / "log.txt").read_text()
    assert signal.getsignal(SOFT_STOP_SIGNAL) == signal.SIG_DFL  # restored after the loop


@pytest.mark.skipif(SOFT_STOP_SIGNAL is None, reason="this platform has no SIGUSR1")
def test_a_sigusr1_kept_from_before_the_loop_stops_it_at_its_start(
    tmp_path: Path,
) -> None:
    """What an experiment's worker does: keep a stop sent while it loads data for the run."""
    trainer = _trainer(tmp_path, total_kimg=0.16)
    previous = signal.getsignal(SOFT_STOP_SIGNAL)
    try:
        keep_stop_requests()
        os.kill(os.getpid(), SOFT_STOP_SIGNAL)  # no loop runs: kept, not lost
        trainer.step()  # as if the run had been resumed at 8 images
        trainer.run()
        assert signal.getsignal(SOFT_STOP_SIGNAL) is not previous  # the keeper, back in place
    finally:
        signal.signal(SOFT_STOP_SIGNAL, previous)
    assert trainer.cur_iter == 1
    assert [p.name for p in (tmp_path / "checkpoints").iterdir()] == ["ckpt-000000000008.pt"]


def test_resume_in_process_equals_uninterrupted_run(tmp_path: Path) -> None:
    full = _trainer(tmp_path / "full", total_kimg=0.12)
    full.run()
    first = _trainer(tmp_path / "split", total_kimg=0.056)  # stops mid fade-in at 8x8
    first.run()
    second = _trainer(tmp_path / "split", total_kimg=0.12)
    from gankit.train.checkpoint import load_latest

    second.load_state_dict(load_latest(tmp_path / "split")[1])
    assert second.cur_nimg == 56 and second.stage.key == "8x8-fade"
    second.run()
    for name in ("G", "D"):
        for key, value in full.nets[name].state_dict().items():
            torch.testing.assert_close(second.nets[name].state_dict()[key], value, rtol=0, atol=0)
    for key, value in full.all_nets["G_ema"].state_dict().items():
        torch.testing.assert_close(
            second.all_nets["G_ema"].state_dict()[key], value, rtol=0, atol=0
        )
    assert (
        copy.deepcopy(second.optimizers["D"].state_dict())["state"].keys()
        == full.optimizers["D"].state_dict()["state"].keys()
    )


def test_build_trainer_steps_exactly_as_gankit_train_runs(tmp_path: Path) -> None:
    """`build_trainer` (the benchmarks' entry) builds what `train` runs: three steps of its
    Trainer land on the weights of a three-iteration `gankit train` run, bit for bit."""
    from gankit.config import config_from_dict
    from gankit.train import checkpoint as ckpt
    from gankit.train.run import build_trainer, train

    def config(out: Path) -> dict:
        train_cfg = {"out": str(out), "kimg": 0.3, "seed": 3, "progress": False, "device": "cpu"}
        return {"recipe": {"name": "lsgan"}, "data": {"name": "ring8"}, "train": train_cfg}

    run_dir = train(config_from_dict(config(tmp_path / "run")))
    trainer = build_trainer(config_from_dict(config(tmp_path / "built")))
    assert trainer.dataset.name == "ring8" and trainer.opt.total_kimg == 0.3
    for _ in range(3):  # batch 100, the 2-D default: 0.3 kimg is three iterations
        trainer.step()
    _, state = ckpt.load_latest(run_dir)
    assert state["cur_nimg"] == trainer.cur_nimg == 300
    for name in ("G", "D"):
        expected = state["nets"][name]
        for key, value in trainer.nets[name].state_dict().items():
            assert torch.equal(value, expected[key]), f"{name}.{key}"
    assert not (tmp_path / "built").exists()  # building writes nothing


@pytest.mark.parametrize(
    ("kimg", "batch", "tick", "sample", "snapshot"),
    [
        (3000.0, 16, 20.0, 200.0, 500.0),  # 30 -> 20, 300 -> 200, 750 -> 500 (1-2-5, down)
        (0.16, 0, 0.001, 0.01, 0.02),  # 0.0016 -> 0.001, 0.016 -> 0.01, 0.04 -> 0.02
        (1e9, 64, 100.0, 500.0, 1000.0),  # a huge --kimg for a --max-minutes run: the caps
        # A short run at a large batch: never more than one tick, grid or snapshot per
        # iteration (0.03 -> 0.128 kimg, one batch), so 3 kimg gives 15 grids, not 25-60.
        (3.0, 128, 0.128, 0.2, 0.5),
    ],
)
def test_default_intervals_are_round_fractions_of_the_run_at_least_a_batch_up_to_a_cap(
    kimg: float, batch: int, tick: float, sample: float, snapshot: float
) -> None:
    from gankit.train.resolve import default_interval

    assert default_interval(kimg, "tick", batch) == tick
    assert default_interval(kimg, "sample", batch) == sample
    assert default_interval(kimg, "snapshot", batch) == snapshot
    grids = kimg / default_interval(kimg, "sample", batch)
    assert 10 <= grids <= 25 or default_interval(kimg, "sample", batch) == 500.0


def test_build_without_placing_leaves_the_nets_in_their_default_format(tmp_path: Path) -> None:
    """`--dry-run` builds with place_nets=False: the config is resolved the same way, but no
    memory format (or device) change touches the nets."""
    from gankit.config import config_from_dict
    from gankit.train.run import build

    train_cfg = {"out": str(tmp_path), "seed": 0, "device": "cpu", "channels_last": True}
    config = {"recipe": {"name": "dcgan"}, "data": {"name": "digits"}, "train": train_cfg}
    placed = build(config_from_dict(config))
    unplaced = build(config_from_dict(config), place_nets=False)
    assert placed.config == unplaced.config
    # a conv weight with several input channels (the first layer's one channel has one layout)
    conv, conv_unplaced = (
        next(p for p in built.nets["D"].parameters() if p.ndim == 4 and p.shape[1] > 1)
        for built in (placed, unplaced)
    )
    assert conv.is_contiguous(memory_format=torch.channels_last) and not conv.is_contiguous()
    assert conv_unplaced.is_contiguous() and torch.equal(conv, conv_unplaced)


def test_g_ema_samples_and_is_saved_with_precise_batchnorm_statistics(tmp_path: Path) -> None:
    """2-D lsgan (G with batch norm): before G_ema samples or is saved, its statistics become
    those of the loop's seeded 16k latents (eval mode then gives train mode's outputs on them),
    not G's running average; training goes on bit for bit as in a run that never sampled."""
    from gankit.config import config_from_dict
    from gankit.train.checkpoint import load_latest
    from gankit.train.ema import BN_STATS_SAMPLES
    from gankit.train.run import build_trainer

    def trainer(out: Path) -> Trainer:
        train_cfg = {"out": str(out), "kimg": 1.0, "seed": 3, "progress": False,
                     "device": "cpu", "ema_kimg": 0.2}  # fmt: skip
        config = {"recipe": {"name": "lsgan"}, "data": {"name": "ring8"}, "train": train_cfg}
        return build_trainer(config_from_dict(config))

    plain, sampled = trainer(tmp_path / "plain"), trainer(tmp_path / "sampled")
    for _ in range(3):
        plain.step()
        sampled.step()
    sampled.sample_grid(sampled.stage)
    sampled._snapshot()

    count, chunk = BN_STATS_SAMPLES["points"]
    assert count == chunk  # one chunk: eval mode reproduces train mode on it
    z = torch.randn(count, 2, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        expected = copy.deepcopy(sampled.all_nets["G_ema"]).train()(z)
        torch.testing.assert_close(sampled.all_nets["G_ema"](z), expected, rtol=1e-3, atol=1e-3)
    saved = load_latest(tmp_path / "sampled")[1]["nets"]
    stats = "net.1.running_mean"
    assert torch.equal(saved["G_ema"][stats], sampled.all_nets["G_ema"].state_dict()[stats])
    assert not torch.allclose(saved["G_ema"][stats], saved["G"][stats], atol=1e-4)

    for _ in range(3):
        plain.step()
        sampled.step()
    for name, net in [*plain.nets.items(), ("G_ema", plain.all_nets["G_ema"])]:
        other = sampled.all_nets["G_ema"] if name == "G_ema" else sampled.nets[name]
        for key, value in net.state_dict().items():
            assert torch.equal(other.state_dict()[key], value), f"{name}.{key}"


def test_the_reals_grid_is_drawn_across_a_sorted_dataset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A class-sorted dataset (image i is all i): reals.png is not its first items."""
    import gankit.train.pictures as pictures

    trainer = _trainer(tmp_path, total_kimg=0.008)
    values = np.repeat(np.arange(40, dtype=np.uint8), 16 * 16).reshape(40, 1, 16, 16)
    trainer.dataset = ArrayDataset(values, name="sorted")
    saved = {}
    monkeypatch.setattr(
        pictures, "save_grid", lambda images, path, **kw: saved.setdefault(path.name, images)
    )
    trainer.pictures.save_reals(trainer.dataset, trainer.opt.grid_size, trainer.opt.seed)
    shown = sorted(int(img.flatten()[0]) for img in saved["reals.png"])
    assert len(shown) == 4 and shown != [0, 1, 2, 3] and len(set(shown)) == 4
