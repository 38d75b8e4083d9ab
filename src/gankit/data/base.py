"""The dataset contract: uint8 images `[C, H, W]` (and int64 labels) at one square resolution.

The loop converts to float [-1, 1] once, on the device. Models are built from a dataset's
`resolution`, `channels` and `num_classes`, so the user never states the image size twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, default_collate


def collate(items: Any) -> Any:
    """The training loader's collate: a batch that `BatchView` gathered in one go (a dict of
    batched tensors) passes as it is; a list of items is stacked as torch does."""
    return items if isinstance(items, dict) else default_collate(items)


class BatchView(Dataset):
    """How the training loader sees a dataset: a minibatch is one `gather(indices)` call where
    the dataset has one (the in-memory datasets), one `dataset[i]` per item elsewhere. Indexing
    a tensor once per item cost a small 2-D network's step more than its data was worth.
    """

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> Any:
        return self.dataset[index]

    def __getitems__(self, indices: Sequence[int]) -> Any:
        gather = getattr(self.dataset, "gather", None)
        return gather(indices) if gather is not None else [self.dataset[i] for i in indices]


class ImageDataset(Dataset):
    """Base class: subclasses set the attributes below and implement `__len__`/`__getitem__`."""

    #: What the items are: "images" (labelled when `num_classes` > 0), as against the "points"
    #: of 2-D mixtures and the "unpaired" A/B images of translation data.
    kind: str = "images"
    name: str = ""
    resolution: int = 0
    channels: int = 0
    num_classes: int = 0
    #: What was done to the source images (for the run log), e.g. "center-cropped, resized".
    description: str = ""

    def __len__(self) -> int:
        raise NotImplementedError

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        raise NotImplementedError


class GathersBatches:
    """For datasets held as tensors whose `__getitem__` also takes an index tensor."""

    def gather(self, indices: Sequence[int]) -> dict[str, torch.Tensor]:
        """The items at `indices` as one batch, as `default_collate` would stack them."""
        return self.__getitem__(torch.as_tensor(indices, dtype=torch.int64))  # type: ignore[attr-defined]


class ArrayDataset(GathersBatches, ImageDataset):
    """Images held in memory as one uint8 array `[N, C, H, W]`, with optional labels `[N]`."""

    def __init__(
        self,
        images: np.ndarray,
        labels: np.ndarray | None = None,
        *,
        name: str,
        description: str = "",
        num_classes: int | None = None,
    ) -> None:
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[2] != images.shape[3]:
            raise ValueError(
                f"expected uint8 [N, C, H, H] images, got {images.dtype} {images.shape}"
            )
        self.images = torch.from_numpy(np.ascontiguousarray(images))
        self.labels = (
            None if labels is None else torch.from_numpy(np.asarray(labels, dtype=np.int64))
        )
        self.name, self.description = name, description
        self.resolution, self.channels = images.shape[2], images.shape[1]
        if num_classes is None:
            num_classes = 0 if labels is None else int(np.max(labels)) + 1
        self.num_classes = num_classes

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        item = {"img": self.images[index]}
        if self.labels is not None:
            item["label"] = self.labels[index]
        return item


def preview_reals(
    dataset: Dataset, count: int, seed: int, by_class: bool
) -> tuple[torch.Tensor, int | None] | None:
    """`count` reals for `samples/reals.png` drawn with `seed`, and the grid's column count.

    The draw is random across the whole dataset, so a class-sorted one (CIFAR-10, a folder per
    class) does not show only its first class. With `by_class` and a labelled dataset the layout is
    the loop's fake grid: row k holds `max(1, count // num_classes)` images of class k (black tiles
    where a class has fewer); otherwise the columns are None (the grid's square default). None for
    datasets without images (2-D points). For unpaired A/B data the reals are domain A's images
    (where translation previews start their rows), in the square grid.
    """
    if getattr(dataset, "kind", "images") == "unpaired":
        dataset = dataset.a  # type: ignore[attr-defined]
    if len(dataset) == 0 or "img" not in dataset[0]:  # type: ignore[arg-type]
        return None
    gen = torch.Generator().manual_seed(seed)
    classes = getattr(dataset, "num_classes", 0)
    if by_class and classes:
        indices, cols = _class_rows(_labels_of(dataset), classes, count, gen)
    else:
        everything = torch.randperm(len(dataset), generator=gen)  # type: ignore[arg-type]
        indices, cols = everything[:count], None
    return _images_at(dataset, indices), cols


def _labels_of(dataset: Dataset) -> torch.Tensor:
    """Every item's label `[N]`: the dataset's `labels` array when it has one (no item is read)."""
    labels = getattr(dataset, "labels", None)
    if labels is None:
        labels = [int(dataset[i]["label"]) for i in range(len(dataset))]  # type: ignore[arg-type]
    return torch.as_tensor(np.asarray(labels), dtype=torch.int64)


def _class_rows(
    labels: torch.Tensor, classes: int, count: int, gen: torch.Generator
) -> tuple[torch.Tensor, int | None]:
    """Indices for rows of classes 0, 1, ... (-1 where a class runs out), and the column count."""
    per_class = max(1, count // classes)
    rows = []
    for k in range(min(classes, count)):
        members = torch.nonzero(labels == k).flatten()
        picked = members[torch.randperm(len(members), generator=gen)[:per_class]]
        rows.append(torch.cat([picked, picked.new_full((per_class - len(picked),), -1)]))
    return torch.cat(rows), per_class if classes <= count else None


def _images_at(dataset: Dataset, indices: torch.Tensor) -> torch.Tensor:
    """The images at `indices` `[N, C, H, W]`; an index of -1 gives a black image."""
    found = indices[indices >= 0].tolist()
    gather = getattr(dataset, "gather", None)
    if gather is not None and found:
        images = gather(found)["img"]
    else:
        images = torch.stack([dataset[i]["img"] for i in found or [0]])
    out = torch.zeros((len(indices), *images.shape[1:]), dtype=images.dtype)
    out[indices >= 0] = images[: len(found)]
    return out
