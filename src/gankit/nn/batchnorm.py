"""Precise batch-norm statistics for a generator that samples in eval mode.

A generator with batch norm (the MLP, DCGAN and ResNet families) trains on per-minibatch
statistics and samples in eval mode with `running_mean`/`running_var`, an exponential average
(momentum 0.1) of the last few dozen training minibatches. Two things make those running
statistics a poor fit for the weights being sampled:

- they are noisy: with minibatches of 100, the average of a few dozen batch means still moves
  from step to step, and a deep generator amplifies the error: on `ring8`, whose modes are
  narrow, the same weights put very different shares of their samples on the modes depending on
  which minibatches the statistics came from (benchmarks/RESULTS.md, "Precise batch-norm
  statistics").
- they belong to G, not G_ema: the moving average copies G's buffers (see `gankit.train.ema`).

`recompute_batchnorm_stats` replaces them with the mean of per-chunk batch statistics over many
samples drawn through the network itself (PreciseBN, which Wu & Johnson, "Rethinking 'Batch' in
BatchNorm", 2021, arXiv:2105.07576, compare with the moving average). Chunks should be large:
each layer's statistics are then taken on inputs normalised by nearly exact statistics of the
layers before it, which is what eval mode gives those layers. With the whole draw in one chunk
(what the training loop does for 2-D points), eval mode reproduces train mode on that chunk.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm


def batchnorm_layers(net: nn.Module) -> list[_BatchNorm]:
    """Every batch-norm layer of `net` that keeps running statistics."""
    return [m for m in net.modules() if isinstance(m, _BatchNorm) and m.track_running_stats]


@torch.no_grad()
def recompute_batchnorm_stats(
    net: nn.Module, inputs: Iterable[Any], forward: Callable[[nn.Module, Any], Any] | None = None
) -> int:
    """Set every batch-norm layer's running statistics to the equal-weight mean of its batch
    statistics over `inputs` (one call of `forward(net, item)`, default `net(item)`, per item).

    Running means become the mean of the chunk means and running variances the mean of the
    chunks' unbiased variances; with equal chunks these estimate the statistics of the whole
    draw. Only the batch-norm layers switch to train mode while this runs, so dropout and spectral
    norm's power iteration do not move; every layer's mode and momentum are restored after.
    Returns the number of layers recomputed (0: `net` has none and `inputs` is not consumed).
    """
    layers = batchnorm_layers(net)
    if not layers:
        return 0
    saved = [(layer.training, layer.momentum) for layer in layers]
    # Kept to put back if no input comes or the forward fails: the old statistics beat reset ones.
    old_stats = [[buf.clone() for buf in _stat_buffers(layer)] for layer in layers]
    for layer in layers:
        layer.reset_running_stats()
        layer.momentum = None  # None: a cumulative, equal-weight average over the calls
        layer.train()
    run = forward or (lambda module, item: module(item))
    calls = 0
    try:
        for item in inputs:
            run(net, item)
            calls += 1
        if not calls:
            raise ValueError("recompute_batchnorm_stats needs at least one input batch, got none")
    except BaseException:
        for layer, stats in zip(layers, old_stats, strict=True):
            for buf, old in zip(_stat_buffers(layer), stats, strict=True):
                buf.copy_(old)
        raise
    finally:
        for layer, (training, momentum) in zip(layers, saved, strict=True):
            layer.train(training)
            layer.momentum = momentum
    return len(layers)


def _stat_buffers(layer: _BatchNorm) -> list[torch.Tensor]:
    return [
        b
        for b in (layer.running_mean, layer.running_var, layer.num_batches_tracked)
        if b is not None
    ]
