"""Sampling from a trained run: rebuild G_ema from a checkpoint, draw samples, write them out.

Latents come from a CPU generator seeded by the user and labels are a fixed function of the
request (one class, or 0..c_dim-1 cyclically), so a seed gives the same samples on any device.
Image runs give uint8 images `[N, C, H, W]`; 2-D point runs (ring8, grid25) float32 points
`[N, 2]`.

Seeds, two conventions:
- Generators with a mapping network (StyleGAN2) take the official stylegan2-ada-pytorch
  `generate.py` latents: seed s gives `np.random.RandomState(s).randn(1, z_dim)`, and sample i of
  `--seed S` has seed S + i, so `--seed 600 --num 6` gives the images of the official
  `--seeds=600-605` (`seed_latents`).
- Every other family keeps gankit's own: all N latents from one `torch.Generator` seeded with S
  (`nets.draw_latents`), so their samples stay what they were.

StyleGAN2 sampling options (`style_kwargs`): truncation `w_avg + psi * (w - w_avg)` of the first
`truncation_cutoff` ws (all by default) and the noise mode, "const" by default as in the official
tools. Deviation: the official "random" noise comes from the unseeded global stream; here it is
drawn from torch's generator seeded with the request's seed (and the global state is restored
after), so a command repeats itself on one device.

One sample per seed (`sample`, `--seeds`): sample k is sample 0 of `--seed seeds[k] --num 1`,
whatever the family, so any set of seeds (a page's grid) is one reproducible command; "random"
noise is then seeded per seed. Saved ws (`gankit project`'s `projected_w.npy`, `--ws`) are
rendered through `G.synthesis` after the same truncation the mapping network applies.
Progressive runs (ProGAN, StyleGAN v1) render at the checkpoint's stage, or at an earlier one
(`--stage RES[:ALPHA]`, `stage_kwargs`).

The loaded-generator functions (`sample`, `draw`, `render_ws`) are what `generate` runs after
`load_generator`; `gankit explore` calls them on its one loaded copy, so the page shows exactly
what the command writes.
"""

from __future__ import annotations

import inspect
import io
import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from gankit.device import resolve_device
from gankit.errors import GankitError
from gankit.nets import build_nets, draw_latents, run_generator
from gankit.train import checkpoint as ckpt
from gankit.viz import save_grid, to_uint8

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
#: The truncation a family's pictures get when none is asked for: StyleGAN (v1)'s official
#: `G_style` default, psi 0.7 on the first 8 ws (StyleGAN2's official tools: none). Metrics
#: never truncate.
PICTURE_TRUNCATION: dict[str, tuple[float, int]] = {"stylegan": (0.7, 8)}
#: StyleGAN2's noise modes: the stored per-layer noise, fresh noise per image, or none.
NOISE_MODES = ("const", "random", "none")
#: The seeds numpy's RandomState accepts.
MAX_SEED = 2**32 - 1
#: Samples drawn when no count is given: a 8x8 grid, or VEEGAN/PacGAN's 2,500 points.
DEFAULT_NUM = {"images": 64, "points": 2500}


@dataclass
class Samples:
    """What `generate` drew: uint8 images `[N, C, H, W]` or float32 points `[N, 2]`."""

    values: torch.Tensor
    #: int64 `[N]` labels a conditional G was given; None for an unconditional G.
    labels: torch.Tensor | None = None
    kind: str = "images"  # or "points"
    c_dim: int = 0
    #: The one class every sample has (`--class`); None when labels cycle through the classes.
    class_index: int | None = None
    #: Points only: the run's 2-D dataset (ring8, grid25), drawn under the scatter; None if unknown.
    mixture: str | None = None

    def __len__(self) -> int:
        return self.values.shape[0]

    @property
    def rows_by_class(self) -> bool:
        """True when a grid shows one row per class (cyclic labels, more samples than classes)."""
        return self.labels is not None and self.class_index is None and len(self) > self.c_dim


