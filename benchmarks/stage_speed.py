"""Images per second of a ProGAN config's nets at each stage, per minibatch size (issue 24).

Small ProGAN nets on a CPU are bound by per-step overhead at low resolutions, so the minibatch
decides how many images a minute of training shows. This times gankit's own training step
(`Trainer.step`, as in throughput.py) with the stage pinned, for each resolution of the config's
model and each batch size given, at fade-in alpha 0.5 (stable stages cost the same).

    python benchmarks/stage_speed.py configs/progan-digits-demo.yaml --batches 16,32,64,128
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from throughput import nimg_at_stage


def step_fn(arch: dict, resolution: int, batch: int, workdir: Path):
    """A function doing one pinned training step of a model `arch` at `resolution`."""
    from gankit.data.base import ArrayDataset
    from gankit.models.progan import build
    from gankit.recipes.progan import ProGANRecipe
    from gankit.train.distributed import DistInfo
    from gankit.train.logging import RunLogger
    from gankit.train.loop import LoopOptions, Trainer

    torch.manual_seed(0)
    full = arch.pop("resolution")
    images = np.random.default_rng(0).integers(0, 256, (4 * batch, 1, full, full), dtype=np.uint8)
    nets = build(full, 1, **arch)
    arch["resolution"] = full
    recipe = ProGANRecipe(nets, batch, batch_sizes={}, fade_kimg=1000, stable_kimg=1000)
    options = LoopOptions(total_kimg=1e9, ema_kimg=10.0, tick_kimg=1e9, snapshot_kimg=0.0,
                          sample_kimg=0.0, device=torch.device("cpu"), progress=False)  # fmt: skip
    trainer = Trainer(nets, recipe, ArrayDataset(images, name="synthetic"), workdir, options,
                      DistInfo(), RunLogger(workdir, enabled=False))  # fmt: skip
    alpha = 0.5 if resolution > min(nets["G"].resolutions) else 1.0
    start = nimg_at_stage(recipe.schedule_, resolution, alpha)

    def step() -> None:
        trainer.cur_nimg = start
        trainer.step()
        trainer.tick_logs.clear()

    return step


def images_per_second(step, batch: int, seconds: float) -> float:
    """Median-free simple rate: warm up 3 steps, then time steps for about `seconds`."""
    for _ in range(3):
        step()
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds or n < 3:
        step()
        n += 1
    return n * batch / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("config", type=Path)
    parser.add_argument("--batches", default="16,32,64,128")
    parser.add_argument("--resolution", type=int, default=32, help="the model's final resolution")
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    import yaml

    torch.set_num_threads(args.threads)
    arch = dict(yaml.safe_load(args.config.read_text())["model"]["arch"])
    arch["resolution"] = args.resolution
    batches = [int(b) for b in args.batches.split(",")]
    print(f"| resolution | {' | '.join(f'batch {b}' for b in batches)} |")
    print(f"| ---: | {' | '.join('---:' for _ in batches)} |")
    res = 4
    with tempfile.TemporaryDirectory() as tmp:
        while res <= args.resolution:
            rates = [images_per_second(step_fn(arch, res, b, Path(tmp)), b, args.seconds)
                     for b in batches]  # fmt: skip
            print(f"| {res} | {' | '.join(f'{r:.0f}' for r in rates)} |", flush=True)
            res *= 2


if __name__ == "__main__":
    main()
