"""The training loop: the only place that calls backward() and optimizer.step().

Mechanics only. Per iteration it asks the recipe for the stage and its optimizer settings, draws
one minibatch (gankit.train.batches), runs every phase whose interval has come, updates the moving
averages the recipe declares, and advances `cur_nimg` by the global batch. Ticks (logs), previews,
snapshots and metric evaluations fall on multiples of their kimg intervals. What the networks are,
what the data holds and what the pictures show belong to the recipe, the dataset and the preview.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm import tqdm

from gankit.nets import sampling_net
from gankit.recipes.base import Phase, Recipe, Stage, StepContext, apply_settings, check_phases
from gankit.train import checkpoint as ckpt
from gankit.train import health
from gankit.train.batches import RealsOnDevice, accumulation_rounds, make_loader
from gankit.train.distributed import DistInfo, all_reduce_gradients, barrier, broadcast_module
from gankit.train.ema import Averages, ema_beta
from gankit.train.logging import RunLogger
from gankit.train.options import LoopOptions
from gankit.train.pictures import RunPictures, own_rng
from gankit.train.signals import graceful_interrupt
from gankit.train.ticks import TickStats, crossed, progress_bar, status_line
from gankit.viz.previews import preview_for

Evaluator = Callable[[nn.Module, dict[str, Any]], dict[str, float]]
__all__ = ["LoopOptions", "Trainer"]


class Trainer:
    """Runs a recipe on networks and data until `total_kimg`, resumable from any snapshot."""

    def __init__(
        self, nets: nn.ModuleDict, recipe: Recipe, dataset: Any, run_dir: Path,
        options: LoopOptions, dist: DistInfo, logger: RunLogger, evaluate: Evaluator | None = None,
    ) -> None:  # fmt: skip
        self.nets, self.recipe, self.dataset = nets, recipe, dataset
        self.run_dir, self.opt, self.dist, self.log = run_dir, options, dist, logger
        self.evaluate, self.device = evaluate, options.device
        self.optimizers = recipe.optimizers()
        self.phases = recipe.phases()
        self.phase_params = check_phases(self.phases, self.optimizers)
        self.amp_dtype = {"none": None, "bf16": torch.bfloat16, "fp16": torch.float16}[options.amp]
        self.scalers = {}
        if options.amp == "fp16":
            self.scalers = {k: torch.amp.GradScaler(self.device.type) for k in self.optimizers}
        broadcast_module(nets, dist)  # every net, averaged or not: replicas start equal
        self.averages = Averages(nets, recipe.averaged(), seed=options.seed)
        self.step_nets = nets
        if options.compile:
            self.step_nets = nn.ModuleDict({k: torch.compile(n) for k, n in nets.items()})
        self.generator = torch.Generator(self.device).manual_seed(options.seed * 7919 + dist.rank)
        self.cur_nimg, self.cur_iter = 0, 0
        self.stage: Stage | None = None
        self.loader_iter: Any = None
        preview = recipe.preview(dataset, self.all_nets, options.seed, options.grid_size)
        self.preview = preview or preview_for(
            dataset, self.all_nets, options.seed, options.grid_size
        )
        self.pictures = RunPictures(self.preview, run_dir, logger, dist.is_main)
        self.stop_requested = False
        self.stop_signal: int | None = None  # SIGINT or SIGTERM when one stopped `run()` early
        self.ticks = TickStats()
        self.tick_logs = self.ticks.losses  # since the last tick: "D_main/loss" -> per step

    @property
    def all_nets(self) -> dict[str, nn.Module]:
        """The trained nets and their averages, by name (what previews and snapshots see)."""
        return {**dict(self.nets.items()), **self.averages.nets}

    # ------------------------------------------------------------------ checkpoint state

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly: nets, averages, optimizers, RNG, progress."""
        return {
            "cur_nimg": self.cur_nimg,
            "cur_iter": self.cur_iter,
            "stage": dataclasses.asdict(self.stage) if self.stage else None,
            "nets": {name: net.state_dict() for name, net in self.all_nets.items()},
            "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
            "scalers": {k: s.state_dict() for k, s in self.scalers.items()},
            "recipe": self.recipe.state_dict(),
            "rng": ckpt.rng_state(self.generator),
            "model": self.opt.model_spec,
            "sampling": self.recipe.generator_kwargs(self.stage) if self.stage else {},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a checkpoint written by `state_dict()`."""
        for name, net in self.all_nets.items():
            net.load_state_dict(state["nets"][name])
        self.averages.loaded()
        for key, opt in self.optimizers.items():
            opt.load_state_dict(state["optimizers"][key])
        for key, scaler in self.scalers.items():
            if key in state["scalers"]:
                scaler.load_state_dict(state["scalers"][key])
        self.recipe.load_state_dict(state["recipe"])
        ckpt.restore_rng(self.generator, state["rng"])
        self.cur_nimg, self.cur_iter = int(state["cur_nimg"]), int(state["cur_iter"])
        self.stage = Stage(**state["stage"]) if state["stage"] else None

    # ------------------------------------------------------------------ the loop

    def run(self) -> None:
        """Train until `total_kimg`, then write the final snapshot and pictures.

        Ctrl-C, SIGTERM or SIGUSR1 stop it after the current iteration, with a snapshot
        (`stop_signal` then says which); a second Ctrl-C or SIGTERM aborts at once with a
        KeyboardInterrupt, leaving the last complete checkpoint as it was.
        """
        total_nimg = round(self.opt.total_kimg * 1000)
        self.pictures.save_reals(self.dataset, self.opt.grid_size, self.opt.seed)
        bar = progress_bar(
            self.opt.total_kimg, self.cur_nimg, self.opt.progress and self.dist.is_main
        )
        self.ticks.restart(self.cur_nimg)
        deadline = time.perf_counter() + self.opt.max_seconds if self.opt.max_seconds else None
        with graceful_interrupt(self):
            while self.cur_nimg < total_nimg and not self.stop_requested:
                prev_nimg = self.cur_nimg
                self.step()
                if deadline is not None and time.perf_counter() >= deadline:
                    self.stop_requested = True
                    self.log.info(
                        f"time limit of {self.opt.max_seconds / 60:g} minutes reached at "
                        f"{self.cur_nimg / 1000:g} kimg; stopping (resume with --resume)"
                    )
                bar.update((self.cur_nimg - prev_nimg) / 1000)
                tick_due = crossed(prev_nimg, self.cur_nimg, self.opt.tick_kimg)
                if tick_due or self.cur_nimg >= total_nimg:
                    self._tick(bar)
                self._periodic(prev_nimg, total_nimg)
            if self.tick_logs:  # stopped early (time limit, Ctrl-C): log the partial tick too
                self._tick(bar)
            bar.close()
            self._finish()

    def step(self) -> None:
        """One training iteration: the optimizer settings, every phase due at this iteration
        (in the recipe's order), then the moving averages.

        What `run()` repeats between its ticks, grids and snapshots; benchmarks and tests call it
        alone. Each phase appends its losses to `tick_logs`, which the next tick reads and clears.
        """
        stage = self.recipe.schedule(self.cur_nimg)
        if self.stage is None or stage.key != self.stage.key or self.loader_iter is None:
            self._enter_stage(stage)
        self.stage = stage  # alpha moves within a stage: logs, grids and snapshots use the latest
        batch = self.to_device(next(self.loader_iter))
        total_nimg = round(self.opt.total_kimg * 1000)
        apply_settings(self.optimizers, self.recipe.optimizer_settings(self.cur_nimg, total_nimg))
        ctx = StepContext(
            nets=self.step_nets, stage=stage, batch_size=stage.batch_size // self.dist.world_size,
            device=self.device, generator=self.generator, cur_nimg=self.cur_nimg,
            autocast_dtype=self.amp_dtype, total_nimg=total_nimg,
        )  # fmt: skip
        for phase in self.phases:
            if self.cur_iter % phase.every == 0:
                self._run_phase(phase, batch, ctx)
        ema_kimg, rampup = self.opt.ema_kimg, self.opt.ema_rampup
        self.averages.update(ema_beta(stage.batch_size, ema_kimg, self.cur_nimg, rampup))
        self.cur_nimg += stage.batch_size
        self.cur_iter += 1

    def _run_phase(self, phase: Phase, batch: dict[str, torch.Tensor], ctx: StepContext) -> None:
        for key, params in self.phase_params.items():
            # Only the stepped networks need weight gradients; the others pass input gradients.
            for p in params:
                p.requires_grad_(key == phase.optimizer)
        optimizer = self.optimizers[phase.optimizer]
        optimizer.zero_grad(set_to_none=True)
        scaler = self.scalers.get(phase.optimizer)
        use_amp = self.amp_dtype is not None and phase.autocast
        nets = ctx.nets if phase.compiled else self.nets
        for part, size in accumulation_rounds(batch, ctx.batch_size, self.opt.batch_gpu):
            with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=use_amp):
                logs = phase.compute(part, dataclasses.replace(ctx, batch_size=size, nets=nets))
            # Each round's mean loss weighted by its share: the gradients add up to the batch's.
            loss = logs["loss"] * (size / ctx.batch_size)
            (scaler.scale(loss) if scaler else loss).backward()
            self.ticks.add(phase.name, logs)
        params = self.phase_params[phase.optimizer]
        all_reduce_gradients(params, self.dist)
        if phase.clean_grads:
            health.clean_gradients(params)
        if scaler:
            scaler.step(optimizer)
            scaler.update()
        else:
            optimizer.step()
        if phase.after_step is not None:
            phase.after_step()

    def _enter_stage(self, stage: Stage) -> None:
        if self.stage is not None and stage.key != self.stage.key:
            self._save_preview(f"stage-{self.stage.key}.png", upscale=False, per_stage=True)
            self.log.info(f"stage {self.stage.key} -> {stage.key} at {self.cur_nimg / 1000:g} kimg")
            self.recipe.on_stage_change(self.stage, stage)
        self.stage = stage
        self.loader_iter = None  # shuts down the previous loader's workers
        loader = make_loader(
            self.dataset, stage.batch_size, seed=self.opt.seed, start_nimg=self.cur_nimg,
            dist=self.dist, workers=self.opt.workers, device=self.device,
        )  # fmt: skip
        self.loader_iter = iter(loader)
        self.to_device = RealsOnDevice(
            # self.stage, not `stage`: alpha moves within a stage
            self.device, self.generator, lambda img: self.recipe.prepare_reals(img, self.stage),
            mirror=self.opt.mirror, channels_last=self.opt.channels_last,
        )  # fmt: skip

    # ------------------------------------------------------------------ ticks and outputs

    def _periodic(self, prev_nimg: int, total_nimg: int) -> None:
        if self.cur_nimg >= total_nimg or self.stop_requested:
            return  # `_finish` writes the last ones
        if crossed(prev_nimg, self.cur_nimg, self.opt.sample_kimg):
            self._save_preview(f"{self.preview.prefix}-{self.cur_nimg:012d}.png", upscale=True)
        if self.evaluate and crossed(prev_nimg, self.cur_nimg, self.opt.metrics_kimg):
            self._run_metrics()
        if crossed(prev_nimg, self.cur_nimg, self.opt.snapshot_kimg):
            self._snapshot()

    def _tick(self, bar: tqdm) -> None:
        record = self.ticks.record(self.cur_nimg, self.stage, self.dist, self.device)
        if bad := health.not_finite_values(record):
            self._diverged(bad)
        self.log.stats(record)
        status = status_line(record)
        bar.set_description_str(status, refresh=False)
        # Every tick goes to log.txt; the console shows it on the bar, or as a line without one.
        self.log.info(f"tick {record['kimg']:g} kimg: {status}", echo=bar.disable)
        self.ticks.restart(self.cur_nimg)

    def _diverged(self, bad: list[str]) -> None:
        key = self.stage.key if self.stage else "?"
        health.raise_divergence(self.log, bad, self.run_dir, self.cur_nimg, key, self.opt.amp)

    def _run_metrics(self) -> None:
        # Rank 0 evaluates; the others wait, so every rank resumes training together.
        if self.dist.is_main:
            kwargs = self.refresh_averages()
            with own_rng(self.device):
                results = self.evaluate(sampling_net(self.all_nets), kwargs)
            self.log.stats({"kimg": round(self.cur_nimg / 1000, 3), **results})
            values = ", ".join(f"{k} {v:.4g}" for k, v in results.items())
            self.log.info(f"metrics at {self.cur_nimg / 1000:g} kimg: {values}")
        barrier(self.dist)

    def refresh_averages(self, stage: Stage | None = None) -> dict[str, Any]:
        """Precise batch-norm statistics for the averages (see `Averages.refresh_batchnorm`);
        returns the sampling kwargs of `stage` (default: the current one)."""
        stage = stage or self.stage
        kwargs = self.recipe.generator_kwargs(stage) if stage else {}
        self.averages.refresh_batchnorm(kwargs, (self.cur_nimg, stage.key if stage else ""))
        return kwargs

    def sample_grid(self, stage: Stage | None = None) -> torch.Tensor:
        """What the preview draws now at `stage` (images `[N, C, R, R]` in [-1, 1], 2-D points)."""
        with own_rng(self.device):
            return self.preview.draw(self.all_nets, self.refresh_averages(stage))

    def _save_preview(self, name: str, upscale: bool, per_stage: bool = False) -> None:
        if not self.dist.is_main or (per_stage and not self.preview.per_stage):
            return
        if per_stage and self.stage.key == Stage.key:  # one stage only: final.png shows it
            return
        self.pictures.save(self.sample_grid(), name, self.cur_nimg, upscale)

    def _snapshot(self) -> None:
        if bad := health.not_finite_state(self.all_nets, self.tick_logs):
            self._diverged(bad)
        if self.dist.is_main:
            self.refresh_averages()
            path = ckpt.save_checkpoint(
                self.state_dict(), self.run_dir / "checkpoints", self.cur_nimg,
                self.opt.keep_checkpoints,
            )  # fmt: skip
            self.log.info(f"snapshot {path.name} at {self.cur_nimg / 1000:g} kimg")

    def _finish(self) -> None:
        self._snapshot()
        if not self.dist.is_main:
            return
        self._save_preview(f"{self.preview.prefix}-{self.cur_nimg:012d}.png", upscale=True)
        self._save_preview(f"stage-{self.stage.key}.png", upscale=False, per_stage=True)
        self._save_preview("final.png", upscale=False)
        self.pictures.write_report()