def load_generator(
    target: str | Path, device: str | torch.device = "cpu"
) -> tuple[nn.Module, dict[str, Any], dict[str, Any]]:
    """(G_ema in eval mode, sampling kwargs of the checkpoint's stage, model spec) of a run or file."""
    device = resolve_device(device) if isinstance(device, str) else device
    path, state = ckpt.resolve_checkpoint(target, map_location="cpu")
    spec = state["model"]
    weights = state["nets"].get("G_ema")
    if weights is None:
        raise GankitError(f"checkpoint {str(path)!r} holds no G_ema to sample from")
    if not all(torch.isfinite(t).all() for t in weights.values() if t.is_floating_point()):
        raise GankitError(
            f"G_ema in {str(path)!r} has NaN or infinite weights (the run diverged before this "
            "snapshot); sample from an earlier checkpoint of the run"
        )
    G = build_nets(spec)["G"]
    G.load_state_dict(weights)
    return G.to(device).eval().requires_grad_(False), dict(state.get("sampling", {})), spec


def class_labels(c_dim: int, num: int, class_index: int | None = None) -> torch.Tensor | None:
    """The labels `generate` uses: None (unconditional), all `class_index`, else 0..c_dim-1 cyclically."""
    if class_index is not None:
        if c_dim == 0:
            raise GankitError(
                f"--class {class_index}: this run's generator is unconditional (it was trained "
                "without labels), so there are no classes to choose; leave out --class"
            )
        if not 0 <= class_index < c_dim:
            raise GankitError(
                f"--class {class_index} is outside this run's classes: use 0 to {c_dim - 1} "
                f"({c_dim} classes)"
            )
        return torch.full((num,), class_index, dtype=torch.int64)
    return torch.arange(num) % c_dim if c_dim else None


@torch.no_grad()
def generate(
    target: str | Path,
    *,
    num: int | None = None,
    seed: int = 0,
    seeds: Sequence[int] | None = None,
    ws: str | Path | None = None,
    batch: int = 64,
    device: str = "auto",
    class_index: int | None = None,
    truncation_psi: float | None = None,
    truncation_cutoff: int | None = None,
    noise_mode: str | None = None,
    stage: tuple[int, float | None] | None = None,
) -> Samples:
    """Samples from G_ema of a run or checkpoint: `load_generator`, then one of
    - `draw` (the default): `num` samples (default `DEFAULT_NUM` of the run's kind) from `seed`;
    - `sample` with `seeds`: one sample per seed (sample k = sample 0 of `--seed seeds[k]`);
    - `render_ws` with `ws`: the ws saved in that .npy file (`gankit project`'s projected_w.npy),
      "random" noise seeded with `seed`.
    `class_index`, truncation, noise and `stage` as in `draw`; a combination that means nothing
    (`num` with `seeds` or `ws`, `seeds` with `ws`) is a `GankitError`.
    """
    if ws is not None and seeds is not None:
        raise GankitError("--ws renders the file's latents, --seeds draws latents: give one")
    if num is not None and (seeds is not None or ws is not None):
        flag = "--ws" if ws is not None else "--seeds"
        raise GankitError(f"--num with {flag}: {flag} sets the samples; leave out --num")
    G, sampling, spec = load_generator(target, device)
    kind = "points" if getattr(G, "output_kind", "images") == "points" else "images"
    mixture = run_mixture(target) if kind == "points" else None
    options: dict[str, Any] = dict(
        class_index=class_index, truncation_psi=truncation_psi,
        truncation_cutoff=truncation_cutoff, noise_mode=noise_mode, stage=stage, batch=batch,
    )  # fmt: skip
    if ws is not None:
        return sample(G, spec, sampling, seeds=[seed], ws=load_ws(ws, G, spec["name"]), **options)
    if seeds is not None:
        return sample(G, spec, sampling, seeds=seeds, mixture=mixture, **options)
    return draw(G, spec, sampling, num=num, seed=seed, mixture=mixture, **options)


