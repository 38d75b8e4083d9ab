"""The recipe contract: a paper's training maths, separate from the loop's mechanics.

A recipe says which losses and penalties, how often (`Phase.every`), which optimizers and what
schedule. It never calls `backward()` or `optimizer.step()`: the loop runs each phase's
`compute(batch, ctx)`, back-propagates its "loss", and steps the phase's optimizer.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from gankit.config import default_arguments
from gankit.errors import ConfigError
from gankit.nets import draw_latents

Batch = dict[str, torch.Tensor]
Logs = dict[str, torch.Tensor]


def fused_adam(params: Any, **kwargs: Any) -> torch.optim.Adam:
    """`torch.optim.Adam` with its fused kernel: Adam's update in one pass over all tensors
    instead of about ten ops per tensor (on CUDA, one launch instead of hundreds); the small
    2-D nets' step is dominated by it otherwise (benchmarks/RESULTS.md, benchmarks/optimizer_step.py)."""
    return torch.optim.Adam(params, fused=True, **kwargs)


@dataclass(frozen=True)
class Stage:
    """Where training is: the resolution G and D run at, the fade-in alpha, the global batch.

    `key` changes when the loop must rebuild its loader or the recipe may reset optimizer state
    (a new resolution, or fade-in -> stable); non-progressive recipes have one stage throughout.
    """

    resolution: int
    alpha: float = 1.0
    batch_size: int = 32
    key: str = "main"

    @property
    def fading(self) -> bool:
        """True while a new block is being faded in (alpha < 1)."""
        return self.alpha < 1.0


@dataclass
class StepContext:
    """What a phase may use: the networks, the stage, and the loop's seeded random streams."""

    nets: nn.ModuleDict
    stage: Stage
    batch_size: int  # per process
    device: torch.device
    generator: torch.Generator
    cur_nimg: int
    autocast_dtype: torch.dtype | None = None
    total_nimg: int = 0  # the run's budget in images (0: unknown)

    def net(self, name: str) -> nn.Module:
        """The network `name` being trained (e.g. "G_ab", "D_b")."""
        return self.nets[name]

    @property
    def G(self) -> nn.Module:
        """The generator being trained."""
        return self.nets["G"]

    @property
    def D(self) -> nn.Module:
        """The discriminator / critic being trained."""
        return self.nets["D"]

    def randn(self, *shape: int) -> torch.Tensor:
        """Standard normal noise from the loop's generator (checkpointed, so resume is exact)."""
        return torch.randn(shape, device=self.device, generator=self.generator)

    def rand(self, *shape: int) -> torch.Tensor:
        """Uniform [0, 1) noise from the loop's generator."""
        return torch.rand(shape, device=self.device, generator=self.generator)

    def latents(self, n: int | None = None, net: str = "G") -> torch.Tensor:
        """A batch of z ~ N(0, I) of `net`'s `z_dim`, from the loop's stream."""
        return draw_latents(self.nets[net], n or self.batch_size, self.generator)

    @contextlib.contextmanager
    def full_precision(self) -> Iterator[None]:
        """Disable autocast inside (penalties are computed in float32)."""
        if self.autocast_dtype is None:
            yield
            return
        with torch.autocast(self.device.type, enabled=False):
            yield


@dataclass
class Phase:
    """One optimisation step the loop runs every `every` iterations (an iteration = one D batch)."""

    name: str
    optimizer: str
    compute: Callable[[Batch, StepContext], Logs]
    every: int = 1
    autocast: bool = True
    after_step: Callable[[], None] | None = None
    #: Replace NaN with 0 and +-inf with +-1e5 in the gradients before the step, so that one bad
    #: minibatch cannot poison the weights (StyleGAN2-ADA does this for every phase).
    clean_grads: bool = False
    #: False: run on the uncompiled nets under `train.compile` (phases that need a double
    #: backward, such as R1 or path-length penalties, which torch.compile does not support).
    compiled: bool = True


