"""The `gankit` command: train, generate, translate, style-mix, explore, project, video, plot,
evaluate, classifier, cache, list.

gankit train progan --data digits --kimg 300 --out runs/demo
gankit train configs/progan-celeba64.yaml --set train.batch_size=32
gankit train --resume runs/demo
gankit generate runs/demo --num 64 --seed 0 --out grid.png
gankit translate runs/h2z --direction a2b --input photos/ --out zebras/
gankit list
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gankit.errors import GankitError, RunStopped, os_error_text

TRAIN_EPILOG = """\
RECIPE_OR_CONFIG is a registered recipe name (see `gankit list`) or a YAML config file. Flags and
--set overrides are applied on top, in that order. Examples:

  gankit train progan --data digits --out runs/demo
  gankit train progan --data ~/faces --resolution 64 --kimg 2000 --out runs/faces
  gankit train configs/progan-celeba64.yaml --set train.batch_size=32 --set recipe.args.lr=0.0015
  gankit train --resume runs/faces                 # continue exactly where it stopped
  gankit train --resume runs/faces --kimg 4000     # ... and train longer (default ticks,
                                                   # samples and snapshots re-spaced for 4000)
  torchrun --nproc_per_node 4 -m gankit train progan --data ~/faces --out runs/faces4

DATA is a built-in (digits, mnist, fashion-mnist, cifar10, stacked-mnist; files are read from
--data-root or $GANKIT_DATA_ROOT; the 2-D mixtures ring8 and grid25 need no files; `gankit list`
describes each) or a folder / .zip of images (jpg, png, webp, bmp; any size; center-cropped and
resized with an antialiasing filter). A folder / .zip with trainA/ and trainB/ (optionally testA/,
testB/) is unpaired A/B data for `gankit train cyclegan`. The run directory gets config.yaml, log.txt, stats.jsonl,
samples/ (grids, progress.gif), plots/losses.png and checkpoints/.

Ctrl-C or SIGTERM finishes the iteration, writes a checkpoint and exits 130 (143 for SIGTERM);
a second one stops at once (exit 130; the last complete checkpoint stands). `kill -USR1 PID` stops
like a first Ctrl-C, exits 0 and never aborts (e.g. SLURM's `--signal=USR1@120` before a time
limit). One training at a time per run directory: a second is refused, naming the first's PID.