@torch.no_grad()
def draw(
    G: nn.Module,
    spec: dict[str, Any],
    sampling: dict[str, Any],
    *,
    num: int | None = None,
    seed: int = 0,
    class_index: int | None = None,
    truncation_psi: float | None = None,
    truncation_cutoff: int | None = None,
    noise_mode: str | None = None,
    stage: tuple[int, float | None] | None = None,
    batch: int = 64,
    mixture: str | None = None,
) -> Samples:
    """`num` samples of a loaded G as `gankit generate --seed SEED --num NUM` draws them.

    Latents are drawn on the CPU from `seed`: a G with a mapping network (StyleGAN2) gives sample
    i the official latent of seed `seed + i` (`seed_latents`); other families draw all `num`
    from one generator seeded with `seed` (`nets.draw_latents`). A conditional G gets
    `class_index` for every sample, or labels 0..c_dim-1 cyclically (sample i has class i mod
    c_dim); `class_index` on an unconditional run, or outside [0, c_dim), is a `GankitError`.
    `truncation_psi`, `truncation_cutoff` and `noise_mode` (None: not given) go to a StyleGAN2 G
    (see `style_kwargs`); given for any other family they are a `GankitError`. `stage` (a
    progressive run's (resolution, alpha), see `stage_kwargs`) replaces the checkpoint's.
    """
    kwargs = generator_kwargs(
        G, spec, sampling, truncation_psi, truncation_cutoff, noise_mode, stage
    )
    kind = output_kind(G)
    num = DEFAULT_NUM[kind] if num is None else num
    check_output_size(num, spec, kind)
    c_dim = int(spec.get("c_dim") or 0)
    labels = class_labels(c_dim, num, class_index)
    if has_mapping(G):
        check_seed(seed, "--seed")
        check_seed(seed + num - 1, f"--seed {seed} with --num {num}: the last sample's seed")
        z = seed_latents(G.z_dim, range(seed, seed + num))
    else:
        z = draw_latents(G, num, torch.Generator().manual_seed(seed))
    with seeded_noise(kwargs, seed, next(G.parameters()).device):
        out = run_generator(G, z, labels, kwargs, batch)
    return _samples(out, labels, kind, c_dim, class_index, mixture)


@torch.no_grad()
def sample(
    G: nn.Module,
    spec: dict[str, Any],
    sampling: dict[str, Any],
    *,
    seeds: Sequence[int],
    class_index: int | None = None,
    truncation_psi: float | None = None,
    truncation_cutoff: int | None = None,
    noise_mode: str | None = None,
    stage: tuple[int, float | None] | None = None,
    ws: torch.Tensor | None = None,
    batch: int = 64,
    mixture: str | None = None,
) -> Samples:
    """One sample per seed from a loaded G: sample k equals sample 0 of `gankit generate
    --seed seeds[k] --num 1` with the same options, for every family (`latents_of`).

    Labels as in `draw` (class_index for all, else sample k has class k mod c_dim). "random"
    noise is seeded per seed (so it needs one G call per seed); otherwise the seeds go through G
    `batch` at a time. With `ws` (`[N, num_ws, w_dim]`) the samples are those ws instead
    (`render_ws`, noise seeded with `seeds[0]`).
    """
    if ws is not None:
        if class_index is not None:
            raise GankitError(
                f"--class {class_index} with --ws: saved ws already hold their class; leave out "
                "--class"
            )
        images = render_ws(
            G, spec, sampling, ws, truncation_psi=truncation_psi,
            truncation_cutoff=truncation_cutoff, noise_mode=noise_mode, stage=stage,
            seed=seeds[0] if seeds else 0, batch=batch,
        )  # fmt: skip
        return Samples(images, None, "images", int(spec.get("c_dim") or 0))
    seeds = list(seeds)
    if not seeds:
        raise GankitError("--seeds: give at least one seed")
    kwargs = generator_kwargs(
        G, spec, sampling, truncation_psi, truncation_cutoff, noise_mode, stage
    )
    kind = output_kind(G)
    check_output_size(len(seeds), spec, kind)
    c_dim = int(spec.get("c_dim") or 0)
    labels = class_labels(c_dim, len(seeds), class_index)
    z = latents_of(G, seeds)
    if kwargs.get("noise_mode") == "random":
        device = next(G.parameters()).device
        parts = []
        for k, seed in enumerate(seeds):
            with seeded_noise(kwargs, seed, device):
                c = None if labels is None else labels[k : k + 1]
                parts.append(run_generator(G, z[k : k + 1], c, kwargs, 1))
        out = torch.cat(parts)
    else:
        out = run_generator(G, z, labels, kwargs, batch)
    return _samples(out, labels, kind, c_dim, class_index, mixture)


