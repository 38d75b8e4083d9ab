"""Finding and reading CIFAR-10 (Krizhevsky 2009) in the layouts people actually have.

Accepted, in each searched folder: the python batches (`cifar-10-batches-py/data_batch_1..5`,
`test_batch`); one folder per class (`train/<class>/*`, `test/<class>/*`, or bare `<class>/*` used
as the train split, optionally inside `CIFAR-10-images/`); or a .tar/.tar.gz/.tgz/.tar.xz of either.
Labels are the class folders' alphabetical order, which is the standard CIFAR-10 order
(airplane=0 ... truck=9). Images decoded from files are sorted by (class, file name), so a folder
and its tar give identical arrays. The pickled batches are loaded with an unpickler that only admits
numpy arrays, so a tampered file cannot run code.
"""

from __future__ import annotations

import codecs
import io
import pickle
import tarfile
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import ClassVar

import numpy as np
import torch

from gankit.data.folder import ImageRef, decode_job
from gankit.data.imaging import IMAGE_EXTENSIONS, decode_square, failure
from gankit.data.prepare import parallel_map, stat_key
from gankit.errors import DataError

try:
    from numpy._core.multiarray import _reconstruct, scalar
except ImportError:  # numpy < 2
    from numpy.core.multiarray import _reconstruct, scalar  # type: ignore[no-redef]

NUM_CLASSES = 10
SPLIT_SIZES = {"train": 50_000, "test": 10_000}
BATCH_FILES = {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}
TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.xz", ".txz")

#: One split as read: images uint8 `[N, 3, 32, 32]`, labels `[N]`, class names ([] if unnamed).
Split = tuple[np.ndarray, np.ndarray, list[str]]


@dataclass
class Source:
    """A located copy of CIFAR-10: `kind` is "batches", "folders" or "tar"."""

    kind: str
    path: Path
    #: For "folders": split -> the folder whose subfolders are the classes.
    split_dirs: dict[str, Path] = field(default_factory=dict)

    def content_key(self, split: str) -> object:
        """Changes whenever the files this split is read from change."""
        if self.kind == "tar":
            info = self.path.stat()
            return [info.st_size, info.st_mtime_ns]
        if self.kind == "batches":
            files = [self.path / f for f in BATCH_FILES[split] if (self.path / f).is_file()]
            return stat_key(files, self.path)
        return stat_key([p for _, p in self.class_files(split)], self.path)

    def class_files(self, split: str) -> list[tuple[str, Path]]:
        """(class name, file) for every image of `split` in a class-folder layout."""
        if split not in self.split_dirs:
            raise DataError(f"the CIFAR-10 copy at {self.path} has no {split!r} split folder")
        rows = []
        for cls in sorted(d for d in self.split_dirs[split].iterdir() if _visible_dir(d)):
            rows += [(cls.name, f) for f in sorted(cls.iterdir()) if _is_image(f.name)]
        return rows


def find(folders: list[tuple[Path, bool]]) -> Source | None:
    """The first CIFAR-10 copy in `folders`; each is (folder, accept any tar, not only cifar*)."""
    for folder, any_tar in folders:
        if not folder.is_dir():
            continue
        source = _find_batches(folder) or _find_class_folders(folder) or _find_tar(folder, any_tar)
        if source is not None:
            return source
    return None


def _find_batches(folder: Path) -> Source | None:
    for base in (folder / "cifar-10-batches-py", folder):
        if (base / "data_batch_1").is_file() or (base / "test_batch").is_file():
            return Source("batches", base)
    return None


def _find_class_folders(folder: Path) -> Source | None:
    for base in (folder, folder / "CIFAR-10-images"):
        splits = {s: base / s for s in ("train", "test") if _has_classes(base / s)}
        if splits:
            return Source("folders", base, splits)
        if _has_classes(base):
            return Source("folders", base, {"train": base})
    return None


def _has_classes(folder: Path) -> bool:
    """True when `folder` holds exactly ten subfolders that contain images."""
    if not folder.is_dir():
        return False
    subdirs = [d for d in folder.iterdir() if _visible_dir(d)]
    if len(subdirs) != NUM_CLASSES:
        return False
    return all(any(_is_image(f.name) for f in d.iterdir()) for d in subdirs)


