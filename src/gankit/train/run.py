"""Config -> objects -> train(): the one place where a Config becomes datasets, nets and a recipe."""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from gankit.config import (
    Config,
    check_arguments,
    config_to_dict,
    dump_config,
    save_config,
)
from gankit.data import check_data_args, open_dataset
from gankit.data.base import ImageDataset
from gankit.device import resolve_device
from gankit.errors import CheckpointError, ConfigError
from gankit.metrics.runner import parse_metrics
from gankit.nets import build_nets, model_spec
from gankit.nn.packing import check_pack_batch
from gankit.recipes.base import Recipe
from gankit.registry import MODELS, RECIPES
from gankit.train import checkpoint as ckpt
from gankit.train.distributed import DistInfo, barrier, init_from_env, shutdown
from gankit.train.logging import RunLogger
from gankit.train.loop import LoopOptions, Trainer
from gankit.train.resolve import (
    MODEL_FIXED_ARGS,
    DataFacts,
    class_count,
    resolve_config,
    uses_default_budget,
)
from gankit.train.resume import check_resume_length, prepare_run_dir
from gankit.train.rundir import RunLock, truncate_stats
from gankit.train.threads import busy_cores, busy_cpu_warning

DEVICE_OPTION = "--device (train.device)"
RECIPE_FIXED_ARGS = ("nets", "batch_size")


def validate(config: Config) -> None:
    """Check the registry names and the model/recipe arguments before anything is built."""
    if config.model.name != "auto":  # `auto` is checked once the data says which model it is
        check_arguments(
            MODELS.get(config.model.name), config.model.arch, MODEL_FIXED_ARGS, "model.arch"
        )
    check_arguments(
        RECIPES.get(config.recipe.name), config.recipe.args, RECIPE_FIXED_ARGS, "recipe.args"
    )
    data, train = config.data, config.train
    check_data_args(data.name, data.args)
    if data.channels not in (None, 1, 3):
        raise ConfigError(f"data.channels must be 1 or 3 (or unset); got {data.channels}")
    if data.resolution is not None and data.resolution < 1:
        raise ConfigError(f"data.resolution must be positive; got {data.resolution}")
    for key in (
        "kimg",
        "ema_kimg",
        "ema_rampup",
        "tick_kimg",
        "snapshot_kimg",
        "sample_kimg",
        "metrics_kimg",
        "max_minutes",
    ):
        value = getattr(train, key)
        if value is not None and (value < 0 or not math.isfinite(value)):
            raise ConfigError(f"train.{key} must be a non-negative number; got {value}")
    if data.workers < 0:
        raise ConfigError(f"data.workers (--workers) must be 0 or more; got {data.workers}")
    if train.keep_checkpoints < 1:
        raise ConfigError(
            f"train.keep_checkpoints must be at least 1; got {train.keep_checkpoints}"
        )
    if train.grid_size < 1:
        raise ConfigError(f"train.grid_size must be at least 1; got {train.grid_size}")
    if train.batch_size is not None and train.batch_size < 1:
        raise ConfigError(f"train.batch_size must be >= 1; got {train.batch_size}")
    if train.batch_gpu < 0:
        raise ConfigError(
            f"train.batch_gpu must be 0 (the whole batch at once) or more; got {train.batch_gpu}"
        )
    if train.threads is not None and train.threads < 1:
        raise ConfigError(
            f"train.threads must be >= 1 (or unset for one per core); got {train.threads}"
        )
    parse_metrics(train.metrics)  # unknown metric names fail before anything is built
    if train.amp == "fp16" and train.device == "cpu":
        raise ConfigError("train.amp=fp16 needs a CUDA device; on CPU use --amp bf16 or none")


def build_dataset(config: Config) -> ImageDataset:
    """The training dataset described by `config.data`."""
    d = config.data
    return open_dataset(
        d.name,
        root=d.root,
        resolution=d.resolution,
        channels=d.channels,
        skip_bad_images=d.skip_bad_images,
        args=d.args,
    )


def build_recipe(config: Config, nets: nn.ModuleDict) -> Recipe:
    """The recipe of a resolved config (every argument and the batch size filled in)."""
    cls = RECIPES.get(config.recipe.name)
    batch = config.train.batch_size
    if "D" in nets:  # refused here, before any output is written, not at the first D step
        check_pack_batch(batch, getattr(nets["D"], "pack", 1))
    try:
        return cls(nets, batch, **config.recipe.args)
    except ConfigError:
        raise
    except ValueError as err:  # e.g. torch.optim's "Invalid beta parameter at index 0: 2"
        raise ConfigError(
            f"recipe {config.recipe.name}: {err}; check recipe.args "
            f"({', '.join(f'{k}={v!r}' for k, v in config.recipe.args.items()) or 'defaults'})"
        ) from None


