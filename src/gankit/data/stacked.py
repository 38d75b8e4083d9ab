"""Stacked MNIST: three MNIST digits as the R, G and B channels of one image, 1,000 modes.

The mode-collapse benchmark of VEEGAN (Srivastava et al., "VEEGAN: Reducing Mode Collapse in GANs
using Implicit Variational Learning", arXiv:1705.07761) and PacGAN (Lin et al., "PacGAN: The power
of two samples in generative adversarial networks", arXiv:1712.04086). An item's label is its mode,
`100 * d_R + 10 * d_G + d_B` for the digits of its three channels, so `num_classes` is 1,000.

The sizes are PacGAN's (github.com/fjxmlzn/PacGAN, `stacked_MNIST_experiments/VEEGAN_experiment/
config.py`): 128,000 training images (`num_training_sample`); the test split has 26,000, the number
of generated samples PacGAN scores. Deviation: PacGAN draws the three digits uniformly with
replacement from the 70,000 MNIST train and test images together; gankit draws the train split
from MNIST's train images and the test split from its test images, so the two never share a digit
image. The draw is a fixed seeded index table `[N, 3]` (seed 0 for train, 1 for test); images are
composed when indexed, so nothing besides MNIST itself is stored.

Resolution is 28 (native) or 32 (2 black pixels on every side, as DCGAN-style models at 32 use);
channels are always 3.
"""

from __future__ import annotations

import numpy as np
import torch

from gankit.data.base import ArrayDataset, GathersBatches, ImageDataset
from gankit.data.builtin import mnist
from gankit.data.imaging import zero_pad
from gankit.errors import ConfigError
from gankit.registry import DATASETS

SPLIT_SIZES = {"train": 128_000, "test": 26_000}
SPLIT_SEEDS = {"train": 0, "test": 1}
RESOLUTIONS = (28, 32)
NUM_MODES = 1000


class StackedMNIST(GathersBatches, ImageDataset):
    """Items `{"img": uint8 [3, R, R], "label": int64 mode}` composed from an MNIST dataset.

    `digits` is MNIST as gankit loads it (uint8 `[M, 1, 28, 28]` images with labels 0-9);
    `index[i]` (int64 `[N, 3]`) names the MNIST images in the R, G and B channels of item i.
    """

    name = "stacked-mnist"
    channels = 3
    num_classes = NUM_MODES

    def __init__(
        self,
        digits: ArrayDataset,
        *,
        size: int,
        seed: int,
        resolution: int = 28,
        split: str = "train",
    ) -> None:
        if resolution not in RESOLUTIONS:
            raise ConfigError(_resolution_message(resolution))
        if digits.labels is None or tuple(digits.images.shape[1:]) != (1, 28, 28):
            raise ValueError("stacked-mnist is built from labelled 28x28 greyscale MNIST")
        self.resolution, self.split = resolution, split
        gen = torch.Generator().manual_seed(seed)
        self.index = torch.randint(len(digits), (size, 3), generator=gen)
        source = digits.images.numpy()[:, 0]
        if resolution == 32:
            source = zero_pad(source[:, None], 32)[:, 0]
        # Padding once here keeps __getitem__ a single gather.
        self.source = torch.from_numpy(np.ascontiguousarray(source))
        self.digit_labels = digits.labels
        self.labels = (self.digit_labels[self.index] * torch.tensor([100, 10, 1])).sum(1)
        self.class_names = [f"{k:03d}" for k in range(NUM_MODES)]
        pad = ", zero-padded by 2 px on each side to 32x32" if resolution == 32 else ""
        self.description = (
            f"stacked-mnist {split} split: {size:,} RGB images whose channels are MNIST {split} "
            f"digits drawn uniformly with replacement (seed {seed}){pad}; labels 0-999 = "
            "100*R + 10*G + B digit"
        )

    def __len__(self) -> int:
        return self.index.shape[0]

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {"img": self.source[self.index[index]], "label": self.labels[index]}


def _resolution_message(resolution: object) -> str:
    return (
        f"stacked-mnist comes at resolution 28 (native) or 32 (zero-padded); got {resolution!r}. "
        "Other sizes would resample the digits the mode classifier was trained on."
    )


@DATASETS.register("stacked-mnist")
def stacked_mnist(
    root: str | None = None,
    resolution: int | None = None,
    channels: int | None = None,
    split: str = "train",
) -> StackedMNIST:
    """Stacked MNIST (VEEGAN/PacGAN): 3 MNIST digits as RGB, 1,000 modes, 128,000 train images."""
    if resolution is not None and resolution not in RESOLUTIONS:
        raise ConfigError(_resolution_message(resolution))
    if channels not in (None, 3):
        raise ConfigError(
            f"stacked-mnist images have 3 channels (one digit each); got channels={channels!r}. "
            "Leave --channels unset or pass 3."
        )
    if split not in SPLIT_SIZES:
        raise ConfigError(f"stacked-mnist has the splits train, test; got split={split!r}")
    return StackedMNIST(
        mnist(root=root, split=split),
        size=SPLIT_SIZES[split],
        seed=SPLIT_SEEDS[split],
        resolution=resolution or 28,
        split=split,
    )