def _find_tar(folder: Path, any_tar: bool) -> Source | None:
    for path in sorted(folder.iterdir()):
        name = path.name.lower()
        if path.is_file() and name.endswith(TAR_SUFFIXES) and (any_tar or "cifar" in name):
            return Source("tar", path)
    return None


def _visible_dir(path: Path) -> bool:
    return path.is_dir() and not path.name.startswith(".")


def _is_image(name: str) -> bool:
    return not name.startswith(".") and name.lower().endswith(IMAGE_EXTENSIONS)


def read(source: Source, split: str) -> dict[str, Split]:
    """{split: (images uint8 `[N, 3, 32, 32]`, labels `[N]`, class names)} for `split`.

    A tar is read in one pass for both splits (xz cannot seek, so reading it costs the same), and
    both are returned: the caller can cache the other split for free.
    """
    if source.kind == "batches":
        images, labels = _read_batch_files(source.path, split)
        return {split: (images, labels, [])}
    if source.kind == "folders":
        rows = source.class_files(split)
        refs = [ImageRef(f"{c}/{p.name}", str(p)) for c, p in rows]
        jobs = ((ref, 32, 3) for ref in refs)
        with closing(parallel_map(decode_job, jobs, len(refs), f"decoding cifar10 {split}")) as it:
            decoded = list(it)
        classes, names = [c for c, _ in rows], [p.name for _, p in rows]
        return {split: _assemble(decoded, classes, names, source.path)}
    return _read_tar(source.path, split)