def train(config: Config, *, resume: bool = False, dry_run: bool = False) -> Path:
    """Build everything from `config` and train; returns the run directory.

    A run stopped by Ctrl-C or SIGTERM returns after its snapshot like a finished one (see
    `run_training` for the outcome); a second Ctrl-C raises KeyboardInterrupt.
    """
    return run_training(config, resume=resume, dry_run=dry_run).run_dir


@dataclasses.dataclass
class Outcome:
    """How a `gankit train` ended: where, at which image count, and the signal that stopped it."""

    run_dir: Path
    cur_nimg: int = 0
    stop_signal: int | None = None  # SIGINT or SIGTERM when stopped early on request


def run_training(config: Config, *, resume: bool = False, dry_run: bool = False) -> Outcome:
    """`train`, returning the `Outcome` (the CLI turns a stop by signal into its exit code)."""
    validate(config)
    if config.train.threads:
        torch.set_num_threads(config.train.threads)
    dist = init_from_env(
        "cuda"
        if config.train.device.startswith("cuda")
        or (config.train.device == "auto" and torch.cuda.is_available())
        else "cpu"
    )
    try:
        return _train(config, dist, resume, dry_run)
    finally:
        shutdown()


@dataclasses.dataclass
class Built:
    """What `gankit train` builds from a config before its loop starts."""

    config: Config  # with the data's model and the recipe's defaults filled in
    dataset: ImageDataset
    nets: nn.ModuleDict  # on `device`, in the config's memory format (unless place_nets=False)
    recipe: Recipe
    spec: dict[str, Any]  # the model spec checkpoints record
    device: torch.device
    default_budget: bool  # no kimg was given: the recipe's budget for this data is used


def build(config: Config, dist: DistInfo | None = None, *, place_nets: bool = True) -> Built:
    """Data, nets and recipe of `config`, the way `gankit train` builds them (nothing written).

    `place_nets=False` leaves the nets on the CPU in the default memory format (`--dry-run`
    only prints the config, so it allocates nothing on a GPU).
    """
    dist = dist or DistInfo()
    device = resolve_device(config.train.device, dist.local_rank, option=DEVICE_OPTION)
    torch.manual_seed(config.train.seed)
    dataset = _open_dataset_rank0_first(config, dist)
    facts = DataFacts.of(dataset, config.data.name, dist.world_size)
    default_budget = uses_default_budget(config, facts)
    config = resolve_config(config, facts, dataset)  # every default filled; nothing built yet
    spec = model_spec(config.model.name, config.model.arch, facts, class_count(config, facts))
    nets = build_nets(spec)
    recipe = build_recipe(config, nets)
    if not place_nets:
        return Built(config, dataset, nets, recipe, spec, device, default_budget)
    nets.to(device)  # after the recipe built its optimizers, which hold the same parameters
    if config.train.channels_last:
        nets.to(memory_format=torch.channels_last)
    return Built(config, dataset, nets, recipe, spec, device, default_budget)


def build_trainer(config: Config, logger: RunLogger | None = None) -> Trainer:
    """The `Trainer` that `gankit train` runs for `config`, for benchmarks and tests.

    Same data, nets, recipe and loop options; logging is off unless `logger` is given, and
    nothing is trained or written until the caller calls `step()` or `run()`.
    """
    validate(config)
    built = build(config)
    run_dir = Path(built.config.train.out)
    options = loop_options(built.config, built.device, built.spec)
    logger = logger or RunLogger(run_dir, enabled=False)
    return Trainer(built.nets, built.recipe, built.dataset, run_dir, options, DistInfo(), logger)


def _train(config: Config, dist: DistInfo, resume: bool, dry_run: bool) -> Outcome:
    built = build(config, dist, place_nets=not dry_run)
    run_dir = Path(built.config.train.out)
    if dry_run:
        print(dump_config(built.config), end="")
        return Outcome(run_dir)
    with RunLock(run_dir) if dist.is_main else contextlib.nullcontext():
        return _train_locked(built, dist, resume)


