"""Your own images: a folder (searched recursively) or a .zip of jpg/jpeg/png/webp/bmp files.

Each image is converted to RGB (or "L" with `channels=1`; with `channels=None`, "L" when every
image is stored greyscale), center-cropped to a square and resized
with Lanczos to one resolution, never upscaled (see `gankit.data.imaging`). With
`resolution=None` the resolution is the largest power of two that at least half of the images fit
(their lower median's shorter side), so a few thumbnails never pull it down unnoticed. Unreadable
images and images smaller than the resolution are all reported in one error, or with
`skip_bad_images` left out with one summary line (a `logging` warning).

When every image sits in a first-level subfolder and there are at least two, the
sorted subfolder names are the class labels. A zip whose members all share one top folder (the
usual result of zipping a folder) is read as if that folder were the root, so it labels exactly
like the folder it came from.

The decoded array is prepared once and cached (`gankit.data.prepare`); the cache key covers the
name, size and mtime of every file, so editing, adding or removing an image re-prepares.
"""

from __future__ import annotations

import logging
import os
import zipfile
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import BinaryIO

import numpy as np

from gankit.data.imaging import (
    IMAGE_EXTENSIONS,
    check_pixels,
    decode_square,
    failure,
    image_size,
)
from gankit.data.prepare import (
    EntryWriter,
    PreparedDataset,
    entry_for,
    load_entry,
    parallel_map,
    stat_key,
)
from gankit.errors import DataError

#: How many offending files of each kind an error message lists before "and N more".
SHOW_FILES = 5

#: Bumped when the rules that pick or skip images change, so older cache entries are not reused.
RULES_VERSION = 2

#: Header modes that hold one grey channel (with or without alpha, at any bit depth).
GREY_MODES = frozenset({"1", "L", "LA", "La", "I", "F", "I;16", "I;16B", "I;16L", "I;16N"})

#: The command-line flag and API argument that leave unusable images out, for messages.
SKIP_HINT = (
    "pass --skip-bad-images to gankit train or gankit evaluate (skip_bad_images=True in Python)"
)

log = logging.getLogger(__name__)

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


def close_zips() -> None:
    """Close this process's zips, so a zip replaced later is re-opened, not read stale."""
    for key in [k for k in _ZIPS if k[0] == os.getpid()]:
        _ZIPS.pop(key).close()


@dataclass
class Plan:
    """What pass one learnt: the usable images with their sizes and modes, and the others."""

    total: int
    #: Every listed image's name, usable or not (class labels come from all of them).
    listed: list[str] = field(default_factory=list)
    refs: list[ImageRef] = field(default_factory=list)
    sizes: list[tuple[int, int]] = field(default_factory=list)
    modes: list[str] = field(default_factory=list)
    #: "name (why)" of each file that cannot be read.
    bad: list[str] = field(default_factory=list)
    #: Name and (width, height) of each readable image smaller than the resolution.
    small: list[tuple[str, tuple[int, int]]] = field(default_factory=list)


def open_image_folder(
    path: Path,
    *,
    name: str,
    resolution: int | None = None,
    channels: int | None = 3,
    skip_bad_images: bool = False,
) -> PreparedDataset:
    """The images under folder or zip `path` as a prepared, cached dataset `[N, C, R, R]`.

    `channels=None` keeps greyscale images greyscale: 1 channel when every usable image is stored
    as greyscale, else 3.
    """
    refs, content = list_images(path)
    source = {
        "path": str(path.resolve()),
        "res": resolution,
        "ch": channels,
        "skip": skip_bad_images,
        "rules": RULES_VERSION,
    }
    entry = entry_for(path.stem, source, content)
    dataset = load_entry(entry)
    if dataset is None:
        try:
            plan = scan_images(refs, path)
            target = resolution or auto_resolution(plan.sizes)
            request = Preparation(path, name, target, channels, skip_bad_images, resolution is None)
            dataset = prepare_settled(plan, request, settle(plan, request), entry)
        finally:
            close_zips()
    warn_skipped(path, dataset)
    return dataset


def warn_skipped(path: Path, dataset: PreparedDataset) -> None:
    """The one summary line of the images left out, said on every open (a cache hit too)."""
    if dataset.skipped:  # the user asked for them to go: a warning, not an error
        log.warning(_skipped_text(path, dataset.skipped, len(dataset)))


def list_images(path: Path) -> tuple[list[ImageRef], object]:
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
        raise _no_images_error(path)
    return refs, content


