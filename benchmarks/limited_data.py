"""StyleGAN2 on limited data: no augmentation, ADA and DiffAugment at the same budget (issue 26).

The ADA paper (Karras et al. 2020, figs. 1 and 7) and DiffAugment (Zhao et al. 2020) report that on
a few thousand images or fewer the discriminator overfits (its outputs on reals and fakes drift
apart, FID turns upward) and that augmenting every image D sees prevents it. This trains gankit's
StyleGAN2 on the first N CelebA faces (default 500, center-cropped and resized to 32 px), once per
augmentation mode, for the same kimg, and scores each run against all 10,000 faces of the subset:

- SWD (PGGAN's sliced Wasserstein distance x1e3, averaged over the Laplacian levels), lower is better;
- MS-SSIM of random sample pairs (diversity; lower is more diverse; the reals' own is printed);

KID was tried on the FID network's architecture with seeded random weights whose BatchNorm
statistics were re-estimated on faces (`calibrated_random_inception`; the real InceptionV3 weights
are not available offline) and dropped: on 1,000 samples its values came out of either sign and
spread far wider than the differences between runs (benchmarks/RESULTS.md, 2026-12-04).

Also printed: D's mean sign on reals over the last ticks (ADA's overfitting heuristic r_t; the
target is 0.6) and the final ADA p. Runs go side by side, one thread each (`--jobs`).

    python benchmarks/limited_data.py --data-root ../shared/data --workdir /tmp/limited
    python benchmarks/limited_data.py --data-root ../shared/data --quick      # the pipeline only
"""

from __future__ import annotations

import argparse
import json
import sys
import tarfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from experiments import (
    Job,
    comma_list,
    evaluate_run,
    markdown_table,
    positive_float,
    positive_int,
    provenance,
    run_jobs,
    train_run,
    write_json,
)

ARMS = ("noaug", "ada", "diffaug")
CELEBA_TAR = Path("celeba-subset") / "img_align_celeba_10k.tar.xz"


def extract_faces(data_root: Path, workdir: Path) -> Path:
    """The 10,000 CelebA faces as a folder (extracted once into `workdir`)."""
    folder = workdir / "celeba" / "img_align_celeba"
    if not folder.is_dir():
        archive = data_root / CELEBA_TAR
        if not archive.is_file():
            raise SystemExit(f"{archive} not found: pass --data-root with the shared data folder")
        with tarfile.open(archive) as tar:
            tar.extractall(workdir / "celeba", filter="data")
    return folder


def subset_folder(faces: Path, count: int, workdir: Path) -> Path:
    """A folder of links to the first `count` faces in name order (the training set)."""
    names = sorted(p.name for p in faces.glob("*.jpg"))
    if count > len(names):
        raise SystemExit(f"--faces {count}: the subset has only {len(names)} faces")
    folder = workdir / f"faces-{count}"
    folder.mkdir(parents=True, exist_ok=True)
    for name in names[:count]:
        link = folder / name
        if not link.exists():
            link.symlink_to(faces / name)
    return folder


def logged(run_dir: Path, key: str) -> list[float]:
    """Every value of `key` in the run's stats.jsonl, in order (empty when never logged)."""
    records = (json.loads(line) for line in (run_dir / "stats.jsonl").read_text().splitlines())
    return [r[key] for r in records if r.get(key) is not None]


def last(values: list[float], count: int = 1) -> float | None:
    """The mean of the last `count` values (None for none)."""
    return sum(values[-count:]) / len(values[-count:]) if values else None