def _read_batch_files(folder: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    missing = [f for f in BATCH_FILES[split] if not (folder / f).is_file()]
    if missing:
        raise DataError(
            f"the CIFAR-10 python batches in {folder} are incomplete: missing "
            f"{', '.join(missing)}. Extract the whole cifar-10-python.tar.gz there again."
        )
    parts = [_parse_batch((folder / f).read_bytes(), folder / f) for f in BATCH_FILES[split]]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


class _ArrayUnpickler(pickle.Unpickler):
    """Admits only what a CIFAR batch needs: numpy arrays, dtypes and scalars."""

    ALLOWED: ClassVar[dict[str, object]] = {
        "_reconstruct": _reconstruct,
        "scalar": scalar,
        "ndarray": np.ndarray,
        "dtype": np.dtype,
    }

    def find_class(self, module: str, name: str) -> object:
        if module.split(".")[0] == "numpy" and name in self.ALLOWED:
            return self.ALLOWED[name]
        if (module, name) == ("_codecs", "encode"):
            return codecs.encode  # how Python 3's protocol 2 stores bytes; harmless
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a CIFAR batch")


def _parse_batch(data: bytes, where: Path | str) -> tuple[np.ndarray, np.ndarray]:
    """(images `[N, 3, 32, 32]`, labels `[N]`) from one pickled batch."""
    try:
        batch = _ArrayUnpickler(io.BytesIO(data), encoding="bytes").load()
        pixels = np.asarray(batch.get(b"data", batch.get("data")), dtype=np.uint8)
        labels = np.asarray(batch.get(b"labels", batch.get("labels")), dtype=np.int64)
        # Rows are 1024 red, 1024 green, 1024 blue values: already channel-major.
        images = pixels.reshape(-1, 3, 32, 32)
    except Exception as exc:  # Any failure means the same thing to the user: a damaged batch.
        raise DataError(
            f"{where} is not a readable CIFAR-10 python batch ({type(exc).__name__}: {exc}); "
            "download cifar-10-python.tar.gz again."
        ) from None
    if len(labels) != len(images) or labels.min() < 0 or labels.max() >= NUM_CLASSES:
        raise DataError(f"{where}: labels do not match the images; download it again")
    return images, labels


def _read_tar(path: Path, split: str) -> dict[str, Split]:
    """One pass over the tar: batches are parsed, image files of both splits decoded."""
    # Imported here, before any worker pool forks, so that workers inherit it instead of each
    # importing it again.
    import torchvision.io  # noqa: F401

    batches: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    found: list[tuple[str, str, str]] = []
    members = _tar_members(path, batches, found)
    total = sum(SPLIT_SIZES.values())
    with closing(parallel_map(_decode_member, members, total, "decoding cifar10")) as it:
        decoded = list(it)
    if batches:
        return _tar_batches(batches, split, path)
    out = {}
    for name in SPLIT_SIZES:
        rows = [i for i, f in enumerate(found) if f[0] == name]
        if rows:
            images = [decoded[i] for i in rows]
            classes, names = [found[i][1] for i in rows], [found[i][2] for i in rows]
            out[name] = _assemble(images, classes, names, path)
    if split not in out:
        raise DataError(
            f"{path} holds no {split} images (expected members named like "
            f"{split}/<class>/<file>.png); it has {', '.join(out) or 'no'} split(s)"
        )
    return out


def _tar_batches(
    batches: dict[str, tuple[np.ndarray, np.ndarray]], split: str, path: Path
) -> dict[str, Split]:
    """The splits whose python batches are all in the tar (the requested one must be)."""
    out = {}
    for name, files in BATCH_FILES.items():
        if all(f in batches for f in files):
            parts = [batches[f] for f in files]
            out[name] = (
                np.concatenate([p[0] for p in parts]),
                np.concatenate([p[1] for p in parts]),
                [],
            )
    if split not in out:
        missing = [f for f in BATCH_FILES[split] if f not in batches]
        raise DataError(f"{path} lacks the CIFAR-10 batches {', '.join(missing)}")
    return out


def _tar_members(
    path: Path,
    batches: dict[str, tuple[np.ndarray, np.ndarray]],
    found: list[tuple[str, str, str]],
) -> Iterator[tuple[str, bytes]]:
    """Yields (name, bytes) of image members; fills `batches` and (split, class, file) `found`."""
    batch_files = {f for files in BATCH_FILES.values() for f in files}
    try:
        with tarfile.open(path, "r:*") as archive:
            for member in archive:
                if not member.isfile():
                    continue
                base = PurePosixPath(member.name).name
                if base in batch_files:
                    data = archive.extractfile(member).read()
                    batches[base] = _parse_batch(data, f"{path}:{member.name}")
                    continue
                where = _member_split_class(member.name)
                if where is not None:
                    found.append((*where, base))
                    yield f"{path}:{member.name}", archive.extractfile(member).read()
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise DataError(
            f"{path} is not a readable tar archive ({type(exc).__name__}: {exc}); "
            "it may be truncated: copy or download it again."
        ) from None


def _member_split_class(name: str) -> tuple[str, str] | None:
    """(split, class) of an image member: `.../train/<class>/x`, `.../test/...`, or `<class>/x`."""
    parts = PurePosixPath(name).parts
    if len(parts) < 2 or not _is_image(parts[-1]) or any(p.startswith(".") for p in parts):
        return None
    if len(parts) >= 3 and parts[-3] in ("train", "test"):
        return parts[-3], parts[-2]
    return "train", parts[-2]


def _decode_member(job: tuple[str, bytes]) -> np.ndarray | str:
    """One tar member as uint8 `[3, 32, 32]`, or why it cannot be decoded."""
    from torchvision.io import ImageReadMode, decode_image  # slow to import: only when needed

    name, data = job
    try:
        # torchvision's decoder gives the same pixels as PIL for these JPEGs, faster (PIL's
        # per-file Python header parsing dominates at 32x32); PIL handles anything else.
        img = decode_image(torch.frombuffer(bytearray(data), dtype=torch.uint8), ImageReadMode.RGB)
        if img.shape == (3, 32, 32):
            return img.numpy()
    except RuntimeError:
        pass
    try:
        return decode_square(data, 32, 3)
    except Exception as exc:  # PIL raises many types for broken files; all mean "unreadable".
        return failure(name, exc)


def _assemble(
    decoded: list[np.ndarray | str], classes: list[str], names: list[str], where: Path
) -> Split:
    """Stack decoded images sorted by (class, file name); labels from sorted class names."""
    bad = [d for d in decoded if isinstance(d, str)]
    if bad:
        raise DataError(f"cannot decode {len(bad)} CIFAR-10 images in {where}, e.g. {bad[0]}")
    class_names = sorted(set(classes))
    if len(class_names) != NUM_CLASSES:
        raise DataError(
            f"expected {NUM_CLASSES} CIFAR-10 class folders in {where}, found {len(class_names)}: "
            f"{', '.join(class_names) or 'none'}"
        )
    order = sorted(range(len(decoded)), key=lambda i: (classes[i], names[i]))
    index = {c: i for i, c in enumerate(class_names)}
    images = np.stack([decoded[i] for i in order])
    labels = np.array([index[classes[i]] for i in order], dtype=np.int64)
    return images, labels, class_names
