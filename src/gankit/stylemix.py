"""The style-mixing figure of a StyleGAN2 run, as the official stylegan2-ada-pytorch
`style_mixing.py` draws it (the StyleGAN paper's figure 3).

Every seed maps to ws `[num_ws, w_dim]` (the official latent of `generate.seed_latents`, then
the optional truncation). Image (row i, column j) is the synthesis of row seed i's ws with the
chosen style layers taken from column seed j; the first row shows the column seeds' own images,
the first column the row seeds', and the corner cell is black. The array
`[R+1, K+1, C, H, W]` is laid out exactly like the picture.

Style layers are numbered as the official code numbers its ws: ws 2k and 2k+1 go with the
2^(k+2) px layers (0-3 are the 4 and 8 px layers at any resolution; in StyleGAN2 w 2k+1 also
drives the next block's first convolution, the weight sharing of the official synthesis network).
The names follow the StyleGAN paper: `coarse` 4-8 px, `middle` 16-32 px, `fine` 64 px and up.

Deviations from the official script:
- The mixed images are synthesised in batches, not one at a time (same images with "const" or
  "none" noise; "random" noise is drawn per image either way, here from a seeded stream).
- Truncation goes through the mapping network's own `truncation_psi`/`truncation_cutoff` (the
  official script applies psi to every w by hand: the same as no cutoff), so `--trunc-cutoff`
  works here as in `generate`.
- Conditional runs are supported (the official script passes no label): `class_index` gives
  every seed one class, `row_classes` / `col_classes` each row or column seed its own, so that
  mixing the coarse layers of a "7" into a "3" can be drawn; `--out DIR/` names files as the
  official script does (`ROW-COL.png`, a seed's own image
  `SEED-SEED.png`) beside `grid.png`.
- Without `--styles` the official default 0-6 is used, cut to the model's num_ws when it has
  fewer (8 and 16 px); an index given explicitly past num_ws is an error.
- Rows can be saved ws instead of seeds (`--row-ws`, e.g. `gankit project`'s projected_w.npy),
  truncated as seeds' ws are, so a projected image's coarse styles can be mixed with seeds'.
- A StyleGAN (v1) run still growing renders at its checkpoint's stage, or an earlier one
  (`--stage`, as in `generate`).

`mix_styles` draws the figure with an already loaded G (what `gankit explore` serves);
`style_mix` loads G_ema of a run first.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from gankit.errors import GankitError
from gankit.generate import (
    IMAGE_SUFFIXES,
    check_seed,
    class_labels,
    generator_kwargs,
    has_mapping,
    load_generator,
    load_ws,
    seed_latents,
    seeded_noise,
    synthesize,
    truncate_ws,
)
from gankit.viz import save_grid

#: The official script's `--styles` default.
DEFAULT_STYLES = range(0, 7)
#: The StyleGAN paper's style groups: the layers' resolutions, in px (None: no upper bound).
STYLE_GROUPS: dict[str, tuple[int, int | None]] = {
    "coarse": (4, 8),
    "middle": (16, 32),
    "fine": (64, None),
}
_RANGE = re.compile(r"^(\d+)-(\d+)$")


@dataclass
class StyleMix:
    """A style-mixing figure: uint8 `images` `[R+1, K+1, C, H, W]` and what made it."""

    images: torch.Tensor
    #: The row seeds, or for saved ws rows their names w0, w1, ...
    row_seeds: list[int | str]
    col_seeds: list[int]
    #: The style layers (w indices) each mixed image takes from its column seed.
    styles: list[int]


def layer_resolution(index: int) -> int:
    """The resolution, in px, of the layers that w `index` styles: ws 2k and 2k+1 go with 2^(k+2)."""
    return 2 ** (index // 2 + 2)


def named_layers(name: str, num_ws: int, img_resolution: int) -> list[int]:
    """The w indices of a style group (`STYLE_GROUPS`) in a model of `num_ws` ws.

    On models of 32 px and less, which have no 64 px layers, `fine` is every layer above the
    coarse ones. A group the model has no layers of is an error.
    """
    low, high = STYLE_GROUPS[name]
    if name == "fine" and img_resolution <= 32:
        low = STYLE_GROUPS["coarse"][1] * 2
    found = [
        i
        for i in range(num_ws)
        if low <= layer_resolution(i) and (high is None or layer_resolution(i) <= high)
    ]
    if not found:
        raise GankitError(
            f"--styles {name}: this {img_resolution} px model has no {name} layers; its "
            f"num_ws = {num_ws} layers are 0-{num_ws - 1}"
        )
    return found


def parse_layers(text: str, num_ws: int, img_resolution: int) -> list[int]:
    """`--styles` text -> sorted w indices: comma-separated numbers, ranges `a-b` and the names
    `coarse`, `middle`, `fine`; an index >= num_ws is an error naming num_ws."""
    layers: set[int] = set()
    for item in (part.strip().lower() for part in text.split(",")):
        if item in STYLE_GROUPS:
            layers.update(named_layers(item, num_ws, img_resolution))
            continue
        match = _RANGE.match(item)
        if match:
            first, last = int(match.group(1)), int(match.group(2))
            if first > last:
                raise GankitError(f"--styles {text!r}: the range {item} runs backwards")
            found = range(first, last + 1)
        elif item.isdigit():
            found = range(int(item), int(item) + 1)
        else:
            raise GankitError(
                f"--styles {text!r}: use layer numbers (a range 0-6 or a list 0,1,2) or the names "
                "coarse, middle, fine"
            )
        if found[-1] >= num_ws:
            raise GankitError(
                f"--styles {text!r}: layer {found[-1]} does not exist; this generator has "
                f"num_ws = {num_ws} style layers, 0-{num_ws - 1}"
            )
        layers.update(found)
    return sorted(layers)


def parse_seeds(text: str, flag: str) -> list[int]:
    """`--rows`/`--cols` text -> seeds in the order given: a list `85,100,75`, ranges `600-605`."""
    seeds: list[int] = []
    for item in (part.strip() for part in text.split(",")):
        match = _RANGE.match(item)
        if match and int(match.group(1)) <= int(match.group(2)):
            seeds += range(int(match.group(1)), int(match.group(2)) + 1)
        elif item.isdigit():
            seeds.append(int(item))
        else:
            raise GankitError(
                f"{flag} {text!r}: give seeds as a list (85,100,75) or a range (600-605)"
            )
    for seed in seeds:
        check_seed(seed, f"{flag}: seed {seed}")
    return seeds


def parse_classes(text: str | None, flag: str) -> list[int] | None:
    """`--row-classes`/`--col-classes` text -> class indices (None when not given)."""
    if text is None:
        return None
    items = [part.strip() for part in text.split(",")]
    if not all(item.isdigit() for item in items):
        raise GankitError(f"{flag} {text!r}: give class indices as a list, e.g. 3,7,1")
    return [int(item) for item in items]


@torch.no_grad()
def style_mix(
    target: str | Path,
    rows: list[int] | None,
    cols: list[int],
    styles: str | None = None,
    *,
    row_ws: str | Path | None = None,
    truncation_psi: float | None = None,
    truncation_cutoff: int | None = None,
    noise_mode: str | None = None,
    class_index: int | None = None,
    row_classes: list[int] | None = None,
    col_classes: list[int] | None = None,
    stage: tuple[int, float | None] | None = None,
    batch: int = 64,
    device: str = "auto",
) -> StyleMix:
    """The style-mixing figure of G_ema of a StyleGAN2 run or checkpoint (see the module doc):
    `load_generator`, then `mix_styles`; `row_ws` is a .npy file of ws to use as the rows."""
    if (rows is None) == (row_ws is None):
        raise GankitError("style-mix: give the rows as seeds (--rows) or as saved ws (--row-ws)")
    G, sampling, spec = load_generator(target, device)
    _check_mapping(G, spec["name"])
    ws = None if row_ws is None else load_ws(row_ws, G, spec["name"])
    return mix_styles(
        G, spec, sampling, rows, cols, styles, row_ws=ws, truncation_psi=truncation_psi,
        truncation_cutoff=truncation_cutoff, noise_mode=noise_mode, class_index=class_index,
        row_classes=row_classes, col_classes=col_classes, stage=stage, batch=batch,
    )  # fmt: skip


@torch.no_grad()
def mix_styles(
    G: nn.Module,
    spec: dict[str, Any],
    sampling: dict[str, Any],
    rows: list[int] | None,
    cols: list[int],
    styles: str | None = None,
    *,
    row_ws: torch.Tensor | None = None,
    truncation_psi: float | None = None,
    truncation_cutoff: int | None = None,
    noise_mode: str | None = None,
    class_index: int | None = None,
    row_classes: list[int] | None = None,
    col_classes: list[int] | None = None,
    stage: tuple[int, float | None] | None = None,
    batch: int = 64,
) -> StyleMix:
    """The style-mixing figure of a loaded StyleGAN2/StyleGAN G (see the module doc).

    `styles` is `--styles` text (None: the official 0-6, cut to num_ws); truncation (psi 1 by
    default) and noise ("const" by default) as `generate.style_kwargs`; `stage` as
    `generate.stage_kwargs`. The rows are seeds, or `row_ws` `[N, num_ws, w_dim]` (saved ws,
    truncated like the seeds' ws; they hold their class already). A conditional run needs
    classes: `class_index` for every seed, or `row_classes` / `col_classes` (one class for all of
    that side's seeds, or one per seed; they take precedence). "random" noise is seeded with the
    first row seed (0 for ws rows).
    """
    _check_mapping(G, spec["name"])
    kwargs = generator_kwargs(
        G, spec, sampling, truncation_psi, truncation_cutoff, noise_mode, stage
    )
    if styles is None:
        layers = [i for i in DEFAULT_STYLES if i < G.num_ws]
    else:
        layers = parse_layers(styles, G.num_ws, G.img_resolution)
    if (rows is None) == (row_ws is None):
        raise GankitError("style-mix: give the rows as seeds (--rows) or as saved ws (--row-ws)")
    sides = (("--cols", cols),) if rows is None else (("--rows", rows), ("--cols", cols))
    for flag, seeds in sides:
        if not seeds:
            raise GankitError(f"{flag}: give at least one seed")
        for seed in seeds:
            check_seed(seed, f"{flag}: seed {seed}")
    c_dim = int(spec.get("c_dim") or 0)
    row_labels = None
    if rows is not None:
        row_labels = seed_labels(c_dim, rows, row_classes, class_index, "--row-classes")
    elif row_classes is not None:
        raise GankitError("--row-classes with --row-ws: saved ws hold their class already")
    col_labels = seed_labels(c_dim, cols, col_classes, class_index, "--col-classes")
    noise_seed = rows[0] if rows else 0
    with seeded_noise(kwargs, noise_seed, next(G.parameters()).device):
        if rows is not None:
            ws_rows = _map(G, rows, row_labels, kwargs, batch)
            names: list[int | str] = list(rows)
        else:
            assert row_ws is not None
            ws_rows = truncate_ws(G, row_ws, kwargs["truncation_psi"], kwargs["truncation_cutoff"])
            names = [f"w{i}" for i in range(row_ws.shape[0])]
        col_ws = _map(G, cols, col_labels, kwargs, batch)
        cells = cell_ws(list(ws_rows), list(col_ws), layers)
        images = synthesize(G, cells.flatten(0, 1)[1:], kwargs, batch)
    out = torch.zeros(cells.shape[0] * cells.shape[1], *images.shape[1:], dtype=torch.uint8)
    out[1:] = images
    return StyleMix(out.unflatten(0, cells.shape[:2]), names, list(cols), layers)


def _check_mapping(G: nn.Module, family: str) -> None:
    """Refuse a G without a mapping network (nothing to mix), naming its family."""
    if not has_mapping(G):
        raise GankitError(
            f"style-mix needs a StyleGAN2 generator (a mapping network and style inputs); this "
            f"run's generator is {family!r}, which has none"
        )


def cell_ws(
    row_ws: list[torch.Tensor], col_ws: list[torch.Tensor], layers: list[int]
) -> torch.Tensor:
    """The ws of every cell, `[R+1, K+1, num_ws, w_dim]`: column seeds' own in row 0, row seeds'
    own in column 0, row i's ws with `layers` from column j's at (i+1, j+1); zeros at (0, 0)."""
    rows, cols = torch.stack(row_ws), torch.stack(col_ws)
    cells = rows.new_zeros(len(row_ws) + 1, len(col_ws) + 1, *rows.shape[1:])
    cells[0, 1:] = cols
    cells[1:, 0] = rows
    cells[1:, 1:] = rows[:, None]
    cells[1:, 1:, layers] = cols[None, :, layers]
    return cells


def seed_labels(
    c_dim: int, seeds: list[int], classes: list[int] | None, class_index: int | None, flag: str
) -> torch.Tensor | None:
    """The labels of one side's seeds: `classes` (one for all, or one per seed), else
    `class_index` for every seed; None for an unconditional run (which takes no classes)."""
    if classes is None:
        if c_dim and class_index is None:
            raise GankitError(
                f"this run's generator is conditional on {c_dim} classes: choose the class of "
                f"every image with --class K (0 <= K < {c_dim}), or each seed's with "
                "--row-classes and --col-classes"
            )
        return class_labels(c_dim, len(seeds), class_index)
    if len(classes) not in (1, len(seeds)):
        raise GankitError(
            f"{flag}: give one class for all {len(seeds)} seeds or one per seed; got "
            f"{len(classes)} classes"
        )
    if not c_dim:
        raise GankitError(f"{flag}: this run's generator is unconditional; leave out {flag}")
    if outside := [k for k in classes if k >= c_dim]:
        raise GankitError(
            f"{flag}: class {outside[0]} is outside this run's classes: use 0 to {c_dim - 1}"
        )
    return torch.tensor(classes * (len(seeds) // len(classes)), dtype=torch.int64)


def _map(
    G: nn.Module,
    seeds: list[int],
    labels: torch.Tensor | None,
    kwargs: dict[str, object],
    batch: int,
) -> torch.Tensor:
    """The seeds' (truncated) ws `[len(seeds), num_ws, w_dim]`, on the CPU."""
    device = next(G.parameters()).device
    z = seed_latents(G.z_dim, seeds)
    ws = []
    for start in range(0, len(seeds), batch):
        c = None if labels is None else labels[start : start + batch].to(device)
        ws.append(
            G.mapping(
                z[start : start + batch].to(device),
                c,
                truncation_psi=kwargs["truncation_psi"],
                truncation_cutoff=kwargs["truncation_cutoff"],
            ).cpu()
        )
    return torch.cat(ws)


def write_style_mix(mix: StyleMix, out: str | Path) -> Path:
    """Write the figure: a .png/.jpg picture, a .npy array `[R+1, K+1, C, H, W]`, or a folder
    (`out` ending in '/') with every image as `ROW-COL.png` (own images `SEED-SEED.png`) and
    `grid.png`."""
    out_text = str(out)
    path = Path(out_text)
    cols = mix.images.shape[1]
    flat = mix.images.flatten(0, 1)
    if out_text.endswith(("/", "\\")) or path.is_dir():
        path.mkdir(parents=True, exist_ok=True)
        for i, row_seed in enumerate([None, *mix.row_seeds]):
            for j, col_seed in enumerate([None, *mix.col_seeds]):
                if i == j == 0:
                    continue
                name = f"{row_seed if i else col_seed}-{col_seed if j else row_seed}.png"
                save_grid(mix.images[i, j][None], path / name, cols=1)
        save_grid(flat, path / "grid.png", cols=cols)
        return path
    suffix = path.suffix.lower()
    if suffix not in (".npy", *IMAGE_SUFFIXES):
        raise GankitError(
            f"--out {out_text!r}: use a .png/.jpg picture, a folder ending in '/', or a .npy file"
        )
    if suffix == ".npy":
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, mix.images.numpy())
        return path
    return save_grid(flat, path, cols=cols)
