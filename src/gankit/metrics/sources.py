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

    A progressive G sampled at a lower stage is nearest-upscaled to its full resolution, as the
    official ProGAN code's G outputs are, so metrics compare with the full-resolution reals and
    report the same quantities throughout training.
    """

    G: nn.Module
    kwargs: dict[str, Any]
    seed: int = 0
    name: str = "the generator"
    labels: Callable[[int, torch.Generator], torch.Tensor] | None = None

    def __post_init__(self) -> None:
        self.size = None
        self.resolution = int(getattr(self.G, "img_resolution", 0))
        self.channels = int(getattr(self.G, "img_channels", 0))
        self.kind = "points" if getattr(self.G, "output_kind", "images") == "points" else "images"

    @torch.no_grad()
    def batches(self, n: int, batch_size: int) -> Iterator[torch.Tensor]:
        gen = torch.Generator().manual_seed(self.seed)
        device = next(self.G.parameters()).device
        for start in range(0, n, batch_size):
            count = min(batch_size, n - start)
            z = torch.randn(count, self.G.z_dim, generator=gen).to(device)
            c = self._labels(count, gen)
            c = None if c is None else c.to(device)
            out = self.G(z, c, **self.kwargs) if c is not None else self.G(z, **self.kwargs)
            if self.kind == "points":
                yield out.float().cpu()
                continue
            if out.shape[-1] < self.resolution:
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
    target: str | Path, *, device: str | torch.device = "cpu", seed: int = 0
) -> Source:
    """A run directory or checkpoint (samples of G_ema), an image folder/zip, or a .npy array."""
    path = Path(target).expanduser()
    if path.suffix.lower() == ".npy":
        if not path.is_file():
            raise DataError(f"{str(path)!r} does not exist")
        try:
            array = np.load(path, mmap_mode="r")
        except ValueError as err:
            raise DataError(f"{str(path)!r} is not a readable .npy array: {err}") from None
        return TensorSource(torch.from_numpy(np.array(array)), name=str(path), key=_file_key(path))
    if _is_run_or_checkpoint(path):
        from gankit.generate import load_generator

        G, kwargs, _ = load_generator(path, device)
        return GeneratorSource(G, kwargs, seed=seed, name=f"G_ema of {path}")
    from gankit.data import open_dataset

    dataset = open_dataset(str(path))
    return DatasetSource(dataset, seed=seed)


def _is_run_or_checkpoint(path: Path) -> bool:
    return (path.is_dir() and (path / "checkpoints").is_dir()) or path.suffix == ".pt"


def _file_key(path: Path) -> str:
    stat = path.stat()
    return f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
