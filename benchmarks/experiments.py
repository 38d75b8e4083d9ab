"""Shared plumbing of the GAN-family experiments (mode_collapse.py, stacked_mnist.py, mnist_quality.py).

Each experiment is a list of independent jobs (train one recipe on one dataset with one seed,
then evaluate it). Jobs run in worker processes, one torch thread each, `--jobs` at a time: on a
small CPU machine two single-threaded runs side by side use the cores better than one run with
two threads (see docs/design.md on threads).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import io
import json
import math
import multiprocessing
import os
import platform
import signal
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

Job = dict[str, Any]

#: The signal a gankit training loop takes as a stop after a snapshot (it is
#: gankit.train.signals.SOFT_STOP_SIGNAL, named here so that this module imports no torch).
SOFT_STOP_SIGNAL = getattr(signal, "SIGUSR1", None)


def comma_list(text: str) -> list[str]:
    """'a, b,,c' -> ['a', 'b', 'c']: a --recipes/--datasets value, blanks dropped."""
    return [item.strip() for item in text.split(",") if item.strip()]


def method_list(text: str) -> list[str]:
    """The comma list of --recipes, each checked by `parse_method` before any run starts."""
    methods = comma_list(text)
    for method in methods:
        parse_method(method)
    return methods


def positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1 (--jobs, --seeds, --num)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return value


def positive_float(text: str) -> float:
    """An argparse type: a finite number above 0 (--kimg, --minutes)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a number above 0, got {text!r}")
    return value


def device_name(text: str) -> str:
    """An argparse type: a device `gankit train --device` accepts and this machine has."""
    from gankit.errors import ConfigError
    from gankit.train.run import resolve_device

    try:
        resolve_device(text)
    except ConfigError as error:
        raise argparse.ArgumentTypeError(str(error).replace("train.device", "--device")) from None
    return text


def add_common_arguments(p: argparse.ArgumentParser) -> None:
    """--quick, --jobs, --workdir, --data-root, --json."""
    p.add_argument(
        "--quick",
        action="store_true",
        help="tiny budgets: checks that the pipeline runs and the table is produced (tests use it)",
    )
    p.add_argument(
        "--jobs",
        type=positive_int,
        default=2,
        help="runs side by side, one thread each (default 2)",
    )
    p.add_argument(
        "--workdir",
        type=Path,
        default=Path("runs/experiments"),
        help="where runs are written (default runs/experiments); running the same command "
        "again continues its unfinished runs from their last checkpoints",
    )
    p.add_argument(
        "--data-root", default=None, help="folder with the MNIST files (default: GANKIT_DATA_ROOT)"
    )
    p.add_argument("--json", type=Path, default=None, help="also write the raw results here")
    p.add_argument(
        "--device",
        type=device_name,
        default="auto",
        help="where runs train and are scored: auto (CUDA when visible), cpu, cuda, cuda:N; "
        "several --jobs share one GPU (default auto)",
    )
    p.add_argument(
        "--amp",
        choices=("none", "bf16", "fp16"),
        default="none",
        help="mixed precision of training, as gankit train --amp (default none: float32); "
        "bf16 trains the 2-D MLPs about 1.5x faster on a CPU with AVX512-BF16",
    )


def parse_method(method: str) -> tuple[str, str | None, dict[str, Any]]:
    """'RECIPE[+MODEL][+packM]' -> (recipe, model or None, arch): 'gan+pack4' -> ('gan', None,
    {'pack': 4}) packs D (PacGAN); 'cgan+dcgan' -> ('cgan', 'dcgan', {}) swaps the recipe's model."""
    from gankit.registry import MODELS, RECIPES

    recipe, *extras = method.split("+")
    if recipe not in RECIPES:
        raise SystemExit(
            f"method {method!r}: unknown recipe {recipe!r}; known recipes: "
            f"{', '.join(RECIPES.names())} (RECIPE[+MODEL][+packM], e.g. gan+pack4)"
        )
    model, arch = None, {}
    for extra in extras:
        if extra.startswith("pack") and extra[4:].isdigit():
            arch["pack"] = int(extra[4:])
        elif extra in MODELS and model is None:
            model = extra
        else:
            raise SystemExit(
                f"method {method!r}: expected RECIPE[+MODEL][+packM], MODEL one of "
                f"{', '.join(MODELS.names())} (e.g. gan+pack4, cgan+dcgan)"
            )
    return recipe, model, arch


