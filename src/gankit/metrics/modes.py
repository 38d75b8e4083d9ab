"""Mode-collapse benchmarks: Stacked-MNIST mode counting and 2-D Gaussian-mixture coverage.

Protocols from VEEGAN (Srivastava et al., "VEEGAN: Reducing Mode Collapse in GANs using Implicit
Variational Learning", arXiv:1705.07761) as implemented in PacGAN's code (Lin et al., "PacGAN: The
power of two samples in generative adversarial networks", arXiv:1712.04086; github.com/fjxmlzn/PacGAN):

Stacked MNIST: each of the 3 channels of a sample is classified by a pretrained MNIST classifier;
the digits (d0, d1, d2) give one of 1,000 modes, id 100*d0 + 10*d1 + d2. Reported: the number of
modes with at least one sample, and KL(p || uniform over 1,000) with p the empirical mode
histogram (terms with p = 0 contribute 0). The papers use 26,000 samples.

2-D mixtures (ring8, grid25; see `gankit.data.toy`): each sample is assigned to its nearest mode;
it is *high quality* if that distance is below 3 sigma (strictly, as PacGAN's `MetricLogger`). A
mode is covered if at least one high-quality sample is assigned to it. Reported: modes covered, the
fraction of high-quality samples (the papers print it as a percentage), and the "reverse KL" of
PacGAN's tables, KL(p || uniform over K) with p the histogram of the high-quality samples' modes
(normalised over high-quality samples; empty bins contribute 0; NaN when no sample is high
quality). The papers use 2,500 samples.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from gankit.data.toy import MIXTURES, Mixture2D
from gankit.errors import ConfigError
from gankit.metrics.classifier import Classifier, ImageBatch, as_tensor, predict

STACKED_MNIST_MODES = 1000
HIGH_QUALITY_SIGMAS = 3.0


def kl_to_uniform(counts: np.ndarray | torch.Tensor) -> float:
    """KL(p || uniform) in nats for the histogram `counts` `[K]`; 0 log 0 = 0; NaN if empty."""
    c = np.asarray(counts, dtype=np.float64)
    total = c.sum()
    if total <= 0:
        return math.nan
    p = c[c > 0] / total
    return float(np.sum(p * np.log(p * len(c))))


def stacked_mnist_mode_ids(digits: np.ndarray | torch.Tensor) -> np.ndarray:
    """Mode ids `[N]` = 100*d0 + 10*d1 + d2 for per-channel digits `[N, 3]`."""
    d = np.asarray(digits, dtype=np.int64)
    if d.ndim != 2 or d.shape[1] != 3 or (d.size and (d.min() < 0 or d.max() > 9)):
        raise ValueError(f"need digits 0-9 of shape [N, 3], got {d.shape}")
    return d @ np.array([100, 10, 1], dtype=np.int64)


def stacked_mnist_from_digits(digits: np.ndarray | torch.Tensor) -> dict[str, float]:
    """`{"modes", "kl", "num_samples"}` from per-channel digits `[N, 3]`."""
    ids = stacked_mnist_mode_ids(digits)
    counts = np.bincount(ids, minlength=STACKED_MNIST_MODES)
    return {
        "modes": int(np.count_nonzero(counts)),
        "kl": kl_to_uniform(counts),
        "num_samples": len(ids),
    }


def stacked_mnist_digits(
    images: ImageBatch,
    classifier: Classifier,
    *,
    batch_size: int = 500,
    device: str | torch.device | None = None,
) -> torch.Tensor:
    """The classifier's digit for each channel of `[N, 3, H, W]` images -> `[N, 3]` int64."""
    x = as_tensor(images)
    if x.ndim != 4 or x.shape[1] != 3:
        raise ValueError(f"Stacked-MNIST images are [N, 3, H, W], got {tuple(x.shape)}")
    flat = x.reshape(x.shape[0] * 3, 1, *x.shape[2:])
    return predict(classifier, flat, batch_size=batch_size, device=device).reshape(-1, 3)


def stacked_mnist_coverage(
    images: ImageBatch,
    classifier: Classifier,
    *,
    batch_size: int = 500,
    device: str | torch.device | None = None,
) -> dict[str, float]:
    """Modes covered (of 1,000) and KL(mode histogram || uniform) for Stacked-MNIST samples."""
    digits = stacked_mnist_digits(images, classifier, batch_size=batch_size, device=device)
    return stacked_mnist_from_digits(digits)


def _mixture(mixture: Mixture2D | str) -> Mixture2D:
    if isinstance(mixture, str):
        if mixture not in MIXTURES:
            raise ConfigError(f"unknown mixture {mixture!r}; known: {', '.join(MIXTURES)}")
        return MIXTURES[mixture]
    return getattr(mixture, "mixture", mixture)


def assign_modes(
    points: np.ndarray | torch.Tensor, mixture: Mixture2D | str
) -> tuple[torch.Tensor, torch.Tensor]:
    """Nearest mode `[N]` (int64) and high-quality flag `[N]` (distance < 3 sigma) per point."""
    mix = _mixture(mixture)
    x = torch.as_tensor(points).double()
    if x.ndim != 2 or x.shape[1] != 2:
        raise ValueError(f"need 2-D points [N, 2], got {tuple(x.shape)}")
    # With one shared isotropic sigma, the nearest mode in sigma units is the Euclidean nearest.
    nearest, mode = torch.cdist(x, mix.means.double()).min(dim=1)
    return mode, nearest < HIGH_QUALITY_SIGMAS * mix.sigma


def mixture_coverage(
    points: np.ndarray | torch.Tensor, mixture: Mixture2D | str
) -> dict[str, float]:
    """`{"modes", "high_quality", "reverse_kl", "num_samples"}` for samples `[N, 2]` of a mixture.

    `mixture` is a `Mixture2D`, a dataset carrying one (`.mixture`), or "ring8" / "grid25".
    `high_quality` is a fraction in [0, 1].
    """
    mix = _mixture(mixture)
    mode, good = assign_modes(points, mix)
    counts = torch.bincount(mode[good], minlength=mix.num_modes).numpy()
    return {
        "modes": int(np.count_nonzero(counts)),
        "high_quality": float(good.double().mean()) if len(good) else math.nan,
        "reverse_kl": kl_to_uniform(counts),
        "num_samples": len(mode),
    }
