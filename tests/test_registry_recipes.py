"""Generated from the recipe registry: every registered recipe trains a few steps, in float32 and
in bfloat16, on tiny data of each kind it accepts (its registration's `kinds`), through the
`Trainer` that `gankit train` builds, with its default model in that model's smallest arch; its
losses stay finite and every net an optimizer steps changes.

A new family gets this test by registering: `@RECIPES.register(name, kinds=(...))`, and its
model with `small_arch`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from gankit.config import config_from_dict
from gankit.registry import MODELS, RECIPES
from gankit.train.loop import Trainer
from gankit.train.resolve import DataFacts
from gankit.train.run import build_trainer

ITERATIONS = 2  # every phase runs at iteration 0 (`cur_iter % every == 0`), the D phase twice
BATCH = 4


def _cases() -> list[tuple[str, str]]:
    return [(entry.name, kind) for entry in RECIPES for kind in entry.kinds]


def _small_model(recipe: str, kind: str) -> tuple[dict[str, Any], int]:
    """The smallest arch of the recipe's default model for this kind of data, and the smallest
    resolution of at least 8 px that model builds at (0 for 2-D points)."""
    cls = RECIPES.get(recipe)
    facts = DataFacts("tiny", kind, resolution=0 if kind == "points" else 32, channels=1)
    model, _ = cls.model_defaults(cls.resolve_args({}, facts), facts)
    entry = MODELS.entry(model)
    sizes = [r for r in entry.resolutions if r >= 8] or [32]
    return dict(entry.small_arch), 0 if kind == "points" else min(sizes)


def _unpaired_folder(root: Path, resolution: int) -> str:
    """trainA/ (greyscale) and trainB/ (RGB) with a few random PNGs: the CycleGAN layout."""
    rng = np.random.default_rng(0)
    for domain, mode, shape in (("A", "L", ()), ("B", "RGB", (3,))):
        folder = root / f"train{domain}"
        folder.mkdir(parents=True)
        for i in range(BATCH * 2):
            pixels = rng.integers(0, 256, (resolution, resolution, *shape), dtype=np.uint8)
            Image.fromarray(pixels, mode).save(folder / f"{i}.png")
    return str(root)


def _data(kind: str, resolution: int, tmp_path: Path) -> dict[str, Any]:
    """Tiny data of `kind`: scikit-learn's digits (labelled images), ring8, or an A/B folder."""
    if kind == "points":
        return {"name": "ring8"}
    if kind == "unpaired":
        return {"name": _unpaired_folder(tmp_path / "ab", resolution), "resolution": resolution}
    return {"name": "digits", "resolution": resolution}


def _trainer(recipe: str, kind: str, amp: str, tmp_path: Path) -> Trainer:
    arch, resolution = _small_model(recipe, kind)
    config = config_from_dict(
        {
            "recipe": {"name": recipe},
            "model": {"name": "auto", "arch": arch},  # the recipe's model and arch, made small
            "data": _data(kind, resolution, tmp_path),
            "train": {
                "out": str(tmp_path / "run"),
                "kimg": 1.0,
                "batch_size": BATCH,
                "amp": amp,
                "device": "cpu",
                "grid_size": 1,
                "progress": False,
            },
        }
    )
    return build_trainer(config)


def _stepped_nets(trainer: Trainer) -> set[str]:
    """The nets whose parameters some optimizer updates."""
    stepped = {
        id(p) for opt in trainer.optimizers.values() for g in opt.param_groups for p in g["params"]
    }
    return {
        name
        for name, net in trainer.nets.items()
        if any(id(p) in stepped for p in net.parameters())
    }


@pytest.mark.parametrize("amp", ["none", "bf16"])
@pytest.mark.parametrize(("recipe", "kind"), _cases(), ids=[f"{r}-{k}" for r, k in _cases()])
def test_every_recipe_trains_on_each_kind_of_data_it_accepts(
    recipe: str, kind: str, amp: str, tmp_path: Path
) -> None:
    torch.manual_seed(0)
    trainer = _trainer(recipe, kind, amp, tmp_path)
    stepped = _stepped_nets(trainer)
    assert stepped, f"{recipe}: no optimizer steps any net"
    before = {
        name: [p.detach().clone() for p in trainer.nets[name].parameters()] for name in stepped
    }
    for _ in range(ITERATIONS):
        trainer.step()
    for name in stepped:
        after = list(trainer.nets[name].parameters())
        assert any(not torch.equal(b, a) for b, a in zip(before[name], after, strict=True)), (
            f"{recipe} on {kind}, amp {amp}: {name} did not change"
        )
        assert all(torch.isfinite(p).all() for p in after), f"{recipe}: {name} is not finite"
    assert trainer.tick_logs, f"{recipe}: no phase ran"
    for key, values in trainer.tick_logs.items():
        assert all(torch.isfinite(v).all() for v in values), f"{recipe} on {kind}: {key}"
