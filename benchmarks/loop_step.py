"""Milliseconds per training step of `gankit train`'s own loop, this checkout against another
source tree (an older commit's `src/`), side by side in one run.

Each round starts one process per tree and workload, in alternating order, so that the two share
the machine's state (load, frequency, caches) as evenly as possible; the table gives each tree's
median over the rounds. The step is `Trainer.step()` of the trainer `gankit train` builds
(`gankit.train.run.build_trainer`), which both trees have, so the loop's own cost is included.

    git worktree add /tmp/gankit-before <commit>
    python benchmarks/loop_step.py --reference-src /tmp/gankit-before/src --rounds 5
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path

HERE_SRC = Path(__file__).resolve().parents[1] / "src"

#: name -> (config as a dict, steps to time). The 2-D MLP presets on ring8 (their loop cost is a
#: large part of their step) and the demo's ProGAN at 4x4.
WORKLOADS = {
    "gan ring8 (2-D MLP)": ({"recipe": {"name": "gan"}, "data": {"name": "ring8"}}, 300),
    "lsgan ring8 (2-D MLP)": ({"recipe": {"name": "lsgan"}, "data": {"name": "ring8"}}, 300),
    "progan digits 4x4": (
        {
            "model": {"name": "progan", "arch": {"z_dim": 64, "channel_max": 64}},
            "recipe": {"name": "progan"},
            "data": {"name": "digits"},
        },
        150,
    ),
}

WORKER = r"""
import json, sys, tempfile, time, torch
from gankit.config import config_from_dict
from gankit.train.run import build_trainer
config, steps = json.loads(sys.argv[1]), int(sys.argv[2])
torch.set_num_threads(int(sys.argv[3]))
config["train"] = {"out": tempfile.mkdtemp(), "kimg": 1e6, "device": "cpu", "progress": False}
trainer = build_trainer(config_from_dict(config))
for _ in range(20):
    trainer.step()
trainer.tick_logs.clear()
start = time.perf_counter()
for k in range(steps):
    trainer.step()
    if k % 50 == 49:
        trainer.tick_logs.clear()
print(json.dumps((time.perf_counter() - start) / steps * 1000))
"""


def time_step(src: Path, config: dict, steps: int, threads: int) -> float:
    """Milliseconds per step of `config` with gankit imported from `src`."""
    env = {**os.environ, "PYTHONPATH": str(src)}
    out = subprocess.run(
        [sys.executable, "-c", WORKER, json.dumps(config), str(steps), str(threads)],
        env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return float(out.stdout.strip().splitlines()[-1])


def cpu_model() -> str:
    """The CPU's model name (Linux), else the platform's processor string."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reference-src", type=Path, required=True, help="another tree's src/")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    trees = {"this checkout": HERE_SRC, "reference": args.reference_src}
    times: dict[tuple[str, str], list[float]] = {}
    for r in range(args.rounds):
        order = list(trees.items()) if r % 2 == 0 else list(reversed(trees.items()))
        for workload, (config, steps) in WORKLOADS.items():
            for tree, src in order:
                ms = time_step(src, config, steps, args.threads)
                times.setdefault((workload, tree), []).append(ms)
    print(f"CPU: {cpu_model()}; {args.threads} thread(s); {args.rounds} rounds; median ms/step")
    print("| workload | this checkout | reference | reference / this |")
    print("| --- | ---: | ---: | ---: |")
    for workload in WORKLOADS:
        here = statistics.median(times[(workload, "this checkout")])
        ref = statistics.median(times[(workload, "reference")])
        print(f"| {workload} | {here:.3f} | {ref:.3f} | {ref / here:.2f}x |")


if __name__ == "__main__":
    main()
