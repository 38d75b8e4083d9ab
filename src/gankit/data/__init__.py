"""Training data: built-in datasets, folders and zips of images, and the index sampler."""

from __future__ import annotations

import difflib
from pathlib import Path

from gankit.data.base import ArrayDataset, ImageDataset
from gankit.data.builtin import check_request
from gankit.data.folder import open_image_folder
from gankit.data.sampler import InfiniteBatchSampler
from gankit.data.stacked import StackedMNIST
from gankit.errors import ConfigError, DataError
from gankit.registry import DATASETS


def open_dataset(
    name: str,
    *,
    root: str | None = None,
    resolution: int | None = None,
    channels: int | None = None,
    skip_bad_images: bool = False,
    split: str = "train",
) -> ImageDataset:
    """A registered built-in by name, else the folder or .zip of images at path `name`.

    Built-ins read from `root` (see `gankit.paths.data_root`) and honour `split`; a folder is
    prepared once (decoded, center-cropped, Lanczos-resized) and cached. The result's
    `description` says what was done to the source images.
    """
    if name in DATASETS:
        return DATASETS.get(name)(root=root, resolution=resolution, channels=channels, split=split)
    path = Path(name).expanduser()
    if not path.exists():
        raise DataError(_not_found_message(name))
    if split != "train":
        raise ConfigError(
            f"split={split!r} applies to built-in datasets only; for your own images, pass the "
            "folder that holds the split you want."
        )
    check_request(name, resolution, channels, split)
    return open_image_folder(
        path,
        name=name,
        resolution=resolution,
        channels=channels or 3,
        skip_bad_images=skip_bad_images,
    )


def _not_found_message(name: str) -> str:
    """Why `name` is neither a built-in nor an existing path, with close built-in names."""
    close = difflib.get_close_matches(name.lower(), DATASETS.names(), n=3, cutoff=0.6)
    hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    return (
        f"{name!r} is not a built-in dataset and no file or folder {Path(name).expanduser()} "
        f"exists.{hint} Built-ins: {', '.join(DATASETS.names())}; otherwise give the path of a "
        "folder or .zip of images."
    )


__all__ = ["ArrayDataset", "ImageDataset", "InfiniteBatchSampler", "StackedMNIST", "open_dataset"]
