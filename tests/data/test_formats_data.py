"""Synthetic IDX and CIFAR-10 files in every accepted layout, and the pixel helpers."""

from __future__ import annotations

import gzip
import io
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import gankit.data.cifar as cifar_mod
from gankit.data import open_dataset
from gankit.data.idx import IMAGES_MAGIC, LABELS_MAGIC, read_idx
from gankit.data.imaging import downscale, lanczos_matrix, to_luma, zero_pad
from gankit.errors import DataError

CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def idx_bytes(array: np.ndarray) -> bytes:
    """`array` (uint8) in IDX format."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_idx_set(folder: Path, count: int, gz: bool, split: str = "train") -> np.ndarray:
    """Write an MNIST-style images+labels pair; returns the images."""
    rng = np.random.default_rng(count)
    images = rng.integers(0, 256, (count, 28, 28), dtype=np.uint8)
    labels = np.arange(count, dtype=np.uint8) % 10
    prefix = "train" if split == "train" else "t10k"
    folder.mkdir(parents=True, exist_ok=True)
    for stem, array in (
        (f"{prefix}-images-idx3-ubyte", images),
        (f"{prefix}-labels-idx1-ubyte", labels),
    ):
        data = idx_bytes(array)
        if gz:
            (folder / f"{stem}.gz").write_bytes(gzip.compress(data))
        else:
            (folder / stem).write_bytes(data)
    return images


# --- IDX ---------------------------------------------------------------------------------------


def test_read_idx_plain_and_gzipped(tmp_path: Path) -> None:
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    (tmp_path / "a").write_bytes(idx_bytes(array))
    (tmp_path / "a.gz").write_bytes(gzip.compress(idx_bytes(array)))
    np.testing.assert_array_equal(read_idx(tmp_path / "a", IMAGES_MAGIC), array)
    np.testing.assert_array_equal(read_idx(tmp_path / "a.gz", IMAGES_MAGIC), array)


def test_read_idx_rejects_bad_files(tmp_path: Path) -> None:
    good = idx_bytes(np.zeros((5, 28, 28), np.uint8))
    (tmp_path / "labels").write_bytes(good)
    with pytest.raises(DataError, match=r"labels is not a valid IDX file: magic number 0x00000803"):
        read_idx(tmp_path / "labels", LABELS_MAGIC)
    (tmp_path / "short").write_bytes(good[:-10])
    with pytest.raises(
        DataError, match=r"short is not a valid IDX.*needs 3,936 bytes but it has 3,926"
    ):
        read_idx(tmp_path / "short")
    (tmp_path / "cut.gz").write_bytes(gzip.compress(good)[:-30])
    with pytest.raises(DataError, match=r"cut\.gz is not a valid IDX file: it cannot be read"):
        read_idx(tmp_path / "cut.gz")
    (tmp_path / "html").write_bytes(b"<html>404</html>")
    with pytest.raises(DataError, match="does not start with an IDX magic number"):
        read_idx(tmp_path / "html")


@pytest.mark.parametrize("layout", ["mnist", "MNIST/raw", "."])
def test_mnist_layouts(tmp_path: Path, layout: str) -> None:
    images = write_idx_set(tmp_path / layout, 12, gz=layout != ".")
    ds = open_dataset("mnist", root=str(tmp_path))
    np.testing.assert_array_equal(ds.images.numpy()[:, 0], images)
    assert ds.labels.tolist() == [i % 10 for i in range(12)] and ds.num_classes == 10


def test_mnist_test_split_and_mismatched_counts(tmp_path: Path) -> None:
    write_idx_set(tmp_path / "mnist", 12, gz=True)
    test_images = write_idx_set(tmp_path / "mnist", 7, gz=True, split="test")
    np.testing.assert_array_equal(
        open_dataset("mnist", root=str(tmp_path), split="test").images.numpy()[:, 0], test_images
    )
    labels = idx_bytes(np.zeros(5, np.uint8))
    (tmp_path / "mnist" / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(labels))
    with pytest.raises(DataError, match=r"has 5 labels but .* has 12 images"):
        open_dataset("mnist", root=str(tmp_path))


# --- CIFAR-10 layouts --------------------------------------------------------------------------


def cifar_images(count: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (count, 3, 32, 32), dtype=np.uint8)


def write_batches(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """The python-batch layout with 4 images per train batch and 3 in test_batch."""
    folder.mkdir(parents=True)
    images, labels = [], []
    for i, name in enumerate([*(f"data_batch_{k}" for k in range(1, 6)), "test_batch"]):
        batch = cifar_images(3 if name == "test_batch" else 4, i)
        batch_labels = [(i + j) % 10 for j in range(len(batch))]
        payload = {b"data": batch.reshape(len(batch), -1), b"labels": batch_labels}
        (folder / name).write_bytes(pickle.dumps(payload, protocol=2))
        images.append(batch)
        labels.append(batch_labels)
    return np.concatenate(images[:5]), np.concatenate(labels[:5])


def write_class_folders(root: Path, per_class: int = 2) -> dict[str, np.ndarray]:
    """`train/<class>/` and `test/<class>/` PNGs; returns the expected arrays per split."""
    expected = {}
    for split, seed in (("train", 0), ("test", 1)):
        pixels = cifar_images(per_class * 10, seed)
        for k, img in enumerate(pixels):
            path = root / split / CLASSES[k // per_class] / f"{k % per_class:04d}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(img.transpose(1, 2, 0)).save(path)
        expected[split] = pixels
    return expected


def make_tar(source: Path, target: Path, mode: str, arcname: str) -> Path:
    with tarfile.open(target, mode) as archive:
        archive.add(source, arcname=arcname)
    return target


def test_cifar_python_batches_and_official_tar(tmp_path: Path) -> None:
    images, labels = write_batches(tmp_path / "a" / "cifar10" / "cifar-10-batches-py")
    ds = open_dataset("cifar10", root=str(tmp_path / "a"))
    np.testing.assert_array_equal(ds.images.numpy(), images)
    assert ds.labels.tolist() == labels.tolist() and len(ds) == 20 and ds.class_names == CLASSES
    assert len(open_dataset("cifar10", root=str(tmp_path / "a"), split="test")) == 3
    (tmp_path / "b").mkdir()
    batches = tmp_path / "a" / "cifar10" / "cifar-10-batches-py"
    make_tar(batches, tmp_path / "b" / "cifar-10-python.tar.gz", "w:gz", "cifar-10-batches-py")
    from_tar = open_dataset("cifar10", root=str(tmp_path / "b"))
    np.testing.assert_array_equal(from_tar.images.numpy(), images)


def test_cifar_batch_cannot_run_code(tmp_path: Path) -> None:
    folder = tmp_path / "cifar10"
    write_batches(folder)

    class Evil:
        def __reduce__(self) -> tuple:
            return (print, ("pwned",))

    (folder / "data_batch_3").write_bytes(pickle.dumps({b"data": Evil()}))
    with pytest.raises(DataError, match=r"data_batch_3 is not a readable CIFAR-10 .*refusing"):
        open_dataset("cifar10", root=str(tmp_path))


@pytest.mark.parametrize("packing", ["folder", "tar.xz", "bare"])
def test_cifar_class_folders_and_tars(tmp_path: Path, packing: str) -> None:
    expected = write_class_folders(tmp_path / "src" / "CIFAR-10-images")
    root = tmp_path / "root"
    if packing == "folder":
        (tmp_path / "src").rename(root)
    elif packing == "tar.xz":
        (root / "cifar10-jpg").mkdir(parents=True)
        src = tmp_path / "src" / "CIFAR-10-images"
        make_tar(src, root / "cifar10-jpg" / "CIFAR-10-images.tar.xz", "w:xz", "CIFAR-10-images")
    else:
        root.mkdir()
        (tmp_path / "src" / "CIFAR-10-images" / "train").rename(root / "cifar10")
    ds = open_dataset("cifar10", root=str(root))
    np.testing.assert_array_equal(ds.images.numpy(), expected["train"])
    assert ds.labels.tolist() == [k // 2 for k in range(20)]
    if packing != "bare":
        test = open_dataset("cifar10", root=str(root), split="test")
        np.testing.assert_array_equal(test.images.numpy(), expected["test"])


def test_one_tar_pass_caches_both_splits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    expected = write_class_folders(tmp_path / "src")
    (tmp_path / "root" / "cifar10").mkdir(parents=True)
    make_tar(tmp_path / "src", tmp_path / "root" / "cifar10" / "c.tar.gz", "w:gz", "x")
    train = open_dataset("cifar10", root=str(tmp_path / "root"), resolution=16)
    monkeypatch.setattr(cifar_mod, "read", None)  # the test split must come from the cache
    test = open_dataset("cifar10", root=str(tmp_path / "root"), resolution=16, split="test")
    np.testing.assert_array_equal(test.images.numpy(), downscale(expected["test"], 16))
    np.testing.assert_array_equal(train.images.numpy(), downscale(expected["train"], 16))
    assert test.description.startswith("cifar10 test split: 20 32x32 RGB images")


def test_cifar_resolution_channels_and_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = write_class_folders(tmp_path / "cifar10")["train"]
    ds = open_dataset("cifar10", root=str(tmp_path), resolution=16, channels=1)
    assert tuple(ds.images.shape) == (20, 1, 16, 16)
    np.testing.assert_array_equal(ds.images.numpy(), downscale(to_luma(expected), 16))
    assert "converted to greyscale (ITU-R 601-2 luma), downscaled to 16x16" in ds.description

    def no_decoding(*args: object) -> None:
        raise AssertionError("the cache should have answered")

    monkeypatch.setattr(cifar_mod, "read", no_decoding)
    again = open_dataset("cifar10", root=str(tmp_path), resolution=16, channels=1)
    np.testing.assert_array_equal(again.images.numpy(), ds.images.numpy())
    with pytest.raises(DataError, match="resolution 64 is larger than the images"):
        open_dataset("cifar10", root=str(tmp_path), resolution=64)


def test_cifar_wrong_class_count(tmp_path: Path) -> None:
    write_class_folders(tmp_path / "src")
    with tarfile.open(tmp_path / "cifar10.tar", "w") as archive:
        for cls in CLASSES[:3]:
            archive.add(tmp_path / "src" / "train" / cls, arcname=f"train/{cls}")
    with pytest.raises(DataError, match=r"expected 10 CIFAR-10 class folders .* found 3"):
        open_dataset("cifar10", root=str(tmp_path))


# --- pixel helpers -----------------------------------------------------------------------------


def test_luma_is_bit_exact_with_pil() -> None:
    rgb = np.random.default_rng(0).integers(0, 256, (4, 3, 16, 16), dtype=np.uint8)
    expected = [np.asarray(Image.fromarray(x.transpose(1, 2, 0)).convert("L")) for x in rgb]
    np.testing.assert_array_equal(to_luma(rgb)[:, 0], np.stack(expected))


@pytest.mark.parametrize(("size", "target"), [(28, 14), (32, 16), (28, 9), (64, 48)])
def test_downscale_matches_pil_lanczos(size: int, target: int) -> None:
    rgb = np.random.default_rng(size).integers(0, 256, (6, 3, size, size), dtype=np.uint8)
    rgb[:, :, : size // 2] = 0  # a hard edge: Lanczos overshoots and both must clip alike
    expected = [
        np.asarray(Image.fromarray(x.transpose(1, 2, 0)).resize((target, target), Image.LANCZOS))
        for x in rgb
    ]
    diff = np.abs(downscale(rgb, target).astype(int) - np.stack(expected).transpose(0, 3, 1, 2))
    assert diff.max() <= 1  # PIL's fixed-point weights may round the other way
    assert (diff > 0).mean() < 0.01


def test_lanczos_rows_sum_to_one_and_identity_at_same_size() -> None:
    np.testing.assert_allclose(lanczos_matrix(28, 11).sum(axis=1), np.ones(11), atol=1e-6)
    np.testing.assert_allclose(lanczos_matrix(8, 8), np.eye(8), atol=1e-6)


def test_zero_pad_centres() -> None:
    out = zero_pad(np.full((1, 1, 28, 28), 9, np.uint8), 32)
    assert out.shape == (1, 1, 32, 32) and out.sum() == 9 * 28 * 28
    assert (out[0, 0, 2:30, 2:30] == 9).all()


def test_image_bytes_roundtrip_for_helpers() -> None:
    # decode_square on bytes (the tar path) gives the same result as on a file object.
    from gankit.data.imaging import decode_square

    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (30, 40, 3), np.uint8)).save(
        buffer, "PNG"
    )
    data = buffer.getvalue()
    np.testing.assert_array_equal(
        decode_square(data, 30, 3), decode_square(io.BytesIO(data), 30, 3)
    )


def test_cifar_truncated_tar(tmp_path: Path) -> None:
    write_class_folders(tmp_path / "src")
    full = make_tar(tmp_path / "src", tmp_path / "full.tar.xz", "w:xz", "CIFAR-10-images")
    (tmp_path / "cifar10").mkdir()
    data = full.read_bytes()
    (tmp_path / "cifar10" / "cifar10.tar.xz").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=r"cifar10\.tar\.xz is not a readable tar archive"):
        open_dataset("cifar10", root=str(tmp_path))


def test_unreadable_cache_entry_is_rebuilt(tmp_path: Path) -> None:
    expected = write_class_folders(tmp_path / "cifar10")["train"]
    first = open_dataset("cifar10", root=str(tmp_path))
    # A new file replaces the old one (writing in place would pull the pages from under `first`).
    (first.entry / "damaged.npy").write_bytes(b"damaged")
    (first.entry / "damaged.npy").replace(first.entry / "images.npy")
    again = open_dataset("cifar10", root=str(tmp_path))
    np.testing.assert_array_equal(again.images.numpy(), expected)
