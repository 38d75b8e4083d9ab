"""CycleGAN (Zhu et al., ICCV 2017, arXiv:1703.10593): unpaired image-to-image translation, as
the official junyanz/pytorch-CycleGAN-and-pix2pix `cycle_gan_model.py` and `train.py` train it.

One iteration, as the official `optimize_parameters`:
- G step (G_ab and G_ba, one Adam): fake_b = G_ab(a), fake_a = G_ba(b); the adversarial loss of
  each fake under its domain's D (least squares: (D - 1)^2 over the score map; `gan_mode:
  vanilla` for the cross-entropy one), the cycle L1 |G_ba(fake_b) - a| x `lambda_A` and
  |G_ab(fake_a) - b| x `lambda_B`, and the identity L1 |G_ab(b) - b| x `lambda_B` x
  `lambda_identity` and |G_ba(a) - a| x `lambda_A` x `lambda_identity`.
- D step (D_a and D_b, one Adam): each D's loss 0.5 x (its loss on its domain's reals + its loss
  on a fake drawn from its image pool). The pool holds `pool_size` (50) past fakes: until full, a
  fake is stored and used; then with probability 1/2 a stored fake (uniform) is used and replaced
  by the new one, else the new one is used (the official `ImagePool.query`).
- Adam lr 2e-4, betas (0.5, 0.999), batch 1 (per process under torchrun); the learning rate constant for `n_epochs` (100)
  epochs, then linearly down to 0 over `n_epochs_decay` (100). gankit counts images shown: the
  default length is (n_epochs + n_epochs_decay) epochs of the larger domain (the official epoch),
  the decay starts at n_epochs / (n_epochs + n_epochs_decay) of the run, so a longer --kimg
  stretches both parts.
- The official preprocessing `resize_and_crop`: each real is resized to `load_size` (default the
  resolution x 286/256, i.e. 286 for 256) with bicubic interpolation, cropped at a random place
  to the resolution and flipped left-right with probability 1/2 (`flip`), each image on its own,
  from the loop's seeded stream. `preprocess: none` (or `resize`) trains on the images as
  prepared (flips only). The official `scale_width` options keep non-square images, which gankit
  prepares square; `gankit translate --resolution` is the test-time `scale_width`.
- `lambda_identity` defaults to 0.5 where the domains have the same channel count and to 0 where
  they differ (grey A, RGB B), where the official code refuses to start.

Deliberate deviations:
- The learning rate falls at every iteration, not once per epoch (the official LambdaLR steps at
  epoch ends), so the schedule is a function of images shown alone and holds for any --kimg.
- The resize-and-crop starts from the prepared images (`gankit.data.unpaired`: centre-cropped
  square, Lanczos-resized to the resolution) rather than from the files, and resizes on the
  device (PyTorch's antialiased bicubic, the kernel of PIL's BICUBIC); for the published 256 px
  datasets the prepared images are the files.
- With instance norm (per-image statistics), the two passes of a generator over different
  inputs (G_ab on a and, for the identity loss, on b) run as one batch, and each D judges its
  reals and its fakes in one batch: the same numbers, fewer and larger convolutions. Batch norm
  turns this off, since there the batch changes the result.
- No G_ema (the official code keeps none); previews and translations use G_ab and G_ba.
"""

from __future__ import annotations

import collections
import itertools
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from gankit.errors import ConfigError
from gankit.recipes.base import Batch, Logs, Phase, Recipe, StepContext, fused_adam
from gankit.registry import RECIPES

#: The official load size over crop size: 286 / 256.
LOAD_SCALE = 286 / 256
GAN_MODES = ("lsgan", "vanilla")
#: `resize` and `none` are one thing here: the images are prepared at the resolution already.
PREPROCESS = ("resize_and_crop", "resize", "none")


def lr_multiplier(cur_nimg: int, total_nimg: int, decay_fraction: float) -> float:
    """1 for the first (1 - decay_fraction) of the run, then linearly down to 0 at its end."""
    start = total_nimg * (1.0 - decay_fraction)
    if cur_nimg < start or total_nimg <= start:
        return 1.0
    return max(0.0, 1.0 - (cur_nimg - start) / (total_nimg - start))


