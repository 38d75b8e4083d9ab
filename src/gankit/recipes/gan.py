"""The classic GAN family as one recipe with a preset per paper.

One `GANRecipe` covers them all: an adversarial loss, a critic-steps-per-generator-step ratio,
an optional gradient penalty or weight clipping, and an optimizer. Each registered name is a
subclass whose `images` and `points` presets hold the values its paper used on images and on 2-D
points (`GANArgs`, plus minibatch and model; every argument can be overridden with
`--set recipe.args.X=...`):

| preset  | paper                                           | loss        | D steps | optimizer                          | batch | model  |
|---------|-------------------------------------------------|-------------|---------|------------------------------------|-------|--------|
| gan     | Goodfellow et al. 2014, arXiv:1406.2661         | non-sat.    | k = 1   | Adam 2e-4 (0.5, 0.999) **          | 100   | mlp    |
| cgan    | Mirza & Osindero 2014, arXiv:1411.1784          | non-sat.    | 1       | Adam 2e-4 (0.5, 0.999) **          | 100   | mlp    |
| dcgan   | Radford et al. 2016, arXiv:1511.06434           | non-sat.    | 1       | Adam 2e-4, betas (0.5, 0.999)      | 128   | dcgan  |
| wgan    | Arjovsky et al. 2017, arXiv:1701.07875          | Wasserstein | 5       | RMSprop 5e-5, clip 0.01            | 64    | dcgan  |
| wgan-gp | Gulrajani et al. 2017, arXiv:1704.00028         | Wasserstein | 5       | Adam 1e-4, betas (0, 0.9), GP 10   | 64    | dcgan* |
| sngan   | Miyato et al. 2018, arXiv:1802.05957            | hinge       | 5       | Adam 2e-4, betas (0, 0.9)          | 64    | resnet |
| lsgan   | Mao et al. 2017, arXiv:1611.04076               | least sq.   | 1       | Adam 2e-4, betas (0.5, 0.999)      | 64    | dcgan  |

(*) without batch norm in the critic (layer norm instead), as the WGAN-GP paper prescribes.
(**) a deviation: the papers' SGD (below) diverges to NaN early in an MNIST run in gankit, whose D
loss sums its real and fake terms where the released code halves it, and whose [-1, 1] data and
tanh output give larger gradients than the papers' [0, 1] data and sigmoid; so the default is
DCGAN's Adam. `--set recipe.args.optimizer=sgd --set recipe.args.lr=0.1` trains with the papers'
schedule, and `lr=0.05` trains the MLP gan on MNIST without diverging, to a worse Parzen estimate
and classifier-FID than Adam's (benchmarks/RESULTS.md, section "MNIST: the MLP gan at its default
budget").

Sources of the values: gan and cgan's SGD option follows the papers' released pylearn2 configurations (SGD,
minibatch 100, learning rate 0.1 divided by 1.000004 (gan) or 1.00004 (cgan) per step down to 1e-6,
momentum 0.5 rising linearly to 0.7 over the first 250 epochs of 50,000 images); the non-saturating
generator loss is the one section 3 of the GAN paper recommends. DCGAN: section 4. WGAN:
Algorithm 1 (alpha = 5e-5, c = 0.01, m = 64, n_critic = 5). WGAN-GP: Algorithm 1 (lambda = 10,
n_critic = 5, alpha = 1e-4, beta1 = 0, beta2 = 0.9). SN-GAN: the ResNet/hinge setting of its
CIFAR-10 experiments (alpha = 2e-4, beta1 = 0, beta2 = 0.9, n_dis = 5, batch 64). LSGAN: section
4 (Adam, beta1 = 0.5, learning rate 2e-4), with the 0-1 coding a = 0, b = c = 1 (CycleGAN's).

On 2-D point data (`ring8`, `grid25`) every preset trains the MLP of the VEEGAN/PacGAN protocol
narrowed and deepened (G 8 x 128, D 3 x 128 maxout, where PacGAN has 4 x 400 and 3 x 200; see
`gankit.models.mlp`) with minibatch 100 (PacGAN's code), `gan` uses that code's Adam (lr 1e-4,
beta1 0.8) instead of the paper's MNIST SGD schedule, and `wgan-gp` uses its paper's toy-data values (the released
`gan_toy.py`: lambda 0.1, Adam betas (0.5, 0.9)) instead of the image values (lambda 10). No preset
averages G (G_ema is a copy of G, `ema_kimg` 0), as in the papers; set `--ema-kimg` to turn
averaging on. `lr_rampdown=f` lets an Adam/RMSprop learning rate fall linearly to 0 over the last
fraction f of the run. It is off in every image preset and 0.5 on the 2-D mixtures, gankit's one
deviation from PacGAN's code: PacGAN trained 400 epochs (40,000 kimg) where a CPU budget allows a
few, and the ramp lets G settle on the modes within such a budget: at the full rate its samples
stay spread around the modes, and they gather onto them as the rate falls (benchmarks/RESULTS.md,
sections "Mode collapse on 2-D mixtures" and "Mode collapse at 2,000 kimg").
`--set recipe.args.lr_rampdown=0` gives PacGAN's constant rate. On grid25 the loss matters most:
the least-squares and hinge losses spread G over the whole grid where the non-saturating and
Wasserstein losses drop whole rows of it, and PacGAN's packed D (`model.arch.pack=2`) keeps every
mode; so the 2-D default budgets (`BUDGETS_KIMG`) are set for lsgan with a packed D on the default
nets. Unpacked, sngan meets both mixtures' targets on those nets too, where unpacked gan and lsgan
drop a ring mode on some seeds (sections "grid25: lsgan covers the most modes", "Narrow deep nets
for the 2-D mixtures", "Precise batch-norm statistics" and "grid25 with the narrow default nets,
unpacked"; the Summary table there holds the current figures). `r1_gamma=g` (off in every
preset) adds the R1 penalty of Mescheder et al. 2018 (arXiv:1801.04406), g/2 |grad_x D(x)|^2 at
the reals, to every D step."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any, ClassVar, Literal

import torch
from torch import nn

from gankit.errors import ConfigError
from gankit.losses import (
    d_hinge,
    d_least_squares,
    d_nonsaturating,
    d_wasserstein,
    g_hinge,
    g_least_squares,
    g_nonsaturating,
    g_wasserstein,
    r1,
    wgan_gp,
)
from gankit.losses.penalties import interpolate
from gankit.recipes.base import Batch, Logs, Phase, Recipe, StepContext, fused_adam
from gankit.registry import RECIPES

LossName = Literal["nonsaturating", "wasserstein", "hinge", "least-squares"]
OptimizerName = Literal["adam", "rmsprop", "sgd"]

LOSSES: dict[str, tuple[Callable[..., torch.Tensor], Callable[..., torch.Tensor]]] = {
    "nonsaturating": (d_nonsaturating, g_nonsaturating),
    "wasserstein": (d_wasserstein, g_wasserstein),
    "hinge": (d_hinge, g_hinge),
    "least-squares": (d_least_squares, g_least_squares),
}

MOMENTUM_RAMP_KIMG = 250 * 50.0  # the pylearn2 configs: 250 epochs of the 50k MNIST train split
MIN_SGD_LR = 1e-6

#: Default training budgets (kimg = thousands of real samples shown to D) for the built-in data.
#: 2-D mixtures: 4,000 kimg is 40k steps at batch 100; gankit's narrow deep nets make each step
#: much cheaper than PacGAN's wide ones, so these budgets take minutes, not hours, on a CPU
#: (benchmarks/RESULTS.md, Summary, "2-D defaults, wall time"); MNIST-like: what the DCGAN/GAN
#: papers trained.
BUDGETS_KIMG = {
    # ring8 and grid25: the budgets at which lsgan with a packed D (pack 2) met issue #4's targets
    # on the default nets on every seed measured; grid25 stays at 8,000 kimg because at 6,000 G
    # has not finished spreading its mass and some runs left a mode empty (benchmarks/RESULTS.md,
    # sections "Narrow deep nets for the 2-D mixtures" and "Precise batch-norm statistics").
    # stacked-mnist: the budget at which dcgan with pack 2 met its target as a mean over seeds
    # (section "Stacked MNIST over 5 seeds").
    "ring8": 4000.0,
    "grid25": 8000.0,
    "digits": 200.0,
    "mnist": 3000.0,
    "fashion-mnist": 3000.0,
    "stacked-mnist": 3000.0,
    "cifar10": 10000.0,
}


@dataclass(frozen=True)
class GANArgs:
    """`recipe.args` of the classic family, typed; a preset gives every one a paper's value."""

    loss: LossName
    optimizer: OptimizerName
    lr: float
    betas: tuple[float, float] = (0.5, 0.999)  # Adam
    momentum: tuple[float, float] = (0.5, 0.7)  # SGD: start, end of the linear ramp
    lr_decay: float = 1.0  # SGD: lr divided by this every step (down to MIN_SGD_LR)
    lr_rampdown: float = 0.0  # Adam/RMSprop: last fraction of the run with lr falling linearly to 0
    n_critic: int = 1
    gp_weight: float = 0.0
    r1_gamma: float = 0.0  # R1 (Mescheder et al. 2018): gamma/2 * |grad D(real)|^2 on every D step
    clip: float = 0.0


