"""Loss curves from stats.jsonl, animated GIFs of sample grids, latent interpolations, and real
images beside generated ones.

Interpolation strips use spherical interpolation (slerp) between Gaussian latents by default, as
White recommends ("Sampling Generative Networks", arXiv:1609.04468): a straight line between two
Gaussian vectors passes through the low-norm middle that G never sees in training.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from PIL import Image
from torch import nn

from gankit.viz.grid import make_grid, save_grid

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def read_stats(path: str | Path) -> list[dict]:
    """The records of a stats.jsonl file (a torn last line from a crash is ignored)."""
    records = []
    for line in Path(path).read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def plot_losses(stats_path: str | Path, out_path: str | Path, terms: bool = False) -> Path | None:
    """Plot every `<phase>/loss` of a run's stats.jsonl against kimg (with `terms`, also each
    other term a phase logs, e.g. CycleGAN's `G_main/cycle`); None if no data."""
    fig = loss_figure(read_stats(stats_path), terms)
    if fig is None:
        return None
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_path)
    return out_path


def loss_figure(records: list[dict], terms: bool = False) -> Figure | None:
    """The loss-curve figure of stats records: a line per `<phase>/loss` key (with `terms`, a
    dashed one per other `<phase>/<term>` too), a grey vertical line where the progressive stage
    changes (named in the title only when there is one). Not attached to pyplot, like the other
    figures here: nothing global changes, nothing to close."""
    from matplotlib.figure import Figure

    keys = sorted({k for r in records for k in r if k.endswith("/loss")})
    if not records or not keys:
        return None
    phases = {k.split("/")[0] for k in keys}
    parts = sorted(
        {k for r in records for k in r if k.split("/")[0] in phases and k not in keys}
    ) if terms else []  # fmt: skip
    fig = Figure(figsize=(8, 4.5), dpi=100)
    ax = fig.add_subplot()
    for key in keys + parts:
        pts = [(r["kimg"], r[key]) for r in records if key in r]
        label, style = (key.split("/")[0], "-") if key in keys else (key, "--")
        ax.plot([p[0] for p in pts], [p[1] for p in pts], style, label=label, linewidth=1.2)
    changes = _stage_changes(records)
    for stage_kimg in changes:
        ax.axvline(stage_kimg, color="0.85", linewidth=0.8, zorder=0)
    # Images or 2-D points: kimg counts real samples of either kind.
    ax.set_xlabel("kimg (thousands of real samples shown to D)")
    ax.set_ylabel("loss")
    ax.set_title("Training losses" + (" (grey lines: stage changes)" if changes else ""))
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def _stage_changes(records: list[dict]) -> list[float]:
    changes, last = [], None
    for r in records:
        stage = r.get("stage")
        if last is not None and stage != last:
            changes.append(r["kimg"])
        last = stage
    return changes


def save_gif(
    frames: Sequence[str | Path | Image.Image], out_path: str | Path, frame_ms: int = 400
) -> Path | None:
    """An animated GIF of image files or PIL images (resized to the largest frame); None if empty."""
    images = [(f if isinstance(f, Image.Image) else Image.open(f)).convert("RGB") for f in frames]
    if not images:
        return None
    size = max(im.size for im in images)
    images = [im if im.size == size else im.resize(size, Image.Resampling.NEAREST) for im in images]
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    durations = [frame_ms] * (len(images) - 1) + [frame_ms * 5]  # linger on the final grid
    images[0].save(out_path, save_all=True, append_images=images[1:], duration=durations, loop=0)
    return out_path


def lerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Linear interpolation of rows `a`, `b` `[N, D]` at fractions `t` `[T]` -> `[N, T, D]`."""
    t = t.to(a.dtype)[None, :, None]
    return a[:, None] + t * (b - a)[:, None]


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation of rows `a`, `b` `[N, D]` at fractions `t` `[T]` -> `[N, T, D]`.

    The angle is the one between the directions of `a` and `b`; t = 0 gives `a` and t = 1 gives
    `b` exactly. (Anti)parallel pairs, where the great circle is undefined, fall back to `lerp`.
    """
    cos = torch.nn.functional.cosine_similarity(a, b, dim=1).clamp(-1.0, 1.0)
    omega = torch.acos(cos)[:, None, None]
    t = t.to(a.dtype)[None, :, None]
    sin = torch.sin(omega)
    ok = sin.abs() > 1e-6
    safe = torch.where(ok, sin, torch.ones_like(sin))
    wa = torch.where(ok, torch.sin((1 - t) * omega) / safe, 1 - t)
    wb = torch.where(ok, torch.sin(t * omega) / safe, t)
    return wa * a[:, None] + wb * b[:, None]