On --resume you may change train.* (--kimg, intervals, --metrics, --device, --threads, --amp,
...), recipe.args.* (e.g. the learning rate) and data.root/--workers; model.*, --model, --data,
--resolution and --channels are fixed by the checkpoints (a change is refused, nothing written).
Errors are one line; --debug (before or after the command) shows the Python traceback.
"""


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `gankit` command; returns the exit status.

    Every error reaches the user as one `gankit COMMAND: error: ...` line; `--debug` (or
    GANKIT_DEBUG=1) shows the Python traceback instead.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "handler"):
        parser.print_help()
        return 2
    debug = args.debug or os.environ.get("GANKIT_DEBUG", "") not in ("", "0")
    try:
        return args.handler(args) or 0
    except RunStopped as stop:
        print(f"gankit {args.command}: {stop}", file=sys.stderr)
        return stop.exit_code
    except BrokenPipeError:  # `gankit list | head`: the reader left, nothing went wrong here
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115  (Python flushes stdout at exit)
        return 0
    except Exception as err:
        if debug:
            raise
        print(f"gankit {args.command}: error: {describe_error(err)}", file=sys.stderr)
        explained = isinstance(err, (GankitError, OSError))
        return getattr(err, "exit_code", 2 if explained else 1)
    except KeyboardInterrupt:
        if debug:
            raise
        print(f"gankit {args.command}: interrupted", file=sys.stderr)
        return 130


def describe_error(err: BaseException) -> str:
    """One line for an exception: gankit's own text, plain words for OS errors (disk full,
    permissions, a file where a folder is needed), else the type and message of a bug."""
    if isinstance(err, GankitError):
        return str(err)
    if isinstance(err, OSError):
        return os_error_text(err)
    text = str(err).strip().splitlines()[0] if str(err).strip() else ""
    return (
        f"unexpected {type(err).__name__}: {text} (rerun with --debug for the traceback, and "
        "please report it)"
    )


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("gankit")
    except PackageNotFoundError:  # run from a source tree that was not installed
        return "(not installed)"


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="gankit",
        description="Train, sample and evaluate GANs (StyleGAN2, StyleGAN, ProGAN, DCGAN, WGAN-GP, SN-GAN, ...) in "
        "pure PyTorch.",
    )
    parser.add_argument("--version", action="version", version=f"gankit {_version()}")
    parser.add_argument(
        "--debug",
        action="store_true",
        help="show Python tracebacks instead of one-line errors (also GANKIT_DEBUG=1)",
    )
    sub = parser.add_subparsers(title="commands", dest="command", metavar="COMMAND")
    _add_train(sub)
    _add_generate(sub)
    _add_translate(sub)
    _add_style_mix(sub)
    _add_explore(sub)
    _add_project(sub)
    _add_video(sub)
    _add_plot(sub)
    _add_evaluate(sub)
    _add_cache(sub)
    _add_classifier(sub)
    _add_list(sub)
    for command in sub.choices.values():  # `gankit train ... --debug` works as well
        command.add_argument(
            "--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS
        )
    return parser


# --------------------------------------------------------------------------------------- train


def _add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train a GAN",
        description="Train a GAN recipe on a dataset.",
        epilog=TRAIN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "recipe_or_config", nargs="?", help="recipe name (e.g. progan) or a YAML config file"
    )
    p.add_argument(
        "--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR from its newest checkpoint"
    )
    p.add_argument("--dry-run", action="store_true", help="print the resolved config and exit")
    g = p.add_argument_group("data")
    g.add_argument(
        "--data", metavar="NAME_OR_PATH", help="built-in dataset name, or folder/zip of images"
    )
    g.add_argument(
        "--data-root",
        metavar="DIR",
        help="where built-in datasets are read (default $GANKIT_DATA_ROOT or ~/.cache/gankit/data)",
    )
    g.add_argument("--resolution", type=int, help="training resolution (default: the data's own)")
    g.add_argument(
        "--channels",
        type=int,
        choices=(1, 3),
        help="1 = grayscale, 3 = RGB (default: the data's own)",
    )
    g.add_argument(
        "--skip-bad-images",
        action="store_true",
        help="leave out unreadable images and images smaller than the resolution, naming them "
        "in one line, instead of failing",
    )
    g.add_argument("--mirror", action="store_true", help="random horizontal flips of the reals")
    g.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="data-loading worker processes (default 0: images are pre-decoded into memory/mmap, so the main process is fastest)",
    )
    g = p.add_argument_group("training")
    g.add_argument("--model", metavar="NAME", help="model name (default: the recipe's)")
    g.add_argument(
        "--kimg",
        type=float,
        help="train until this many thousand real images were shown (default: the recipe's)",
    )
    g.add_argument(
        "--batch", type=int, metavar="N", help="global minibatch size (default: the recipe's)"
    )
    g.add_argument(
        "--batch-gpu",
        type=int,
        metavar="N",
        help="images per forward pass on each device: a larger batch runs in rounds whose "
        "gradients add up to the whole batch's (gradient accumulation; default: all at once)",
    )
    g.add_argument(
        "--max-minutes",
        type=float,
        metavar="M",
        help="stop after M minutes of training, with a snapshot (resume later with --resume)",
    )
    g.add_argument("--out", metavar="RUN_DIR", help="run directory (default runs/<recipe>)")
    g.add_argument("--seed", type=int, help="random seed (default 0)")
    g.add_argument("--ema-kimg", type=float, help="G_ema half-life in kimg (default: the recipe's)")
    g.add_argument(
        "--ema-rampup",
        type=float,
        metavar="R",
        help="G_ema's half-life is at most R x the images shown, so a short run's samples show "
        "what G learned (StyleGAN2-ADA's ema_rampup; default 0.05, 0 = off)",
    )
    g.add_argument(
        "--tick-kimg",
        type=float,
        help="log interval in kimg (default: 1/100 of the run, <= 100, at least one batch)",
    )
    g.add_argument(
        "--sample-kimg",
        type=float,
        help="sample-grid interval in kimg (default: 1/10 of the run, <= 500, at least one batch)",
    )
    g.add_argument(
        "--snapshot-kimg",
        type=float,
        help="checkpoint interval in kimg (default: 1/4 of the run, <= 1000, at least one batch)",
    )
    g.add_argument(
        "--metrics",
        metavar="NAMES",
        help="metrics of G_ema during training, e.g. swd16k,fid50k (see `gankit evaluate --help`)",
    )
    g.add_argument(
        "--metrics-kimg",
        type=float,
        help="metric interval in kimg (default: the snapshot interval)",
    )
    g = p.add_argument_group("speed")
    g.add_argument("--device", help="auto (default), cpu, cuda or cuda:N")
    g.add_argument(
        "--threads",
        type=int,
        metavar="N",
        help="torch's CPU threads (default: one per core). Give 1 when other work keeps the cores "
        "busy: threads that wait for each other on a busy core slow training down many times",
    )
    g.add_argument("--amp", choices=("none", "bf16", "fp16"), help="mixed precision (default none)")
    g.add_argument(
        "--channels-last", action="store_true", default=None, help="channels-last memory format"
    )
    g.add_argument("--compile", action="store_true", default=None, help="torch.compile G and D")
    g.add_argument(
        "--no-progress",
        action="store_true",
        help="no progress bar (none is drawn when the output is not a terminal); ticks still print",
    )
    _add_augmentation_flags(p)
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override any config key, e.g. --set recipe.args.fade_kimg=300 or "
        "--set recipe.args.lr=3e-4; VALUE is YAML (repeatable)",
    )
    p.set_defaults(handler=_cmd_train)


def _add_augmentation_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group(
        "stylegan2 and stylegan: labels, and (stylegan2) the augmentation of what D sees "
        "(StyleGAN2-ADA's train.py names)",
        "Each flag sets the recipe argument of its name (recipe.args.cond, .aug, .p, .target, "
        ".augpipe); a recipe without it refuses the flag.",
    )
    g.add_argument(
        "--cond",
        action="store_true",
        default=None,
        help="train on the data's class labels (a conditional G and a projection D); "
        "`gankit generate --class K` then picks the class",
    )
    g.add_argument(
        "--aug",
        choices=_AUG_MODES,
        help="ada (default): the augmentation probability p adapts to D's overfitting; fixed: "
        "a constant p; noaug: none; diffaug: DiffAugment (color, translation, cutout)",
    )
    g.add_argument(
        "--p",
        type=float,
        metavar="P",
        help="augmentation probability in [0, 1]: constant with --aug fixed, ADA's starting "
        "value with --aug ada (default 0)",
    )
    g.add_argument(
        "--target",
        type=float,
        metavar="T",
        help="ADA's target for E[sign(D(real))] in [0, 1]: p rises while D's outputs on the "
        "reals are more often positive (default 0.6)",
    )
    g.add_argument(
        "--augpipe",
        metavar="NAME",
        help="which transformations ADA's pipe applies: blit, geom, color, filter, noise, "
        "cutout, bg, bgc (default), bgcf, bgcfn or bgcfnc",
    )


#: The official --aug modes (the recipe checks them again, with the other arguments).
_AUG_MODES = ("ada", "noaug", "fixed", "diffaug")
#: Flags that set a recipe argument only some recipes have (D's augmentation): flag -> argument.
_RECIPE_ARG_FLAGS = {
    "cond": "cond", "aug": "aug", "p": "p", "target": "target", "augpipe": "augpipe"
}  # fmt: skip

#: CLI flag -> dotted config key.
_TRAIN_FLAGS = {
    "data": "data.name",
    "data_root": "data.root",
    "resolution": "data.resolution",
    "channels": "data.channels",
    "workers": "data.workers",
    "model": "model.name",
    "kimg": "train.kimg",
    "batch": "train.batch_size",
    "batch_gpu": "train.batch_gpu",
    "out": "train.out",
    "seed": "train.seed",
    "ema_kimg": "train.ema_kimg",
    "ema_rampup": "train.ema_rampup",
    "tick_kimg": "train.tick_kimg",
    "sample_kimg": "train.sample_kimg",
    "snapshot_kimg": "train.snapshot_kimg",
    "metrics_kimg": "train.metrics_kimg",
    "max_minutes": "train.max_minutes",
    "device": "train.device",
    "threads": "train.threads",
    "amp": "train.amp",
    "channels_last": "train.channels_last",
    "compile": "train.compile",
    **{flag: f"recipe.args.{arg}" for flag, arg in _RECIPE_ARG_FLAGS.items()},
}
_TRAIN_SWITCHES = {"skip_bad_images": "data.skip_bad_images", "mirror": "data.mirror"}


def _flag_overrides(args: argparse.Namespace) -> dict[str, Any]:
    from gankit.config import set_dotted

    out: dict[str, Any] = {}
    for flag, key in _TRAIN_FLAGS.items():
        if getattr(args, flag) is not None:
            set_dotted(out, key.split("."), getattr(args, flag))
    for flag, key in _TRAIN_SWITCHES.items():
        if getattr(args, flag):
            set_dotted(out, key.split("."), True)
    if args.no_progress:
        set_dotted(out, ["train", "progress"], False)
    if args.metrics:
        set_dotted(
            out, ["train", "metrics"], [m.strip() for m in args.metrics.split(",") if m.strip()]
        )
    return out


def _cmd_train(args: argparse.Namespace) -> int:
    from gankit.config import ConfigError, apply_override, config_from_dict, merge
    from gankit.train.resume import load_run_config, merge_overrides

    overrides = _flag_overrides(args)
    for assignment in args.overrides:
        apply_override(overrides, assignment)
    if args.resume:
        if args.recipe_or_config:
            raise ConfigError("give either a recipe/config or --resume RUN_DIR, not both")
        run_dir = Path(args.resume)
        overrides = merge(overrides, {"train": {"out": str(run_dir)}})
        config = load_run_config(run_dir, overrides)
        _check_recipe_flags(args, config.recipe.name)
        return _run_and_report(config, resume=True, dry_run=args.dry_run)
    if not args.recipe_or_config:
        raise ConfigError(
            "name a recipe (e.g. `gankit train progan`) or a YAML config, or use --resume RUN_DIR"
        )
    config = config_from_dict(merge_overrides(_base_config(args.recipe_or_config), overrides))
    _check_recipe_flags(args, config.recipe.name)
    return _run_and_report(config, resume=False, dry_run=args.dry_run)


_FLAG_OWNERS = {"cond": "--cond is an option of stylegan2 and stylegan"}


def _check_recipe_flags(args: argparse.Namespace, recipe: str) -> None:
    """Refuse a flag that sets a recipe argument `recipe` does not take, naming both (rather
    than the unknown recipe.args key the flag became)."""
    from gankit.config import ConfigError, keyword_parameters
    from gankit.registry import RECIPES
    from gankit.train.run import RECIPE_FIXED_ARGS

    known = keyword_parameters(RECIPES.get(recipe), RECIPE_FIXED_ARGS)
    for flag, arg in _RECIPE_ARG_FLAGS.items():
        if getattr(args, flag) is not None and arg not in known:
            raise ConfigError(
                f"--{flag} sets recipe.args.{arg}, which recipe "
                f"{recipe} does not have: {_FLAG_OWNERS.get(flag, 'it is a stylegan2 option')}; "
                f"drop --{flag} or train a recipe that has it"
            )


def _run_and_report(config: Any, *, resume: bool, dry_run: bool) -> int:
    """Train; a stop by Ctrl-C (SIGTERM) after its snapshot exits 130 (143), an abort by a
    second Ctrl-C exits 130 naming the checkpoint that stands, so scripts can tell both apart
    from a finished run."""
    import signal

    from gankit.train import checkpoint as ckpt
    from gankit.train.run import run_training

    run_dir = Path(config.train.out)
    try:
        outcome = run_training(config, resume=resume, dry_run=dry_run)
    except KeyboardInterrupt:
        kept = ckpt.list_checkpoints(run_dir / "checkpoints")
        stands = (
            f"the last good checkpoint, {kept[-1]}, stands" if kept else "no checkpoint was written"
        )
        raise RunStopped(f"aborted; {stands}", 128 + signal.SIGINT) from None
    if outcome.stop_signal is None:
        return 0
    name = "Ctrl-C" if outcome.stop_signal == signal.SIGINT else "SIGTERM"
    raise RunStopped(
        f"stopped by {name} at {outcome.cur_nimg / 1000:g} kimg after writing a snapshot; "
        f"continue with `gankit train --resume {run_dir}`",
        128 + outcome.stop_signal,
    )


def _base_config(recipe_or_config: str) -> dict[str, Any]:
    from gankit.config import load_yaml
    from gankit.registry import RECIPES

    if recipe_or_config.endswith((".yaml", ".yml")) or Path(recipe_or_config).is_file():
        return load_yaml(recipe_or_config)
    RECIPES.get(recipe_or_config)  # unknown names raise with suggestions
    return {
        "recipe": {"name": recipe_or_config},
        "model": {"name": "auto"},  # the recipe's default for the data, chosen when it is open
        "train": {"out": f"runs/{recipe_or_config}"},
    }


# --------------------------------------------------------------------------------------- generate


GENERATE_EPILOG = """\
--out grid.png writes a grid; --out DIR/ one PNG per image; --out samples.npy the raw uint8 array
[N, C, H, W]. Latents are drawn on the CPU from --seed, so a seed gives the same samples on any
device.

