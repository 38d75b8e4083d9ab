"""Built-in datasets, registered by name."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from gankit.data.base import ArrayDataset
from gankit.registry import DATASETS


@DATASETS.register("digits")
def digits(root: str | None = None, resolution: int | None = None, channels: int | None = None) -> ArrayDataset:
    """scikit-learn's 1,797 8x8 handwritten digits, upscaled (bicubic) to 32x32; ships with sklearn."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    img = torch.from_numpy(bunch.images.astype(np.float32) / 16.0).unsqueeze(1)
    img = F.interpolate(img, size=resolution or 32, mode="bicubic", align_corners=False)
    img = (img.clamp(0, 1) * 255).round().to(torch.uint8).numpy()
    return ArrayDataset(img, bunch.target, name="digits", description="digits 8x8 -> 32x32 bicubic")