def _train_locked(built: Built, dist: DistInfo, resume: bool) -> Outcome:
    """Train with the run directory locked. Nothing is written to the run before the config and
    the checkpoint to resume are known to fit: a refused resume leaves the run as it was."""
    config, device = built.config, built.device
    run_dir = Path(config.train.out)
    prepare_run_dir(run_dir, resume)
    notes: list[str] = []
    resumed = ckpt.load_latest(run_dir, device, note=notes.append) if resume else None
    if resumed:
        check_resume_length(int(resumed[1]["cur_nimg"]), config.train)
        check_same_model(built.spec, resumed[1]["model"], resumed[0])
    logger = RunLogger(run_dir, enabled=dist.is_main)
    evaluate = _metrics_callback(config, built.dataset, device)
    options = loop_options(config, device, built.spec)
    trainer = Trainer(
        built.nets, built.recipe, built.dataset, run_dir, options, dist, logger, evaluate
    )
    if resumed:
        restore(trainer, *resumed)
    try:
        if dist.is_main:
            save_config(config, run_dir / "config.yaml")
        for note in notes:
            logger.info(f"note: {note}")
        _log_setup(logger, config, built.dataset, built.nets, built.recipe, device, dist)
        if resumed and dist.is_main:
            _tidy_resumed_run(logger, run_dir, resumed[0], trainer.cur_nimg)
        _log_start(logger, config, built, trainer)
        trainer.run()
    finally:
        logger.close()
    if dist.is_main and trainer.stop_signal is None:
        _print_outputs(logger, run_dir)
    return Outcome(run_dir, trainer.cur_nimg, trainer.stop_signal)


def check_same_model(spec: dict[str, Any], saved: dict[str, Any], path: Path) -> None:
    """Refuse to resume networks whose model spec differs from the checkpoint's, naming the key."""
    for key in sorted(set(spec) | set(saved)):
        if key == "arch":
            continue
        if spec.get(key) != saved.get(key):
            raise _spec_mismatch(f"model {key}", saved.get(key), spec.get(key), path)
    arch, saved_arch = spec.get("arch", {}), saved.get("arch", {})
    for key in sorted(set(arch) | set(saved_arch)):
        # config.yaml gives lists where the builder's defaults are tuples: compare as YAML would.
        if key in saved_arch and _as_yaml(arch.get(key)) != _as_yaml(saved_arch.get(key)):
            raise _spec_mismatch(f"model.arch.{key}", saved_arch[key], arch.get(key), path)


def _as_yaml(value: Any) -> Any:
    """`value` with its tuples as lists, the way it reads back from config.yaml."""
    if isinstance(value, tuple | list):
        return [_as_yaml(item) for item in value]
    if isinstance(value, dict):
        return {key: _as_yaml(item) for key, item in value.items()}
    return value


def _spec_mismatch(key: str, saved: Any, new: Any, path: Path) -> CheckpointError:
    return CheckpointError(
        f"the config gives {key} = {new!r}, but checkpoint {path.name} holds networks with "
        f"{saved!r}; resume without changing the model (config.yaml was left as it was)"
    )