@torch.no_grad()
def save_interpolation_strip(
    G: nn.Module,
    path: str | Path,
    *,
    steps: int = 10,
    rows: int = 4,
    seed: int = 0,
    kwargs: dict[str, Any] | None = None,
    method: str = "slerp",
) -> Path:
    """A grid with one row per pair of random latents and `steps` images along the path between.

    Latents come from a CPU generator seeded with `seed`: first the `rows` start points, then the
    `rows` end points (`torch.randn(rows, z_dim)` each). A conditional G keeps one label per row,
    row r getting class `r mod c_dim`. `kwargs` are G's sampling arguments (e.g. a progressive
    stage); `method` is "slerp" or "lerp".
    """
    from gankit.nets import draw_latents, run_generator

    if getattr(G, "output_kind", "images") != "images":
        raise ValueError("an interpolation strip needs an image generator, not a 2-D point one")
    if method not in ("slerp", "lerp"):
        raise ValueError(f"method must be 'slerp' or 'lerp', got {method!r}")
    if steps < 2 or rows < 1:
        raise ValueError(f"need steps >= 2 and rows >= 1, got steps={steps}, rows={rows}")
    gen = torch.Generator().manual_seed(seed)
    z0, z1 = draw_latents(G, rows, gen), draw_latents(G, rows, gen)
    path_fn = slerp if method == "slerp" else lerp
    z = path_fn(z0, z1, torch.linspace(0, 1, steps)).reshape(rows * steps, G.z_dim)
    c_dim = int(getattr(G, "c_dim", 0) or 0)
    c = (torch.arange(rows) % c_dim).repeat_interleave(steps) if c_dim else None
    images = run_generator(G, z, c, kwargs)
    return save_grid(images, path, cols=steps, upscale_to=int(getattr(G, "img_resolution", 0)))


def save_real_vs_fake(
    reals: torch.Tensor | np.ndarray,
    fakes: torch.Tensor | np.ndarray,
    path: str | Path,
    titles: tuple[str, str] = ("real", "generated"),
) -> Path:
    """Two grids side by side, titled "real" and "generated", scaled to the same height.

    Each side is a batch of uint8 images `[N, C, H, W]` (made into a square grid), or a picture
    that already is a grid: `[H, W]` or `[H, W, C]` uint8, e.g. `samples/reals.png` as read.
    """
    from matplotlib.figure import Figure

    pictures = [_picture(reals), _picture(fakes)]
    height = min(max(max(p.shape[0] for p in pictures), 256), 768)
    widths = [p.shape[1] * height / p.shape[0] for p in pictures]
    margin, band, dpi = 16, 28, 100
    total_w, total_h = sum(widths) + 3 * margin, height + band + margin
    fig = Figure(figsize=(total_w / dpi, total_h / dpi), dpi=dpi)
    left = margin
    for picture, width, title in zip(pictures, widths, titles, strict=True):
        ax = fig.add_axes((left / total_w, margin / total_h, width / total_w, height / total_h))
        upscaled = height >= picture.shape[0]
        ax.imshow(picture, interpolation="nearest" if upscaled else "antialiased")
        ax.set_title(title, fontsize=11)
        ax.axis("off")
        left += width + margin
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path


def _picture(images: torch.Tensor | np.ndarray) -> np.ndarray:
    """An RGB uint8 `[H, W, 3]` array from a batch `[N, C, H, W]` or a grid picture."""
    array = images.cpu().numpy() if torch.is_tensor(images) else np.asarray(images)
    if array.dtype != np.uint8:
        raise ValueError(f"expected uint8 images, got {array.dtype}")
    if array.ndim == 4:
        array = make_grid(torch.from_numpy(np.ascontiguousarray(array)))
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3 or array.shape[-1] not in (1, 3, 4):
        raise ValueError(f"expected [N, C, H, W], [H, W] or [H, W, C] images, got {array.shape}")
    array = array[..., :3]
    return np.repeat(array, 3, axis=-1) if array.shape[-1] == 1 else array
