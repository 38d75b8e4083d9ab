"""Tiny generators and hand-made run directories for the generate and plot tests.

The run directories hold what `gankit train` leaves (config.yaml, stats.jsonl, samples/ and a
checkpoint written by `gankit.train.checkpoint.save_checkpoint`), with generators small enough to
check every sample exactly. The two test models are registered per test with `monkeypatch`, so the
registry is left as it was.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import yaml
from torch import nn

from gankit.cli import main
from gankit.nets import build_nets
from gankit.registry import MODELS, Entry
from gankit.train import checkpoint as ckpt
from gankit.viz import save_grid, to_uint8
from gankit.viz.points import save_scatter

TINY_IMAGE = "test-tiny-image"
TINY_POINTS = "test-tiny-points"
#: The sampling kwargs stored in the fake checkpoints; G must receive them.
SAMPLING = {"scale": 2.0}


class TinyImageG(nn.Module):
    """z (and a one-hot class) -> one linear layer -> tanh images `[N, C, R, R]`."""

    output_kind = "images"

    def __init__(self, img_resolution: int, img_channels: int, c_dim: int, z_dim: int) -> None:
        super().__init__()
        self.z_dim, self.c_dim = z_dim, c_dim
        self.img_resolution, self.img_channels = img_resolution, img_channels
        self.fc = nn.Linear(z_dim + c_dim, img_channels * img_resolution**2)

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None, scale: float = 1.0):
        if self.c_dim:
            assert c is not None and c.dtype == torch.int64, "a conditional G needs int64 labels"
            # A large class signal, so samples of different classes clearly differ.
            z = torch.cat([z, 4 * F.one_hot(c, self.c_dim).to(z.dtype)], dim=1)
        else:
            assert c is None
        out = torch.tanh(scale * self.fc(z))
        return out.reshape(-1, self.img_channels, self.img_resolution, self.img_resolution)


class TinyPointG(nn.Module):
    """z -> one linear layer -> 2-D points `[N, 2]`."""

    output_kind = "points"
    img_resolution = 0
    img_channels = 0

    def __init__(self, c_dim: int, z_dim: int) -> None:
        super().__init__()
        self.z_dim, self.c_dim = z_dim, c_dim
        self.fc = nn.Linear(z_dim, 2)

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None, scale: float = 1.0):
        return scale * self.fc(z)


def tiny_image(img_resolution: int, img_channels: int, c_dim: int, z_dim: int = 8) -> nn.ModuleDict:
    """A tiny image model (G and a dummy D)."""
    G = TinyImageG(img_resolution, img_channels, c_dim, z_dim)
    return nn.ModuleDict({"G": G, "D": nn.Linear(1, 1)})


def tiny_points(
    img_resolution: int, img_channels: int, c_dim: int, z_dim: int = 4
) -> nn.ModuleDict:
    """A tiny 2-D point model (G and a dummy D)."""
    return nn.ModuleDict({"G": TinyPointG(c_dim, z_dim), "D": nn.Linear(2, 1)})


def register_tiny_models(monkeypatch: pytest.MonkeyPatch) -> None:
    """Register the two tiny models for one test (undone by monkeypatch afterwards)."""
    MODELS.names()  # fill the registry with the built-ins first
    for name, fn in ((TINY_IMAGE, tiny_image), (TINY_POINTS, tiny_points)):
        monkeypatch.setitem(MODELS._entries, name, Entry(name, fn, "test model"))


@dataclass
class FakeRun:
    """A hand-made run directory and the generator its checkpoint holds."""

    path: Path
    G: nn.Module
    spec: dict[str, Any] = field(default_factory=dict)


def make_run(
    root: Path,
    *,
    points: bool = False,
    c_dim: int = 0,
    resolution: int = 8,
    channels: int = 3,
    data: str | None = None,
    checkpoint: bool = True,
) -> FakeRun:
    """A run directory as `gankit train` leaves it, for a tiny image or 2-D point generator."""
    root.mkdir(parents=True, exist_ok=True)
    spec = {
        "name": TINY_POINTS if points else TINY_IMAGE,
        "img_resolution": 0 if points else resolution,
        "img_channels": 0 if points else channels,
        "c_dim": c_dim,
        "arch": {},
    }
    with torch.random.fork_rng():
        torch.manual_seed(0)
        nets = MODELS.get(spec["name"])(
            spec["img_resolution"], spec["img_channels"], c_dim, **spec["arch"]
        )
    G = nets["G"].eval().requires_grad_(False)
    data = data or ("ring8" if points else "digits")
    config = {"data": {"name": data}, "model": {"name": spec["name"]}, "recipe": {"name": "gan"}}
    (root / "config.yaml").write_text(yaml.safe_dump(config))
    records = [
        {"kimg": k, "D_main/loss": 1.4 - 0.1 * i, "G_main/loss": 0.7 + 0.1 * i}
        for i, k in enumerate((0.5, 1.0, 1.5))
    ]
    (root / "stats.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    for nimg in (500, 1000, 1500):
        _write_snapshot(root / "samples", G, nimg, points, data)
    if not points:
        reals = torch.randint(0, 256, (16, channels, resolution, resolution), dtype=torch.uint8)
        save_grid(reals, root / "samples" / "reals.png")
    if checkpoint:
        state = {
            "cur_nimg": 1500,
            "model": spec,
            "nets": {"G": G.state_dict(), "D": nets["D"].state_dict(), "G_ema": G.state_dict()},
            "sampling": dict(SAMPLING),
        }
        ckpt.save_checkpoint(state, root / "checkpoints", 1500, keep=3)
    return FakeRun(root, G, spec)


@torch.no_grad()
def _write_snapshot(folder: Path, G: nn.Module, nimg: int, points: bool, data: str) -> None:
    z = torch.randn(
        16 if not points else 200, G.z_dim, generator=torch.Generator().manual_seed(nimg)
    )
    c = torch.arange(z.shape[0]) % G.c_dim if G.c_dim else None
    out = G(z, c, **SAMPLING) if c is not None else G(z, **SAMPLING)
    if points:
        save_scatter(out, folder / f"points-{nimg:012d}.png", mixture=data)
    else:
        save_grid(to_uint8(out), folder / f"fakes-{nimg:012d}.png")


def expected_outputs(
    G: nn.Module, num: int, seed: int, labels: torch.Tensor | None
) -> torch.Tensor:
    """What `gankit generate --seed` must produce: G on `torch.randn(num, z_dim)` from `seed`."""
    z = torch.randn(num, G.z_dim, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        out = G(z, labels, **SAMPLING) if labels is not None else G(z, **SAMPLING)
    return out if getattr(G, "output_kind", "images") == "points" else to_uint8(out)


# ------------------------------------------------------------------ StyleGAN2 runs

SMALL_STYLEGAN2 = {
    "z_dim": 4,
    "w_dim": 4,
    "mapping_layers": 2,
    "channel_base": 16,
    "channel_max": 2,
}


TINY_STYLEGAN2 = [
    "--set", "model.arch.z_dim=4", "--set", "model.arch.w_dim=4",
    "--set", "model.arch.mapping_layers=2", "--set", "model.arch.channel_base=16",
    "--set", "model.arch.channel_max=2", "--set", "train.grid_size=4",
]  # fmt: skip


def train_tiny_stylegan2(out: Path) -> Path:
    """A tiny 8 px StyleGAN2 run on digits (1 channel, num_ws 4), trained through the CLI."""
    args = ["train", "stylegan2", "--data", "digits", "--resolution", "8", "--batch", "4"]
    args += ["--kimg", "0.008", "--device", "cpu", "--no-progress", "--out", str(out)]
    assert main([*args, *TINY_STYLEGAN2]) == 0
    return out


def hand_made_run(root: Path, name: str, c_dim: int = 0, **arch: object) -> tuple[Path, nn.Module]:
    """A run directory holding only a checkpoint of a freshly built `name` G_ema (8 px, 1 channel)."""
    spec = {"name": name, "img_resolution": 8, "img_channels": 1, "c_dim": c_dim, "arch": arch}
    with torch.random.fork_rng():
        torch.manual_seed(0)
        G = build_nets(spec)["G"].eval().requires_grad_(False)
        if hasattr(G, "mapping"):
            # A far-off w_avg and strong noise, so truncation and the noise modes show clearly.
            G.mapping.w_avg.copy_(torch.randn(G.w_dim) * 2)
            for key, value in G.named_parameters():
                if key.endswith("noise_strength"):
                    value.fill_(1.0)
    state = {"cur_nimg": 0, "model": spec, "nets": {"G_ema": G.state_dict()}, "sampling": {}}
    ckpt.save_checkpoint(state, root / "checkpoints", 0, keep=1)
    return root, G


def official_z(seed: int, z_dim: int) -> torch.Tensor:
    """The official generate.py's z of a seed: float64 `[1, z_dim]`."""
    return torch.from_numpy(np.random.RandomState(seed).randn(1, z_dim))


def tiny_progan_overrides(out: Path, kimg: float = 0.16) -> list[str]:
    """CLI flags for a ProGAN run that grows 4 -> 8 -> 16 in a few seconds on one CPU thread."""
    return [
        "train",
        "progan",
        "--data",
        "digits",
        "--resolution",
        "16",
        "--out",
        str(out),
        "--kimg",
        str(kimg),
        "--batch",
        "8",
        "--workers",
        "0",
        "--no-progress",
        "--tick-kimg",
        "0.016",
        "--snapshot-kimg",
        "0.08",
        "--sample-kimg",
        "0.04",
        "--set",
        "model.arch.channel_base=64",
        "--set",
        "model.arch.channel_max=16",
        "--set",
        "model.arch.z_dim=16",
        "--set",
        "recipe.args.fade_kimg=0.032",
        "--set",
        "recipe.args.stable_kimg=0.032",
        "--set",
        "train.grid_size=16",
    ]
