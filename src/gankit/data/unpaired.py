"""Unpaired A/B images: a folder or .zip holding `trainA/` and `trainB/` (optionally `testA/` and
`testB/`), the layout of the published CycleGAN datasets (Zhu et al., arXiv:1703.10593), e.g.
horse2zebra. A zip may hold that layout at its root or inside one top folder.

Each domain is read as a folder of images is (`gankit.data.folder`: decoded, center-cropped,
Lanczos-resized, never upscaled, cached; bad images named in one error or skipped), into its own
uint8 array. The two domains share one square resolution: `resolution`, or by default the smaller
of the two domains' auto resolutions (the largest power of two that at least half of that
domain's images fit), so neither domain loses most of its images. Each domain keeps its own
channel count: one whose images are all stored greyscale stays one channel, the other RGB;
`channels_a` / `channels_b` force 1 or 3 for one domain and `channels` for both.

The sampler (`gankit.data.sampler.batch_sampler_for`) draws A and B independently and yields index
pairs `(i_a, i_b)`. An int index k reads as `(k mod N_a, k mod N_b)` and `len` is the larger
domain's size, the official code's order when it does not shuffle.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Literal

import torch

from gankit.data.base import ArrayDataset, ImageDataset
from gankit.data.folder import (
    IMAGE_EXTENSIONS,
    RULES_VERSION,
    ImageRef,
    Preparation,
    auto_resolution,
    close_zips,
    list_images,
    prepare_settled,
    scan_images,
    settle,
    warn_skipped,
    zip_image_names,
)
from gankit.data.prepare import PreparedDataset, entry_for, load_entry
from gankit.errors import ConfigError, DataError

SPLITS = ("train", "test")
#: The first-level folders that mark an unpaired dataset.
DOMAIN_FOLDERS = ("trainA", "trainB", "testA", "testB")
LAYOUT = (
    "a folder or .zip holding trainA/ and trainB/ (the images of each domain; optionally testA/ "
    "and testB/ for the test split), the layout of the published CycleGAN datasets such as "
    "horse2zebra"
)

Index = int | tuple[int, int]


class UnpairedDataset(ImageDataset):
    """Items `{"img_a": uint8 [Ca, R, R], "img_b": uint8 [Cb, R, R]}` from two image sets."""

    kind = "unpaired"
    num_classes = 0

    def __init__(
        self, a: ArrayDataset, b: ArrayDataset, *, name: str, split: str = "train"
    ) -> None:
        if a.resolution != b.resolution:
            raise ValueError(
                f"A and B must share one resolution; got {a.resolution} and {b.resolution}"
            )
        self.a, self.b, self.name, self.split = a, b, name, split
        self.resolution, self.channels, self.channels_b = a.resolution, a.channels, b.channels
        self.class_names: list[str] = []
        self.description = (
            f"unpaired A/B images, {split} split. A: {a.description}. B: {b.description}"
        )

    @property
    def domain_sizes(self) -> tuple[int, int]:
        """(N_a, N_b): how many images each domain holds."""
        return len(self.a), len(self.b)

    def __len__(self) -> int:
        return max(self.domain_sizes)

    def __getitem__(self, index: Index) -> dict[str, torch.Tensor]:
        i_a, i_b = self._pairs([index])[0].tolist()
        return {"img_a": self.a.images[i_a], "img_b": self.b.images[i_b]}

    def gather(self, indices: Sequence[Index]) -> dict[str, torch.Tensor]:
        """The items at `indices` as one batch: one indexing per domain, not one per item."""
        pairs = self._pairs(indices)
        return {"img_a": self.a.images[pairs[:, 0]], "img_b": self.b.images[pairs[:, 1]]}

    def _pairs(self, indices: Sequence[Index]) -> torch.Tensor:
        """`indices` as `[N, 2]` (i_a, i_b); an int k stands for (k mod N_a, k mod N_b)."""
        index = torch.as_tensor(indices, dtype=torch.int64)
        if index.ndim == 1:
            sizes = torch.tensor(self.domain_sizes)
            index = index[:, None] % sizes
        return index


@dataclass(frozen=True)
class _Domain:
    """One domain's images as listed: `folder` is e.g. "trainA", `where` names it in messages."""

    folder: str
    where: Path
    refs: list[ImageRef]
    content: object


def is_unpaired(path: Path) -> bool:
    """Whether the folder or .zip at `path` has the unpaired layout (any of trainA/, trainB/,
    testA/, testB/ at its root), so a missing partner folder is reported, not read as classes."""
    if path.is_dir():
        return any((path / folder).is_dir() for folder in DOMAIN_FOLDERS)
    if path.is_file() and path.suffix.lower() == ".zip":
        try:
            return bool(_zip_domains(zip_image_names(path)))
        except DataError:
            return False  # the folder reader says what is wrong with the zip
    return False