def restore(trainer: Trainer, path: Path, state: dict[str, Any]) -> None:
    """Load a checkpoint into the trainer, with one clear error when it does not fit."""
    try:
        trainer.load_state_dict(state)
    except (RuntimeError, KeyError, ValueError, TypeError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CheckpointError(
            f"checkpoint {str(path)!r} does not fit this run's networks or optimizers "
            f"({first[:300]}); config.yaml was left as it was"
        ) from None


def _tidy_resumed_run(logger: RunLogger, run_dir: Path, loaded: Path, cur_nimg: int) -> None:
    """After a resume from `loaded`: set aside newer (corrupt) checkpoints and drop the stats
    lines of ticks that will be trained again."""
    logger.info(f"resumed from {loaded} at {cur_nimg / 1000:g} kimg")
    for path in ckpt.set_aside_newer(run_dir / "checkpoints", loaded):
        logger.info(f"note: set aside the unreadable {path.name} (it is kept, renamed)")
    dropped = truncate_stats(run_dir / "stats.jsonl", cur_nimg)
    if dropped:
        logger.info(
            f"note: dropped {dropped} stats.jsonl line(s) after {cur_nimg / 1000:g} kimg, "
            "which this resume trains again"
        )


def _log_start(logger: RunLogger, config: Config, built: Built, trainer: Trainer) -> None:
    t = config.train
    if built.default_budget:
        logger.info(
            f"no --kimg given: using {config.recipe.name}'s default budget for {config.data.name}, "
            f"{t.kimg:g} kimg"
        )
    plan = built.recipe.plan(round(t.kimg * 1000))
    if plan:
        logger.info(plan)
    if trainer.cur_nimg >= round(t.kimg * 1000):
        logger.info(
            f"the run has already trained its {t.kimg:g} kimg; give a larger --kimg to train longer"
        )


def _metrics_callback(config: Config, dataset: ImageDataset, device: torch.device) -> Any:
    """G_ema, sampling kwargs -> metric values, for `train.metrics` (None when there are none)."""
    if not config.train.metrics:
        return None
    from gankit.metrics import DatasetSource, EvalOptions, FeatureBank, GeneratorSource, evaluate

    requests = parse_metrics(config.train.metrics)
    options = EvalOptions(
        device=device, seed=config.train.seed, data_root=config.data.root, progress=False
    )
    bank = FeatureBank(options)  # extractors are built once and reused at every evaluation

    def run(G_ema: nn.Module, kwargs: dict[str, Any]) -> dict[str, float]:
        fakes = GeneratorSource(G_ema, kwargs, seed=config.train.seed)
        reals = DatasetSource(dataset, seed=config.train.seed)
        return evaluate(requests, fakes, reals, options, bank=bank, data_name=config.data.name)

    return run


def _open_dataset_rank0_first(config: Config, dist: DistInfo) -> ImageDataset:
    # Rank 0 decodes and caches a new folder once; the other ranks then read its cache.
    if not dist.is_main:
        barrier(dist)
    dataset = build_dataset(config)
    if dist.is_main:
        barrier(dist)
    return dataset


def loop_options(config: Config, device: torch.device, spec: dict[str, Any]) -> LoopOptions:
    """The loop's options for a resolved config (see `resolve_defaults`)."""
    t = config.train
    return LoopOptions(
        total_kimg=t.kimg,
        ema_kimg=t.ema_kimg,
        ema_rampup=t.ema_rampup or 0.0,
        tick_kimg=t.tick_kimg,
        snapshot_kimg=t.snapshot_kimg,
        sample_kimg=t.sample_kimg,
        device=device,
        amp=t.amp,
        channels_last=t.channels_last,
        compile=t.compile,
        seed=t.seed,
        grid_size=t.grid_size,
        keep_checkpoints=t.keep_checkpoints,
        progress=t.progress,
        workers=config.data.workers,
        mirror=config.data.mirror,
        metrics_kimg=t.metrics_kimg or 0.0,
        max_seconds=(t.max_minutes or 0.0) * 60.0,
        batch_gpu=t.batch_gpu,
        model_spec=spec,
    )


def _log_setup(
    logger: RunLogger,
    config: Config,
    dataset: ImageDataset,
    nets: nn.ModuleDict,
    recipe: Recipe,
    device: torch.device,
    dist: DistInfo,
) -> None:
    shape = (
        "2-D points"
        if getattr(dataset, "kind", "images") == "points"
        else f"{dataset.resolution}x{dataset.resolution}x{dataset.channels}"
    )
    logger.info(f"data: {dataset.description or dataset.name} ({len(dataset)} samples, {shape})")
    for name, net in nets.items():
        logger.info(
            f"model {config.model.name}.{name}: {sum(p.numel() for p in net.parameters()):,} parameters"
        )
    logger.info(f"recipe: {recipe.describe()}")
    t = config.train
    n, on_cpu = torch.get_num_threads(), device.type == "cpu"
    threads = f" ({n} thread{'s' if n > 1 else ''})" if on_cpu else ""
    warning = busy_cpu_warning(n, busy_cores(), os.cpu_count() or 1) if on_cpu and n > 1 else None
    if warning:
        logger.info(warning)
    logger.info(
        f"training {t.kimg:g} kimg, batch {t.batch_size} over {dist.world_size} process(es) on {device}{threads}, "
        f"amp {t.amp}; ticks every {t.tick_kimg:g} kimg, samples every {t.sample_kimg:g}, "
        f"snapshots every {t.snapshot_kimg:g}; output in {t.out}"
    )


def _print_outputs(logger: RunLogger, run_dir: Path) -> None:
    logger.info(
        f"done. In {run_dir}: samples/ (grids per stage, final.png, progress.gif), "
        "plots/losses.png, stats.jsonl, checkpoints/, config.yaml"
    )


__all__ = ["build_nets", "config_to_dict", "resolve_device", "train"]
