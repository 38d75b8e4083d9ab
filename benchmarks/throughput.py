"""ProGAN training throughput and peak memory: gankit against a reference port (project issue #2).

Measures real images shown to D per second and peak memory of one ProGAN training iteration (one D
step with WGAN-GP + drift, one G step, G_ema update) at batch 16, at two fixed stages (32x32 during
fade-in with alpha 0.5, 64x64 stable) and two widths (paper: 512 channels up to 32x32 and 256 at
64x64; reduced: 128 up to 32x32 and 64 at 64x64). Both networks are built for 4x4..128x128.

gankit is measured through its real training loop: `gankit.train.loop.Trainer` with the `progan`
recipe on a synthetic in-memory `ArrayDataset`, one `Trainer.step()` per timed step (data
loading, real preparation, both phases, G_ema), with the stage pinned. The reference is
rosinality's progressive-gan-pytorch (https://github.com/rosinality/progressive-gan-pytorch), imported
at run time from `--rosinality PATH` (or `$GANKIT_BENCH_ROSINALITY`); its `train.py` step is
replicated pass for pass (three D forward/backward passes, GP double backward, Adam step, G step with
D frozen, running-average G), using its own `model.py` networks. Without the path only gankit runs.

Every configuration runs in its own subprocess, so peak RSS (CPU) or `max_memory_allocated` (CUDA)
is per configuration. FLOPs per image per iteration are counted with
`torch.utils.flop_counter.FlopCounterMode` (forward + backward + GP double backward, matmul and
convolution FLOPs) and compared with a float32 matmul peak measured on the same thread count.

    python benchmarks/throughput.py --rosinality /tmp/refs/rosinality
    python benchmarks/throughput.py --quick
    python benchmarks/throughput.py --device cuda --amp none,bf16 --compile
    python benchmarks/throughput.py --rosinality PATH --winograd auto,on,off --omp-wait-policy passive
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import itertools
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

STAGES: dict[str, tuple[int, float]] = {"32fade": (32, 0.5), "64stable": (64, 1.0)}
#: gankit (channel_base, channel_max) per width; rosinality gets the same per-resolution widths.
WIDTHS: dict[str, tuple[int, int]] = {"paper": (16384, 512), "reduced": (4096, 128)}
# rosinality's networks are hard-wired to 4x4..128x128; gankit builds the same range.
FULL_RESOLUTION = 128
IMG_CHANNELS = 3
Z_DIM = 512
RESULT_MARKER = "@@RESULT "
MIN_ITERS = 3


@dataclass(frozen=True)
class BenchConfig:
    """One measured configuration (run in its own subprocess)."""

    impl: str  # "gankit" or "rosinality"
    stage: str  # a key of STAGES
    width: str  # a key of WIDTHS
    device: str = "cpu"
    amp: str = "none"  # "none" or "bf16"
    compile: bool = False
    channels_last: bool = False
    threads: int = 2
    batch: int = 16
    warmup: int = 2
    iters: int = 10
    max_seconds: float = 120.0  # stop timing once this is spent and MIN_ITERS are done
    count_flops: bool = True
    rosinality: str = ""
    winograd: str = "auto"  # gankit's CPU NNPACK path: "auto" (by the CPU), "on" or "off"
    fused_scale: bool = True  # gankit's default; False computes rosinality's (unfused) layers

    @property
    def label(self) -> str:
        """A short human-readable name."""
        extras = [self.amp if self.amp != "none" else "fp32"]
        if self.compile:
            extras.append("compile")
        if self.channels_last:
            extras.append("channels_last")
        if self.winograd != "auto":
            extras.append(f"winograd-{self.winograd}")
        if not self.fused_scale:
            extras.append("unfused")
        return f"{self.impl} {self.width} {self.stage} {self.device} {'+'.join(extras)}"


def channels_at(resolution: int, width: str) -> int:
    """Feature maps at a resolution, the formula gankit's ProGAN uses."""
    base, cmax = WIDTHS[width]
    return max(1, min(base // resolution, cmax))


# ---------------------------------------------------------------------------------------- gankit


def nimg_at_stage(schedule: Any, resolution: int, alpha: float) -> int:
    """An image count at which the ProGAN schedule is at `resolution` with fade-in `alpha`."""
    level = schedule.resolutions.index(resolution)
    period = schedule.fade_nimg + schedule.stable_nimg
    start = schedule.stable_nimg + (level - 1) * period  # where this resolution's fade-in begins
    if alpha < 1.0:
        nimg = start + round(alpha * schedule.fade_nimg)
    else:
        nimg = start + schedule.fade_nimg + schedule.stable_nimg // 2
    stage = schedule.stage(nimg)
    if stage.resolution != resolution or abs(stage.alpha - alpha) > 1e-9:
        raise RuntimeError(f"schedule gives {stage} at {nimg} images, not {resolution}/{alpha}")
    return nimg


def gankit_step(cfg: BenchConfig, device: torch.device, workdir: Path) -> Callable[[], None]:
    """One training iteration of gankit's own loop (Trainer.step) at a pinned stage."""
    import numpy as np

    from gankit.data.base import ArrayDataset
    from gankit.models.progan import build
    from gankit.recipes.progan import ProGANRecipe
    from gankit.train.distributed import DistInfo
    from gankit.train.logging import RunLogger
    from gankit.train.loop import LoopOptions, Trainer

    torch.manual_seed(0)
    base, cmax = WIDTHS[cfg.width]
    images = np.random.default_rng(0).integers(
        0, 256, (8 * cfg.batch, IMG_CHANNELS, FULL_RESOLUTION, FULL_RESOLUTION), dtype=np.uint8
    )
    dataset = ArrayDataset(images, name="synthetic")
    nets = build(
        FULL_RESOLUTION,
        IMG_CHANNELS,
        z_dim=Z_DIM,
        channel_base=base,
        channel_max=cmax,
        fused_scale=cfg.fused_scale,
    )
    recipe = ProGANRecipe(nets, cfg.batch, batch_sizes={})
    # The same order as gankit.train.run: recipe (optimizers) first, then device and memory format.
    nets.to(device)
    if cfg.channels_last:
        nets.to(memory_format=torch.channels_last)
    options = LoopOptions(
        total_kimg=1e9,
        ema_kimg=recipe.default_ema_kimg,
        tick_kimg=1e9,
        snapshot_kimg=0.0,
        sample_kimg=0.0,
        device=device,
        amp=cfg.amp,
        channels_last=cfg.channels_last,
        compile=cfg.compile,
        progress=False,
    )
    logger = RunLogger(workdir, enabled=False)
    trainer = Trainer(nets, recipe, dataset, workdir, options, DistInfo(), logger)
    resolution, alpha = STAGES[cfg.stage]
    start_nimg = nimg_at_stage(recipe.schedule_, resolution, alpha)

    def step() -> None:
        trainer.cur_nimg = start_nimg  # pin the stage: alpha stays exactly where it was asked
        trainer.step()
        trainer.tick_logs.clear()  # ticks would consume these; none fall inside the benchmark

    return step


# ------------------------------------------------------------------------------------ rosinality


def rosinality_step(cfg: BenchConfig, device: torch.device) -> Callable[[], None]:
    """One iteration of rosinality's train.py (D step with GP + drift, G step, accumulate)."""
    if cfg.amp != "none" or cfg.compile or cfg.channels_last:
        raise ValueError("the rosinality reference is measured as its train.py runs: fp32 only")
    path = Path(cfg.rosinality).resolve()
    if not (path / "model.py").is_file():
        raise FileNotFoundError(f"{path}/model.py not found: pass the checkout of the port")
    sys.path.insert(0, str(path))
    import model as ref  # rosinality's model.py

    torch.manual_seed(0)
    n_label, code_size = 1, Z_DIM - 1  # train.py: n_label = 1, code_size = 512 - n_label
    G, D, g_running = (
        ref.Generator(code_size, n_label),
        ref.Discriminator(n_label),
        ref.Generator(code_size, n_label),
    )
    if cfg.width != "paper":
        _narrow_rosinality(ref, cfg.width, G, D, g_running)
    G, D, g_running = G.to(device), D.to(device), g_running.to(device)
    g_running.train(False)
    g_opt = torch.optim.Adam(G.parameters(), lr=0.001, betas=(0.0, 0.99))
    d_opt = torch.optim.Adam(D.parameters(), lr=0.001, betas=(0.0, 0.99))

    def requires_grad(module: torch.nn.Module, flag: bool) -> None:
        for p in module.parameters():
            p.requires_grad = flag

    def accumulate(model1: torch.nn.Module, model2: torch.nn.Module, decay: float = 0.999) -> None:
        par1, par2 = dict(model1.named_parameters()), dict(model2.named_parameters())
        for k in par1:
            par1[k].data.mul_(decay).add_(par2[k].data, alpha=1 - decay)

    accumulate(g_running, G, 0)
    requires_grad(G, False)
    requires_grad(D, True)
    resolution, alpha = STAGES[cfg.stage]
    step_index = [4 * 2**i for i in range(6)].index(resolution)
    if alpha >= 1.0:
        alpha = 1  # train.py: alpha = min(1, 0.00002 * iteration)
    b = cfg.batch
    reals = [torch.rand(b, IMG_CHANNELS, resolution, resolution) * 2 - 1 for _ in range(8)]
    one = torch.tensor(1.0, device=device)
    mone = -one
    state = {"i": 0}

    def step() -> None:
        D.zero_grad()
        real_image = reals[state["i"] % len(reals)].to(device)
        state["i"] += 1
        label = torch.zeros(b, dtype=torch.long, device=device)
        real_predict, _ = D(real_image, step_index, alpha)
        real_predict = real_predict.mean() - 0.001 * (real_predict**2).mean()
        real_predict.backward(mone)

        fake_image = G(torch.randn(b, code_size, device=device), label, step_index, alpha)
        fake_predict, _ = D(fake_image, step_index, alpha)
        fake_predict = fake_predict.mean()
        fake_predict.backward(one)

        eps = torch.rand(b, 1, 1, 1, device=device)
        x_hat = (eps * real_image.data + (1 - eps) * fake_image.data).requires_grad_(True)
        hat_predict, _ = D(x_hat, step_index, alpha)
        (grad_x_hat,) = torch.autograd.grad(
            outputs=hat_predict.sum(), inputs=x_hat, create_graph=True
        )
        grad_penalty = ((grad_x_hat.view(grad_x_hat.size(0), -1).norm(2, dim=1) - 1) ** 2).mean()
        grad_penalty = 10 * grad_penalty
        grad_penalty.backward()
        _ = grad_penalty.item(), (real_predict - fake_predict).item()  # train.py's .data[0]
        d_opt.step()

        G.zero_grad()
        requires_grad(G, True)
        requires_grad(D, False)
        input_class = torch.multinomial(torch.ones(n_label), b, replacement=True).to(device)
        fake_image = G(torch.randn(b, code_size, device=device), input_class, step_index, alpha)
        predict, _ = D(fake_image, step_index, alpha)
        loss = -predict.mean()
        _ = loss.item()
        loss.backward()
        g_opt.step()
        accumulate(g_running, G)
        requires_grad(G, False)
        requires_grad(D, True)

    return step


def _narrow_rosinality(ref: Any, width: str, *nets: torch.nn.Module) -> None:
    """Rebuild the port's layer lists from its own ConvBlock with gankit's channel table.

    Its forward passes are unchanged; only the channel counts differ from its hard-wired paper
    table (512 up to 32x32, then 256, 128), which equals gankit's paper width.
    """
    nn = torch.nn
    ch = [channels_at(4 * 2**i, width) for i in range(6)]  # 4, 8, ..., 128
    for net in nets:
        if isinstance(net, ref.Generator):
            net.progression = nn.ModuleList(
                [ref.ConvBlock(Z_DIM, ch[0], 4, 3, 3, 1)]
                + [ref.ConvBlock(ch[i - 1], ch[i], 3, 1) for i in range(1, 6)]
            )
            net.to_rgb = nn.ModuleList(nn.Conv2d(c, IMG_CHANNELS, 1) for c in ch)
        else:
            _narrow_rosinality_d(ref, net, ch)


def _narrow_rosinality_d(ref: Any, D: torch.nn.Module, ch: list[int]) -> None:
    """The discriminator half of `_narrow_rosinality`; `ch` holds the widths at 4, 8, ..., 128."""
    nn = torch.nn
    # D's progression runs from 128x128 (index 0) down to the 4x4 output block (index 5).
    rev = ch[::-1]
    D.progression = nn.ModuleList(
        [ref.ConvBlock(rev[i], rev[i + 1], 3, 1, pixel_norm=False) for i in range(5)]
        + [ref.ConvBlock(ch[0] + 1, ch[0], 3, 1, 4, 0, pixel_norm=False)]
    )
    D.from_rgb = nn.ModuleList(nn.Conv2d(IMG_CHANNELS, c, 1) for c in rev)
    D.linear = nn.Linear(ch[0], 1 + 1)  # one logit + n_label = 1 class logit


# ---------------------------------------------------------------------------------------- worker


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _flop_counter() -> Any:
    """FlopCounterMode without its per-module tracker.

    The tracker's module backward hooks raise under `autograd.grad` (the gradient penalty), so the
    whole iteration is counted under one "Global" entry instead.
    """
    from torch.utils.flop_counter import FlopCounterMode, _FlopCounterMode

    class GlobalFlopCounter(FlopCounterMode):
        def __enter__(self) -> GlobalFlopCounter:
            self.flop_counts.clear()
            self.mode = _FlopCounterMode(self)
            self.mode.__enter__()
            return self

        def __exit__(self, *args: object) -> Any:
            out, self.mode = self.mode.__exit__(*args), None
            return out

    return GlobalFlopCounter(display=False)


def run_worker(cfg: BenchConfig) -> dict[str, Any]:
    """Build, warm up, time up to `cfg.iters` iterations, count FLOPs; returns the measurements."""
    import warnings

    warnings.filterwarnings("ignore")  # the reference's deprecated calls (F.upsample, init.*)
    torch.set_num_threads(cfg.threads)
    device = torch.device(cfg.device)
    with tempfile.TemporaryDirectory() as tmp:
        if cfg.impl == "gankit":
            from gankit.nn import equalized

            equalized.set_cpu_winograd({"auto": None, "on": True, "off": False}[cfg.winograd])
            step = gankit_step(cfg, device, Path(tmp))
        elif cfg.impl == "rosinality":
            step = rosinality_step(cfg, device)
        else:
            raise ValueError(f"unknown implementation {cfg.impl!r}")
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        for _ in range(cfg.warmup):
            step()
        times: list[float] = []
        while len(times) < cfg.iters and (len(times) < MIN_ITERS or sum(times) < cfg.max_seconds):
            _sync(device)
            t0 = time.perf_counter()
            step()
            _sync(device)
            times.append(time.perf_counter() - t0)
        flops = None
        if cfg.count_flops:
            counter = _flop_counter()
            with counter:
                step()
            flops = counter.get_total_flops() / cfg.batch
    median = statistics.median(times)
    if device.type == "cuda":
        peak_mem = torch.cuda.max_memory_allocated(device) / 2**30
    else:
        peak_mem = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux
    return {
        "config": dataclasses.asdict(cfg),
        "label": cfg.label,
        "iters": len(times),
        "median_s": median,
        "min_s": min(times),
        "max_s": max(times),
        "img_per_s": cfg.batch / median,
        "peak_mem_gib": peak_mem,
        "gflop_per_img": None if flops is None else flops / 1e9,
    }


def matmul_peak(threads: int, device: str, sizes: tuple[int, ...] = (2048, 4096)) -> float:
    """Best float32 GFLOP/s of square matrix products (a few repeats per size) on `threads`."""
    torch.set_num_threads(threads)
    dev = torch.device(device)
    best = 0.0
    for size in sizes:
        a = torch.randn(size, size, device=dev)
        b = torch.randn(size, size, device=dev)
        c = a @ b  # warm-up
        for _ in range(3):
            _sync(dev)
            t0 = time.perf_counter()
            c = torch.mm(a, b, out=c)
            _sync(dev)
            best = max(best, 2 * size**3 / (time.perf_counter() - t0) / 1e9)
    return best


# ---------------------------------------------------------------------------------------- parent


def _subprocess(args: list[str], threads: int, omp_wait: str = "") -> dict[str, Any]:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    if omp_wait:
        env["OMP_WAIT_POLICY"] = omp_wait
    src = str(Path(__file__).resolve().parents[1] / "src")
    env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), *args],
        capture_output=True,
        text=True,
        env=env,
    )
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(RESULT_MARKER):
            return json.loads(line[len(RESULT_MARKER) :])
    lines = [line.strip() for line in (proc.stderr or proc.stdout).splitlines() if line.strip()]
    # The exception's own line ("SomeError: message") says most; keep the full text on stderr.
    errors = [line for line in lines if line.split(":")[0].endswith(("Error", "Exception"))]
    if lines:
        print("\n".join(lines[-20:]), file=sys.stderr)
    return {"error": (errors or lines or [f"exit status {proc.returncode}"])[-1]}


