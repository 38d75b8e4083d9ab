"""StyleGAN (v1) training recipe: Karras et al., "A Style-Based Generator Architecture for
Generative Adversarial Networks", CVPR 2019, arXiv:1812.04948, trained as the official
TensorFlow code trains it (NVlabs/stylegan `train.py`, `training/training_loop.py`,
`training/loss.py`, `G_style` in `training/networks_stylegan.py`).

Official values, the defaults here:
- Progressive growing from 8x8: 600 kimg of stable training per resolution and 600 kimg of
  fade-in before each next one, the reals faded with the same alpha; Adam state reset at every
  change of phase (`reset_opt_for_new_lod`); the growth machinery is ProGAN's
  (`gankit.recipes.progan`), so `grown_kimg`, `phase_kimg` and `plan()` work the same way.
- The 1-GPU minibatch table {4: 128, 8: 128, 16: 128, 32: 64, 64: 32, 128: 16, 256: 8,
  512: 4} (4 at 1024) and the learning rate 0.001, raised to 0.0015 at 128, 0.002 at 256 and
  0.003 at 512 and 1024 px, for G and D alike.
- Non-saturating logistic loss, R1 with gamma 10 on the reals at every D step; Adam (0, 0.99),
  eps 1e-8; one D step, then one G step.
- Style-mixing regularisation with probability 0.9: a second latent's ws from a crossover drawn
  uniformly in [1, active) where `active` = the synthesis layers of the current resolution.
- `w_avg` moves (beta 0.995) on every training run of G; G_ema with a 10 kimg half-life and no
  ramp-up.

The paper's Table 1 rows are presets (`ladder`, default "F"), each the official train.py line:
(A) the ProGAN baseline: no blur, WGAN-GP (lambda 10) with ProGAN's drift term 0.001;
(B) + tuning: the [1, 2, 1] blur on every up/downsampling ("bilinear"), logistic loss with R1;
(C) + an 8-layer mapping network and AdaIN styles (instance norm instead of pixel norm);
(D) + the learned constant input instead of the dense input of w;
(E) + noise inputs; (F) + mixing regularisation (0.9). `LADDER` holds each row's network flags
and training values; `--set recipe.args.ladder=C` chooses one, and any model.arch flag or recipe
argument given explicitly overrides the row's.

Deviations from the official code, and why:
- Row A is ProGAN's networks and loss on StyleGAN's schedule and learning rates (the paper's A
  ran the ProGAN code with its own schedule); the ladder experiment gives every row one budget.
- "Longer training", part of the paper's B, is the run's `--kimg`, the same for every row.
- The schedule is evaluated at every iteration (officially every 4 minibatches), and the
  crossover index and coin are drawn in StyleGAN2-ADA's order (index, then coin), from the
  loop's checkpointed generator, so a resumed run continues exactly.
- The fakes' labels are the real minibatch's (officially drawn from the dataset at random for
  G's step): the same distribution.
- The R1 penalty runs in float32 under mixed precision (gankit's rule for penalties).
"""

from __future__ import annotations

from typing import Any, Literal, get_args

import torch
from torch import nn

from gankit.errors import ConfigError
from gankit.losses import (
    d_nonsaturating,
    d_wasserstein,
    drift,
    g_nonsaturating,
    g_wasserstein,
    r1,
    wgan_gp,
)
from gankit.losses.penalties import interpolate
from gankit.recipes.base import Batch, Logs, StepContext
from gankit.recipes.progan import ProGANRecipe, _schedule
from gankit.recipes.stylegan2 import (
    batch_labels,
    mean_over_processes,
    mix_styles,
    mixing_cutoff,
)
from gankit.registry import RECIPES

LadderRow = Literal["A", "B", "C", "D", "E", "F"]
Loss = Literal["logistic", "wgangp"]

#: The official train.py's 1-GPU minibatch per resolution (4 above 512 px).
OFFICIAL_BATCH_SIZES = {4: 128, 8: 128, 16: 128, 32: 64, 64: 32, 128: 16, 256: 8, 512: 4}
#: The official learning rate per resolution (0.001 elsewhere), G and D alike.
OFFICIAL_LRS = {128: 0.0015, 256: 0.002, 512: 0.003, 1024: 0.003}