Conditional runs: --class K makes every sample class K. Without it, sample i has class
i mod C (C classes), so labels are balanced; a grid then has one row per class (row k = class k,
ceil(num / C) columns, the last column partly empty unless --num is a multiple of C), or, with
--num <= C, classes 0..num-1 in reading order. samples.npy gets samples.labels.npy (int64 [N])
beside it and DIR/ a labels.csv.

2-D point runs (ring8, grid25): --out points.npy writes float32 [N, 2]; --out points.png a scatter
over the true mixture's modes and 3-sigma circles.

  gankit generate runs/demo --num 64 --seed 1 --out digits.png
  gankit generate runs/cgan-mnist --class 7 --num 16 --out sevens.png
  gankit generate runs/gan-ring8 --num 2500 --out ring.png

StyleGAN2 and StyleGAN runs: sample i has the official generate.py latent of seed --seed + i
(np.random.RandomState(seed).randn), so --seed 600 --num 6 gives the official --seeds=600-605;
other families draw all latents from one generator seeded with --seed. --trunc PSI pulls every w
towards w_avg (1: none; 0: every seed gives the same image), --trunc-cutoff N only the first N
ws (StyleGAN runs default to the official 0.7 on the first 8; --trunc 1 turns it off);
--noise-mode const (default, as the official tools), random or none. These options are an
error on a generator without a mapping network.

  gankit generate runs/sg2-faces --seed 600 --num 6 --trunc 0.7 --out faces/

--seeds 3,17,40-43 draws one sample per seed: sample k is sample 0 of --seed SEEDS[k] --num 1
for any family (random noise is seeded per seed), so a chosen set of seeds (the grid of
`gankit explore`) is one command. --ws FILE.npy renders saved StyleGAN2/StyleGAN latents, e.g.
`gankit project`'s projected_w.npy (float32 [num_ws, w_dim], or [N, num_ws, w_dim]), through the
synthesis network; --trunc/--trunc-cutoff pull them towards w_avg as they do seeds' ws (no
truncation unless given), --noise-mode as for seeds.

