"""ProGAN training recipe: Karras et al., "Progressive Growing of GANs", ICLR 2018, arXiv:1710.10196.

Paper values (section 3, appendix A.1): WGAN-GP loss with lambda = 10 and the drift term
0.001 * E[D(real)^2]; one D step per G step; Adam lr 0.001, betas (0, 0.99), eps 1e-8; per resolution
a fade-in and a stable phase of 800k real images each; minibatch 16 up to 128x128, then 14, 6, 3 at
256, 512, 1024; optimizer state reset at each phase change (the official `reset_opt_for_new_lod`);
G_ema with beta 0.999 per step, here as a 10 kimg half-life (0.5 ** (16 / 10000) = 0.99889).
`phase_kimg` (not in the paper) overrides the fade/stable lengths per resolution, and
`grown_kimg` (not in the paper) scales every phase by one factor so that the networks are fully
grown at that kimg: a run much shorter than the paper's (a CPU run on a small folder) then still
passes through every resolution. The run log's first lines say which resolution a run reaches.

Optional, off by default: Gaussian noise on D's inputs whose strength adapts to D's confidence
(`d_input_noise`, the early-ProGAN trick in source text 000: strength 0.2 * max(0, d - 0.5)^2, d an
exponential average (0.9) of sigmoid(D(real))).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from gankit.errors import ConfigError
from gankit.losses import d_wasserstein, drift, g_wasserstein, wgan_gp
from gankit.losses.penalties import interpolate
from gankit.recipes.base import Batch, Logs, Phase, Recipe, Stage, StepContext, fused_adam
from gankit.recipes.schedule import ProgressiveSchedule, downsample_to, fade_reals
from gankit.registry import RECIPES

PAPER_BATCH_SIZES = {256: 14, 512: 6, 1024: 3}


def _phase_table(
    phase_kimg: dict[int, tuple[float, float]], resolutions: list[int]
) -> tuple[tuple[int, int, int], ...]:
    """`{resolution: (fade_kimg, stable_kimg)}` -> sorted (resolution, fade_nimg, stable_nimg)."""
    table = []
    for res, lengths in sorted(phase_kimg.items()):
        if res not in resolutions or len(lengths) != 2 or min(lengths) < 0 or lengths[1] == 0:
            raise ConfigError(
                f"recipe.args.phase_kimg[{res}]={lengths!r}: keys must be resolutions of the "
                f"model ({resolutions}) and values [fade_kimg >= 0, stable_kimg > 0]"
            )
        table.append((res, round(lengths[0] * 1000), round(lengths[1] * 1000)))
    return tuple(table)


def _schedule(
    resolutions: list[int], batch_size: int, *, fade_kimg: float = 800.0,
    stable_kimg: float = 800.0, start_resolution: int = 4,
    batch_sizes: dict[int, int] | None = None,
    phase_kimg: dict[int, tuple[float, float]] | None = None, grown_kimg: float | None = None,
) -> ProgressiveSchedule:  # fmt: skip
    """The growth schedule of the recipe's arguments for a model of `resolutions`."""
    table = PAPER_BATCH_SIZES if batch_sizes is None else batch_sizes
    schedule = ProgressiveSchedule(
        resolutions=tuple(r for r in resolutions if r >= start_resolution),
        fade_nimg=round(fade_kimg * 1000),
        stable_nimg=round(stable_kimg * 1000),
        batch_size=batch_size,
        batch_sizes=tuple(sorted(table.items())),
        phase_nimg=_phase_table(phase_kimg or {}, list(resolutions)),
    )
    if grown_kimg is None:
        return schedule
    if grown_kimg <= 0:
        raise ConfigError(f"recipe.args.grown_kimg must be positive; got {grown_kimg}")
    return schedule.fitted(round(grown_kimg * 1000))