_PROGAN_NET = {
    "use_styles": False,
    "const_input": False,
    "use_noise": False,
    "use_pixel_norm": True,
    "use_instance_norm": False,
    "mapping_layers": 0,
}
_STYLED = {"use_styles": True, "use_pixel_norm": False, "use_instance_norm": True,
           "mapping_layers": 8, "blur": True}  # fmt: skip
#: Table 1 of the paper, row by row: (model arch flags, recipe values).
LADDER: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "A": ({**_PROGAN_NET, "blur": False}, {"loss": "wgangp", "style_mixing_prob": 0.0}),
    "B": ({**_PROGAN_NET, "blur": True}, {"loss": "logistic", "style_mixing_prob": 0.0}),
    "C": ({**_STYLED, "const_input": False, "use_noise": False},
          {"loss": "logistic", "style_mixing_prob": 0.0}),
    "D": ({**_STYLED, "const_input": True, "use_noise": False},
          {"loss": "logistic", "style_mixing_prob": 0.0}),
    "E": ({**_STYLED, "const_input": True, "use_noise": True},
          {"loss": "logistic", "style_mixing_prob": 0.0}),
    "F": ({**_STYLED, "const_input": True, "use_noise": True},
          {"loss": "logistic", "style_mixing_prob": 0.9}),
}  # fmt: skip


