"""StyleGAN2 training step on the CPU: gankit against rosinality/stylegan2-pytorch (issue 26).

Both sides train the same networks on the same work: 64 px, batch 8, z/w 512, an 8-layer mapping
network, G "skip" and D "resnet", the official lazy regularisation (R1 every 16 iterations with
its loss times 16, path length every 4 on half the batch with its loss times 4, Adam's lr and
betas corrected for it), style mixing 0.9, G_ema after every iteration, no augmentation.

- gankit: `Trainer.step()` of the trainer `gankit train` builds (`build_trainer`), recipe
  `stylegan2` with `cfg=auto` and `aug=noaug`, `batch_size` 8, `model.arch` mapping_layers 8 and
  channel_base 16384 * `--channel-multiplier`, channel_max 512, on synthetic PNGs in a temporary
  folder (the real data path; decoding 8 small PNGs is negligible beside the step).
- rosinality: its `model.py` Generator and Discriminator, imported at run time from
  `--rosinality PATH` (a checkout of github.com/rosinality/stylegan2-pytorch), with its
  `train.py` iteration written out here pass for pass (its train.py cannot be imported without
  lmdb, tqdm and its dataset module): D main, R1 when `i % 16 == 0`, G main, path length when
  `i % 4 == 0` (batch // 2), `accumulate` into g_ema, the `.item()` reads of its progress bar;
  reals are one fixed batch in [-1, 1]; no `--augment`.

Widths: rosinality's are 512 up to 32 px and 256 * channel_multiplier at 64 px; gankit's are
`min(channel_base // res, channel_max)`, so channel_base 16384 * multiplier and channel_max 512
give the same width at every resolution (multiplier 1: 16384 // 64 = 256 and 512 below, the
official `auto` configuration's widths; multiplier 2: 32768 // 64 = 512, config-f). The table
lists each side's G and D parameter counts as a check that the architectures match.

rosinality's `op/` package builds CUDA/C++ extensions at import (`torch.utils.cpp_extension.load`
in op/fused_act.py and op/upfirdn2d.py), which fails without a compiler and CUDA. Its
`fused_leaky_relu` and `upfirdn2d` take native PyTorch paths for CPU tensors and never touch the
compiled module then, and `conv2d_gradfix` falls back to `F.conv2d` off CUDA. So the worker
replaces `torch.utils.cpp_extension.load` while it imports `model.py` (and through it `op`) with a
function returning a stand-in module whose every attribute access raises, then restores it: no
compiler runs, and if any compiled op were ever reached the run would fail rather than measure
something else. Nothing in the checkout is modified.

Timing: an iteration's cost depends on which regularisers fall due, so each process times the
three kinds separately by the iteration index it runs (gankit: `Trainer.cur_iter` set before the
step; rosinality: the `i` of its loop): "plain" (i % 16 = 1), "G_reg" (i = 4) and "both"
(i = 0), and the cost of an average iteration is (12 plain + 3 G_reg + 1 both) / 16, the mix of
any 16 consecutive iterations. Each round starts one process per side, the order alternating
between rounds, each warming up with one "both" iteration (every pass type once) before timing;
the table gives the median over rounds. FLOPs per image are counted once per side with
`torch.utils.flop_counter` (matmuls and convolutions, forward, backward and double backward) over
the same weighted mix, and compared with a float32 matmul peak measured on the same threads
(`throughput.matmul_peak`). `--profile` adds one process per side under `torch.profiler` (one
iteration of each kind) and prints the top operators by self CPU time.

    python benchmarks/stylegan2_vs_rosinality.py --rosinality /path/to/stylegan2-pytorch
    python benchmarks/stylegan2_vs_rosinality.py --rosinality PATH --rounds 5 --profile
    python benchmarks/stylegan2_vs_rosinality.py --rosinality PATH --quick   # 16 px smoke run
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from stylegan2_speed import write_images
from throughput import _flop_counter, machine_description, matmul_peak

HERE_SRC = Path(__file__).resolve().parents[1] / "src"
RESULT_MARKER = "@@RESULT "
Z_DIM = 512
N_MLP = 8
R1_EVERY, PL_EVERY = 16, 4
#: The iteration index of each kind, and how many of any 16 consecutive iterations are that kind.
KINDS: dict[str, tuple[int, int]] = {"plain": (1, 12), "G_reg": (4, 3), "both": (0, 1)}
IMPLS = ("rosinality", "gankit")


# ---------------------------------------------------------------------------------------- worker


def gankit_step(spec: dict[str, Any], workdir: Path) -> tuple[Callable[[int], None], dict]:
    """`Trainer.step()` at iteration `i` of the trainer `gankit train` builds; and its nets."""
    from gankit.config import config_from_dict
    from gankit.train.run import build_trainer

    data = workdir / "images"
    write_images(data, 64, spec["resolution"])
    arch = {
        "mapping_layers": N_MLP,
        "channel_base": spec["channel_base"],
        "channel_max": spec["channel_max"],
    }
    config = {
        "model": {"name": "auto", "arch": arch},
        "recipe": {"name": "stylegan2", "args": {"cfg": "auto", "aug": "noaug"}},
        "data": {"name": str(data), "resolution": spec["resolution"]},
        "train": {"out": str(workdir / "run"), "kimg": 1e6, "device": "cpu", "progress": False,
                  "batch_size": spec["batch"]},
    }  # fmt: skip
    trainer = build_trainer(config_from_dict(config))

    def step(i: int) -> None:
        trainer.cur_iter = i  # which phases fall due: G_reg when i % 4 == 0, D_reg when i % 16 == 0
        trainer.step()
        trainer.tick_logs.clear()

    return step, {"G": trainer.nets["G"], "D": trainer.nets["D"]}


class _NotBuilt(types.ModuleType):
    """Stands in for one of rosinality's compiled extensions: any use of it raises."""

    def __getattr__(self, attr: str) -> Any:
        raise RuntimeError(
            f"rosinality's compiled op {self.__name__}.{attr} was reached; this benchmark runs "
            "only its native CPU paths"
        )


