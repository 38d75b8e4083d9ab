"""A test-only family with two generators and two discriminators on unpaired A/B images: the
shape CycleGAN has (G_ab, G_ba, D_a, D_b, no latent, both generators averaged, a learning rate
constant then linearly decayed), in a few hundred parameters.

Importing this module registers the model `test-translator` and the recipe `test-two-domain`;
`tests/train/test_two_domain.py` trains them through the unchanged loop, and the scripts it runs
in subprocesses import it too. It is not CycleGAN (no image pool, no identity loss): it checks
that the loop, the checkpoints and the previews need no special case for such a family.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn

from gankit.recipes.base import Batch, Logs, Phase, Recipe, StepContext
from gankit.registry import MODELS, RECIPES


class Translator(nn.Module):
    """conv 3x3 -> ReLU -> conv 3x3 -> tanh, from `c_in` to `c_out` channels."""

    def __init__(self, c_in: int, c_out: int, width: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(c_in, width, 3, padding=1), nn.ReLU(), nn.Conv2d(width, c_out, 3, padding=1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.net(x))


class Critic(nn.Module):
    """A strided conv and a mean: one score per image."""

    def __init__(self, channels: int, width: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(channels, width, 3, stride=2, padding=1),
            nn.LeakyReLU(0.2),
            nn.Conv2d(width, 1, 3, padding=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).mean(dim=(1, 2, 3))


if "test-translator" not in MODELS:

    @MODELS.register("test-translator", kinds=("unpaired",), resolutions=(8,))
    def translator(
        img_resolution: int, img_channels: int, c_dim: int = 0, img_channels_b: int = 3,
        width: int = 4,
    ) -> nn.ModuleDict:  # fmt: skip
        """Two tiny translators and two tiny critics (test only)."""
        a, b = img_channels, img_channels_b
        return nn.ModuleDict(
            {"G_ab": Translator(a, b, width), "G_ba": Translator(b, a, width),
             "D_a": Critic(a, width), "D_b": Critic(b, width)}
        )  # fmt: skip


class TwoDomainRecipe(Recipe):
    """Least-squares adversarial + cycle L1 on both directions (test only)."""

    default_batch_size = 4
    default_kimg = 0.032
    default_model = "test-translator"

    def __init__(
        self, nets: nn.ModuleDict, batch_size: int, *, lr: float = 2e-3,
        cycle_weight: float = 10.0, decay_from: float = 0.5,
    ) -> None:  # fmt: skip
        super().__init__(nets, batch_size)
        self.lr, self.cycle_weight, self.decay_from = lr, cycle_weight, decay_from
        gens = itertools.chain(nets["G_ab"].parameters(), nets["G_ba"].parameters())
        critics = itertools.chain(nets["D_a"].parameters(), nets["D_b"].parameters())
        self._optimizers = {
            "G": torch.optim.Adam(gens, lr=lr, betas=(0.5, 0.999)),
            "D": torch.optim.Adam(critics, lr=lr, betas=(0.5, 0.999)),
        }

    def phases(self) -> list[Phase]:
        return [Phase("G_main", "G", self.g_step), Phase("D_main", "D", self.d_step)]

    def averaged(self) -> dict[str, str]:
        return {"G_ab_ema": "G_ab", "G_ba_ema": "G_ba"}

    def optimizer_settings(self, cur_nimg: int, total_nimg: int) -> dict[str, dict[str, float]]:
        """Constant, then linearly down to 0 over the rest of the run (CycleGAN's shape)."""
        start = self.decay_from * total_nimg
        left = 1.0 if cur_nimg < start else max(0.0, 1 - (cur_nimg - start) / (total_nimg - start))
        return {key: {"lr": self.lr * left} for key in ("G", "D")}

    def g_step(self, batch: Batch, ctx: StepContext) -> Logs:
        a, b = batch["img_a"], batch["img_b"]
        fake_b, fake_a = ctx.net("G_ab")(a), ctx.net("G_ba")(b)
        adversarial = ((ctx.net("D_b")(fake_b) - 1) ** 2).mean()
        adversarial = adversarial + ((ctx.net("D_a")(fake_a) - 1) ** 2).mean()
        cycle = (ctx.net("G_ba")(fake_b) - a).abs().mean() + (
            ctx.net("G_ab")(fake_a) - b
        ).abs().mean()
        return {"loss": adversarial + self.cycle_weight * cycle, "cycle": cycle.detach()}

    def d_step(self, batch: Batch, ctx: StepContext) -> Logs:
        a, b = batch["img_a"], batch["img_b"]
        with torch.no_grad():
            fake_b, fake_a = ctx.net("G_ab")(a), ctx.net("G_ba")(b)
        loss = 0.0
        for critic, real, fake in (("D_a", a, fake_a), ("D_b", b, fake_b)):
            D = ctx.net(critic)
            loss = loss + 0.5 * (((D(real) - 1) ** 2).mean() + (D(fake) ** 2).mean())
        return {"loss": loss}


if "test-two-domain" not in RECIPES:
    RECIPES.register("test-two-domain", kinds=("unpaired",))(TwoDomainRecipe)


def write_unpaired_folder(root: Path, count: int = 6, size: int = 8) -> Path:
    """root/trainA (grey) and root/trainB (colour) of `count` random `size` px PNGs each."""
    rng = np.random.default_rng(0)
    for domain, mode in (("trainA", "L"), ("trainB", "RGB")):
        folder = root / domain
        folder.mkdir(parents=True)
        shape = (size, size) if mode == "L" else (size, size, 3)
        for k in range(count):
            pixels = rng.integers(0, 256, shape, dtype=np.uint8)
            Image.fromarray(pixels, mode).save(folder / f"{k}.png")
    return root


def train_args(data: Path, out: Path, kimg: float = 0.032, **more: Any) -> list[str]:
    """`gankit train` arguments of a tiny run of this family."""
    extra = [f"--{k.replace('_', '-')}={v}" for k, v in more.items()]
    return [
        "train", "test-two-domain", "--data", str(data), "--out", str(out), "--kimg", str(kimg),
        "--device", "cpu", "--threads", "1", "--no-progress", "--set", "train.snapshot_kimg=0.016",
        "--set", "train.sample_kimg=0.008", *extra,
    ]  # fmt: skip