class Recipe:
    """Base class: subclasses set `nets`, build `self._optimizers`, and define `phases()`."""

    #: Defaults the loop uses when the user does not set them (train.kimg, ...).
    default_kimg: float = 1000.0
    default_batch_size: int = 32
    default_ema_kimg: float = 10.0
    #: G_ema's half-life ramp-up (StyleGAN2-ADA's `ema_rampup`); 0 turns it off.
    default_ema_rampup: float = 0.05
    #: The model a run uses when none is named (`model.name: auto`).
    default_model: str = ""
    #: Whether the recipe trains on class labels (the model is then built with `c_dim` classes).
    conditional: bool = False

    @classmethod
    def is_conditional(cls, args: dict[str, Any]) -> bool:
        """Whether a run with these (resolved) arguments trains on labels: `conditional`, or
        an argument for recipes where it is a choice (StyleGAN2's `cond`)."""
        return cls.conditional

    # The defaults below are asked for by `gankit.train.resolve.resolve_config` before anything
    # is built: `args` are the resolved recipe arguments, `facts` its `DataFacts` (the data's
    # name, kind, resolution, channels and classes, and the number of processes).

    @classmethod
    def model_defaults(cls, args: dict[str, Any], facts: Any) -> tuple[str, dict[str, Any]]:
        """(model name, arch arguments) used with `model.name: auto` for this data."""
        return cls.default_model, {}

    @classmethod
    def batch_size_for(cls, args: dict[str, Any], facts: Any) -> int:
        """The default global minibatch for this data."""
        return cls.default_batch_size

    @classmethod
    def ema_for(cls, args: dict[str, Any], facts: Any, batch_size: int) -> tuple[float, float]:
        """The default moving-average half-life in kimg and its ramp-up (`train.ema_kimg`,
        `train.ema_rampup`) for this data and minibatch."""
        return cls.default_ema_kimg, cls.default_ema_rampup

    @classmethod
    def default_budget_kimg(cls, data_name: str) -> float | None:
        """The default `train.kimg` on a built-in dataset (None: `default_kimg`)."""
        return None

    @classmethod
    def resolve_args(cls, given: dict[str, Any], facts: Any) -> dict[str, Any]:
        """Every argument a run of this recipe on this data uses: `given` (recipe.args) over
        the constructor's defaults. config.yaml records them, so a run's config file trains the
        same recipe under a later gankit whose defaults differ."""
        return {**default_arguments(cls, ()), **given}

    @classmethod
    def default_length_kimg(cls, args: dict[str, Any], facts: Any, batch_size: int) -> float:
        """`train.kimg` when none is given, for these arguments and data (`facts`: name, kind,
        resolution, ...): the recipe's budget for that built-in dataset, else `default_kimg`."""
        budget = cls.default_budget_kimg(facts.name)
        return budget if budget is not None else cls.default_kimg

    def __init__(self, nets: nn.ModuleDict, batch_size: int) -> None:
        self.nets = nets
        self.batch_size = batch_size
        self._optimizers: dict[str, torch.optim.Optimizer] = {}

    def phases(self) -> list[Phase]:
        """The phases of one iteration, in order."""
        raise NotImplementedError

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """Optimizers by key; `Phase.optimizer` names one of them."""
        return self._optimizers

    def averaged(self) -> dict[str, str]:
        """Moving averages the loop keeps, `{average name: net name}`: G_ema of G by default
        (nothing for nets without a "G"). Their half-life is `train.ema_kimg`."""
        return {"G_ema": "G"} if "G" in self.nets else {}

    def optimizer_settings(self, cur_nimg: int, total_nimg: int) -> dict[str, dict[str, float]]:
        """Learning-rate (and momentum) schedule: `{optimizer key: {"lr": ..., ...}}`, which the
        loop writes into every param group of that optimizer before the phases of each iteration.
        A function of the image count only, so a resumed run gets the same values. `{}`: the
        settings the optimizers were built with stay."""
        return {}

    def preview(self, dataset: Any, nets: Any, seed: int, grid_size: int) -> Any:
        """The pictures the run saves as it trains (a `gankit.viz.previews.Preview`); None: the
        one for the data's kind (a sample grid, a 2-D scatter, translation rows)."""
        return None

    def schedule(self, cur_nimg: int) -> Stage:
        """The stage at `cur_nimg` images shown; one fixed stage unless the recipe grows."""
        resolutions = [getattr(net, "img_resolution", 0) for net in self.nets.values()]
        return Stage(resolution=max(resolutions, default=0), batch_size=self.batch_size)

    def on_stage_change(self, old: Stage | None, new: Stage) -> None:
        """Called by the loop when the stage key changes (and once at the start, with old=None)."""

    def generator_kwargs(self, stage: Stage) -> dict[str, Any]:
        """Extra keyword arguments for sampling G at `stage` (progressive: resolution, alpha)."""
        return {}

    def prepare_reals(self, img: torch.Tensor, stage: Stage) -> torch.Tensor:
        """Turn full-resolution float reals `[N, C, H, W]` into what D sees at `stage`."""
        return img

    def state_dict(self) -> dict[str, Any]:
        """The recipe's own mutable state (not the optimizers'; the loop saves those)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore `state_dict()`."""

    def describe(self) -> str:
        """A one-line summary for the run log."""
        return type(self).__name__

    def plan(self, total_nimg: int) -> str | None:
        """What a run of `total_nimg` images will go through, for the start of the log (e.g.
        which resolutions a growing recipe reaches, and when); None when there is nothing to say."""
        return None


def apply_settings(
    optimizers: dict[str, torch.optim.Optimizer], settings: dict[str, dict[str, float]]
) -> None:
    """Set each optimizer's hyperparameters (`Recipe.optimizer_settings`) on all its param groups."""
    for key, values in settings.items():
        for group in optimizers[key].param_groups:
            group.update(values)


def check_phases(
    phases: list[Phase], optimizers: dict[str, torch.optim.Optimizer]
) -> dict[str, list[torch.Tensor]]:
    """Each phase's optimizer exists; returns the parameters each optimizer steps, by key."""
    for phase in phases:
        if phase.optimizer not in optimizers:
            raise ConfigError(
                f"phase {phase.name} uses optimizer {phase.optimizer!r}, but the recipe has "
                f"{sorted(optimizers)}"
            )
    return {
        key: [p for group in opt.param_groups for p in group["params"]]
        for key, opt in optimizers.items()
    }