def import_rosinality(path: str) -> Any:
    """rosinality's `model` module, its `op` extensions replaced by raising stand-ins."""
    import torch.utils.cpp_extension as cpp_extension

    original = cpp_extension.load
    cpp_extension.load = lambda name, *args, **kwargs: _NotBuilt(name)
    sys.path.insert(0, path)
    try:
        import model  # rosinality's model.py, which imports its op package
    finally:
        cpp_extension.load = original
    return model


def rosinality_step(spec: dict[str, Any]) -> tuple[Callable[[int], None], dict]:
    """One iteration `i` of rosinality's train.py loop (augmentation off), on a fixed real batch."""
    ref = import_rosinality(spec["rosinality"])
    res, batch, mult = spec["resolution"], spec["batch"], spec["channel_multiplier"]
    G = ref.Generator(res, Z_DIM, N_MLP, channel_multiplier=mult)
    D = ref.Discriminator(res, channel_multiplier=mult)
    g_ema = ref.Generator(res, Z_DIM, N_MLP, channel_multiplier=mult)
    g_ema.eval()
    _accumulate(g_ema, G, 0.0)
    g_ratio, d_ratio = PL_EVERY / (PL_EVERY + 1), R1_EVERY / (R1_EVERY + 1)
    lr = 0.002
    g_optim = torch.optim.Adam(G.parameters(), lr=lr * g_ratio, betas=(0.0, 0.99**g_ratio))
    d_optim = torch.optim.Adam(D.parameters(), lr=lr * d_ratio, betas=(0.0, 0.99**d_ratio))
    reals = torch.rand(batch, 3, res, res) * 2 - 1
    ema_decay = 0.5 ** (32 / (10 * 1000))
    state = {"mean_path_length": 0.0}

    def step(i: int) -> None:
        real_img = reals.clone()
        _requires_grad(G, False)
        _requires_grad(D, True)
        fake_img, _ = G(_mixing_noise(batch))
        fake_pred, real_pred = D(fake_img), D(real_img)
        d_loss = F.softplus(-real_pred).mean() + F.softplus(fake_pred).mean()
        D.zero_grad()
        d_loss.backward()
        d_optim.step()
        r1_loss = torch.zeros(())
        if i % R1_EVERY == 0:
            real_img.requires_grad = True
            real_pred = D(real_img)
            (grad,) = torch.autograd.grad(real_pred.sum(), real_img, create_graph=True)
            r1_loss = grad.pow(2).reshape(batch, -1).sum(1).mean()
            D.zero_grad()
            (10 / 2 * r1_loss * R1_EVERY + 0 * real_pred[0]).backward()
            d_optim.step()
        _requires_grad(G, True)
        _requires_grad(D, False)
        fake_img, _ = G(_mixing_noise(batch))
        g_loss = F.softplus(-D(fake_img)).mean()
        G.zero_grad()
        g_loss.backward()
        g_optim.step()
        path_loss = torch.zeros(())
        if i % PL_EVERY == 0:
            fake_img, latents = G(_mixing_noise(max(1, batch // 2)), return_latents=True)
            path_loss, mean_path = _path_penalty(fake_img, latents, state["mean_path_length"])
            state["mean_path_length"] = mean_path
            G.zero_grad()
            (2 * PL_EVERY * path_loss + 0 * fake_img[0, 0, 0, 0]).backward()
            g_optim.step()
            float(mean_path)  # its reduce_sum(...).item() on one process
        _accumulate(g_ema, G, ema_decay)
        for value in (d_loss, g_loss, r1_loss, path_loss, real_pred.mean(), fake_pred.mean()):
            value.item()  # its progress bar reads every loss each iteration

    return step, {"G": G, "D": D}


def _requires_grad(module: torch.nn.Module, flag: bool) -> None:
    for p in module.parameters():
        p.requires_grad = flag


def _accumulate(ema: torch.nn.Module, net: torch.nn.Module, decay: float) -> None:
    """rosinality's `accumulate`: parameters only, one lerp per tensor."""
    ema_params = dict(ema.named_parameters())
    for name, p in net.named_parameters():
        ema_params[name].data.mul_(decay).add_(p.data, alpha=1 - decay)


def _mixing_noise(batch: int, prob: float = 0.9) -> list[torch.Tensor]:
    """rosinality's `mixing_noise`: two latents with probability `prob`, else one."""
    if random.random() < prob:
        return list(torch.randn(2, batch, Z_DIM).unbind(0))
    return [torch.randn(batch, Z_DIM)]


def _path_penalty(
    fake_img: torch.Tensor, latents: torch.Tensor, mean_path_length: Any, decay: float = 0.01
) -> tuple[torch.Tensor, torch.Tensor]:
    """rosinality's `g_path_regularize`: (penalty, new running mean)."""
    noise = torch.randn_like(fake_img) / math.sqrt(fake_img.shape[2] * fake_img.shape[3])
    (grad,) = torch.autograd.grad((fake_img * noise).sum(), latents, create_graph=True)
    lengths = torch.sqrt(grad.pow(2).sum(2).mean(1))
    path_mean = mean_path_length + decay * (lengths.mean() - mean_path_length)
    return (lengths - path_mean).pow(2).mean(), path_mean.detach()


def _by_kind(step: Callable[[int], None], run: Callable[[Callable[[], None]], Any]) -> dict:
    """`run(one iteration)` for each kind, in KINDS' order."""
    return {kind: run(lambda i=i: step(i)) for kind, (i, _) in KINDS.items()}


def _timed(fn: Callable[[], None]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def run_worker(spec: dict[str, Any]) -> dict[str, Any]:
    """Build one side, warm up, time each kind of iteration (or count FLOPs, or profile)."""
    import warnings

    warnings.filterwarnings("ignore")  # the reference's deprecation warnings
    torch.set_num_threads(spec["threads"])
    torch.manual_seed(0)
    random.seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        if spec["impl"] == "gankit":
            step, nets = gankit_step(spec, Path(tmp))
        else:
            step, nets = rosinality_step(spec)
        params = {k: sum(p.numel() for p in net.parameters()) for k, net in nets.items()}
        for _ in range(spec["warmup"]):
            step(KINDS["both"][0])
        out: dict[str, Any] = {"params": params}
        if spec["mode"] == "time":
            out["seconds"] = _by_kind(step, _timed)
        elif spec["mode"] == "flops":
            out["flops_per_img"] = _by_kind(step, lambda fn: _count_flops(fn) / spec["batch"])
        else:
            out["profile"] = _profile(step, spec["top"])
    out["peak_rss_gib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    return out


def _count_flops(fn: Callable[[], None]) -> float:
    counter = _flop_counter()
    with counter:
        fn()
    return float(counter.get_total_flops())


def _profile(step: Callable[[int], None], top: int) -> str:
    """The top operators by self CPU time over one iteration of each kind."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for i, _ in KINDS.values():
            step(i)
    return prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=top)


# ---------------------------------------------------------------------------------------- parent


def weighted(per_kind: dict[str, float]) -> float:
    """The mean over 16 consecutive iterations of a per-kind quantity."""
    return sum(per_kind[k] * n for k, (_, n) in KINDS.items()) / sum(n for _, n in KINDS.values())


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


def _fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def format_table(
    times: dict[str, list[dict]], flops: dict[str, dict], batch: int, peak_gflops: float
) -> str:
    """Markdown: per side the median seconds of each kind and of the average iteration."""
    lines = [
        "| impl | plain s | G_reg s | both s | s/iter (16-mix) | img/s | x rosinality | rounds "
        "| G / D params (M) | GFLOP/img | GFLOP/s | % of matmul peak | peak RSS GiB |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: "
        "| ---: |",
    ]
    medians = {}
    for impl, runs in times.items():
        if runs:
            medians[impl] = statistics.median(weighted(r["seconds"]) for r in runs)
    for impl, runs in times.items():
        if not runs:
            lines.append(f"| {impl} | failed | | | | | | | | | | | |")
            continue
        kinds = [statistics.median(r["seconds"][k] for r in runs) for k in KINDS]
        s_iter = medians[impl]
        ref = medians.get("rosinality")
        ratio = ref / s_iter if ref and impl != "rosinality" else None
        f = flops.get(impl, {}).get("flops_per_img")
        gflop = None if f is None else weighted(f) / 1e9
        gflops = None if gflop is None else gflop * batch / s_iter
        frac = None if gflops is None or peak_gflops <= 0 else 100 * gflops / peak_gflops
        p = runs[0]["params"]
        lines.append(
            f"| {impl} | {kinds[0]:.2f} | {kinds[1]:.2f} | {kinds[2]:.2f} | {s_iter:.2f} "
            f"| {batch / s_iter:.3g} | {_fmt(ratio)} | {len(runs)} "
            f"| {p['G'] / 1e6:.3f} / {p['D'] / 1e6:.3f} | {_fmt(gflop, 1)} | {_fmt(gflops, 1)} "
            f"| {_fmt(frac, 0)} | {max(r['peak_rss_gib'] for r in runs):.2f} |"
        )
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--rosinality",
        default=os.environ.get("GANKIT_BENCH_ROSINALITY_SG2", ""),
        help="checkout of github.com/rosinality/stylegan2-pytorch "
        "(default: $GANKIT_BENCH_ROSINALITY_SG2; without it only gankit runs)",
    )
    p.add_argument("--resolution", type=int, default=64)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument(
        "--channel-multiplier",
        type=int,
        default=1,
        help="rosinality's channel_multiplier (1: 256 channels at 64 px; 2: 512, config-f); "
        "gankit gets channel_base 16384 * it",
    )
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=3, help="alternating rounds (>= 3 to report)")
    p.add_argument("--warmup", type=int, default=1, help="untimed 'both' iterations per process")
    p.add_argument("--no-flops", action="store_true", help="skip the FLOP count")
    p.add_argument("--profile", action="store_true", help="also profile each side")
    p.add_argument("--top", type=int, default=15, help="operators listed per profile")
    p.add_argument("--quick", action="store_true", help="16 px, 1 round: a smoke run")
    p.add_argument("--json", type=Path, default=None, help="also write the raw results here")
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    p.add_argument("--peak-worker", type=int, default=None, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Alternate the two sides over the rounds and print a Markdown report."""
    args = parse_args(argv)
    if args.worker:
        print(RESULT_MARKER + json.dumps(run_worker(json.loads(args.worker))), flush=True)
        return
    if args.peak_worker is not None:
        print(RESULT_MARKER + json.dumps({"gflops": matmul_peak(args.peak_worker, "cpu")}))
        return
    if args.quick:
        args.resolution, args.rounds = 16, 1
    impls = [i for i in IMPLS if i == "gankit" or args.rosinality]
    base = {
        "resolution": args.resolution, "batch": args.batch, "threads": args.threads,
        "channel_multiplier": args.channel_multiplier,
        "channel_base": 16384 * args.channel_multiplier, "channel_max": 512,
        "rosinality": str(Path(args.rosinality).resolve()) if args.rosinality else "",
        "warmup": args.warmup, "top": args.top,
    }  # fmt: skip
    load_before, started = os.getloadavg(), datetime.datetime.now(datetime.timezone.utc)
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    peak = subprocess.run(
        [sys.executable, __file__, "--peak-worker", str(args.threads)],
        capture_output=True, text=True, env=env,
    ).stdout  # fmt: skip
    peak_gflops = (
        json.loads(peak.split(RESULT_MARKER)[-1])["gflops"] if RESULT_MARKER in peak else 0
    )
    print(f"fp32 matmul peak: {peak_gflops:.1f} GFLOP/s", file=sys.stderr)
    times: dict[str, list[dict]] = {impl: [] for impl in impls}
    for r in range(args.rounds):
        for impl in impls if r % 2 == 0 else impls[::-1]:
            result = run_process({**base, "impl": impl, "mode": "time"})
            print(f"round {r} {impl}: {result}", file=sys.stderr)
            if "error" not in result:
                times[impl].append(result)
    load_after = os.getloadavg()
    flops = {}
    if not args.no_flops:
        flops = {impl: run_process({**base, "impl": impl, "mode": "flops"}) for impl in impls}
    profiles = {}
    if args.profile:
        profiles = {impl: run_process({**base, "impl": impl, "mode": "profile"}) for impl in impls}
    mult = args.channel_multiplier
    report = [
        f"- command: `python {' '.join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]])}`",
        f"- machine: {machine_description(args.threads, 'cpu')}",
        f"- date: {started:%Y-%m-%d %H:%M} UTC; load average (1/5/15 min) before: "
        f"{' / '.join(f'{x:.2f}' for x in load_before)}, after the timed rounds: "
        f"{' / '.join(f'{x:.2f}' for x in load_after)}",
        f"- {args.resolution} px, batch {args.batch}, z/w {Z_DIM}, {N_MLP} mapping layers, "
        f"rosinality channel_multiplier {mult} = gankit channel_base {16384 * mult}, "
        f"channel_max 512; no augmentation; {args.warmup} warm-up iteration(s) per process; "
        "s/iter = (12 plain + 3 G_reg + 1 both) / 16, median over rounds",
        f"- fp32 matmul peak {peak_gflops:.1f} GFLOP/s on {args.threads} threads",
        "",
        format_table(times, flops, args.batch, peak_gflops),
    ]
    for impl, prof in profiles.items():
        text = prof.get("profile") or prof.get("error")
        report += ["", f"Profile, {impl} (one iteration of each kind):", "", "```", text, "```"]
    print("\n".join(report))
    if args.json:
        blob = {"times": times, "flops": flops, "peak_gflops": peak_gflops, "profiles": profiles}
        args.json.write_text(json.dumps(blob))


if __name__ == "__main__":
    main()