def run_one(job: Job) -> dict[str, Any]:
    """Train one augmentation mode on the subset, then score it against all faces."""
    recipe_args: dict[str, Any] = {"aug": job["arm"]}
    if job["ada_kimg"] is not None:
        recipe_args["ada_kimg"] = job["ada_kimg"]
    arch = {"channel_base": job["channel_base"], "channel_max": job["channel_max"]}
    run_dir = train_run(
        "stylegan2", job["subset"], Path(job["out"]), seed=job["seed"], kimg=job["kimg"],
        arch=arch, recipe_args=recipe_args, resolution=job["resolution"], device="cpu",
        model="stylegan2",
    )  # fmt: skip
    scores = evaluate_run(
        run_dir, "swd,ms-ssim", job["num"], device="cpu", data=job["all_faces"],
        seed=job["seed"], cache=True,
    )  # fmt: skip
    return {
        "trained_kimg": last(logged(run_dir, "kimg")),
        "swd": scores["swd"].get("avg"),
        "ms_ssim": scores["ms-ssim"].get("fake"),
        "ms_ssim_reals": scores["ms-ssim"].get("real"),
        "d_real_sign": last(logged(run_dir, "D_main/real_sign"), count=5),
        "ada_p": last(logged(run_dir, "D_main/aug_p")),
    }


def _fmt(value: float | None, fmt: str) -> str:
    return "" if value is None else format(value, fmt)


def build_table(results: list[dict[str, Any]]) -> str:
    rows = [
        [
            r["arm"], _fmt(r.get("trained_kimg"), ".1f"), _fmt(r.get("swd"), ".2f"),
            _fmt(r.get("ms_ssim"), ".3f"), _fmt(r.get("d_real_sign"), ".2f"),
            _fmt(r.get("ada_p"), ".3f"),
        ]
        for r in results
    ]  # fmt: skip
    header = ["augmentation", "kimg", "SWD x1e3", "MS-SSIM (reals: see below)",
              "D sign on reals (last 5 ticks)", "ADA p"]  # fmt: skip
    return markdown_table(header, rows)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--data-root", type=Path, default=Path("../shared/data"))
    p.add_argument("--workdir", type=Path, default=Path("runs/limited-data"))
    p.add_argument("--arms", type=comma_list, default=list(ARMS), help="noaug,ada,diffaug")
    p.add_argument("--faces", type=positive_int, default=500, help="training images (default 500)")
    p.add_argument("--resolution", type=positive_int, default=32)
    p.add_argument("--kimg", type=positive_float, default=20.0, help="budget per run")
    p.add_argument("--channel-base", type=positive_int, default=1024)
    p.add_argument("--channel-max", type=positive_int, default=64)
    p.add_argument(
        "--ada-kimg",
        type=positive_float,
        default=None,
        help="kimg in which ADA's p can go from 0 to 1 (official 500, for runs of 25,000 kimg: "
        "in a run of 20 kimg p can then move by at most 0.04)",
    )
    p.add_argument("--num", type=positive_int, default=1000, help="samples per metric")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--jobs", type=positive_int, default=2, help="runs side by side")
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--quick", action="store_true", help="tiny budget and widths: the pipeline only")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> str:
    args = parse_args(argv)
    if bad := [a for a in args.arms if a not in ARMS]:
        raise SystemExit(f"--arms: unknown {', '.join(bad)}; choose from {', '.join(ARMS)}")
    if args.quick:
        args.kimg, args.num, args.channel_base, args.channel_max = 0.2, 64, 64, 16
    faces = extract_faces(args.data_root, args.workdir)
    subset = subset_folder(faces, args.faces, args.workdir)
    jobs = [
        {
            "arm": arm, "out": str(args.workdir / arm), "subset": str(subset),
            "all_faces": str(faces), "kimg": args.kimg, "seed": args.seed, "num": args.num,
            "resolution": args.resolution, "channel_base": args.channel_base,
            "channel_max": args.channel_max, "ada_kimg": args.ada_kimg,
        }
        for arm in args.arms
    ]  # fmt: skip
    results = run_jobs(run_one, jobs, args.jobs)  # each holds its job too
    table = build_table(results)
    reals = next((r["ms_ssim_reals"] for r in results if r.get("ms_ssim_reals")), None)
    print(table)
    print(f"\nMS-SSIM of the reals' own pairs: {_fmt(reals, '.3f')}")
    print(provenance(sys.argv, args.jobs))
    write_json(args.json, results)
    return table


if __name__ == "__main__":
    main()
