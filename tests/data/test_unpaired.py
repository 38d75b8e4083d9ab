"""Unpaired A/B images (trainA/, trainB/ in a folder or zip), their sampler and their preview."""

from __future__ import annotations

import itertools
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

import gankit.data.unpaired as unpaired_mod
from gankit.data import (
    InfiniteBatchSampler,
    UnpairedBatchSampler,
    batch_sampler_for,
    check_data_args,
    data_args_used,
    open_dataset,
)
from gankit.data.base import BatchView, collate, preview_reals
from gankit.data.imaging import to_luma
from gankit.data.sampler import permutation_seed
from gankit.errors import ConfigError, DataError


def pixels(seed: int, side: int, channels: int) -> np.ndarray:
    """Reproducible uint8 noise `[H, W]` (greyscale) or `[H, W, 3]`."""
    shape = (side, side) if channels == 1 else (side, side, 3)
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def domain(folder: Path, count: int, channels: int, side: int = 16, seed: int = 0) -> np.ndarray:
    """`count` PNGs 0.png, 1.png, ... in `folder`; returns their pixels as `[N, C, H, W]`."""
    folder.mkdir(parents=True)
    images = [pixels(seed + i, side, channels) for i in range(count)]
    for i, image in enumerate(images):
        Image.fromarray(image, "L" if channels == 1 else "RGB").save(folder / f"{i}.png")
    stacked = np.stack(images)
    return stacked[:, None] if channels == 1 else stacked.transpose(0, 3, 1, 2)


def horse2zebra(root: Path) -> dict[str, np.ndarray]:
    """A tiny published-style dataset: greyscale A (3 train, 1 test), RGB B (2 train, 2 test)."""
    return {
        "trainA": domain(root / "trainA", 3, channels=1, seed=0),
        "trainB": domain(root / "trainB", 2, channels=3, seed=10),
        "testA": domain(root / "testA", 1, channels=1, seed=20),
        "testB": domain(root / "testB", 2, channels=3, seed=30),
    }


def zip_of(folder: Path, target: Path, top: str = "") -> Path:
    """`folder` zipped, its files under `top/` (the usual zip of a folder) or at the root."""
    with zipfile.ZipFile(target, "w") as archive:
        for file in sorted(folder.rglob("*.png")):
            archive.write(file, top + file.relative_to(folder).as_posix())
    return target


# --- reading ------------------------------------------------------------------------------------


def test_each_domain_keeps_its_channels_and_pixels(tmp_path: Path) -> None:
    source = horse2zebra(tmp_path / "h2z")
    ds = open_dataset(str(tmp_path / "h2z"))
    assert (ds.kind, ds.resolution, ds.channels, ds.channels_b, ds.num_classes) == (
        "unpaired",
        16,
        1,
        3,
        0,
    )
    assert ds.domain_sizes == (3, 2) and len(ds) == 3
    batch = ds.gather([(2, 1), (0, 0)])
    assert set(batch) == {"img_a", "img_b"} and batch["img_a"].dtype == torch.uint8
    np.testing.assert_array_equal(batch["img_a"], source["trainA"][[2, 0]])
    np.testing.assert_array_equal(batch["img_b"], source["trainB"][[1, 0]])
    item = ds[(1, 1)]
    np.testing.assert_array_equal(item["img_a"], source["trainA"][1])
    np.testing.assert_array_equal(item["img_b"], source["trainB"][1])
    # An int k pairs A's k mod 3 with B's k mod 2.
    np.testing.assert_array_equal(ds[2]["img_b"], source["trainB"][0])
    assert "trainA" in ds.description and "trainB" in ds.description


def test_the_test_split_reads_testA_and_testB(tmp_path: Path) -> None:
    source = horse2zebra(tmp_path / "h2z")
    test = open_dataset(str(tmp_path / "h2z"), split="test")
    assert test.domain_sizes == (1, 2) and test.split == "test"
    np.testing.assert_array_equal(test.gather([(0, 1)])["img_b"], source["testB"][[1]])


@pytest.mark.parametrize("top", ["h2z/", ""])
def test_a_zip_reads_like_the_folder(tmp_path: Path, top: str) -> None:
    horse2zebra(tmp_path / "h2z")
    from_folder = open_dataset(str(tmp_path / "h2z"))
    from_zip = open_dataset(str(zip_of(tmp_path / "h2z", tmp_path / "h2z.zip", top)))
    assert from_zip.kind == "unpaired" and from_zip.domain_sizes == (3, 2)
    np.testing.assert_array_equal(from_zip.a.images, from_folder.a.images)
    np.testing.assert_array_equal(from_zip.b.images, from_folder.b.images)


