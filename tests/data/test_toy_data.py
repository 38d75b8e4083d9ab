"""The ring8 / grid25 point datasets: PacGAN's constants, registry entries, determinism."""

from __future__ import annotations

import math

import pytest
import torch

from gankit.data.toy import GRID25, RING8, MixtureDataset, grid25, ring8
from gankit.errors import ConfigError
from gankit.registry import DATASETS


def test_ring8_is_eight_unit_circle_modes_with_std_0_01() -> None:
    angles = [2 * math.pi * k / 8 for k in range(8)]
    expected = torch.tensor([[math.cos(a), math.sin(a)] for a in angles], dtype=torch.float64)
    torch.testing.assert_close(RING8.means, expected)
    assert RING8.sigma == 0.01
    assert RING8.num_modes == 8


def test_grid25_is_the_even_grid_with_std_0_05() -> None:
    coords = [-4.0, -2.0, 0.0, 2.0, 4.0]
    expected = torch.tensor([[x, y] for x in coords for y in coords], dtype=torch.float64)
    torch.testing.assert_close(GRID25.means, expected)
    assert GRID25.sigma == 0.05


@pytest.mark.parametrize(
    ("name", "builder", "modes"), [("ring8", ring8, 8), ("grid25", grid25, 25)]
)
def test_registered_point_dataset(name: str, builder: object, modes: int) -> None:
    assert DATASETS.get(name) is builder
    ds = DATASETS.get(name)()
    assert isinstance(ds, MixtureDataset)
    assert (ds.name, ds.resolution, ds.channels, ds.num_classes) == (name, 0, 0, 0)
    assert len(ds) == 100_000 and ds.mixture.num_modes == modes
    item = ds[123]
    assert set(item) == {"points"}
    assert item["points"].dtype == torch.float32 and item["points"].shape == (2,)
    assert name in ds.description and "100,000" in ds.description
    # Seeded: the same split twice is identical, the two splits differ.
    torch.testing.assert_close(DATASETS.get(name)().points, ds.points, rtol=0, atol=0)
    assert not torch.equal(DATASETS.get(name)(split="test").points, ds.points)


def test_points_follow_the_mixture() -> None:
    ds = ring8()
    counts = torch.bincount(ds.modes, minlength=8).double() / len(ds)
    torch.testing.assert_close(
        counts, torch.full((8,), 1 / 8, dtype=torch.float64), atol=4e-3, rtol=0
    )
    # The distance to the own mode of a 2-D isotropic Gaussian is Rayleigh: mean sigma sqrt(pi/2).
    radius = (ds.points.double() - RING8.means[ds.modes]).norm(dim=1)
    assert float(radius.mean()) == pytest.approx(0.01 * math.sqrt(math.pi / 2), rel=0.01)


def test_sample_is_deterministic_given_a_generator() -> None:
    ds = grid25()
    a = ds.sample(500, torch.Generator().manual_seed(3))
    b = ds.sample(500, torch.Generator().manual_seed(3))
    assert a.shape == (500, 2) and a.dtype == torch.float32
    torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_image_options_and_unknown_split_are_rejected() -> None:
    with pytest.raises(ConfigError, match="resolution=32"):
        ring8(resolution=32)
    with pytest.raises(ConfigError, match="channels=3"):
        grid25(channels=3)
    with pytest.raises(ConfigError, match="'valid'"):
        ring8(split="valid")
