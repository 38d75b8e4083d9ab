"""Your own images: a folder (searched recursively) or a .zip of jpg/jpeg/png/webp/bmp files.

Each image is converted to RGB (or "L" with `channels=1`), center-cropped to a square and resized
with Lanczos to one resolution, never upscaled (see `gankit.data.imaging`). With
`resolution=None` the resolution is the largest power of two not above the smallest image's
shorter side. When every image sits in a first-level subfolder and there are at least two, the
sorted subfolder names are the class labels. A zip whose members all share one top folder (the
usual result of zipping a folder) is read as if that folder were the root, so it labels exactly
like the folder it came from.

The decoded array is prepared once and cached (`gankit.data.prepare`); the cache key covers the
name, size and mtime of every file, so editing, adding or removing an image re-prepares.
"""

from __future__ import annotations

import os
import warnings
import zipfile
from collections import Counter
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

import numpy as np

from gankit.data.imaging import IMAGE_EXTENSIONS, decode_square, failure, image_size
from gankit.data.prepare import (
    EntryWriter,
    PreparedDataset,
    entry_for,
    load_entry,
    parallel_map,
    stat_key,
)
from gankit.errors import DataError

#: How many offending files an error message lists before "and N more".
SHOW_FILES = 5

# Per-process open zips, keyed by pid too: a ZipFile inherited through fork shares its file offset
# with the parent, so each worker must open its own.
_ZIPS: dict[tuple[int, str], zipfile.ZipFile] = {}


@dataclass(frozen=True)
class ImageRef:
    """One source image: `name` relative to the dataset root, read from a file or a zip member."""

    name: str
    path: str
    member: str | None = None

    def open(self) -> BinaryIO:
        """The encoded file, opened for reading (PIL reads only what it needs)."""
        if self.member is None:
            return open(self.path, "rb")  # the caller closes it
        key = (os.getpid(), self.path)
        if key not in _ZIPS:
            _ZIPS[key] = zipfile.ZipFile(self.path)
        return _ZIPS[key].open(self.member)


def _close_zips() -> None:
    """Close this process's zips, so a zip replaced later is re-opened, not read stale."""
    for key in [k for k in _ZIPS if k[0] == os.getpid()]:
        _ZIPS.pop(key).close()


@dataclass
class _Plan:
    """What pass one learnt: the readable images, their sizes and modes, the bad files."""

    refs: list[ImageRef]
    sizes: list[tuple[int, int]]
    modes: Counter
    bad: list[str]


def open_image_folder(
    path: Path,
    *,
    name: str,
    resolution: int | None = None,
    channels: int = 3,
    skip_bad_images: bool = False,
) -> PreparedDataset:
    """The images under folder or zip `path` as a prepared, cached dataset `[N, C, R, R]`."""
    refs, content = _list_images(path)
    source = {
        "path": str(path.resolve()),
        "res": resolution,
        "ch": channels,
        "skip": skip_bad_images,
    }
    entry = entry_for(path.stem, source, content)
    dataset = load_entry(entry)
    if dataset is None:
        try:
            dataset = _prepare(path, name, refs, entry, resolution, channels, skip_bad_images)
        finally:
            _close_zips()
    if dataset.skipped:
        warnings.warn(_skipped_text(dataset.skipped), stacklevel=3)
    return dataset


def _list_images(path: Path) -> tuple[list[ImageRef], object]:
    """The images under `path` sorted by name, and a key that changes when any file does."""
    if path.is_dir():
        files = sorted(_walk(path))
        refs = [ImageRef(f.relative_to(path).as_posix(), str(f)) for f in files]
        content: object = stat_key(files, path)
    elif path.suffix.lower() == ".zip":
        refs = _zip_members(path)
        info = path.stat()
        content = [info.st_size, info.st_mtime_ns]
    else:
        raise DataError(
            f"{path} is a file, not a folder or a .zip of images. Point at the folder that holds "
            "the images, or zip them (a .tar must be extracted first)."
        )
    if not refs:
        kind = "zip" if path.is_file() else "folder"
        raise DataError(
            f"no images found in the {kind} {path} (searched recursively for "
            f"{', '.join(IMAGE_EXTENSIONS)}, any letter case; hidden files are skipped)."
        )
    return refs, content


def _walk(root: Path) -> list[Path]:
    """Image files under `root`, recursively, skipping hidden files and folders."""
    found = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for file in files:
            if not file.startswith(".") and file.lower().endswith(IMAGE_EXTENSIONS):
                found.append(Path(folder) / file)
    return found