def recipe_budget_kimg(method: str, data: str) -> float:
    """The kimg `gankit train` gives `method`'s recipe on the built-in `data` without --kimg."""
    from gankit.registry import RECIPES
    from gankit.train.resolve import default_kimg

    return default_kimg(RECIPES.get(parse_method(method)[0]), data)


def parse_recipe_args(pairs: Sequence[str]) -> dict[str, Any]:
    """['lr_rampdown=0.5', 'betas=[0.5, 0.9]'] -> {'lr_rampdown': 0.5, 'betas': [0.5, 0.9]} (YAML values)."""
    from gankit.config import parse_yaml

    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise SystemExit(f"--recipe-arg {pair!r}: expected KEY=VALUE, e.g. lr_rampdown=0.5")
        out[key.strip()] = parse_yaml(value)
    return out


class RunInterrupted(Exception):
    """A run stopped before its kimg budget (Ctrl-C, a signal): the experiment stops too."""


def train_run(
    recipe: str,
    data: str,
    out: Path,
    *,
    seed: int = 0,
    kimg: float | None = None,
    minutes: float | None = None,
    data_root: str | None = None,
    model: str | None = None,
    arch: dict[str, Any] | None = None,
    recipe_args: dict[str, Any] | None = None,
    batch: int | None = None,
    resolution: int | None = None,
    device: str = "auto",
    amp: str = "none",
    ema_rampup: float | None = None,
    intervals: dict[str, float] | None = None,
) -> Path:
    """Train `recipe` on `data` into `out`; returns the run directory.

    `ema_rampup` (None: the recipe's) is `train.ema_rampup`, G_ema's half-life ramp-up.
    `intervals` sets `train.*_kimg` (e.g. one sample grid and one snapshot at the end of a quick
    pipeline check, where each would otherwise recompute batch-norm statistics of G_ema).

    `resolution` trains an image dataset at another size than its own (MNIST at 32: padded).

    With a kimg budget, a run that `out` already holds for the same job (`job.json`: recipe,
    data, seed, model, packing, recipe args, batch, mixed precision, and the recipe's preset values, so a preset
    changed in the code starts the run over) continues from its last checkpoint, so an
    experiment that is re-run after an interruption loses at most one snapshot interval, and a
    finished run is not trained again. A time budget (`minutes`) or another job starts over.
    Raises `RunInterrupted` if the run stops before its budget.
    """
    import shutil

    from gankit.config import config_from_dict
    from gankit.train.run import train

    job = {
        "recipe": recipe,
        "data": data,
        "seed": seed,
        "model": model,
        "arch": arch or {},
        "recipe_args": recipe_args or {},
        "batch": batch,
        "preset": preset_values(recipe, data),
    }
    # Absent when unset, so runs started before these options existed still continue.
    if amp != "none":
        job["amp"] = amp
    if resolution is not None:
        job["resolution"] = resolution
    if ema_rampup is not None:
        job["ema_rampup"] = ema_rampup
    resume = minutes is None and _holds_job(out, job)
    if not resume:
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        (out / "job.json").write_text(json.dumps(job, sort_keys=True) + "\n")
    train_cfg: dict[str, Any] = {
        "out": str(out),
        "seed": seed,
        "progress": False,
        "device": device,
        "amp": amp,
    }
    if kimg is not None:
        train_cfg["kimg"] = kimg
    if minutes is not None:  # a time budget: ticks and grids at fixed intervals, one snapshot
        train_cfg.update(max_minutes=minutes, tick_kimg=5.0, sample_kimg=50.0, snapshot_kimg=1e9)
    if batch is not None:
        train_cfg["batch_size"] = batch
    if ema_rampup is not None:
        train_cfg["ema_rampup"] = ema_rampup
    train_cfg.update(intervals or {})
    config = config_from_dict(
        {
            "recipe": {"name": recipe, "args": recipe_args or {}},
            "model": {"name": model or "auto", "arch": arch or {}},
            "data": {"name": data, "root": data_root, "resolution": resolution},
            "train": train_cfg,
        }
    )
    run_dir = train(config, resume=resume)
    if minutes is None:
        check_finished(run_dir)
    return run_dir


