"""Networks from a model spec: what `gankit train` records in every checkpoint and what
`generate`, `evaluate` and the plots rebuild G_ema from. Below `train/`, so that the tools that
only sample a run never import the training loop."""

from __future__ import annotations

import inspect
from typing import Any

import torch
from torch import nn

from gankit.registry import MODELS


def model_spec(name: str, arch: dict[str, Any], facts: Any, c_dim: int) -> dict[str, Any]:
    """What rebuilds the networks from a checkpoint alone: the model name, the data's resolution
    and channels (`facts`: a dataset, or anything with those attributes), classes and arch."""
    spec = {
        "name": name,
        "img_resolution": facts.resolution,
        "img_channels": facts.channels,
        "c_dim": c_dim,
        "arch": dict(arch),
    }
    if getattr(facts, "channels_b", 0):  # two image domains (unpaired A/B data)
        spec["img_channels_b"] = facts.channels_b
    return spec


def build_nets(spec: dict[str, Any]) -> nn.ModuleDict:
    """Networks from a model spec (see `model_spec`); a spec saved before an arch argument
    existed gets the value that rebuilds its networks (`Entry.earlier_arch`)."""
    entry = MODELS.entry(spec["name"])
    builder = entry.fn
    extra = {}
    if "img_channels_b" in spec and "img_channels_b" in inspect.signature(builder).parameters:
        extra["img_channels_b"] = spec["img_channels_b"]
    return builder(
        spec["img_resolution"],
        spec["img_channels"],
        spec["c_dim"],
        **extra,
        **entry.with_earlier_arch(spec["arch"]),
    )


def sampling_net(nets: dict[str, nn.Module] | nn.ModuleDict) -> nn.Module | None:
    """The generator pictures and metrics are drawn from: G_ema when the run averages G, else G."""
    for name in ("G_ema", "G"):
        if name in nets:
            return nets[name]
    return None


def draw_latents(
    net: nn.Module,
    n: int,
    generator: torch.Generator,
    device: torch.device | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """`n` latents z ~ N(0, I) of `net.z_dim` from `generator` (on the generator's device), then
    moved to `device`: the one way gankit draws z, so a seed gives the same z everywhere."""
    z = torch.randn(n, net.z_dim, generator=generator, device=generator.device, dtype=dtype)
    return z if device is None else z.to(device)


def run_generator(
    G: nn.Module,
    z: torch.Tensor,
    c: torch.Tensor | None = None,
    kwargs: dict[str, Any] | None = None,
    batch: int = 64,
) -> torch.Tensor:
    """G's outputs (on the CPU) for latents `z` `[N, z_dim]` and labels `c` `[N]`, `batch` at a time."""
    device = next(G.parameters()).device
    kwargs = kwargs or {}
    out = []
    for start in range(0, z.shape[0], batch):
        zb = z[start : start + batch].to(device)
        if c is None:
            out.append(G(zb, **kwargs).cpu())
        else:
            out.append(G(zb, c[start : start + batch].to(device), **kwargs).cpu())
    return torch.cat(out)
