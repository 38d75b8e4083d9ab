"""Metric speed: gankit's SWD, FID and KID, with torch-fidelity on the same images (project issue #3).

Times, in one process and with the same thread count and batch size on both sides:

1. gankit SWD (`swd16k`: the PGGAN protocol, 16,384 images per side at 64x64) through
   `gankit.metrics.evaluate`. torch-fidelity has no SWD, so it runs alone.
2. gankit FID and KID (`fid10k`, `kid10k`) through `gankit.metrics.evaluate` with the real-feature
   cache off, so the reals go through the network every time: network build and weights load,
   Inception features of the fakes and the reals (one shared pass for both metrics), FID, and KID
   (100 subsets of min(1000, N)).
3. torch-fidelity's `calculate_metrics(input1=reals, input2=fakes, fid=True, kid=True,
   cache=False, ...)` on the same uint8 images (a Dataset of uint8 CHW tensors), the same weights
   file, the same KID subsets and seed. Both libraries' values are printed with their relative
   difference; they should agree to about 1e-6.

Images: "reals" and "fakes" are two disjoint, seeded random sets of one dataset (CIFAR-10's
training split by default), or (`--fakes noise`) the reals plus Gaussian pixel noise. SWD uses the
same dataset at 64x64 (CIFAR-10's 32x32 images enlarged with antialiased bilinear), or the folder
or zip given by `--swd-data`.

Weights: timing does not depend on weight values, and the real FID Inception weights are not
available offline, so without `--inception-weights FILE` the script builds the random-weight
network that the tests use (BatchNorm statistics re-estimated on images, so features stay spread),
saves it to a temporary file and gives that file to both libraries. The values are then not
comparable with published FIDs, only between the two libraries.

    python benchmarks/metrics_speed.py --data-root ../shared/data
    python benchmarks/metrics_speed.py --num 64 --swd-num 64 --threads 1 --data-root ../shared/data
    python benchmarks/metrics_speed.py --device cpu,cuda --count-list 1000,10000 --json out.json
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import functools
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

KID_SUBSETS = 100
KID_SEED = 2020  # torch-fidelity's default rng_seed; gankit's kid uses EvalOptions.seed + 2020
GANKIT, FIDELITY = "gankit", "torch-fidelity"


# ---------------------------------------------------------------------------------------- inputs


def random_inception_weights(path: Path) -> Path:
    """Save random FID-Inception weights with re-estimated BatchNorm statistics to `path`.

    The test suite's construction (tests/conftest.py, `inception_weights`): seeded random weights,
    BatchNorm statistics re-estimated on 8 textured 32x32 images through the real preprocessing.
    """
    from gankit.metrics.inception import calibrated_random_inception

    net = calibrated_random_inception()
    torch.save(net.state_dict(), path)
    return path


def load_images(
    name: str, root: str | None, split: str, resolution: int | None = None
) -> tuple[torch.Tensor, str]:
    """All images of a dataset as uint8 `[N, C, H, W]` and its description.

    A built-in name is read at its own resolution; a folder or zip is prepared at `resolution`.
    """
    from gankit.data import open_dataset

    is_path = Path(name).expanduser().exists()
    if is_path:
        dataset = open_dataset(name, resolution=resolution)
    else:
        dataset = open_dataset(name, root=root, split=split)
    images = getattr(dataset, "images", None)
    if not isinstance(images, torch.Tensor):
        images = torch.stack([dataset[i]["img"] for i in range(len(dataset))])
    return images, getattr(dataset, "description", "") or name


def resize_uint8(images: torch.Tensor, resolution: int, chunk: int = 1024) -> torch.Tensor:
    """uint8 `[N, C, H, W]` -> `[N, C, R, R]` with antialiased bilinear (unchanged if already R)."""
    if images.shape[-1] == resolution and images.shape[-2] == resolution:
        return images
    out = torch.empty(*images.shape[:2], resolution, resolution, dtype=torch.uint8)
    for start in range(0, len(images), chunk):
        x = images[start : start + chunk].float()
        x = F.interpolate(x, size=(resolution, resolution), mode="bilinear", antialias=True)
        out[start : start + chunk] = x.round().clamp(0, 255).to(torch.uint8)
    return out


def real_and_fake(
    images: torch.Tensor, n: int, mode: str, noise_std: float, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Two sets of `n` images: disjoint random subsets (`split`), or reals and noisy reals."""
    gen = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(images), generator=gen)
    need = 2 * n if mode == "split" else n
    if need > len(images):
        sys.exit(
            f"{need:,} images needed ({n:,} per side, --fakes {mode}) but the data has "
            f"{len(images):,}; lower the count or use --fakes noise"
        )
    real = images[order[:n]].contiguous()
    if mode == "split":
        return real, images[order[n : 2 * n]].contiguous()
    noise = torch.randn(real.shape, generator=gen) * noise_std
    return real, (real.float() + noise).round().clamp(0, 255).to(torch.uint8)