@RECIPES.register("progan", kinds=("images",))
class ProGANRecipe(Recipe):
    """Progressive growing with WGAN-GP + drift (Karras et al. 2018)."""

    default_batch_size = 16
    default_ema_kimg = 10.0
    default_model = "progan"

    def __init__(
        self,
        nets: nn.ModuleDict,
        batch_size: int,
        *,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.0, 0.99),
        eps: float = 1e-8,
        gp_weight: float = 10.0,
        gp_target: float = 1.0,
        drift_weight: float = 1e-3,
        fade_kimg: float = 800.0,
        stable_kimg: float = 800.0,
        start_resolution: int = 4,
        batch_sizes: dict[int, int] | None = None,
        phase_kimg: dict[int, tuple[float, float]] | None = None,
        reset_optimizer: bool = True,
        d_input_noise: bool = False,
        grown_kimg: float | None = None,
    ) -> None:
        super().__init__(nets, batch_size)
        G, D = nets["G"], nets["D"]
        if start_resolution not in G.resolutions:
            raise ConfigError(
                f"recipe.args.start_resolution={start_resolution} is not one of {G.resolutions}"
            )
        if fade_kimg < 0 or stable_kimg <= 0:
            raise ConfigError(
                f"progan needs fade_kimg >= 0 and stable_kimg > 0; got {fade_kimg} and {stable_kimg}"
            )
        self.schedule_ = _schedule(
            G.resolutions, batch_size, fade_kimg=fade_kimg, stable_kimg=stable_kimg,
            start_resolution=start_resolution, batch_sizes=batch_sizes, phase_kimg=phase_kimg,
            grown_kimg=grown_kimg,
        )  # fmt: skip
        self.grown_kimg = grown_kimg
        self.default_kimg = self.schedule_.grown_nimg / 1000
        self.gp_weight, self.gp_target, self.drift_weight = gp_weight, gp_target, drift_weight
        self.reset_optimizer = reset_optimizer
        self.d_input_noise = d_input_noise
        self.d_confidence = 0.0  # EMA of sigmoid(D(real)) for the adaptive input noise
        adam_args = dict(lr=lr, betas=tuple(betas), eps=eps)
        self._optimizers = {
            "G": fused_adam(G.parameters(), **adam_args),
            "D": fused_adam(D.parameters(), **adam_args),
        }

    @classmethod
    def default_length_kimg(cls, args: dict[str, Any], facts: Any, batch_size: int) -> float:
        """Fully grown: every phase of every resolution up to the data's (the paper's length)."""
        from gankit.models.progan import check_resolution

        names = ("fade_kimg", "stable_kimg", "start_resolution", "batch_sizes", "phase_kimg",
                 "grown_kimg")  # fmt: skip
        chosen = {k: args[k] for k in names if k in args}
        return _schedule(check_resolution(facts.resolution), batch_size, **chosen).grown_nimg / 1000

    def phases(self) -> list[Phase]:
        return [Phase("D_main", "D", self.d_step), Phase("G_main", "G", self.g_step)]

    def schedule(self, cur_nimg: int) -> Stage:
        return self.schedule_.stage(cur_nimg)

    def on_stage_change(self, old: Stage | None, new: Stage) -> None:
        if self.reset_optimizer and old is not None:
            for opt in self._optimizers.values():
                opt.state.clear()

    def generator_kwargs(self, stage: Stage) -> dict[str, Any]:
        return {"resolution": stage.resolution, "alpha": stage.alpha}

    def prepare_reals(self, img: torch.Tensor, stage: Stage) -> torch.Tensor:
        return fade_reals(downsample_to(img, stage.resolution), stage.alpha)

    def d_step(self, batch: Batch, ctx: StepContext) -> Logs:
        """E[D(fake)] - E[D(real)] + gp_weight * GP + drift_weight * E[D(real)^2]."""
        alpha = ctx.stage.alpha
        real = batch["img"]
        with torch.no_grad():
            fake = ctx.G(ctx.latents(real.shape[0]), **self.generator_kwargs(ctx.stage))
        real_in, fake_in = self._noisy(real, ctx), self._noisy(fake, ctx)
        real_logits = ctx.D(real_in, alpha=alpha)
        fake_logits = ctx.D(fake_in, alpha=alpha)
        loss = d_wasserstein(real_logits, fake_logits)
        with ctx.full_precision():
            mixed = interpolate(real_in, fake_in, generator=ctx.generator)
            gp = wgan_gp(ctx.D(mixed, alpha=alpha), mixed, target=self.gp_target)
        # ProGAN scales the penalty by 1 / target^2 so its strength is independent of the target.
        gp_term = self.gp_weight / self.gp_target**2 * gp.mean()
        drift_term = self.drift_weight * drift(real_logits).mean()
        self._track_confidence(real_logits)
        return {
            "loss": loss.float() + gp_term + drift_term,
            "wdist": -loss.detach(),
            "gp": gp.detach().mean(),
            "drift": drift_term.detach(),
        }

    def g_step(self, batch: Batch, ctx: StepContext) -> Logs:
        """-E[D(G(z))]."""
        fake = ctx.G(ctx.latents(), **self.generator_kwargs(ctx.stage))
        loss = g_wasserstein(ctx.D(self._noisy(fake, ctx), alpha=ctx.stage.alpha))
        return {"loss": loss}

    def _noisy(self, img: torch.Tensor, ctx: StepContext) -> torch.Tensor:
        if not self.d_input_noise:
            return img
        strength = 0.2 * max(0.0, self.d_confidence - 0.5) ** 2
        if strength == 0.0:
            return img
        return img + strength * torch.randn(
            img.shape, device=img.device, dtype=img.dtype, generator=ctx.generator
        )

    def _track_confidence(self, real_logits: torch.Tensor) -> None:
        if self.d_input_noise:
            mean_prob = torch.sigmoid(real_logits.detach().float()).mean().item()
            self.d_confidence = 0.9 * self.d_confidence + 0.1 * mean_prob

    def state_dict(self) -> dict[str, Any]:
        return {"d_confidence": self.d_confidence}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.d_confidence = float(state.get("d_confidence", 0.0))

    def describe(self) -> str:
        s = self.schedule_
        return (
            f"progan: WGAN-GP (lambda={self.gp_weight}) + drift {self.drift_weight}; "
            f"resolutions {list(s.resolutions)}; fade {s.fade_nimg / 1000:g} kimg + stable "
            f"{s.stable_nimg / 1000:g} kimg per resolution{self._overrides()}; fully grown at "
            f"{s.grown_nimg / 1000:g} kimg"
        )

    def plan(self, total_nimg: int) -> str:
        """Which resolution the run reaches, when each one starts, and how to fit the growth
        into a run too short for it (`grown_kimg`)."""
        s = self.schedule_
        starts = ", ".join(f"{r}x{r} at {n / 1000:g}" for r, n in s.starts())
        final = s.stage(total_nimg)
        kimg, top = total_nimg / 1000, s.resolutions[-1]
        text = (
            f"growth (kimg): {starts}; fully grown at {s.grown_nimg / 1000:g}. This run of "
            f"{kimg:g} kimg ends at {final.resolution}x{final.resolution}"
        )
        if final.resolution == top and not final.fading:
            return text
        return (
            f"{text}, before {top}x{top}: to grow to {top}x{top} within the run, add --set "
            f"recipe.args.grown_kimg={kimg:g} (every phase scaled to fit)"
        )

    def _overrides(self) -> str:
        table = self.schedule_.phase_nimg
        if not table:
            return ""
        items = ", ".join(f"{r}: {f / 1000:g}+{s / 1000:g}" for r, f, s in table)
        return f" (except {items})"
