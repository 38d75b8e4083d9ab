"""Matrix products shared by the metrics.

On CPU, NumPy's BLAS runs the large float32/float64 products of FID and KID (the float64
covariance, the float32 kernel) faster than torch's, and torch-fidelity also computes KID in
NumPy, so `x @ y.T` goes through NumPy there when no gradient is needed (benchmarks/RESULTS.md,
section "FID and KID alone from features").
"""

from __future__ import annotations

import torch
from torch import Tensor


def matmul_nt(x: Tensor, y: Tensor) -> Tensor:
    """`x @ y.T` for `x [N, D]`, `y [M, D]`: a fresh tensor, so in-place ops on it are safe."""
    if x.device.type == "cpu" and not (x.requires_grad or y.requires_grad):
        return torch.from_numpy(x.numpy() @ y.numpy().T)
    return x @ y.T
