"""The StyleGAN paper's Table 1 ladder at one small fixed budget (issue 27): rows A-F of the
`stylegan` recipe (`--set recipe.args.ladder=X`) trained on unconditional MNIST at 32x32 with the
same widths, batch, growth schedule and length, then scored with the metrics that run offline.

Rows: (A) ProGAN baseline (no blur, WGAN-GP + drift), (B) + blur ("bilinear") and the logistic
loss with R1, (C) + mapping network and AdaIN styles, (D) + constant input, (E) + noise inputs,
(F) + mixing regularisation (`gankit.recipes.stylegan.LADDER`).

Every row: widths 64 up to 16 px and 32 at 32 px, batch 32, learning rate `--lr` (0.005, as
configs/stylegan-mnist32-cpu.yaml), G_ema with StyleGAN2-ADA's ramp-up 0.05.

Metrics on G_ema (10,000 samples unless `--num`):
- clf-FID: FID on gankit's MNIST classifier's penultimate features (`gankit evaluate
  --metrics clf-fid`), the MNIST stand-in for the paper's Inception FID;
- SWD (x 1e3, as gankit reports it: the mean over the Laplacian levels) and MS-SSIM of fake pairs (lower: more varied);
- PPL in W and in Z, endpoint sampling, epsilon 1e-4, 2,000 paths: the paper's definition with
  LPIPS replaced by the squared distance between the MNIST classifier's penultimate features
  (LPIPS needs VGG16 ImageNet weights this benchmark does not assume), so the numbers compare
  across rows, not with the paper's. Rows without a mapping network have W = normalised Z.
- confident %: the share of samples the classifier gives >= 0.9 to one class, and how many of
  the ten digits appear among those.

The paper (FFHQ 1024, Table 1 FID): A 8.04, B 5.25, C 4.85, D 4.88, E 4.42, F 4.40; Table 4
(FFHQ, PPL full / end): traditional G with 8-layer mapping Z 412.0 / 415.5 vs style-based W
(mapping 8) 195.9 / 160.2 (the paper's PPL numbers are in W for style-based, Z for traditional).

Rows run as independent jobs, `--jobs` at a time (one torch thread each: two runs side by side
use a 2-core machine best). A run that `--out` already holds continues from its checkpoint.

    python benchmarks/stylegan_ladder.py --data-root ../shared/data --kimg 16 --jobs 2
    python benchmarks/stylegan_ladder.py --rows A,F --quick    # a smoke run
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from experiments import (
    Job,
    add_common_arguments,
    comma_list,
    ensure_classifier,
    evaluate_run,
    markdown_table,
    positive_float,
    positive_int,
    provenance,
    run_jobs,
    train_run,
    write_json,
)

ROWS = ("A", "B", "C", "D", "E", "F")
ROW_NAMES = {
    "A": "ProGAN baseline", "B": "+ tuning (blur, logistic + R1)", "C": "+ mapping and styles",
    "D": "+ constant input", "E": "+ noise inputs", "F": "+ mixing regularisation",
}  # fmt: skip
PAPER_FID = {"A": 8.04, "B": 5.25, "C": 4.85, "D": 4.88, "E": 4.42, "F": 4.40}
ARCH = {"channel_base": 1024, "channel_max": 64}
#: The learning rate of every row: the official 0.001 draws blobs within 16 kimg on a CPU; this
#: is configs/stylegan-mnist32-cpu.yaml's.
LR = 0.005
PPL_PATHS = 2000
#: G_ema's half-life ramp-up (StyleGAN2-ADA's; the official StyleGAN has none): without it the
#: average of a 16 kimg run would still hold most of its first 10 kimg.
EMA_RAMPUP = 0.05


def schedule(kimg: float) -> dict[int, list[float]]:
    """The growth for a run of `kimg`: 1/8 at 8x8, 1/4 fading in and stable at 16x16, then
    1/4 fading in 32x32 and the rest (3/8) stable there."""
    k = kimg / 8
    return {8: [0, k], 16: [k, k], 32: [2 * k, 1e6]}


def classifier_distance() -> Any:
    """Squared L2 between the MNIST classifier's penultimate features: PPL's LPIPS stand-in."""
    from gankit.metrics.classifier import pretrained_classifier

    net = pretrained_classifier("mnist", progress=False).eval()

    def distance(a: Any, b: Any) -> Any:
        return (net.features(a) - net.features(b)).square().sum(dim=1)

    return distance


def path_lengths(run_dir: Path, paths: int) -> dict[str, float]:
    """PPL in W and Z (endpoints) with the classifier distance, on the run's G_ema."""
    from gankit.generate import load_generator
    from gankit.metrics.ppl import perceptual_path_length

    G = load_generator(run_dir, "cpu")[0]
    distance = classifier_distance()
    out = {}
    for space in ("w", "z"):
        result = perceptual_path_length(
            G, num_samples=paths, space=space, distance=distance, progress=False
        )
        out[f"ppl_{space}"] = result["ppl"]
    return out