def test_data_args_force_a_domains_channels(tmp_path: Path) -> None:
    source = horse2zebra(tmp_path / "h2z")
    ds = open_dataset(str(tmp_path / "h2z"), args={"channels_a": 3, "channels_b": 1})
    assert (ds.channels, ds.channels_b) == (3, 1)
    np.testing.assert_array_equal(ds.a.images, np.repeat(source["trainA"], 3, axis=1))
    np.testing.assert_array_equal(ds.b.images, to_luma(source["trainB"]))
    both = open_dataset(str(tmp_path / "h2z"), channels=3)  # --channels forces both domains
    assert (both.channels, both.channels_b) == (3, 3)


def test_the_args_a_resume_reopens_with_keep_each_domains_channels(tmp_path: Path) -> None:
    horse2zebra(tmp_path / "h2z")
    first = open_dataset(str(tmp_path / "h2z"))
    pinned = data_args_used(first, {})
    assert pinned == {"channels_a": 1, "channels_b": 3}
    # A resolved config holds data.channels = A's; the pinned args keep B in colour.
    again = open_dataset(str(tmp_path / "h2z"), channels=first.channels, args=pinned)
    assert (again.channels, again.channels_b) == (1, 3)
    assert data_args_used(open_dataset("digits"), {}) == {}


def test_the_auto_resolution_is_the_smaller_domains(tmp_path: Path) -> None:
    domain(tmp_path / "d" / "trainA", 2, channels=3, side=16)
    domain(tmp_path / "d" / "trainB", 2, channels=3, side=8)
    ds = open_dataset(str(tmp_path / "d"))
    assert ds.resolution == 8 and tuple(ds.a.images.shape) == (2, 3, 8, 8)
    assert "largest power of two" in ds.a.description
    assert open_dataset(str(tmp_path / "d"), resolution=4).resolution == 4


def test_a_missing_or_empty_domain_names_the_folder_and_the_layout(tmp_path: Path) -> None:
    domain(tmp_path / "d" / "trainA", 2, channels=1)
    with pytest.raises(DataError, match=r"trainB/ is missing\. Expected .*trainA/ and trainB/"):
        open_dataset(str(tmp_path / "d"))
    (tmp_path / "d" / "trainB").mkdir()
    with pytest.raises(DataError, match=r"its trainB/ holds no images"):
        open_dataset(str(tmp_path / "d"))
    with pytest.raises(DataError, match=r"its testA/ is missing"):
        open_dataset(str(tmp_path / "d"), split="test")
    zipped = zip_of(tmp_path / "d", tmp_path / "d.zip", "d/")  # trainB/ empty: not in the zip
    with pytest.raises(DataError, match=r"d\.zip is read as unpaired .* trainB/ is missing"):
        open_dataset(str(zipped))


def test_unusable_images_of_both_domains_are_named_in_one_error(tmp_path: Path) -> None:
    horse2zebra(tmp_path / "h2z")
    (tmp_path / "h2z" / "trainA" / "broken.png").write_bytes(b"not a png")
    domain(tmp_path / "h2z" / "trainB" / "tiny", 1, channels=3, side=4)
    with pytest.raises(DataError) as info:
        open_dataset(str(tmp_path / "h2z"), resolution=16)
    message = str(info.value)
    assert "broken.png" in message and "tiny/0.png (4x4)" in message and "\n" not in message
    ds = open_dataset(str(tmp_path / "h2z"), resolution=16, skip_bad_images=True)
    assert ds.domain_sizes == (3, 2)


def test_a_second_open_reads_the_cache_until_a_domain_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    horse2zebra(tmp_path / "h2z")
    first = open_dataset(str(tmp_path / "h2z"))
    real_scan = unpaired_mod.scan_images
    scans: list[Path] = []
    monkeypatch.setattr(
        unpaired_mod, "scan_images", lambda refs, path: scans.append(path) or real_scan(refs, path)
    )
    again = open_dataset(str(tmp_path / "h2z"))
    assert scans == [] and again.a.entry == first.a.entry
    shutil.copy(tmp_path / "h2z" / "trainB" / "0.png", tmp_path / "h2z" / "trainB" / "9.png")
    changed = open_dataset(str(tmp_path / "h2z"))
    assert changed.domain_sizes == (3, 3) and len(scans) == 2  # both domains read again


# --- data.args ----------------------------------------------------------------------------------


def test_unknown_or_wrong_data_args_are_one_config_error(tmp_path: Path) -> None:
    horse2zebra(tmp_path / "h2z")
    name = str(tmp_path / "h2z")
    assert check_data_args(name, {"channels_b": 1}) == {"channels_b": 1}
    with pytest.raises(ConfigError, match=r"data\.args\.'chanels_a'.*Did you mean .*'channels_a'"):
        check_data_args(name, {"chanels_a": 1})
    with pytest.raises(ConfigError, match="Known keys here: channels_a, channels_b"):
        open_dataset(name, args={"flip": True})
    with pytest.raises(ConfigError, match=r"data\.args\.channels_a"):
        check_data_args(name, {"channels_a": 2})
    with pytest.raises(ConfigError, match=r"data\.args\.channels_b: True is not one of 1, 3"):
        open_dataset(name, args={"channels_b": True})


