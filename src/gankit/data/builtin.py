"""Built-in datasets, registered by name: digits, mnist, fashion-mnist, cifar10.

Each builder is `fn(root=None, resolution=None, channels=None, split="train") -> ImageDataset`.

- Files are looked for under the data root (`gankit.paths.data_root`: `root`, else
  `GANKIT_DATA_ROOT`, else `~/.cache/gankit/data`): in `<root>/<name>/`, in torchvision's layout
  (`<root>/MNIST/raw/`, `<root>/FashionMNIST/raw/`, `<root>/cifar-10-batches-py/`), and directly
  in `<root>/` (meant for a root that holds just that one dataset). When they are absent and
  downloads are allowed, torchvision's downloader fetches them into the root; otherwise the error
  lists the exact files and folders.
- `resolution=None` keeps the native size. A smaller one is an antialiased Lanczos downscale
  (PIL). For 28x28 data, 32 pads 2 black pixels on every side (the usual MNIST trick; the
  background is 0). Anything larger than the images is refused: gankit never upscales.
- `channels=None` keeps the native channels; 3 on greyscale repeats the channel; 1 on RGB takes
  ITU-R 601-2 luma (the same integers as PIL's "L").
- `split` is "train" or "test"; `digits` has only "train" (it is one small set).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch
import torch.nn.functional as F

from gankit.data import cifar
from gankit.data.base import ArrayDataset, ImageDataset
from gankit.data.idx import IMAGES_MAGIC, LABELS_MAGIC, read_idx
from gankit.data.imaging import downscale, to_luma, zero_pad
from gankit.data.prepare import PreparedDataset, entry_for, load_entry, save_entry
from gankit.errors import ConfigError, DataError
from gankit.paths import data_root, downloads_allowed
from gankit.registry import DATASETS

SPLITS = ("train", "test")
IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
# Dataset name -> (torchvision's folder name, where to get the files by hand, class names).
IDX_DATASETS = {
    "mnist": (
        "MNIST",
        "https://ossci-datasets.s3.amazonaws.com/mnist/ (torchvision's mirror of LeCun's files)",
        [str(d) for d in range(10)],
    ),
    "fashion-mnist": (
        "FashionMNIST",
        "https://github.com/zalandoresearch/fashion-mnist (folder data/fashion)",
        ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"],
    ),
}  # fmt: skip
CIFAR10_CLASSES = [
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"
]  # fmt: skip
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"

Found = TypeVar("Found")


@DATASETS.register("digits")
def digits(
    root: str | None = None,
    resolution: int | None = None,
    channels: int | None = None,
    split: str = "train",
) -> ImageDataset:
    """scikit-learn's 1,797 8x8 handwritten digits at 32x32 (bicubic); ships with sklearn."""
    from sklearn.datasets import load_digits

    check_request("digits", resolution, channels, split, splits=("train",))
    res = check_fits("digits", 32, resolution)
    bunch = load_digits()
    # Interpolate straight from the 8x8 source to the target size: one resampling, not two.
    # antialias=True makes the rare target below 8 a proper downscale.
    img = torch.from_numpy(bunch.images.astype(np.float32) / 16.0).unsqueeze(1)
    img = F.interpolate(img, size=res, mode="bicubic", align_corners=False, antialias=True)
    images = (img.clamp(0, 1) * 255).round().to(torch.uint8).numpy()
    images, steps = fit_channels(images, channels)
    text = (
        f"digits: {len(images):,} scikit-learn 8x8 digits (values 0-16 scaled to 0-255), "
        f"resized to {res}x{res} with bicubic interpolation{_steps_text(steps, '')}; labels 0-9"
    )
    return _array_dataset(images, bunch.target, "digits", text, [str(d) for d in range(10)])


@DATASETS.register("mnist")
def mnist(
    root: str | None = None,
    resolution: int | None = None,
    channels: int | None = None,
    split: str = "train",
) -> ImageDataset:
    """MNIST handwritten digits (LeCun et al.): 60,000 train / 10,000 test, 28x28 grey."""
    return _idx_dataset("mnist", root, resolution, channels, split)


@DATASETS.register("fashion-mnist")
def fashion_mnist(
    root: str | None = None,
    resolution: int | None = None,
    channels: int | None = None,
    split: str = "train",
) -> ImageDataset:
    """Fashion-MNIST (Xiao et al., arXiv:1708.07747): 60,000/10,000 28x28 grey clothes."""
    return _idx_dataset("fashion-mnist", root, resolution, channels, split)


