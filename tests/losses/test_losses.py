"""Adversarial losses and penalties against closed forms."""

from __future__ import annotations

import math

import pytest
import torch

from gankit import losses
from gankit.losses.penalties import interpolate


def test_nonsaturating_d_loss_at_zero_logits_is_two_ln_two() -> None:
    zeros = torch.zeros(7)
    assert losses.d_nonsaturating(zeros, zeros).item() == pytest.approx(2 * math.log(2))
    assert losses.g_nonsaturating(zeros).item() == pytest.approx(math.log(2))


def test_wasserstein_hinge_and_least_squares_values() -> None:
    real, fake = torch.tensor([1.0, 3.0]), torch.tensor([-2.0, 0.5])
    assert losses.d_wasserstein(real, fake).item() == pytest.approx(-0.75 - 2.0)
    assert losses.g_wasserstein(fake).item() == pytest.approx(0.75)
    # hinge: relu(1 - real) = [0, 0]; relu(1 + fake) = [0, 1.5]
    assert losses.d_hinge(real, fake).item() == pytest.approx(0.75)
    # least squares: 0.5 * mean([0, 4]) + 0.5 * mean([4, 0.25])
    assert losses.d_least_squares(real, fake).item() == pytest.approx(1.0 + 1.0625)
    assert losses.g_least_squares(fake).item() == pytest.approx(0.5 * (9 + 0.25) / 2)


def _linear_critic(w: torch.Tensor):
    return lambda x: (x.flatten(1) * w.flatten()).sum(dim=1)


@pytest.mark.parametrize("scale", [0.3, 1.0, 2.5])
def test_gradient_penalty_of_linear_critic_is_norm_minus_one_squared(scale: float) -> None:
    torch.manual_seed(0)
    w = torch.randn(3, 4, 4)
    w = w / w.norm() * scale
    real, fake = torch.randn(5, 3, 4, 4), torch.randn(5, 3, 4, 4)
    mixed = interpolate(real, fake)
    gp = losses.wgan_gp(_linear_critic(w)(mixed), mixed)
    torch.testing.assert_close(gp, torch.full((5,), (scale - 1.0) ** 2))


def test_r1_of_linear_critic_is_squared_weight_norm() -> None:
    w = torch.randn(2, 3, 3)
    real = torch.randn(4, 2, 3, 3, requires_grad=True)
    torch.testing.assert_close(losses.r1(_linear_critic(w)(real), real), w.square().sum().expand(4))


def test_drift_is_the_squared_real_logit() -> None:
    logits = torch.tensor([0.5, -2.0, 3.0])
    torch.testing.assert_close(losses.drift(logits), torch.tensor([0.25, 4.0, 9.0]))
    # ProGAN's weighted term, 0.001 * E[D(real)^2]:
    assert 1e-3 * losses.drift(logits).mean().item() == pytest.approx(1e-3 * 13.25 / 3)


def test_penalty_is_float32_under_bf16_autocast() -> None:
    real, fake = torch.randn(3, 1, 4, 4), torch.randn(3, 1, 4, 4).bfloat16()
    mixed = interpolate(real, fake)
    assert mixed.dtype == torch.float32
    conv = torch.nn.Conv2d(1, 1, 4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = conv(mixed).flatten()
    gp = losses.wgan_gp(logits, mixed)
    assert gp.dtype == torch.float32 and torch.isfinite(gp).all()
