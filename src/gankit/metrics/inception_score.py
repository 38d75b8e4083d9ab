"""Inception Score: `exp(E_x KL(p(y|x) || p(y)))`, averaged over splits of the samples.

Paper: Salimans et al., "Improved Techniques for Training GANs", arXiv:1606.03498. Reference
implementation: torch-fidelity's `metric_isc`, which this matches exactly: the softmax of the FID
Inception's 1008 logits computed *without* the classifier bias (as the original OpenAI code,
`pool3 @ W`), in float64; the samples shuffled first by `numpy.random.RandomState(seed).permutation`
(torch-fidelity's default, seed 2020; `seed=None` keeps the given order); split `i` is
`[i N // splits, (i + 1) N // splits)`; the result is the mean and population std over splits.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor


def inception_score(
    logits: Tensor | np.ndarray, splits: int = 10, *, seed: int | None = 2020
) -> tuple[float, float]:
    """Logits `[N, K]` -> (mean, std) of the Inception Score over `splits` splits."""
    logits = torch.as_tensor(logits).to(torch.float64)
    n = logits.shape[0]
    if logits.ndim != 2 or not 1 <= splits <= n:
        raise ValueError(
            f"expected logits [N, K] with N >= splits={splits}, got {tuple(logits.shape)}"
        )
    if seed is not None:
        order = np.random.RandomState(seed).permutation(n)
        logits = logits[torch.from_numpy(order).to(logits.device)]
    log_p = logits.log_softmax(dim=1)
    scores = []
    for i in range(splits):
        log_p_chunk = log_p[i * n // splits : (i + 1) * n // splits]
        p_chunk = log_p_chunk.exp()
        terms = p_chunk * (log_p_chunk - p_chunk.mean(dim=0).log())
        # A class no sample in the split predicts has p = 0 and log q = -inf: it adds 0, not NaN.
        kl = torch.where(p_chunk > 0, terms, 0.0).sum(dim=1).mean()
        scores.append(float(kl.exp()))
    return float(np.mean(scores)), float(np.std(scores))
