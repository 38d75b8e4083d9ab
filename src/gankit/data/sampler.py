"""An endless, seeded, resumable and rank-sharded stream of minibatch indices.

Sample k of the global stream (k counts images shown, summed over ranks) is item
`perm_e[k mod N]` with `e = k // N` and `perm_e` a permutation seeded by (seed, e). Each step takes
`global_batch` consecutive positions and rank r keeps its contiguous slice of them. Because the
stream position equals `cur_nimg`, a run resumed from a checkpoint (or a loader rebuilt at a new
progressive stage with another batch size) continues with exactly the samples an uninterrupted run
would have drawn.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import Sampler


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
        self._epoch, self._perm = -1, []

    def _item(self, position: int) -> int:
        epoch, offset = divmod(position, self.num_items)
        if not self.shuffle:
            return offset
        if epoch != self._epoch:
            gen = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            # A list, not a tensor: indexing a tensor once per item cost more than a small
            # network's step spends in its data.
            self._perm = torch.randperm(self.num_items, generator=gen).tolist()
            self._epoch = epoch
        return self._perm[offset]

    def __iter__(self) -> Iterator[list[int]]:
        per_rank = self.global_batch // self.world_size
        position = self.start_nimg
        while True:
            first = position + self.rank * per_rank
            yield [self._item(p) for p in range(first, first + per_rank)]
            position += self.global_batch
