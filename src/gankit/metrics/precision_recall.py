"""Improved precision and recall: how much of each distribution lies inside the other's manifold.

Paper: Kynkäänniemi et al., "Improved Precision and Recall Metric for Assessing Generative Models",
arXiv:1904.06991. Each set's manifold is the union of balls around its samples, the radius of a
sample being the distance to its k-th nearest neighbour in its own set (k = 3 by default). Precision
is the fraction of fake samples inside the real manifold, recall the fraction of real samples inside
the fake manifold; a sample is inside when its distance to some ball centre is `<=` that ball's
radius. This matches the official code (`kynkaanniemi/improved-precision-and-recall-metric`) and
torch-fidelity's `metric_prc` (whose `input1` is the fake set). Distances are computed in row batches
so memory stays `O(batch_size * N)`.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

ArrayLike = Tensor | np.ndarray


def knn_radii(features: Tensor, k: int = 3, *, batch_size: int = 10000) -> Tensor:
    """Distance from each row of `features [N, D]` to its k-th nearest other row `[N]`."""
    if not 1 <= k < len(features):
        raise ValueError(f"k={k} needs 1 <= k < the number of samples ({len(features)})")
    # The (k+1)-th smallest distance counts the sample itself (distance 0) as the first.
    return torch.cat(
        [
            torch.cdist(rows, features).kthvalue(k + 1, dim=1).values
            for rows in features.split(batch_size)
        ]
    )


def manifold_coverage(
    queries: Tensor, centres: Tensor, radii: Tensor, *, batch_size: int = 10000
) -> float:
    """Fraction of `queries [N, D]` within `radii [M]` of at least one of `centres [M, D]`."""
    inside = [
        (torch.cdist(rows, centres) <= radii).any(dim=1) for rows in queries.split(batch_size)
    ]
    return float(torch.cat(inside).double().mean())


def precision_recall(
    real_feats: ArrayLike, fake_feats: ArrayLike, k: int = 3, *, batch_size: int = 10000
) -> tuple[float, float]:
    """(precision, recall) of fake features `[M, D]` against real features `[N, D]`."""
    real = torch.as_tensor(real_feats)
    real = real if real.is_floating_point() else real.float()
    fake = torch.as_tensor(fake_feats).to(device=real.device, dtype=real.dtype)
    if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1]:
        raise ValueError(
            f"expected features [N, D], [M, D]; got {tuple(real.shape)}, {tuple(fake.shape)}"
        )
    precision = manifold_coverage(
        fake, real, knn_radii(real, k, batch_size=batch_size), batch_size=batch_size
    )
    recall = manifold_coverage(
        real, fake, knn_radii(fake, k, batch_size=batch_size), batch_size=batch_size
    )
    return precision, recall
