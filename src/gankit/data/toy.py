"""2-D Gaussian mixtures for mode-collapse experiments: `ring8` and `grid25`.

The protocol is VEEGAN's (Srivastava et al., "VEEGAN: Reducing Mode Collapse in GANs using Implicit
Variational Learning", arXiv:1705.07761) with the constants of PacGAN's code (Lin et al., "PacGAN:
The power of two samples in generative adversarial networks", arXiv:1712.04086;
github.com/fjxmlzn/PacGAN, `synthetic_data_experiments/2D*_GAN&PacGAN/config.py`):

- ring8: 8 modes at angles 2*pi*k/8 on the unit circle, isotropic std 0.01;
- grid25: 25 modes at {-4, -2, 0, 2, 4}^2, isotropic std 0.05;
- equal mode weights; a training set of 100,000 points (PacGAN's `num_sample`).

Datasets yield `{"points": float32 [2]}` and carry the `mixture` that `gankit.metrics.modes.
mixture_coverage` scores samples against. They are fixed seeded samples, so a run is reproducible;
the `train` and `test` splits use different seeds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch.utils.data import Dataset

from gankit.data.base import GathersBatches
from gankit.errors import ConfigError
from gankit.registry import DATASETS

NUM_POINTS = 100_000
SPLIT_SEEDS = {"train": 0, "test": 1}


@dataclass(frozen=True, eq=False)
class Mixture2D:
    """An equal-weight mixture of isotropic 2-D Gaussians: `means` `[K, 2]` and one `sigma`."""

    name: str
    means: torch.Tensor = field(repr=False)
    sigma: float

    @property
    def num_modes(self) -> int:
        """K, the number of mixture components."""
        return self.means.shape[0]

    def sample_with_modes(
        self, n: int, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """`n` points `[n, 2]` (float32) and the mode each was drawn from `[n]` (int64)."""
        modes = torch.randint(self.num_modes, (n,), generator=generator)
        noise = torch.randn(n, 2, generator=generator, dtype=torch.float64)
        points = self.means.double()[modes] + self.sigma * noise
        return points.float(), modes

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """`n` points `[n, 2]` (float32) from the mixture."""
        return self.sample_with_modes(n, generator)[0]


def ring_mixture(num_modes: int = 8, radius: float = 1.0, sigma: float = 0.01) -> Mixture2D:
    """`num_modes` Gaussians evenly spaced on a circle, the first at angle 0."""
    angles = torch.arange(num_modes, dtype=torch.float64) * (2 * math.pi / num_modes)
    means = radius * torch.stack([torch.cos(angles), torch.sin(angles)], dim=1)
    return Mixture2D(f"ring{num_modes}", means, sigma)


def grid_mixture(side: int = 5, spacing: float = 2.0, sigma: float = 0.05) -> Mixture2D:
    """`side` x `side` Gaussians on a grid centred at 0 (x is the slow index, as in PacGAN)."""
    coords = (torch.arange(side, dtype=torch.float64) - (side - 1) / 2) * spacing
    xs, ys = torch.meshgrid(coords, coords, indexing="ij")
    means = torch.stack([xs.reshape(-1), ys.reshape(-1)], dim=1)
    return Mixture2D(f"grid{side * side}", means, sigma)


RING8 = ring_mixture()
GRID25 = grid_mixture()
MIXTURES = {"ring8": RING8, "grid25": GRID25}


class MixtureDataset(GathersBatches, Dataset):
    """A fixed seeded sample of a `Mixture2D`: items `{"points": float32 [2]}`."""

    kind: str = "points"
    resolution: int = 0
    channels: int = 0
    num_classes: int = 0

    def __init__(self, mixture: Mixture2D, *, split: str = "train", size: int = NUM_POINTS) -> None:
        if split not in SPLIT_SEEDS:
            raise ConfigError(
                f"{mixture.name} has splits {', '.join(map(repr, SPLIT_SEEDS))}, not {split!r}"
            )
        self.name, self.mixture, self.split = mixture.name, mixture, split
        gen = torch.Generator().manual_seed(SPLIT_SEEDS[split])
        self.points, self.modes = mixture.sample_with_modes(size, gen)
        self.description = (
            f"{mixture.name} {split} split: {size:,} points from {mixture.num_modes} equal-weight "
            f"isotropic Gaussians (std {mixture.sigma}), seed {SPLIT_SEEDS[split]}"
        )

    def __len__(self) -> int:
        return self.points.shape[0]

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {"points": self.points[index]}

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """`n` fresh points `[n, 2]` from the mixture (not from the fixed sample)."""
        return self.mixture.sample(n, generator)


def _check_point_request(name: str, resolution: int | None, channels: int | None) -> None:
    if resolution or channels:
        raise ConfigError(
            f"{name} is a 2-D point dataset: it has no image resolution or channels (got "
            f"resolution={resolution!r}, channels={channels!r}); leave both unset"
        )


@DATASETS.register("ring8")
def ring8(
    root: str | None = None,
    resolution: int | None = None,
    channels: int | None = None,
    split: str = "train",
) -> MixtureDataset:
    """8 Gaussians (std 0.01) on the unit circle, 100k points (VEEGAN/PacGAN 2D-ring)."""
    _check_point_request("ring8", resolution, channels)
    return MixtureDataset(RING8, split=split)


@DATASETS.register("grid25")
def grid25(
    root: str | None = None,
    resolution: int | None = None,
    channels: int | None = None,
    split: str = "train",
) -> MixtureDataset:
    """25 Gaussians (std 0.05) on the grid {-4,-2,0,2,4}^2, 100k points (VEEGAN/PacGAN 2D-grid)."""
    _check_point_request("grid25", resolution, channels)
    return MixtureDataset(GRID25, split=split)