def test_datasets_without_arguments_refuse_any(tmp_path: Path) -> None:
    domain(tmp_path / "plain", 2, channels=3)
    for name in ("digits", "ring8", str(tmp_path / "plain")):
        with pytest.raises(ConfigError, match=r"data\.args\.'split'.* takes no data arguments"):
            open_dataset(name, args={"split": "test"})
    assert open_dataset(str(tmp_path / "plain"), args={}).kind == "images"
    with pytest.raises(DataError, match="no file or folder"):
        check_data_args(str(tmp_path / "nowhere"), {"channels_a": 1})


# --- sampling -----------------------------------------------------------------------------------


def _batches(sampler: object, count: int) -> list[list]:
    return list(itertools.islice(iter(sampler), count))  # type: ignore[call-overload]


def test_a_and_b_are_two_independent_seeded_streams() -> None:
    pairs = [p for batch in _batches(UnpairedBatchSampler((10, 10), 4, seed=5), 5) for p in batch]
    a_stream = [i for batch in _batches(InfiniteBatchSampler(10, 4, seed=5), 5) for i in batch]
    assert [a for a, _ in pairs] == a_stream  # A: the images stream, unchanged
    b_side = [b for _, b in pairs]
    assert sorted(b_side[:10]) == list(range(10)) and b_side[:10] != a_stream[:10]
    # B's epochs are its own seeded permutations, on another stream than A's.
    gen = torch.Generator().manual_seed(permutation_seed(5, epoch=1, stream=1))
    assert b_side[10:20] == torch.randperm(10, generator=gen).tolist()
    assert b_side[10:20] != a_stream[10:20]


def test_a_resumed_stream_continues_the_uninterrupted_one() -> None:
    whole = [p for b in _batches(UnpairedBatchSampler((7, 5), 4, seed=2), 6) for p in b]
    resumed = UnpairedBatchSampler((7, 5), 4, seed=2, start_nimg=12)
    assert [p for b in _batches(resumed, 3) for p in b] == whole[12:24]


def test_ranks_see_disjoint_slices_of_each_global_batch() -> None:
    whole = _batches(UnpairedBatchSampler((7, 5), 4, seed=1), 4)
    ranks = [
        _batches(UnpairedBatchSampler((7, 5), 4, seed=1, rank=r, world_size=2), 4) for r in (0, 1)
    ]
    for step, (zero, one) in enumerate(zip(*ranks, strict=True)):
        assert zero == whole[step][:2] and one == whole[step][2:]


def test_the_loader_gathers_unpaired_batches_in_one_go(tmp_path: Path) -> None:
    source = horse2zebra(tmp_path / "h2z")
    ds = open_dataset(str(tmp_path / "h2z"))
    sampler = batch_sampler_for(ds, 4, seed=0, start_nimg=0, rank=0, world_size=1)
    assert isinstance(sampler, UnpairedBatchSampler)
    loader = DataLoader(BatchView(ds), batch_sampler=sampler, collate_fn=collate)
    pairs = torch.tensor(next(iter(sampler)))
    batch = next(iter(loader))
    assert tuple(batch["img_a"].shape) == (4, 1, 16, 16)
    assert tuple(batch["img_b"].shape) == (4, 3, 16, 16)
    np.testing.assert_array_equal(batch["img_a"], source["trainA"][pairs[:, 0]])
    np.testing.assert_array_equal(batch["img_b"], source["trainB"][pairs[:, 1]])


def test_images_keep_the_plain_stream() -> None:
    from gankit.data.toy import ring8

    points = ring8()
    sampler = batch_sampler_for(points, 6, seed=3, start_nimg=6, rank=1, world_size=2)
    expected = InfiniteBatchSampler(len(points), 6, seed=3, start_nimg=6, rank=1, world_size=2)
    assert _batches(sampler, 3) == _batches(expected, 3)


# --- preview ------------------------------------------------------------------------------------


def test_the_reals_preview_of_unpaired_data_is_domain_a(tmp_path: Path) -> None:
    source = horse2zebra(tmp_path / "h2z")
    ds = open_dataset(str(tmp_path / "h2z"))
    images, cols = preview_reals(ds, 8, seed=0, by_class=True)
    assert cols is None and tuple(images.shape) == (3, 1, 16, 16)  # all 3 A images, shuffled
    order = torch.randperm(3, generator=torch.Generator().manual_seed(0))
    np.testing.assert_array_equal(images, source["trainA"][order])
