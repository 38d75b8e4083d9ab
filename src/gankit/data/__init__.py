"""Training data: built-in datasets, folders and zips of images, and the index sampler."""

from __future__ import annotations

from gankit.data.base import ArrayDataset, ImageDataset
from gankit.data.sampler import InfiniteBatchSampler
from gankit.errors import DataError
from gankit.registry import DATASETS


def open_dataset(
    name: str,
    *,
    root: str | None = None,
    resolution: int | None = None,
    channels: int | None = None,
    skip_bad_images: bool = False,
) -> ImageDataset:
    """A registered built-in by name, else a folder or zip of images at `name`."""
    if name in DATASETS:
        return DATASETS.get(name)(root=root, resolution=resolution, channels=channels)
    raise DataError(f"{name!r} is neither a built-in dataset ({', '.join(DATASETS.names())}) nor a folder")


__all__ = ["ArrayDataset", "ImageDataset", "InfiniteBatchSampler", "open_dataset"]
