"""Adversarial losses as d_/g_ pairs over critic logits `[N]`; each returns a scalar mean.

- non-saturating: Goodfellow et al. 2014 (arXiv:1406.2661), the -log D(G(z)) generator loss.
- Wasserstein: Arjovsky et al. 2017 (arXiv:1701.07875).
- hinge: Lim & Ye 2017 / Miyato et al. 2018 (arXiv:1802.05957).
- least squares: Mao et al. 2017 (arXiv:1611.04076), targets a=0 (fake), b=c=1 (real).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def d_nonsaturating(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """-log sigmoid(real) - log(1 - sigmoid(fake)); equals 2 ln 2 at zero logits."""
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()


def g_nonsaturating(fake_logits: torch.Tensor) -> torch.Tensor:
    """-log sigmoid(fake): the generator loss the GAN paper recommends in practice."""
    return F.softplus(-fake_logits).mean()


def d_wasserstein(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """E[D(fake)] - E[D(real)]: the critic's negated Wasserstein estimate."""
    return fake_logits.mean() - real_logits.mean()


def g_wasserstein(fake_logits: torch.Tensor) -> torch.Tensor:
    """-E[D(fake)]."""
    return -fake_logits.mean()


def d_hinge(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """E[relu(1 - D(real))] + E[relu(1 + D(fake))]."""
    return F.relu(1.0 - real_logits).mean() + F.relu(1.0 + fake_logits).mean()


def g_hinge(fake_logits: torch.Tensor) -> torch.Tensor:
    """-E[D(fake)] (the hinge GAN generator loss)."""
    return -fake_logits.mean()


def d_least_squares(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """0.5 E[(D(real) - 1)^2] + 0.5 E[D(fake)^2]."""
    return 0.5 * (real_logits - 1.0).square().mean() + 0.5 * fake_logits.square().mean()


def g_least_squares(fake_logits: torch.Tensor) -> torch.Tensor:
    """0.5 E[(D(fake) - 1)^2]."""
    return 0.5 * (fake_logits - 1.0).square().mean()
