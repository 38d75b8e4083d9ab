"""Milliseconds per request of `gankit explore`'s endpoints, per family, through the app that
`gankit explore` serves (`gankit.explore.create_app`, driven by Flask's test client, so the
numbers are the server's work: parsing, the batched G call, PNG encoding, JSON; no network).

Each endpoint is requested `--requests` times after two warm-up requests; the table gives the
median and the fastest, in ms, with the CPU model, torch's thread count and the date. Without
`--run`, tiny runs of each family are trained first in a temporary folder (seconds; tiny widths,
so their times are mostly the server's own overhead); give real runs with `--run` (repeatable)
for the latency a user sees. Nothing is written into a run given with `--run` (saves are not
timed).

    python benchmarks/explore_latency.py --requests 20
    python benchmarks/explore_latency.py --run runs/sg2-faces --run runs/progan-faces --device cuda
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from loop_step import cpu_model

#: Tiny widths per recipe, as tests/explore/conftest.py trains them (8 px there).
TINY: dict[str, list[str]] = {
    "stylegan2": ["model.arch.z_dim=4", "model.arch.w_dim=4", "model.arch.mapping_layers=2",
                  "model.arch.channel_base=16", "model.arch.channel_max=2"],
    "progan": ["model.arch.channel_base=32", "model.arch.channel_max=4", "model.arch.z_dim=4",
               "recipe.args.batch_sizes={}",
               "recipe.args.phase_kimg={4: [0, 0.008], 8: [0.016, 0.1]}"],
    "stylegan": ["model.arch.z_dim=4", "model.arch.w_dim=4", "model.arch.mapping_layers=2",
                 "model.arch.channel_base=32", "model.arch.channel_max=4",
                 "recipe.args.batch_sizes={}",
                 "recipe.args.phase_kimg={4: [0, 0.008], 8: [0.016, 0.1]}"],
    "cgan": ["model.arch.g_hidden=[32,32]", "model.arch.d_hidden=[16,16]"],
    "cyclegan": ["model.arch.ngf=2", "model.arch.ndf=2", "model.arch.n_blocks=1",
                 "model.arch.netD=n_layers", "model.arch.n_layers_d=1"],
}  # fmt: skip


def train_tiny_runs(root: Path, resolution: int) -> list[Path]:
    """One tiny run per family under `root` (trained through `gankit train`, CPU, one thread)."""
    from gankit.cli import main

    common = ["--device", "cpu", "--threads", "1", "--no-progress", "--workers", "0"]
    image = ["--data", "digits", "--resolution", str(resolution), "--batch", "4"]
    cgan = ["--data", "digits", "--resolution", str(resolution), "--batch", "16"]
    jobs = {
        "stylegan2": [*image, "--kimg", "0.008"],
        "progan": [*image, "--kimg", "0.016"],
        "stylegan": [*image, "--kimg", "0.016"],
        "gan": ["--data", "ring8", "--batch", "20", "--kimg", "0.04"],
        "cgan": [*cgan, "--kimg", "0.032"],
        "cyclegan": ["--data", str(unpaired_folder(root / "AB", resolution)), "--kimg", "0.004"],
    }
    runs = []
    for recipe, args in jobs.items():
        out = root / recipe
        sets = [word for kv in TINY.get(recipe, []) for word in ("--set", kv)]
        if main(["train", recipe, *args, *common, *sets, "--out", str(out)]) != 0:
            raise SystemExit(f"training the tiny {recipe} run failed")
        runs.append(out)
    return runs


def unpaired_folder(root: Path, size: int, count: int = 6) -> Path:
    """trainA (grey) and trainB (colour) folders of random `size` px PNGs."""
    rng = np.random.default_rng(0)
    for domain, mode in (("trainA", "L"), ("trainB", "RGB")):
        (root / domain).mkdir(parents=True)
        shape = (size, size) if mode == "L" else (size, size, 3)
        for k in range(count):
            pixels = rng.integers(0, 256, shape, dtype=np.uint8)
            Image.fromarray(pixels, mode).save(root / domain / f"{k}.png")
    return root


def requests_for(info: dict[str, Any]) -> dict[str, tuple[str, str, dict[str, Any]]]:
    """endpoint label -> (method, url, request kwargs) for what this run's page would ask."""
    if info["kind"] == "points":
        return {"info": ("get", "/api/info", {}), "scatter 2500": ("get", "/api/scatter.png", {})}
    if info["kind"] == "translation":
        side = info["resolution"] or 256
        return {
            "info": ("get", "/api/info", {}),
            f"translate {side}px": ("post", "/api/translate", {"image": side}),
        }
    out = {
        "info": ("get", "/api/info", {}),
        "grid 1": ("get", "/api/grid?seeds=0", {}),
        "grid 16": ("get", "/api/grid?seeds=0-15", {}),
        "interp 8": ("get", "/api/interp.png?a=0&b=1&steps=8", {}),
    }
    if info["c_dim"]:
        out["grid 16"] = ("get", "/api/grid?seeds=0-15&class=0", {})
    if info["has_mapping"]:
        extra = "&class=0" if info["c_dim"] else ""
        out["grid 16 psi 0.7"] = ("get", f"/api/grid?seeds=0-15&psi=0.7{extra}", {})
        out["mix"] = ("get", f"/api/mix?row=0&col=1&layers=coarse{extra}", {})
    if info["stages"] and len(info["stages"]) > 1:
        first = info["stages"][0]["resolution"]
        out[f"grid 16 at {first}px"] = ("get", f"/api/grid?seeds=0-15&resolution={first}", {})
    return out