def _zip_members(path: Path) -> list[ImageRef]:
    """Image members of the zip at `path`, named relative to its single top folder if any."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = [i.filename for i in archive.infolist() if not i.is_dir()]
    except (zipfile.BadZipFile, OSError) as exc:
        raise DataError(
            f"{path} is not a readable zip file ({exc}). Re-create it (e.g. `zip -r data.zip "
            "images/`) or point at the extracted folder instead."
        ) from None
    names = sorted(n for n in names if _is_image_member(n))
    parts = [PurePosixPath(n).parts for n in names]
    strip = len(parts) > 0 and all(len(p) > 1 for p in parts) and len({p[0] for p in parts}) == 1
    return [
        ImageRef(PurePosixPath(*p[1:]).as_posix() if strip else n, str(path), n)
        for n, p in zip(names, parts, strict=True)
    ]


def _is_image_member(name: str) -> bool:
    """True for a visible image file in a zip (macOS resource forks are hidden junk)."""
    parts = PurePosixPath(name).parts
    hidden = any(p.startswith(".") or p == "__MACOSX" for p in parts)
    return not hidden and name.lower().endswith(IMAGE_EXTENSIONS)


def _prepare(
    path: Path,
    name: str,
    refs: list[ImageRef],
    entry: Path,
    resolution: int | None,
    channels: int,
    skip_bad_images: bool,
) -> PreparedDataset:
    """Pass one reads every header; pass two decodes into the cache entry."""
    plan = _scan(refs, path, skip_bad_images)
    target = resolution or _auto_resolution(plan.sizes)
    _check_sizes(plan, target, path)
    # Classes come from every listed file, so skipping a bad image never renumbers the labels.
    class_names, labels = _labels([r.name for r in refs], plan.refs)
    writer = EntryWriter(entry)
    try:
        images, late_bad = _decode_all(plan.refs, writer, target, channels, path, skip_bad_images)
        if late_bad:
            keep = _drop(plan, late_bad)
            images = writer.shrink(images, keep)
            labels = None if labels is None else labels[keep]
        if len(images) == 0:
            raise _all_bad_error(path, plan.bad)
        meta = {
            "name": name,
            "class_names": class_names,
            "skipped": plan.bad,
            "description": _describe(path, plan, len(images), target, channels, class_names,
                                     auto=resolution is None),
        }  # fmt: skip
        writer.commit(images, labels, meta)
    except BaseException:
        writer.abort()
        raise
    return PreparedDataset(entry)


def _drop(plan: _Plan, failed: list[tuple[int, str]]) -> np.ndarray:
    """Move images that failed to decode from `plan.refs` to `plan.bad`; returns the kept mask."""
    keep = np.ones(len(plan.refs), dtype=bool)
    keep[[i for i, _ in failed]] = False
    plan.refs = [r for r, k in zip(plan.refs, keep, strict=True) if k]
    plan.sizes = [s for s, k in zip(plan.sizes, keep, strict=True) if k]
    plan.bad += [reason for _, reason in failed]
    return keep


def _header(ref: ImageRef) -> tuple[int, int, str] | str:
    """(width, height, mode) of one image, or why it cannot be read."""
    try:
        with ref.open() as file:
            return image_size(file)
    except Exception as exc:  # PIL raises many types for broken files; all mean "unreadable".
        return failure(ref.name, exc)


def decode_job(job: tuple[ImageRef, int, int]) -> np.ndarray | str:
    """One image as uint8 `[C, R, R]`, or why it cannot be decoded."""
    ref, resolution, channels = job
    try:
        with ref.open() as file:
            return decode_square(file, resolution, channels)
    except Exception as exc:  # A truncated file only fails here, when the pixels are read.
        return failure(ref.name, exc)


def _scan(refs: list[ImageRef], path: Path, skip_bad_images: bool) -> _Plan:
    """Pass one: read every header; fail on unreadable files unless they are skipped."""
    plan = _Plan([], [], Counter(), [])
    with closing(parallel_map(_header, refs, len(refs), "reading image sizes")) as results:
        for ref, result in zip(refs, results, strict=True):
            if isinstance(result, str):
                plan.bad.append(result)
            else:
                plan.refs.append(ref)
                plan.sizes.append(result[:2])
                plan.modes[result[2]] += 1
    if plan.bad and not skip_bad_images:
        raise _bad_error(path, plan.bad)
    if not plan.refs:
        raise _all_bad_error(path, plan.bad)
    return plan


def _decode_all(
    refs: list[ImageRef],
    writer: EntryWriter,
    resolution: int,
    channels: int,
    path: Path,
    skip_bad_images: bool,
) -> tuple[np.ndarray, list[tuple[int, str]]]:
    """Pass two: decode every image into a memmap; returns it and the (index, reason) failures."""
    images = writer.images((len(refs), channels, resolution, resolution))
    jobs = ((ref, resolution, channels) for ref in refs)
    failed: list[tuple[int, str]] = []
    # closing(): on an error, stop the worker pool now rather than when the traceback is freed.
    with closing(parallel_map(decode_job, jobs, len(refs), f"preparing {path.name}")) as results:
        for i, result in enumerate(results):
            if isinstance(result, str):
                if not skip_bad_images:
                    raise _bad_error(path, [result])
                failed.append((i, result))
            else:
                images[i] = result
    return images, failed


def _auto_resolution(sizes: list[tuple[int, int]]) -> int:
    """The largest power of two not above the shortest side of any image."""
    shortest = min(min(w, h) for w, h in sizes)
    return 1 << (shortest.bit_length() - 1)


def _check_sizes(plan: _Plan, resolution: int, path: Path) -> None:
    """Refuse to upscale: every image's shorter side must reach `resolution`."""
    pairs = zip(plan.refs, plan.sizes, strict=True)
    small = [(r.name, s) for r, s in pairs if min(s) < resolution]
    if not small:
        return
    shown = ", ".join(f"{n} ({w}x{h})" for n, (w, h) in small[:SHOW_FILES])
    more = f" and {len(small) - SHOW_FILES} more" if len(small) > SHOW_FILES else ""
    smallest = min(min(s) for s in plan.sizes)
    raise DataError(
        f"resolution {resolution} is larger than {len(small)} of the {len(plan.refs)} images in "
        f"{path} (gankit never upscales): {shown}{more}. Use a resolution of at most {smallest} "
        "(or leave it unset to pick the largest power of two that fits), or remove those images."
    )