Progressive runs (ProGAN, StyleGAN) render at the stage the checkpoint reached; --stage RES or
RES:ALPHA renders an earlier one (a resolution it has trained, alpha 0..1 of its fade-in; alone,
RES is fully faded in, or the checkpoint's alpha at its own resolution).

  gankit generate runs/sg2-faces --seeds 85,100,75 --trunc 0.7 --out picked.png
  gankit generate runs/sg2-faces --ws proj/me/projected_w.npy --trunc 0.8 --out me.png
  gankit generate runs/progan-faces --stage 16:0.5 --num 16 --out half-faded-16px.png
"""


def _add_generate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "generate",
        help="sample images (or 2-D points) from a trained G_ema",
        description="Sample from the G_ema of a run directory (newest checkpoint) or a checkpoint file.",
        epilog=GENERATE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("target", metavar="RUN_DIR_OR_CHECKPOINT")
    p.add_argument(
        "--num",
        type=int,
        help="number of samples (default 64 images, or 2,500 points for a 2-D point run)",
    )
    p.add_argument("--seed", type=int, help="latent seed (default 0)")
    p.add_argument(
        "--seeds",
        metavar="LIST",
        help="one sample per seed: a list 3,17,40 or a range 600-605 (instead of --seed/--num)",
    )
    p.add_argument(
        "--ws",
        metavar="FILE.npy",
        help="StyleGAN2/StyleGAN: render these saved ws (gankit project's projected_w.npy, "
        "[num_ws, w_dim] or [N, num_ws, w_dim]) instead of seeds",
    )
    p.add_argument(
        "--class",
        dest="class_index",
        type=int,
        metavar="K",
        help="conditional runs: every sample of class K (0 <= K < number of classes)",
    )
    _add_stage_option(p)
    p.add_argument(
        "--out", default="samples.png", help="grid.png, DIR/ or samples.npy (default samples.png)"
    )
    p.add_argument("--batch", type=int, default=64, help="samples per forward pass")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    _add_style_options(p)
    p.set_defaults(handler=_cmd_generate)


def _add_stage_option(p: argparse.ArgumentParser) -> None:
    """`--stage RES[:ALPHA]` of progressive runs, shared by `generate`, `style-mix` and `video`."""
    p.add_argument(
        "--stage",
        metavar="RES[:ALPHA]",
        help="ProGAN and StyleGAN runs: render this earlier stage of growing, e.g. 8 or 8:0.5 "
        "(default: the checkpoint's stage)",
    )


def _add_style_options(p: argparse.ArgumentParser) -> None:
    """StyleGAN2's truncation and noise flags, shared by `generate` and `style-mix`."""
    p.add_argument(
        "--trunc",
        dest="truncation_psi",
        type=float,
        metavar="PSI",
        help="StyleGAN2 and StyleGAN: truncation psi, w -> w_avg + PSI (w - w_avg) (default: "
        "StyleGAN2 1, none; StyleGAN 0.7 on the first 8 ws, the official default for pictures)",
    )
    p.add_argument(
        "--trunc-cutoff",
        dest="truncation_cutoff",
        type=int,
        metavar="N",
        help="StyleGAN2 and StyleGAN: truncate only the first N ws (default: all; StyleGAN 8)",
    )
    p.add_argument(
        "--noise-mode",
        choices=("const", "random", "none"),
        help="StyleGAN2 and StyleGAN: noise inputs (default const, as the official tools)",
    )


def _cmd_generate(args: argparse.Namespace) -> int:
    from gankit.generate import generate, labels_path, parse_stage, write_samples
    from gankit.stylemix import parse_seeds

    if args.num is not None and args.num < 1:
        raise GankitError(f"--num must be at least 1; got {args.num}")
    if args.batch < 1:
        raise GankitError(f"--batch must be at least 1; got {args.batch}")
    if args.seeds is not None and args.seed is not None:
        raise GankitError("--seed with --seeds: give the seeds as one or the other")
    samples = generate(
        args.target,
        num=args.num,
        seed=0 if args.seed is None else args.seed,
        seeds=None if args.seeds is None else parse_seeds(args.seeds, "--seeds"),
        ws=args.ws,
        batch=args.batch,
        device=args.device,
        class_index=args.class_index,
        truncation_psi=args.truncation_psi,
        truncation_cutoff=args.truncation_cutoff,
        noise_mode=args.noise_mode,
        stage=None if args.stage is None else parse_stage(args.stage),
    )
    path = write_samples(samples, args.out)
    num = len(samples)
    if samples.kind == "points":
        what = f"{num} points"
    else:
        what = f"{num} images ({samples.values.shape[2]}x{samples.values.shape[3]})"
    if samples.class_index is not None:
        what += f" of class {samples.class_index}"
    elif samples.labels is not None:
        what += f" of classes 0-{samples.c_dim - 1} (sample i has class i mod {samples.c_dim})"
    print(f"wrote {what} to {path}")
    if samples.labels is not None and path.suffix == ".npy":
        print(f"wrote their labels to {labels_path(path)}")
    return 0


# ------------------------------------------------------------------------------------ translate

TRANSLATE_EPILOG = """\
Translates images with one generator of a translation run (CycleGAN: `gankit train cyclegan`):
--direction a2b uses G_ab (domain A, the run's trainA/, to B), b2a uses G_ba (B to A), or its
moving average where the run keeps one. Only that generator is read from the checkpoint (the
run's newest, or --checkpoint). Errors are one line (exit status 2).

--input is one image file, a folder (searched recursively, sorted) or a .zip of images (jpg,
jpeg, png, webp, bmp). Each image is converted to the source domain's channels (greyscale or RGB;
transparency on white, palettes and 16-bit converted; EXIF orientation applied).

--out DIR/ writes one PNG per input, named after it (a.jpg -> DIR/a.png; subfolders of a folder
or zip kept), greyscale or RGB as the target domain; two inputs that would write the same name
(a.jpg, a.png) are refused before anything is written. --out x.png writes the one image of a
one-image input. --out x.npy writes one uint8 array [N, C, H, W] (the layout of gankit generate),
when all outputs have one size.

Size: each image is translated at its own size (reflect-padded to sides the generator takes,
e.g. a multiple of 4, then cropped back), or with --resolution R resized to R px wide (height in
proportion, bicubic; the official --preprocess scale_width) and output at that size.

--tile T translates an image larger than T x T in overlapping tiles of about T px (rounded down
to sides the generator takes; a quarter-tile overlap, blended with linear ramps) so that any
size fits in memory. The generators normalise each tile by its own statistics (instance norm),
so a tiled image differs slightly from a one-pass one; with T at least the image's size it is
the one-pass image. An image that runs out of memory in one pass is retried in 512 px tiles,
with a note.

  gankit translate runs/h2z --direction a2b --input photos/ --out zebras/
  gankit translate runs/h2z --direction b2a --input zebra.jpg --out horse.png
  gankit translate runs/h2z --direction a2b --input big.jpg --tile 1024 --out big/
  gankit translate runs/h2z --direction a2b --input photos.zip --resolution 256 --out z.npy
"""


def _add_translate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "translate",
        help="translate images with a CycleGAN run's G_ab or G_ba",
        description="Translate images from one domain to the other with a generator of a "
        "translation run directory (newest checkpoint) or checkpoint file.",
        epilog=TRANSLATE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("run", metavar="RUN_DIR_OR_CHECKPOINT")
    p.add_argument(
        "--direction", required=True, metavar="{a2b,b2a}",
        help="a2b: G_ab, domain A (trainA/) to B; b2a: G_ba, B to A",
    )  # fmt: skip
    p.add_argument(
        "--input", required=True, metavar="IMG|DIR|ZIP",
        help="an image, a folder of images (recursive) or a .zip of images",
    )  # fmt: skip
    p.add_argument(
        "--out", required=True, metavar="DIR/|IMG|NPY",
        help="a folder (one PNG per input), an image file (one input) or a .npy",
    )  # fmt: skip
    p.add_argument(
        "--checkpoint", metavar="PATH",
        help="this checkpoint (a file, or a name in RUN/checkpoints/) instead of the newest",
    )  # fmt: skip
    p.add_argument(
        "--resolution", type=int, metavar="R",
        help="resize each input to R px wide first, keeping its aspect ratio (default: own size)",
    )  # fmt: skip
    p.add_argument(
        "--tile", type=int, metavar="T",
        help="translate images larger than T x T in overlapping tiles (for large images)",
    )  # fmt: skip
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument(
        "--no-progress", action="store_true",
        help="no progress bar (none is drawn when the output is not a terminal)",
    )  # fmt: skip
    p.set_defaults(handler=_cmd_translate)


def _cmd_translate(args: argparse.Namespace) -> int:
    from gankit.translate import DIRECTIONS, translate

    result = translate(
        args.run,
        args.direction,
        args.input,
        args.out,
        checkpoint=args.checkpoint,
        resolution=args.resolution,
        tile=args.tile,
        device=args.device,
        progress=not args.no_progress,
    )
    name, source, target = DIRECTIONS[args.direction]
    images = f"{result.count} image{'s' if result.count != 1 else ''}"
    print(
        f"translated {images} from domain {source} to {target} with {name} of "
        f"{result.translator.checkpoint} into {result.path}"
    )
    return 0


# ------------------------------------------------------------------------------------ style-mix

STYLE_MIX_EPILOG = """\
Image (row i, column j) takes the style layers in --styles from column seed j and every other
layer from row seed i; the first row shows the column seeds' own images, the first column the row
seeds' (the corner is black). Seeds map to z as the official scripts do
(np.random.RandomState(seed).randn(z_dim)).

--styles: layer numbers as the official code numbers its ws (0-3 are the 4 and 8 px layers at any
resolution), as a range 0-6, a list 0,1,2, or the names coarse (4-8 px), middle (16-32 px) and fine
(64 px and up; on models of 32 px and less, every layer above the coarse ones); they combine,
e.g. coarse,5. Default: the official 0-6, cut to the model's layers.

--out mix.png writes the picture; --out DIR/ every image (ROW-COL.png, a seed's own image
SEED-SEED.png) and grid.png; --out mix.npy the uint8 array [R+1, K+1, C, H, W] laid out like the
picture (cell [0, 0] black).

--row-ws FILE.npy takes the rows from saved ws instead of seeds (gankit project's
projected_w.npy, [num_ws, w_dim], or [N, num_ws, w_dim] for N rows; truncated like the seeds'
ws; files name them w0, w1, ...). --stage renders an earlier stage of a StyleGAN run still
growing, as in `gankit generate`.

  gankit style-mix runs/sg2-faces --row-ws proj/me/projected_w.npy --cols 5,6 --styles coarse
  gankit style-mix runs/sg2-faces --rows 85,100,75 --cols 55,821,1789 --styles 0-6 --out mix.png
  gankit style-mix runs/sg2-faces --rows 0-4 --cols 10-13 --styles fine --trunc 0.7 --out mix/
  gankit style-mix runs/sg2-mnist --rows 1-3 --cols 4-6 --row-classes 3 --col-classes 7,1,5
      --styles coarse --out mix.png      (a conditional run: a class for each seed)
"""


def _add_style_mix(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "style-mix",
        help="StyleGAN2/StyleGAN style-mixing figure (rows x columns of seeds)",
        description="The style-mixing figure of the G_ema of a StyleGAN2 or StyleGAN run directory (newest "
        "checkpoint) or checkpoint file, as the official style_mixing.py.",
        epilog=STYLE_MIX_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("target", metavar="RUN_DIR_OR_CHECKPOINT")
    p.add_argument("--rows", help="row seeds: a list 85,100,75 or a range 0-4")
    p.add_argument(
        "--row-ws",
        metavar="FILE.npy",
        help="rows from saved ws instead of seeds (gankit project's projected_w.npy)",
    )
    p.add_argument("--cols", required=True, help="column seeds: a list or a range")
    p.add_argument(
        "--styles", help="layers taken from the column seeds: 0-6, 0,1,2, coarse, middle, fine"
    )
    p.add_argument(
        "--class",
        dest="class_index",
        type=int,
        metavar="K",
        help="conditional runs: the class of every image (or give --row-classes/--col-classes)",
    )
    for side in ("row", "col"):
        p.add_argument(
            f"--{side}-classes",
            metavar="LIST",
            help=f"conditional runs: the class of each {side} seed (a list, e.g. 3,7,1, one per "
            "seed, or one class for all); overrides --class on that side",
        )
    _add_stage_option(p)
    p.add_argument("--out", default="mix.png", help="mix.png, DIR/ or mix.npy (default mix.png)")
    p.add_argument("--batch", type=int, default=64, help="images per forward pass")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    _add_style_options(p)
    p.set_defaults(handler=_cmd_style_mix)


def _cmd_style_mix(args: argparse.Namespace) -> int:
    from gankit.generate import parse_stage
    from gankit.stylemix import parse_classes, parse_seeds, style_mix, write_style_mix

    if args.batch < 1:
        raise GankitError(f"--batch must be at least 1; got {args.batch}")
    if (args.rows is None) == (args.row_ws is None):
        raise GankitError(
            "give the rows as seeds (--rows 85,100,75) or as saved ws (--row-ws FILE.npy)"
        )
    mix = style_mix(
        args.target,
        None if args.rows is None else parse_seeds(args.rows, "--rows"),
        parse_seeds(args.cols, "--cols"),
        args.styles,
        row_ws=args.row_ws,
        stage=None if args.stage is None else parse_stage(args.stage),
        truncation_psi=args.truncation_psi,
        truncation_cutoff=args.truncation_cutoff,
        noise_mode=args.noise_mode,
        class_index=args.class_index,
        row_classes=parse_classes(args.row_classes, "--row-classes"),
        col_classes=parse_classes(args.col_classes, "--col-classes"),
        batch=args.batch,
        device=args.device,
    )
    path = write_style_mix(mix, args.out)
    layers = ",".join(map(str, mix.styles))
    rows = f"{len(mix.row_seeds)} row {'ws' if args.row_ws else 'seeds'}"
    print(
        f"wrote a style-mixing figure of {rows} and {len(mix.col_seeds)} column seeds "
        f"(layers {layers} from the columns) to {path}"
    )
    return 0


# -------------------------------------------------------------------------------------- explore

EXPLORE_EPILOG = """\
Serves a page to look inside a trained run: a grid of samples from chosen seeds (click to pin,
two pinned show the interpolation between them), the class of a conditional run, the stage of a
ProGAN or StyleGAN run still growing, StyleGAN2/StyleGAN truncation, noise and style mixing,
projected latents (gankit project's projected_w.npy, found in the run directory or uploaded),
the scatter of a 2-D run, and a CycleGAN run's translation and reconstruction of an uploaded
image. The page calls the functions the commands run, so every picture is one a command writes;
Save puts the PNG and a JSON with its seeds or latents and that command into RUN/explore/.

The run is loaded once (its newest checkpoint, pinned while the server runs) and serves every
tab. The server listens on this machine only; to use it from a laptop, tunnel the port:

  ssh -N -L 7860:127.0.0.1:7860 USER@THIS-MACHINE     (then open http://127.0.0.1:7860/)

--host with another address (e.g. 0.0.0.0) serves anyone who reaches this machine, and is refused
without --allow-remote. Needs Flask: pip install 'gankit[explore]'.

  gankit explore runs/sg2-faces
  gankit explore runs/progan-digits --port 8000 --device cpu --threads 2
"""


def _set_threads(threads: int | None) -> None:
    """`--threads N` of the sampling and evaluation commands: torch's CPU threads (None: its default)."""
    if threads is None:
        return
    if threads < 1:
        raise GankitError(f"--threads must be at least 1; got {threads}")
    import torch

    torch.set_num_threads(threads)


def _add_explore(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "explore",
        help="a local web page to look inside a trained run (samples, truncation, style mixing)",
        description="Serve a local web page that shows a run directory's samples, interpolations, "
        "style mixing, stages, projected latents or translations.",
        epilog=EXPLORE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("run", metavar="RUN_DIR_OR_CHECKPOINT")
    p.add_argument("--port", type=int, default=7860, help="port to listen on (default 7860)")
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1: this machine only)",
    )
    p.add_argument(
        "--allow-remote",
        action="store_true",
        help="allow a --host other machines reach (anyone who reaches it can write into the run)",
    )
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument(
        "--threads", type=int, metavar="N", help="torch's CPU threads (default: one per core)"
    )
    p.set_defaults(handler=_cmd_explore)


def _cmd_explore(args: argparse.Namespace) -> int:
    from gankit.explore import serve

    if not 0 < args.port < 65536:
        raise GankitError(f"--port must lie in 1 .. 65535; got {args.port}")
    _set_threads(args.threads)
    serve(
        args.run,
        host=args.host,
        port=args.port,
        device=args.device,
        allow_remote=args.allow_remote,
    )
    return 0


# ------------------------------------------------------------------------------ project, video

PROJECT_EPILOG = """\
For each target, DIR/<file name stem>/ gets proj.png (the final image), target.png (the target
as the network sees it: centre-cropped, Lanczos-resized, in the model's channels),
projected_w.npy (float32 ws [num_ws, w_dim]; proj.png is their image with the stored constant
noise) and progress.gif (target | current). The official projector's schedule: start at w_avg,
Adam, learning-rate ramp-up and cosine ramp-down, decaying w noise, noise-map regularisation.

Distance: LPIPS (VGG16) when torchvision's VGG16 weights are given (--vgg-weights,
GANKIT_VGG16_WEIGHTS) or cached; otherwise pixel + MS-SSIM, which needs no download. The
distance used is printed.

  gankit project runs/sg2-faces --target me.jpg --steps 1000 --out proj/
  gankit project runs/sg2-faces --target a.png --target b.png --wplus --out proj/
"""


def _add_project(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "project",
        help="StyleGAN2/StyleGAN: find the w of an image (the official projector)",
        description="Project images into the latent space of the G_ema of a StyleGAN2 or StyleGAN run "
        "directory (newest checkpoint) or checkpoint file.",
        epilog=PROJECT_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("target_run", metavar="RUN_DIR_OR_CHECKPOINT")
    p.add_argument(
        "--target", dest="targets", action="append", required=True, metavar="IMG",
        help="an image to project (repeat for several, projected together)",
    )  # fmt: skip
    p.add_argument("--steps", type=int, default=1000, help="optimisation steps (default 1000)")
    p.add_argument("--out", default="proj/", help="output folder (default proj/)")
    p.add_argument("--wplus", action="store_true", help="optimise one w per layer (W+)")
    p.add_argument("--seed", type=int, default=303, help="seed of the random draws (default 303)")
    p.add_argument(
        "--distance", choices=("auto", "lpips", "pixel"), default="auto",
        help="auto (default): LPIPS when VGG16 weights are found, else pixel + MS-SSIM",
    )  # fmt: skip
    p.add_argument("--vgg-weights", metavar="FILE", help="torchvision's vgg16-397923af.pth")
    p.add_argument("--lpips-heads", metavar="FILE", help="the lpips package's v0.1/vgg.pth")
    p.add_argument(
        "--class", dest="class_index", type=int, metavar="K",
        help="conditional runs: the class of the targets (required there)",
    )  # fmt: skip
    p.add_argument(
        "--gif-every", type=int, metavar="K", help="a progress.gif frame every K steps "
        "(default: about 50 frames)",
    )  # fmt: skip
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.set_defaults(handler=_cmd_project)


def _cmd_project(args: argparse.Namespace) -> int:
    from gankit.project import project_images, write_projection

    if args.gif_every is not None and args.gif_every < 1:
        raise GankitError(f"--gif-every must be at least 1; got {args.gif_every}")
    projections, distance = project_images(
        args.target_run,
        args.targets,
        num_steps=args.steps,
        wplus=args.wplus,
        seed=args.seed,
        distance=args.distance,
        vgg_weights=args.vgg_weights,
        lpips_heads=args.lpips_heads,
        class_index=args.class_index,
        frame_every=args.gif_every,
        device=args.device,
    )
    print(f"distance: {distance}")
    space = "W+" if args.wplus else "W"
    for projection in projections:
        folder = write_projection(projection, args.out)
        print(
            f"projected {projection.name} in {space} ({args.steps} steps): distance "
            f"{projection.start_distance:.4g} at w_avg -> {projection.final_distance:.4g}; "
            f"wrote {folder}"
        )
    return 0


VIDEO_EPILOG = """\
A looped walk through the seeds (ranges 0-7 and lists 3,9,4), frames-per-seed frames from each
seed towards the next and back to the first. StyleGAN2 and StyleGAN walk in W (linear, after
--trunc) and their first frame is `gankit generate --seed FIRST --num 1`; ProGAN, DCGAN and MLP
image runs walk in z (slerp). --stage walks an earlier stage of a run still growing. .gif always
works; .mp4 needs imageio with ffmpeg (pip install imageio imageio-ffmpeg).

  gankit video runs/sg2-faces --seeds 0-7 --trunc 0.7 --out walk.gif
  gankit video runs/progan-digits --seeds 1,5,9 --frames-per-seed 60 --out walk.mp4
  gankit video runs/progan-digits --seeds 1,5 --stage 16 --out walk-16px.gif
"""


def _add_video(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "video",
        help="a looped latent walk through seeds (.gif or .mp4)",
        description="A looped latent walk through seeds in the G_ema of a run directory (newest "
        "checkpoint) or checkpoint file.",
        epilog=VIDEO_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("target", metavar="RUN_DIR_OR_CHECKPOINT")
    p.add_argument("--seeds", required=True, help="seeds to visit: a range 0-7 or a list 3,9,4")
    p.add_argument("--frames-per-seed", type=int, default=30, help="frames per seed (default 30)")
    p.add_argument("--fps", type=float, default=25.0, help="frames per second (default 25)")
    p.add_argument("--out", default="walk.gif", help="walk.gif or walk.mp4 (default walk.gif)")
    p.add_argument(
        "--class", dest="class_index", type=int, metavar="K",
        help="conditional runs: the class of every frame (required there)",
    )  # fmt: skip
    p.add_argument("--batch", type=int, default=16, help="frames per forward pass")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    _add_stage_option(p)
    _add_style_options(p)
    p.set_defaults(handler=_cmd_video)


def _cmd_video(args: argparse.Namespace) -> int:
    from gankit.generate import parse_stage
    from gankit.stylemix import parse_seeds
    from gankit.video import check_video_path, latent_walk, write_video

    if args.batch < 1:
        raise GankitError(f"--batch must be at least 1; got {args.batch}")
    check_video_path(args.out)  # before the work, so a missing encoder costs nothing
    seeds = parse_seeds(args.seeds, "--seeds")
    frames = latent_walk(
        args.target,
        seeds,
        frames_per_seed=args.frames_per_seed,
        truncation_psi=args.truncation_psi,
        truncation_cutoff=args.truncation_cutoff,
        noise_mode=args.noise_mode,
        class_index=args.class_index,
        stage=None if args.stage is None else parse_stage(args.stage),
        batch=args.batch,
        device=args.device,
    )
    path = write_video(frames, args.out, args.fps)
    print(f"wrote a {len(frames)}-frame walk through seeds {args.seeds} to {path}")
    return 0


# --------------------------------------------------------------------------------------- plot

PLOT_EPILOG = """\
Writes, from what the run left behind (into RUN_DIR, or DIR with --out, same layout):

  plots/losses.png         D and G losses against kimg (from stats.jsonl)
  samples/progress.gif     the sample grids over training (samples/fakes-*.png), or for 2-D
                           point runs the scatter snapshots (samples/points-*.png)
  plots/real_vs_fake.png   samples/reals.png beside the newest generated grid (image runs)
  plots/interpolation.png  G_ema along slerp paths between random latents, one row per pair
                           (image runs; needs a checkpoint)
  plots/points.png         2,500 points from G_ema over the true mixture (2-D point runs;
                           needs a checkpoint)

Pictures whose inputs are missing are skipped with a message saying why. Training writes the same
files at its end; run this to make them for a run that is still going or was stopped.
"""


def _add_plot(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "plot",
        help="make a run's loss plot, progress GIF, real-vs-fake and interpolation pictures",
        description="Make the pictures of a run directory from its stats, samples and checkpoint.",
        epilog=PLOT_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="a directory written by `gankit train`")
    p.add_argument("--out", metavar="DIR", help="write there instead of into RUN_DIR")
    p.add_argument("--device", default="cpu", help="device for G_ema (default cpu)")
    p.set_defaults(handler=_cmd_plot)


def _cmd_plot(args: argparse.Namespace) -> int:
    from gankit.viz.report import write_report

    paths = write_report(args.run_dir, args.out, device=args.device)
    for path in paths:
        print(path)
    if not paths:
        print(f"nothing to plot in {args.run_dir} yet", file=sys.stderr)
    return 0


# --------------------------------------------------------------------------------------- evaluate

EVALUATE_EPILOG = """\
TARGET is a run directory or checkpoint (samples of its G_ema), a folder or .zip of images, or a
.npy array (uint8 [N, C, H, W] images, or float [N, 2] points for ring8/grid25). Metric names carry
their sample count (fid50k = 50,000 samples; swd16k = 16,384 as in the PGGAN paper; ms_ssim10k =
10,000 pairs) or take it from --num (plain names: swd, ms_ssim, fid, kid, is, pr, ppl, modes,
clf-fid, clf-kid, clf-is, class-acc, parzen; `gankit list` describes them). Examples:

  gankit evaluate runs/faces --metrics swd16k,ms_ssim10k,fid50k
  gankit evaluate samples/ --metrics fid,kid --num 10000 --data ~/faces --json faces.json
  gankit evaluate runs/mnist --metrics clf-fid,clf-kid,parzen --data mnist

Real images come from --data (default: the run's training data): a built-in name, a folder or
.zip of images, or a .npy like TARGET's. Samples are compared at their own resolution (a run's at
the resolution G_ema outputs now: 8x8 for a ProGAN run stopped at its 8x8 stage), and the reals are
brought to it; every printed value says that resolution and its sample count. Every metric is
checked before any work starts; then the plan, an estimated time, and progress (a bar on a
terminal, else a line every few seconds) go to stderr, the values to stdout.

FID/KID/IS/PR need the FID Inception weights (--inception-weights FILE, $GANKIT_INCEPTION_WEIGHTS,
or the cache); clf-* train a small MNIST classifier once (about 1.5 min on a CPU core) and cache
it. Real-image features are cached per (data, count, extractor); `gankit cache` lists the cache.

A translation run (CycleGAN) is scored per direction: G_ab on the test images of domain A (testA/
of its data, or of the A/B folder --data; trainA/ where there is none, said) against every image
of testB/, and G_ba the other way (the CUT paper's protocol), e.g.
  gankit evaluate runs/h2z --metrics fid,kid      # fid120/a2b, kid120/a2b, fid140/b2a, ...
"""


def _add_evaluate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "evaluate",
        help="compute metrics (SWD, MS-SSIM, FID, KID, IS, PR, PPL, modes, ...)",
        description="Compute metrics of a trained generator or a set of samples.",
        epilog=EVALUATE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("target", metavar="TARGET")
    p.add_argument(
        "--metrics", required=True, help="comma-separated metric names, e.g. swd16k,fid50k"
    )
    p.add_argument(
        "--data", metavar="NAME_OR_PATH", help="real data to compare with (default: the run's)"
    )
    p.add_argument("--data-root", metavar="DIR", help="where built-in datasets are read")
    p.add_argument("--num", type=int, help="sample count for metric names without one")
    p.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    p.add_argument("--inception-weights", metavar="FILE", help="FID InceptionV3 weights file")
    p.add_argument(
        "--resize",
        choices=("reference", "clean"),
        default="reference",
        help="Inception resize protocol: torch-fidelity's bilinear (default) or clean-fid's antialiased",
    )
    p.add_argument(
        "--classifier", metavar="FILE", help="domain classifier for clf-*/class-acc/parzen/modes"
    )
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--batch", type=int, default=64, help="images per forward pass")
    p.add_argument(
        "--seed", type=int, default=0, help="seed of the samples and of the metrics' randomness"
    )
    p.add_argument("--no-cache", action="store_true", help="recompute real-image features")
    p.add_argument(
        "--skip-bad-images",
        action="store_true",
        help="leave unreadable images out of a samples folder or --data folder, with a warning",
    )
    p.add_argument(
        "--no-progress",
        action="store_true",
        help="no progress bar or progress lines (the plan and estimate still print)",
    )
    p.add_argument(
        "--threads", type=int, metavar="N", help="torch's CPU threads (default: one per core)"
    )
    p.set_defaults(handler=_cmd_evaluate)


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from gankit.evaluate import evaluate_target, write_json

    _set_threads(args.threads)
    evaluation = evaluate_target(
        args.target,
        args.metrics,
        data=args.data,
        data_root=args.data_root,
        num=args.num,
        inception_weights=args.inception_weights,
        resize=args.resize,
        classifier=args.classifier,
        device=args.device,
        batch=args.batch,
        seed=args.seed,
        cache=not args.no_cache,
        progress=not args.no_progress,
        skip_bad_images=args.skip_bad_images,
    )
    # Print first: a failing --json write must not lose what took long to compute.
    for line in evaluation.lines():
        print(line, flush=True)
    if args.json:
        print(f"wrote {write_json(evaluation.results, args.json)}")
    return 0


CACHE_EPILOG = """\
The cache is $GANKIT_CACHE_DIR, else ~/.cache/gankit. It holds prepared datasets (prepared/),
real-image features of metrics (metrics/), network weights (weights/), the clf-* classifiers
(classifiers/) and, unless $GANKIT_DATA_ROOT is set, downloaded built-in datasets (data/). Anything
cleared is rebuilt, re-downloaded or retrained when next needed.

  gankit cache                   # list each part with its size
  gankit cache --clear metrics   # remove one part
  gankit cache --clear           # remove everything
"""


def _add_cache(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "cache",
        help="list or clear gankit's cache (prepared data, metric features, weights, classifiers)",
        description="List what gankit's cache holds, with sizes, or clear it.",
        epilog=CACHE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--clear",
        nargs="?",
        const="",
        metavar="WHAT",
        help="remove WHAT (prepared, metrics, weights, classifiers, data), or everything; asks "
        "nothing",
    )
    p.set_defaults(handler=_cmd_cache)


def _cmd_cache(args: argparse.Namespace) -> int:
    from gankit.cache import cache_entries, clear_cache, format_size
    from gankit.paths import cache_dir

    root = cache_dir()
    if args.clear is not None:
        removed = clear_cache(args.clear or None)
        for entry in removed:
            print(f"removed {entry.path} ({format_size(entry.size)})")
        if not removed:
            print(f"nothing to remove in {root}")
        return 0
    entries = cache_entries()
    if not entries:
        print(f"the cache {root} is empty")
        return 0
    print(f"{root}:")
    for entry in entries:
        files = f"{entry.files:,} file{'s' if entry.files != 1 else ''}"
        size = format_size(entry.size)
        print(f"  {entry.name + '/':<13} {size:>8}  {files:<12} {entry.description}")
    print(f"  {'total':<13} {format_size(sum(e.size for e in entries)):>8}")
    return 0


# --------------------------------------------------------------------------------------- classifier


def _add_classifier(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "classifier",
        help="train the domain classifier used by clf-fid, clf-kid, class-acc, modes",
        description="The small CNN whose features and predictions evaluate MNIST-like data "
        "without Inception (clf-fid, clf-kid, clf-is, class-acc, Stacked-MNIST modes).",
    )
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    t = actions.add_parser(
        "train",
        help="train on a built-in dataset and save it",
        description="Train on the train split, report test accuracy, save.",
    )
    t.add_argument(
        "--data",
        default="mnist",
        choices=("mnist", "fashion-mnist"),
        help="built-in dataset (default mnist)",
    )
    t.add_argument("--data-root", metavar="DIR", help="where built-in datasets are read")
    t.add_argument("--epochs", type=int, default=3, help="training epochs (default 3)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    t.add_argument(
        "--out",
        metavar="FILE",
        help="where to save (default: the cache, where metrics look for it)",
    )
    t.set_defaults(handler=_cmd_classifier_train)


def _cmd_classifier_train(args: argparse.Namespace) -> int:
    from gankit.data import open_dataset
    from gankit.device import resolve_device
    from gankit.metrics.classifier import default_classifier_path, save_classifier, train_classifier

    train = open_dataset(args.data, root=args.data_root, split="train")
    test = open_dataset(args.data, root=args.data_root, split="test")
    model = train_classifier(
        train.images,
        train.labels,
        epochs=args.epochs,
        seed=args.seed,
        device=resolve_device(args.device),
        test_images=test.images,
        test_labels=test.labels,
        dataset=args.data,
    )
    path = save_classifier(model, args.out or default_classifier_path(args.data))
    meta = model.meta
    print(
        f"{args.data} classifier: test accuracy {100 * meta['test_accuracy']:.2f}% after "
        f"{meta['epochs']} epochs ({meta['train_seconds']:.0f} s); saved to {path}"
    )
    return 0


# --------------------------------------------------------------------------------------- list


def _add_list(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "list",
        help="show registered models, recipes, datasets and metrics",
        description="Show everything registered, with one line each.",
    )
    p.set_defaults(handler=_cmd_list)


def _cmd_list(args: argparse.Namespace) -> int:
    from gankit.registry import DATASETS, METRICS, MODELS, RECIPES
    from gankit.train.resolve import KIND_WORDS

    for title, registry in (
        ("models", MODELS),
        ("recipes", RECIPES),
        ("datasets", DATASETS),
        ("metrics", METRICS),
    ):
        print(f"{title}:")
        entries = list(registry)
        if not entries:
            print("  (none yet)")
        for entry in entries:
            data = ""
            if registry in (MODELS, RECIPES):  # what each trains on: a run checks it
                data = " [" + ", ".join(KIND_WORDS.get(k, k) for k in entry.kinds) + "]"
            print(f"  {entry.name:<16} {entry.description}{data}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