def send(client: Any, method: str, url: str, kwargs: dict[str, Any]) -> None:
    """One request; an upload (`image`: side in px) is a fresh random PNG of that size."""
    data = None
    if "image" in kwargs:
        side = kwargs["image"]
        buffer = io.BytesIO()
        pixels = np.random.default_rng(0).integers(0, 256, (side, side, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(buffer, "PNG")
        data = {"image": (io.BytesIO(buffer.getvalue()), "x.png"), "direction": "a2b"}
    response = getattr(client, method)(url, data=data)
    if response.status_code != 200:
        raise SystemExit(f"{method.upper()} {url}: {response.status_code} {response.data[:300]!r}")


def time_request(send_one: Callable[[], None], requests: int) -> list[float]:
    """Milliseconds of each of `requests` calls, after two warm-up calls."""
    for _ in range(2):
        send_one()
    times = []
    for _ in range(requests):
        start = time.perf_counter()
        send_one()
        times.append((time.perf_counter() - start) * 1000)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", action="append", type=Path, help="a run directory (repeatable)")
    parser.add_argument("--requests", type=int, default=20, help="timed requests per endpoint")
    parser.add_argument("--threads", type=int, default=1, help="torch's CPU threads")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, ...")
    parser.add_argument(
        "--resolution", type=int, default=32, help="resolution of the tiny runs trained by default"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from gankit.explore import create_app

    with tempfile.TemporaryDirectory(prefix="explore-latency-") as tmp:
        runs = args.run or train_tiny_runs(Path(tmp), args.resolution)
        rows = []
        for run in runs:
            client = create_app(run, device=args.device).test_client()
            info = client.get("/api/info").get_json()
            for label, (method, url, kwargs) in requests_for(info).items():
                times = time_request(lambda: send(client, method, url, kwargs), args.requests)  # noqa: B023
                rows.append((run.name, info["family"], label, statistics.median(times), min(times)))
    print(
        f"CPU: {cpu_model()}; torch {torch.__version__}, {torch.get_num_threads()} thread(s); "
        f"device {args.device}; {args.requests} requests per endpoint; "
        f"{time.strftime('%Y-%m-%d')}",
    )
    print("\n| run | family | endpoint | median ms | fastest ms |")
    print("| --- | --- | --- | ---: | ---: |")
    for run, family, label, median, fastest in rows:
        print(f"| {run} | {family} | {label} | {median:.1f} | {fastest:.1f} |")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
