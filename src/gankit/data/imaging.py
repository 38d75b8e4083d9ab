"""Pixel operations shared by folder and built-in datasets: decode, convert, crop, resize.

Every source image goes through `decode_square`: EXIF orientation applied, converted to RGB (or
"L" for one channel), center-cropped to a square of its shorter side, then resized with PIL's
Lanczos filter (antialiased) to the target resolution. Transparent images are composited on white
(what a viewer shows on a white page) rather than having their alpha dropped, which would expose
whatever colour the transparent pixels happen to store. 16-bit greyscale ("I;16", "I") is scaled
to 8 bits (divide by 257) instead of clipped, which is what PIL's own `convert` would do.

Built-in datasets arrive as uint8 arrays `[N, C, H, W]`; `to_luma`, `downscale` and `zero_pad`
act on those.
"""

from __future__ import annotations

import io
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

#: Extensions searched in folders and zips (compared lowercased).
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp")

# Modes that carry transparency once converted to RGBA (P is handled via its `transparency` info).
_ALPHA_MODES = {"RGBA", "LA", "PA", "RGBa", "La"}
_SIXTEEN_BIT_MODES = {"I;16", "I;16B", "I;16L", "I;16N", "I"}


def open_image(source: bytes | BinaryIO) -> Image.Image:
    """A PIL image from encoded bytes or a binary file (lazy: only the header is read)."""
    return Image.open(io.BytesIO(source) if isinstance(source, bytes) else source)


def failure(name: str, exc: Exception) -> str:
    """`name (why it failed)` for error messages, without PIL's file-object repr noise."""
    if isinstance(exc, UnidentifiedImageError):
        return f"{name} (not a recognised image format)"
    return f"{name} ({type(exc).__name__}: {exc})"


def image_size(source: bytes | BinaryIO) -> tuple[int, int, str]:
    """(width, height, mode) as stored, read from the header only."""
    # EXIF rotation is left out on purpose: it cannot change the shorter side, and reading a PNG's
    # EXIF would decode the whole image.
    with open_image(source) as im:
        return im.size[0], im.size[1], im.mode


def check_pixels(source: bytes | BinaryIO) -> None:
    """Decode `source` cheaply, raising where its pixel data is cut short or corrupt."""
    with open_image(source) as im:
        im.draft(im.mode, (1, 1))  # JPEG: decode at 1/8 scale, still reading every byte
        im.load()


def to_mode(im: Image.Image, channels: int) -> Image.Image:
    """`im` as "RGB" (channels=3) or "L" (channels=1), handling alpha, palettes and 16-bit."""
    if im.mode in _SIXTEEN_BIT_MODES or im.mode == "F":
        im = _sixteen_to_eight(im)
    if im.mode in _ALPHA_MODES or (im.mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        im = Image.alpha_composite(white, rgba)
    target = "RGB" if channels == 3 else "L"
    return im if im.mode == target else im.convert(target)


def _sixteen_to_eight(im: Image.Image) -> Image.Image:
    """16-bit (or float) greyscale scaled into 0..255, as mode "L"."""
    values = np.asarray(im, dtype=np.float64)
    if im.mode != "F":
        values = values / 257.0
    return Image.fromarray(np.clip(np.rint(values), 0, 255).astype(np.uint8), mode="L")


def center_crop(im: Image.Image) -> Image.Image:
    """The largest centred square of `im` (its shorter side); odd leftovers go right/bottom."""
    width, height = im.size
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    if side == width == height:
        return im
    return im.crop((left, top, left + side, top + side))


def decode_square(source: bytes | BinaryIO, resolution: int, channels: int) -> np.ndarray:
    """Decode, convert, center-crop and Lanczos-resize one image to uint8 `[C, R, R]`."""
    with open_image(source) as raw:
        im = ImageOps.exif_transpose(raw)
        im = center_crop(to_mode(im, channels))
    if im.size[0] < resolution:
        raise ValueError(f"image is {im.size[0]}px on its shorter side, below {resolution}")
    if im.size[0] != resolution:
        im = im.resize((resolution, resolution), Image.Resampling.LANCZOS)
    return _to_chw(np.asarray(im))


def _to_chw(pixels: np.ndarray) -> np.ndarray:
    """HWC or HW pixels as a contiguous CHW array."""
    if pixels.ndim == 2:
        return np.ascontiguousarray(pixels[None])
    return np.ascontiguousarray(pixels.transpose(2, 0, 1))


def to_luma(images: np.ndarray) -> np.ndarray:
    """RGB `[N, 3, H, W]` -> `[N, 1, H, W]` with ITU-R 601-2 luma, bit-exact with PIL's "L"."""
    rgb = images.astype(np.uint32)
    # PIL's fixed-point weights (0.299, 0.587, 0.114) * 65536, rounded at the end.
    luma = (rgb[:, 0] * 19595 + rgb[:, 1] * 38470 + rgb[:, 2] * 7471 + 0x8000) >> 16
    return luma.astype(np.uint8)[:, None]


def downscale(images: np.ndarray, resolution: int) -> np.ndarray:
    """Square uint8 `[N, C, H, H]` resized down to `resolution` with Lanczos-3 (antialiased).

    The same kernel, support and normalisation as PIL's `Image.resize(LANCZOS)`, applied as two
    matrix products over the whole batch (PIL, one image at a time, is much slower on MNIST). Like
    PIL, the horizontal pass is rounded and clipped to 0..255 before the vertical one; PIL's
    fixed-point weights can still move a value by 1.
    """
    weights = lanczos_matrix(images.shape[-1], resolution)
    out = np.empty((*images.shape[:2], resolution, resolution), dtype=np.uint8)
    for start in range(0, len(images), 4096):
        chunk = images[start : start + 4096].astype(np.float32)
        # x @ W^T resizes the last axis (PIL's horizontal pass), then W @ x the rows.
        rows = np.clip(np.rint(chunk @ weights.T), 0, 255)
        out[start : start + 4096] = np.clip(np.rint(weights @ rows), 0, 255).astype(np.uint8)
    return out


def lanczos_matrix(size_in: int, size_out: int) -> np.ndarray:
    """`[size_out, size_in]` float32 resampling weights of PIL's Lanczos-3 filter."""
    scale = size_in / size_out
    # Downscaling stretches the kernel by the scale factor: that is the antialiasing.
    stretch = max(scale, 1.0)
    support = 3.0 * stretch
    weights = np.zeros((size_out, size_in), dtype=np.float64)
    for row in range(size_out):
        center = (row + 0.5) * scale
        lo = max(int(center - support + 0.5), 0)
        hi = min(int(center + support + 0.5), size_in)
        x = (np.arange(lo, hi) - center + 0.5) / stretch
        kernel = np.sinc(x) * np.sinc(x / 3.0) * (np.abs(x) < 3.0)
        weights[row, lo:hi] = kernel / kernel.sum()
    return weights.astype(np.float32)


def zero_pad(images: np.ndarray, resolution: int) -> np.ndarray:
    """Square `[N, C, H, H]` centred in a black `resolution` canvas (e.g. MNIST 28 -> 32)."""
    pad = resolution - images.shape[-1]
    before = pad // 2
    widths = ((0, 0), (0, 0), (before, pad - before), (before, pad - before))
    return np.pad(images, widths, mode="constant", constant_values=0)