def open_unpaired(
    path: Path,
    *,
    name: str,
    resolution: int | None = None,
    channels: int | None = None,
    skip_bad_images: bool = False,
    split: str = "train",
    channels_a: Literal[1, 3] | None = None,
    channels_b: Literal[1, 3] | None = None,
) -> UnpairedDataset:
    """The A and B images of `split` under the folder or .zip `path`, prepared and cached."""
    if split not in SPLITS:
        raise ConfigError(f"an unpaired dataset has the splits train, test; got split={split!r}")
    for key, value in (("channels_a", channels_a), ("channels_b", channels_b)):
        if value is not None and (type(value) is not int or value not in (1, 3)):
            raise ConfigError(f"data.args.{key} must be 1 (greyscale) or 3 (RGB); got {value!r}")
    domains = [_list_domain(path, f"{split}{side}") for side in "AB"]
    forced = (channels_a or channels, channels_b or channels)
    entries = _entries(path, domains, resolution, forced, skip_bad_images)
    loaded = [load_entry(entry) for entry in entries]
    if None in loaded:
        try:
            loaded = _prepare(domains, entries, name, resolution, forced, skip_bad_images)
        finally:
            close_zips()
    for domain, dataset in zip(domains, loaded, strict=True):
        warn_skipped(domain.where, dataset)
    return UnpairedDataset(loaded[0], loaded[1], name=name, split=split)


def _entries(
    path: Path,
    domains: list[_Domain],
    resolution: int | None,
    channels: tuple[int | None, int | None],
    skip_bad_images: bool,
) -> list[Path]:
    """The two domains' cache entries. Each key covers both domains' files: the shared auto
    resolution depends on both, so a change to either prepares both again."""
    content = [domain.content for domain in domains]
    entries = []
    for domain, ch in zip(domains, channels, strict=True):
        source = {
            "path": str(path.resolve()),
            "domain": domain.folder,
            "res": resolution,
            "ch": ch,
            "skip": skip_bad_images,
            "rules": RULES_VERSION,
        }
        entries.append(entry_for(f"{path.stem}-{domain.folder}", source, content))
    return entries


def _prepare(
    domains: list[_Domain],
    entries: list[Path],
    name: str,
    resolution: int | None,
    channels: tuple[int | None, int | None],
    skip_bad_images: bool,
) -> list[PreparedDataset]:
    """Read both domains' headers, settle one resolution, check both, then decode both."""
    plans = [scan_images(domain.refs, domain.where) for domain in domains]
    target = resolution or min(auto_resolution(plan.sizes) for plan in plans)
    requests = [
        Preparation(domain.where, f"{name} {domain.folder}", target, ch, skip_bad_images,
                    auto=resolution is None, labelled=False)
        for domain, ch in zip(domains, channels, strict=True)
    ]  # fmt: skip
    checks, problems = [], []
    for plan, request in zip(plans, requests, strict=True):
        try:  # both domains are checked before either fails, so one error names every bad file
            checks.append(settle(plan, request))
        except DataError as exc:
            problems.append(str(exc))
    if problems:
        raise DataError(" ".join(problems))
    return [prepare_settled(*step) for step in zip(plans, requests, checks, entries, strict=True)]


def _list_domain(path: Path, folder: str) -> _Domain:
    """The images of domain `folder` (e.g. "trainA") in the folder or zip `path`."""
    if path.is_dir():
        where = path / folder
        if not where.is_dir():
            raise _layout_error(path, folder, "is missing")
        try:
            refs, content = list_images(where)
        except DataError:
            raise _layout_error(path, folder, _NO_IMAGES) from None
        return _Domain(folder, where, refs, content)
    names = _zip_domains(zip_image_names(path)).get(folder)
    if not names:
        raise _layout_error(path, folder, "is missing or holds no images")
    refs = [ImageRef(short, str(path), member) for short, member in names]
    info = path.stat()
    return _Domain(folder, path / folder, refs, [info.st_size, info.st_mtime_ns])


_NO_IMAGES = f"holds no images ({', '.join(IMAGE_EXTENSIONS)}, searched recursively)"


def _zip_domains(members: list[str]) -> dict[str, list[tuple[str, str]]]:
    """{domain folder: [(name within the domain, member)]} for the image members of a zip whose
    domain folders sit at its root or inside one top folder (the usual zip of a folder)."""
    parts = [PurePosixPath(m).parts for m in members]
    tops = {p[0] for p in parts}
    depth = 1 if len(tops) == 1 and not tops & set(DOMAIN_FOLDERS) else 0
    found: dict[str, list[tuple[str, str]]] = {}
    for member, p in zip(members, parts, strict=True):
        if len(p) > depth + 1 and p[depth] in DOMAIN_FOLDERS:
            found.setdefault(p[depth], []).append(
                (PurePosixPath(*p[depth + 1 :]).as_posix(), member)
            )
    return found


def _layout_error(path: Path, folder: str, problem: str) -> DataError:
    return DataError(
        f"{path} is read as unpaired A/B images, but its {folder}/ {problem}. Expected {LAYOUT}."
    )