def confident_digits(run_dir: Path, num: int) -> dict[str, float]:
    """The share of samples read >= 0.9 as one digit, and how many digits those cover."""
    import torch

    from gankit.generate import generate
    from gankit.metrics.classifier import predict_logits, pretrained_classifier

    images = generate(run_dir, num=num, seed=1, device="cpu", truncation_psi=1.0).values
    probs = torch.softmax(predict_logits(pretrained_classifier("mnist", progress=False), images), 1)
    top, cls = probs.max(dim=1)
    sure = top >= 0.9
    return {"confident": float(sure.float().mean()), "digits": len(set(cls[sure].tolist()))}


def run_one(job: Job) -> dict[str, Any]:
    """Train one row for the budget, then score it."""
    args = {"ladder": job["row"], "batch_sizes": {}, "phase_kimg": schedule(job["kimg"]),
            "lr": job["lr"]}  # fmt: skip
    run_dir = train_run(
        "stylegan", "mnist", Path(job["out"]), seed=job["seed"], kimg=job["kimg"],
        data_root=job["data_root"], arch=ARCH, recipe_args=args, batch=32, resolution=32,
        device=job["device"], amp=job["amp"], ema_rampup=EMA_RAMPUP,
    )  # fmt: skip
    scores = evaluate_run(
        run_dir, "clf-fid,swd,ms-ssim", job["num"], data="mnist", data_root=job["data_root"],
        seed=job["seed"], device=job["device"], cache=False,
    )  # fmt: skip
    flat = {f"{n}/{q}" if q else n: v for n, qs in scores.items() for q, v in qs.items()}
    return {**flat, **path_lengths(run_dir, job["paths"]), **confident_digits(run_dir, 2000)}


def _fmt(result: dict[str, Any], key: str, spec: str, scale: float = 1.0) -> str:
    value = result.get(key)
    return "" if value is None else format(value * scale, spec)


def build_table(results: list[dict[str, Any]]) -> str:
    """Markdown: one line per row with its metrics and the paper's FID."""
    rows = []
    for r in results:
        name = f"{r['row']} {ROW_NAMES[r['row']]}" + (" (failed)" if "error" in r else "")
        rows.append([
            name, _fmt(r, "clf-fid", ".2f"), _fmt(r, "swd/avg", ".1f"),
            _fmt(r, "ms-ssim/fake", ".3f"), _fmt(r, "ppl_w", ".1f"), _fmt(r, "ppl_z", ".1f"),
            _fmt(r, "confident", ".1f", 100) + (f" ({r['digits']})" if "digits" in r else ""),
            f"{PAPER_FID[r['row']]:.2f}",
        ])  # fmt: skip
    header = ["row", "clf-FID", "SWD x1e3", "MS-SSIM", "PPL W", "PPL Z", "confident % (digits)",
              "paper FID (FFHQ)"]  # fmt: skip
    return markdown_table(header, rows)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--rows", default=",".join(ROWS), help="comma list of Table 1 rows (A-F)")
    p.add_argument("--kimg", type=positive_float, default=16.0, help="training length per row")
    p.add_argument(
        "--lr", type=positive_float, default=LR, help=f"every row's learning rate (default {LR})"
    )
    p.add_argument("--num", type=positive_int, default=None, help="samples per metric")
    p.add_argument("--paths", type=positive_int, default=PPL_PATHS, help="PPL paths per space")
    p.add_argument("--seed", type=int, default=0)
    add_common_arguments(p)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> str:
    args = parse_args(argv)
    rows = comma_list(args.rows)
    unknown = [r for r in rows if r not in ROWS]
    if unknown:
        raise SystemExit(f"--rows: unknown rows {unknown}; choose from {', '.join(ROWS)}")
    if args.quick:
        args.kimg, args.num, args.paths = 0.5, 500, 50
    ensure_classifier(args.data_root, quick=args.quick)
    out = Path(args.workdir) / "stylegan-ladder"
    jobs = [
        {"row": row, "out": str(out / f"row-{row}"), "seed": args.seed, "kimg": args.kimg,
         "num": args.num, "paths": args.paths, "data_root": args.data_root, "lr": args.lr,
         "device": args.device, "amp": args.amp, "name": f"row {row}"}
        for row in rows
    ]  # fmt: skip
    results = run_jobs(run_one, jobs, args.jobs)
    table = build_table([{**job, **res} for job, res in zip(jobs, results, strict=True)])
    report = provenance(sys.argv, args.jobs, args.device) + "\n\n" + table
    print(report)
    write_json(args.json, results)
    return report


if __name__ == "__main__":
    main()