def preset_values(recipe: str, data: str) -> dict[str, Any] | None:
    """The values `recipe`'s preset gives it on `data` (None for a recipe without presets)."""
    import dataclasses

    from gankit.data.toy import MIXTURES
    from gankit.registry import RECIPES

    preset_for = getattr(RECIPES.get(recipe), "preset_for", None)
    return dataclasses.asdict(preset_for(points=data in MIXTURES)) if preset_for else None


def _holds_job(out: Path, job: dict[str, Any]) -> bool:
    """Whether `out` has checkpoints of a run started for `job` (compared as saved to JSON)."""
    from gankit.train import checkpoint as ckpt

    path = out / "job.json"
    if not path.is_file() or not ckpt.list_checkpoints(out / "checkpoints"):
        return False
    try:
        return json.loads(path.read_text()) == json.loads(json.dumps(job, sort_keys=True))
    except json.JSONDecodeError:
        return False


def check_finished(run_dir: Path) -> None:
    """Raise `RunInterrupted` unless the newest checkpoint reached the run's `train.kimg`."""
    from gankit.config import load_yaml
    from gankit.train import checkpoint as ckpt

    target = round(float(load_yaml(run_dir / "config.yaml")["train"]["kimg"]) * 1000)
    _, state = ckpt.load_latest(run_dir)
    if int(state["cur_nimg"]) < target:
        raise RunInterrupted(
            f"{run_dir} stopped at {state['cur_nimg'] / 1000:g} of {target / 1000:g} kimg; "
            "run the same command again to continue it from its last checkpoint"
        )


def ensure_classifier(data_root: str | None, quick: bool = False) -> None:
    """Train and cache gankit's MNIST classifier once, before the worker processes need it.

    Quick mode trains a small stand-in on 2,000 images for one epoch (seconds): the pipeline is
    what a quick run checks, not the numbers.
    """
    from gankit.metrics.classifier import (
        default_classifier_path,
        pretrained_classifier,
        save_classifier,
        train_classifier,
    )

    path = default_classifier_path("mnist")
    if path.is_file():
        return
    if not quick:
        pretrained_classifier("mnist", root=data_root)
        return
    from gankit.data import open_dataset

    train = open_dataset("mnist", root=data_root, split="train")
    model = train_classifier(
        train.images[:2000], train.labels[:2000], epochs=1, progress=False, dataset="mnist"
    )
    save_classifier(model, path)


def evaluate_run(
    run_dir: Path, metrics: str, num: int | None, device: str = "auto", **kwargs: Any
) -> dict[str, dict[str, float]]:
    """`gankit evaluate` of a run, keyed by plain metric name then quantity ('' = headline).

    Labels carry their counts (`clf_fid10k/...`); this maps them back to `clf-fid`.
    """
    from gankit.evaluate import run_evaluate
    from gankit.metrics.runner import parse_metrics

    scores = run_evaluate(str(run_dir), metrics, num=num, device=device, progress=False, **kwargs)
    names = [m.strip() for m in metrics.split(",")]
    out: dict[str, dict[str, float]] = {}
    for name, request in zip(names, parse_metrics(metrics, num), strict=True):
        for key, value in scores.items():
            label, _, quantity = key.partition("/")
            if label == request.label:
                out.setdefault(name, {})[quantity] = value
    return out


#: In a pool worker: set once the experiment is stopping, so jobs not yet started are skipped.
_STOPPING: Any = None


