"""Where evaluated samples come from: a generator, an array (.npy), a folder, or a dataset.

Every source yields batches of uint8 images `[B, C, H, W]` (or float points `[B, 2]` for the 2-D
mixtures), in a fixed order for a given seed, so a metric sees the same samples every time.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from gankit.errors import DataError
from gankit.nets import draw_latents
from gankit.viz import to_uint8


class Source:
    """Base class: `batches(n, batch_size)` yields the first `n` samples of this source."""

    name: str = ""
    kind: str = "images"  # or "points"
    resolution: int = 0
    channels: int = 0
    #: Upper bound on the number of samples (None: unlimited, e.g. a generator).
    size: int | None = None

    def batches(self, n: int, batch_size: int) -> Iterator[torch.Tensor]:
        """The first `n` samples, `batch_size` at a time (uint8 images or float points)."""
        raise NotImplementedError

    def take(self, n: int, batch_size: int = 256) -> torch.Tensor:
        """The first `n` samples as one tensor."""
        return torch.cat(list(self.batches(n, batch_size)))

    def identity(self) -> str:
        """A string that changes whenever the samples would (for the real-feature cache)."""
        raise NotImplementedError

    def check_count(self, n: int, metric: str) -> int:
        """`n`, or a clear error when the source holds fewer samples."""
        if self.size is not None and n > self.size:
            raise DataError(
                f"{metric} needs {n:,} samples but {self.name} has only {self.size:,}; pass a "
                f"smaller --num (or use the metric's plain name with --num {self.size})"
            )
        return n


@dataclass
class GeneratorSource(Source):
    """Images from G (G_ema of a run) with latents drawn on the CPU from `seed`.

    With `upscale` (metrics during training), a progressive G sampled at a lower stage is
    nearest-upscaled to its full resolution, as the official ProGAN code's G outputs are, so the
    same quantities are reported throughout training. Without it (`gankit evaluate`), samples keep
    the resolution G outputs now, and the reals are brought to that resolution.
    """

    G: nn.Module
    kwargs: dict[str, Any]
    seed: int = 0
    name: str = "the generator"
    labels: Callable[[int, torch.Generator], torch.Tensor] | None = None
    upscale: bool = True

    def __post_init__(self) -> None:
        self.size = None
        #: The resolution G is built for (a progressive G may output less at its current stage).
        self.full_resolution = int(getattr(self.G, "img_resolution", 0))
        self.channels = int(getattr(self.G, "img_channels", 0))
        self.kind = "points" if getattr(self.G, "output_kind", "images") == "points" else "images"
        self.resolution = self.full_resolution
        if self.kind == "images" and not self.upscale:
            self.resolution = self._output_resolution()

    @torch.no_grad()
    def _output_resolution(self) -> int:
        """The side of the images G outputs with its sampling kwargs (one latent, not seeded)."""
        device = next(self.G.parameters()).device
        z = torch.zeros(1, self.G.z_dim, device=device)
        c_dim = int(getattr(self.G, "c_dim", 0))
        c = torch.zeros(1, dtype=torch.int64, device=device) if c_dim else None
        out = self.G(z, c, **self.kwargs) if c is not None else self.G(z, **self.kwargs)
        return int(out.shape[-1])

    def _sample(self, z: torch.Tensor, c: torch.Tensor | None, seed: int) -> torch.Tensor:
        """G(z, c) with torch's global streams seeded by `seed` for the call and restored after:
        a G that draws from them (StyleGAN2's random noise) gives the same samples at every
        evaluation, and training's streams are untouched."""
        devices = [z.device] if z.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            return self.G(z, c, **self.kwargs) if c is not None else self.G(z, **self.kwargs)

    @torch.no_grad()
    def batches(self, n: int, batch_size: int) -> Iterator[torch.Tensor]:
        gen = torch.Generator().manual_seed(self.seed)
        device = next(self.G.parameters()).device
        for start in range(0, n, batch_size):
            count = min(batch_size, n - start)
            z = draw_latents(self.G, count, gen, device)
            c = self._labels(count, gen)
            c = None if c is None else c.to(device)
            out = self._sample(z, c, self.seed + start)
            if self.kind == "points":
                yield out.float().cpu()
                continue
            if self.upscale and out.shape[-1] < self.resolution:
                out = F.interpolate(out, size=self.resolution, mode="nearest")
            yield to_uint8(out).cpu()

    def _labels(self, count: int, gen: torch.Generator) -> torch.Tensor | None:
        # A conditional G without requested labels samples its classes uniformly.
        if self.labels is not None:
            return self.labels(count, gen)
        c_dim = int(getattr(self.G, "c_dim", 0))
        return torch.randint(c_dim, (count,), generator=gen) if c_dim else None

    def identity(self) -> str:
        raise TypeError("generator samples are never cached")


class TensorSource(Source):
    """Samples held in memory: uint8 images `[N, C, H, W]` or float points `[N, 2]`."""

    def __init__(self, data: torch.Tensor, name: str, key: str = "") -> None:
        self.data, self.name, self.key = data, name, key
        self.size = len(data)
        if data.ndim == 2 and data.shape[1] == 2 and data.is_floating_point():
            self.kind = "points"
        elif data.ndim == 4 and data.dtype == torch.uint8 and data.shape[1] in (1, 3):
            self.kind, self.channels, self.resolution = "images", data.shape[1], data.shape[-1]
        else:
            raise DataError(
                f"{name}: expected uint8 images [N, C, H, W] with C = 1 or 3, or float points "
                f"[N, 2]; got {data.dtype} {tuple(data.shape)}"
            )

    def batches(self, n: int, batch_size: int) -> Iterator[torch.Tensor]:
        for start in range(0, n, batch_size):
            yield self.data[start : min(start + batch_size, n)]

    def identity(self) -> str:
        return self.key or _content_hash(self.data)


class DatasetSource(Source):
    """The samples of a dataset (reals, or a folder of generated images), in a seeded random order."""

    def __init__(self, dataset: Any, seed: int = 0) -> None:
        self.dataset, self.seed = dataset, seed
        self.name = f"the dataset {getattr(dataset, 'name', '')!r}"
        self.size = len(dataset)
        self.kind = "points" if "points" in dataset[0] else "images"
        self.key = "points" if self.kind == "points" else "img"
        self.resolution = getattr(dataset, "resolution", 0)
        self.channels = getattr(dataset, "channels", 0)
        self.order = torch.randperm(self.size, generator=torch.Generator().manual_seed(seed))

    def batches(self, n: int, batch_size: int) -> Iterator[torch.Tensor]:
        for start in range(0, n, batch_size):
            idx = self.order[start : min(start + batch_size, n)].tolist()
            yield torch.stack([self.dataset[i][self.key] for i in idx])

    def identity(self) -> str:
        d = self.dataset
        probe = torch.stack([d[int(i)][self.key] for i in self.order[:8]])
        parts = [getattr(d, "name", ""), getattr(d, "description", ""), str(len(d)),
                 str(self.resolution), str(self.seed), _content_hash(probe)]  # fmt: skip
        return "|".join(parts)


def _content_hash(tensor: torch.Tensor) -> str:
    return hashlib.sha1(tensor.contiguous().numpy().tobytes()).hexdigest()


def open_samples(
    target: str | Path,
    *,
    device: str | torch.device = "cpu",
    seed: int = 0,
    skip_bad_images: bool = False,
) -> Source:
    """A run directory or checkpoint (samples of G_ema at the resolution it outputs now), a folder
    or zip of images (at their own size), or a .npy array."""
    path = Path(target).expanduser()
    if path.suffix.lower() == ".npy":
        return TensorSource(load_array(path), name=str(path), key=file_key(path))
    if _is_run_or_checkpoint(path):
        from gankit.generate import load_generator

        G, kwargs, _ = load_generator(path, device)
        return GeneratorSource(G, kwargs, seed=seed, name=f"G_ema of {path}", upscale=False)
    from gankit.data import open_dataset

    resolution = image_folder_resolution(path) if path.exists() else None
    dataset = open_dataset(str(path), resolution=resolution, skip_bad_images=skip_bad_images)
    return DatasetSource(dataset, seed=seed)


def load_array(path: Path) -> torch.Tensor:
    """A .npy of uint8 images `[N, C, H, W]` or float points `[N, 2]`, or a clear error."""
    if not path.is_file():
        raise DataError(f"{str(path)!r} does not exist")
    try:
        array = np.load(path, mmap_mode="r")
    except ValueError as err:
        raise DataError(f"{str(path)!r} is not a readable .npy array: {err}") from None
    if array.dtype.kind not in "uif":  # strings, objects, booleans, complex numbers
        raise DataError(
            f"{path} holds {array.dtype} values; expected uint8 images [N, C, H, W] or float "
            "points [N, 2] (as `gankit generate --out samples.npy` writes)"
        )
    return torch.from_numpy(np.array(array))


def image_folder_resolution(path: Path) -> int | None:
    """The shorter side of the first image of a folder or zip (samples are compared at their own
    size, not at the power of two a training folder is prepared at); None when unknown."""
    from gankit.data import folder
    from gankit.data.imaging import image_size

    try:
        refs, _ = folder._list_images(path)
        with refs[0].open() as file:
            width, height, _ = image_size(file)
    except Exception:  # let open_dataset say what is wrong with the folder
        return None
    finally:
        folder._close_zips()
    return min(width, height)


def fit_images(images: torch.Tensor, channels: int, resolution: int, name: str) -> torch.Tensor:
    """uint8 images `[N, C, H, H]` brought to `channels` and down to `resolution` (Lanczos, as
    datasets are prepared); a clear error when they are smaller than `resolution`."""
    from gankit.data.imaging import downscale, to_luma

    if images.ndim != 4 or images.dtype != torch.uint8 or images.shape[-1] != images.shape[-2]:
        raise DataError(f"{name}: expected square uint8 images [N, C, H, H]; got "
                        f"{images.dtype} {tuple(images.shape)}")  # fmt: skip
    size = images.shape[-1]
    if size < resolution:
        raise DataError(
            f"{name} holds {size}x{size} images but the samples are {resolution}x{resolution}; "
            "gankit never upscales: compare with real images at least as large"
        )
    array = images.numpy()
    if channels == 1 and array.shape[1] == 3:
        array = to_luma(array)
    elif channels == 3 and array.shape[1] == 1:
        array = np.repeat(array, 3, axis=1)
    if size > resolution:
        array = downscale(array, resolution)
    return torch.from_numpy(np.ascontiguousarray(array))


def _is_run_or_checkpoint(path: Path) -> bool:
    return (path.is_dir() and (path / "checkpoints").is_dir()) or path.suffix == ".pt"


def file_key(path: Path) -> str:
    """Path, size and mtime: changes whenever the file does."""
    stat = path.stat()
    return f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
