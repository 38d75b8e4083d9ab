"""Config resolution: one pure step from what the user gave and what the data is to the config a
run records and is built from.

`resolve_config(config, facts)` fills every default: the model (`auto` becomes the recipe's model
for this kind of data) and all of its arch arguments, every recipe argument (the recipe's values
for this kind of data), the minibatch, the length, the moving-average half-life and the
intervals, and the data's resolution, channels and arguments. It reads class attributes and
classmethods only; nothing is built. `train/run.py` then builds every object from the result,
and config.yaml records it, so a run trains the same under a later gankit whose defaults differ.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import nn

from gankit.config import Config, check_arguments, default_arguments
from gankit.data import data_args_used
from gankit.errors import ConfigError
from gankit.recipes.base import Recipe
from gankit.registry import MODELS, RECIPES, Entry

#: Builder parameters that come from the data, never from `model.arch`.
MODEL_FIXED_ARGS = ("img_resolution", "img_channels", "c_dim", "img_channels_b")

#: Default intervals: (parts of the run, longest interval in kimg). About 100 ticks, 10-25 sample
#: grids and 4-10 snapshots per run, at most every 100, 500 and 1,000 kimg: the caps keep a run
#: given a huge --kimg and stopped by --max-minutes logging, sampling and saving as it goes.
DEFAULT_INTERVALS = {
    "tick": (100, 100.0),
    "sample": (10, 500.0),
    "snapshot": (4, 1000.0),
}


@dataclass(frozen=True)
class DataFacts:
    """What a run's defaults may depend on: the data's name, kind, size, channels and classes,
    and how many processes train it (StyleGAN2's `auto` configuration scales with them)."""

    name: str
    kind: str  # "images", "points" or "unpaired"
    resolution: int = 0  # 0: 2-D points
    channels: int = 0
    num_classes: int = 0
    channels_b: int = 0  # unpaired data: domain B's channels (`channels` are A's)
    processes: int = 1  # data-parallel processes (torchrun's world size)
    images: int = 0  # items in the data (unpaired: the larger domain), for epoch-based defaults

    @classmethod
    def of(cls, dataset: Any, name: str, processes: int = 1) -> DataFacts:
        """The facts of an opened dataset (`name`: as the config names it)."""
        return cls(
            name=name,
            kind=getattr(dataset, "kind", "images"),
            resolution=dataset.resolution,
            channels=dataset.channels,
            num_classes=dataset.num_classes,
            channels_b=getattr(dataset, "channels_b", 0),
            processes=processes,
            images=len(dataset),
        )

    @property
    def points(self) -> bool:
        """True for 2-D point data (ring8, grid25)."""
        return self.kind == "points"


def resolve_config(config: Config, facts: DataFacts, dataset: Any = None) -> Config:
    """Every default of `config` filled in for data with these `facts` (see the module
    docstring); `dataset` (optional) pins the data arguments a resume must not re-derive."""
    cls = RECIPES.get(config.recipe.name)
    check_kind(RECIPES.entry(config.recipe.name), "recipe", facts)
    args = cls.resolve_args(config.recipe.args, facts)
    config = _resolve_model(config, cls, args, facts)
    check_kind(MODELS.entry(config.model.name), "model", facts)
    batch = config.train.batch_size or cls.batch_size_for(args, facts)
    ema_kimg, ema_rampup = cls.ema_for(args, facts, batch)
    t = config.train
    kimg = t.kimg if t.kimg is not None else cls.default_length_kimg(args, facts, batch)

    def interval(value: float | None, kind: str) -> float:
        return value if value is not None else default_interval(kimg, kind, batch)

    snapshot = interval(t.snapshot_kimg, "snapshot")
    train = dataclasses.replace(
        t,
        kimg=kimg,
        batch_size=batch,
        ema_kimg=t.ema_kimg if t.ema_kimg is not None else ema_kimg,
        ema_rampup=t.ema_rampup if t.ema_rampup is not None else ema_rampup,
        tick_kimg=interval(t.tick_kimg, "tick"),
        snapshot_kimg=snapshot,
        sample_kimg=interval(t.sample_kimg, "sample"),
        metrics_kimg=t.metrics_kimg if t.metrics_kimg is not None else snapshot,
    )
    data = dataclasses.replace(  # 2-D points have neither (0): left unset, as a resume asks
        config.data,
        resolution=facts.resolution or None,
        channels=facts.channels or None,
        args=data_args_used(dataset, config.data.args) if dataset is not None else config.data.args,
    )
    recipe = dataclasses.replace(config.recipe, args=args)
    return dataclasses.replace(config, train=train, data=data, recipe=recipe)


KIND_WORDS = {"images": "images", "points": "2-D points", "unpaired": "unpaired A/B images"}


def check_kind(entry: Entry, what: str, facts: DataFacts) -> None:
    """Refuse a recipe or model registered for other kinds of data than this data's."""
    if facts.kind in entry.kinds:
        return
    takes = " or ".join(KIND_WORDS.get(k, k) for k in entry.kinds)
    raise ConfigError(
        f"{what} {entry.name} trains on {takes}, but {facts.name!r} holds "
        f"{KIND_WORDS.get(facts.kind, facts.kind)}; choose a {what} for that data "
        "(`gankit list` shows the data each one trains on)"
    )


def class_count(config: Config, facts: DataFacts) -> int:
    """The classes a conditional recipe's nets get (0 for an unconditional one)."""
    if not RECIPES.get(config.recipe.name).is_conditional(config.recipe.args):
        return 0
    if not facts.num_classes:
        raise ConfigError(
            f"recipe {config.recipe.name} is conditional here but {facts.name!r} has no class "
            "labels; use a labelled built-in (digits, mnist, fashion-mnist, cifar10) or an "
            "unconditional recipe (stylegan2: leave recipe.args.cond false)"
        )
    return facts.num_classes


def uses_default_budget(config: Config, facts: DataFacts) -> bool:
    """True when no --kimg was given and the recipe has a budget for this built-in dataset."""
    cls = RECIPES.get(config.recipe.name)
    return config.train.kimg is None and bool(cls.default_budget_kimg(facts.name))


def default_kimg(recipe: Recipe | type[Recipe], data_name: str) -> float:
    """The kimg a run of `recipe` on `data_name` gets without --kimg, for recipes whose length
    does not depend on the model: the budget for that built-in dataset, else the generic one."""
    budget = recipe.default_budget_kimg(data_name)
    return budget if budget is not None else recipe.default_kimg


def default_interval(kimg: float, kind: str, batch_size: int = 0) -> float:
    """The default `kind` interval for a run of `kimg`: a round fraction of it, at most the cap,
    and at least one minibatch (so a short run does not write a grid at every iteration)."""
    divisor, cap = DEFAULT_INTERVALS[kind]
    return max(min(nice(kimg / divisor), cap), batch_size / 1000)


def nice(kimg: float) -> float:
    """Round an interval down to 1, 2 or 5 times a power of ten (at least 0.001 kimg)."""
    if kimg <= 0.001:
        return 0.001
    exp = math.floor(math.log10(kimg))
    for mantissa in (5, 2, 1):
        if mantissa * 10**exp <= kimg:
            return round(mantissa * 10**exp, 6)
    return round(10**exp, 6)


def _resolve_model(
    config: Config, cls: type[Recipe], args: dict[str, Any], facts: DataFacts
) -> Config:
    """`model.name: auto` replaced by the recipe's model (and its arch) for this data, and every
    arch default of the model's builder written out, so that config.yaml and the checkpoints'
    model spec rebuild the same networks under a later gankit."""
    name, arch = config.model.name, config.model.arch
    default_name, defaults = cls.model_defaults(args, facts)
    if name == "auto" and not default_name:
        raise ConfigError(
            f"recipe {config.recipe.name} has no default model; name one with --model NAME"
        )
    name = default_name if name == "auto" else name
    if name == default_name:
        # The recipe's defaults hold for its own model whether or not it was named: `--model
        # stylegan2` gets the same mapping depth and widths as leaving the model to the recipe.
        arch = {**defaults, **arch}
        check_arguments(MODELS.get(name), arch, MODEL_FIXED_ARGS, "model.arch")
    builder = MODELS.get(name)
    arch = {**default_arguments(builder, MODEL_FIXED_ARGS), **arch}
    arch = _with_data_defaults(builder, arch, facts)
    return dataclasses.replace(
        config, model=dataclasses.replace(config.model, name=name, arch=arch)
    )


def _with_data_defaults(
    builder: Callable[..., nn.ModuleDict], arch: dict[str, Any], facts: DataFacts
) -> dict[str, Any]:
    """`arch` with each None that the builder replaces by a value for this kind of data (its
    `data_defaults(img_resolution, img_channels)`, as the MLP's widths) written out."""
    data_defaults = getattr(builder, "data_defaults", None)
    if data_defaults is None:
        return arch
    chosen = data_defaults(facts.resolution, facts.channels)
    return {k: chosen[k] if v is None and k in chosen else v for k, v in arch.items()}
