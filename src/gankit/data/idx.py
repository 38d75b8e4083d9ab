"""Reader for the IDX format of MNIST and Fashion-MNIST (LeCun et al.), gzipped or plain.

An IDX file is a 4-byte magic number (two zero bytes, a type code, the number of dimensions), one
big-endian uint32 per dimension, then the values in C order. The images files have magic 0x803
(uint8, 3 dims) and the labels files 0x801 (uint8, 1 dim).
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from gankit.errors import DataError

IMAGES_MAGIC = 0x00000803
LABELS_MAGIC = 0x00000801

# IDX type code -> big-endian numpy dtype.
_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: Path, magic: int | None = None) -> np.ndarray:
    """The array stored in IDX file `path` (.gz or not); `magic` checks the expected kind."""
    raw = _read_bytes(path)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _DTYPES:
        raise _corrupt(path, f"it does not start with an IDX magic number (got {raw[:4].hex()})")
    found, ndim = int.from_bytes(raw[:4], "big"), raw[3]
    if magic is not None and found != magic:
        raise _corrupt(path, f"magic number 0x{found:08x}, expected 0x{magic:08x}")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise _corrupt(path, "the header is truncated")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_DTYPES[raw[2]])
    expected = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) != expected:
        raise _corrupt(path, f"shape {shape} needs {expected:,} bytes but it has {len(raw):,}")
    return (
        np.frombuffer(raw, dtype=dtype, offset=header)
        .reshape(shape)
        .astype(dtype.newbyteorder("="))
    )


def _read_bytes(path: Path) -> bytes:
    """The file's bytes, gunzipped when it starts with the gzip signature."""
    try:
        with path.open("rb") as file:
            head = file.read(2)
        if head == b"\x1f\x8b":
            with gzip.open(path, "rb") as file:
                return file.read()
        return path.read_bytes()
    except (OSError, EOFError, zlib.error) as exc:
        raise _corrupt(path, f"it cannot be read ({type(exc).__name__}: {exc})") from None


def _corrupt(path: Path, why: str) -> DataError:
    return DataError(
        f"{path} is not a valid IDX file: {why}. It is probably truncated or corrupt; "
        "delete it and download or copy it again."
    )
