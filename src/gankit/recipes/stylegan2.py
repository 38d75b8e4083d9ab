"""StyleGAN2 training recipe: Karras et al., "Analyzing and Improving the Image Quality of
StyleGAN", CVPR 2020, arXiv:1912.04958, trained as the official StyleGAN2-ADA PyTorch code trains
it (Karras et al. 2020, arXiv:2006.06676; NVlabs/stylegan2-ada-pytorch: train.py,
training/loss.py, training/training_loop.py).

Every iteration runs the phases G_main, G_reg, D_main, D_reg in the official order:

- G_main: non-saturating loss softplus(-D(G(z))).
- G_reg (every `G_reg_interval` = 4 iterations): path-length regularisation on a minibatch
  shrunk by `pl_batch_shrink` = 2: lengths |J_w^T y| with y ~ N(0, I) / sqrt(H * W), the running
  mean `pl_mean` (decay 0.01, checkpointed), penalty (length - pl_mean)^2 times `pl_weight` = 2.
- D_main: softplus(D(G(z))) + softplus(-D(x)).
- D_reg (every `D_reg_interval` = 16 iterations): R1 on the reals, |grad_x D(x)|^2 * gamma / 2.

Lazy regularisation as the official loop does it: each regulariser's loss is multiplied by its
interval, and the optimizer shared by a net's main and reg phases is built with lr * r and
betas ** r, r = interval / (interval + 1). An interval of None runs main and reg together in one
phase (the official `Gboth`/`Dboth`) without that correction. A weight of 0 drops the reg phase
(officially it runs and does nothing), the correction staying. Style mixing: with probability
0.9 one crossover index for the whole minibatch, uniform in [1, num_ws), after which the ws of a
second latent are used; otherwise none. Every call of G's mapping on the first latent updates
`w_avg` (the official `skip_w_avg_update` only on the mixing latent). Adam betas (0, 0.99), eps
1e-8; every phase sets `Phase.clean_grads`, so the loop turns NaN gradients into 0 and +-inf into
+-1e5 after averaging them over processes and before the step, where the official loop does.

Augmentation of what D sees (`aug`; the official --aug, --p, --target, --augpipe):

- "ada" (the default): StyleGAN2-ADA's `AugmentPipe` preset `augpipe` ("bgc"), its p starting at
  `p` (0) and moved by `AdaptiveP` towards E[sign(D(real))] = `target` (0.6) every
  `ada_interval` (4) iterations, by batch * interval / (`ada_kimg` (500) * 1000) each time;
- "fixed": the same pipe at a constant `p` (none at p = 0, as officially);
- "noaug": none;
- "diffaug": DiffAugment's `diffaug_policy` ("color,translation,cutout"), always applied (Zhao
  et al. 2020, arXiv:2006.10738; not in the official train.py).

Every image D sees goes through it, as the official `loss.run_D`: the fakes in G_main and D_main,
the reals in D_main and D_reg, where R1 is the gradient with respect to the reals before the pipe,
through it. The signs of D(real) in D_main and D_reg drive p. p and the controller's sums are in
`state_dict()` (an exact resume), and D_main logs p as `aug_p`. The pipe is built with the recipe,
on the CPU (so a resumed run can load p before the first step), and moved to the images' device
the first time it runs (the recipe is built before the nets move there); it is not one of the
nets.

Noise inputs when sampling, as the official code: the training grids use the constant noise
buffers (`preview`), so do `gankit generate` (its --noise-mode default) and PPL; the FID-type
metrics sample with random noise (G's default, `generator_kwargs` adds nothing).

The configurations are train.py's `cfg_specs`: `auto` (the default; batch, minibatch-std group,
channel base, learning rate, R1 gamma = 0.0002 * res^2 / batch, G_ema half-life, mapping depth as
functions of resolution and GPU count: `auto_config`) and the presets `stylegan2`, `paper256`,
`paper512`, `paper1024`, `cifar` (`PRESETS`), each a `TrainingConfig`. `gpus` defaults to the
run's process count. The configuration sets the run's defaults through the class methods
`resolve_config` asks (`batch_size_for`, `ema_for`, `model_defaults`: batch, G_ema half-life and
ramp-up, mapping depth, channel base and maximum, minibatch-std group, D architecture); `--batch`,
`--ema-kimg` and `model.arch` override them. `lr`, `r1_gamma`, `pl_weight` and
`style_mixing_prob` override the configuration's values (the official --gamma overrides gamma
alone); `glr` and `dlr` give G and D their own learning rates (the official stylegan3 train.py's
--glr and --dlr; left at None, both are `lr`). `plan()` prints every resolved value at the start
of a run.

Deviations from the official code, and why:

- Gradient accumulation (the official `batch_gpu`) is the loop's business: every phase works
  on the images the loop hands it (`ctx.batch_size` of them), so the path-length minibatch is
  that number // `pl_batch_shrink` (officially `batch_gpu // pl_batch_shrink` per round), and
  `pl_mean` moves once per call as officially once per round.
- The regularisation phases run in float32 (gankit's rule for penalties); the official code runs
  them at the networks' mixed precision.
- The labels of the fakes are those of the real minibatch (the official draws them from the
  dataset at random): the same distribution, without a second pass over the data.
- Random numbers (latents, crossover, path-length noise) come from the loop's checkpointed
  generator rather than torch's global one, so a resumed run continues exactly.
- ADA adjusts p in D_main's `after_step` (every iteration) rather than after all phases and the
  G_ema update: when D_reg runs in an iteration that adjusts p, it sees the new p and its signs
  count towards the next interval. With D_reg_interval a multiple of ada_interval (the defaults,
  16 and 4) the adjusting iterations never run D_reg, and p moves exactly as officially.
- `p` is also ADA's starting value (officially --p goes with --aug fixed only and ADA starts at
  0), and the arguments a mode does not use (`target` outside "ada", `augpipe` with "noaug" or
  "diffaug", ...) are ignored rather than refused: every argument has a typed default here.
- Under data parallelism `w_avg` and `pl_mean` are averaged over the processes each time they
  move (officially each process keeps its own and only rank 0's is saved): the replicas stay
  identical, a resumed run continues exactly, and the means are those of the global batch.
- The crossover is applied with `torch.where` over the w index rather than a slice assignment:
  the same values, without reading the index back to the host.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from typing import Any, Literal, get_args

import torch
import torch.distributed as dist
from torch import nn

from gankit.augment import PRESETS as AUGMENT_PRESETS
from gankit.augment import AdaptiveP, AugmentPipe, DiffAugment
from gankit.augment.diffaug import DEFAULT_POLICY
from gankit.errors import ConfigError
from gankit.losses import d_nonsaturating, g_nonsaturating, r1
from gankit.nets import sampling_net
from gankit.recipes.base import Batch, Logs, Phase, Recipe, StepContext, fused_adam
from gankit.registry import RECIPES
from gankit.viz.previews import LatentGrid

ConfigName = Literal["auto", "stylegan2", "paper256", "paper512", "paper1024", "cifar"]
#: The official --aug modes, and DiffAugment.
AugMode = Literal["ada", "noaug", "fixed", "diffaug"]
#: The official --augpipe choices (`gankit.augment.PRESETS`).
AugPipeName = Literal[
    "blit", "geom", "color", "filter", "noise", "cutout", "bg", "bgc", "bgcf", "bgcfn", "bgcfnc"
]


@dataclass(frozen=True)
class TrainingConfig:
    """One configuration of the official train.py (`cfg_specs`), with its values resolved."""

    name: str
    gpus: int  # the GPU count the global batch is split over (official `ref_gpus`)
    kimg: float
    batch_size: int  # global minibatch
    mbstd_group: int  # D's minibatch-standard-deviation group size
    channel_base: int  # official fmaps * 32768
    lr: float
    r1_gamma: float
    ema_kimg: float  # G_ema half-life
    ema_rampup: float  # 0: no ramp-up (the official None)
    mapping_layers: int
    channel_max: int = 512
    pl_weight: float = 2.0
    style_mixing_prob: float = 0.9
    d_architecture: str = "resnet"

    @property
    def batch_gpu(self) -> int:
        """Images per GPU and accumulation round (official `batch_gpu`)."""
        return self.batch_size // self.gpus

    def items(self) -> list[tuple[str, Any]]:
        """(name, value) of every field, then batch_gpu: what the run log prints."""
        values = [(f.name, getattr(self, f.name)) for f in fields(self)]
        return [*values, ("batch_gpu", self.batch_gpu)]


#: The fixed rows of the official table (the `stylegan2` row uses mixed precision there).
PRESETS: dict[str, TrainingConfig] = {
    "stylegan2": TrainingConfig(
        "stylegan2", gpus=8, kimg=25000, batch_size=32, mbstd_group=4, channel_base=32768,
        lr=0.002, r1_gamma=10.0, ema_kimg=10.0, ema_rampup=0.0, mapping_layers=8,
    ),
    "paper256": TrainingConfig(
        "paper256", gpus=8, kimg=25000, batch_size=64, mbstd_group=8, channel_base=16384,
        lr=0.0025, r1_gamma=1.0, ema_kimg=20.0, ema_rampup=0.0, mapping_layers=8,
    ),
    "paper512": TrainingConfig(
        "paper512", gpus=8, kimg=25000, batch_size=64, mbstd_group=8, channel_base=32768,
        lr=0.0025, r1_gamma=0.5, ema_kimg=20.0, ema_rampup=0.0, mapping_layers=8,
    ),
    "paper1024": TrainingConfig(
        "paper1024", gpus=8, kimg=25000, batch_size=32, mbstd_group=4, channel_base=32768,
        lr=0.002, r1_gamma=2.0, ema_kimg=10.0, ema_rampup=0.0, mapping_layers=8,
    ),
    # No path-length regularisation, no style mixing, no residual D (official train.py).
    "cifar": TrainingConfig(
        "cifar", gpus=2, kimg=100000, batch_size=64, mbstd_group=32, channel_base=32768,
        lr=0.0025, r1_gamma=0.01, ema_kimg=500.0, ema_rampup=0.05, mapping_layers=2,
        pl_weight=0.0, style_mixing_prob=0.0, d_architecture="orig",
    ),
}  # fmt: skip


#: Recipe arguments whose None means "the configuration's value".
CONFIG_ARGS = ("lr", "r1_gamma", "pl_weight", "style_mixing_prob")


def auto_config(resolution: int, gpus: int = 1) -> TrainingConfig:
    """The official `auto` configuration for `resolution` px on `gpus` GPUs."""
    if resolution < 4 or gpus < 1:
        raise ConfigError(
            f"stylegan2's auto configuration needs a resolution >= 4 and gpus >= 1; got "
            f"{resolution} and {gpus}"
        )
    # Per-GPU batch falls with resolution to bound memory; the total is capped at 64.
    batch = max(min(gpus * min(4096 // resolution, 32), 64), gpus)
    return TrainingConfig(
        "auto",
        gpus=gpus,
        kimg=25000,
        batch_size=batch,
        mbstd_group=min(batch // gpus, 4),
        channel_base=32768 if resolution >= 512 else 16384,
        lr=0.002 if resolution >= 1024 else 0.0025,
        r1_gamma=0.0002 * resolution**2 / batch,
        ema_kimg=batch * 10 / 32,
        ema_rampup=0.05,
        mapping_layers=2,
    )


def config_for(name: str, resolution: int, gpus: int = 1) -> TrainingConfig:
    """The configuration `name` (`auto` or a preset) for `resolution` px on `gpus` GPUs."""
    if name == "auto":
        return auto_config(resolution, gpus)
    if name not in PRESETS:
        raise ConfigError(
            f"recipe.args.cfg={name!r}: choose auto or one of {', '.join(PRESETS)} "
            "(the official train.py configurations)"
        )
    return PRESETS[name]


def _check_augmentation(
    aug: str, p: float, target: float, augpipe: str, interval: int, ada_kimg: float
) -> None:
    """Refuse a bad augmentation argument (what train.py refuses, and intervals), naming it."""
    modes = get_args(AugMode)
    if aug not in modes:
        raise ConfigError(f"recipe.args.aug={aug!r}: choose one of {', '.join(modes)}")
    if not 0 <= p <= 1:
        raise ConfigError(f"recipe.args.p={p}: the augmentation probability must be in [0, 1]")
    if not 0 <= target <= 1:
        raise ConfigError(f"recipe.args.target={target}: ADA's target must be in [0, 1]")
    if augpipe not in AUGMENT_PRESETS:
        raise ConfigError(
            f"recipe.args.augpipe={augpipe!r}: choose one of {', '.join(AUGMENT_PRESETS)} "
            "(the official --augpipe names)"
        )
    if interval < 1 or ada_kimg <= 0:
        raise ConfigError(
            f"recipe.args: ada_interval must be >= 1 and ada_kimg > 0; got {interval} and "
            f"{ada_kimg}"
        )


def lazy_adam_settings(
    lr: float, betas: tuple[float, float], interval: int | None
) -> tuple[float, tuple[float, float]]:
    """Adam's lr and betas for a net regularised every `interval` steps: lr * r, betas ** r with
    r = interval / (interval + 1), as the official loop corrects them (None: unchanged)."""
    if interval is None:
        return lr, (betas[0], betas[1])
    ratio = interval / (interval + 1)
    return lr * ratio, (betas[0] ** ratio, betas[1] ** ratio)


def mean_over_processes(value: torch.Tensor) -> torch.Tensor:
    """`value` averaged in place over the data-parallel processes (unchanged in one process):
    the running means then move as one global batch would move them, on every rank alike."""
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        dist.all_reduce(value)
        value /= dist.get_world_size()
    return value


def batch_labels(batch: Batch, ctx: StepContext, family: str) -> torch.Tensor | None:
    """The minibatch's labels when G is conditional (None otherwise); a clear error when the
    networks are conditional and the data has none."""
    if not ctx.G.c_dim:
        return None
    if "label" not in batch:
        raise ConfigError(
            f"{family}'s networks are conditional but the data has no labels; use labelled "
            "data or train without labels (no cond)"
        )
    return batch["label"]


def mixing_cutoff(num_ws: int, prob: float, generator: torch.Generator) -> torch.Tensor:
    """The style-mixing crossover for one minibatch, a 0-d int64 tensor: uniform in
    [1, num_ws) with probability `prob`, else `num_ws` (no mixing), drawn as the official code
    draws it (the index first, then the coin)."""
    device = generator.device
    if num_ws < 2 or prob <= 0:
        return torch.tensor(num_ws, device=device)
    cutoff = torch.randint(1, num_ws, (), device=device, generator=generator)
    coin = torch.rand((), device=device, generator=generator)
    return torch.where(coin < prob, cutoff, torch.full_like(cutoff, num_ws))


def mix_styles(ws: torch.Tensor, ws_mix: torch.Tensor, cutoff: torch.Tensor) -> torch.Tensor:
    """`ws` `[N, num_ws, w_dim]` with the entries from index `cutoff` on taken from `ws_mix`."""
    index = torch.arange(ws.shape[1], device=ws.device)
    return torch.where((index >= cutoff.to(ws.device))[None, :, None], ws_mix, ws)


def path_lengths(img: torch.Tensor, ws: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """|J_w^T y| per sample `[N]`: the gradient of sum(img * noise) with respect to `ws`
    `[N, num_ws, w_dim]`, squared, summed over w_dim, averaged over the ws, square-rooted;
    kept in the graph so the penalty can be back-propagated."""
    (grad,) = torch.autograd.grad(
        outputs=(img * noise).sum(), inputs=ws, create_graph=True, only_inputs=True
    )
    return grad.float().square().sum(2).mean(1).sqrt()


@RECIPES.register("stylegan2", kinds=("images",))
class StyleGAN2Recipe(Recipe):
    """StyleGAN2 with the official StyleGAN2-ADA training: lazy R1 and path-length penalties,
    style mixing, the official configurations (`cfg`) and D's augmentation (`aug`)."""

    default_model = "stylegan2"
    default_batch_size = 32  # the auto configuration at <= 128 px on one GPU
    default_ema_kimg = 10.0  # its G_ema half-life, batch * 10 / 32
    default_kimg = 25000.0

    def __init__(
        self,
        nets: nn.ModuleDict,
        batch_size: int,
        *,
        cfg: ConfigName = "auto",
        gpus: int = 1,
        cond: bool = False,
        lr: float | None = None,
        glr: float | None = None,
        dlr: float | None = None,
        r1_gamma: float | None = None,
        pl_weight: float | None = None,
        style_mixing_prob: float | None = None,
        betas: tuple[float, float] = (0.0, 0.99),
        eps: float = 1e-8,
        G_reg_interval: int | None = 4,
        D_reg_interval: int | None = 16,
        pl_decay: float = 0.01,
        pl_batch_shrink: int = 2,
        aug: AugMode = "ada",
        p: float = 0.0,
        target: float = 0.6,
        augpipe: AugPipeName = "bgc",
        diffaug_policy: str = DEFAULT_POLICY,
        ada_interval: int = 4,
        ada_kimg: float = 500.0,
    ) -> None:
        """`cfg` and `gpus` choose the configuration (`config_for`); `cond` trains on the
        data's class labels (the official `--cond`; the nets are then built with `c_dim`
        classes, a label embedding in G's mapping and a projection D); `lr`, `r1_gamma`,
        `pl_weight` and `style_mixing_prob` left at None take its values, and `glr` and `dlr`
        (G's and D's learning rates) left at None take `lr`. `aug` and the
        arguments after it choose D's augmentation (see the module docstring)."""
        super().__init__(nets, batch_size)
        G, D = nets["G"], nets["D"]
        given = {"lr": lr, "r1_gamma": r1_gamma, "pl_weight": pl_weight,
                 "style_mixing_prob": style_mixing_prob}  # fmt: skip
        base = config_for(cfg, G.img_resolution, gpus)
        self.config = replace(base, **{k: v for k, v in given.items() if v is not None})
        self.lrs = {"G": self.config.lr if glr is None else glr,
                    "D": self.config.lr if dlr is None else dlr}  # fmt: skip
        self._check(self.config, self.lrs, G_reg_interval, D_reg_interval, pl_batch_shrink)
        self.betas, self.eps = (float(betas[0]), float(betas[1])), eps
        self.G_reg_interval, self.D_reg_interval = G_reg_interval, D_reg_interval
        self.pl_decay, self.pl_batch_shrink = pl_decay, pl_batch_shrink
        self.pl_mean = torch.zeros([])
        self.aug, self.augpipe = aug, augpipe
        #: ADA's pipe ("ada", "fixed") and its controller, which holds p; DiffAugment ("diffaug").
        self.augment_pipe: AugmentPipe | None = None
        self.ada: AdaptiveP | None = None
        self.diffaug: DiffAugment | None = None
        self._build_augmentation(aug, p, target, augpipe, diffaug_policy, ada_interval, ada_kimg)
        self._check_channels(G.img_channels)
        self._optimizers = {
            "G": self._adam(G.parameters(), self.lrs["G"], G_reg_interval),
            "D": self._adam(D.parameters(), self.lrs["D"], D_reg_interval),
        }

    @staticmethod
    def _check(
        config: TrainingConfig,
        lrs: dict[str, float],
        g_interval: int | None,
        d_interval: int | None,
        shrink: int,
    ) -> None:
        intervals_ok = all(i is None or i >= 1 for i in (g_interval, d_interval))
        if not intervals_ok or shrink < 1:
            raise ConfigError(
                "recipe.args: G_reg_interval and D_reg_interval must be >= 1 (or null: not lazy) "
                f"and pl_batch_shrink >= 1; got {g_interval}, {d_interval} and {shrink}"
            )
        if min(config.lr, *lrs.values()) <= 0 or min(config.r1_gamma, config.pl_weight) < 0:
            raise ConfigError(
                f"recipe.args: lr, glr and dlr must be > 0 and r1_gamma, pl_weight >= 0; got "
                f"lr={config.lr}, glr={lrs['G']}, dlr={lrs['D']}, r1_gamma={config.r1_gamma}, "
                f"pl_weight={config.pl_weight}"
            )
        if not 0 <= config.style_mixing_prob <= 1:
            raise ConfigError(
                f"recipe.args.style_mixing_prob must be in [0, 1]; got {config.style_mixing_prob}"
            )

    def _build_augmentation(
        self,
        aug: str,
        p: float,
        target: float,
        augpipe: str,
        policy: str,
        interval: int,
        ada_kimg: float,
    ) -> None:
        _check_augmentation(aug, p, target, augpipe, interval, ada_kimg)
        if aug == "diffaug":
            try:
                self.diffaug = DiffAugment(policy)
            except ValueError as err:
                raise ConfigError(f"recipe.args.diffaug_policy: {err}") from None
        # As officially, a fixed p of 0 builds no pipe (it would only spend random numbers).
        if aug == "ada" or (aug == "fixed" and p > 0):
            self.augment_pipe = AugmentPipe.preset(augpipe)
            self.ada = AdaptiveP(
                self.augment_pipe, p=p, target=target if aug == "ada" else None,
                interval=interval, speed_kimg=ada_kimg,
            )  # fmt: skip

    def _check_channels(self, channels: int) -> None:
        # The pipe's colour transformations act on RGB or grey images only (as officially).
        pipe = self.augment_pipe
        colour = pipe is not None and any(
            getattr(pipe, name) > 0 for name in ("brightness", "contrast", "lumaflip")
        )
        if colour and channels not in (1, 3):
            raise ConfigError(
                f"recipe.args.augpipe={self.augpipe!r} changes colours, which needs RGB or grey "
                f"images; the data has {channels} channels: choose augpipe blit or geom, or "
                "aug noaug or diffaug"
            )

    def _adam(self, params: Any, lr: float, interval: int | None) -> torch.optim.Adam:
        lr, betas = lazy_adam_settings(lr, self.betas, interval)
        return fused_adam(params, lr=lr, betas=betas, eps=self.eps)

    @classmethod
    def resolve_args(cls, given: dict[str, Any], facts: Any) -> dict[str, Any]:
        """The constructor's defaults with `gpus` = the run's process count, `given` over them,
        and the configuration's values written in for `lr`, `r1_gamma`, `pl_weight` and
        `style_mixing_prob` where they are not given (so config.yaml holds the numbers used)."""
        args = {**super().resolve_args({}, facts), "gpus": facts.processes, **given}
        config = cls.training_config(args, facts)
        return {**args, **{k: getattr(config, k) for k in CONFIG_ARGS if args.get(k) is None}}

    @classmethod
    def is_conditional(cls, args: dict[str, Any]) -> bool:
        """`cond` (the official `--cond`)."""
        return bool(args.get("cond", False))

    @classmethod
    def training_config(cls, args: dict[str, Any], facts: Any) -> TrainingConfig:
        """The configuration these arguments choose for this data (`cfg`, `gpus`)."""
        return config_for(args.get("cfg", "auto"), facts.resolution, args.get("gpus", 1))

    @classmethod
    def model_defaults(cls, args: dict[str, Any], facts: Any) -> tuple[str, dict[str, Any]]:
        """The configuration's architecture: mapping depth, channel base and maximum,
        minibatch-std group, D architecture."""
        config = cls.training_config(args, facts)
        return cls.default_model, {
            "mapping_layers": config.mapping_layers,
            "channel_base": config.channel_base,
            "channel_max": config.channel_max,
            "mbstd_group_size": config.mbstd_group,
            "d_architecture": config.d_architecture,
        }

    @classmethod
    def batch_size_for(cls, args: dict[str, Any], facts: Any) -> int:
        """The configuration's global minibatch."""
        return cls.training_config(args, facts).batch_size

    @classmethod
    def ema_for(cls, args: dict[str, Any], facts: Any, batch_size: int) -> tuple[float, float]:
        """The configuration's G_ema half-life and ramp-up."""
        config = cls.training_config(args, facts)
        return config.ema_kimg, config.ema_rampup

    @classmethod
    def default_length_kimg(cls, args: dict[str, Any], facts: Any, batch_size: int) -> float:
        """The configuration's length (25,000 kimg; cifar 100,000)."""
        cfg, gpus = args.get("cfg", "auto"), args.get("gpus", 1)
        return config_for(cfg, facts.resolution, gpus).kimg

    # ------------------------------------------------------------------ phases

    def phases(self) -> list[Phase]:
        """G_main, G_reg, D_main, D_reg (the official order); a reg phase only when lazy and
        its weight is not 0. Every phase cleans its gradients; D_main, which runs every
        iteration, ends the iteration for ADA's controller. The regularisers need a double
        backward, which torch.compile does not support: under `train.compile` they run on the
        uncompiled nets (a main phase too when it carries its regulariser, not lazy)."""
        lazy_g, lazy_d = self.G_reg_interval is not None, self.D_reg_interval is not None
        reg = {"clean_grads": True, "autocast": False, "compiled": False}
        phases = [Phase("G_main", "G", self.g_main, clean_grads=True, compiled=lazy_g)]
        if lazy_g and self.config.pl_weight:
            phases.append(Phase("G_reg", "G", self.g_reg, every=self.G_reg_interval, **reg))
        phases.append(
            Phase("D_main", "D", self.d_main, after_step=self._ada_step, clean_grads=True,
                  compiled=lazy_d)
        )  # fmt: skip
        if lazy_d and self.config.r1_gamma:
            phases.append(Phase("D_reg", "D", self.d_reg, every=self.D_reg_interval, **reg))
        return phases

    def _ada_step(self) -> None:
        # The global batch: under DDP every rank calls this at the same iteration, and the
        # controller sums the signs over the ranks before it moves p.
        if self.ada is not None:
            self.ada.step(self.batch_size)

    def preview(self, dataset: Any, nets: Any, seed: int, grid_size: int) -> LatentGrid:
        """Fixed-latent grids drawn with the constant noise buffers, as the official training
        loop draws its snapshots (sampling for metrics keeps random noise, as the official
        metrics do; `gankit generate` defaults to constant noise, as the official generate.py)."""
        G = sampling_net(nets)
        return LatentGrid(G, grid_size, seed, G.img_resolution, {"noise_mode": "const"})

    @staticmethod
    def labels(batch: Batch, ctx: StepContext) -> torch.Tensor | None:
        """The minibatch's labels for a conditional G/D (None when unconditional)."""
        return batch_labels(batch, ctx, "stylegan2")

    def run_generator(
        self, ctx: StepContext, z: torch.Tensor, c: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """G(z) with style mixing: (images `[N, C, H, W]`, the ws that made them)."""
        G = ctx.G
        ws = G.mapping(z, c, update_emas=True)
        mean_over_processes(G.mapping.w_avg)  # each rank moved it with its own latents
        if self.config.style_mixing_prob > 0:
            cutoff = mixing_cutoff(ws.shape[1], self.config.style_mixing_prob, ctx.generator)
            z_mix = torch.randn(z.shape, device=z.device, dtype=z.dtype, generator=ctx.generator)
            ws = mix_styles(ws, G.mapping(z_mix, c, update_emas=False), cutoff)
        return G.synthesis(ws), ws

    def augment(self, img: torch.Tensor, ctx: StepContext) -> torch.Tensor:
        """`img` as D sees it: through ADA's pipe or DiffAugment, drawing from the loop's
        generator; unchanged with "noaug" (or a fixed p of 0). The augmentation runs in float32
        outside autocast: in bfloat16 its sampling coordinates and colour maps land pixels and
        colours visibly off."""
        if self.augment_pipe is not None:
            if self.augment_pipe.p.device != img.device:  # built before the nets moved
                self.augment_pipe.to(img.device)
            with ctx.full_precision():
                return self.augment_pipe(img, ctx.generator)
        if self.diffaug is not None:
            with ctx.full_precision():
                return self.diffaug(img.float(), ctx.generator)
        return img

    def run_discriminator(
        self, ctx: StepContext, img: torch.Tensor, c: torch.Tensor | None
    ) -> torch.Tensor:
        """D's logits for `img`, augmented (`augment`)."""
        return ctx.D(self.augment(img, ctx), c)

    def g_main(self, batch: Batch, ctx: StepContext) -> Logs:
        """softplus(-D(G(z))); with G_reg_interval None, plus the path-length loss."""
        c = self.labels(batch, ctx)
        z = ctx.latents(ctx.batch_size)
        img, _ = self.run_generator(ctx, z, c)
        fake_logits = self.run_discriminator(ctx, img, c)
        logs = {"loss": g_nonsaturating(fake_logits).float(), "fake": fake_logits.detach().mean()}
        if self.G_reg_interval is None and self.config.pl_weight:
            with ctx.full_precision():
                reg = self.path_length_loss(ctx, z, c, gain=1)
            logs = {**reg, "loss": logs["loss"] + reg["loss"], "fake": logs["fake"]}
        return logs

    def g_reg(self, batch: Batch, ctx: StepContext) -> Logs:
        """The path-length loss times the interval, on fresh latents."""
        c = self.labels(batch, ctx)
        z = ctx.latents(ctx.batch_size)
        return self.path_length_loss(ctx, z, c, gain=self.G_reg_interval or 1)

    def path_length_loss(
        self, ctx: StepContext, z: torch.Tensor, c: torch.Tensor | None, gain: int
    ) -> Logs:
        """pl_weight * (|J_w^T y| - pl_mean)^2 on the first N // pl_batch_shrink latents, times
        `gain`; pl_mean moves towards the minibatch's mean length first."""
        n = max(z.shape[0] // self.pl_batch_shrink, 1)
        img, ws = self.run_generator(ctx, z[:n], None if c is None else c[:n])
        noise = torch.randn(img.shape, device=img.device, generator=ctx.generator)
        noise = noise / math.sqrt(img.shape[2] * img.shape[3])
        lengths = path_lengths(img, ws, noise)
        if self.pl_mean.device != lengths.device:
            self.pl_mean = self.pl_mean.to(lengths.device)
        # As officially, the penalty's target depends on this minibatch too: the gradient flows
        # through this process's mean length, whose value becomes the processes' mean (a copy
        # is averaged: the collective works in place and must not touch the graph's tensor).
        local = lengths.mean()
        shared = mean_over_processes(local.detach().clone())
        pl_mean = self.pl_mean.lerp(local + (shared - local.detach()), self.pl_decay)
        self.pl_mean.copy_(pl_mean.detach())
        penalty = (lengths - pl_mean).square()
        # img * 0, as officially: every parameter that made img gets a (zero) gradient, so Adam
        # steps it (its second moment decays, its step count moves) as the official loop does.
        loss = (img[:, 0, 0, 0].float() * 0 + penalty * self.config.pl_weight).mean() * gain
        return {"loss": loss, "pl_penalty": penalty.detach().mean(), "pl_mean": pl_mean.detach()}

    def d_main(self, batch: Batch, ctx: StepContext) -> Logs:
        """softplus(D(G(z))) + softplus(-D(x)); with D_reg_interval None, plus R1."""
        real, c = batch["img"], self.labels(batch, ctx)
        with torch.no_grad():
            fake, _ = self.run_generator(ctx, ctx.latents(real.shape[0]), c)
        fake_logits = self.run_discriminator(ctx, fake, c)
        both = self.D_reg_interval is None and self.config.r1_gamma > 0
        real = real.detach().requires_grad_(both)
        real_logits = self.run_discriminator(ctx, real, c)
        self._observe(real_logits)
        loss = d_nonsaturating(real_logits, fake_logits).float()
        logs = {"real": real_logits.detach().mean(), "fake": fake_logits.detach().mean()}
        # E[sign(D(x))]: ADA's overfitting heuristic r_t, logged for every aug mode (the
        # official Loss/signs/real) so runs without ADA show D overfitting too.
        logs["real_sign"] = real_logits.detach().sign().mean()
        if self.augment_pipe is not None:  # a copy: the controller moves p in place later
            logs["aug_p"] = self.augment_pipe.p.detach().clone()
        if both:
            with ctx.full_precision():
                penalty = r1(real_logits, real)
            loss = loss + penalty.mean() * (self.config.r1_gamma / 2)
            logs["r1"] = penalty.detach().mean()
        return {"loss": loss, **logs}

    def d_reg(self, batch: Batch, ctx: StepContext) -> Logs:
        """R1 on the reals, |grad_x D(x)|^2 * gamma / 2, times the interval."""
        c = self.labels(batch, ctx)
        real = batch["img"].detach().float().requires_grad_(True)
        real_logits = self.run_discriminator(ctx, real, c)
        self._observe(real_logits)
        penalty = r1(real_logits, real)
        gain = self.D_reg_interval or 1
        # real_logits * 0, as officially: D's output bias, which R1 does not reach, gets a zero
        # gradient (not none), so Adam steps every parameter as the official loop does.
        loss = (real_logits.float() * 0 + penalty * (self.config.r1_gamma / 2)).mean() * gain
        return {"loss": loss, "r1": penalty.detach().mean()}

    def _observe(self, real_logits: torch.Tensor) -> None:
        if self.ada is not None:
            self.ada.observe(real_logits)

    # ------------------------------------------------------------------ state and log

    def state_dict(self) -> dict[str, Any]:
        """pl_mean, and ADA's p and sums when there is a pipe."""
        state: dict[str, Any] = {"pl_mean": self.pl_mean.detach().cpu().clone()}
        if self.ada is not None:
            state["ada"] = self.ada.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore `state_dict()`; a state without "ada" leaves p at its starting value."""
        device = self.pl_mean.device
        self.pl_mean = torch.as_tensor(state.get("pl_mean", 0.0), dtype=torch.float32).to(device)
        if self.ada is not None and "ada" in state:
            self.ada.load_state_dict(state["ada"])

    def describe(self) -> str:
        s = self.config
        g_lr, g_betas = lazy_adam_settings(self.lrs["G"], self.betas, self.G_reg_interval)
        d_lr, d_betas = lazy_adam_settings(self.lrs["D"], self.betas, self.D_reg_interval)
        return (
            f"stylegan2 ({s.name} configuration): non-saturating loss; R1 gamma {s.r1_gamma:g} "
            f"every {self._every(self.D_reg_interval)}; {self._describe_path_length()}; "
            f"style mixing {s.style_mixing_prob:g}; Adam lr G {self.lrs['G']:g} D "
            f"{self.lrs['D']:g} betas {self.betas} eps {self.eps:g}, lazy-corrected to G lr "
            f"{g_lr:.6g} betas ({g_betas[0]:.6g}, {g_betas[1]:.6g}), D lr {d_lr:.6g} betas "
            f"({d_betas[0]:.6g}, {d_betas[1]:.6g}); {self._describe_augmentation()}"
        )

    def _describe_path_length(self) -> str:
        if self.config.pl_weight == 0:
            return "no path-length regularisation"
        return (
            f"path length weight {self.config.pl_weight:g} (decay {self.pl_decay:g}, batch / "
            f"{self.pl_batch_shrink}) every {self._every(self.G_reg_interval)}"
        )

    def _describe_augmentation(self) -> str:
        if self.ada is not None and self.ada.adaptive:
            return (
                f"ADA {self.augpipe} from p {self.ada.p:g}, target {self.ada.target:g}, every "
                f"{self.ada.interval} steps, {self.ada.speed_kimg:g} kimg per unit of p"
            )
        if self.ada is not None:
            return f"augmentation {self.augpipe} at fixed p {self.ada.p:g}"
        if self.diffaug is not None:
            return f"DiffAugment {self.diffaug.policy}"
        return "no augmentation"

    @staticmethod
    def _every(interval: int | None) -> str:
        return "step (not lazy)" if interval is None else f"{interval} steps"

    def plan(self, total_nimg: int) -> str:
        """Every value of the resolved configuration, and the run's own batch."""
        s = self.config
        values = ", ".join(
            f"{k} {v:g}" if isinstance(v, float) else f"{k} {v}" for k, v in s.items()
        )
        return (
            f"stylegan2 configuration {s.name} at {self.nets['G'].img_resolution} px: {values}. "
            f"This run trains with batch {self.batch_size}; config.yaml holds every value it "
            "uses (--batch, --ema-kimg, --ema-rampup and --set model.arch.* override the "
            "configuration's)"
        )