def machine_description(threads: int, device: str) -> str:
    """CPU model, cores, threads, torch version (and the GPU when measuring on CUDA)."""
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    desc = f"{cpu}, {os.cpu_count()} cores, {threads} threads, torch {torch.__version__}"
    if device.startswith("cuda") and torch.cuda.is_available():
        desc += f", {torch.cuda.get_device_name(0)}"
    return desc


def _fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def format_table(results: list[dict[str, Any]], peak_gflops: float, device: str) -> str:
    """A Markdown table of the results; `x ref` is gankit's speed over the reference's."""
    mem = "peak RSS GiB" if device == "cpu" else "peak alloc GiB"
    lines = [
        f"| width | stage | impl | precision | img/s | x ref | s/iter (median) | n | {mem} "
        "| GFLOP/img | GFLOP/s | % of peak |",
        "| --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    reference = {
        (r["config"]["width"], r["config"]["stage"]): r["img_per_s"]
        for r in results
        if r["config"]["impl"] == "rosinality" and "error" not in r
    }
    for r in results:
        cfg = r["config"]
        prec = cfg["amp"] if cfg["amp"] != "none" else "fp32"
        prec += " compile" if cfg["compile"] else ""
        prec += " channels_last" if cfg["channels_last"] else ""
        prec += f" winograd-{cfg['winograd']}" if cfg.get("winograd", "auto") != "auto" else ""
        prec += " unfused" if not cfg.get("fused_scale", True) else ""
        head = f"| {cfg['width']} | {cfg['stage']} | {cfg['impl']} | {prec} "
        if "error" in r:
            lines.append(head + f"| failed: {r['error'][:160]} | | | | | | | |")
            continue
        ref = reference.get((cfg["width"], cfg["stage"]))
        ratio = r["img_per_s"] / ref if ref and cfg["impl"] != "rosinality" else None
        gflops = None if r["gflop_per_img"] is None else r["gflop_per_img"] * r["img_per_s"]
        frac = None if gflops is None or peak_gflops <= 0 else 100 * gflops / peak_gflops
        lines.append(
            head + f"| {r['img_per_s']:.3g} | {_fmt(ratio)} | {r['median_s']:.2f} | {r['iters']} "
            f"| {r['peak_mem_gib']:.2f} | {_fmt(r['gflop_per_img'], 1)} | {_fmt(gflops, 1)} "
            f"| {_fmt(frac, 0)} |"
        )
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(
        description="ProGAN training throughput (img/s) and peak memory: gankit vs rosinality's "
        "progressive-gan-pytorch, each configuration in a fresh subprocess.",
    )
    p.add_argument(
        "--rosinality",
        default=os.environ.get("GANKIT_BENCH_ROSINALITY", ""),
        help="checkout of github.com/rosinality/progressive-gan-pytorch to measure side by side "
        "(default: $GANKIT_BENCH_ROSINALITY; without it only gankit runs)",
    )
    p.add_argument("--stages", default="32fade,64stable", help=f"of {','.join(STAGES)}")
    p.add_argument("--widths", default="paper,reduced", help=f"of {','.join(WIDTHS)}")
    p.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    p.add_argument("--amp", default="none", help="comma list of none,bf16 (gankit only)")
    p.add_argument("--compile", action="store_true", help="also measure gankit with torch.compile")
    p.add_argument(
        "--channels-last", action="store_true", help="also measure gankit with channels_last"
    )
    p.add_argument("--threads", type=int, default=2, help="torch intra-op threads (default 2)")
    p.add_argument(
        "--winograd",
        default="auto",
        help="comma list of auto,on,off: gankit's CPU NNPACK path for 3x3 convolutions "
        "(auto: on AVX2 CPUs for >= 256 channels, off with AVX-512; on: every shape it takes)",
    )
    p.add_argument(
        "--fused-scale",
        default="on",
        help="comma list of on,off: gankit's ProGAN with the official fused resampling convs "
        "(on, its default) or the separate layers rosinality's port computes (off)",
    )
    p.add_argument(
        "--omp-wait-policy",
        default="",
        choices=["", "active", "passive"],
        help="OMP_WAIT_POLICY for every measured process, both implementations (default: unset, "
        "OpenMP's own spin-then-sleep)",
    )
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--warmup", type=int, default=None, help="untimed iterations (default 2)")
    p.add_argument(
        "--iters",
        type=int,
        default=None,
        help=f"at most this many timed iterations (default 10), at least {MIN_ITERS}",
    )
    p.add_argument(
        "--max-seconds",
        type=float,
        default=120.0,
        help=f"stop timing a configuration after this long once {MIN_ITERS} iterations are done",
    )
    p.add_argument("--no-flops", action="store_true", help="skip the FLOP count")
    p.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: reduced width, 32fade, 1 warm-up + 2 timed iterations",
    )
    p.add_argument("--json", type=Path, default=None, help="also write the raw results here")
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    p.add_argument("--peak-worker", default=None, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Run every configuration in its own subprocess and print a Markdown report."""
    args = parse_args(argv)
    if args.worker:
        cfg = BenchConfig(**json.loads(args.worker))
        print(RESULT_MARKER + json.dumps(run_worker(cfg)), flush=True)
        return
    if args.peak_worker:
        threads, device = json.loads(args.peak_worker)
        print(RESULT_MARKER + json.dumps({"gflops": matmul_peak(threads, device)}), flush=True)
        return

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        sys.exit("--device cuda was asked for but no CUDA device is visible")
    stages, widths = args.stages.split(","), args.widths.split(",")
    warmup = 2 if args.warmup is None else args.warmup
    iters = 10 if args.iters is None else args.iters
    if args.quick:
        stages, widths = ["32fade"], ["reduced"]
        warmup = 1 if args.warmup is None else args.warmup
        iters = 2 if args.iters is None else args.iters
    for key, table in (("stages", STAGES), ("widths", WIDTHS)):
        bad = [v for v in (stages if key == "stages" else widths) if v not in table]
        if bad:
            sys.exit(f"--{key}: unknown {bad}; choose from {list(table)}")
    amps = args.amp.split(",")
    winograds = args.winograd.split(",")
    if set(winograds) - {"auto", "on", "off"}:
        sys.exit(f"--winograd: {args.winograd!r}; give a comma list of auto, on, off")
    fusings = args.fused_scale.split(",")
    if set(fusings) - {"on", "off"}:
        sys.exit(f"--fused-scale: {args.fused_scale!r}; give a comma list of on, off")
    common = dict(
        device=args.device,
        threads=args.threads,
        batch=args.batch,
        warmup=warmup,
        iters=iters,
        max_seconds=args.max_seconds,
        count_flops=not args.no_flops,
    )
    configs = []
    for width in widths:
        for stage in stages:
            if args.rosinality:
                configs.append(
                    BenchConfig("rosinality", stage, width, rosinality=args.rosinality, **common)
                )
            for amp in amps:
                for wino, fused in itertools.product(winograds, fusings):
                    options = dict(amp=amp, winograd=wino, fused_scale=fused == "on")
                    configs.append(BenchConfig("gankit", stage, width, **options, **common))
                if args.channels_last:
                    configs.append(
                        BenchConfig("gankit", stage, width, amp=amp, channels_last=True, **common)
                    )
                if args.compile:
                    configs.append(
                        BenchConfig("gankit", stage, width, amp=amp, compile=True, **common)
                    )

    load_before = os.getloadavg()
    started = datetime.datetime.now()
    peak = _subprocess(
        ["--peak-worker", json.dumps([args.threads, args.device])],
        args.threads,
        args.omp_wait_policy,
    )
    peak_gflops = peak.get("gflops", 0.0)
    print(f"fp32 matmul peak: {peak_gflops:.1f} GFLOP/s", file=sys.stderr)
    results = []
    for cfg in configs:
        result = _subprocess(
            ["--worker", json.dumps(dataclasses.asdict(cfg))], cfg.threads, args.omp_wait_policy
        )
        result.setdefault("config", dataclasses.asdict(cfg))
        summary = result.get("error") or f"{result['img_per_s']:.3g} img/s"
        print(f"{cfg.label}: {summary}", file=sys.stderr)
        results.append(result)
    load_after = os.getloadavg()

    command = "python " + " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]])
    report = [
        f"- command: `{command}`",
        f"- machine: {machine_description(args.threads, args.device)}; OMP_WAIT_POLICY "
        f"{args.omp_wait_policy or os.environ.get('OMP_WAIT_POLICY', 'unset')}",
        f"- load average (1/5/15 min) before: {' / '.join(f'{x:.2f}' for x in load_before)}, "
        f"after: {' / '.join(f'{x:.2f}' for x in load_after)}",
        f"- date: {started:%Y-%m-%d %H:%M}; batch {args.batch}, synthetic data; {warmup} warm-up "
        f"iterations, then the median of `n` timed ones (up to {iters}; after {MIN_ITERS}, "
        f"timing stops once {args.max_seconds:g} s are spent)",
        f"- fp32 matmul peak {peak_gflops:.1f} GFLOP/s; GFLOP/img counts a direct convolution's "
        "FLOPs (the Winograd path does fewer multiplies, so `% of peak` can pass 100)",
        "",
        format_table(results, peak_gflops, args.device),
    ]
    print("\n".join(report))
    if args.json:
        args.json.write_text(
            json.dumps({"command": command, "peak_gflops": peak_gflops, "results": results})
        )


if __name__ == "__main__":
    main()
