"""Gaussian Parzen-window log-likelihood of test data under generated samples.

The estimate of the original GAN paper (Goodfellow et al., "Generative Adversarial Networks",
arXiv:1406.2661, Table 1), after Breuleux, Bengio and Vincent (2011), as in the paper's code
(github.com/goodfeli/adversarial, `parzen_ll.py`):

    log p(x) = logmeanexp_i( -|x - s_i|^2 / (2 sigma^2) ) - D log(sigma sqrt(2 pi))

over generated samples s_i (pixels in [0, 1], flattened to D values). The reference protocol:
10,000 generated samples; sigma picked from `logspace(-1, 0, 10)` by the mean log-likelihood of a
validation set (MNIST train images 50,000-59,999, of which the first 1,000 by default); the score is
the mean log-likelihood (nats) of the 10,000 MNIST test images with standard error
std / sqrt(M) (numpy's population std). The estimate is known to be poor in high dimensions (Theis
et al., arXiv:1511.01844); it is here to reproduce the GAN paper's table, not to rank models.

Squared distances use |x|^2 - 2 x.s + |s|^2 in float64 (exact enough for D = 784), in blocks of
test points so memory stays at `batch_size * N` values.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import numpy as np
import torch

from gankit.metrics.classifier import as_tensor

Array = np.ndarray | torch.Tensor

#: The reference code's default grid (`--sigma_start -1 --sigma_end 0 --cross_val 10`).
DEFAULT_SIGMAS = tuple(float(s) for s in np.logspace(-1, 0, 10))


def _as_matrix(x: Array, what: str, device: torch.device | str | None) -> torch.Tensor:
    t = as_tensor(x)
    t = t.reshape(len(t), -1) if t.ndim > 2 else t
    if t.ndim != 2 or len(t) == 0:
        raise ValueError(f"{what} must be a non-empty [N, D] array, got {tuple(t.shape)}")
    return t.to(device=device, dtype=torch.float64)


def _sq_distance_blocks(
    test: torch.Tensor, samples: torch.Tensor, batch_size: int
) -> Iterator[torch.Tensor]:
    """Blocks `[b, N]` of squared distances between test rows and sample rows."""
    if test.shape[1] != samples.shape[1]:
        raise ValueError(
            f"test points have {test.shape[1]} values each but samples have {samples.shape[1]}"
        )
    s_sq = samples.square().sum(1)
    for i in range(0, len(test), batch_size):
        x = test[i : i + batch_size]
        d2 = x.square().sum(1, keepdim=True) - 2 * x @ samples.T + s_sq
        yield d2.clamp_min_(0)


def _log_density(d2: torch.Tensor, sigma: float, dim: int) -> torch.Tensor:
    """Per-row Parzen log-density from squared distances `[b, N]`."""
    n = d2.shape[1]
    log_norm = dim * math.log(sigma * math.sqrt(2 * math.pi))
    return torch.logsumexp(-d2 / (2 * sigma**2), dim=1) - math.log(n) - log_norm


def parzen_log_densities(
    samples: Array,
    test: Array,
    sigma: float,
    *,
    batch_size: int = 100,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """log p(x) `[M]` (nats, float64) of each test row under the Parzen window on `samples`."""
    s = _as_matrix(samples, "samples", device)
    x = _as_matrix(test, "test", device)
    blocks = _sq_distance_blocks(x, s, batch_size)
    return torch.cat([_log_density(d2, sigma, s.shape[1]) for d2 in blocks]).cpu()


def parzen_log_likelihood(
    samples: Array,
    test: Array,
    sigma: float,
    *,
    batch_size: int = 100,
    device: torch.device | str | None = None,
) -> tuple[float, float]:
    """(mean log-likelihood in nats, standard error) of `test` `[M, D]` under `samples` `[N, D]`."""
    ll = parzen_log_densities(samples, test, sigma, batch_size=batch_size, device=device)
    return float(ll.mean()), float(ll.std(correction=0) / math.sqrt(len(ll)))


def sigma_log_likelihoods(
    samples: Array,
    validation: Array,
    sigmas: Sequence[float] = DEFAULT_SIGMAS,
    *,
    batch_size: int = 100,
    device: torch.device | str | None = None,
) -> list[float]:
    """Mean validation log-likelihood for each sigma (distances computed once for all sigmas)."""
    s = _as_matrix(samples, "samples", device)
    v = _as_matrix(validation, "validation", device)
    totals = torch.zeros(len(sigmas), dtype=torch.float64)
    for d2 in _sq_distance_blocks(v, s, batch_size):
        for k, sigma in enumerate(sigmas):
            totals[k] += _log_density(d2, sigma, s.shape[1]).sum().cpu()
    return (totals / len(v)).tolist()


def select_sigma(
    samples: Array,
    validation: Array,
    sigmas: Sequence[float] = DEFAULT_SIGMAS,
    *,
    batch_size: int = 100,
    device: torch.device | str | None = None,
) -> float:
    """The sigma of `sigmas` with the highest mean validation log-likelihood (first on ties)."""
    if len(sigmas) == 0:
        raise ValueError("need at least one candidate sigma")
    lls = sigma_log_likelihoods(samples, validation, sigmas, batch_size=batch_size, device=device)
    return float(sigmas[int(np.argmax(lls))])
