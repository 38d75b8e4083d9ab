"""Minibatches for the loop: the loader over a dataset, and reals made ready on the device.

Whatever the data's kind, a batch is a dict of tensors. Every uint8 tensor in it is an image
batch (`img`, or `img_a` and `img_b` for unpaired data): it becomes float [-1, 1] on the device,
mirrored if asked, then what the recipe's discriminator sees at this stage. Other tensors
(labels, 2-D points) only move to the device.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch.utils.data import DataLoader, Dataset

from gankit.data.base import BatchView, collate
from gankit.data.sampler import batch_sampler_for
from gankit.errors import ConfigError
from gankit.train.distributed import DistInfo


def make_loader(
    dataset: Dataset, global_batch: int, *, seed: int, start_nimg: int, dist: DistInfo,
    workers: int, device: torch.device,
) -> DataLoader:  # fmt: skip
    """This rank's loader: an endless seeded stream of its share of each global batch, which
    continues from `start_nimg` exactly as an uninterrupted run would."""
    if global_batch % dist.world_size:
        raise ConfigError(
            f"the batch size {global_batch} does not divide over {dist.world_size} processes; "
            "choose a multiple of the process count"
        )
    sampler = batch_sampler_for(
        dataset,
        global_batch,
        seed=seed,
        start_nimg=start_nimg,
        rank=dist.rank,
        world_size=dist.world_size,
    )
    return DataLoader(
        BatchView(dataset),
        batch_sampler=sampler,
        num_workers=workers,
        pin_memory=device.type == "cuda",
        prefetch_factor=4 if workers else None,
        collate_fn=collate,
        # The loader's own generator keeps worker seeding off the global RNG (exact resume).
        generator=torch.Generator().manual_seed(seed),
    )


@dataclass
class RealsOnDevice:
    """Turns a loader's batch into the loop's: images as float [-1, 1] on `device`, prepared."""

    device: torch.device
    generator: torch.Generator  # the loop's seeded stream (mirroring draws from it)
    prepare: Callable[[torch.Tensor], torch.Tensor]  # the recipe's, for the current stage
    mirror: bool = False
    channels_last: bool = False

    def __call__(self, raw: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        batch = {}
        for key, value in raw.items():
            value = value.to(self.device, non_blocking=True)
            if value.dtype == torch.uint8:
                value = self._image(value)
            batch[key] = value
        return batch

    def _image(self, value: torch.Tensor) -> torch.Tensor:
        value = value.float() / 127.5 - 1.0
        if self.mirror:
            flip = torch.rand(value.shape[0], device=self.device, generator=self.generator) < 0.5
            value = torch.where(flip[:, None, None, None], value.flip(3), value)
        value = self.prepare(value)
        if self.channels_last:
            value = value.contiguous(memory_format=torch.channels_last)
        return value


def accumulation_rounds(
    batch: dict[str, torch.Tensor], size: int, batch_gpu: int
) -> list[tuple[dict[str, torch.Tensor], int]]:
    """A batch of `size` images in rounds of at most `batch_gpu` (0: one round), as evenly as
    they split; each round with its own size."""
    rounds = 1 if batch_gpu <= 0 else -(-size // batch_gpu)
    if rounds == 1:
        return [(batch, size)]
    parts = {key: value.tensor_split(rounds) for key, value in batch.items()}
    sizes = [len(chunk) for chunk in next(iter(parts.values()))]
    return [({key: chunks[i] for key, chunks in parts.items()}, n) for i, n in enumerate(sizes)]