def _samples(
    out: torch.Tensor,
    labels: torch.Tensor | None,
    kind: str,
    c_dim: int,
    class_index: int | None,
    mixture: str | None,
) -> Samples:
    """G's raw outputs as `Samples`: float32 points, or uint8 images."""
    if kind == "points":
        return Samples(out.float(), labels, kind, c_dim, class_index, mixture)
    return Samples(to_uint8(out), labels, kind, c_dim, class_index)


def output_kind(G: nn.Module) -> str:
    """ "points" for a 2-D point generator, else "images"."""
    return "points" if getattr(G, "output_kind", "images") == "points" else "images"


def latents_of(G: nn.Module, seeds: Sequence[int]) -> torch.Tensor:
    """z `[len(seeds), z_dim]`, row k the first latent `gankit generate --seed seeds[k]` draws:
    the official latent for a G with a mapping network, else `draw_latents` from that seed."""
    if has_mapping(G):
        for seed in seeds:
            check_seed(seed, f"seed {seed}")
        return seed_latents(G.z_dim, seeds)
    if not seeds:
        return torch.zeros(0, G.z_dim)
    return torch.cat([draw_latents(G, 1, torch.Generator().manual_seed(s)) for s in seeds])


def generator_kwargs(
    G: nn.Module,
    spec: dict[str, Any],
    sampling: dict[str, Any],
    truncation_psi: float | None = None,
    truncation_cutoff: int | None = None,
    noise_mode: str | None = None,
    stage: tuple[int, float | None] | None = None,
) -> dict[str, Any]:
    """G's keyword arguments for one request: the checkpoint's sampling kwargs, the stage
    (`stage_kwargs`) and truncation and noise (`style_kwargs`), each checked."""
    family = spec["name"]
    style = style_kwargs(G, family, truncation_psi, truncation_cutoff, noise_mode)
    return {**sampling, **stage_kwargs(G, family, sampling, stage), **style}


def has_mapping(G: nn.Module) -> bool:
    """True for a StyleGAN-family G: `G.mapping(z, c) -> ws` and `G.synthesis(ws, noise_mode=...)`."""
    return isinstance(getattr(G, "mapping", None), nn.Module) and hasattr(G, "synthesis")


def check_seed(seed: int, what: str) -> None:
    """Refuse a seed numpy's RandomState cannot take (the official latents need one)."""
    if not 0 <= seed <= MAX_SEED:
        raise GankitError(f"{what} is {seed}; seeds of StyleGAN2 runs lie in 0 .. {MAX_SEED:,}")


def seed_latents(z_dim: int, seeds: Sequence[int]) -> torch.Tensor:
    """float32 latents `[len(seeds), z_dim]`, row k = `np.random.RandomState(seeds[k]).randn(z_dim)`:
    the official tools' z for each seed (float64 there, cast to float32 by the mapping network)."""
    rows = [np.random.RandomState(seed).randn(z_dim) for seed in seeds]
    return torch.from_numpy(np.stack(rows) if rows else np.zeros((0, z_dim))).float()