def ladder_row(name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The (arch flags, recipe values) of Table 1 row `name`, with a clear error for others."""
    if name not in LADDER:
        raise ConfigError(
            f"recipe.args.ladder={name!r}: choose one of {', '.join(LADDER)} (the rows of the "
            "StyleGAN paper's Table 1; F is the full StyleGAN)"
        )
    return LADDER[name]


@RECIPES.register("stylegan", kinds=("images",))
class StyleGANRecipe(ProGANRecipe):
    """StyleGAN (v1) as the official code trains it: progressive growing from 8x8, logistic
    loss with R1, style mixing; `ladder` picks a row of the paper's Table 1."""

    default_model = "stylegan"
    default_batch_size = 4  # the official table's value above 512 px
    default_ema_kimg = 10.0
    default_ema_rampup = 0.0

    def __init__(
        self,
        nets: nn.ModuleDict,
        batch_size: int,
        *,
        ladder: LadderRow = "F",
        cond: bool = False,
        loss: Loss | None = None,
        style_mixing_prob: float | None = None,
        r1_gamma: float = 10.0,
        lr: float = 0.001,
        lr_per_resolution: dict[int, float] | None = None,
        betas: tuple[float, float] = (0.0, 0.99),
        eps: float = 1e-8,
        gp_weight: float = 10.0,
        drift_weight: float = 1e-3,
        fade_kimg: float = 600.0,
        stable_kimg: float = 600.0,
        start_resolution: int = 8,
        batch_sizes: dict[int, int] | None = None,
        phase_kimg: dict[int, tuple[float, float]] | None = None,
        grown_kimg: float | None = None,
        reset_optimizer: bool = True,
    ) -> None:
        """`ladder` fills `loss` and `style_mixing_prob` where they are None; `batch_sizes`
        None is the official 1-GPU table (`--batch` is then the minibatch above 512 px only:
        pass `batch_sizes: {}` to use it at every resolution); `lr_per_resolution` None is the
        official table over `lr`."""
        G = nets["G"]
        row = ladder_row(ladder)[1]
        self.loss = row["loss"] if loss is None else loss
        self.style_mixing_prob = (
            row["style_mixing_prob"] if style_mixing_prob is None else style_mixing_prob
        )
        self._check(self.loss, self.style_mixing_prob, r1_gamma, lr)
        super().__init__(
            nets, batch_size, lr=lr, betas=betas, eps=eps, gp_weight=gp_weight,
            drift_weight=drift_weight, fade_kimg=fade_kimg, stable_kimg=stable_kimg,
            start_resolution=min(start_resolution, G.img_resolution),
            batch_sizes=OFFICIAL_BATCH_SIZES if batch_sizes is None else batch_sizes,
            phase_kimg=phase_kimg, reset_optimizer=reset_optimizer, grown_kimg=grown_kimg,
        )  # fmt: skip
        self.ladder, self.r1_gamma, self.base_lr = ladder, r1_gamma, lr
        self.lr_table = OFFICIAL_LRS if lr_per_resolution is None else dict(lr_per_resolution)

    @staticmethod
    def _check(loss: str, mixing: float, r1_gamma: float, lr: float) -> None:
        if loss not in get_args(Loss):
            raise ConfigError(f"recipe.args.loss={loss!r}: choose logistic or wgangp")
        if not 0 <= mixing <= 1:
            raise ConfigError(f"recipe.args.style_mixing_prob must be in [0, 1]; got {mixing}")
        if r1_gamma < 0 or lr <= 0:
            raise ConfigError(
                f"recipe.args: r1_gamma must be >= 0 and lr > 0; got {r1_gamma} and {lr}"
            )

    # ------------------------------------------------------------- defaults for the run

    @classmethod
    def resolve_args(cls, given: dict[str, Any], facts: Any) -> dict[str, Any]:
        """The constructor's defaults, `given` over them, and the ladder row's `loss` and
        `style_mixing_prob` and the official batch and learning-rate tables written in where
        not given (so config.yaml holds the values used)."""
        args = super().resolve_args(given, facts)
        row = ladder_row(args.get("ladder", "F"))[1]
        tables = {"batch_sizes": OFFICIAL_BATCH_SIZES, "lr_per_resolution": OFFICIAL_LRS}
        values = {**row, **tables}
        return {**args, **{k: dict(v) if isinstance(v, dict) else v for k, v in values.items()
                           if args.get(k) is None}}  # fmt: skip

    @classmethod
    def is_conditional(cls, args: dict[str, Any]) -> bool:
        """`cond`: train on the data's class labels (mapping embedding, label-switched D)."""
        return bool(args.get("cond", False))

    @classmethod
    def model_defaults(cls, args: dict[str, Any], facts: Any) -> tuple[str, dict[str, Any]]:
        """The ladder row's network flags."""
        return cls.default_model, dict(ladder_row(args.get("ladder", "F"))[0])

    @classmethod
    def default_length_kimg(cls, args: dict[str, Any], facts: Any, batch_size: int) -> float:
        """Fully grown: every phase of every resolution up to the data's."""
        from gankit.models.progan import check_resolution

        resolutions = check_resolution(facts.resolution, "stylegan")
        table = args.get("batch_sizes")
        schedule = _schedule(
            resolutions, batch_size, fade_kimg=args.get("fade_kimg", 600.0),
            stable_kimg=args.get("stable_kimg", 600.0),
            start_resolution=min(args.get("start_resolution", 8), facts.resolution),
            batch_sizes=OFFICIAL_BATCH_SIZES if table is None else table,
            phase_kimg=args.get("phase_kimg"), grown_kimg=args.get("grown_kimg"),
        )  # fmt: skip
        return schedule.grown_nimg / 1000

    def optimizer_settings(self, cur_nimg: int, total_nimg: int) -> dict[str, dict[str, float]]:
        """The learning rate of the current resolution, for G and D."""
        lr = self.lr_table.get(self.schedule(cur_nimg).resolution, self.base_lr)
        return {"G": {"lr": lr}, "D": {"lr": lr}}

    # ------------------------------------------------------------------ phases

    @staticmethod
    def labels(batch: Batch, ctx: StepContext) -> torch.Tensor | None:
        """The minibatch's labels for a conditional G/D (None when unconditional)."""
        return batch_labels(batch, ctx, "stylegan")

    def run_generator(self, ctx: StepContext, z: torch.Tensor, c: torch.Tensor | None) -> Any:
        """G(z) at the current stage with style mixing among the active layers; moves w_avg
        and records the stage in G (its `lod`)."""
        G, stage = ctx.G, ctx.stage
        G.synthesis.set_stage(stage.resolution, stage.alpha)
        ws = G.mapping(z, c, update_emas=True)
        mean_over_processes(G.mapping.w_avg)  # each rank moved it with its own latents
        if self.style_mixing_prob > 0 and G.num_ws > 1:
            active = 2 * (G.synthesis.level(stage.resolution) + 1)
            cutoff = mixing_cutoff(active, self.style_mixing_prob, ctx.generator)
            z_mix = torch.randn(z.shape, device=z.device, dtype=z.dtype, generator=ctx.generator)
            ws = mix_styles(ws, G.mapping(z_mix, c), cutoff)
        return G.synthesis(ws, stage.resolution, stage.alpha)

    def d_step(self, batch: Batch, ctx: StepContext) -> Logs:
        """Logistic: softplus(D(G(z))) + softplus(-D(x)) + gamma / 2 * |grad_x D(x)|^2;
        wgangp: ProGAN's E[D(G(z))] - E[D(x)] + lambda * GP + drift * E[D(x)^2]."""
        real, c, alpha = batch["img"], self.labels(batch, ctx), ctx.stage.alpha
        with torch.no_grad():
            fake = self.run_generator(ctx, ctx.latents(real.shape[0]), c)
        if self.loss == "wgangp":
            return self._wgan_d_loss(real, fake, c, ctx)
        real = real.detach().requires_grad_(self.r1_gamma > 0)
        real_logits = ctx.D(real, c, alpha=alpha)
        fake_logits = ctx.D(fake, c, alpha=alpha)
        loss = d_nonsaturating(real_logits, fake_logits).float()
        logs = {"real": real_logits.detach().mean(), "fake": fake_logits.detach().mean()}
        if self.r1_gamma > 0:
            with ctx.full_precision():
                penalty = r1(real_logits, real)
            loss = loss + penalty.mean() * (self.r1_gamma / 2)
            logs["r1"] = penalty.detach().mean()
        return {"loss": loss, **logs}

    def _wgan_d_loss(
        self, real: torch.Tensor, fake: torch.Tensor, c: torch.Tensor | None, ctx: StepContext
    ) -> Logs:
        alpha = ctx.stage.alpha
        real_logits = ctx.D(real, c, alpha=alpha)
        loss = d_wasserstein(real_logits, ctx.D(fake, c, alpha=alpha))
        with ctx.full_precision():
            mixed = interpolate(real, fake, generator=ctx.generator)
            gp = wgan_gp(ctx.D(mixed, c, alpha=alpha), mixed)
        drift_term = self.drift_weight * drift(real_logits).mean()
        return {
            "loss": loss.float() + self.gp_weight * gp.mean() + drift_term,
            "wdist": -loss.detach(),
            "gp": gp.detach().mean(),
        }

    def g_step(self, batch: Batch, ctx: StepContext) -> Logs:
        """Logistic: softplus(-D(G(z))); wgangp: -E[D(G(z))]."""
        c = self.labels(batch, ctx)
        fake = self.run_generator(ctx, ctx.latents(), c)
        logits = ctx.D(fake, c, alpha=ctx.stage.alpha)
        if self.loss == "wgangp":
            return {"loss": g_wasserstein(logits)}
        return {"loss": g_nonsaturating(logits).float(), "fake": logits.detach().mean()}

    # ------------------------------------------------------------------ log

    def describe(self) -> str:
        s = self.schedule_
        loss = (
            f"WGAN-GP (lambda={self.gp_weight:g}) + drift {self.drift_weight:g}"
            if self.loss == "wgangp"
            else f"logistic non-saturating + R1 gamma {self.r1_gamma:g}"
        )
        lrs = ", ".join(f"{r}: {v:g}" for r, v in sorted(self.lr_table.items()))
        return (
            f"stylegan (Table 1 row {self.ladder}): {loss}; style mixing "
            f"{self.style_mixing_prob:g}; Adam lr {self.base_lr:g} (per resolution: {lrs or '-'}); "
            f"resolutions {list(s.resolutions)}; fade {s.fade_nimg / 1000:g} kimg + stable "
            f"{s.stable_nimg / 1000:g} kimg per resolution{self._overrides()}; fully grown at "
            f"{s.grown_nimg / 1000:g} kimg"
        )
