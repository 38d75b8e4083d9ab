"""The index stream and the minibatches the training loader builds from it."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, default_collate

from gankit.data import ArrayDataset, InfiniteBatchSampler, StackedMNIST
from gankit.data.base import BatchView, collate
from gankit.data.toy import ring8


def _batches(sampler: InfiniteBatchSampler, count: int) -> list[list[int]]:
    return list(itertools.islice(iter(sampler), count))


def _stream(sampler: InfiniteBatchSampler, count: int) -> list[int]:
    """The indices of the first `count` batches, one after the other."""
    return list(itertools.chain.from_iterable(_batches(sampler, count)))


def test_each_epoch_is_the_seeded_permutation_of_its_number() -> None:
    # 10 items, batches of 4: positions 0-9 are epoch 0, 10-19 epoch 1 (item perm_e[k mod N]).
    flat = _stream(InfiniteBatchSampler(10, 4, seed=3), 5)
    for epoch in (0, 1):
        gen = torch.Generator().manual_seed(3 * 1_000_003 + epoch)
        assert flat[10 * epoch : 10 * epoch + 10] == torch.randperm(10, generator=gen).tolist()
    assert all(isinstance(i, int) for i in flat)
    assert sorted(flat[:10]) == list(range(10))


def test_a_stream_started_later_continues_the_same_stream() -> None:
    full = _stream(InfiniteBatchSampler(10, 4, seed=1), 6)
    later = _stream(InfiniteBatchSampler(10, 4, seed=1, start_nimg=8), 4)
    assert later == full[8:24]


def test_ranks_take_their_contiguous_slices_of_each_global_batch() -> None:
    whole = _batches(InfiniteBatchSampler(10, 4, seed=2), 3)
    ranks = [_batches(InfiniteBatchSampler(10, 4, seed=2, rank=r, world_size=2), 3) for r in (0, 1)]
    assert [a + b for a, b in zip(*ranks, strict=True)] == whole


def test_unshuffled_streams_run_in_order() -> None:
    assert _batches(InfiniteBatchSampler(5, 3, shuffle=False), 2) == [[0, 1, 2], [3, 4, 0]]


def _loader_batches(dataset: object, count: int = 3) -> list[dict]:
    """The first batches of a loader built as the training loop builds it."""
    sampler = InfiniteBatchSampler(len(dataset), 7, seed=0)
    loader = DataLoader(BatchView(dataset), batch_sampler=sampler, collate_fn=collate)
    return list(itertools.islice(iter(loader), count))


def _fake_digits() -> ArrayDataset:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (40, 1, 28, 28), dtype=np.uint8)
    return ArrayDataset(images, np.arange(40) % 10, name="digits")


@pytest.mark.parametrize("kind", ["array", "points", "stacked"])
def test_a_gathered_batch_equals_the_items_stacked_one_by_one(kind: str) -> None:
    """The in-memory datasets hand the training loader a whole batch in one gather; it must be
    the batch that fetching and stacking each item would give, and a plain DataLoader of the
    dataset still gives that batch too."""
    digits = _fake_digits()
    dataset = {
        "array": digits,
        "points": ring8(),
        "stacked": StackedMNIST(digits, size=50, seed=1),
    }[kind]
    assert isinstance(dataset.gather([0, 1]), dict)
    one_by_one = [dict(default_collate([dataset[i] for i in idx])) for idx in _indices(dataset)]
    gathered = _loader_batches(dataset)
    plain = DataLoader(dataset, batch_sampler=InfiniteBatchSampler(len(dataset), 7, seed=0))
    plain_batches = list(itertools.islice(iter(plain), 3))
    assert len(gathered) == len(one_by_one) == len(plain_batches)
    for mine, reference, other in zip(gathered, one_by_one, plain_batches, strict=True):
        assert all(torch.equal(other[key], reference[key]) for key in reference)
        assert mine.keys() == reference.keys()
        for key in mine:
            assert mine[key].dtype == reference[key].dtype
            assert torch.equal(mine[key], reference[key])


def _indices(dataset: object, count: int = 3) -> list[list[int]]:
    return _batches(InfiniteBatchSampler(len(dataset), 7, seed=0), count)


class _ItemsOnly(torch.utils.data.Dataset):
    """A dataset with no gather, as the folder datasets (they decode one file per item)."""

    def __len__(self) -> int:
        return 10

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {"img": torch.full((1, 2, 2), index, dtype=torch.uint8)}


def test_datasets_without_a_gather_are_read_item_by_item_and_stacked() -> None:
    [batch] = _loader_batches(_ItemsOnly(), count=1)
    expected = _indices(_ItemsOnly(), count=1)[0]
    assert batch["img"].shape == (7, 1, 2, 2) and batch["img"][:, 0, 0, 0].tolist() == expected