def style_kwargs(
    G: nn.Module,
    family: str,
    truncation_psi: float | None = None,
    truncation_cutoff: int | None = None,
    noise_mode: str | None = None,
) -> dict[str, Any]:
    """G's keyword arguments for truncation and noise; None means the option was not given.

    A StyleGAN-family G gets `truncation_psi` (default 1: none; `PICTURE_TRUNCATION` for
    StyleGAN v1: 0.7 on the first 8 ws), `truncation_cutoff` (the number of leading ws
    truncated, 0 .. num_ws; default all) and `noise_mode` (default "const"). For a G
    without a mapping network every given option is an error naming the option and `family`.
    """
    given = {"--trunc": truncation_psi, "--trunc-cutoff": truncation_cutoff}
    given["--noise-mode"] = noise_mode
    if not has_mapping(G):
        for flag, value in given.items():
            if value is not None:
                what = "per-layer noise inputs" if flag == "--noise-mode" else "w to truncate"
                raise GankitError(
                    f"{flag} applies to StyleGAN2 generators (a mapping network and {what}); "
                    f"this run's generator is {family!r}, which has none: leave out {flag}"
                )
        return {}
    noise_mode = "const" if noise_mode is None else noise_mode
    if noise_mode not in NOISE_MODES:
        raise GankitError(f"--noise-mode {noise_mode!r}: use one of {', '.join(NOISE_MODES)}")
    default_psi, default_cutoff = PICTURE_TRUNCATION.get(family, (None, None))
    if truncation_cutoff is not None:
        if truncation_psi is None and default_psi is None:
            raise GankitError(
                f"--trunc-cutoff {truncation_cutoff} sets how many ws --trunc PSI pulls towards "
                "w_avg; give --trunc as well"
            )
        if not 0 <= truncation_cutoff <= G.num_ws:
            raise GankitError(
                f"--trunc-cutoff {truncation_cutoff} is outside 0 .. {G.num_ws}: this generator "
                f"has num_ws = {G.num_ws} style inputs"
            )
    if truncation_psi is None and default_psi is not None:
        truncation_psi = default_psi
        if truncation_cutoff is None:
            truncation_cutoff = min(default_cutoff, G.num_ws)
    psi = 1.0 if truncation_psi is None else float(truncation_psi)
    if psi != 1 and not hasattr(G.mapping, "w_avg"):
        raise GankitError(f"--trunc: this {family!r} generator keeps no w_avg to truncate towards")
    return {"truncation_psi": psi, "truncation_cutoff": truncation_cutoff, "noise_mode": noise_mode}


@contextmanager
def seeded_noise(style: dict[str, Any], seed: int, device: torch.device) -> Iterator[None]:
    """Within: torch's streams seeded with `seed` when `style` asks for random noise, so the noise
    repeats with the command; the global random state is restored afterwards."""
    if style.get("noise_mode") != "random":
        yield
        return
    cuda = []
    if device.type == "cuda":
        cuda = [device.index if device.index is not None else torch.cuda.current_device()]
    with torch.random.fork_rng(devices=cuda):
        torch.manual_seed(seed)
        yield


# ------------------------------------------------------------------ progressive stages


def is_progressive(G: nn.Module) -> bool:
    """True for a G that grows (ProGAN, StyleGAN v1): it renders any of `G.resolutions` at a
    fade-in alpha, `G(z, ..., resolution=R, alpha=a)`."""
    params = inspect.signature(G.forward).parameters
    return hasattr(G, "resolutions") and "resolution" in params and "alpha" in params


def trained_stage(G: nn.Module, sampling: dict[str, Any]) -> tuple[int, float]:
    """(resolution, alpha) the checkpoint of a progressive G was trained at (its sampling
    kwargs; fully grown when it records none)."""
    resolution = int(sampling.get("resolution") or G.img_resolution)
    return resolution, float(sampling.get("alpha", 1.0))


def stages(G: nn.Module, sampling: dict[str, Any]) -> list[tuple[int, float]] | None:
    """Every stage a progressive G can render, up to the trained one: the earlier resolutions
    fully faded in, then the trained resolution at its alpha; None for other generators."""
    if not is_progressive(G):
        return None
    resolution, alpha = trained_stage(G, sampling)
    return [(r, 1.0) for r in G.resolutions if r < resolution] + [(resolution, alpha)]


def parse_stage(text: str) -> tuple[int, float | None]:
    """`--stage` text `RES` or `RES:ALPHA` -> (resolution, alpha or None)."""
    res_text, _, alpha_text = text.partition(":")
    try:
        resolution = int(res_text)
        alpha = float(alpha_text) if alpha_text else None
    except ValueError:
        raise GankitError(
            f"--stage {text!r}: give a resolution, optionally with a fade-in alpha, e.g. 8 or 8:0.5"
        ) from None
    return resolution, alpha


