"""Loss curves from stats.jsonl, and animated GIFs of sample grids."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from PIL import Image


def read_stats(path: str | Path) -> list[dict]:
    """The records of a stats.jsonl file (a torn last line from a crash is ignored)."""
    records = []
    for line in Path(path).read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def plot_losses(stats_path: str | Path, out_path: str | Path) -> Path | None:
    """Plot every `<phase>/loss` (and other logged scalars of D) against kimg; None if no data."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = read_stats(stats_path)
    keys = sorted({k for r in records for k in r if k.endswith("/loss")})
    if not records or not keys:
        return None
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=100)
    for key in keys:
        pts = [(r["kimg"], r[key]) for r in records if key in r]
        ax.plot([p[0] for p in pts], [p[1] for p in pts], label=key.split("/")[0], linewidth=1.2)
    for stage_kimg in _stage_changes(records):
        ax.axvline(stage_kimg, color="0.85", linewidth=0.8, zorder=0)
    ax.set_xlabel("kimg (thousands of real images shown to D)")
    ax.set_ylabel("loss")
    ax.set_title("Training losses (grey lines: stage changes)")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_path)
    plt.close(fig)
    return out_path


def _stage_changes(records: list[dict]) -> list[float]:
    changes, last = [], None
    for r in records:
        stage = r.get("stage")
        if last is not None and stage != last:
            changes.append(r["kimg"])
        last = stage
    return changes


def save_gif(
    frames: Sequence[str | Path], out_path: str | Path, frame_ms: int = 400
) -> Path | None:
    """An animated GIF of the given image files (resized to the largest frame); None if empty."""
    images = [Image.open(f).convert("RGB") for f in frames]
    if not images:
        return None
    size = max(im.size for im in images)
    images = [im if im.size == size else im.resize(size, Image.Resampling.NEAREST) for im in images]
    out_path = Path(out_path)
    durations = [frame_ms] * (len(images) - 1) + [frame_ms * 5]  # linger on the final grid
    images[0].save(out_path, save_all=True, append_images=images[1:], duration=durations, loop=0)
    return out_path