class UInt8Images(torch.utils.data.Dataset):
    """uint8 `[N, 3, H, W]` as a Dataset of uint8 CHW tensors (what torch-fidelity accepts)."""

    def __init__(self, images: torch.Tensor) -> None:
        self.images = images

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> torch.Tensor:
        return self.images[index]


# ---------------------------------------------------------------------------------------- timing


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], Any], device: torch.device) -> tuple[float, Any]:
    """(wall-clock seconds, result) of `fn()`, synchronising CUDA on both ends."""
    _sync(device)
    start = time.perf_counter()
    result = fn()
    _sync(device)
    return time.perf_counter() - start, result


def gankit_options(device: torch.device, batch: int, weights: Path | None) -> Any:
    """gankit's evaluation options: no real-feature cache, no progress bar, seed 0 (KID seed 2020)."""
    from gankit.metrics import EvalOptions

    return EvalOptions(
        device=device,
        batch_size=batch,
        seed=0,
        inception_weights=None if weights is None else str(weights),
        resize="reference",
        progress=False,
        cache=False,
    )


def gankit_fid_kid(
    real: torch.Tensor, fake: torch.Tensor, device: torch.device, batch: int, weights: Path
) -> tuple[dict[str, float], dict[str, torch.Tensor]]:
    """gankit's `evaluate` with fid and kid at N = len(fake): values, and the pool3 features."""
    from gankit.metrics import FeatureBank, TensorSource, evaluate, parse_metrics

    n = len(fake)
    options = gankit_options(device, batch, weights)
    bank = FeatureBank(options)
    reals, fakes = TensorSource(real, "reals"), TensorSource(fake, "fakes")
    fid_req, kid_req = parse_metrics("fid,kid", num=n)
    out = evaluate([fid_req, kid_req], fakes, reals, options, bank=bank)
    values = {
        "fid": out[fid_req.label],
        "kid": out[kid_req.label],
        "kid_std": out[f"{kid_req.label}/std"],
    }
    # Already computed inside evaluate(): the bank hands back the same tensors.
    features = {
        "real": bank.features(reals, len(real), "inception", real=True)["pool3"],
        "fake": bank.features(fakes, n, "inception")["pool3"],
    }
    return values, features


def fidelity_fid_kid(
    real: torch.Tensor,
    fake: torch.Tensor,
    device: torch.device,
    batch: int,
    weights: Path,
    loader_workers: bool,
) -> dict[str, float]:
    """torch-fidelity's `calculate_metrics` with fid and kid on the same images and weights."""
    import torch_fidelity

    out = torch_fidelity.calculate_metrics(
        input1=UInt8Images(real),
        input2=UInt8Images(fake),
        cuda=device.type == "cuda",
        batch_size=batch,
        fid=True,
        kid=True,
        kid_subsets=KID_SUBSETS,
        kid_subset_size=min(1000, len(real), len(fake)),
        rng_seed=KID_SEED,
        feature_extractor_weights_path=str(weights),
        cache=False,
        # save_cpu_ram=True reads the in-memory images in-process (DataLoader num_workers=0), as
        # gankit does; False is torch-fidelity's default: min(4, 2 * cores) loader processes.
        save_cpu_ram=not loader_workers,
        verbose=False,
    )
    return {
        "fid": out["frechet_inception_distance"],
        "kid": out["kernel_inception_distance_mean"],
        "kid_std": out["kernel_inception_distance_std"],
    }