@DATASETS.register("cifar10")
def cifar10(
    root: str | None = None,
    resolution: int | None = None,
    channels: int | None = None,
    split: str = "train",
) -> ImageDataset:
    """CIFAR-10 (Krizhevsky 2009): 50,000 train / 10,000 test 32x32 RGB images, 10 classes."""
    check_request("cifar10", resolution, channels, split)
    check_fits("cifar10", 32, resolution)
    base = data_root(root)
    folders = [(base / "cifar10", True), (base / "cifar10-jpg", True), (base, False)]
    source = locate("cifar10", base, lambda: cifar.find(folders), lambda: _cifar_missing(folders))
    request = {
        "path": str(source.path.resolve()),
        "split": split,
        "res": resolution,
        "ch": channels,
    }
    entry = entry_for(f"cifar10-{split}", request, source.content_key(split))
    dataset = load_entry(entry)
    if dataset is None:
        for name, data in cifar.read(source, split).items():
            other = entry_for(
                f"cifar10-{name}", {**request, "split": name}, source.content_key(name)
            )
            if name == split or load_entry(other) is None:
                _save_cifar10(other, name, data, source, resolution, channels)
        dataset = PreparedDataset(entry)
    return dataset


def _save_cifar10(
    entry: Path,
    split: str,
    data: cifar.Split,
    source: cifar.Source,
    resolution: int | None,
    channels: int | None,
) -> None:
    """Apply the resolution and channel rules to one decoded split and cache it."""
    images, labels, class_names = data
    images, steps = fit_builtin("cifar10", images, resolution, channels)
    kind = {"tar": "tar", "batches": "python batches", "folders": "class folders"}[source.kind]
    text = (
        f"cifar10 {split} split: {len(images):,} 32x32 RGB images from "
        f"{source.path.resolve()} ({kind}){_steps_text(steps)}; labels 0-9 in alphabetical "
        "class order"
    )
    meta = {"name": "cifar10", "description": text, "class_names": class_names or CIFAR10_CLASSES}
    save_entry(entry, images, labels, meta)


def _idx_dataset(
    name: str, root: str | None, resolution: int | None, channels: int | None, split: str
) -> ImageDataset:
    """MNIST-style data from the four IDX files."""
    check_request(name, resolution, channels, split)
    check_fits(name, 28, resolution)
    base = data_root(root)
    folders = _idx_folders(name, base)
    found = locate(
        name, base, lambda: _find_idx(folders, split), lambda: _idx_missing(name, folders, split)
    )
    images_path, labels_path = found
    images = read_idx(images_path, IMAGES_MAGIC)
    labels = read_idx(labels_path, LABELS_MAGIC)
    _check_idx(images, labels, images_path, labels_path)
    images, steps = fit_builtin(name, images[:, None], resolution, channels)
    text = (
        f"{name} {split} split: {len(images):,} 28x28 greyscale images from "
        f"{images_path.parent.resolve()} (IDX){_steps_text(steps)}; labels 0-9"
    )
    return _array_dataset(images, labels, name, text, IDX_DATASETS[name][2])


def _idx_folders(name: str, base: Path) -> list[Path]:
    return [base / name, base / IDX_DATASETS[name][0] / "raw", base]


def _find_idx(folders: list[Path], split: str) -> tuple[Path, Path] | None:
    """(images file, labels file) of `split` from the first folder that has both."""
    for folder in folders:
        paths = [_idx_file(folder, stem) for stem in IDX_FILES[split]]
        if paths[0] is not None and paths[1] is not None:
            return paths[0], paths[1]
    return None


def _idx_file(folder: Path, stem: str) -> Path | None:
    """`stem` in `folder`, gzipped or not, also with the `.idx` spelling some mirrors use."""
    dotted = stem.replace("-idx", ".idx")
    for name in (f"{stem}.gz", stem, f"{dotted}.gz", dotted):
        if (folder / name).is_file():
            return folder / name
    return None


def _check_idx(
    images: np.ndarray, labels: np.ndarray, images_path: Path, labels_path: Path
) -> None:
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (28, 28):
        raise DataError(
            f"{images_path} holds {images.dtype} {images.shape}, not 28x28 uint8 images"
        )
    if labels.shape != (len(images),):
        raise DataError(
            f"{labels_path} has {labels.shape[0]:,} labels but {images_path} has "
            f"{len(images):,} images; the two files come from different sets"
        )
    if len(labels) and labels.max() > 9:
        raise DataError(f"{labels_path} has label {labels.max()}, expected 0-9")


def _idx_missing(name: str, folders: list[Path], split: str) -> str:
    images, labels = (f"{stem}.gz" for stem in IDX_FILES[split])
    other = "test" if split == "train" else "train"
    others = " and ".join(f"{stem}.gz" for stem in IDX_FILES[other])
    return (
        f"{name} ({split} split) needs the files {images} and {labels} (gzipped or not; the "
        f"{other} split needs {others}) in the folder {folders[0]}/ ; none were found there, in "
        f"{folders[1]}/ or in {folders[2]}/. Get them from {IDX_DATASETS[name][1]}."
    )