def stage_kwargs(
    G: nn.Module, family: str, sampling: dict[str, Any], stage: tuple[int, float | None] | None
) -> dict[str, Any]:
    """G's (resolution, alpha) kwargs for `stage` (None: the checkpoint's own, nothing to add).

    The stage must be one a progressive G has been trained through: a resolution among its
    resolutions, at most the checkpoint's, alpha in [0, 1] and, at the checkpoint's resolution,
    at most the alpha it reached. A missing alpha means fully faded in, or the checkpoint's alpha
    at its own resolution. Any stage for a G that does not grow is a `GankitError`.
    """
    if stage is None:
        return {}
    resolution, alpha = stage
    text = f"{resolution}" if alpha is None else f"{resolution}:{alpha:g}"
    if not is_progressive(G):
        raise GankitError(
            f"--stage {text}: stages exist for progressive runs (progan, stylegan); this run's "
            f"generator is {family!r}, which always renders its full resolution; leave out --stage"
        )
    top, top_alpha = trained_stage(G, sampling)
    trained = [r for r in G.resolutions if r <= top]
    if resolution not in trained:
        listed = ", ".join(map(str, trained))
        raise GankitError(
            f"--stage {text}: this checkpoint has been trained at {listed} px (it is at {top} px, "
            f"alpha {top_alpha:g}); choose one of those resolutions"
        )
    if alpha is None:
        alpha = top_alpha if resolution == top else 1.0
    if not 0.0 <= alpha <= 1.0:
        raise GankitError(f"--stage {text}: the fade-in alpha lies in 0 .. 1")
    if resolution == top and alpha > top_alpha:
        raise GankitError(
            f"--stage {text}: this checkpoint faded {top} px in only to alpha {top_alpha:g}; "
            f"choose an alpha in 0 .. {top_alpha:g}"
        )
    return {"resolution": resolution, "alpha": float(alpha)}


# ------------------------------------------------------------------ saved ws


def load_ws(path: str | Path, G: nn.Module, family: str = "") -> torch.Tensor:
    """float32 ws `[N, num_ws, w_dim]` from a .npy file of `[num_ws, w_dim]` (`gankit project`'s
    projected_w.npy) or `[N, num_ws, w_dim]`, checked against G (`check_ws`)."""
    path = Path(path)
    if not path.is_file():
        raise GankitError(f"--ws {str(path)!r}: no such file")
    return read_ws(path, G, family, f"--ws {str(path)!r}")


def read_ws(source: Path | bytes, G: nn.Module, family: str, what: str) -> torch.Tensor:
    """float32 ws `[N, num_ws, w_dim]` from a .npy file or its bytes (an upload), never
    unpickling; `what` names the source in the errors (`check_ws`)."""
    try:
        array = np.load(io.BytesIO(source) if isinstance(source, bytes) else source,
                        allow_pickle=False)  # fmt: skip
    except (ValueError, OSError, EOFError):
        raise GankitError(
            f"{what} is not a .npy array file; give the projected_w.npy that `gankit project` "
            "writes (float32 [num_ws, w_dim])"
        ) from None
    return check_ws(array, G, family, what)


def check_ws(array: np.ndarray, G: nn.Module, family: str, what: str) -> torch.Tensor:
    """`array` as float32 ws `[N, num_ws, w_dim]` for G, or a `GankitError` naming the
    expected shape (a G without a mapping network takes no ws at all)."""
    if not has_mapping(G):
        raise GankitError(
            f"{what}: saved ws are StyleGAN2/StyleGAN latents; this run's generator is "
            f"{family!r}, which has no mapping network and takes no ws"
        )
    expected = (G.num_ws, G.w_dim)
    shape = tuple(array.shape)
    if not (
        np.issubdtype(array.dtype, np.floating)
        and array.ndim in (2, 3)
        and shape[-2:] == expected
        and array.size > 0
    ):
        raise GankitError(
            f"{what} holds {array.dtype} {list(shape)}; this generator takes float ws "
            f"[num_ws, w_dim] = {list(expected)} (or [N, {expected[0]}, {expected[1]}])"
        )
    ws = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))
    if not torch.isfinite(ws).all():
        raise GankitError(f"{what} holds NaN or infinite values")
    return ws[None] if ws.ndim == 2 else ws


