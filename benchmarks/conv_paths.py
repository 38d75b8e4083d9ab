"""One 3x3 convolution on the CPU: gankit's NNPACK (Winograd) path against oneDNN, by shape.

For each shape (batch, channels in -> out, map size) and each pass: "fwd" (no gradient, as G
runs in D's step), "input grad" (forward and the gradient of the input only, as D runs in G's
step) and "train" (forward and every gradient, as a layer being trained). `conv2d_same` is timed
with the path forced on and forced off (`set_cpu_winograd`), alternating over `--rounds`; the
table gives the median milliseconds and oneDNN / NNPACK (above 1: NNPACK is faster). It is what
`nn/equalized.py`'s rule (`AUTO_MIN_CHANNELS`) rests on.

    python benchmarks/conv_paths.py --threads 2
"""

from __future__ import annotations

import argparse
import datetime
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gankit.nn import equalized
from throughput import machine_description

#: (batch, in channels, out channels, map size)
SHAPES = [
    (32, 32, 32, 32), (32, 64, 64, 16), (32, 128, 128, 16), (32, 128, 128, 32),
    (16, 256, 256, 16), (16, 512, 512, 16), (16, 512, 512, 32),
]  # fmt: skip
PASSES = ("fwd", "input grad", "train")


def timed(shape: tuple[int, int, int, int], kind: str, winograd: bool, iters: int) -> float:
    """Milliseconds per call of one pass, the path forced on or off."""
    n, cin, cout, size = shape
    equalized.set_cpu_winograd(winograd)
    x = torch.randn(n, cin, size, size, requires_grad=kind != "fwd")
    w = torch.randn(cout, cin, 3, 3, requires_grad=kind == "train")
    b = torch.zeros(cout, requires_grad=kind == "train")

    def call() -> None:
        if kind == "fwd":
            with torch.no_grad():
                equalized.conv2d_same(x, w, b, 1)
        else:
            equalized.conv2d_same(x, w, b, 1).sum().backward()

    for _ in range(2):
        call()
    start = time.perf_counter()
    for _ in range(iters):
        call()
    return (time.perf_counter() - start) / iters * 1000


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--iters", type=int, default=5)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    started = datetime.datetime.now(datetime.timezone.utc)
    lines = [
        f"- command: `python {' '.join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]])}`",
        f"- machine: {machine_description(args.threads, 'cpu')}; {started:%Y-%m-%d %H:%M} UTC",
        "",
        "| N | C in -> out | px | pass | NNPACK ms | oneDNN ms | oneDNN / NNPACK |",
        "| ---: | --- | ---: | --- | ---: | ---: | ---: |",
    ]
    for shape in SHAPES:
        for kind in PASSES:
            on, off = [], []
            for r in range(args.rounds):
                order = (True, False) if r % 2 == 0 else (False, True)
                for winograd in order:
                    (on if winograd else off).append(timed(shape, kind, winograd, args.iters))
            a, b = statistics.median(on), statistics.median(off)
            n, cin, cout, size = shape
            lines.append(
                f"| {n} | {cin} -> {cout} | {size} | {kind} | {a:.1f} | {b:.1f} | {b / a:.2f} |"
            )
    equalized.set_cpu_winograd(None)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
