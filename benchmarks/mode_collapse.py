"""Mode collapse on 2-D Gaussian mixtures, the VEEGAN/PacGAN protocol (issue 4, experiment 1).

For each recipe, dataset (ring8, grid25) and seed: train the MLP G and D of the PacGAN setup
(G: 4 x 400 ReLU + batch norm, z of 2; D: 3 x 200 maxout with 5 pieces; minibatch 100; `--nets
gankit` trains gankit's default 2-D nets instead, G 8 x 128 and D 3 x 128 maxout) and score
2,500 samples of G: modes covered (a mode is covered by at least one sample within 3 sigma of it),
the fraction of such high-quality samples, and the reverse KL of the covered-mode histogram to
uniform. The table gives mean +- standard deviation over seeds next to the published rows.
`gan+pack4` is the gan recipe with PacGAN's packed D (4 samples per D input) and, as in PacGAN's
code, a minibatch of 100 packed samples (400 points); `--batch 100` keeps 100 points per step.

    python benchmarks/mode_collapse.py                  # full: 5 methods x 2 datasets x 5 seeds
    python benchmarks/mode_collapse.py --quick          # seconds: the pipeline and the table
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from experiments import (
    Job,
    add_common_arguments,
    comma_list,
    evaluate_run,
    markdown_table,
    mean_std,
    method_list,
    parse_method,
    parse_recipe_args,
    positive_float,
    positive_int,
    provenance,
    recipe_budget_kimg,
    run_jobs,
    train_run,
    write_json,
)

DATASETS = ("ring8", "grid25")
POINT_BATCH = 100  # PacGAN's minibatch on the 2-D mixtures
#: Which G and D widths a run trains (the protocol's, PacGAN's code, or `gankit train`'s
#: defaults) -> what the run folder's name says of them.
NET_SUFFIX = {"pacgan": "", "gankit": "-gankit-nets"}
#: Methods: a recipe, or a recipe whose D is packed (PacGAN, arXiv:1712.04086) with `+packM`.
RECIPES = ("gan", "wgan-gp", "sngan", "lsgan", "gan+pack4")

#: Published rows: (source, method) -> {dataset: (modes, high-quality %)}.
PUBLISHED = {
    ("VEEGAN paper", "GAN"): {"ring8": (1.0, 99.3), "grid25": (3.3, 0.5)},
    ("VEEGAN paper", "VEEGAN"): {"ring8": (8.0, 52.9), "grid25": (24.6, 40.0)},
    ("PacGAN paper", "GAN"): {"ring8": (6.3, 98.2), "grid25": (17.3, 94.8)},
    ("PacGAN paper", "PacGAN4"): {"ring8": (7.8, 95.9), "grid25": (24.8, 93.6)},
}


def run_one(job: Job) -> dict[str, Any]:
    """Train one recipe on one mixture and score 2,500 samples of its G."""
    from gankit.models.mlp import PACGAN_POINT_WIDTHS

    recipe, model, arch = parse_method(job["recipe"])
    if job.get("nets", "pacgan") == "pacgan":
        arch = {**{k: list(v) for k, v in PACGAN_POINT_WIDTHS.items()}, **arch}
    # PacGAN's minibatch is 100 packed samples: m x 100 points per step for packing degree m.
    batch = job["batch"] or POINT_BATCH * arch.get("pack", 1)
    run_dir = train_run(
        recipe,
        job["data"],
        Path(job["out"]),
        seed=job["seed"],
        device=job["device"],
        amp=job["amp"],
        kimg=job["kimg"],
        model=model,
        arch=arch,
        recipe_args=job["recipe_args"],
        batch=batch,
    )
    scores = evaluate_run(
        run_dir, "modes", None, device=job["device"], data=job["data"], seed=job["seed"]
    )["modes"]
    return {
        "modes": scores["covered"],
        "high_quality": scores["high_quality"],
        "reverse_kl": scores["reverse_kl"],
    }


def batch_note(result: dict[str, Any]) -> str:
    """', batch 100' where --batch replaced PacGAN's minibatch, ', gankit nets' where --nets
    replaced PacGAN's widths, ', bf16' for mixed precision."""
    batch = f", batch {result['batch']}" if result.get("batch") else ""
    nets = ", gankit nets" if result.get("nets") == "gankit" else ""
    return batch + nets + (f", {result['amp']}" if result.get("amp", "none") != "none" else "")


