"""Kernel Inception Distance: the unbiased MMD^2 with a cubic polynomial kernel, over subsets.

Paper: Bińkowski et al., "Demystifying MMD GANs", arXiv:1801.01401. Reference implementation:
torch-fidelity's `metric_kid` (adapted from the paper's `compute_scores.py`), which this matches
exactly: kernel `k(x, y) = (gamma x.y + coef0)^degree` with `gamma = 1 / D` by default, the estimator
`(sum_{i != j} k(x_i, x_j) + sum_{i != j} k(y_i, y_j)) / (m (m - 1)) - 2 sum_{i, j} k(x_i, y_j) / m^2`,
and subsets drawn without replacement by `numpy.random.RandomState(seed).choice`, first from the
real set, then from the fake set, for each subset in turn (so the same seed gives the same subsets).
When the sets are small (the whole-set kernel matrices cost less than the subsets' own, e.g. N equal
to the subset size), the subsets' kernels are gathered from whole-set matrices computed once.
The kernel is computed in the features' own dtype (float32 for Inception features, as in
torch-fidelity, and faster than float64 on CPU), and every sum accumulates in float64, where
torch-fidelity sums in float32: the estimator's cancellation (KID is a small difference of large
kernel means) then costs nothing beyond the kernel's own rounding.
"""

from __future__ import annotations

import functools

import numpy as np
import torch
from torch import Tensor

from gankit.metrics.linalg import matmul_nt

ArrayLike = Tensor | np.ndarray


def polynomial_kernel(
    x: Tensor, y: Tensor, *, degree: int = 3, gamma: float | None = None, coef0: float = 1.0
) -> Tensor:
    """`(gamma x @ y.T + coef0) ** degree` for `x [N, D]`, `y [M, D]`, in their dtype; `gamma`
    defaults to 1 / D."""
    gamma = 1.0 / x.shape[1] if gamma is None else gamma
    return matmul_nt(x, y).mul_(gamma).add_(coef0).pow_(degree)


def mmd2_unbiased(k_xx: Tensor, k_xy: Tensor, k_yy: Tensor) -> Tensor:
    """Unbiased MMD^2 from the three `[m, m]` kernel matrices (diagonals of `k_xx`, `k_yy` dropped)."""
    m = k_xx.shape[0]

    def total(k: Tensor) -> Tensor:
        return k.sum(dtype=torch.float64)

    off_diagonal = total(k_xx) - total(k_xx.diagonal()) + total(k_yy) - total(k_yy.diagonal())
    return off_diagonal / (m * (m - 1)) - 2 * total(k_xy) / (m * m)


#: Largest set for which the whole-set kernel matrices are kept (64 MiB each in float32).
GRAM_MAX_ROWS = 4096


def _draw(n: int, rng: np.random.RandomState, size: int, device: torch.device) -> Tensor:
    return torch.from_numpy(rng.choice(n, size, replace=False)).to(device)


def _whole_set_kernels_are_cheaper(n_real: int, n_fake: int, size: int, subsets: int) -> bool:
    # Every subset's kernel entries are entries of the whole-set matrices: computing those once
    # costs (n_r^2 + n_f^2 + n_r n_f) dot products against 3 m^2 per subset. With N = m (the usual
    # small-N case) that is one subset's work instead of `subsets`.
    whole = n_real**2 + n_fake**2 + n_real * n_fake
    return max(n_real, n_fake) <= GRAM_MAX_ROWS and 2 * whole <= 3 * subsets * size**2


def kid(
    f_real: ArrayLike,
    f_fake: ArrayLike,
    *,
    subsets: int = 100,
    subset_size: int = 1000,
    degree: int = 3,
    gamma: float | None = None,
    coef0: float = 1.0,
    seed: int = 2020,
) -> tuple[float, float]:
    """KID mean and (population) std over `subsets` random subsets of `subset_size` per set."""
    real = torch.as_tensor(f_real)
    real = real if real.is_floating_point() else real.double()
    fake = torch.as_tensor(f_fake).to(device=real.device, dtype=real.dtype)
    if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1]:
        raise ValueError(
            f"expected features [N, D], [M, D]; got {tuple(real.shape)}, {tuple(fake.shape)}"
        )
    if min(len(real), len(fake)) < subset_size or subset_size < 2:
        raise ValueError(
            f"KID subset_size={subset_size} needs 2 <= subset_size <= the size of each set "
            f"(real {len(real)}, fake {len(fake)}); lower subset_size or use more samples"
        )
    rng = np.random.RandomState(seed)
    kernel = functools.partial(polynomial_kernel, degree=degree, gamma=gamma, coef0=coef0)
    whole = _whole_set_kernels_are_cheaper(len(real), len(fake), subset_size, subsets)
    if whole:
        k_rr, k_rf, k_ff = kernel(real, real), kernel(real, fake), kernel(fake, fake)
    values = torch.empty(subsets, dtype=torch.float64)
    for i in range(subsets):
        # Real indices first, then fake, from one RandomState: torch-fidelity's subsets exactly.
        r, f = (_draw(len(t), rng, subset_size, real.device) for t in (real, fake))
        if whole:
            k_xx, k_xy, k_yy = k_rr[r][:, r], k_rf[r][:, f], k_ff[f][:, f]
        else:
            x, y = real[r], fake[f]
            k_xx, k_xy, k_yy = kernel(x, x), kernel(x, y), kernel(y, y)
        values[i] = mmd2_unbiased(k_xx, k_xy, k_yy).cpu()
    return float(values.mean()), float(values.std(correction=0))