def _init_worker(stopping: Any) -> None:
    """Pool worker setup. Ctrl-C reaches the worker's runs from the terminal, and only while a
    job runs: a SIGINT between jobs would kill the worker, and the pool would wait for its job
    forever. The main process's stop (SIGUSR1, see `_pool_signals`) is kept until a run's
    training loop starts, so a stop sent while a run loads its data still stops that run."""
    from gankit.train.signals import keep_stop_requests

    global _STOPPING
    _STOPPING = stopping
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # The pool's terminate() sends SIGTERM: the worker must die then, not finish its run (a
    # training loop handles SIGTERM itself only where no handler was installed).
    signal.signal(signal.SIGTERM, _die)
    keep_stop_requests()


def _die(signum: int, frame: object) -> None:
    os._exit(128 + signum)


def _run_job(args: tuple[Callable[[Job], dict[str, Any]], Job]) -> dict[str, Any]:
    import torch

    torch.set_num_threads(1)
    from gankit.errors import TrainingDivergedError

    fn, job = args
    in_pool = _STOPPING is not None
    if in_pool and _STOPPING.is_set():
        return {**job, "skipped": True}
    start = time.perf_counter()
    if in_pool:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with _lines_named(Path(job["out"]).name if in_pool and "out" in job else None):
            result = fn(job)
    except TrainingDivergedError as error:  # a recipe that diverges is a result, not a crash
        result = {"diverged": str(error).split(";")[0]}
    except KeyboardInterrupt:
        # Ctrl-C outside the training loop (loading, scoring): an exception the pool passes on
        raise RunInterrupted(
            f"{job.get('out', 'a run')} was stopped; run the same command again to continue"
        ) from None
    finally:
        if in_pool:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
    return {**job, **result, "seconds": round(time.perf_counter() - start, 1)}


class _NamedLines(io.TextIOBase):
    """A text stream that passes whole lines on to `stream`, each as `[name] line` in one write
    with a flush, so that the lines of processes writing to one pipe or file do not interleave."""

    def __init__(self, stream: TextIO, name: str) -> None:
        self.stream, self.prefix, self.partial = stream, f"[{name}] ", ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        *lines, self.partial = (self.partial + text).split("\n")
        for line in lines:
            self.stream.write(f"{self.prefix}{line}\n")
            self.stream.flush()
        return len(text)

    def close(self) -> None:
        """Pass on an unfinished last line."""
        if self.partial:
            self.write("\n")
        super().close()


@contextlib.contextmanager
def _lines_named(name: str | None) -> Iterator[None]:
    """Name a worker's console lines after its run, so the tick lines of runs side by side
    tell which run they belong to (each run's log.txt has its own lines, unnamed)."""
    if name is None:
        yield
        return
    with _NamedLines(sys.stdout, name) as named, contextlib.redirect_stdout(named):
        yield


def run_jobs(
    fn: Callable[[Job], dict[str, Any]], jobs: Sequence[Job], parallel: int
) -> list[dict[str, Any]]:
    """`fn(job)` for every job, `parallel` worker processes at a time, results in job order.

    A run that stops before its budget (`RunInterrupted`) ends the experiment with its message.
    """
    try:
        return _run_all(fn, jobs, parallel)
    except RunInterrupted as error:
        raise SystemExit(f"experiment stopped: {error}") from None