@dataclass(frozen=True)
class Preset:
    """A paper's setting for one kind of data: the recipe's arguments, the minibatch, the model
    and its arch (used with `model.name: auto`)."""

    args: GANArgs
    batch_size: int
    model: str
    arch: dict[str, Any] = field(default_factory=dict)


def on_2d_points(images: Preset, *, arch: dict[str, Any] | None = None, **args: Any) -> Preset:
    """`images` moved to PacGAN's 2-D protocol: its MLP and minibatch 100, the learning rate
    ramped down to 0 over the second half of the run (gankit's one deviation: see the module
    docstring), and `args` (a paper's own toy-data values) over the arguments."""
    return Preset(
        replace(images.args, lr_rampdown=0.5, **args), batch_size=100, model="mlp", arch=arch or {}
    )


def data_kind(nets: nn.ModuleDict) -> str:
    """The kind of data `nets` were built for: "points" for a 2-D point model, else "images"."""
    return getattr(nets["G"], "output_kind", "images")


class GANRecipe(Recipe):
    """Adversarial loss + D steps per G step + optional GP/clipping; a subclass per paper sets
    the values (`images`, and `points` for 2-D data)."""

    #: The registered name (the run log's description starts with it).
    preset_name: ClassVar[str]
    #: The paper's values on images, and those on 2-D points (`defaults_for` picks one).
    images: ClassVar[Preset]
    points: ClassVar[Preset]
    default_ema_kimg = 0.0

    def __init__(
        self,
        nets: nn.ModuleDict,
        batch_size: int,
        *,
        loss: LossName | None = None,
        optimizer: OptimizerName | None = None,
        lr: float | None = None,
        betas: tuple[float, float] | None = None,
        momentum: tuple[float, float] | None = None,
        lr_decay: float | None = None,
        lr_rampdown: float | None = None,
        n_critic: int | None = None,
        gp_weight: float | None = None,
        r1_gamma: float | None = None,
        clip: float | None = None,
    ) -> None:
        """An argument left out (None) takes the preset's value for the data the nets are for:
        `defaults_for(kind).args`."""
        super().__init__(nets, batch_size)
        given = dict(
            loss=loss,
            optimizer=optimizer,
            lr=lr,
            betas=betas,
            momentum=momentum,
            lr_decay=lr_decay,
            lr_rampdown=lr_rampdown,
            n_critic=n_critic,
            gp_weight=gp_weight,
            r1_gamma=r1_gamma,
            clip=clip,
        )
        self.kind = data_kind(nets)
        defaults = self.defaults_for(self.kind).args
        self.args = replace(defaults, **{k: v for k, v in given.items() if v is not None})
        self._check(self.args)
        self.d_loss, self.g_loss = LOSSES[self.args.loss]
        self._optimizers = {
            "G": self._make_optimizer(nets["G"].parameters()),
            "D": self._make_optimizer(nets["D"].parameters()),
        }
        # Optimizer steps taken: SGD's learning rate decays per step (checkpointed).
        self._steps = {"G": 0, "D": 0}

    # ------------------------------------------------------------------ presets

    @classmethod
    def defaults_for(cls, kind: str) -> Preset:
        """This recipe's values for a kind of data: `images` (labelled or not) or 2-D `points`."""
        presets = {"images": cls.images, "points": cls.points}
        if kind not in presets:
            raise ConfigError(
                f"recipe {cls.preset_name} trains on images or 2-D points, not {kind} data; "
                "choose a recipe for that data (`gankit list` shows them)"
            )
        return presets[kind]

    @classmethod
    def default_args(cls, kind: str) -> dict[str, Any]:
        """Every recipe argument's default for a kind of data, as `recipe.args` holds them."""
        return asdict(cls.defaults_for(kind).args)

    @classmethod
    def resolve_args(cls, given: dict[str, Any], facts: Any) -> dict[str, Any]:
        """Every argument a run on this kind of data uses: the preset's, `given` over them."""
        return {**cls.default_args(facts.kind), **given}

    @classmethod
    def model_defaults(cls, args: dict[str, Any], facts: Any) -> tuple[str, dict[str, Any]]:
        preset = cls.defaults_for(facts.kind)
        return preset.model, dict(preset.arch)

    @classmethod
    def batch_size_for(cls, args: dict[str, Any], facts: Any) -> int:
        return cls.defaults_for(facts.kind).batch_size

    @classmethod
    def preset_for(cls, points: bool) -> Preset:
        """`defaults_for` by a flag (benchmarks/experiments.py records it with each job)."""
        return cls.defaults_for("points" if points else "images")

    @classmethod
    def default_budget_kimg(cls, data_name: str) -> float | None:
        return BUDGETS_KIMG.get(data_name)

    @staticmethod
    def _check(args: GANArgs) -> None:
        if args.loss not in LOSSES:
            raise ConfigError(f"recipe.args.loss={args.loss!r}: choose one of {sorted(LOSSES)}")
        if args.optimizer not in ("adam", "rmsprop", "sgd"):
            raise ConfigError(
                f"recipe.args.optimizer={args.optimizer!r}: choose one of adam, rmsprop, sgd"
            )
        if args.n_critic < 1:
            raise ConfigError(f"recipe.args.n_critic must be >= 1; got {args.n_critic}")
        if args.lr <= 0 or min(args.gp_weight, args.r1_gamma, args.clip) < 0 or args.lr_decay < 1:
            raise ConfigError(
                "recipe.args: lr must be > 0, gp_weight, r1_gamma and clip >= 0, lr_decay >= 1; "
                f"got lr={args.lr}, gp_weight={args.gp_weight}, r1_gamma={args.r1_gamma}, "
                f"clip={args.clip}, lr_decay={args.lr_decay}"
            )
        if not 0 <= args.lr_rampdown <= 1 or (args.lr_rampdown and args.optimizer == "sgd"):
            raise ConfigError(
                f"recipe.args.lr_rampdown must be in [0, 1] (a fraction of the run) and is for "
                f"adam/rmsprop (sgd has lr_decay); got {args.lr_rampdown} with {args.optimizer}"
            )

    def _make_optimizer(self, params: Any) -> torch.optim.Optimizer:
        a = self.args
        if a.optimizer == "adam":
            return fused_adam(params, lr=a.lr, betas=tuple(a.betas))
        if a.optimizer == "rmsprop":
            return torch.optim.RMSprop(params, lr=a.lr)
        return torch.optim.SGD(params, lr=a.lr, momentum=a.momentum[0])

    # ------------------------------------------------------------------ schedule

    def optimizer_settings(self, cur_nimg: int, total_nimg: int) -> dict[str, dict[str, float]]:
        """SGD: the papers' lr decay per step of each optimizer and their linear momentum ramp
        over the first 250 MNIST epochs; Adam/RMSprop: the optional linear ramp-down to 0 over
        the last `lr_rampdown` of the run. Image and step counts are checkpointed, so a resumed
        run gets the values an uninterrupted one would."""
        a = self.args
        if a.optimizer == "sgd":
            ramp = min(1.0, cur_nimg / (MOMENTUM_RAMP_KIMG * 1000))
            momentum = a.momentum[0] + (a.momentum[1] - a.momentum[0]) * ramp
            return {
                key: {"lr": max(a.lr / a.lr_decay**steps, MIN_SGD_LR), "momentum": momentum}
                for key, steps in self._steps.items()
            }
        if a.lr_rampdown and total_nimg:
            left = max(0.0, 1.0 - cur_nimg / total_nimg)
            lr = a.lr * min(1.0, left / a.lr_rampdown)
            return {"G": {"lr": lr}, "D": {"lr": lr}}
        return {}

    # ------------------------------------------------------------------ phases

    def phases(self) -> list[Phase]:
        return [
            Phase("D_main", "D", self.d_step, after_step=self._after_d_step),
            Phase(
                "G_main", "G", self.g_step, every=self.args.n_critic, after_step=self._after_g_step
            ),
        ]

    @staticmethod
    def reals(batch: Batch) -> torch.Tensor:
        """The real samples of a batch: images, or 2-D points."""
        return batch["img"] if "img" in batch else batch["points"]

    def labels(self, batch: Batch, ctx: StepContext) -> torch.Tensor | None:
        """Real labels for a conditional G/D (None when unconditional)."""
        if not ctx.G.c_dim:
            return None
        if "label" not in batch:
            raise ConfigError(
                f"{self.preset_name} is conditional but the data has no labels; use a labelled "
                "built-in (mnist, fashion-mnist, cifar10, digits) or an unconditional recipe"
            )
        return batch["label"]

    def d_step(self, batch: Batch, ctx: StepContext) -> Logs:
        """The critic loss on reals and fakes (+ gradient penalty when gp_weight > 0)."""
        real, c = self.reals(batch), self.labels(batch, ctx)
        with torch.no_grad():
            fake = ctx.G(ctx.latents(real.shape[0]), c)
        if self.args.r1_gamma > 0:
            real = real.detach().requires_grad_(True)
        real_logits, fake_logits = ctx.D(real, c), ctx.D(fake, c)
        loss = self.d_loss(real_logits, fake_logits).float()
        logs = {"real": real_logits.detach().mean(), "fake": fake_logits.detach().mean()}
        if self.args.gp_weight > 0:
            with ctx.full_precision():
                mixed = interpolate(real, fake, generator=ctx.generator)
                gp = wgan_gp(ctx.D(mixed, c), mixed).mean()
            loss = loss + self.args.gp_weight * gp
            logs["gp"] = gp.detach()
        if self.args.r1_gamma > 0:
            with ctx.full_precision():
                penalty = r1(real_logits, real).mean()
            loss = loss + 0.5 * self.args.r1_gamma * penalty
            logs["r1"] = penalty.detach()
        return {"loss": loss, **logs}

    def g_step(self, batch: Batch, ctx: StepContext) -> Logs:
        """The generator loss on a fresh batch of fakes (labels: those of the real batch)."""
        c = self.labels(batch, ctx)
        fake = ctx.G(ctx.latents(), c)
        return {"loss": self.g_loss(ctx.D(fake, c))}

    @torch.no_grad()
    def _after_d_step(self) -> None:
        if self.args.clip > 0:  # WGAN's weight clipping
            for param in self.nets["D"].parameters():
                param.clamp_(-self.args.clip, self.args.clip)
        self._steps["D"] += 1

    def _after_g_step(self) -> None:
        self._steps["G"] += 1

    # ------------------------------------------------------------------ state

    def state_dict(self) -> dict[str, Any]:
        return {"steps": dict(self._steps)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._steps = {k: int(v) for k, v in state.get("steps", {"G": 0, "D": 0}).items()}

    def describe(self) -> str:
        a = self.args
        extras = []
        if a.gp_weight:
            extras.append(f"gradient penalty {a.gp_weight:g}")
        if a.r1_gamma:
            extras.append(f"R1 gamma {a.r1_gamma:g}")
        if a.clip:
            extras.append(f"weight clipping {a.clip:g}")
        opt = {
            "adam": f"Adam lr {a.lr:g} betas {tuple(a.betas)}",
            "rmsprop": f"RMSprop lr {a.lr:g}",
            "sgd": f"SGD lr {a.lr:g} (/{a.lr_decay:g} per step) momentum {a.momentum[0]:g}->{a.momentum[1]:g}",
        }[a.optimizer]
        if a.lr_rampdown:
            opt += f", lr ramped down to 0 over the last {a.lr_rampdown:.0%} of the run"
        return (
            f"{self.preset_name}: {a.loss} loss, {a.n_critic} D step(s) per G step, {opt}"
            + (", " + ", ".join(extras) if extras else "")
            + (" (2-D protocol)" if self.kind == "points" else "")
        )


# ---------------------------------------------------------------------- the papers' presets
# The papers' SGD (lr 0.1) diverges to NaN early in an MNIST run here (see the module docstring),
# so gan and cgan default to DCGAN's Adam; `optimizer=sgd, lr=0.1` gives the papers' schedule (lr_decay, momentum
# ramp), and lr 0.05 trains it without diverging.


@RECIPES.register("gan", kinds=("images", "points"))
class GAN(GANRecipe):
    """Original GAN: MLP G and D, non-saturating loss, k D steps per G step."""

    preset_name = "gan"
    images = Preset(
        GANArgs("nonsaturating", "adam", 2e-4, lr_decay=1.000004), batch_size=100, model="mlp"
    )
    # PacGAN's GAN baseline on 2-D data: Adam, lr 1e-4, beta1 0.8.
    points = on_2d_points(images, lr=1e-4, betas=(0.8, 0.999))


@RECIPES.register("cgan", kinds=("images",))
class CGAN(GANRecipe):
    """Conditional GAN: class labels into G and D (Mirza & Osindero 2014)."""

    preset_name = "cgan"
    conditional = True
    images = Preset(
        GANArgs("nonsaturating", "adam", 2e-4, lr_decay=1.00004), batch_size=100, model="mlp"
    )
    points = on_2d_points(images)


@RECIPES.register("dcgan", kinds=("images", "points"))
class DCGAN(GANRecipe):
    """DCGAN: strided conv D, transposed-conv G, batch norm (Radford 2016)."""

    preset_name = "dcgan"
    images = Preset(GANArgs("nonsaturating", "adam", 2e-4), batch_size=128, model="dcgan")
    points = on_2d_points(images)


@RECIPES.register("wgan", kinds=("images", "points"))
class WGAN(GANRecipe):
    """WGAN: Wasserstein critic with weight clipping, RMSprop, n_critic 5."""

    preset_name = "wgan"
    images = Preset(
        GANArgs("wasserstein", "rmsprop", 5e-5, n_critic=5, clip=0.01),
        batch_size=64,
        model="dcgan",
    )
    points = on_2d_points(images)


@RECIPES.register("wgan-gp", kinds=("images", "points"))
class WGANGP(GANRecipe):
    """WGAN-GP: Wasserstein critic with gradient penalty 10, n_critic 5."""

    preset_name = "wgan-gp"
    images = Preset(
        GANArgs("wasserstein", "adam", 1e-4, betas=(0.0, 0.9), n_critic=5, gp_weight=10.0),
        batch_size=64,
        model="dcgan",
        arch={"d_norm": "layer"},  # no batch norm in a critic with a gradient penalty
    )
    # Its own toy setting (gan_toy.py of the released code: lambda 0.1, "smaller lambda seems to
    # help for toy tasks", Adam betas (0.5, 0.9)); with the image lambda of 10 the critic stays
    # near-linear on the ring and G collapses onto a few modes (benchmarks/RESULTS.md, section
    # "wgan-gp on 2-D mixtures: the paper's toy penalty").
    points = on_2d_points(images, gp_weight=0.1, betas=(0.5, 0.9))


@RECIPES.register("sngan", kinds=("images", "points"))
class SNGAN(GANRecipe):
    """SN-GAN: ResNet G/D, spectral norm in D, hinge loss, n_critic 5."""

    preset_name = "sngan"
    images = Preset(
        GANArgs("hinge", "adam", 2e-4, betas=(0.0, 0.9), n_critic=5), batch_size=64, model="resnet"
    )
    points = on_2d_points(images, arch={"spectral_norm": True})


@RECIPES.register("lsgan", kinds=("images", "points"))
class LSGAN(GANRecipe):
    """LSGAN: least-squares loss (a=0, b=c=1), Adam 2e-4."""

    preset_name = "lsgan"
    images = Preset(GANArgs("least-squares", "adam", 2e-4), batch_size=64, model="dcgan")
    points = on_2d_points(images)
