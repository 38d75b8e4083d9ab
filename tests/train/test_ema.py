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


def test_the_half_life_ramps_up_with_the_images_shown() -> None:
    """StyleGAN2-ADA's ema_rampup: half-life = min(ema_kimg * 1000, cur_nimg * rampup)."""
    assert ema_beta(16, 10.0, cur_nimg=0, rampup=0.05) == 0.0  # G_ema starts as a copy of G
    assert ema_beta(16, 10.0, cur_nimg=1000, rampup=0.05) == 0.5 ** (16 / 50)
    assert ema_beta(16, 10.0, cur_nimg=200_000, rampup=0.05) == 0.5 ** (16 / 10_000)
    assert ema_beta(16, 10.0, cur_nimg=10**7, rampup=0.05) == 0.5 ** (16 / 10_000)
    assert ema_beta(16, 10.0, cur_nimg=1000, rampup=0.0) == 0.5 ** (16 / 10_000)  # off


def test_a_short_runs_g_ema_follows_g_with_the_ramp_up(tmp_path) -> None:
    """A 0.16-kimg ProGAN run with the paper's 10-kimg half-life: without the ramp-up G_ema is
    still within about 1% of the random initialisation; with it, it is nearly G."""
    from gankit.config import config_from_dict
    from gankit.train.logging import RunLogger
    from gankit.train.run import build_trainer

    def distances(rampup: float) -> tuple[float, float]:
        train = {"out": str(tmp_path / str(rampup)), "device": "cpu", "kimg": 0.16,
                 "batch_size": 8, "ema_kimg": 10.0, "ema_rampup": rampup, "sample_kimg": 1.0,
                 "snapshot_kimg": 1.0}  # fmt: skip
        arch = {"channel_base": 64, "channel_max": 16, "z_dim": 16}
        config = config_from_dict({"recipe": {"name": "progan", "args": {"fade_kimg": 0.04,
            "stable_kimg": 0.04}}, "model": {"name": "progan", "arch": arch},
            "data": {"name": "digits", "resolution": 8}, "train": train})  # fmt: skip
        trainer = build_trainer(config, RunLogger(tmp_path, enabled=False))
        start = copy.deepcopy(trainer.all_nets["G_ema"].state_dict())
        while trainer.cur_nimg < 160:
            trainer.step()
        G, ema = trainer.nets["G"].state_dict(), trainer.all_nets["G_ema"].state_dict()
        to_g = sum((ema[k] - G[k]).norm() ** 2 for k in G) ** 0.5
        to_start = sum((ema[k] - start[k]).norm() ** 2 for k in G) ** 0.5
        return float(to_g), float(to_start)

    to_g_off, moved_off = distances(0.0)
    to_g_on, _ = distances(0.05)
    assert moved_off < 0.02 * to_g_off  # without: barely moved from the initialisation
    assert to_g_on < 0.25 * to_g_off
