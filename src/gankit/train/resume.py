"""Resuming a run: its saved config.yaml, what a resume may change, and the intervals a new
length re-derives. `train.run` asks these before it builds anything."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from gankit.config import (
    Config,
    TrainConfig,
    config_from_dict,
    flatten_dotted,
    get_dotted,
    load_yaml,
    merge,
)
from gankit.errors import CheckpointError, ConfigError
from gankit.registry import MODELS
from gankit.train import checkpoint as ckpt
from gankit.train.resolve import DEFAULT_INTERVALS, default_interval, nice

#: The parts of the run before the intervals followed the batch (runs made by gankit 0.1.0's
#: first releases saved intervals from these; see `rederive_intervals`).
LEGACY_DIVISORS = {"tick": 100, "sample": 25, "snapshot": 10}


def _legacy_interval(kimg: float, kind: str) -> float:
    return min(nice(kimg / LEGACY_DIVISORS[kind]), DEFAULT_INTERVALS[kind][1])


def prepare_run_dir(run_dir: Path, resume: bool) -> None:
    """Refuse to overwrite a run that has checkpoints unless resuming it."""
    has_ckpt = bool(ckpt.list_checkpoints(run_dir / "checkpoints"))
    if resume and not has_ckpt:
        raise CheckpointError(
            f"cannot resume {str(run_dir)!r}: it has no checkpoints (train without --resume to start it)"
        )
    if not resume and has_ckpt:
        raise ConfigError(
            f"{str(run_dir)!r} already holds a run with checkpoints; continue it with "
            f"`gankit train --resume {run_dir}` or choose another --out"
        )


#: What a run's config.yaml has held since the first release: a file without one of these was
#: cut short (a full disk under an older gankit) or edited, and is refused, never filled in.
SAVED_KEYS = {
    "model": ("name", "arch"),
    "recipe": ("name", "args"),
    "data": ("name",),
    "train": ("out", "kimg", "batch_size", "seed"),
}
#: Config keys a resume keeps: they fix the shape of what the checkpoints hold, or the data.
FIXED_ON_RESUME = (
    "model.", "recipe.name", "data.name", "data.resolution", "data.channels", "data.args.",
)  # fmt: skip
RESUMABLE_TEXT = (
    "a resume may change train.* (length, intervals, metrics, device, threads, amp, ...), "
    "recipe.args.* (e.g. the learning rate) and data.root / data.workers"
)


def load_run_config(run_dir: Path, overrides: dict[str, Any]) -> Config:
    """The saved config of a run directory, with overrides (e.g. a longer train.kimg) applied.

    The file must be whole (`SAVED_KEYS`); overrides of `FIXED_ON_RESUME` keys that differ from
    the saved values are refused. A new `train.kimg` re-derives the tick/sample/snapshot/metrics
    intervals that were the defaults for the old length (see `rederive_intervals`); intervals
    given explicitly stay. Runs saved before G_ema's ramp-up existed keep averaging without it.
    """
    path = run_dir / "config.yaml"
    if not path.is_file():
        raise CheckpointError(f"{str(run_dir)!r} is not a gankit run directory (no config.yaml)")
    saved = load_saved_config(path)
    check_resume_overrides(saved, overrides)
    if "ema_rampup" not in saved["train"]:  # made before the ramp-up: keep its averaging
        saved = merge(saved, {"train": {"ema_rampup": 0.0}})
    saved = _with_earlier_arch(saved)
    return config_from_dict(merge_overrides(saved, overrides))


def _with_earlier_arch(saved: dict[str, Any]) -> dict[str, Any]:
    """The saved config with the arch arguments its model gained since, at the values that
    rebuild its networks (e.g. ProGAN's `fused_scale: false`)."""
    name, arch = saved["model"].get("name"), saved["model"].get("arch") or {}
    if not isinstance(name, str) or name not in MODELS:
        return saved  # "auto" or unknown: resolved (or refused) later, as for a new run
    return merge(saved, {"model": {"arch": MODELS.entry(name).with_earlier_arch(arch)}})


def load_saved_config(path: Path) -> dict[str, Any]:
    """A run's config.yaml as a dict, refused with a clear error when empty or incomplete."""
    damaged = (
        "; it may have been cut short by a full disk or edited. Its checkpoints are untouched: "
        "restore config.yaml from a copy of the run (its model, recipe, data and train sections)"
    )
    data = load_yaml(path)
    if not data:
        raise ConfigError(f"{str(path)!r} is empty{damaged}")
    for section, keys in SAVED_KEYS.items():
        if not isinstance(data.get(section), dict):
            raise ConfigError(f"{str(path)!r} has no {section}: section{damaged}")
        missing = [k for k in keys if k not in data[section]]
        if missing:
            raise ConfigError(
                f"{str(path)!r} is incomplete: {section}: lacks {', '.join(missing)}{damaged}"
            )
    return data


def check_resume_overrides(saved: dict[str, Any], overrides: dict[str, Any]) -> None:
    """Refuse a resume override that changes what the checkpoints' shapes or data depend on."""
    for key, value in flatten_dotted(overrides).items():
        if not key.startswith(FIXED_ON_RESUME):
            continue
        stored = get_dotted(saved, key.split("."))
        if stored != value:
            raise ConfigError(
                f"cannot change {key} when resuming: the run was saved with {stored!r} and the "
                f"override gives {value!r}; {RESUMABLE_TEXT}. To train another model or on "
                "other data, start a new run with --out"
            )


def merge_overrides(saved: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """A saved config (a run's config.yaml, or a file given to `gankit train`) with `overrides`
    merged in; a new `train.kimg` there first re-derives the default intervals
    (`rederive_intervals`)."""
    given = overrides.get("train", {})
    if given.get("kimg") is not None:
        saved = rederive_intervals(saved, given["kimg"], set(given))
    return merge(saved, overrides)


def rederive_intervals(saved: dict[str, Any], new_kimg: float, given: set[str]) -> dict[str, Any]:
    """`saved` (a config.yaml's dict) with each interval that equals its default for the saved
    `train.kimg` unset, so that `resolve_defaults` derives it again for `new_kimg`.

    config.yaml records every interval resolved; without this, `--resume RUN --kimg 4000` on a
    run started with `--kimg 40` would keep ticking, sampling and saving every 0.4-4 kimg.
    An interval chosen by hand that happens to equal the default is re-derived as well; giving
    it again on the resume's command line (`given`) pins it. Defaults of runs made before the
    intervals followed the batch (`LEGACY_DIVISORS`) count as defaults too."""
    train = dict(saved.get("train", {}))
    old_kimg = train.get("kimg")
    if not isinstance(old_kimg, int | float) or old_kimg == new_kimg:
        return saved  # unset, the same, or not a number (config_from_dict then names the error)
    batch = train.get("batch_size") if isinstance(train.get("batch_size"), int) else 0
    defaults = {
        f"{kind}_kimg": (default_interval(old_kimg, kind, batch), _legacy_interval(old_kimg, kind))
        for kind in DEFAULT_INTERVALS
    }
    # Metrics follow the snapshots by default: re-derived only along with a derived snapshot.
    snapshot_derived = _same(train.get("snapshot_kimg"), defaults["snapshot_kimg"])
    defaults["metrics_kimg"] = defaults["snapshot_kimg"] if snapshot_derived else ()
    for key, choices in defaults.items():
        if key not in given and _same(train.get(key), choices):
            train[key] = None
    return {**saved, "train": train}


def _same(value: Any, defaults: tuple[float, ...]) -> bool:
    return isinstance(value, int | float) and any(
        math.isclose(value, d, rel_tol=1e-9) for d in defaults
    )


def check_resume_length(cur_nimg: int, train: TrainConfig) -> None:
    """Refuse a resume whose `--kimg` is shorter than what the run has already trained (a
    finished run overshoots its kimg by less than one batch, which is not shorter)."""
    if cur_nimg > round(train.kimg * 1000) + train.batch_size:
        raise ConfigError(
            f"the run has already trained {cur_nimg / 1000:g} kimg, more than --kimg "
            f"{train.kimg:g}; resume with a --kimg above {cur_nimg / 1000:g} to train longer, "
            "or without --kimg to finish the length it was started with"
        )