def truncate_ws(
    G: nn.Module, ws: torch.Tensor, psi: float, cutoff: int | None = None
) -> torch.Tensor:
    """`w_avg + psi (w - w_avg)` for the first `cutoff` ws (all for None): the truncation the
    mapping network applies, in the same operations, so saved ws truncate like seeds."""
    if psi == 1:
        return ws
    w_avg = G.mapping.w_avg.to(ws.device, ws.dtype)
    if cutoff is None:
        return w_avg.lerp(ws, psi)
    return torch.cat([w_avg.lerp(ws[:, :cutoff], psi), ws[:, cutoff:]], dim=1)


def synthesize(
    G: nn.Module, ws: torch.Tensor, kwargs: dict[str, Any], batch: int = 64
) -> torch.Tensor:
    """uint8 images of ws `[N, num_ws, w_dim]` through `G.synthesis`, `batch` at a time, with
    the noise mode and, for a progressive G, the stage in `kwargs` (G's sampling kwargs)."""
    device = next(G.parameters()).device
    extra = {k: kwargs[k] for k in ("resolution", "alpha") if k in kwargs and is_progressive(G)}
    out = [
        G.synthesis(ws[i : i + batch].to(device), noise_mode=kwargs["noise_mode"], **extra).cpu()
        for i in range(0, ws.shape[0], batch)
    ]
    return to_uint8(torch.cat(out))


@torch.no_grad()
def render_ws(
    G: nn.Module,
    spec: dict[str, Any],
    sampling: dict[str, Any],
    ws: torch.Tensor,
    *,
    truncation_psi: float | None = None,
    truncation_cutoff: int | None = None,
    noise_mode: str | None = None,
    stage: tuple[int, float | None] | None = None,
    seed: int = 0,
    batch: int = 64,
) -> torch.Tensor:
    """uint8 images of saved ws `[N, num_ws, w_dim]` (or `[num_ws, w_dim]`): truncated toward
    w_avg as `--trunc`/`--trunc-cutoff` ask (none when not given: saved ws, e.g. a projection,
    are the image already), then `G.synthesis` with the noise mode ("random": seeded with
    `seed`) at the checkpoint's stage or `stage`."""
    family = spec["name"]
    ws = check_ws(ws.cpu().numpy() if isinstance(ws, torch.Tensor) else ws, G, family, "ws")
    psi = 1.0 if truncation_psi is None else truncation_psi
    kwargs = generator_kwargs(G, spec, sampling, psi, truncation_cutoff, noise_mode, stage)
    ws = truncate_ws(G, ws, kwargs["truncation_psi"], kwargs["truncation_cutoff"])
    with seeded_noise(kwargs, seed, next(G.parameters()).device):
        return synthesize(G, ws, kwargs, batch)


#: The most memory `generate` fills with samples in one call.
MAX_SAMPLE_BYTES = 8 * 2**30


def check_output_size(num: int, spec: dict[str, Any], kind: str) -> None:
    """Refuse a `--num` whose samples would not fit in memory, naming the size."""
    if kind == "points":
        per_sample = 2 * 4
    else:
        res = int(spec.get("img_resolution") or 0)
        per_sample = int(spec.get("img_channels") or 3) * res * res
    size = num * per_sample
    if size > MAX_SAMPLE_BYTES:
        most = MAX_SAMPLE_BYTES // per_sample
        raise GankitError(
            f"--num {num:,} would hold {size / 2**30:,.1f} GiB of samples in memory (more than "
            f"{MAX_SAMPLE_BYTES / 2**30:g} GiB); generate at most {most:,} per call and use "
            "another --seed for each further batch"
        )


def run_dir_of(target: str | Path) -> Path | None:
    """The run directory of a run directory or of a checkpoint inside its `checkpoints/`."""
    path = Path(target)
    if path.is_dir():
        return path
    if path.parent.name == "checkpoints":
        return path.parent.parent
    return None


