"""Adversarial losses and penalties: pure, unweighted functions of tensors."""

from gankit.losses.adversarial import (
    d_hinge,
    d_least_squares,
    d_nonsaturating,
    d_wasserstein,
    g_hinge,
    g_least_squares,
    g_nonsaturating,
    g_wasserstein,
)
from gankit.losses.penalties import drift, r1, wgan_gp

__all__ = [
    "d_hinge",
    "d_least_squares",
    "d_nonsaturating",
    "d_wasserstein",
    "drift",
    "g_hinge",
    "g_least_squares",
    "g_nonsaturating",
    "g_wasserstein",
    "r1",
    "wgan_gp",
]
