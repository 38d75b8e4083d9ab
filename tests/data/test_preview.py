"""`preview_reals`: the seeded random draw of reals for `samples/reals.png`."""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from gankit.data import ArrayDataset
from gankit.data.base import preview_reals
from gankit.data.toy import ring8


def sorted_dataset(labels: list[int]) -> ArrayDataset:
    """Tiny 1x2x2 images whose pixels are `index + 1` (0 stays free for black), labels as given."""
    values = np.arange(1, len(labels) + 1, dtype=np.uint8)
    images = np.broadcast_to(values[:, None, None, None], (len(labels), 1, 2, 2)).copy()
    return ArrayDataset(images, np.array(labels), name="sorted")


def items_of(images: torch.Tensor) -> list[int]:
    """The dataset index each preview image came from (-1 for a black tile)."""
    return [int(v) - 1 for v in images[:, 0, 0, 0]]


def test_unconditional_draw_is_seeded_and_spans_a_class_sorted_dataset() -> None:
    dataset = sorted_dataset([i // 10 for i in range(100)])  # 10 classes, class 0 first
    images, cols = preview_reals(dataset, 16, seed=3, by_class=False)
    expected = torch.randperm(100, generator=torch.Generator().manual_seed(3))[:16].tolist()
    assert items_of(images) == expected
    assert images.dtype == torch.uint8 and images.shape == (16, 1, 2, 2) and cols is None
    assert len({i // 10 for i in expected}) > 3  # not the first 16 items: classes 0 and 1 only
    assert items_of(preview_reals(dataset, 16, seed=4, by_class=False)[0]) != expected
    small = preview_reals(dataset, 200, seed=3, by_class=False)[0]  # fewer items than asked
    assert sorted(items_of(small)) == list(range(100))


def test_conditional_rows_hold_one_class_each() -> None:
    dataset = sorted_dataset([i // 10 for i in range(100)])
    images, cols = preview_reals(dataset, 64, seed=0, by_class=True)
    assert cols == 6 and images.shape[0] == 60  # 64 // 10 per class, classes 0..9
    rows = np.array(items_of(images)).reshape(10, 6)
    for k, row in enumerate(rows):
        assert all(i // 10 == k for i in row) and len(set(row)) == 6
    assert rows[0].tolist() != list(range(6))  # drawn at random within the class
    again = items_of(preview_reals(dataset, 64, seed=0, by_class=True)[0])
    assert again == items_of(images)


def test_more_classes_than_images_shows_one_of_each_first_class() -> None:
    dataset = sorted_dataset([i // 3 for i in range(60)])  # 20 classes of 3
    images, cols = preview_reals(dataset, 8, seed=1, by_class=True)
    assert cols is None
    assert [i // 3 for i in items_of(images)] == list(range(8))


def test_a_class_with_too_few_images_is_padded_with_black() -> None:
    dataset = sorted_dataset([0, 0, 0, 0, 1, 1])
    images, cols = preview_reals(dataset, 8, seed=0, by_class=True)
    assert cols == 4
    row0, row1 = items_of(images)[:4], items_of(images)[4:]
    assert sorted(row0) == [0, 1, 2, 3]
    assert sorted(row1[:2]) == [4, 5] and row1[2:] == [-1, -1]
    assert images[6:].eq(0).all()


class CountingDataset(ArrayDataset):
    """An `ArrayDataset` that counts item reads and batch gathers."""

    reads = gathers = 0

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if not torch.is_tensor(index):
            self.reads += 1
        return super().__getitem__(index)

    def gather(self, indices: list[int]) -> dict[str, torch.Tensor]:
        self.gathers += 1
        return super().gather(indices)


def test_labels_come_from_the_labels_array_not_from_reading_items() -> None:
    labels = np.arange(60_000) % 10
    images = np.zeros((60_000, 1, 2, 2), np.uint8)
    dataset = CountingDataset(images, labels, name="big")
    images_out, cols = preview_reals(dataset, 64, seed=0, by_class=True)
    assert images_out.shape[0] == 60 and cols == 6
    assert dataset.reads == 1 and dataset.gathers == 1  # one item to see it has images, one gather


class ItemLabels(Dataset):
    """A labelled image dataset with no `labels` array or `gather`: read item by item."""

    num_classes = 2

    def __len__(self) -> int:
        return 6

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        img = torch.full((1, 2, 2), index + 1, dtype=torch.uint8)
        return {"img": img, "label": torch.tensor(index % 2)}


def test_datasets_without_a_labels_array_are_read_item_by_item() -> None:
    images, cols = preview_reals(ItemLabels(), 4, seed=0, by_class=True)
    assert cols == 2
    assert [i % 2 for i in items_of(images)] == [0, 0, 1, 1]


def test_point_datasets_have_no_preview() -> None:
    assert preview_reals(ring8(), 64, seed=0, by_class=False) is None
