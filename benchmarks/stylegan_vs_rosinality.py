"""StyleGAN (v1) training step on the CPU: gankit against rosinality/style-based-gan-pytorch
(issue 27), at one stage of growing, on the same work.

Both sides train a style-based G (8-layer mapping of 512, AdaIN, constant input, noise) and a
progressive D at `--resolution` px, stable (alpha 1), batch `--batch`, with the non-saturating
logistic loss, R1 (gamma 10) on every D step, style mixing with probability 0.9, one D step per G
step and a G moving average after every G step.

- gankit: `Trainer.step()` of the trainer `gankit train` builds (`build_trainer`), recipe
  `stylegan` (Table 1 row F), `start_resolution` = the data's resolution (so the stage is that
  resolution, stable), `batch_sizes: {}`, on synthetic PNGs in a temporary folder.
- rosinality: its `model.py` `StyledGenerator` and `Discriminator` (`from_rgb_activate`, the
  train.py default), imported at run time from `--rosinality PATH`, with its train.py iteration
  written out here pass for pass for `--loss r1 --mixing`: D on the reals with R1 (its
  `retain_graph` backward, then the penalty's), D on G(z) of one or two latents, the D step; G's
  step on fresh latents; `accumulate(g_running, generator)`; its `.item()` reads every 10th
  iteration; the style network's lr x 0.01 param group; Adam (0, 0.99). Reals: one fixed batch.

Widths. `--widths paper`: rosinality's own networks (512 channels up to 32 px, then 256, 128, ...;
gankit channel_base 16384, channel_max 512). `--widths small`: every width / 8 (channel_max 64),
rosinality's progression rebuilt from its own block classes (`StyledConvBlock`, `ConvBlock`,
`EqualConv2d`) with those widths. Up to 32 px the two architectures are the same layer for
layer; from 64 px rosinality's D block runs its second 3x3 conv at the output width (the
official runs the first at the input width), so it does more work there. The table lists the
parameters each side runs at the stage as the check (the layers of other stages left out).

Timing: each round starts one process per side, order alternating between rounds; each warms up
with `--warmup` iterations and times `--iters`; the table gives the median over rounds.

    python benchmarks/stylegan_vs_rosinality.py --rosinality /path/to/style-based-gan-pytorch
    python benchmarks/stylegan_vs_rosinality.py --rosinality PATH --widths paper --resolution 32
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from stylegan2_speed import write_images
from throughput import machine_description

HERE_SRC = Path(__file__).resolve().parents[1] / "src"
RESULT_MARKER = "@@RESULT "
CODE = 512
WIDTH_DIVISORS = {"paper": 1, "small": 8}


def channels(resolution: int, divisor: int) -> int:
    """The width at a resolution: min(16384 // res, 512) / divisor (both sides)."""
    return max(1, min(16384 // resolution, 512) // divisor)


# ---------------------------------------------------------------------------------------- worker


def gankit_step(spec: dict[str, Any], workdir: Path) -> tuple[Callable[[int], None], dict]:
    """`Trainer.step()` of the trainer `gankit train` builds, stable at the spec's resolution."""
    from gankit.config import config_from_dict
    from gankit.train.run import build_trainer

    res, div = spec["resolution"], WIDTH_DIVISORS[spec["widths"]]
    data = workdir / "images"
    write_images(data, 64, res)
    arch = {"channel_base": 16384 // div, "channel_max": 512 // div}
    args = {"start_resolution": res, "batch_sizes": {}}
    config = {
        "model": {"name": "auto", "arch": arch},
        "recipe": {"name": "stylegan", "args": args},
        "data": {"name": str(data), "resolution": res},
        "train": {"out": str(workdir / "run"), "kimg": 1e6, "device": "cpu", "progress": False,
                  "batch_size": spec["batch"]},
    }  # fmt: skip
    trainer = build_trainer(config_from_dict(config))

    def step(i: int) -> None:
        trainer.step()
        trainer.tick_logs.clear()

    return step, {"G": trainer.nets["G"], "D": trainer.nets["D"]}


def import_rosinality(path: str) -> Any:
    """rosinality's `model` module (pure PyTorch: nothing to compile)."""
    sys.path.insert(0, path)
    import model

    return model


def _small_generator(ref: Any, G: nn.Module, divisor: int) -> None:
    """rosinality's G progression and to_rgb lists at widths / divisor, from its own blocks."""
    res = [4 * 2**i for i in range(9)]
    ch = [channels(r, divisor) for r in res]
    G.generator.progression = nn.ModuleList(
        [ref.StyledConvBlock(ch[0], ch[0], 3, 1, initial=True)]
        + [ref.StyledConvBlock(ch[i - 1], ch[i], 3, 1, upsample=True, fused=res[i] >= 128)
           for i in range(1, 9)]
    )  # fmt: skip
    G.generator.to_rgb = nn.ModuleList(ref.EqualConv2d(c, 3, 1) for c in ch)


def _small_discriminator(ref: Any, D: nn.Module, divisor: int) -> None:
    """rosinality's D lists at widths / divisor; entry k reads resolution 1024 / 2**k."""
    res = [4 * 2**i for i in range(9)]
    ch = [channels(r, divisor) for r in res]
    D.progression = nn.ModuleList(
        [ref.ConvBlock(ch[8 - k], ch[7 - k], 3, 1, downsample=True, fused=res[8 - k] >= 128)
         for k in range(8)]
        + [ref.ConvBlock(ch[0] + 1, ch[0], 3, 1, 4, 0)]
    )  # fmt: skip
    D.from_rgb = nn.ModuleList(
        nn.Sequential(ref.EqualConv2d(3, ch[8 - k], 1), nn.LeakyReLU(0.2)) for k in range(9)
    )
    D.linear = ref.EqualLinear(ch[0], 1)


def rosinality_step(spec: dict[str, Any]) -> tuple[Callable[[int], None], dict]:
    """One iteration `i` of rosinality's train.py loop (`--loss r1 --mixing`) at a fixed stage."""
    ref = import_rosinality(spec["rosinality"])
    res, batch = spec["resolution"], spec["batch"]
    step_index = res.bit_length() - 3  # 4 px: step 0
    G, D = ref.StyledGenerator(CODE), ref.Discriminator(from_rgb_activate=True)
    g_running = ref.StyledGenerator(CODE)
    divisor = WIDTH_DIVISORS[spec["widths"]]
    if divisor != 1:
        for net in (G, g_running):
            _small_generator(ref, net, divisor)
        _small_discriminator(ref, D, divisor)
    g_running.train(False)
    _accumulate(g_running, G, 0)
    g_optim = torch.optim.Adam(G.generator.parameters(), lr=0.001, betas=(0.0, 0.99))
    g_optim.add_param_group({"params": G.style.parameters(), "lr": 0.001 * 0.01, "mult": 0.01})
    d_optim = torch.optim.Adam(D.parameters(), lr=0.001, betas=(0.0, 0.99))
    reals = torch.rand(batch, 3, res, res) * 2 - 1
    alpha = 1.0

    def step(i: int) -> None:
        D.zero_grad()
        _requires_grad(G, False)
        _requires_grad(D, True)
        real_image = reals.clone().requires_grad_(True)
        real_scores = D(real_image, step=step_index, alpha=alpha)
        real_predict = F.softplus(-real_scores).mean()
        real_predict.backward(retain_graph=True)
        (grad_real,) = torch.autograd.grad(real_scores.sum(), real_image, create_graph=True)
        grad_penalty = 10 / 2 * (grad_real.view(batch, -1).norm(2, dim=1) ** 2).mean()
        grad_penalty.backward()
        if random.random() < 0.9:
            gen_in1 = list(torch.randn(2, batch, CODE).unbind(0))
            gen_in2 = list(torch.randn(2, batch, CODE).unbind(0))
        else:
            gen_in1, gen_in2 = torch.randn(2, batch, CODE).unbind(0)
        fake_image = G(gen_in1, step=step_index, alpha=alpha)
        fake_predict = F.softplus(D(fake_image, step=step_index, alpha=alpha)).mean()
        fake_predict.backward()
        d_optim.step()
        G.zero_grad()
        _requires_grad(G, True)
        _requires_grad(D, False)
        loss = F.softplus(-D(G(gen_in2, step=step_index, alpha=alpha), step=step_index,
                             alpha=alpha)).mean()  # fmt: skip
        loss.backward()
        g_optim.step()
        _accumulate(g_running, G, 0.999)
        if i % 10 == 0:
            for value in (grad_penalty, real_predict + fake_predict, loss):
                value.item()

    return step, {"G": G, "D": D}


def _requires_grad(module: nn.Module, flag: bool) -> None:
    for p in module.parameters():
        p.requires_grad = flag


def _accumulate(ema: nn.Module, net: nn.Module, decay: float) -> None:
    """rosinality's `accumulate`: parameters only."""
    ema_params = dict(ema.named_parameters())
    for name, p in net.named_parameters():
        ema_params[name].data.mul_(decay).add_(p.data, alpha=1 - decay)


def _count(*modules: nn.Module) -> int:
    return sum(p.numel() for m in modules for p in m.parameters())


def used_parameters(impl: str, nets: dict[str, nn.Module], res: int) -> dict[str, int]:
    """The parameters a stable stage at `res` runs (each side builds layers for other stages)."""
    G, D = nets["G"], nets["D"]
    level = res.bit_length() - 3  # 4 px: 0
    if impl == "gankit":
        syn = G.synthesis
        g = _count(G.mapping, *syn.layers[: 2 * level + 2], syn.to_rgb[level]) + syn.const.numel()
        return {"G": g, "D": _count(D.from_rgb[level], *D.blocks[: level + 1])}
    gen = G.generator
    g = _count(G.style, *gen.progression[: level + 1], gen.to_rgb[level])
    first = len(D.progression) - level - 1
    return {"G": g, "D": _count(D.from_rgb[first], *D.progression[first:], D.linear)}


def run_worker(spec: dict[str, Any]) -> dict[str, Any]:
    """Build one side, warm up, time `iters` iterations."""
    import warnings

    warnings.filterwarnings("ignore")
    torch.set_num_threads(spec["threads"])
    torch.manual_seed(0)
    random.seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        if spec["impl"] == "gankit":
            step, nets = gankit_step(spec, Path(tmp))
        else:
            step, nets = rosinality_step(spec)
        params = used_parameters(spec["impl"], nets, spec["resolution"])
        for i in range(spec["warmup"]):
            step(i)
        t0 = time.perf_counter()
        for i in range(spec["iters"]):
            step(spec["warmup"] + i)
        seconds = (time.perf_counter() - t0) / spec["iters"]
    return {"params": params, "seconds": seconds}


# ---------------------------------------------------------------------------------------- parent


def run_process(spec: dict[str, Any]) -> dict[str, Any]:
    """One worker in its own process; its result or {"error": ...}."""
    threads = str(spec["threads"])
    env = dict(os.environ, OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads)
    env["PYTHONPATH"] = str(HERE_SRC) + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(spec)],
        capture_output=True, text=True, env=env,
    )  # fmt: skip
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(RESULT_MARKER):
            return json.loads(line[len(RESULT_MARKER) :])
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    print("\n".join(lines[-20:]), file=sys.stderr)
    return {"error": lines[-1] if lines else f"exit status {proc.returncode}"}


def format_table(times: dict[str, list[dict]], batch: int) -> str:
    """Markdown: per side the median seconds per iteration, img/s and the ratio."""
    lines = [
        "| impl | s/iter (median) | img/s | x rosinality | rounds | G / D params at the stage (M) |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    medians = {k: statistics.median(r["seconds"] for r in v) for k, v in times.items() if v}
    for impl, runs in times.items():
        if not runs:
            lines.append(f"| {impl} | failed | | | | |")
            continue
        s = medians[impl]
        ref = medians.get("rosinality")
        ratio = f"{ref / s:.2f}" if ref and impl != "rosinality" else "-"
        p = runs[0]["params"]
        lines.append(
            f"| {impl} | {s:.3f} | {batch / s:.3g} | {ratio} | {len(runs)} "
            f"| {p['G'] / 1e6:.3f} / {p['D'] / 1e6:.3f} |"
        )
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--rosinality",
        default=os.environ.get("GANKIT_BENCH_ROSINALITY_SG1", ""),
        help="checkout of github.com/rosinality/style-based-gan-pytorch "
        "(default: $GANKIT_BENCH_ROSINALITY_SG1; without it only gankit runs)",
    )
    p.add_argument("--resolution", type=int, default=32, help="the stage, stable (8-1024)")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--widths", choices=sorted(WIDTH_DIVISORS), default="small")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=3, help="alternating rounds")
    p.add_argument("--warmup", type=int, default=2, help="untimed iterations per process")
    p.add_argument("--iters", type=int, default=10, help="timed iterations per process")
    p.add_argument("--json", type=Path, default=None, help="also write the raw results here")
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Alternate the two sides over the rounds and print a Markdown report."""
    args = parse_args(argv)
    if args.worker:
        print(RESULT_MARKER + json.dumps(run_worker(json.loads(args.worker))), flush=True)
        return
    impls = ["rosinality", "gankit"] if args.rosinality else ["gankit"]
    base = {
        "resolution": args.resolution, "batch": args.batch, "threads": args.threads,
        "widths": args.widths, "warmup": args.warmup, "iters": args.iters,
        "rosinality": str(Path(args.rosinality).resolve()) if args.rosinality else "",
    }  # fmt: skip
    load_before, started = os.getloadavg(), datetime.datetime.now(datetime.timezone.utc)
    times: dict[str, list[dict]] = {impl: [] for impl in impls}
    for r in range(args.rounds):
        for impl in impls if r % 2 == 0 else impls[::-1]:
            result = run_process({**base, "impl": impl})
            print(f"round {r} {impl}: {result}", file=sys.stderr)
            if "error" not in result:
                times[impl].append(result)
    load_after = os.getloadavg()
    report = [
        f"- command: `python {' '.join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]])}`",
        f"- machine: {machine_description(args.threads, 'cpu')}",
        f"- date: {started:%Y-%m-%d %H:%M} UTC; load average (1/5/15 min) before: "
        f"{' / '.join(f'{x:.2f}' for x in load_before)}, after: "
        f"{' / '.join(f'{x:.2f}' for x in load_after)}",
        f"- {args.resolution} px stable, batch {args.batch}, {args.widths} widths "
        f"(channel_max {512 // WIDTH_DIVISORS[args.widths]}), R1 every step, mixing 0.9; "
        f"{args.warmup} warm-up + {args.iters} timed iterations per process",
        "",
        format_table(times, args.batch),
    ]
    print("\n".join(report))
    if args.json:
        args.json.write_text(json.dumps(times))


if __name__ == "__main__":
    main()