# The names metrics/sources.py imported before they were public.
_list_images, _close_zips = list_images, close_zips


def _no_images_error(path: Path) -> DataError:
    kind = "zip" if path.is_file() else "folder"
    return DataError(
        f"no images found in the {kind} {path} (searched recursively for "
        f"{', '.join(IMAGE_EXTENSIONS)}, any letter case; hidden files are skipped)."
    )


def _walk(root: Path) -> list[Path]:
    """Image files under `root`, recursively, skipping hidden files and folders."""
    found = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for file in files:
            if not file.startswith(".") and file.lower().endswith(IMAGE_EXTENSIONS):
                found.append(Path(folder) / file)
    return found


def zip_image_names(path: Path) -> list[str]:
    """The visible image members of the zip at `path`, sorted; a DataError if it is unreadable."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = [i.filename for i in archive.infolist() if not i.is_dir()]
    except (zipfile.BadZipFile, OSError) as exc:
        raise DataError(
            f"{path} is not a readable zip file ({exc}). Re-create it (e.g. `zip -r data.zip "
            "images/`) or point at the extracted folder instead."
        ) from None
    return sorted(n for n in names if _is_image_member(n))


def _zip_members(path: Path) -> list[ImageRef]:
    """Image members of the zip at `path`, named relative to its single top folder if any."""
    names = zip_image_names(path)
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


@dataclass(frozen=True)
class Preparation:
    """What to make of scanned images, and where they came from (for messages)."""

    path: Path
    name: str
    resolution: int
    #: None: 1 when every usable image is stored greyscale, else 3.
    channels: int | None
    skip_bad_images: bool
    #: Whether `resolution` came from the auto rule (the messages say why it is what it is).
    auto: bool
    #: Whether first-level subfolders are class labels (an unpaired domain has none).
    labelled: bool = True


def prepare_settled(
    plan: Plan, request: Preparation, check: UsableCheck, entry: Path
) -> PreparedDataset:
    """Pass two: decode the usable images of a settled `plan` into the cache entry `entry`."""
    target = request.resolution
    channels = request.channels or channels_of(plan.modes)
    # Classes come from every listed file, so skipping a bad image never renumbers the labels.
    class_names, labels = _labels(plan.listed, plan.refs) if request.labelled else ([], None)
    writer = EntryWriter(entry)
    try:
        images, late_bad = _decode_all(plan.refs, writer, target, channels, request.path)
        if late_bad:
            keep = _drop(plan, late_bad)
            check(plan)
            images = writer.shrink(images, keep)
            labels = None if labels is None else labels[keep]
        meta = {
            "name": request.name,
            "class_names": class_names,
            "skipped": plan.bad + _small_reasons(plan, target),
            "description": _describe(
                request.path, plan, target, channels, class_names, auto=request.auto
            ),
        }
        writer.commit(images, labels, meta)
    except BaseException:
        writer.abort()
        raise
    return PreparedDataset(entry)


def channels_of(modes: list[str]) -> int:
    """1 when every image is stored greyscale (any bit depth, alpha or not), else 3."""
    return 1 if modes and all(m in GREY_MODES for m in modes) else 3


def settle(plan: Plan, request: Preparation) -> UsableCheck:
    """Set aside the images below the resolution; raises one error naming every unusable image."""
    fits_all = _power_of_two_below(min(min(s) for s in plan.sizes))
    _set_aside_small(plan, request.resolution)
    if (plan.bad or plan.small) and not request.skip_bad_images:
        # About to fail: find the files cut short now too, so one error names every bad file.
        _drop(plan, _cut_short(plan.refs))
    check = UsableCheck(
        request.path, request.resolution, fits_all, request.auto, request.skip_bad_images
    )
    check(plan)
    return check


def _drop(plan: Plan, failed: list[tuple[int, str]]) -> np.ndarray:
    """Move images that failed to decode from `plan.refs` to `plan.bad`; returns the kept mask."""
    keep = np.ones(len(plan.refs), dtype=bool)
    keep[[i for i, _ in failed]] = False
    plan.refs = [r for r, k in zip(plan.refs, keep, strict=True) if k]
    plan.sizes = [s for s, k in zip(plan.sizes, keep, strict=True) if k]
    plan.modes = [m for m, k in zip(plan.modes, keep, strict=True) if k]
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


def _pixels_job(ref: ImageRef) -> str | None:
    """Why the pixels of one image cannot be decoded, or None when they can."""
    try:
        with ref.open() as file:
            check_pixels(file)
    except Exception as exc:  # As in `decode_job`: every failure means "unreadable".
        return failure(ref.name, exc)
    return None


def _cut_short(refs: list[ImageRef]) -> list[tuple[int, str]]:
    """(index, reason) of the images whose header reads but whose pixel data does not."""
    with closing(parallel_map(_pixels_job, refs, len(refs), "checking the images")) as results:
        return [(i, why) for i, why in enumerate(results) if why is not None]


def scan_images(refs: list[ImageRef], path: Path) -> Plan:
    """Pass one: read every header; the unreadable files are collected, not raised one by one."""
    plan = Plan(total=len(refs), listed=[r.name for r in refs])
    with closing(parallel_map(_header, refs, len(refs), "reading image sizes")) as results:
        for ref, result in zip(refs, results, strict=True):
            if isinstance(result, str):
                plan.bad.append(result)
            else:
                plan.refs.append(ref)
                plan.sizes.append(result[:2])
                plan.modes.append(result[2])
    if not plan.refs:
        raise _all_bad_error(path, plan.bad)
    return plan


def _decode_all(
    refs: list[ImageRef],
    writer: EntryWriter,
    resolution: int,
    channels: int,
    path: Path,
) -> tuple[np.ndarray, list[tuple[int, str]]]:
    """Pass two: decode every image into a memmap; returns it and the (index, reason) failures.

    A failure does not stop the pass, so one error can name every file that is cut short.
    """
    images = writer.images((len(refs), channels, resolution, resolution))
    jobs = ((ref, resolution, channels) for ref in refs)
    failed: list[tuple[int, str]] = []
    # closing(): on an error, stop the worker pool now rather than when the traceback is freed.
    with closing(parallel_map(decode_job, jobs, len(refs), f"preparing {path.name}")) as results:
        for i, result in enumerate(results):
            if isinstance(result, str):
                failed.append((i, result))
            else:
                images[i] = result
    return images, failed


def auto_resolution(sizes: list[tuple[int, int]]) -> int:
    """The largest power of two that at least half the images fit (their lower median).

    Not the smallest image's: one thumbnail in a folder of photos would silently set the training
    resolution; it is reported as too small instead.
    """
    sides = sorted(min(s) for s in sizes)
    return _power_of_two_below(sides[(len(sides) - 1) // 2])


def _power_of_two_below(side: int) -> int:
    """The largest power of two not above `side`."""
    return 1 << (side.bit_length() - 1)


def _set_aside_small(plan: Plan, resolution: int) -> None:
    """Move images whose shorter side is below `resolution` (never upscaled) to `plan.small`."""
    keep = [min(s) >= resolution for s in plan.sizes]
    pairs = zip(plan.refs, plan.sizes, keep, strict=True)
    plan.small = [(r.name, size) for r, size, k in pairs if not k]
    plan.refs = [r for r, k in zip(plan.refs, keep, strict=True) if k]
    plan.sizes = [s for s, k in zip(plan.sizes, keep, strict=True) if k]
    plan.modes = [m for m, k in zip(plan.modes, keep, strict=True) if k]


@dataclass(frozen=True)
class UsableCheck:
    """Raises one error naming every unusable image, unless skipping them leaves some."""

    path: Path
    resolution: int
    fits_all: int  # the largest power of two every readable image fits
    auto: bool
    skip: bool

    def __call__(self, plan: Plan) -> None:
        if not (plan.bad or plan.small) or (self.skip and plan.refs):
            return
        if not plan.refs and not plan.small:
            raise _all_bad_error(self.path, plan.bad)
        raise DataError(self.message(plan))

    def message(self, plan: Plan) -> str:
        """'cannot use N of the M images in PATH. K unreadable: ... J smaller ...: ... Fixes.'"""
        count = len(plan.bad) + len(plan.small)
        head = (
            f"cannot use {count} of the {plan.total} images in {self.path}"
            if plan.refs
            else f"none of the {plan.total} images in {self.path} can be used"
        )
        parts = [head]
        if plan.bad:
            parts.append(f"{len(plan.bad)} unreadable: {_listing(plan.bad)}")
        if plan.small:
            sizes = [f"{n} ({w}x{h})" for n, (w, h) in plan.small]
            parts.append(f"{len(plan.small)} {self._smaller_than()}: {_listing(sizes)}")
        return ". ".join(parts) + f". {self._fixes(plan)}."

    def _smaller_than(self) -> str:
        res = self.resolution
        if self.auto:
            return (
                f"smaller than {res}x{res}, the largest power of two that at least half of the "
                "images fit (gankit never upscales)"
            )
        return f"smaller than resolution {res} (gankit never upscales)"

    def _fixes(self, plan: Plan) -> str:
        fixes = ["Fix or delete them" if plan.bad else "Remove them"]
        if plan.small:
            fixes.append(
                f"pass --resolution {self.fits_all} to keep the small ones (the largest power of "
                "two that every image fits)"
            )
        if plan.refs:
            fixes.append(f"{SKIP_HINT} to leave them out")
        return ", or ".join([", ".join(fixes[:-1]), fixes[-1]]) if len(fixes) > 1 else fixes[0]


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
    plan: Plan,
    resolution: int,
    channels: int,
    class_names: list[str],
    auto: bool,
) -> str:
    """One line for the run log: what was done to the source images, and what was left out."""
    exts = ", ".join(sorted({Path(r.name).suffix.lower().lstrip(".") for r in plan.refs}))
    target = "RGB" if channels == 3 else "greyscale (L)"
    other = sorted(set(plan.modes) - {"RGB" if channels == 3 else "L"})
    convert = f"converted to {target} from {'/'.join(other)}" if other else f"already {target}"
    resize = _resize_text(plan.sizes, resolution, auto, every=not plan.small)
    steps = [convert, _crop_text(plan.sizes), resize]
    if class_names:
        steps.append(f"labelled by {len(class_names)} subfolders ({_short_list(class_names)})")
    else:
        steps.append("unlabelled")
    text = f"{len(plan.refs):,} images from {path.resolve()} ({exts}): {', '.join(steps)}"
    return text + _skipped_summary(plan, resolution)


def _skipped_summary(plan: Plan, resolution: int) -> str:
    """'; 3 files skipped (1 unreadable, 2 smaller than RxR)', or '' when none was."""
    count = len(plan.bad) + len(plan.small)
    if not count:
        return ""
    kinds = [f"{len(plan.bad)} unreadable"] if plan.bad else []
    if plan.small:
        kinds.append(f"{len(plan.small)} smaller than {resolution}x{resolution}")
    return f"; {count} file{'s' if count > 1 else ''} skipped ({', '.join(kinds)})"


def _small_reasons(plan: Plan, resolution: int) -> list[str]:
    """'name (WxH, smaller than RxR)' for each image left out as too small."""
    res = f"{resolution}x{resolution}"
    return [f"{n} ({w}x{h}, smaller than {res})" for n, (w, h) in plan.small]


def _crop_text(sizes: list[tuple[int, int]]) -> str:
    if all(w == h for w, h in sizes):
        return "already square"
    if len(set(sizes)) == 1:
        side = min(sizes[0])
        return f"center-cropped to {side}x{side}"
    sides = [min(s) for s in sizes]
    return f"center-cropped to squares of their shorter side ({min(sides)}-{max(sides)} px)"


def _resize_text(sizes: list[tuple[int, int]], resolution: int, auto: bool, every: bool) -> str:
    fits = "every image" if every else "at least half of the images"
    why = f" (largest power of two that fits {fits})" if auto else ""
    if all(min(s) == resolution for s in sizes):
        return f"kept at {resolution}x{resolution}{why}"
    return f"resized to {resolution}x{resolution} with Lanczos{why}"


def _short_list(names: list[str], limit: int = 4) -> str:
    return ", ".join(names[:limit]) + (", ..." if len(names) > limit else "")


def _listing(entries: list[str]) -> str:
    """The first `SHOW_FILES` entries, then 'and N more'."""
    more = f" and {len(entries) - SHOW_FILES} more" if len(entries) > SHOW_FILES else ""
    return "; ".join(entries[:SHOW_FILES]) + more


def _all_bad_error(path: Path, bad: list[str]) -> DataError:
    return DataError(
        f"none of the {len(bad)} images in {path} could be read (first: {bad[0]}); "
        "check that these are image files and not, e.g., Git LFS pointers or partial downloads."
    )


def _skipped_text(path: Path, skipped: list[str], kept: int) -> str:
    """The one summary line of a run with skip_bad_images that left images out."""
    total = kept + len(skipped)
    return (
        f"gankit: left out {len(skipped)} of the {total} images in {path} "
        f"(--skip-bad-images): {_listing(skipped)}"
    )
