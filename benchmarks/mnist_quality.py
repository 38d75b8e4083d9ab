"""MNIST sample quality per recipe at a fixed CPU budget (issue 4, experiment 3).

Every recipe trains on MNIST (28x28; 32x32 with 2 black pixels of padding for sngan's ResNet,
which has no 28x28 layout) with its paper's preset for the same number of minutes, then
10,000 samples are scored with gankit's MNIST classifier: classifier-FID and classifier-KID
(penultimate features, not Inception: the numbers compare recipes with each other, not with
CIFAR/ImageNet FIDs), the Gaussian Parzen-window log-likelihood of the MNIST test set for the MLP
GAN (the original paper reports 225 +- 2), and for cgan the classifier's accuracy on class-
conditional samples (target: at least 97%).

    python benchmarks/mnist_quality.py --data-root ../shared/data --minutes 10
    python benchmarks/mnist_quality.py --data-root ../shared/data --quick
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from experiments import (
    Job,
    add_common_arguments,
    ensure_classifier,
    evaluate_run,
    markdown_table,
    method_list,
    parse_method,
    positive_float,
    positive_int,
    provenance,
    run_jobs,
    train_run,
    write_json,
)

#: Methods: a recipe, or RECIPE+MODEL for another model (`cgan+dcgan`: the convolutional cGAN).
RECIPES = ("gan", "cgan", "cgan+dcgan", "dcgan", "wgan", "wgan-gp", "sngan", "lsgan")
#: Models that have no 28x28 layout train MNIST at 32x32 (2 black pixels of padding per side,
#: which the classifier's metrics crop off again).
PADDED_TO_32 = ("resnet",)
PAPER_PARZEN = "225 +- 2 (GAN paper, table 1)"


def metrics_for(recipe: str) -> str:
    """clf-fid and clf-kid for all; Parzen for the MLP GAN; class accuracy for cgan."""
    extra = {"gan": ",parzen", "cgan": ",class-acc"}.get(recipe, "")
    return "clf-fid,clf-kid" + extra


def resolution_for(recipe: str, model: str | None) -> int | None:
    """32 for a method whose model has no 28x28 layout (sngan's ResNet), else None (MNIST's 28)."""
    from gankit.registry import RECIPES as REGISTERED
    from gankit.train.resolve import DataFacts

    facts = DataFacts("mnist", "images", resolution=28, channels=1, num_classes=10)
    cls = REGISTERED.get(recipe)
    image_model = model or cls.model_defaults(cls.resolve_args({}, facts), facts)[0]
    return 32 if image_model in PADDED_TO_32 else None


def run_one(job: Job) -> dict[str, Any]:
    """Train one recipe on MNIST for the budget, then score 10,000 (or --num) samples."""
    recipe, model, arch = parse_method(job["recipe"])
    run_dir = train_run(
        recipe,
        "mnist",
        Path(job["out"]),
        seed=job["seed"],
        device=job["device"],
        amp=job["amp"],
        kimg=job["kimg"],
        minutes=job["minutes"],
        data_root=job["data_root"],
        model=model,
        arch=arch,
        resolution=resolution_for(recipe, model),
        # A quick check samples and saves once, at its end: every grid and snapshot of new
        # weights recomputes G_ema's batch-norm statistics (1,024 samples), minutes on a CPU.
        intervals={"sample_kimg": job["kimg"], "snapshot_kimg": job["kimg"]}
        if job["quick"]
        else None,
    )
    scores = evaluate_run(
        run_dir,
        metrics_for(recipe),
        job["num"],
        data="mnist",
        data_root=job["data_root"],
        seed=job["seed"],
        device=job["device"],
        cache=False,
    )
    lines = (run_dir / "stats.jsonl").read_text().splitlines()
    trained = json.loads(lines[-1])["kimg"] if lines else 0.0
    flat = {f"{name}/{q}" if q else name: v for name, qs in scores.items() for q, v in qs.items()}
    return {"trained_kimg": trained, **flat}


def _fmt(result: dict[str, Any], key: str, fmt: str, scale: float = 1.0) -> str:
    value = result.get(key)
    return "" if value is None else format(value * scale, fmt)


def build_table(results: list[dict[str, Any]]) -> str:
    rows = [
        [
            r["recipe"] + (f" ({r['diverged']})" if "diverged" in r else ""),
            f"{r.get('trained_kimg', float('nan')):.1f}",
            _fmt(r, "clf-fid", ".2f"),
            _fmt(r, "clf-kid", ".4f"),
            _fmt(r, "parzen", ".0f") + (f" +- {r['parzen/std_err']:.0f}" if "parzen" in r else ""),
            _fmt(r, "class-acc", ".2f", 100),
        ]
        for r in results
    ]
    rows.append(["GAN paper (MLP, MNIST)", "", "", "", PAPER_PARZEN, ""])
    header = ["recipe", "kimg trained", "clf-FID", "clf-KID", "Parzen LL", "class acc %"]
    return markdown_table(header, rows)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument(
        "--recipes",
        default=",".join(RECIPES),
        help="comma list of recipes; RECIPE+MODEL trains another model (e.g. cgan+dcgan)",
    )
    p.add_argument("--minutes", type=positive_float, default=10.0, help="training time per recipe")
    p.add_argument(
        "--num", type=positive_int, default=None, help="samples per metric (default: 10,000)"
    )
    p.add_argument("--seed", type=int, default=0)
    add_common_arguments(p)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> str:
    args = parse_args(argv)
    recipes = method_list(args.recipes)  # a typo fails here, before the classifier trains
    ensure_classifier(args.data_root, quick=args.quick)
    jobs = [
        {
            "recipe": recipe,
            "seed": args.seed,
            "kimg": 0.2 if args.quick else 1e9,  # the time budget ends the full runs
            "minutes": None if args.quick else args.minutes,
            "num": 200 if args.quick else args.num,
            "quick": args.quick,
            "data_root": args.data_root,
            "device": args.device,
            "amp": args.amp,
            "out": str(args.workdir / "mnist_quality" / recipe),
        }
        for recipe in recipes
    ]
    results = run_jobs(run_one, jobs, args.jobs)
    write_json(args.json, results)
    budget = "quick" if args.quick else f"{args.minutes:g} CPU minutes per recipe"
    report = build_table(results)
    print(
        "\n" + provenance(sys.argv, args.jobs, args.device) + f"\n- budget: {budget}\n\n" + report
    )
    return report


if __name__ == "__main__":
    main()
