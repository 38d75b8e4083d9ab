"""Endless, seeded, resumable and rank-sharded streams of minibatch indices.

Sample k of the global stream (k counts images shown, summed over ranks) is item
`perm_e[k mod N]` with `e = k // N` and `perm_e` a permutation seeded by (seed, e). Each step takes
`global_batch` consecutive positions and rank r keeps its contiguous slice of them. Because the
stream position equals `cur_nimg`, a run resumed from a checkpoint (or a loader rebuilt at a new
progressive stage with another batch size) continues with exactly the samples an uninterrupted run
would have drawn.

Unpaired A/B data runs two such streams side by side, one over each domain's images, seeded
apart: sample k is the pair (A's item k, B's item k). A and B are drawn independently (the
domains differ in size, so their epochs drift apart), and resuming and sharding work as above.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import torch
from torch.utils.data import Dataset, Sampler


class InfiniteBatchSampler(Sampler[list[int]]):
    """Yields this rank's index list for every global minibatch, forever."""

    def __init__(
        self,
        num_items: int,
        global_batch: int,
        *,
        seed: int = 0,
        start_nimg: int = 0,
        rank: int = 0,
        world_size: int = 1,
        shuffle: bool = True,
        stream: int = 0,
    ) -> None:
        if num_items <= 0:
            raise ValueError("cannot sample from an empty dataset")
        if global_batch % world_size:
            raise ValueError(
                f"the global batch {global_batch} does not split evenly over {world_size} processes"
            )
        self.num_items, self.global_batch = num_items, global_batch
        self.seed, self.start_nimg, self.shuffle = seed, start_nimg, shuffle
        self.rank, self.world_size = rank, world_size
        self.stream = stream
        self._epoch, self._perm = -1, []

    def item(self, position: int) -> int:
        """The item at stream position `position`."""
        epoch, offset = divmod(position, self.num_items)
        if not self.shuffle:
            return offset
        if epoch != self._epoch:
            gen = torch.Generator().manual_seed(permutation_seed(self.seed, epoch, self.stream))
            # A list, not a tensor: indexing a tensor once per item cost more than a small
            # network's step spends in its data.
            self._perm = torch.randperm(self.num_items, generator=gen).tolist()
            self._epoch = epoch
        return self._perm[offset]

    def positions(self) -> Iterator[range]:
        """This rank's stream positions for each global minibatch, from `start_nimg` on."""
        per_rank = self.global_batch // self.world_size
        position = self.start_nimg
        while True:
            first = position + self.rank * per_rank
            yield range(first, first + per_rank)
            position += self.global_batch

    def __iter__(self) -> Iterator[list[int]]:
        for positions in self.positions():
            yield [self.item(p) for p in positions]


def permutation_seed(seed: int, epoch: int, stream: int = 0) -> int:
    """The seed of `epoch`'s permutation in `stream`. Stream 0 keeps the seeding of runs made
    before streams existed (their resume stays exact); the others hash all three numbers, as the
    CPU generator reads only a seed's low 32 bits."""
    if stream == 0:
        return seed * 1_000_003 + epoch
    digest = hashlib.sha256(f"gankit-stream {seed} {stream} {epoch}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


class UnpairedBatchSampler(Sampler[list[tuple[int, int]]]):
    """Yields this rank's `(i_a, i_b)` pairs for every global minibatch, forever: A's and B's
    items come from two independent streams (see the module docstring)."""

    def __init__(
        self,
        domain_sizes: tuple[int, int],
        global_batch: int,
        *,
        seed: int = 0,
        start_nimg: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        self.a, self.b = (
            InfiniteBatchSampler(
                size, global_batch, seed=seed, start_nimg=start_nimg, rank=rank,
                world_size=world_size, stream=stream,
            )
            for stream, size in enumerate(domain_sizes)
        )  # fmt: skip

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        for positions in self.a.positions():  # both streams stand at the same positions
            yield [(self.a.item(p), self.b.item(p)) for p in positions]


def batch_sampler_for(
    dataset: Dataset,
    global_batch: int,
    *,
    seed: int,
    start_nimg: int,
    rank: int,
    world_size: int,
) -> Sampler:
    """The training loader's batch sampler for `dataset`'s kind: index pairs drawn independently
    per domain for unpaired data, item indices for images and points."""
    if getattr(dataset, "kind", "images") == "unpaired":
        return UnpairedBatchSampler(
            dataset.domain_sizes,  # type: ignore[attr-defined]
            global_batch,
            seed=seed,
            start_nimg=start_nimg,
            rank=rank,
            world_size=world_size,
        )
    return InfiniteBatchSampler(
        len(dataset),  # type: ignore[arg-type]
        global_batch,
        seed=seed,
        start_nimg=start_nimg,
        rank=rank,
        world_size=world_size,
    )