def build_table(
    results: list[dict[str, Any]], recipes: list[str], datasets: Sequence[str] = DATASETS
) -> str:
    rows = []
    for data in datasets:
        for recipe in recipes:
            mine = [
                r
                for r in results
                if r["recipe"] == recipe and r["data"] == data and "diverged" not in r
            ]
            if not mine:
                continue
            rows.append(
                [
                    data,
                    f"gankit {recipe} ({len(mine)} seed{'s' * (len(mine) != 1)}, {mine[0]['kimg']:g} kimg{batch_note(mine[0])})",
                    mean_std([r["modes"] for r in mine]),
                    mean_std([r["high_quality"] for r in mine], scale=100),
                    mean_std([r["reverse_kl"] for r in mine], digits=3),
                    mean_std([r["seconds"] for r in mine], digits=0),
                ]
            )
        for (source, method), values in PUBLISHED.items():
            modes, hq = values[data]
            rows.append([data, f"{method} ({source})", f"{modes:g}", f"{hq:g}", "", ""])
    header = ["data", "method", "modes", "high-quality %", "reverse KL", "s/run"]
    return markdown_table(header, rows)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument(
        "--recipes",
        default=",".join(RECIPES),
        help="comma list of recipes; RECIPE+packM packs M samples into D (PacGAN)",
    )
    p.add_argument(
        "--seeds", type=positive_int, default=5, help="seeds per recipe and dataset (default 5)"
    )
    p.add_argument(
        "--first-seed",
        type=int,
        default=0,
        help="seeds run from this one (default 0): extends an earlier run's seeds",
    )
    p.add_argument(
        "--kimg",
        type=positive_float,
        default=None,
        help="budget per run (default: each mixture's training budget, `gankit train` without --kimg)",
    )
    p.add_argument(
        "--batch",
        type=positive_int,
        default=None,
        help="points per step for every method (default: PacGAN's 100 D inputs, so 100 x M\n"
        "points for RECIPE+packM; --batch 100 packs 100 points into 100/M inputs instead, which\n"
        "keeps the number of steps of the unpacked recipe at the same kimg)",
    )
    p.add_argument(
        "--nets",
        choices=list(NET_SUFFIX),
        default="pacgan",
        help="the G and D widths: pacgan (default), the protocol's G 4 x 400 and D 3 x 200 maxout;\n"
        "gankit, `gankit train`'s 2-D default, G 8 x 128 and D 3 x 128 maxout (half the time or less on one core)",
    )
    p.add_argument(
        "--recipe-arg",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a recipe argument for every method, e.g. lr_rampdown=0 for PacGAN's constant rate (repeatable)",
    )
    p.add_argument(
        "--datasets",
        default=",".join(DATASETS),
        help="comma list of mixtures to run (default: ring8,grid25)",
    )
    add_common_arguments(p)
    args = p.parse_args(argv)
    args.datasets = comma_list(args.datasets)
    unknown = sorted(set(args.datasets) - set(DATASETS))
    if unknown or not args.datasets:
        what = f"unknown {unknown}" if unknown else "no mixture given"
        p.error(f"--datasets: {what}; choose from {', '.join(DATASETS)}")
    for method in comma_list(args.recipes) if args.batch else []:
        pack = parse_method(method)[2].get("pack", 1)
        if args.batch % pack:
            p.error(
                f"--batch {args.batch}: {method} packs {pack} points per D input; use a multiple of {pack}"
            )
    return args


def main(argv: list[str] | None = None) -> str:
    args = parse_args(argv)
    recipes = method_list(args.recipes)
    seeds = 1 if args.quick else args.seeds
    kimg = 0.3 if args.quick else args.kimg  # None: each mixture's own budget
    jobs = [
        {
            "recipe": recipe,
            "data": data,
            "seed": seed,
            "kimg": kimg or recipe_budget_kimg(recipe, data),
            "batch": args.batch,
            "nets": args.nets,
            "device": args.device,
            "amp": args.amp,
            "recipe_args": parse_recipe_args(args.recipe_arg),
            "out": str(
                args.workdir
                / "mode_collapse"
                / f"{data}-{recipe}{NET_SUFFIX[args.nets]}-seed{seed}"
            ),
        }
        for data in args.datasets
        for recipe in recipes
        for seed in range(args.first_seed, args.first_seed + seeds)
    ]
    results = run_jobs(run_one, jobs, args.jobs)
    write_json(args.json, results)
    report = build_table(results, recipes, args.datasets)
    extra = ", ".join(args.recipe_arg) or "none (the presets' values)"
    print(
        "\n"
        + provenance(sys.argv, args.jobs, args.device)
        + f"\n- recipe args: {extra}\n\n"
        + report
    )
    return report


if __name__ == "__main__":
    main()