def _cifar_missing(folders: list[tuple[Path, bool]]) -> str:
    first, others = folders[0][0], ", ".join(f"{f}/" for f, _ in folders[1:])
    return (
        f"cifar10 needs one of these in the folder {first}/ (also searched: {others}): "
        "cifar-10-python.tar.gz from "
        f"{CIFAR10_URL}, or its extracted cifar-10-batches-py/ folder (data_batch_1 ... "
        "data_batch_5, test_batch), or one folder per class (train/<class>/*.png and "
        "test/<class>/*.png; class folders sorted alphabetically give the labels), or a .tar, "
        ".tar.gz or .tar.xz of those folders; none was found."
    )


def locate(
    name: str, base: Path, find: Callable[[], Found | None], missing: Callable[[], str]
) -> Found:
    """`find()`'s result, downloading into `base` first if needed and allowed."""
    found = find()
    if found is not None:
        return found
    fix = (
        f" The data root is {base}: change it with --data-root or the GANKIT_DATA_ROOT "
        "environment variable."
    )
    if not downloads_allowed():
        raise DataError(f"{missing()} Downloads are disabled (GANKIT_NO_DOWNLOAD is set).{fix}")
    try:
        download(name, base)
    except Exception as exc:  # Offline, proxy, mirror down, disk full: all mean "put them by hand".
        raise DataError(
            f"{missing()} Downloading them failed ({type(exc).__name__}: {exc}).{fix}"
        ) from exc
    found = find()
    if found is None:
        raise DataError(f"{missing()} A download finished but did not produce them.{fix}")
    return found


def download(name: str, base: Path) -> None:
    """Fetch built-in `name` into `base` with torchvision's downloader (checksums verified)."""
    import torchvision.datasets as tvd

    classes = {"mnist": tvd.MNIST, "fashion-mnist": tvd.FashionMNIST, "cifar10": tvd.CIFAR10}
    base.mkdir(parents=True, exist_ok=True)
    classes[name](str(base), train=True, download=True)


def check_request(
    name: str,
    resolution: int | None,
    channels: int | None,
    split: str,
    splits: tuple[str, ...] = SPLITS,
) -> None:
    """Reject a bad resolution, channel count or split before touching any file."""
    if resolution is not None and (
        isinstance(resolution, bool) or not isinstance(resolution, int) or resolution < 1
    ):
        raise ConfigError(f"resolution must be a positive integer or None, got {resolution!r}")
    if channels not in (None, 1, 3):
        raise ConfigError(f"channels must be 1 (greyscale), 3 (RGB) or None, got {channels!r}")
    if split not in splits:
        raise ConfigError(f"{name} has the splits {', '.join(splits)}; got split={split!r}")


def fit_builtin(
    name: str, images: np.ndarray, resolution: int | None, channels: int | None
) -> tuple[np.ndarray, list[str]]:
    """Apply the built-in resolution and channel rules to `[N, C, H, H]`; returns the steps."""
    native = images.shape[-1]
    steps = []
    if channels == 1 and images.shape[1] == 3:
        images = to_luma(images)
        steps.append("converted to greyscale (ITU-R 601-2 luma)")
    target = resolution or native
    if target < native:
        images = downscale(images, target)
        steps.append(f"downscaled to {target}x{target} with Lanczos")
    elif target > native:
        check_fits(name, native, target)
        images = zero_pad(images, target)
        steps.append("zero-padded by 2 px on each side to 32x32")
    colour, steps_c = fit_channels(images, channels)
    return colour, steps + steps_c


def fit_channels(images: np.ndarray, channels: int | None) -> tuple[np.ndarray, list[str]]:
    """Repeat a grey channel to RGB when `channels=3` (the cheap step, done last)."""
    if channels == 3 and images.shape[1] == 1:
        return np.repeat(images, 3, axis=1), ["grey channel repeated to RGB"]
    return images, []


def check_fits(name: str, native: int, resolution: int | None) -> int:
    """`resolution` (None: `native`) if built-in `name` can provide it without upscaling."""
    if resolution is None or resolution <= native or (native, resolution) == (28, 32):
        return resolution or native
    pad = " or 32 (zero-padded)" if native == 28 else ""
    raise DataError(
        f"{name} images are {native}x{native}; resolution {resolution} is larger than the images "
        f"and gankit never upscales. Use {native} or smaller{pad}, or train on your own larger "
        "images by passing a folder."
    )


def _steps_text(steps: list[str], unchanged: str = ", native size") -> str:
    return ", " + ", ".join(steps) if steps else unchanged


def _array_dataset(
    images: np.ndarray, labels: np.ndarray, name: str, text: str, class_names: list[str]
) -> ArrayDataset:
    dataset = ArrayDataset(images, labels, name=name, description=text, num_classes=10)
    dataset.class_names = class_names
    return dataset
