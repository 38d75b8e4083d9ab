"""Training data: built-in datasets, folders and zips of images, unpaired A/B image sets, and the
index samplers.

Every dataset says what it yields in its `kind`: "images" (`{"img", "label"}`, the label only when
`num_classes` > 0), "points" (`{"points"}`, the 2-D mixtures) or "unpaired" (`{"img_a", "img_b"}`).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gankit.config import check_arguments, keyword_parameters
from gankit.data.base import ArrayDataset, ImageDataset
from gankit.data.builtin import check_request
from gankit.data.folder import open_image_folder
from gankit.data.sampler import InfiniteBatchSampler, UnpairedBatchSampler, batch_sampler_for
from gankit.data.stacked import StackedMNIST
from gankit.data.unpaired import UnpairedDataset, is_unpaired, open_unpaired
from gankit.errors import ConfigError, DataError
from gankit.registry import DATASETS

#: The parameters every way of opening data has; `data.args` sets only a builder's own others.
COMMON_PARAMETERS = ("root", "path", "name", "resolution", "channels", "split", "skip_bad_images")


def open_dataset(
    name: str,
    *,
    root: str | None = None,
    resolution: int | None = None,
    channels: int | None = None,
    skip_bad_images: bool = False,
    split: str = "train",
    args: dict[str, Any] | None = None,
) -> ImageDataset:
    """A registered built-in by name, else the unpaired A/B images or the folder or .zip of images
    at path `name`.

    Built-ins read from `root` (see `gankit.paths.data_root`) and honour `split`; a folder is
    prepared once (decoded, center-cropped, Lanczos-resized) and cached. A folder or zip holding
    trainA/ and trainB/ (testA/ and testB/ for `split="test"`) is unpaired A/B data. `args` are the
    builder's own arguments (`data.args`, see `check_data_args`). The result's `description` says
    what was done to the source images.
    """
    extra = check_data_args(name, args)
    if name in DATASETS:
        builder = DATASETS.get(name)
        return builder(root=root, resolution=resolution, channels=channels, split=split, **extra)
    path = Path(name).expanduser()
    if not path.exists():
        raise DataError(_not_found_message(name))
    if is_unpaired(path):
        check_request(name, resolution, channels, split)
        return open_unpaired(
            path,
            name=name,
            resolution=resolution,
            channels=channels,
            skip_bad_images=skip_bad_images,
            split=split,
            **extra,
        )
    if split != "train":
        raise ConfigError(
            f"split={split!r} applies to built-in datasets only (and to unpaired A/B data, whose "
            "testA/ and testB/ it reads); for your own images, pass the folder that holds the "
            "split you want."
        )
    check_request(name, resolution, channels, split)
    return open_image_folder(
        path,
        name=name,
        resolution=resolution,
        channels=channels or 3,
        skip_bad_images=skip_bad_images,
    )


def check_data_args(name: str, args: dict[str, Any] | None) -> dict[str, Any]:
    """`args` (`data.args`) checked against the builder that opens `name`: unknown keys (with a
    did-you-mean and the accepted ones) and wrong types are a ConfigError. Reads no image, so
    config validation can call it before anything is loaded."""
    if not args:
        return {}
    if not isinstance(args, dict):
        raise ConfigError(
            f"data.args must be a mapping of argument names to values; got {args!r}. Set one "
            "with --set data.args.KEY=VALUE."
        )
    builder, what = _builder_for(name)
    if not keyword_parameters(builder, COMMON_PARAMETERS):
        key = next(iter(args))
        raise ConfigError(
            f"unknown config key data.args.{key!r}: {what} takes no data arguments; remove "
            "data.args from the config."
        )
    return check_arguments(builder, args, COMMON_PARAMETERS, "data.args")


def data_args_used(dataset: Any, args: dict[str, Any] | None) -> dict[str, Any]:
    """`args` with the facts a resume must not re-derive pinned: for unpaired data each domain's
    channel count, so a run resolved with `data.channels` (A's) never forces B to it."""
    used = dict(args or {})
    if getattr(dataset, "kind", "images") == "unpaired":
        used.update(channels_a=dataset.channels, channels_b=dataset.channels_b)
    return used


def _builder_for(name: str) -> tuple[Callable[..., Any], str]:
    """The function that opens `name`, and how messages call that kind of data."""
    if name in DATASETS:
        return DATASETS.get(name), f"the built-in dataset {name}"
    path = Path(name).expanduser()
    if not path.exists():
        raise DataError(_not_found_message(name))
    if is_unpaired(path):
        return open_unpaired, f"the unpaired A/B images at {path}"
    return open_image_folder, f"the folder of images {path}"


def _not_found_message(name: str) -> str:
    """Why `name` is neither a built-in nor an existing path, with close built-in names."""
    close = difflib.get_close_matches(name.lower(), DATASETS.names(), n=3, cutoff=0.6)
    hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    return (
        f"{name!r} is not a built-in dataset and no file or folder {Path(name).expanduser()} "
        f"exists.{hint} Built-ins: {', '.join(DATASETS.names())}; otherwise give the path of a "
        "folder or .zip of images."
    )


__all__ = [
    "ArrayDataset",
    "ImageDataset",
    "InfiniteBatchSampler",
    "StackedMNIST",
    "UnpairedBatchSampler",
    "UnpairedDataset",
    "batch_sampler_for",
    "check_data_args",
    "data_args_used",
    "open_dataset",
]
