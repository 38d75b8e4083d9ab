"""StyleGAN2 training speed of `gankit train`'s own step: seconds per kimg and peak memory.

Times `Trainer.step()` of the trainer `gankit train` builds (`gankit.train.run.build_trainer`) for
the `stylegan2` recipe, on synthetic images written once as PNGs into a temporary folder (so the
data path is the real one), at one resolution and configuration (`--cfg auto|paper256|...`), for
each precision in `--amp` and with or without `torch.compile` (`--compile`: the main phases
compiled, the R1 and path-length phases eager, as torch.compile has no double backward). Every
configuration runs in its own process, so peak memory is per configuration. A whole iteration is
timed: every phase that falls due (the lazy regularisers every 4 and 16 iterations) and G_ema, so
the timed iterations should be a multiple of 16.

    python benchmarks/stylegan2_speed.py --quick                      # CPU, 16 px, tiny nets
    python benchmarks/stylegan2_speed.py --device cuda --resolution 256 --cfg paper256 \\
        --amp none,bf16 --compile both --iters 64

The official code's `--cfg=stylegan2` (NVlabs/stylegan3 `train.py`) is not run from here: it
needs its custom CUDA ops built on the machine; run it beside this script with the same
resolution, configuration and batch and put both figures in benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

HERE_SRC = Path(__file__).resolve().parents[1] / "src"
RESULT_MARKER = "@@RESULT "

WORKER = r"""
import json, sys, time, torch
from gankit.config import config_from_dict
from gankit.train.run import build_trainer
spec = json.loads(sys.argv[1])
if spec["device"] == "cpu":
    torch.set_num_threads(spec["threads"])
config = {
    "model": {"name": "auto", "arch": spec["arch"]},
    "recipe": {"name": "stylegan2", "args": {"cfg": spec["cfg"], "aug": spec["aug"]}},
    "data": {"name": spec["data"], "resolution": spec["resolution"]},
    "train": {"out": spec["out"], "kimg": 1e6, "device": spec["device"], "amp": spec["amp"],
              "compile": spec["compile"], "progress": False,
              **({"batch_size": spec["batch"]} if spec["batch"] else {})},
}
trainer = build_trainer(config_from_dict(config))
cuda = trainer.device.type == "cuda"

def sync():
    if cuda:
        torch.cuda.synchronize(trainer.device)

for _ in range(spec["warmup"]):
    trainer.step()
trainer.tick_logs.clear()
if cuda:
    torch.cuda.reset_peak_memory_stats(trainer.device)
sync()
start, nimg = time.perf_counter(), trainer.cur_nimg
for k in range(spec["iters"]):
    trainer.step()
    if k % 16 == 15:
        trainer.tick_logs.clear()
sync()
seconds = time.perf_counter() - start
images = trainer.cur_nimg - nimg
if cuda:
    peak = torch.cuda.max_memory_allocated(trainer.device) / 2**30
else:
    import resource
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
print("@@RESULT " + json.dumps({"s_per_kimg": seconds / images * 1000, "img_per_s": images / seconds,
                                 "batch": trainer.recipe.batch_size, "peak_gib": peak}))
"""


def write_images(folder: Path, count: int, resolution: int) -> None:
    """`count` random RGB PNGs of `resolution` px (smooth blobs, so they compress and decode fast)."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    for k in range(count):
        small = rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)
        image = Image.fromarray(small).resize((resolution, resolution), Image.BILINEAR)
        image.save(folder / f"{k:05d}.png")


def run_one(spec: dict) -> dict:
    """One configuration in its own process; its result or {"error": ...}."""
    env = dict(os.environ, PYTHONPATH=str(HERE_SRC) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    if spec["device"] == "cpu":
        env["OMP_NUM_THREADS"] = str(spec["threads"])
    proc = subprocess.run(
        [sys.executable, "-c", WORKER, json.dumps(spec)], capture_output=True, text=True, env=env
    )
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(RESULT_MARKER):
            return json.loads(line[len(RESULT_MARKER) :])
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    return {"error": lines[-1] if lines else f"exit status {proc.returncode}"}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    p.add_argument("--resolution", type=int, default=64)
    p.add_argument("--cfg", default="auto", help="auto or an official preset (paper256, ...)")
    p.add_argument(
        "--batch", type=int, default=0, help="global batch (default: the configuration's)"
    )
    p.add_argument("--amp", default="none", help="comma list of none,bf16")
    p.add_argument("--compile", default="off", choices=["off", "on", "both"])
    p.add_argument("--aug", default="ada", help="ada (the official default), noaug, ...")
    p.add_argument(
        "--channel-base",
        type=int,
        default=0,
        help="model.arch.channel_base (0: the configuration's)",
    )
    p.add_argument(
        "--channel-max", type=int, default=0, help="model.arch.channel_max (0: the configuration's)"
    )
    p.add_argument("--iters", type=int, default=32, help="timed iterations (a multiple of 16)")
    p.add_argument("--warmup", type=int, default=16)
    p.add_argument("--threads", type=int, default=2, help="CPU threads")
    p.add_argument("--images", type=int, default=256, help="synthetic images written")
    p.add_argument(
        "--quick", action="store_true", help="16 px, tiny nets, few iterations (a smoke run)"
    )
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Run every configuration and print a Markdown table."""
    args = parse_args(argv)
    if args.quick:
        args.resolution, args.channel_base, args.channel_max = 16, 256, 32
        args.iters, args.warmup, args.images, args.batch = 16, 4, 64, args.batch or 8
    arch = {
        k: v
        for k, v in (("channel_base", args.channel_base), ("channel_max", args.channel_max))
        if v
    }
    compiles = {"off": [False], "on": [True], "both": [False, True]}[args.compile]
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "images"
        write_images(data, args.images, args.resolution)
        rows = []
        for amp in [a.strip() for a in args.amp.split(",") if a.strip()]:
            for compiled in compiles:
                spec = {"device": args.device, "threads": args.threads, "arch": arch, "cfg": args.cfg,
                        "aug": args.aug, "data": str(data), "resolution": args.resolution,
                        "out": str(Path(tmp) / "run"), "amp": amp, "compile": compiled,
                        "batch": args.batch, "warmup": args.warmup, "iters": args.iters}  # fmt: skip
                rows.append((amp, compiled, run_one(spec)))
    print(f"- command: `python benchmarks/stylegan2_speed.py {' '.join(sys.argv[1:])}`")
    print(
        f"- machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, device {args.device}"
    )
    print(
        f"- {args.resolution} px, cfg {args.cfg}, aug {args.aug}, arch {arch or 'the configuration'}, "
        f"{args.warmup} warm-up and {args.iters} timed iterations\n"
    )
    print("| precision | compile | batch | s/kimg | img/s | peak GiB |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for amp, compiled, r in rows:
        if "error" in r:
            print(f"| {amp} | {compiled} | failed: {r['error'][:120]} | | | |")
            continue
        print(
            f"| {amp} | {compiled} | {r['batch']} | {r['s_per_kimg']:.1f} | {r['img_per_s']:.1f} "
            f"| {r['peak_gib']:.2f} |"
        )


if __name__ == "__main__":
    main()
