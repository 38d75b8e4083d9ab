"""Image grids from uint8 or [-1, 1] float batches."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image


def to_uint8(img: torch.Tensor) -> torch.Tensor:
    """Float images in [-1, 1] -> uint8 in [0, 255] (-1 -> 0, 1 -> 255, rounded, clipped)."""
    if img.dtype == torch.uint8:
        return img
    return ((img.detach().float() + 1.0) * 127.5).round().clamp(0, 255).to(torch.uint8)


def grid_shape(n: int) -> tuple[int, int]:
    """(rows, cols) of the most square grid holding n images, cols >= rows."""
    cols = math.ceil(math.sqrt(n))
    return math.ceil(n / cols), cols


def make_grid(
    images: torch.Tensor, cols: int | None = None, upscale_to: int | None = None
) -> np.ndarray:
    """`[N, C, H, W]` -> one `[rows*H, cols*W, C]` uint8 array (C = 1 or 3), optional nearest upscale."""
    images = to_uint8(images).cpu()
    if upscale_to and images.shape[-1] < upscale_to:
        factor = upscale_to // images.shape[-1]
        images = images.repeat_interleave(factor, dim=2).repeat_interleave(factor, dim=3)
    n, c, h, w = images.shape
    rows, cols = grid_shape(n) if cols is None else (math.ceil(n / cols), cols)
    canvas = torch.zeros(rows * cols, c, h, w, dtype=torch.uint8)
    canvas[:n] = images
    canvas = (
        canvas.reshape(rows, cols, c, h, w).permute(0, 3, 1, 4, 2).reshape(rows * h, cols * w, c)
    )
    return canvas.numpy()


def save_grid(
    images: torch.Tensor, path: str | Path, cols: int | None = None, upscale_to: int | None = None
) -> Path:
    """Write a grid of `images` as a PNG."""
    array = make_grid(images, cols, upscale_to)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array).save(path)
    return path