def translation_run(target: str | Path) -> bool:
    """True when the model of the run (or of the checkpoint's run) `target` translates between
    two domains (CycleGAN: no latent to sample), from its config.yaml."""
    import yaml

    import gankit.models  # noqa: F401  (registers the built-in models)
    from gankit.registry import MODELS

    run_dir = run_dir_of(target)
    if run_dir is None:
        return False
    try:
        config = yaml.safe_load((run_dir / "config.yaml").read_text()) or {}
        name = config.get("model", {}).get("name")
    except (OSError, yaml.YAMLError, AttributeError):
        return False
    return name in MODELS and "unpaired" in MODELS.entry(name).kinds


def run_mixture(target: str | Path) -> str | None:
    """The 2-D mixture (ring8, grid25) a run trained on, from its config.yaml; None if unknown."""
    import yaml

    from gankit.data.toy import MIXTURES

    run_dir = run_dir_of(target)
    config = run_dir / "config.yaml" if run_dir is not None else None
    if config is None or not config.is_file():
        return None
    try:
        name = (yaml.safe_load(config.read_text()) or {}).get("data", {}).get("name")
    except (yaml.YAMLError, AttributeError):
        return None
    return name if name in MIXTURES else None


def write_samples(samples: Samples | torch.Tensor, out: str | Path) -> Path:
    """Write samples: a grid or scatter (.png/.jpg), one PNG per image (a folder, `out` ending in
    '/'), or a .npy array (with `<name>.labels.npy` beside it for a conditional run)."""
    if not isinstance(samples, Samples):
        samples = Samples(samples)
    out_text = str(out)
    path = Path(out_text)
    if out_text.endswith(("/", "\\")) or path.is_dir():
        return _write_folder(samples, path)
    suffix = path.suffix.lower()
    if suffix not in (".npy", *IMAGE_SUFFIXES):
        raise GankitError(
            f"--out {out_text!r}: use a .png/.jpg grid, a folder ending in '/', or a .npy file"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".npy":
        np.save(path, samples.values.numpy())
        if samples.labels is not None:
            np.save(labels_path(path), samples.labels.numpy())
        return path
    if samples.kind == "points":
        from gankit.viz.points import save_scatter

        return save_scatter(samples.values, path, mixture=samples.mixture)
    if samples.rows_by_class:
        images, cols = class_rows(samples.values, samples.c_dim)
        return save_grid(images, path, cols=cols)
    return save_grid(samples.values, path)


def labels_path(npy_path: Path) -> Path:
    """`x.npy` -> `x.labels.npy`, where the labels of the samples in `x.npy` go."""
    return npy_path.with_name(f"{npy_path.stem}.labels.npy")


def class_rows(images: torch.Tensor, c_dim: int) -> tuple[torch.Tensor, int]:
    """Images with cyclic labels (image i has class i mod c_dim) laid out with row k = class k.

    Returns the images in grid order, with black images where a row is short, and the column
    count `ceil(N / c_dim)`.
    """
    n = images.shape[0]
    cols = math.ceil(n / c_dim)
    canvas = torch.zeros(c_dim * cols, *images.shape[1:], dtype=images.dtype)
    i = torch.arange(n)
    canvas[(i % c_dim) * cols + i // c_dim] = images
    return canvas, cols


def _write_folder(samples: Samples, folder: Path) -> Path:
    from PIL import Image

    if samples.kind == "points":
        raise GankitError(
            f"--out {str(folder)!r} is a folder, which holds one PNG per image, but this run "
            "generates 2-D points; use --out points.npy (float32 [N, 2]) or --out points.png "
            "(a scatter plot)"
        )
    folder.mkdir(parents=True, exist_ok=True)
    for i, img in enumerate(samples.values):
        array = img.permute(1, 2, 0).numpy()
        Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array).save(
            folder / f"{i:06d}.png"
        )
    if samples.labels is not None:
        rows = [f"{i:06d}.png,{int(k)}" for i, k in enumerate(samples.labels)]
        (folder / "labels.csv").write_text("file,label\n" + "\n".join(rows) + "\n")
    return folder
