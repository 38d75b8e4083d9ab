"""What G_ema's batch-norm statistics do to a 2-D generator's score, and what precise ones give.

gankit's 2-D generators (the `mlp` model on ring8/grid25: 8 layers with batch norm) sample in
eval mode. For every checkpoint of the given runs this scores G_ema's weights (modes covered and %
high-quality samples over 2,500 latents, the VEEGAN/PacGAN protocol) with three sets of
batch-norm statistics:

- `running`: G's running statistics as the checkpoint holds them, an exponential average
  (momentum 0.1) of the last training minibatches: what gankit sampled and saved before it
  recomputed them;
- `re-drawn`: such averages rebuilt `--draws` times from other latents, `--batches` train-mode
  minibatches of the run's batch size each (min / median / max): how far that noise alone moves
  the score;
- `precise`: `gankit.nn.batchnorm.recompute_batchnorm_stats` on the training loop's latents
  (16,384 in one chunk), what the loop now does before G_ema samples or is saved.

    python benchmarks/batchnorm_stats.py runs/ring8-s0 runs/ring8-s1
    python benchmarks/batchnorm_stats.py --quick    # trains a tiny ring8 run first (tests)
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import torch
import yaml
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))

from experiments import markdown_table, positive_int, provenance, train_run
from gankit.metrics.modes import mixture_coverage
from gankit.nets import build_nets
from gankit.nn.batchnorm import batchnorm_layers, recompute_batchnorm_stats
from gankit.train import checkpoint as ckpt
from gankit.train.ema import BN_STATS_SAMPLES
from gankit.viz.previews import POINT_SNAPSHOT_SIZE

HEADER = ["run", "kimg", "running", "re-drawn min / median / max", "precise"]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("runs", nargs="*", type=Path, help="2-D run directories (ring8 or grid25)")
    p.add_argument("--draws", type=positive_int, default=8, help="re-drawn averages per checkpoint")
    p.add_argument(
        "--batches", type=positive_int, default=60, help="minibatches per re-drawn average"
    )
    p.add_argument("--quick", action="store_true", help="train a 2 kimg ring8 run and score it")
    args = p.parse_args(argv)
    if not args.runs and not args.quick:
        p.error("give run directories, or --quick")
    return args


def score(G: nn.Module, z: torch.Tensor, mixture: str) -> tuple[int, float]:
    """(modes covered, % high quality) of G's eval-mode points for latents `z`."""
    with torch.no_grad():
        result = mixture_coverage(G.eval()(z), mixture)
    return result["modes"], 100.0 * result["high_quality"]


def redrawn_running_stats(G: nn.Module, batches: int, batch_size: int, seed: int) -> nn.Module:
    """G with running statistics rebuilt as training builds them: momentum 0.1 from fresh ones."""
    for layer in batchnorm_layers(G):
        layer.reset_running_stats()
    gen = torch.Generator().manual_seed(seed)
    G.train()
    with torch.no_grad():
        for _ in range(batches):
            G(torch.randn(batch_size, G.z_dim, generator=gen))
    return G.eval()


def precise_stats(G: nn.Module, seed: int) -> nn.Module:
    """G with the statistics the training loop gives G_ema (same latents, one chunk)."""
    count, chunk = BN_STATS_SAMPLES["points"]
    z = torch.randn(count, G.z_dim, generator=torch.Generator().manual_seed(seed))
    recompute_batchnorm_stats(G, z.split(chunk))
    return G


def checkpoint_rows(path: Path, mixture: str, seed: int, args: argparse.Namespace) -> list[str]:
    state = torch.load(path, map_location="cpu", weights_only=True)

    def g_ema_with_g_stats() -> nn.Module:
        G = build_nets(state["model"])["G"]
        G.load_state_dict(state["nets"]["G_ema"])
        buffers = {k: v for k, v in state["nets"]["G"].items() if "running" in k or "tracked" in k}
        G.load_state_dict(buffers, strict=False)
        return G

    z = torch.randn(POINT_SNAPSHOT_SIZE, 2, generator=torch.Generator().manual_seed(0))
    batch = int(state["stage"]["batch_size"])
    redrawn = [
        score(
            redrawn_running_stats(g_ema_with_g_stats(), args.batches, batch, 1000 + k), z, mixture
        )
        for k in range(args.draws)
    ]
    qualities = sorted(q for _, q in redrawn)
    modes = sorted({m for m, _ in redrawn})
    mode_range = f"{modes[0]}" if len(modes) == 1 else f"{modes[0]}-{modes[-1]}"
    middle = qualities[len(qualities) // 2]
    spread = f"{mode_range} modes, {qualities[0]:.1f} / {middle:.1f} / {qualities[-1]:.1f}%"
    precise = score(precise_stats(g_ema_with_g_stats(), seed), z, mixture)
    kimg = f"{state['cur_nimg'] / 1000:g}"
    return [
        path.parents[1].name,
        kimg,
        _fmt(score(g_ema_with_g_stats(), z, mixture)),
        spread,
        _fmt(precise),
    ]


def _fmt(result: tuple[int, float]) -> str:
    return f"{result[0]} modes, {result[1]:.1f}%"


def run_facts(run: Path) -> tuple[str, int]:
    """(mixture name, seed) from the run's config.yaml."""
    config = yaml.safe_load((run / "config.yaml").read_text())
    mixture = config["data"]["name"]
    if mixture not in ("ring8", "grid25"):
        raise SystemExit(f"{run} trained on {mixture!r}; this benchmark scores ring8/grid25 runs")
    return mixture, int(config["train"]["seed"])


def main(argv: Sequence[str] | None = None) -> str:
    args = parse_args(argv)
    torch.set_num_threads(1)
    runs = list(args.runs)
    with tempfile.TemporaryDirectory() as tmp:
        if args.quick:
            runs.append(train_run("lsgan", "ring8", Path(tmp) / "quick-ring8", kimg=2.0))
            args.draws, args.batches = 3, 5
        rows = []
        for run in runs:
            mixture, seed = run_facts(run)
            for path in ckpt.list_checkpoints(run / "checkpoints"):
                rows.append(checkpoint_rows(path, mixture, seed, args))
    table = markdown_table(HEADER, rows)
    print(
        "modes covered, % high-quality samples (2,500 points) of G_ema with each set of statistics\n"
    )
    print(table)
    print()
    print(provenance(["benchmarks/batchnorm_stats.py", *(argv or sys.argv[1:])], jobs=1))
    return table


if __name__ == "__main__":
    main()