def _labels(all_names: list[str], refs: list[ImageRef]) -> tuple[list[str], np.ndarray | None]:
    """Class names and labels from first-level subfolders, when every image is in one (>= 2)."""
    tops = [PurePosixPath(n).parts for n in all_names]
    if not all(len(p) > 1 for p in tops):
        return [], None
    class_names = sorted({p[0] for p in tops})
    if len(class_names) < 2:
        return [], None
    index = {c: i for i, c in enumerate(class_names)}
    labels = np.array([index[PurePosixPath(r.name).parts[0]] for r in refs], dtype=np.int64)
    return class_names, labels


def _describe(
    path: Path,
    plan: _Plan,
    count: int,
    resolution: int,
    channels: int,
    class_names: list[str],
    auto: bool,
) -> str:
    """One line for the run log: what was done to the source images."""
    exts = ", ".join(sorted({Path(r.name).suffix.lower().lstrip(".") for r in plan.refs}))
    target = "RGB" if channels == 3 else "greyscale (L)"
    other = sorted(m for m in plan.modes if m != ("RGB" if channels == 3 else "L"))
    convert = f"converted to {target} from {'/'.join(other)}" if other else f"already {target}"
    steps = [convert, _crop_text(plan.sizes), _resize_text(plan.sizes, resolution, auto)]
    if class_names:
        steps.append(f"labelled by {len(class_names)} subfolders ({_short_list(class_names)})")
    else:
        steps.append("unlabelled")
    text = f"{count:,} images from {path.resolve()} ({exts}): {', '.join(steps)}"
    if plan.bad:
        text += f"; {len(plan.bad)} unreadable file{'s' if len(plan.bad) > 1 else ''} skipped"
    return text


def _crop_text(sizes: list[tuple[int, int]]) -> str:
    if all(w == h for w, h in sizes):
        return "already square"
    if len(set(sizes)) == 1:
        side = min(sizes[0])
        return f"center-cropped to {side}x{side}"
    sides = [min(s) for s in sizes]
    return f"center-cropped to squares of their shorter side ({min(sides)}-{max(sides)} px)"


def _resize_text(sizes: list[tuple[int, int]], resolution: int, auto: bool) -> str:
    why = " (largest power of two that fits every image)" if auto else ""
    if all(min(s) == resolution for s in sizes):
        return f"kept at {resolution}x{resolution}{why}"
    return f"resized to {resolution}x{resolution} with Lanczos{why}"


def _short_list(names: list[str], limit: int = 4) -> str:
    return ", ".join(names[:limit]) + (", ..." if len(names) > limit else "")


def _bad_error(path: Path, bad: list[str]) -> DataError:
    shown = "; ".join(bad[:SHOW_FILES])
    more = f" (and {len(bad) - SHOW_FILES} more)" if len(bad) > SHOW_FILES else ""
    return DataError(
        f"cannot read {len(bad)} image{'s' if len(bad) > 1 else ''} in {path}: {shown}{more}. "
        "Fix or delete the file, or pass --skip-bad-images (skip_bad_images=True) to leave "
        "unreadable images out."
    )


def _all_bad_error(path: Path, bad: list[str]) -> DataError:
    return DataError(
        f"none of the {len(bad)} images in {path} could be read (first: {bad[0]}); "
        "check that these are image files and not, e.g., Git LFS pointers or partial downloads."
    )


def _skipped_text(skipped: list[str]) -> str:
    shown = "; ".join(skipped[:SHOW_FILES])
    return f"skipped {len(skipped)} unreadable image{'s' if len(skipped) > 1 else ''}: {shown}"