def gankit_swd(
    real: torch.Tensor, fake: torch.Tensor, device: torch.device, batch: int
) -> dict[str, float]:
    """gankit's `evaluate` with swd at N = len(fake): `{level or 'avg': value}`."""
    from gankit.metrics import TensorSource, evaluate, parse_metrics

    options = gankit_options(device, batch, None)
    (request,) = parse_metrics("swd", num=len(fake))
    out = evaluate([request], TensorSource(fake, "fakes"), TensorSource(real, "reals"), options)
    return {key.split("/", 1)[1]: value for key, value in out.items() if "/" in key}


def breakdown(
    features: dict[str, torch.Tensor], device: torch.device
) -> dict[str, dict[str, float]]:
    """Seconds of FID and KID alone from the same pool3 features, for both libraries."""
    from torch_fidelity.metric_fid import fid_features_to_statistics, fid_statistics_to_metric
    from torch_fidelity.metric_kid import kid_features_to_metric

    from gankit.metrics.fid import fid_from_features
    from gankit.metrics.kid import kid

    real, fake = features["real"], features["fake"]
    size = min(1000, len(real), len(fake))
    real_cpu, fake_cpu = real.float().cpu(), fake.float().cpu()

    def fidelity_fid() -> float:
        stats = [fid_features_to_statistics(f) for f in (real_cpu, fake_cpu)]
        return fid_statistics_to_metric(*stats, verbose=False)["frechet_inception_distance"]

    def fidelity_kid() -> float:
        return kid_features_to_metric(
            real_cpu,
            fake_cpu,
            kid_subsets=KID_SUBSETS,
            kid_subset_size=size,
            rng_seed=KID_SEED,
            verbose=False,
        )["kernel_inception_distance_mean"]

    on_device = real.to(device), fake.to(device)  # gankit computes where the features are
    return {
        GANKIT: {
            "fid": timed(lambda: fid_from_features(*on_device), device)[0],
            "kid": timed(
                lambda: kid(*on_device, subsets=KID_SUBSETS, subset_size=size, seed=KID_SEED),
                device,
            )[0],
        },
        # torch-fidelity computes both on the CPU with NumPy whatever its `cuda` flag.
        FIDELITY: {
            "fid": timed(fidelity_fid, device)[0],
            "kid": timed(fidelity_kid, device)[0],
        },
    }


def thread_limits(threads: int) -> contextlib.AbstractContextManager:
    """torch's intra-op threads and every BLAS/OpenMP pool (NumPy's OpenBLAS too) at `threads`.

    torch-fidelity computes FID and KID with NumPy, gankit with torch: both must get the same
    number of threads for the comparison to mean anything.
    """
    torch.set_num_threads(threads)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # NumPy then follows OMP_NUM_THREADS / OPENBLAS_NUM_THREADS
        return contextlib.nullcontext()
    return threadpool_limits(limits=threads)


# ---------------------------------------------------------------------------------------- report


def machine_description(threads: int, devices: list[torch.device]) -> str:
    """CPU model, cores, threads, torch and torch-fidelity versions (and the GPU if used)."""
    cpu = platform.processor() or "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    try:
        from importlib.metadata import version

        fidelity = version("torch-fidelity")
    except Exception:
        fidelity = "not installed"
    desc = (
        f"{cpu}, {os.cpu_count()} cores, {threads} threads, torch {torch.__version__}, "
        f"torch-fidelity {fidelity}"
    )
    if any(d.type == "cuda" for d in devices) and torch.cuda.is_available():
        desc += f", {torch.cuda.get_device_name(0)}"
    return desc


def _value(row: dict[str, Any]) -> str:
    v = row.get("values", {})
    if row["metric"] == "swd":
        return (
            f"avg {v['avg']:.4g} ("
            + ", ".join(f"{k}: {x:.4g}" for k, x in v.items() if k != "avg")
            + ")"
        )
    if "fid" in v:
        return f"FID {v['fid']:.6g}, KID {v['kid']:.6g} ± {v['kid_std']:.3g}"
    return ""