class ImagePool:
    """The official image buffer of past fakes, with a seeded generator instead of `random`."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.images: list[torch.Tensor] = []

    def query(self, fakes: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """What D sees for these fakes (see the module docstring); stores them as it goes."""
        if self.size == 0:
            return fakes
        fakes = fakes.detach()
        # Both draws for every image, used or not: the stream advances the same way each time.
        coins = torch.rand(len(fakes), generator=generator, device=generator.device).tolist()
        slots = torch.rand(len(fakes), generator=generator, device=generator.device).tolist()
        out = []
        for fake, coin, slot in zip(fakes, coins, slots, strict=True):
            if len(self.images) < self.size:
                self.images.append(fake.clone())
                out.append(fake)
            elif coin > 0.5:
                k = min(int(slot * self.size), self.size - 1)
                out.append(self.images[k])
                self.images[k] = fake.clone()
            else:
                out.append(fake)
        return torch.stack(out)

    def state_dict(self) -> torch.Tensor:
        """The stored fakes as one CPU tensor (empty before the first query)."""
        if not self.images:
            return torch.empty(0)
        return torch.stack(self.images).cpu()

    def load_state_dict(self, images: torch.Tensor, device: torch.device) -> None:
        self.images = list(images.to(device).unbind(0)) if images.numel() else []


def random_resized_crops(
    img: torch.Tensor, load_size: int, flip: bool, generator: torch.Generator
) -> torch.Tensor:
    """Each image resized to `load_size`, cropped back to its size at a random place and flipped
    with probability 1/2 (the official `resize_and_crop` transform with flips)."""
    n, _, size, _ = img.shape
    draws = torch.rand(3, n, generator=generator, device=generator.device)
    if load_size != size:
        big = F.interpolate(img.float(), size=(load_size, load_size), mode="bicubic",
                            align_corners=False, antialias=True).to(img.dtype)  # fmt: skip
        offsets = (draws[:2] * (load_size - size + 1)).long().clamp_(max=load_size - size)
        ys, xs = offsets.tolist()
        img = torch.stack([big[i, :, y : y + size, x : x + size] for i, (y, x) in
                           enumerate(zip(ys, xs, strict=True))])  # fmt: skip
    if flip:
        mirrored = (draws[2] < 0.5).to(img.device)[:, None, None, None]
        img = torch.where(mirrored, img.flip(3), img)
    return img


def gan_loss(scores: torch.Tensor, real: bool, mode: str) -> torch.Tensor:
    """The official `GANLoss`: MSE to 1 or 0 (lsgan) or BCE with logits (vanilla), mean over the
    whole score map."""
    if mode == "lsgan":
        return (scores - (1.0 if real else 0.0)).square().mean()
    target = torch.ones_like(scores) if real else torch.zeros_like(scores)
    return F.binary_cross_entropy_with_logits(scores, target)


@RECIPES.register("cyclegan", kinds=("unpaired",))
class CycleGANRecipe(Recipe):
    """CycleGAN: adversarial + cycle + identity losses, image pools, constant-then-linear lr."""

    default_batch_size = 1
    default_kimg = 200.0
    default_ema_kimg = 0.0
    default_ema_rampup = 0.0
    default_model = "cyclegan"

    def __init__(
        self,
        nets: nn.ModuleDict,
        batch_size: int,
        *,
        gan_mode: Literal["lsgan", "vanilla"] = "lsgan",
        lambda_A: float = 10.0,
        lambda_B: float = 10.0,
        lambda_identity: float | None = None,
        pool_size: int = 50,
        lr: float = 2e-4,
        beta1: float = 0.5,
        n_epochs: float = 100.0,
        n_epochs_decay: float = 100.0,
        preprocess: Literal["resize_and_crop", "resize", "none"] = "resize_and_crop",
        load_size: int | None = None,
        flip: bool = True,
    ) -> None:
        super().__init__(nets, batch_size)
        self.gan_mode, self.lr = gan_mode, lr
        self.lambda_A, self.lambda_B = lambda_A, lambda_B
        same_channels = nets["G_ab"].img_channels == nets["G_ba"].img_channels
        self.lambda_identity = (0.5 if same_channels else 0.0) if lambda_identity is None else (
            lambda_identity
        )  # fmt: skip
        self.decay_fraction = n_epochs_decay / (n_epochs + n_epochs_decay)
        self.preprocess, self.load_size, self.flip = preprocess, load_size, flip
        self.pools = {"a": ImagePool(pool_size), "b": ImagePool(pool_size)}
        # Per-image norms only: then one pass over a concatenated batch equals two passes.
        self.batched = not any(isinstance(m, nn.modules.batchnorm._BatchNorm)
                               for m in nets.modules())  # fmt: skip
        self._pending: collections.deque[tuple[torch.Tensor, ...]] = collections.deque()
        betas = (beta1, 0.999)
        gens = itertools.chain(nets["G_ab"].parameters(), nets["G_ba"].parameters())
        critics = itertools.chain(nets["D_a"].parameters(), nets["D_b"].parameters())
        self._optimizers = {
            "G": fused_adam(gens, lr=lr, betas=betas),
            "D": fused_adam(critics, lr=lr, betas=betas),
        }

    # ------------------------------------------------------------------ defaults for the run

    @classmethod
    def resolve_args(cls, given: dict[str, Any], facts: Any) -> dict[str, Any]:
        """The defaults with `lambda_identity` and `load_size` written in for this data; values
        checked."""
        args = super().resolve_args(given, facts)
        _check_args(args)
        same = facts.channels == facts.channels_b
        if args["lambda_identity"] is None:
            args["lambda_identity"] = 0.5 if same else 0.0
        elif args["lambda_identity"] > 0 and not same:
            raise ConfigError(
                f"the identity loss compares G_ab(b) with b, but domain A has {facts.channels} "
                f"channel(s) and B {facts.channels_b}; set recipe.args.lambda_identity=0 or give "
                "both domains the same channels (data.args.channels=3)"
            )
        if args["load_size"] is None:
            args["load_size"] = round(facts.resolution * LOAD_SCALE)
        if args["load_size"] < facts.resolution:
            raise ConfigError(
                f"recipe.args.load_size={args['load_size']} is smaller than the crop, the "
                f"resolution {facts.resolution}; choose a load_size of at least {facts.resolution}"
            )
        return args

    @classmethod
    def batch_size_for(cls, args: dict[str, Any], facts: Any) -> int:
        """One image per process: the official batch 1 on each GPU under torchrun."""
        return max(1, facts.processes)

    @classmethod
    def model_defaults(cls, args: dict[str, Any], facts: Any) -> tuple[str, dict[str, Any]]:
        """The official advice: 9 residual blocks at 256 px and above, 6 below."""
        return cls.default_model, {"n_blocks": 9 if facts.resolution >= 256 else 6}

    @classmethod
    def default_length_kimg(cls, args: dict[str, Any], facts: Any, batch_size: int) -> float:
        """(n_epochs + n_epochs_decay) epochs of the larger domain: 200 by default."""
        epochs = args.get("n_epochs", 100.0) + args.get("n_epochs_decay", 100.0)
        images = getattr(facts, "images", 0)
        return epochs * images / 1000 if images else cls.default_kimg

    # ------------------------------------------------------------------ training

    def phases(self) -> list[Phase]:
        return [Phase("G_main", "G", self.g_step), Phase("D_main", "D", self.d_step)]

    def averaged(self) -> dict[str, str]:
        return {}

    def optimizer_settings(self, cur_nimg: int, total_nimg: int) -> dict[str, dict[str, float]]:
        lr = self.lr * lr_multiplier(cur_nimg, total_nimg, self.decay_fraction)
        return {"G": {"lr": lr}, "D": {"lr": lr}}

    def augment(self, img: torch.Tensor, ctx: StepContext) -> torch.Tensor:
        """The official training transform of one domain's batch (see the module docstring)."""
        crop = self.preprocess == "resize_and_crop"
        load = (self.load_size or img.shape[-1]) if crop else img.shape[-1]
        return random_resized_crops(img, load, self.flip, ctx.generator)

    def g_step(self, batch: Batch, ctx: StepContext) -> Logs:
        a, b = self.augment(batch["img_a"], ctx), self.augment(batch["img_b"], ctx)
        G_ab, G_ba = ctx.net("G_ab"), ctx.net("G_ba")
        identity = self.lambda_identity > 0
        fake_b, same_b = self._translate(G_ab, a, b if identity else None)
        fake_a, same_a = self._translate(G_ba, b, a if identity else None)
        adversarial = gan_loss(ctx.net("D_b")(fake_b), True, self.gan_mode) + gan_loss(
            ctx.net("D_a")(fake_a), True, self.gan_mode
        )
        cycle = (G_ba(fake_b) - a).abs().mean() * self.lambda_A + (
            G_ab(fake_a) - b
        ).abs().mean() * self.lambda_B
        logs = {"gan": adversarial.detach(), "cycle": cycle.detach()}
        loss = adversarial + cycle
        if identity:
            same = (same_b - b).abs().mean() * self.lambda_B + (same_a - a).abs().mean() * (
                self.lambda_A
            )
            loss = loss + same * self.lambda_identity
            logs["identity"] = (same * self.lambda_identity).detach()
        self._pending.append((a, b, fake_a.detach(), fake_b.detach()))
        return {"loss": loss, **logs}

    def _translate(
        self, G: nn.Module, x: torch.Tensor, target_domain: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(G(x), G(target_domain) or None), in one pass where the norms allow."""
        if target_domain is None:
            return G(x), None
        if self.batched:
            return G(torch.cat([x, target_domain])).tensor_split(2)  # type: ignore[return-value]
        return G(x), G(target_domain)

    def d_step(self, batch: Batch, ctx: StepContext) -> Logs:
        if not self._pending:
            raise RuntimeError("the cyclegan D step runs after its G step, which was not run")
        a, b, fake_a, fake_b = self._pending.popleft()
        fake_a = self.pools["a"].query(fake_a, ctx.generator)
        fake_b = self.pools["b"].query(fake_b, ctx.generator)
        loss_a = self._critic_loss(ctx.net("D_a"), a, fake_a)
        loss_b = self._critic_loss(ctx.net("D_b"), b, fake_b)
        return {"loss": loss_a + loss_b, "D_a": loss_a.detach(), "D_b": loss_b.detach()}

    def _critic_loss(self, D: nn.Module, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        """0.5 x (loss on reals + loss on fakes), one pass where the norms allow."""
        if self.batched:
            real_scores, fake_scores = D(torch.cat([real, fake])).tensor_split(2)
        else:
            real_scores, fake_scores = D(real), D(fake)
        mode = self.gan_mode
        return 0.5 * (gan_loss(real_scores, True, mode) + gan_loss(fake_scores, False, mode))

    # ------------------------------------------------------------------ state

    def state_dict(self) -> dict[str, Any]:
        """The two image pools' stored fakes."""
        return {f"pool_{side}": pool.state_dict() for side, pool in self.pools.items()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        device = next(self.nets.parameters()).device
        for side, pool in self.pools.items():
            pool.load_state_dict(state[f"pool_{side}"], device)

    def describe(self) -> str:
        identity = f", identity {self.lambda_identity:g}" if self.lambda_identity else ""
        return (
            f"CycleGAN: {self.gan_mode}, cycle {self.lambda_A:g}/{self.lambda_B:g}{identity}, "
            f"pool {self.pools['a'].size}, lr {self.lr:g} decaying over the last "
            f"{self.decay_fraction:.0%}, {self.preprocess}"
        )


def _check_args(args: dict[str, Any]) -> None:
    """Clear errors for values the official options would not take."""
    if args["gan_mode"] not in GAN_MODES:
        raise ConfigError(
            f"recipe.args.gan_mode must be one of {', '.join(GAN_MODES)}; got {args['gan_mode']!r}"
        )
    if str(args["preprocess"]).startswith("scale_width"):
        raise ConfigError(
            f"recipe.args.preprocess={args['preprocess']} keeps non-square images, but gankit "
            "trains on square ones (centre-cropped); use resize_and_crop or none, and translate "
            "at any width with `gankit translate --resolution`"
        )
    if args["preprocess"] not in PREPROCESS:
        raise ConfigError(
            f"recipe.args.preprocess must be one of {', '.join(PREPROCESS)}; "
            f"got {args['preprocess']!r}"
        )
    for key in ("lambda_A", "lambda_B", "lr", "n_epochs", "n_epochs_decay"):
        if not isinstance(args[key], int | float) or args[key] < 0:
            raise ConfigError(f"recipe.args.{key} must be a number >= 0; got {args[key]!r}")
    if args["n_epochs"] + args["n_epochs_decay"] <= 0:
        raise ConfigError("recipe.args.n_epochs + n_epochs_decay must be more than 0")
    if not isinstance(args["pool_size"], int) or args["pool_size"] < 0:
        raise ConfigError(
            f"recipe.args.pool_size must be a whole number >= 0; got {args['pool_size']!r}"
        )
