"""Stacked MNIST mode counting with DCGAN-style G and D (issue 4, experiment 2).

Stacked MNIST puts three MNIST digits in the R, G and B channels: 1,000 modes. Each recipe trains
the `dcgan` model (28x28, the paper's architecture rules) for the same budget, then 26,000
samples are classified channel by channel with gankit's MNIST classifier: modes covered (out of
1,000) and the KL divergence of the mode histogram to uniform, next to the published rows.

    python benchmarks/stacked_mnist.py --data-root ../shared/data --recipes dcgan+pack2   # 3,000 kimg
    python benchmarks/stacked_mnist.py --data-root ../shared/data --minutes 20
    python benchmarks/stacked_mnist.py --data-root ../shared/data --recipes dcgan+pack2 --seeds 5 --jobs 5 --device cuda
    python benchmarks/stacked_mnist.py --data-root ../shared/data --quick

A 3,000-kimg run takes about an hour on one CPU core; `--first-seed 2 --seeds 3` adds seeds 2-4
to an earlier run's 0 and 1. Stopped (Ctrl-C, a lost machine), the same command
continues every run from its last checkpoint (every 200 kimg) in --workdir.
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
    mean_std,
    method_list,
    parse_method,
    positive_float,
    positive_int,
    provenance,
    recipe_budget_kimg,
    run_jobs,
    train_run,
    write_json,
)

#: Methods: a recipe, or a recipe whose D is packed (PacDCGAN, arXiv:1712.04086) with `+packM`.
RECIPES = ("dcgan", "dcgan+pack2")

#: Published rows: (method, source) -> (modes, KL).
PUBLISHED = {
    ("DCGAN", "VEEGAN paper"): (99, 3.4),
    ("PacDCGAN2", "PacGAN paper"): (1000, 0.06),
}


def run_one(job: Job) -> dict[str, Any]:
    """Train one recipe on Stacked MNIST for a time budget; count modes on 26,000 samples."""
    recipe, model, arch = parse_method(job["recipe"])
    run_dir = train_run(
        recipe,
        "stacked-mnist",
        Path(job["out"]),
        seed=job["seed"],
        device=job["device"],
        amp=job["amp"],
        kimg=job["kimg"],
        minutes=job["minutes"],
        data_root=job["data_root"],
        model=model,
        arch=arch,
    )
    scores = evaluate_run(
        run_dir,
        "modes",
        job["num"],
        data="stacked-mnist",
        data_root=job["data_root"],
        seed=job["seed"],
        device=job["device"],
    )["modes"]
    lines = (run_dir / "stats.jsonl").read_text().splitlines()
    trained = json.loads(lines[-1])["kimg"] if lines else 0.0
    return {"modes": scores["covered"], "kl": scores["kl"], "trained_kimg": trained}


def build_table(results: list[dict[str, Any]]) -> str:
    rows = []
    for recipe in dict.fromkeys(r["recipe"] for r in results):
        mine = [r for r in results if r["recipe"] == recipe and "diverged" not in r]
        if not mine:
            rows.append([f"gankit {recipe}: diverged", "", ""])
            continue
        rows.append(
            [
                f"gankit {recipe} ({len(mine)} seed(s), {mean_std([r['trained_kimg'] for r in mine], 0)} kimg)",
                mean_std([r["modes"] for r in mine]),
                mean_std([r["kl"] for r in mine], digits=2),
            ]
        )
    for (method, source), (modes, kl) in PUBLISHED.items():
        rows.append([f"{method} ({source})", f"{modes:g}", f"{kl:g}"])
    return markdown_table(["method", "modes (of 1000)", "KL to uniform"], rows)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument(
        "--recipes",
        default=",".join(RECIPES),
        help="comma list of recipes; RECIPE+packM packs M images into D (PacDCGAN), RECIPE+MODEL swaps the model",
    )
    p.add_argument("--seeds", type=positive_int, default=1, help="seeds per recipe (default 1)")
    p.add_argument(
        "--first-seed",
        type=int,
        default=0,
        help="seeds run from this one (default 0): extends an earlier run's seeds",
    )
    budget = p.add_mutually_exclusive_group()
    budget.add_argument(
        "--kimg",
        type=positive_float,
        default=None,
        help="thousand real images per run (default: the recipe's stacked-mnist budget, "
        "3,000 kimg for the DCGAN recipes: about 1 h on one CPU core); the same on any machine",
    )
    budget.add_argument(
        "--minutes", type=positive_float, default=None, help="a time budget per run instead"
    )
    p.add_argument(
        "--num", type=positive_int, default=26000, help="samples to classify (default 26,000)"
    )
    add_common_arguments(p)
    return p.parse_args(argv)


def budget_of(args: argparse.Namespace, method: str) -> tuple[float, float | None]:
    """(kimg, minutes) of one run: --minutes (kimg unbounded), else --kimg, else the budget
    `gankit train` gives the method's recipe on stacked-mnist."""
    if args.quick:
        return 0.256, None
    if args.minutes is not None:
        return 1e9, args.minutes  # the time budget ends the run
    return args.kimg or recipe_budget_kimg(method, "stacked-mnist"), None


def seeds_of(args: argparse.Namespace) -> range:
    """The seeds each recipe trains: --seeds of them from --first-seed (one under --quick)."""
    return range(args.first_seed, args.first_seed + (1 if args.quick else args.seeds))


def budget_label(args: argparse.Namespace, budgets: list[tuple[float, float | None]]) -> str:
    """The table's budget line: quick, minutes or kimg per run."""
    if args.quick:
        return "quick"
    if args.minutes is not None:
        return f"{args.minutes:g} minutes per run"
    return ", ".join(sorted({f"{kimg:g} kimg per run" for kimg, _ in budgets}))


def main(argv: list[str] | None = None) -> str:
    args = parse_args(argv)
    recipes = method_list(args.recipes)  # a typo fails here, before the classifier trains
    ensure_classifier(args.data_root, quick=args.quick)
    budgets = {recipe: budget_of(args, recipe) for recipe in recipes}
    jobs = [
        {
            "recipe": recipe,
            "seed": seed,
            "kimg": budgets[recipe][0],
            "minutes": budgets[recipe][1],
            "num": 500 if args.quick else args.num,
            "data_root": args.data_root,
            "device": args.device,
            "amp": args.amp,
            "out": str(args.workdir / "stacked_mnist" / f"{recipe}-seed{seed}"),
        }
        for recipe in recipes
        for seed in seeds_of(args)
    ]
    results = run_jobs(run_one, jobs, args.jobs)
    write_json(args.json, results)
    budget = budget_label(args, list(budgets.values()))
    report = build_table(results)
    print(
        "\n" + provenance(sys.argv, args.jobs, args.device) + f"\n- budget: {budget}\n\n" + report
    )
    return report


if __name__ == "__main__":
    main()
