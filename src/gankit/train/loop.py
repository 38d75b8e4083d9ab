"""The training loop: the only place that calls backward() and optimizer.step().

It knows no paper. Per iteration it asks the recipe for the stage, draws one minibatch of reals
(uint8 -> float [-1, 1] on the device, mirrored if asked, prepared for the stage), runs every phase
whose interval has come, updates G_ema, and advances `cur_nimg` by the global batch. Ticks (logs),
sample grids, snapshots and metric evaluations fall on multiples of their kimg intervals.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from gankit.data.base import BatchView, ImageDataset, collate, preview_reals
from gankit.data.sampler import InfiniteBatchSampler
from gankit.errors import ConfigError, TrainingDivergedError
from gankit.nn.batchnorm import batchnorm_layers, recompute_batchnorm_stats
from gankit.recipes.base import Phase, Recipe, Stage, StepContext
from gankit.train import checkpoint as ckpt
from gankit.train.distributed import (
    DistInfo,
    all_reduce_gradients,
    all_reduce_mean,
    barrier,
    broadcast_module,
)
from gankit.train.ema import MovingAverage, ema_beta
from gankit.train.logging import RunLogger
from gankit.viz import make_grid, save_grid

POINT_SNAPSHOT_SIZE = 2500  # samples per 2-D snapshot, the VEEGAN/PacGAN evaluation count
#: Latents G_ema's batch-norm statistics are recomputed from before it samples or is saved, and
#: how many go through at once (see gankit.nn.batchnorm). Points: one chunk, so eval mode gives
#: what train mode gives on 16k latents. Images: conv statistics also average over pixels.
BN_STATS_SAMPLES = {"points": (16384, 16384), "images": (1024, 256)}

#: The progress bar; the status (resolution, img/s, losses) goes in {desc}, because tqdm puts
#: ", " before a {postfix}.
BAR_FORMAT = "{percentage:3.0f}%|{bar}| {n:.1f}/{total_fmt} kimg [{elapsed}<{remaining}] {desc}"

Evaluator = Callable[[nn.Module, dict[str, Any]], dict[str, float]]


@dataclass
class LoopOptions:
    """Mechanics of one run (all resolved: no `None` defaults left)."""

    total_kimg: float
    ema_kimg: float
    tick_kimg: float
    snapshot_kimg: float
    sample_kimg: float
    device: torch.device
    ema_rampup: float = 0.0  # see gankit.train.ema.ema_beta
    amp: str = "none"
    channels_last: bool = False
    compile: bool = False
    seed: int = 0
    grid_size: int = 64
    keep_checkpoints: int = 3
    progress: bool = True
    workers: int = 0
    mirror: bool = False
    metrics_kimg: float = 0.0
    max_seconds: float = 0.0  # 0: no time limit
    model_spec: dict[str, Any] = field(default_factory=dict)


class Trainer:
    """Runs a recipe on networks and data until `total_kimg`, resumable from any snapshot."""

    def __init__(
        self,
        nets: nn.ModuleDict,
        recipe: Recipe,
        dataset: ImageDataset,
        run_dir: Path,
        options: LoopOptions,
        dist: DistInfo,
        logger: RunLogger,
        evaluate: Evaluator | None = None,
    ) -> None:
        self.nets, self.recipe, self.dataset = nets, recipe, dataset
        self.run_dir, self.opt, self.dist, self.log = run_dir, options, dist, logger
        self.evaluate = evaluate
        self.device = options.device
        self.optimizers = recipe.optimizers()
        self.phases = recipe.phases()
        self._check_phases()
        self.amp_dtype = {"none": None, "bf16": torch.bfloat16, "fp16": torch.float16}[options.amp]
        self.scalers = (
            {key: torch.amp.GradScaler(self.device.type) for key in self.optimizers}
            if options.amp == "fp16"
            else {}
        )
        self.G_ema = self._make_ema()
        self.ema = None if self.G_ema is None else MovingAverage(self.G_ema, nets["G"])
        self._g_ema_batchnorm = self.G_ema is not None and bool(batchnorm_layers(self.G_ema))
        self._g_ema_stats_for: tuple[int, str] | None = None  # (nimg, stage) of the last recompute
        self.step_nets = self._maybe_compile(nets)
        self.generator = torch.Generator(self.device).manual_seed(options.seed * 7919 + dist.rank)
        self.cur_nimg, self.cur_iter = 0, 0
        self.stage: Stage | None = None
        self.loader_iter: Any = None
        self.points = getattr(nets["G"], "output_kind", "images") == "points"
        self.grid_z, self.grid_c, self.grid_cols = self._grid_latents(nets["G"], options)
        self._stop_requested = False
        #: The signal (SIGINT, SIGTERM) that stopped `run()` early, or None.
        self.stop_signal: int | None = None
        # Per-phase losses since the last tick ("D_main/loss" -> one scalar per step); ticks log
        # their means and clear it.
        self.tick_logs: dict[str, list[torch.Tensor]] = {}

    # ------------------------------------------------------------------ setup

    def _grid_latents(
        self, G: nn.Module, options: LoopOptions
    ) -> tuple[torch.Tensor, torch.Tensor | None, int | None]:
        """Fixed latents (and labels, class k on row k) for the sample grids / point snapshots."""
        gen = torch.Generator().manual_seed(options.seed)
        if self.points:  # the 2-D protocol scores 2,500 samples; snapshots show as many
            return torch.randn(POINT_SNAPSHOT_SIZE, G.z_dim, generator=gen), None, None
        c_dim = getattr(G, "c_dim", 0)
        if not c_dim:
            return torch.randn(options.grid_size, G.z_dim, generator=gen), None, None
        per_class = max(1, options.grid_size // c_dim)
        labels = torch.arange(min(c_dim, options.grid_size)).repeat_interleave(per_class)
        z = torch.randn(labels.shape[0], G.z_dim, generator=gen)
        return z, labels, per_class if c_dim <= options.grid_size else None

    def _check_phases(self) -> None:
        for phase in self.phases:
            if phase.optimizer not in self.optimizers:
                raise ConfigError(
                    f"phase {phase.name} uses optimizer {phase.optimizer!r}, but the recipe has "
                    f"{sorted(self.optimizers)}"
                )
        self.phase_params = {
            key: [p for group in opt.param_groups for p in group["params"]]
            for key, opt in self.optimizers.items()
        }

    def _make_ema(self) -> nn.Module | None:
        if "G" not in self.nets:
            return None
        broadcast_module(self.nets, self.dist)
        return copy.deepcopy(self.nets["G"]).eval().requires_grad_(False)

    def _maybe_compile(self, nets: nn.ModuleDict) -> nn.ModuleDict:
        if not self.opt.compile:
            return nets
        return nn.ModuleDict({name: torch.compile(net) for name, net in nets.items()})

    # ------------------------------------------------------------------ checkpoint state

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly: nets, G_ema, optimizers, RNG, progress."""
        nets = {name: net.state_dict() for name, net in self.nets.items()}
        if self.G_ema is not None:
            nets["G_ema"] = self.G_ema.state_dict()
        rng = {"loop": self.generator.get_state(), "torch": torch.get_rng_state()}
        if torch.cuda.is_available():
            rng["cuda"] = torch.cuda.get_rng_state_all()
        return {
            "cur_nimg": self.cur_nimg,
            "cur_iter": self.cur_iter,
            "stage": dataclasses.asdict(self.stage) if self.stage else None,
            "nets": nets,
            "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
            "scalers": {k: s.state_dict() for k, s in self.scalers.items()},
            "recipe": self.recipe.state_dict(),
            "rng": rng,
            "model": self.opt.model_spec,
            "sampling": self.recipe.generator_kwargs(self.stage) if self.stage else {},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a checkpoint written by `state_dict()`."""
        for name, net in self.nets.items():
            net.load_state_dict(state["nets"][name])
        if self.G_ema is not None:
            self.G_ema.load_state_dict(state["nets"]["G_ema"])
            self._g_ema_stats_for = None
        for key, opt in self.optimizers.items():
            opt.load_state_dict(state["optimizers"][key])
        for key, scaler in self.scalers.items():
            if key in state["scalers"]:
                scaler.load_state_dict(state["scalers"][key])
        self.recipe.load_state_dict(state["recipe"])
        self.generator.set_state(state["rng"]["loop"])
        torch.set_rng_state(state["rng"]["torch"])
        if "cuda" in state["rng"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["rng"]["cuda"])
        self.cur_nimg, self.cur_iter = int(state["cur_nimg"]), int(state["cur_iter"])
        self.stage = Stage(**state["stage"]) if state["stage"] else None

    # ------------------------------------------------------------------ the loop

    def run(self) -> None:
        """Train until `total_kimg`, then write the final snapshot, samples and plots.

        Ctrl-C, SIGTERM or SIGUSR1 stop it after the current iteration, with a snapshot
        (`stop_signal` then says which); a second Ctrl-C or SIGTERM aborts at once with a
        KeyboardInterrupt, leaving the last complete checkpoint as it was.
        """
        total_nimg = round(self.opt.total_kimg * 1000)
        self._save_reals()
        bar = self._progress_bar()
        tick_start, tick_nimg = time.perf_counter(), self.cur_nimg
        deadline = time.perf_counter() + self.opt.max_seconds if self.opt.max_seconds else None
        with _graceful_interrupt(self):
            while self.cur_nimg < total_nimg and not self._stop_requested:
                prev_nimg = self.cur_nimg
                self.step()
                if deadline is not None and time.perf_counter() >= deadline:
                    self._stop_requested = True
                    self.log.info(
                        f"time limit of {self.opt.max_seconds / 60:g} minutes reached at "
                        f"{self.cur_nimg / 1000:g} kimg; stopping (resume with --resume)"
                    )
                bar.update((self.cur_nimg - prev_nimg) / 1000)
                if self._crossed(prev_nimg, self.opt.tick_kimg) or self.cur_nimg >= total_nimg:
                    now = time.perf_counter()
                    rate = (self.cur_nimg - tick_nimg) / max(now - tick_start, 1e-9)
                    self._tick(bar, rate)
                    tick_start, tick_nimg = time.perf_counter(), self.cur_nimg
                self._periodic(prev_nimg, total_nimg)
            if self.tick_logs:  # stopped early (time limit, Ctrl-C): log the partial tick too
                now = time.perf_counter()
                self._tick(bar, (self.cur_nimg - tick_nimg) / max(now - tick_start, 1e-9))
            bar.close()
            self._finish()

    def step(self) -> None:
        """One training iteration: every phase due at this iteration (D, then G), then G_ema.

        What `run()` repeats between its ticks, grids and snapshots; benchmarks and tests call it
        alone. Each phase appends its losses to `tick_logs`, which the next tick reads and clears.
        """
        stage = self.recipe.schedule(self.cur_nimg)
        if self.stage is None or stage.key != self.stage.key or self.loader_iter is None:
            self._enter_stage(stage)
        self.stage = stage  # alpha moves within a stage: logs, grids and snapshots use the latest
        batch = self._next_batch(stage)
        ctx = StepContext(
            nets=self.step_nets,
            stage=stage,
            batch_size=stage.batch_size // self.dist.world_size,
            device=self.device,
            generator=self.generator,
            cur_nimg=self.cur_nimg,
            autocast_dtype=self.amp_dtype,
            total_nimg=int(self.opt.total_kimg * 1000),
        )
        for phase in self.phases:
            if self.cur_iter % phase.every == 0:
                self._run_phase(phase, batch, ctx)
        if self.ema is not None:
            beta = ema_beta(stage.batch_size, self.opt.ema_kimg, self.cur_nimg, self.opt.ema_rampup)
            self.ema.update(beta)
        self.cur_nimg += stage.batch_size
        self.cur_iter += 1

    def _run_phase(self, phase: Phase, batch: dict[str, torch.Tensor], ctx: StepContext) -> None:
        for key, params in self.phase_params.items():
            # Only the stepped network needs weight gradients; the other one passes input gradients.
            for p in params:
                p.requires_grad_(key == phase.optimizer)
        optimizer = self.optimizers[phase.optimizer]
        use_amp = self.amp_dtype is not None and phase.autocast
        with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=use_amp):
            logs = phase.compute(batch, ctx)
        loss = logs["loss"]
        optimizer.zero_grad(set_to_none=True)
        scaler = self.scalers.get(phase.optimizer)
        (scaler.scale(loss) if scaler else loss).backward()
        all_reduce_gradients(self.phase_params[phase.optimizer], self.dist)
        if scaler:
            scaler.step(optimizer)
            scaler.update()
        else:
            optimizer.step()
        if phase.after_step is not None:
            phase.after_step()
        for key, value in logs.items():
            self.tick_logs.setdefault(f"{phase.name}/{key}", []).append(value.detach().float())

    def _enter_stage(self, stage: Stage) -> None:
        if self.stage is not None and stage.key != self.stage.key:
            self._save_stage_grid(self.stage)
            self.log.info(f"stage {self.stage.key} -> {stage.key} at {self.cur_nimg / 1000:g} kimg")
            self.recipe.on_stage_change(self.stage, stage)
        self.stage = stage
        if stage.batch_size % self.dist.world_size:
            raise ConfigError(
                f"the batch size {stage.batch_size} does not divide over {self.dist.world_size} "
                "processes; choose a multiple of the process count"
            )
        self.loader_iter = None  # shuts down the previous loader's workers
        self.loader_iter = iter(self._loader(stage.batch_size))

    def _loader(self, global_batch: int) -> DataLoader:
        sampler = InfiniteBatchSampler(
            len(self.dataset),
            global_batch,
            seed=self.opt.seed,
            start_nimg=self.cur_nimg,
            rank=self.dist.rank,
            world_size=self.dist.world_size,
        )
        workers = self.opt.workers
        return DataLoader(
            BatchView(self.dataset),
            batch_sampler=sampler,
            num_workers=workers,
            pin_memory=self.device.type == "cuda",
            prefetch_factor=4 if workers else None,
            collate_fn=collate,
            # The loader's own generator keeps worker seeding off the global RNG (exact resume).
            generator=torch.Generator().manual_seed(self.opt.seed),
        )

    def _next_batch(self, stage: Stage) -> dict[str, torch.Tensor]:
        raw = next(self.loader_iter)
        batch = {}
        for key, value in raw.items():
            value = value.to(self.device, non_blocking=True)
            if value.dtype == torch.uint8:
                value = value.float() / 127.5 - 1.0
                if self.opt.mirror:
                    flip = (
                        torch.rand(value.shape[0], device=self.device, generator=self.generator)
                        < 0.5
                    )
                    value = torch.where(flip[:, None, None, None], value.flip(3), value)
                value = self.recipe.prepare_reals(value, stage)
                if self.opt.channels_last:
                    value = value.contiguous(memory_format=torch.channels_last)
            batch[key] = value
        return batch

    # ------------------------------------------------------------------ ticks and outputs

    @staticmethod
    def _crossed_at(prev_nimg: int, cur_nimg: int, kimg: float) -> bool:
        step = round(kimg * 1000)
        return step > 0 and cur_nimg // step > prev_nimg // step

    def _crossed(self, prev_nimg: int, kimg: float) -> bool:
        return self._crossed_at(prev_nimg, self.cur_nimg, kimg)

    def _periodic(self, prev_nimg: int, total_nimg: int) -> None:
        done = self.cur_nimg >= total_nimg or self._stop_requested
        if self._crossed(prev_nimg, self.opt.sample_kimg) and not done:
            self._save_samples()
        if self.evaluate and self._crossed(prev_nimg, self.opt.metrics_kimg) and not done:
            self._run_metrics()
        if self._crossed(prev_nimg, self.opt.snapshot_kimg) and not done:
            self._snapshot()

    def _tick(self, bar: tqdm, rate: float) -> None:
        record: dict[str, Any] = {"kimg": round(self.cur_nimg / 1000, 3)}
        for key, values in self.tick_logs.items():
            record[key] = all_reduce_mean(torch.stack(values).mean(), self.dist).item()
        self.tick_logs.clear()
        bad = [f"{k} = {v}" for k, v in record.items() if not math.isfinite(v)]
        if bad:
            self._diverged(bad)
        stage = self.stage
        record.update(
            stage=stage.key,
            resolution=stage.resolution,
            alpha=round(stage.alpha, 4),
            batch=stage.batch_size,
            img_per_s=round(rate * 1.0, 2),
            mem_gb=_peak_memory_gb(self.device),
        )
        self.log.stats(record)
        losses = " ".join(
            f"{k.split('/')[0]} {v:.3g}" for k, v in record.items() if k.endswith("/loss")
        )
        where = f"{stage.resolution}px " if stage.resolution else ""  # 0: 2-D points
        fading = f"a={stage.alpha:.2f} " if stage.alpha < 1 else ""
        status = f"{where}{fading}{rate:.1f} img/s {losses}"
        bar.set_description_str(status, refresh=False)
        # Every tick goes to log.txt; the console shows it on the bar, or as a line without one.
        self.log.info(f"tick {record['kimg']:g} kimg: {status}", echo=bar.disable)

    def _check_finite_nets(self) -> None:
        """Refuse to snapshot weights that are NaN or infinite (a snapshot can come before the
        tick that would see a NaN loss), so no such checkpoint is written or kept."""
        nets = dict(self.nets.items())
        if self.G_ema is not None:
            nets["G_ema"] = self.G_ema
        bad = [f"{name} weights not finite" for name, net in nets.items() if not _finite(net)]
        for key, values in self.tick_logs.items():  # losses since the last tick
            losses = torch.stack(values)
            if not bool(torch.isfinite(losses).all()):
                bad.append(f"{key} = {losses[~torch.isfinite(losses)][0].item()}")
        if bad:
            self._diverged(bad)

    def _diverged(self, bad: list[str]) -> None:
        """Log and raise the divergence: what is not finite, and what to do next."""
        last = ckpt.list_checkpoints(self.run_dir / "checkpoints")
        advice = ["lowering the learning rate (--set recipe.args.lr=...)"]
        if self.opt.amp != "none":
            advice.append("--amp none")
        if last:
            then = (
                f"the last good checkpoint is {last[-1]}; resume from it with `gankit train "
                f"--resume {self.run_dir}` after {' or '.join(advice)}"
            )
        else:
            then = f"no checkpoint was written yet; start the run again after {' or '.join(advice)}"
        message = (
            f"training diverged at {self.cur_nimg / 1000:g} kimg (stage {self.stage.key}): "
            f"{', '.join(bad)}; {then}"
        )
        self.log.info(f"error: {message}", echo=False)
        raise TrainingDivergedError(message)

    def _run_metrics(self) -> None:
        # Rank 0 evaluates; the others wait, so every rank resumes training together.
        if self.dist.is_main:
            self.recompute_g_ema_stats(self.stage)
            results = self.evaluate(self.G_ema, self.recipe.generator_kwargs(self.stage))
            self.log.stats({"kimg": round(self.cur_nimg / 1000, 3), **results})
            values = ", ".join(f"{k} {v:.4g}" for k, v in results.items())
            self.log.info(f"metrics at {self.cur_nimg / 1000:g} kimg: {values}")
        barrier(self.dist)

    def recompute_g_ema_stats(self, stage: Stage | None) -> None:
        """Give G_ema's batch-norm layers precise statistics for its current weights.

        Their running statistics are G's (the moving average copies buffers), an average of the
        last few dozen minibatches, noisy enough to move 2-D samples by several sigma between
        snapshots (gankit.nn.batchnorm). Done before G_ema samples, is scored or is saved, from
        the same seeded latents every time, so it depends on the weights only; the next step's
        average overwrites the buffers again, so training and exact resume are untouched.
        """
        key = (self.cur_nimg, stage.key if stage else "")
        if not self._g_ema_batchnorm or self._g_ema_stats_for == key:
            return
        G = self.G_ema
        kwargs = self.recipe.generator_kwargs(stage) if stage else {}
        c_dim = getattr(G, "c_dim", 0)
        total, chunk = BN_STATS_SAMPLES["points" if self.points else "images"]
        gen = torch.Generator().manual_seed(self.opt.seed)

        def latents() -> Iterator[tuple[torch.Tensor, torch.Tensor | None]]:
            for start in range(0, total, chunk):
                n = min(chunk, total - start)
                z = torch.randn(n, G.z_dim, generator=gen).to(self.device)
                c = torch.randint(c_dim, (n,), generator=gen).to(self.device) if c_dim else None
                yield z, c

        def forward(net: nn.Module, zc: tuple[torch.Tensor, torch.Tensor | None]) -> None:
            z, c = zc
            net(z, **kwargs) if c is None else net(z, c, **kwargs)

        recompute_batchnorm_stats(G, latents(), forward)
        self._g_ema_stats_for = key

    @torch.no_grad()
    def sample_grid(self, stage: Stage) -> torch.Tensor:
        """G_ema's outputs for the fixed grid latents at `stage`: float images `[N, C, R, R]`
        in [-1, 1] (labels: class k on row k), or points `[N, 2]` for 2-D data."""
        self.recompute_g_ema_stats(stage)
        kwargs = self.recipe.generator_kwargs(stage)
        out = []
        for start in range(0, self.grid_z.shape[0], 256):
            z = self.grid_z[start : start + 256].to(self.device)
            if self.grid_c is None:
                out.append(self.G_ema(z, **kwargs).float().cpu())
            else:
                c = self.grid_c[start : start + 256].to(self.device)
                out.append(self.G_ema(z, c, **kwargs).float().cpu())
        return torch.cat(out)

    def _save_samples(self) -> None:
        if not self.dist.is_main or self.G_ema is None:
            return
        samples = self.sample_grid(self.stage)
        if self.points:
            self._save_points(samples, f"points-{self.cur_nimg:012d}.png")
            return
        full = self.nets["G"].img_resolution
        path = self.run_dir / "samples" / f"fakes-{self.cur_nimg:012d}.png"
        save_grid(samples, path, cols=self.grid_cols, upscale_to=full)
        self.log.image("fakes", make_grid(samples, self.grid_cols, upscale_to=full), self.cur_nimg)

    def _save_points(self, points: torch.Tensor, name: str) -> None:
        from gankit.viz.points import save_scatter

        save_scatter(
            points,
            self.run_dir / "samples" / name,
            mixture=getattr(self.dataset, "mixture", None),
            title=f"{self.cur_nimg / 1000:g} kimg",
        )

    def _save_stage_grid(self, stage: Stage) -> None:
        # A recipe without stages has one called "main": final.png is its grid.
        if stage.key == Stage.key:
            return
        if self.dist.is_main and self.G_ema is not None and not self.points:
            path = self.run_dir / "samples" / f"stage-{stage.key}.png"
            save_grid(self.sample_grid(stage), path, cols=self.grid_cols)

    def _save_reals(self) -> None:
        """samples/reals.png: a seeded random draw across the data (a row per class for a
        conditional run, as its fake grids have), not the first items of a sorted dataset."""
        path = self.run_dir / "samples" / "reals.png"
        if not self.dist.is_main or path.exists():
            return
        by_class = self.grid_c is not None
        preview = preview_reals(self.dataset, self.opt.grid_size, self.opt.seed, by_class)
        if preview is not None:  # None: 2-D points, which have no images
            save_grid(preview[0], path, cols=preview[1])

    def _snapshot(self) -> None:
        self._check_finite_nets()
        if self.dist.is_main:
            self.recompute_g_ema_stats(self.stage)
            path = ckpt.save_checkpoint(
                self.state_dict(),
                self.run_dir / "checkpoints",
                self.cur_nimg,
                self.opt.keep_checkpoints,
            )
            self.log.info(f"snapshot {path.name} at {self.cur_nimg / 1000:g} kimg")

    def _finish(self) -> None:
        self._snapshot()
        if not self.dist.is_main or self.G_ema is None:
            return
        from gankit.viz.report import write_report

        self._save_samples()
        self._save_stage_grid(self.stage)
        if self.points:
            self._save_points(self.sample_grid(self.stage), "final.png")
        else:
            final = self.run_dir / "samples" / "final.png"
            save_grid(self.sample_grid(self.stage), final, cols=self.grid_cols)
        try:  # losses, progress GIF, real vs fake, interpolations; the snapshot is already safe
            write_report(self.run_dir)
        except Exception as error:
            self.log.info(
                f"could not write the run's plots ({error}); try `gankit plot {self.run_dir}`"
            )

    def _progress_bar(self) -> tqdm:
        return tqdm(
            total=round(self.opt.total_kimg, 3),
            initial=round(self.cur_nimg / 1000, 3),
            unit="kimg",
            # None: shown only on a terminal, so a job's log file (`> log 2>&1`, a batch
            # scheduler's output) gets the tick lines without the bar's carriage returns
            disable=None if self.opt.progress and self.dist.is_main else True,
            bar_format=BAR_FORMAT,
            dynamic_ncols=True,
        )


def _finite(net: nn.Module) -> bool:
    """True when every floating-point parameter and buffer of `net` is finite."""
    return all(torch.isfinite(t).all() for t in net.state_dict().values() if t.is_floating_point())


def _peak_memory_gb(device: torch.device) -> float:
    if device.type == "cuda":
        return round(torch.cuda.max_memory_allocated(device) / 2**30, 3)
    import resource

    # ru_maxrss is in KiB on Linux.
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 3)


#: `kill -USR1 PID` stops a run like a first Ctrl-C and never aborts it: a batch scheduler's
#: warning before its time limit (SLURM's `--signal=USR1@120`), or an experiment stopping its
#: worker processes (benchmarks/experiments.py). None where the platform has no SIGUSR1.
SOFT_STOP_SIGNAL = getattr(signal, "SIGUSR1", None)

#: A SIGUSR1 that came while no loop ran, in a process that called `keep_stop_requests()`.
_stop_pending = False


def keep_stop_requests() -> None:
    """From now on a SIGUSR1 that arrives while no training loop runs (loading data, scoring)
    stops the next loop at its start instead of being lost, or killing the process: for worker
    processes that run one job after another (benchmarks/experiments.py)."""

    def remember(signum: int, frame: Any) -> None:
        global _stop_pending
        _stop_pending = True

    if SOFT_STOP_SIGNAL is not None:
        signal.signal(SOFT_STOP_SIGNAL, remember)


class _graceful_interrupt:
    """First Ctrl-C, SIGTERM or SIGUSR1: finish the iteration, snapshot, stop. A second Ctrl-C
    or SIGTERM: stop at once (KeyboardInterrupt; the last complete checkpoint stands).

    SIGTERM is handled only where nobody installed a handler of their own (a process pool's
    worker that must die on its pool's terminate keeps its own). A SIGUSR1 that
    `keep_stop_requests()` kept before the loop began stops it at its start.
    """

    def __init__(self, trainer: Trainer) -> None:
        self.trainer, self.hard_stops = trainer, 0
        self.previous: dict[int, Any] = {}

    def __enter__(self) -> None:
        global _stop_pending
        try:
            self.previous[signal.SIGINT] = signal.signal(signal.SIGINT, self._interrupt)
        except ValueError:  # not the main thread: signals stay as they are
            return
        if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
            self.previous[signal.SIGTERM] = signal.signal(signal.SIGTERM, self._interrupt)
        if SOFT_STOP_SIGNAL is not None:
            self.previous[SOFT_STOP_SIGNAL] = signal.signal(SOFT_STOP_SIGNAL, self._soft_stop)
        if _stop_pending:  # checked after the handler is in place, so no stop falls between
            _stop_pending = False
            self._stop("asked to stop (SIGUSR1) before the loop began", "Ctrl-C to abort")

    def _interrupt(self, signum: int, frame: Any) -> None:
        self.hard_stops += 1
        if self.hard_stops > 1:  # only a second Ctrl-C/SIGTERM aborts: not one after a SIGUSR1
            raise KeyboardInterrupt
        if self.trainer.stop_signal is None:
            self.trainer.stop_signal = signum
        name = "interrupted" if signum == signal.SIGINT else "terminated (SIGTERM)"
        self._stop(name, "Ctrl-C again to abort")

    def _soft_stop(self, signum: int, frame: Any) -> None:
        self._stop("asked to stop (SIGUSR1)", "Ctrl-C to abort")

    def _stop(self, why: str, then: str) -> None:
        if self.trainer._stop_requested:
            return
        self.trainer._stop_requested = True
        self.trainer.log.info(f"{why}: finishing this iteration and writing a snapshot ({then})")

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)
