"""Adam's kernels: per-tensor, foreach and fused, on the nets of gankit's recipes.

gankit's recipes build Adam with `fused=True` (`gankit.recipes.base.fused_adam`). This measures
why: the time of one Adam step over G's and D's parameters with each kernel, and one whole
training iteration (D step + G step, batch 100) of the 2-D `lsgan` recipe with the fused kernel
and with the per-tensor one. Measurements alternate between the variants, so a busy machine slows
them alike.

    python benchmarks/optimizer_step.py            # CPU, one thread
    python benchmarks/optimizer_step.py --device cuda
    python benchmarks/optimizer_step.py --quick    # seconds: the table, not the timings (tests)
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from experiments import markdown_table, positive_int, provenance

KERNELS = {
    "per-tensor": {"foreach": False, "fused": False},
    "foreach": {"foreach": True, "fused": False},
    "fused": {"foreach": False, "fused": True},
}
#: (label, model name, img_resolution, img_channels): the nets each recipe family trains.
NETS = [("2-D MLPs (gan, lsgan on points)", "mlp", 0, 0), ("dcgan 64x64 RGB", "dcgan", 64, 3)]


def median_ms(
    fns: dict[str, Callable[[], None]], repeats: int, inner: int, device: torch.device
) -> dict[str, float]:
    """Median ms per call of each fn, the fns interleaved `repeats` times, `inner` calls each."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    for fn in fns.values():  # warm-up: lazy optimizer state, allocator, batch-norm buffers
        for _ in range(inner):
            fn()
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            for _ in range(inner):
                fn()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            times[name].append((time.perf_counter() - start) / inner * 1e3)
    return {name: statistics.median(t) for name, t in times.items()}


def adam_steps(model: str, res: int, ch: int, device: torch.device) -> dict[str, Callable]:
    from gankit.registry import MODELS

    nets = MODELS.get(model)(res, ch).to(device)
    params = list(nets["G"].parameters()) + list(nets["D"].parameters())
    for p in params:
        p.grad = torch.randn_like(p) * 1e-3
    steps = {}
    for name, kernel in KERNELS.items():
        opt = torch.optim.Adam(params, lr=1e-4, betas=(0.5, 0.999), **kernel)
        steps[name] = opt.step
    return steps


def lsgan_iterations(device: torch.device) -> dict[str, Callable]:
    """One training iteration of `gankit train lsgan --data grid25`, fused and per-tensor Adam:
    `build_trainer` builds the nets, recipe and loop options as `gankit train` does."""
    from gankit.config import config_from_dict
    from gankit.train.run import build_trainer

    iterations = {}
    for name in ("per-tensor", "fused"):
        torch.manual_seed(0)
        train_cfg = {"out": tempfile.mkdtemp(), "progress": False, "device": str(device)}
        config = config_from_dict(
            {"recipe": {"name": "lsgan"}, "data": {"name": "grid25"}, "train": train_cfg}
        )
        trainer = build_trainer(config)
        for opt in trainer.optimizers.values():  # the recipe's Adam is fused: switch it back
            for group in opt.param_groups:
                group.update(KERNELS[name])
        iterations[name] = trainer.step
    return iterations


def main(argv: list[str] | None = None) -> str:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--device", default="cpu", help="cpu or cuda[:N] (default cpu)")
    p.add_argument("--threads", type=positive_int, default=1, help="torch threads (default 1)")
    p.add_argument("--repeats", type=positive_int, default=7, help="interleaved rounds (default 7)")
    p.add_argument("--quick", action="store_true", help="one round of two calls: the table only")
    args = p.parse_args(argv)
    inner = 2 if args.quick else None
    repeats = 1 if args.quick else args.repeats
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    rows = []
    for label, model, res, ch in NETS:
        ms = median_ms(adam_steps(model, res, ch, device), repeats, inner or 20, device)
        rows.append([f"Adam step, {label}", *(f"{ms[k]:.2f}" for k in KERNELS)])
    ms = median_ms(lsgan_iterations(device), repeats, inner or 50, device)
    rows.append(
        [
            "lsgan iteration on grid25 (D + G step)",
            f"{ms['per-tensor']:.1f}",
            "",
            f"{ms['fused']:.1f}",
        ]
    )
    table = markdown_table(["ms per call", *KERNELS], rows)
    print(provenance(sys.argv, 1) + f"\n- device {device}, {args.threads} thread(s)\n\n" + table)
    return table


if __name__ == "__main__":
    main()
