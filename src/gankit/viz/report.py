"""The pictures of a run directory, (re)made from what the run left behind: `gankit plot`.

From `stats.jsonl` and `samples/` alone: the loss curves, the progress GIF and (image runs) real
images beside the latest generated grid. From the newest checkpoint's G_ema: a latent
interpolation strip (image runs) or the final scatter over the true mixture (2-D point runs).
Translation runs (CycleGAN) have no latent: their `fakes-*.png` are the translation rows, so they
get the loss curves and the GIF only.
Whatever cannot be made is skipped with a logged reason; nothing is trained or changed in the run.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn

from gankit.errors import CheckpointError, GankitError
from gankit.viz.plots import plot_losses, save_gif, save_interpolation_strip, save_real_vs_fake

log = logging.getLogger(__name__)

#: Points drawn for the final scatter: VEEGAN/PacGAN's 2-D evaluation count.
SCATTER_POINTS = 2500


def is_run_dir(path: Path) -> bool:
    """True for a folder holding what `gankit train` writes (config, stats or checkpoints)."""
    markers = ("config.yaml", "stats.jsonl", "checkpoints")
    return path.is_dir() and any((path / m).exists() for m in markers)


def write_report(
    run_dir: str | Path, out: str | Path | None = None, *, device: str = "cpu"
) -> list[Path]:
    """Write the run's pictures under `out` (default: the run directory); returns the paths.

    Writes `plots/losses.png`, `samples/progress.gif` (from `samples/fakes-*.png`, or
    `samples/points-*.png` for a point run) and, for image runs, `plots/real_vs_fake.png` and
    `plots/interpolation.png`; for 2-D point runs `plots/points.png`. The last two need a
    checkpoint; a run without one gets the rest.
    """
    from gankit.generate import run_mixture

    run_dir = Path(run_dir)
    if not is_run_dir(run_dir):
        raise GankitError(
            f"{str(run_dir)!r} is not a gankit run directory: it has no config.yaml, stats.jsonl "
            "or checkpoints/. Pass the folder `gankit train --out` wrote."
        )
    out = Path(out) if out is not None else run_dir
    mixture = run_mixture(run_dir)
    samples = run_dir / "samples"
    from gankit.generate import translation_run

    if translation_run(run_dir):  # each loss term too: GAN, cycle, identity, each D
        return [p for p in (_losses(run_dir, out, terms=True), _progress(samples, out, False)) if p]
    G, kwargs, why_no_G = _load_generator(run_dir, device)
    points_run = (
        mixture is not None
        or any(samples.glob("points-*.png"))
        or getattr(G, "output_kind", "images") == "points"
    )
    written = [_losses(run_dir, out), _progress(samples, out, points_run)]
    if points_run:
        written.append(_final_scatter(G, kwargs, out, mixture, why_no_G))
    else:
        written.append(_real_vs_fake(samples, out))
        written.append(_interpolation(G, kwargs, out, why_no_G))
    return [p for p in written if p is not None]


def _skip(name: str, reason: str) -> None:
    log.warning("skipped %s: %s", name, reason)


def _load_generator(run_dir: Path, device: str) -> tuple[nn.Module | None, dict[str, Any], str]:
    """(G_ema, its sampling kwargs, "") or (None, {}, why not)."""
    from gankit.generate import load_generator

    try:
        G, kwargs, _ = load_generator(run_dir, device)
    except CheckpointError as err:
        return None, {}, f"it needs G_ema from a checkpoint ({err})"
    except GankitError as err:  # e.g. a model this installation does not know
        return None, {}, f"G_ema could not be rebuilt from the checkpoint ({err})"
    except (KeyError, TypeError) as err:  # a checkpoint without a complete model spec
        return None, {}, f"the checkpoint's model spec is incomplete ({err!r})"
    return G, kwargs, ""


def _losses(run_dir: Path, out: Path, terms: bool = False) -> Path | None:
    stats = run_dir / "stats.jsonl"
    if not stats.is_file():
        _skip("plots/losses.png", f"no {stats}")
        return None
    path = plot_losses(stats, out / "plots" / "losses.png", terms)
    if path is None:
        _skip("plots/losses.png", f"{stats} holds no losses yet")
    return path


def _progress(samples: Path, out: Path, points_run: bool) -> Path | None:
    pattern = "points-*.png" if points_run else "fakes-*.png"
    frames = sorted(samples.glob(pattern))
    if not frames:
        _skip("samples/progress.gif", f"no {samples / pattern} snapshots")
        return None
    return save_gif(frames, out / "samples" / "progress.gif")


def _real_vs_fake(samples: Path, out: Path) -> Path | None:
    fakes = sorted(samples.glob("fakes-*.png"))
    reals = samples / "reals.png"
    if not fakes or not reals.is_file():
        missing = "samples/reals.png" if not reals.is_file() else "samples/fakes-*.png"
        _skip("plots/real_vs_fake.png", f"the run has no {missing}")
        return None
    with Image.open(reals) as real, Image.open(fakes[-1]) as fake:
        pictures = np.asarray(real.convert("RGB")), np.asarray(fake.convert("RGB"))
    return save_real_vs_fake(*pictures, out / "plots" / "real_vs_fake.png")


def _interpolation(
    G: nn.Module | None, kwargs: dict[str, Any], out: Path, why_no_G: str
) -> Path | None:
    if G is None:
        _skip("plots/interpolation.png", why_no_G)
        return None
    return save_interpolation_strip(G, out / "plots" / "interpolation.png", kwargs=kwargs)


def _final_scatter(
    G: nn.Module | None, kwargs: dict[str, Any], out: Path, mixture: str | None, why_no_G: str
) -> Path | None:
    from gankit.generate import class_labels
    from gankit.nets import draw_latents, run_generator
    from gankit.viz.points import save_scatter

    if G is None:
        _skip("plots/points.png", why_no_G)
        return None
    z = draw_latents(G, SCATTER_POINTS, torch.Generator().manual_seed(0))
    c = class_labels(int(getattr(G, "c_dim", 0) or 0), SCATTER_POINTS)
    points = run_generator(G, z, c, kwargs).float()
    return save_scatter(points, out / "plots" / "points.png", mixture=mixture)