def format_table(rows: list[dict[str, Any]]) -> str:
    """Markdown: metric | N | device | impl | seconds | images/s | x torch-fidelity | value."""
    lines = [
        "| metric | N | device | impl | seconds | images/s | speed vs torch-fidelity | value |",
        "| --- | ---: | --- | --- | ---: | ---: | ---: | --- |",
    ]
    reference = {
        (r["metric"], r["n"], r["device"]): r["seconds"]
        for r in rows
        if r["impl"] == FIDELITY and "seconds" in r
    }
    for r in rows:
        head = f"| {r['metric']} | {r['n']:,} | {r['device']} | {r['impl']} "
        if "skipped" in r:
            lines.append(head + f"| skipped: {r['skipped']} | | | |")
            continue
        ref = reference.get((r["metric"], r["n"], r["device"]))
        ratio = f"{ref / r['seconds']:.2f}x" if ref and r["impl"] != FIDELITY else "-"
        ips = f"{r['images_per_s']:.3g}" if r.get("images_per_s") else "-"
        lines.append(head + f"| {r['seconds']:.2f} | {ips} | {ratio} | {_value(r)} |")
    return "\n".join(lines)


def agreement(rows: list[dict[str, Any]]) -> list[str]:
    """Relative (and absolute) differences of FID and KID between the libraries, per N/device."""
    out = []
    runs = {(r["n"], r["device"], r["impl"]): r for r in rows if r["metric"] == "fid+kid"}
    for (n, device, impl), r in runs.items():
        other = runs.get((n, device, FIDELITY))
        if impl != GANKIT or other is None or "values" not in r or "values" not in other:
            continue
        parts = []
        for key in ("fid", "kid", "kid_std"):
            a, b = r["values"][key], other["values"][key]
            rel = abs(a - b) / abs(b) if b else float("inf")
            parts.append(f"{key} {a:.8g} vs {b:.8g} (rel. diff {rel:.1e}, abs {abs(a - b):.1e})")
        note = ""
        if n <= 1000:
            note = (
                " (N <= 1000: every KID subset is the whole set, so kid_std is 0 up to round-off, "
                "which is larger in torch-fidelity's float32)"
            )
        out.append(f"- N = {n:,} on {device}: gankit vs torch-fidelity: " + "; ".join(parts) + note)
    return out


# ---------------------------------------------------------------------------------------- main


def parse_counts(text: str) -> list[int]:
    """'1000,10000' -> [1000, 10000]."""
    return [int(x) for x in text.split(",") if x.strip()]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(
        description="Seconds for gankit's SWD, FID and KID, side by side with torch-fidelity's "
        "FID and KID on the same images (uint8, same weights file, batch and threads).",
    )
    p.add_argument("--data", default="cifar10", help="dataset name or image folder/zip")
    p.add_argument("--data-root", default=None, help="where built-in datasets are found")
    p.add_argument("--split", default="train", help="split of a built-in dataset (default train)")
    p.add_argument(
        "--swd-data",
        default=None,
        help="dataset for SWD (default: --data), resized to --swd-resolution if it differs",
    )
    p.add_argument("--swd-resolution", type=int, default=64)
    p.add_argument("--num", type=int, default=10000, help="FID/KID images per side (10000)")
    p.add_argument("--swd-num", type=int, default=16384, help="SWD images per side (16384)")
    p.add_argument("--count-list", default=None, help="comma list of FID/KID N (overrides --num)")
    p.add_argument(
        "--swd-count-list", default=None, help="comma list of SWD N (overrides --swd-num)"
    )
    p.add_argument(
        "--metrics",
        default="swd,fid-kid",
        help="which to time: swd, fid-kid, features (FID and KID alone from random features, "
        "no network; default swd,fid-kid)",
    )
    p.add_argument(
        "--impls", default=f"{GANKIT},{FIDELITY}", help="FID/KID implementations (default both)"
    )
    p.add_argument("--device", default="cpu", help="comma list of cpu, cuda[:N] (default cpu)")
    p.add_argument("--threads", type=int, default=2, help="torch and BLAS threads (default 2)")
    p.add_argument("--batch", type=int, default=64, help="batch size on both sides (default 64)")
    p.add_argument("--repeats", type=int, default=1, help="timed runs per configuration (median)")
    p.add_argument(
        "--warmup-num", type=int, default=None, help="images per side of the warm-up (--batch)"
    )
    p.add_argument(
        "--fakes",
        choices=("split", "noise"),
        default="split",
        help="fakes: a disjoint random subset of the data (default) or the reals plus noise",
    )
    p.add_argument("--noise-std", type=float, default=8.0, help="pixel noise for --fakes noise")
    p.add_argument("--seed", type=int, default=0, help="seed of the image selection")
    p.add_argument(
        "--inception-weights",
        default=None,
        help="FID Inception weights file for both libraries (default: random weights, as the "
        "tests build them, saved to a temporary file)",
    )
    p.add_argument(
        "--fidelity-loader-workers",
        action="store_true",
        help="give torch-fidelity its default DataLoader processes (min(4, 2 * cores)) instead "
        "of in-process loading (save_cpu_ram=True, as gankit)",
    )
    p.add_argument(
        "--no-breakdown",
        action="store_true",
        help="skip timing FID and KID alone from the features on both sides",
    )
    p.add_argument("--json", type=Path, default=None, help="also write the raw results here")
    return p.parse_args(argv)


