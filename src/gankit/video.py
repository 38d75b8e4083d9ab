"""Looped latent walks through seeds: `gankit video`.

A walk visits the seeds in order and returns to the first: `frames_per_seed` frames from each
seed towards the next, at fractions 0, 1/F, ..., (F-1)/F, so frame k * F is seed k's own image and
the last frame sits one step before the first again (the loop closes without a repeated frame).

- Generators with a mapping network (StyleGAN2) walk in W: each seed's ws come from the official
  latent (`generate.seed_latents`) through the mapping with the chosen truncation, and consecutive
  ws are joined by straight lines (W is close to flat, so linear steps look even); images use the
  chosen noise mode ("const" by default), so frame 0 is `gankit generate --seed S --num 1`.
- Every other image family (ProGAN, DCGAN, the MLP) walks in z: seed s's latent is the first
  latent `generate --seed s` draws, and consecutive latents are joined along great circles
  (slerp), which keeps the Gaussian's norm where linear steps would shrink it.

Written as a GIF (PIL, every frame the same duration) or, when `imageio` with its ffmpeg plugin is
installed, an .mp4; gankit does not depend on either. Deviation: the official repositories have
no latent-walk tool (the paper's videos were made with separate scripts); this one follows the
conventions of `generate`.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import Tensor, nn

from gankit.errors import GankitError
from gankit.generate import (
    class_labels,
    generator_kwargs,
    has_mapping,
    latents_of,
    load_generator,
    output_kind,
    seed_latents,
    seeded_noise,
    synthesize,
)
from gankit.nets import run_generator
from gankit.viz import to_uint8
from gankit.viz.plots import lerp, slerp

VIDEO_SUFFIXES = (".gif", ".mp4")


def walk_fractions(frames_per_seed: int) -> Tensor:
    """The interpolation fractions from one seed towards the next: 0, 1/F, ..., (F-1)/F."""
    return torch.arange(frames_per_seed, dtype=torch.float64) / frames_per_seed


def loop_path(points: Tensor, frames_per_seed: int, spherical: bool) -> Tensor:
    """Points `[S, ...]` -> the looped walk `[S * F, ...]` through them (slerp or lerp)."""
    flat = points.flatten(1).double()
    step = slerp if spherical else lerp
    path = step(flat, flat.roll(-1, dims=0), walk_fractions(frames_per_seed))
    return path.reshape(-1, *points.shape[1:]).to(points.dtype)


@torch.no_grad()
def latent_walk(
    target: str | os.PathLike,
    seeds: list[int],
    *,
    frames_per_seed: int = 30,
    truncation_psi: float | None = None,
    truncation_cutoff: int | None = None,
    noise_mode: str | None = None,
    class_index: int | None = None,
    stage: tuple[int, float | None] | None = None,
    batch: int = 16,
    device: str = "auto",
) -> Tensor:
    """The frames, uint8 `[len(seeds) * frames_per_seed, C, H, W]`, of a looped walk through the
    seeds in G_ema of a run (see the module doc and `walk`)."""
    check_walk(seeds, frames_per_seed)
    G, sampling, spec = load_generator(target, device)
    return walk(
        G, spec, sampling, seeds, frames_per_seed=frames_per_seed, truncation_psi=truncation_psi,
        truncation_cutoff=truncation_cutoff, noise_mode=noise_mode, class_index=class_index,
        stage=stage, batch=batch,
    )  # fmt: skip


def check_walk(seeds: list[int], frames_per_seed: int) -> None:
    """Refuse a walk through fewer than two seeds or with no frame per seed."""
    if len(seeds) < 2:
        raise GankitError(f"--seeds: a walk needs at least two seeds; got {len(seeds)}")
    if frames_per_seed < 1:
        raise GankitError(f"--frames-per-seed must be at least 1; got {frames_per_seed}")


@torch.no_grad()
def walk(
    G: nn.Module,
    spec: dict[str, Any],
    sampling: dict[str, Any],
    seeds: list[int],
    *,
    frames_per_seed: int = 30,
    truncation_psi: float | None = None,
    truncation_cutoff: int | None = None,
    noise_mode: str | None = None,
    class_index: int | None = None,
    stage: tuple[int, float | None] | None = None,
    frames: int | None = None,
    batch: int = 16,
) -> Tensor:
    """The first `frames` (None: all) frames of the looped walk through `seeds` of a loaded G
    (`generate.load_generator`); `stage` is a growing run's (resolution, alpha) as
    `gankit generate --stage` takes it. `frames = frames_per_seed + 1` of two seeds is the
    straight path from the first seed's image to the second's, both included."""
    check_walk(seeds, frames_per_seed)
    if output_kind(G) == "points":
        raise GankitError(
            f"this run's {spec['name']!r} generator makes 2-D points, not images, so there is no "
            "video to make; use `gankit generate --out points.png` for a scatter"
        )
    kwargs = generator_kwargs(
        G, spec, sampling, truncation_psi, truncation_cutoff, noise_mode, stage
    )
    c_dim = int(spec.get("c_dim") or 0)
    if c_dim and class_index is None:
        raise GankitError(
            f"this run's generator is conditional on {c_dim} classes: choose the class of the "
            f"walk with --class K (0 <= K < {c_dim})"
        )
    total = len(seeds) * frames_per_seed
    count = total if frames is None else max(1, min(frames, total))
    labels = class_labels(c_dim, count, class_index)
    device = next(G.parameters()).device
    with seeded_noise(kwargs, seeds[0], device):
        if has_mapping(G):
            c = None if labels is None else labels[:1].expand(len(seeds)).to(device)
            ws = G.mapping(
                seed_latents(G.z_dim, seeds).to(device), c,
                truncation_psi=kwargs["truncation_psi"],
                truncation_cutoff=kwargs["truncation_cutoff"],
            ).cpu()  # fmt: skip
            return synthesize(
                G, loop_path(ws, frames_per_seed, spherical=False)[:count], kwargs, batch
            )
        path = loop_path(latents_of(G, seeds), frames_per_seed, spherical=True)[:count]
        return to_uint8(run_generator(G, path, labels, kwargs, batch))


def check_video_path(out: str | os.PathLike) -> Path:
    """`--out` as a .gif or .mp4 path; .mp4 only when imageio's ffmpeg plugin is importable."""
    path = Path(out)
    suffix = path.suffix.lower()
    if suffix not in VIDEO_SUFFIXES:
        raise GankitError(f"--out {str(out)!r}: write the walk as a .gif (or .mp4)")
    if suffix == ".mp4" and not _has_ffmpeg():
        raise GankitError(
            f"--out {str(out)!r}: writing .mp4 needs imageio with ffmpeg (pip install imageio "
            "imageio-ffmpeg); or use a .gif"
        )
    return path


def _has_ffmpeg() -> bool:
    return all(importlib.util.find_spec(name) for name in ("imageio", "imageio_ffmpeg"))


def write_video(frames: Tensor, out: str | os.PathLike, fps: float = 25.0) -> Path:
    """Write uint8 frames `[T, C, H, W]` as a looping GIF (greyscale kept exact) or an .mp4."""
    path = check_video_path(out)
    if fps <= 0:
        raise GankitError(f"--fps must be positive; got {fps}")
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = frames.permute(0, 2, 3, 1).numpy()
    if path.suffix.lower() == ".mp4":
        import imageio.v2 as imageio

        rgb = np.repeat(arrays, 3, axis=-1) if arrays.shape[-1] == 1 else arrays
        with imageio.get_writer(path, fps=fps, codec="libx264", macro_block_size=1) as writer:
            for frame in rgb:
                writer.append_data(frame)
        return path
    images = [Image.fromarray(a[..., 0] if a.shape[-1] == 1 else a) for a in arrays]
    duration = max(10, round(1000 / fps))  # GIF timing is in 10 ms units
    images[0].save(path, save_all=True, append_images=images[1:], duration=duration, loop=0)
    return path
