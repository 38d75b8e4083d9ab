"""DiffAugment (Zhao et al., "Differentiable Augmentation for Data-Efficient GAN Training",
NeurIPS 2020, arXiv:2006.10738), as mit-han-lab/data-efficient-gans' `DiffAugment_pytorch.py`.

The same random, differentiable transformations are applied to every image D sees (reals and
fakes, in D's and G's steps), always (no probability). The policies:

- "color": brightness + U(-0.5, 0.5); saturation, the deviation from the per-pixel channel mean
  scaled by U(0, 2); contrast, the deviation from the image mean scaled by U(0.5, 1.5);
- "translation": an integer shift of up to 1/8 of each side, independently per axis, filled with
  zeros;
- "cutout": a zeroed rectangle of half each side at a uniform random position (it may overlap
  the border).

The draws are the official ones, in the official order and dtype, from the `torch.Generator`
passed in (the loop's checkpointed one), so a resumed run draws the same augmentations. Every op is
a composition of public differentiable ops (translation indexes a padded copy), so gradients of
any order exist.

Deviation: the cutout mask is built from comparisons with the rectangle's bounds rather than by
writing zeros at clamped indices; the rectangle is the same.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

Op = Callable[[torch.Tensor, "torch.Generator | None"], torch.Tensor]

DEFAULT_POLICY = "color,translation,cutout"


def _uniform(x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """One U(0, 1) number per image, shaped to broadcast over [N, C, H, W]."""
    return torch.rand(x.shape[0], 1, 1, 1, dtype=x.dtype, device=x.device, generator=generator)


def brightness(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Add U(-0.5, 0.5) to each image."""
    return x + (_uniform(x, generator) - 0.5)


def saturation(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Scale each pixel's deviation from its channel mean by U(0, 2) (per image)."""
    mean = x.mean(dim=1, keepdim=True)
    return (x - mean) * (_uniform(x, generator) * 2) + mean


def contrast(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Scale each image's deviation from its mean by U(0.5, 1.5)."""
    mean = x.mean(dim=[1, 2, 3], keepdim=True)
    return (x - mean) * (_uniform(x, generator) + 0.5) + mean


def translation(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Shift each image by whole pixels, up to size // 8 per axis, filling with zeros."""
    n, _, h, w = x.shape
    ty = _randint(-(h // 8), h // 8 + 1, x, generator)
    tx = _randint(-(w // 8), w // 8 + 1, x, generator)
    # Read a copy padded with one ring of zeros; sources outside the image clamp onto the ring.
    padded = nn.functional.pad(x, [1, 1, 1, 1])
    rows = (torch.arange(h, device=x.device).reshape(1, h, 1) + ty + 1).clamp(0, h + 1)
    cols = (torch.arange(w, device=x.device).reshape(1, 1, w) + tx + 1).clamp(0, w + 1)
    batch = torch.arange(n, device=x.device).reshape(n, 1, 1)
    return padded[batch, :, rows, cols].permute(0, 3, 1, 2)  # indexing puts channels last


def cutout(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Zero a (size // 2) x (size // 2) rectangle centred at a uniform random pixel of each image."""
    _, _, h, w = x.shape
    size_h, size_w = h // 2, w // 2
    # Even sizes allow one more centre position, as the official draws do.
    cy = _randint(0, h + (1 - size_h % 2), x, generator)
    cx = _randint(0, w + (1 - size_w % 2), x, generator)
    top, left = cy - size_h // 2, cx - size_w // 2
    rows = torch.arange(h, device=x.device).reshape(1, h, 1)
    cols = torch.arange(w, device=x.device).reshape(1, 1, w)
    inside = (rows >= top) & (rows < top + size_h) & (cols >= left) & (cols < left + size_w)
    return x * (~inside).to(x.dtype).unsqueeze(1)


def _randint(
    low: int, high: int, x: torch.Tensor, generator: torch.Generator | None
) -> torch.Tensor:
    """One integer in [low, high) per image, shaped [N, 1, 1]."""
    return torch.randint(low, high, (x.shape[0], 1, 1), device=x.device, generator=generator)


POLICIES: dict[str, tuple[Op, ...]] = {
    "color": (brightness, saturation, contrast),
    "translation": (translation,),
    "cutout": (cutout,),
}


def parse_policy(policy: str) -> list[str]:
    """The policy's names in order ("" means none); unknown names are an error."""
    names = [name.strip() for name in policy.split(",") if name.strip()]
    unknown = [name for name in names if name not in POLICIES]
    if unknown:
        raise ValueError(
            f"DiffAugment policy {policy!r}: unknown {unknown}; expected comma-separated names "
            f"from {sorted(POLICIES)} (the paper's: {DEFAULT_POLICY!r})"
        )
    return names


def diff_augment(
    x: torch.Tensor, policy: str = DEFAULT_POLICY, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Apply `policy`'s transformations in order to images `x` [N, C, H, W]."""
    for name in parse_policy(policy):
        for op in POLICIES[name]:
            x = op(x, generator)
    return x


class DiffAugment(nn.Module):
    """`DiffAugment(policy)(images, generator) -> images`, for the recipe's D inputs."""

    def __init__(self, policy: str = DEFAULT_POLICY) -> None:
        super().__init__()
        self.names = parse_policy(policy)
        self.policy = ",".join(self.names)

    def forward(
        self, images: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Augment `images` [N, C, H, W], drawing from `generator` (global RNG if None)."""
        return diff_augment(images, self.policy, generator)

    def extra_repr(self) -> str:
        return f"policy={self.policy!r}"
