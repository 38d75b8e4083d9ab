"""Precise batch-norm statistics against hand computations and train-mode outputs."""

from __future__ import annotations

import copy
from collections.abc import Iterator

import pytest
import torch
from torch import nn

from gankit.nn.batchnorm import recompute_batchnorm_stats


def _deep_bn_net() -> nn.Sequential:
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Linear(3, 16), nn.BatchNorm1d(16), nn.ReLU(),
        nn.Linear(16, 16), nn.BatchNorm1d(16), nn.ReLU(),
        nn.Linear(16, 2),
    )  # fmt: skip
    with torch.no_grad():
        for layer in (net[1], net[4]):
            layer.weight.uniform_(0.5, 2.0)
            layer.bias.normal_()
            layer.running_mean.fill_(5.0)  # far from the truth, as after a noisy training tail
    return net.eval()


def test_one_chunk_makes_eval_mode_reproduce_train_mode_on_that_chunk() -> None:
    net = _deep_bn_net()
    x = torch.randn(8192, 3) * 2.0 + 1.0
    with torch.no_grad():
        expected = copy.deepcopy(net).train()(x)
        assert not torch.allclose(net(x), expected, atol=0.1)  # the stale statistics are off
    assert recompute_batchnorm_stats(net, [x]) == 2
    with torch.no_grad():
        got = net(x)
    # Train mode divides by the biased variance, eval mode by the unbiased running one:
    # a relative difference of about 1 / (2 * 8192) in the scale.
    torch.testing.assert_close(got, expected, rtol=1e-3, atol=1e-3)


def test_chunk_statistics_average_the_chunk_means_and_unbiased_variances() -> None:
    bn = nn.BatchNorm1d(2).eval()
    a = torch.tensor([[0.0, 1.0], [2.0, 3.0], [4.0, 8.0]])  # means (2, 4), unbiased vars (4, 13)
    b = torch.tensor([[10.0, -1.0], [12.0, 1.0]])  # means (11, 0), unbiased vars (2, 2)
    recompute_batchnorm_stats(bn, [a, b])
    torch.testing.assert_close(bn.running_mean, torch.tensor([6.5, 2.0]))
    torch.testing.assert_close(bn.running_var, torch.tensor([3.0, 7.5]))
    assert bn.num_batches_tracked.item() == 2


def test_modes_and_momentum_come_back_and_dropout_stays_off_while_it_runs() -> None:
    net = nn.Sequential(nn.Linear(4, 8), nn.Dropout(0.5), nn.BatchNorm1d(8, momentum=0.3))
    net.eval()
    seen: list[bool] = []
    net[1].register_forward_hook(lambda module, args, out: seen.append(module.training))
    x = torch.randn(64, 4)
    recompute_batchnorm_stats(net, [x, x])
    assert seen == [False, False]
    assert [m.training for m in net.modules()] == [False] * 4
    assert net[2].momentum == 0.3
    # With dropout off, both calls saw the same batch: the statistics are exactly its own.
    features = net[0](x).detach()
    torch.testing.assert_close(net[2].running_mean, features.mean(0))
    torch.testing.assert_close(net[2].running_var, features.var(0, unbiased=True))


def test_no_input_or_a_failing_forward_keeps_the_old_statistics() -> None:
    net = _deep_bn_net()
    before = copy.deepcopy(net.state_dict())
    with pytest.raises(ValueError, match="at least one input batch"):
        recompute_batchnorm_stats(net, [])

    def fails(module: nn.Module, item: torch.Tensor) -> None:
        module(item)
        raise RuntimeError("out of memory")

    with pytest.raises(RuntimeError, match="out of memory"):
        recompute_batchnorm_stats(net, [torch.randn(32, 3)], forward=fails)
    for key, value in net.state_dict().items():
        assert torch.equal(value, before[key]), key
    assert not any(m.training for m in net.modules())
    assert net[1].momentum == 0.1


def test_a_net_without_batchnorm_is_left_alone_and_its_inputs_not_drawn() -> None:
    def never() -> Iterator[torch.Tensor]:
        raise AssertionError("inputs drawn for a net without batch norm")
        yield torch.zeros(1)

    net = nn.Sequential(nn.Linear(2, 2), nn.LayerNorm(2))
    assert recompute_batchnorm_stats(net, never()) == 0
