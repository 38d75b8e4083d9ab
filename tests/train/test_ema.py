"""G_ema: the moving average's formula, its half-life, and tensors that stay valid on a resume."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from gankit.train.ema import MovingAverage, ema_beta


def _net(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(3, 4, bias=False), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 2))


def test_half_life_in_images() -> None:
    assert ema_beta(100, 0.0) == 0.0
    beta = ema_beta(100, 10.0)  # 10,000 images = 100 steps of 100
    assert beta**100 == pytest.approx(0.5)


def test_update_moves_parameters_and_copies_buffers() -> None:
    source, ema = _net(0), _net(1)
    source(torch.randn(8, 3))  # moves the batch-norm statistics away from their start
    before = copy.deepcopy(ema.state_dict())
    MovingAverage(ema, source).update(0.9)
    for (name, value), (_, src) in zip(
        ema.named_parameters(), source.named_parameters(), strict=True
    ):
        expected = 0.9 * before[name] + 0.1 * src.detach()
        torch.testing.assert_close(value, expected, rtol=0, atol=1e-7)
    for name, value in ema.named_buffers():
        assert torch.equal(value, source.state_dict()[name])


def test_beta_zero_makes_an_exact_copy() -> None:
    source, ema = _net(0), _net(1)
    MovingAverage(ema, source).update(0.0)
    for key, value in source.state_dict().items():
        assert torch.equal(ema.state_dict()[key], value)


def test_the_listed_tensors_follow_training_and_loading() -> None:
    """The tensors are listed once, so a later optimizer step on G or a resume that loads
    G's weights must still reach G_ema through them."""
    source, ema = _net(0), _net(1)
    average = MovingAverage(ema, source)
    with torch.no_grad():
        source[0].weight.add_(1.0)  # as an optimizer step does, in place
    average.update(0.0)
    assert torch.equal(ema[0].weight, source[0].weight)
    source.load_state_dict(_net(2).state_dict())  # as a resume does
    average.update(0.0)
    for key, value in _net(2).state_dict().items():
        assert torch.equal(ema.state_dict()[key], value)


def test_networks_of_other_structures_are_refused() -> None:
    with pytest.raises(ValueError, match="different structures"):
        MovingAverage(nn.Linear(3, 2), _net(0))