def _devices(text: str) -> tuple[list[torch.device], list[str]]:
    devices, skipped = [], []
    for name in (d.strip() for d in text.split(",") if d.strip()):
        device = torch.device(name)
        if device.type == "cuda" and not torch.cuda.is_available():
            skipped.append(name)
        else:
            devices.append(device)
    return devices, skipped


def _log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def run_swd(
    args: argparse.Namespace, device: torch.device, counts: list[int]
) -> Iterator[dict[str, Any]]:
    """Timed gankit SWD rows for every count."""
    name = args.swd_data or args.data
    images, desc = load_images(name, args.data_root, args.split, args.swd_resolution)
    native = images.shape[-1]
    if images.shape[1] == 1:
        images = images.expand(-1, 3, -1, -1)

    def pair(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        # Select at the native size, then resize only the images used.
        chosen = real_and_fake(images, n, args.fakes, args.noise_std, args.seed)
        return resize_uint8(chosen[0], args.swd_resolution), resize_uint8(
            chosen[1], args.swd_resolution
        )

    how = (
        f", resized from {native}x{native} to {args.swd_resolution}x{args.swd_resolution} "
        "(antialiased bilinear)"
        if native != args.swd_resolution
        else ""
    )
    data_text = f"{desc}{how}"
    warm = max(2, args.warmup_num or args.batch)
    gankit_swd(*pair(warm), device, args.batch)
    for n in counts:
        real, fake = pair(n)
        seconds, values = [], {}
        for _ in range(args.repeats):
            s, values = timed(functools.partial(gankit_swd, real, fake, device, args.batch), device)
            seconds.append(s)
        row = _row("swd", n, device, GANKIT, seconds, 2 * n, values, data=data_text)
        _log(f"swd N={n} {device} gankit: {row['seconds']:.2f} s, avg {values['avg']:.4g}")
        yield row


def run_fid_kid(
    args: argparse.Namespace,
    device: torch.device,
    counts: list[int],
    impls: list[str],
    weights: Path,
) -> Iterator[dict[str, Any]]:
    """Timed FID+KID rows (and the from-features breakdown) for every count and library."""
    images, desc = load_images(args.data, args.data_root, args.split)
    if images.shape[1] == 1:
        images = images.expand(-1, 3, -1, -1).contiguous()
    data_text = f"{desc} ({images.shape[-1]}x{images.shape[-1]})"
    calls = {
        GANKIT: lambda r, f: gankit_fid_kid(r, f, device, args.batch, weights),
        FIDELITY: lambda r, f: (
            fidelity_fid_kid(r, f, device, args.batch, weights, args.fidelity_loader_workers),
            None,
        ),
    }
    warm = max(2, args.warmup_num or args.batch)
    real, fake = real_and_fake(images, warm, args.fakes, args.noise_std, args.seed)
    for impl in impls:
        calls[impl](real, fake)
    for n in counts:
        real, fake = real_and_fake(images, n, args.fakes, args.noise_std, args.seed)
        seconds: dict[str, list[float]] = {impl: [] for impl in impls}
        values: dict[str, dict[str, float]] = {}
        features = None
        for rep in range(args.repeats):
            # Alternate the order between repeats so drifting machine load hits both sides.
            for impl in impls if rep % 2 == 0 else impls[::-1]:
                s, (vals, feats) = timed(functools.partial(calls[impl], real, fake), device)
                seconds[impl].append(s)
                values[impl] = vals
                features = feats if feats is not None else features
                _log(
                    f"fid+kid N={n} {device} {impl}: {s:.2f} s, FID {vals['fid']:.6g}, "
                    f"KID {vals['kid']:.6g}"
                )
        rows = {
            impl: _row("fid+kid", n, device, impl, seconds[impl], 2 * n, values[impl], data_text)
            for impl in impls
        }
        yield from rows.values()
        if args.no_breakdown or features is None:
            continue
        parts = breakdown(features, device)
        for impl in impls:
            fid_s, kid_s = parts[impl]["fid"], parts[impl]["kid"]
            yield _row("fid+kid: FID only", n, device, impl, [fid_s], 0, {}, data_text)
            yield _row("fid+kid: KID only", n, device, impl, [kid_s], 0, {}, data_text)
            rest = rows[impl]["seconds"] - fid_s - kid_s
            yield _row("fid+kid: network + features", n, device, impl, [rest], 2 * n, {}, data_text)


def run_from_features(
    args: argparse.Namespace, device: torch.device, counts: list[int]
) -> Iterator[dict[str, Any]]:
    """FID and KID alone from seeded random 2048-d features (no network), both libraries.

    The features are non-negative like pool3's (ReLU then an average): uniform [0, 1) for the
    reals and 1.02 times that for the fakes, float32.
    """
    for n in counts:
        g = torch.Generator().manual_seed(args.seed)
        real = torch.rand(n, 2048, generator=g)
        features = {"real": real, "fake": 1.02 * torch.rand(n, 2048, generator=g)}
        seconds: dict[str, dict[str, list[float]]] = {}
        for _ in range(args.repeats):
            for impl, times in breakdown(features, device).items():
                for metric, s in times.items():
                    seconds.setdefault(impl, {}).setdefault(metric, []).append(s)
        for impl, times in seconds.items():
            for metric, ss in times.items():
                _log(f"{metric} from features N={n} {device} {impl}: {statistics.median(ss):.2f} s")
                text = "random features [N, 2048], float32"
                yield _row(f"{metric} from features", n, device, impl, ss, 0, {}, text)


def _row(
    metric: str,
    n: int,
    device: torch.device,
    impl: str,
    seconds: list[float],
    images: int,
    values: dict[str, float],
    data: str,
) -> dict[str, Any]:
    median = statistics.median(seconds)
    return {
        "metric": metric,
        "n": n,
        "device": str(device),
        "impl": impl,
        "seconds": median,
        "all_seconds": seconds,
        "images": images,
        "images_per_s": images / median if images and median > 0 else None,
        "values": values,
        "data": data,
    }


def main(argv: list[str] | None = None) -> None:
    """Time the metrics and print a Markdown report."""
    args = parse_args(argv)
    metrics = [m.strip() for m in args.metrics.split(",") if m.strip()]
    impls = [i.strip() for i in args.impls.split(",") if i.strip()]
    bad = [m for m in metrics if m not in ("swd", "fid-kid", "features")]
    bad += [i for i in impls if i not in (GANKIT, FIDELITY)]
    if bad:
        sys.exit(
            f"unknown --metrics/--impls {bad}; metrics: swd, fid-kid, features; "
            f"impls: {GANKIT}, {FIDELITY}"
        )
    counts = parse_counts(args.count_list) if args.count_list else [args.num]
    swd_counts = parse_counts(args.swd_count_list) if args.swd_count_list else [args.swd_num]
    devices, skipped = _devices(args.device)

    load_before = os.getloadavg()
    started = datetime.datetime.now()
    clock = time.perf_counter()
    rows: list[dict[str, Any]] = []
    for name in skipped:
        for metric, ns in (("swd", swd_counts), ("fid+kid", counts)):
            if metric.replace("+", "-") in metrics:
                for n in ns:
                    rows.append({"metric": metric, "n": n, "device": name, "impl": "-",
                                 "skipped": "no CUDA device visible"})  # fmt: skip
        _log(f"{name}: no CUDA device visible, skipped")

    with tempfile.TemporaryDirectory() as tmp, thread_limits(args.threads):
        weights, weights_text = None, "none (SWD only)"
        if args.inception_weights:
            weights = Path(args.inception_weights).expanduser()
            weights_text = f"`{weights}`"
        elif "fid-kid" in metrics:
            from gankit.metrics.inception import WEIGHTS_FILE

            weights = random_inception_weights(Path(tmp) / WEIGHTS_FILE)
            weights_text = (
                "random FID-Inception weights with re-estimated BatchNorm statistics (built as "
                "the tests' `inception_weights` fixture, saved to a temporary file and read by "
                "both libraries); timing does not depend on weight values, and the values are "
                "comparable only between the two libraries, not with published FIDs"
            )
        for device in devices:
            if "swd" in metrics:
                rows += run_swd(args, device, swd_counts)
            if weights is not None and "fid-kid" in metrics:
                rows += run_fid_kid(args, device, counts, impls, weights)
            if "features" in metrics:
                rows += run_from_features(args, device, counts)
    load_after = os.getloadavg()
    total = time.perf_counter() - clock

    command = "python " + " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]])
    data = {
        r["metric"]: r["data"] for r in rows if "data" in r and r["metric"] in ("swd", "fid+kid")
    }
    loader = (
        "its default DataLoader processes"
        if args.fidelity_loader_workers
        else "in-process loading (save_cpu_ram=True), as gankit"
    )
    report = [
        f"- command: `{command}`",
        f"- machine: {machine_description(args.threads, devices)}",
        f"- load average (1/5/15 min) before: {' / '.join(f'{x:.2f}' for x in load_before)}, "
        f"after: {' / '.join(f'{x:.2f}' for x in load_after)}",
        f"- date: {started:%Y-%m-%d %H:%M}; total {total:.0f} s; batch {args.batch} on both "
        f"sides; one warm-up run per library, then the median of {args.repeats} timed run(s)",
        "- data: "
        + "; ".join(f"{k}: {v}" for k, v in sorted(data.items()))
        + "; reals and fakes: "
        + (
            "two disjoint seeded random subsets"
            if args.fakes == "split"
            else f"seeded random reals and the same plus N(0, {args.noise_std:g}^2) pixel noise"
        ),
        f"- weights: {weights_text}",
    ]
    if "fid-kid" in metrics:
        report.append(
            "- fid+kid: network build and weights load, Inception features of N fakes and N reals "
            f"(images/s counts all 2N), FID, and KID ({KID_SUBSETS} subsets of min(1000, N), seed "
            f"{KID_SEED}); gankit through `gankit.metrics.evaluate` with the real-feature cache off, "
            f"torch-fidelity through `calculate_metrics(cache=False)` with {loader}; torch and "
            f"BLAS/OpenMP pools (NumPy's, which torch-fidelity's FID and KID use) at {args.threads} "
            "thread(s) on both sides; the "
            "`FID only` and `KID only` rows time each alone on the same features (gankit's), and "
            "`network + features` is the total minus both"
        )
    if "swd" in metrics:
        report.append(
            "- swd: gankit's `evaluate` with `swd` at N per side (images/s counts all 2N); "
            "torch-fidelity has no SWD"
        )
    report += ["", format_table(rows)]
    agree = agreement(rows)
    if agree:
        report += ["", *agree]
    print("\n".join(report))
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "command": command,
                    "machine": machine_description(args.threads, devices),
                    "load_before": load_before,
                    "load_after": load_after,
                    "date": started.isoformat(timespec="seconds"),
                    "total_seconds": total,
                    "weights": weights_text,
                    "args": {k: str(v) for k, v in vars(args).items()},
                    "results": rows,
                },
                indent=1,
            )
        )


if __name__ == "__main__":
    main()