def _run_all(
    fn: Callable[[Job], dict[str, Any]], jobs: Sequence[Job], parallel: int
) -> list[dict[str, Any]]:
    os.environ["OMP_NUM_THREADS"] = "1"
    items = [(fn, job) for job in jobs]
    if parallel <= 1:
        return [_report(_run_job(item), i, len(items)) for i, item in enumerate(items)]
    ctx = multiprocessing.get_context("spawn")
    stopping = ctx.Event()
    pool = ctx.Pool(parallel, _init_worker, (stopping,), maxtasksperchild=1)
    with _pool_signals(stopping), pool:
        results, stopped = [], None
        for i, result in enumerate(_each_result(pool.imap(_run_job, items), len(items))):
            if isinstance(result, RunInterrupted):
                stopped = stopped or result
                stopping.set()  # the jobs not started yet are skipped
            elif not result.get("skipped"):
                results.append(_report(result, i, len(items)))
        # Let the workers exit on their own: leaving the block terminates them, and a worker
        # killed while it exits can leak a semaphore (the resource tracker's warning at the end).
        pool.close()
        pool.join()
    if stopped or stopping.is_set():
        raise stopped or RunInterrupted(
            "the runs not started were skipped; run the same command again to train them"
        )
    return results


def _each_result(results: Iterator[dict[str, Any]], count: int) -> Iterator[Any]:
    """The pool's results in job order, with a stopped run's `RunInterrupted` in its place."""
    for _ in range(count):
        try:
            yield next(results)
        except RunInterrupted as error:
            yield error


@contextlib.contextmanager
def _pool_signals(stopping: Any) -> Iterator[None]:
    """Signals in the main process while a pool runs.

    Ctrl-C (SIGINT to the terminal's process group) reaches the workers, whose runs stop after
    their iteration with a snapshot; the main process then waits for those snapshots, skips the
    jobs not started and ends the experiment. A SIGINT to the main process alone (`kill -INT
    PID` of an experiment in the background) does the same: the main process passes the stop
    on to its workers as SIGUSR1, which a run takes as a first Ctrl-C. A second Ctrl-C stops at
    once (the pool is terminated). A SIGTERM (`kill`, a CI timeout) unwinds at once too, so the
    workers are terminated instead of left training as orphans.
    """

    def exit_now(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    def stop_after_snapshots(signum: int, frame: object) -> None:
        if stopping.is_set():
            raise KeyboardInterrupt
        stopping.set()
        if SOFT_STOP_SIGNAL is not None:
            for worker in multiprocessing.active_children():
                os.kill(worker.pid, SOFT_STOP_SIGNAL)
        print("stopping: the runs save a snapshot first (Ctrl-C again to stop now)", flush=True)

    try:
        previous = {
            signal.SIGTERM: signal.signal(signal.SIGTERM, exit_now),
            signal.SIGINT: signal.signal(signal.SIGINT, stop_after_snapshots),
        }
    except ValueError:  # not the main thread: nothing to install
        yield
        return
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _report(result: dict[str, Any], index: int, total: int) -> dict[str, Any]:
    shown = {k: v for k, v in result.items() if not isinstance(v, (dict, list))}
    print(f"[{index + 1}/{total}] {shown}", flush=True)
    return result


def mean_std(values: Sequence[float], digits: int = 1, scale: float = 1.0) -> str:
    """'m +- s' over seeds (s: sample standard deviation; just m for one value)."""
    vals = [v * scale for v in values if v is not None and math.isfinite(v)]
    if not vals:
        return "n/a"
    if len(vals) == 1:
        return f"{vals[0]:.{digits}f}"
    return f"{statistics.mean(vals):.{digits}f} +- {statistics.stdev(vals):.{digits}f}"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def provenance(argv: Sequence[str], jobs: int, device: str = "cpu") -> str:
    """Command, machine and date lines for RESULTS.md (the GPU too when runs trained on one)."""
    import torch

    from gankit.train.run import resolve_device

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = ""
    resolved = resolve_device(device)
    if resolved.type == "cuda":
        gpu = f", on {torch.cuda.get_device_name(resolved)}"
    now = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    return (
        f"- command: `python {' '.join(argv)}`\n"
        f"- machine: {cpu}, {os.cpu_count()} cores, {jobs} run(s) side by side with 1 thread "
        f"each{gpu}, torch {torch.__version__}\n"
        f"- date: {now}"
    )


def write_json(path: Path | None, results: list[dict[str, Any]]) -> None:
    """Raw results as JSON, when asked for."""
    if path is None:
        return
    import json

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2, default=str) + "\n")
