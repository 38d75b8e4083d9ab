"""Translating images with one generator of a trained translation run (CycleGAN: `G_ab`, `G_ba`).

`gankit translate RUN --direction a2b --input photos/ --out zebras/` loads only the generator it
needs (its average, `G_ab_ema`, where the run keeps one) from the run's newest checkpoint, read
memory-mapped so the discriminators and optimizer moments are never read from disk, and maps each
input image into the other domain:

- Inputs: one image file, a folder (searched recursively, sorted) or a .zip of images, each
  converted to the source domain's channels ("L" or "RGB", as training converts: alpha composited
  on white, palettes expanded, 16-bit scaled; EXIF orientation applied) and scaled to [-1, 1].
- Size: by default each image's own. The generators take sides divisible by `size_multiple` (and,
  for the ResNet generator, at least twice that), so the image is reflect-padded at its right and
  bottom ("replicate" where it is too small to reflect), translated and cropped back. With
  `resolution` the image is first resized to that width, keeping its aspect ratio, with bicubic
  filtering (the official test option `--preprocess scale_width`), and the output has that size.
- Tiles: with `tile`, an image larger than `tile` is translated in overlapping tiles (overlap a
  quarter of a tile) blended with linear ramps, so an image of any size fits in memory. The nets
  normalise each tile by its own statistics (instance norm), so tiles give a slightly different
  image than one pass. An image that runs out of memory in one pass is retried in `OOM_TILE` tiles.
- Outputs: one PNG per input named after it (subfolders kept), mode "L" or "RGB" as the target
  domain; or one uint8 `.npy` `[N, C, H, W]` (the layout of `gankit generate`) when all outputs
  have one size.

Deviation from the official test script: the generator runs in eval mode (batch norm uses its
running statistics, no dropout), so a translation is deterministic; the official script keeps
train mode unless `--eval` is given. With the default instance norm and no dropout both agree.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps
from torch import nn
from tqdm import tqdm

from gankit.data.folder import IMAGE_EXTENSIONS, ImageRef, close_zips, list_images
from gankit.data.imaging import failure, image_size, open_image, to_mode
from gankit.device import resolve_device
from gankit.errors import CheckpointError, DataError, GankitError
from gankit.models.cyclegan import ResnetGenerator
from gankit.nets import build_nets
from gankit.train import checkpoint as ckpt
from gankit.viz import to_uint8

#: --direction -> (generator, source domain, target domain).
DIRECTIONS = {"a2b": ("G_ab", "A", "B"), "b2a": ("G_ba", "B", "A")}
#: The tile side an image is retried at when one pass over it runs out of memory.
OOM_TILE = 512
#: Output file suffixes written as one image (any other --out is a folder, or a .npy).

Note = Callable[[str], None]


@dataclass
class Translator:
    """One generator of a translation run, with what it needs of its inputs."""

    G: nn.Module
    direction: str
    checkpoint: Path
    channels_in: int
    channels_out: int
    #: Input sides must divide by this (two stride-2 convs: 4; a U-Net: 2 ** num_downs).
    multiple: int
    #: The smallest side the generator takes (a multiple of `multiple`).
    min_side: int
    device: torch.device

    @torch.no_grad()
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """G of `x` `[1, C_in, H, W]` (any device), returned as float `[1, C_out, H, W]` on the
        CPU: padded to sides G takes, translated, cropped back."""
        h, w = x.shape[-2:]
        y = self.G(pad_for(x, self.multiple, self.min_side).to(self.device))
        return y[..., :h, :w].float().cpu()


def pad_for(x: torch.Tensor, multiple: int, min_side: int) -> torch.Tensor:
    """`x` `[N, C, H, W]` reflect-padded at its right and bottom to sides G takes (the next
    multiple of `multiple`, at least `min_side`); "replicate" where reflection needs more pixels
    than the image has."""
    h, w = x.shape[-2:]
    pad_h = max(math.ceil(h / multiple) * multiple, min_side) - h
    pad_w = max(math.ceil(w / multiple) * multiple, min_side) - w
    if pad_h == pad_w == 0:
        return x
    mode = "reflect" if pad_h < h and pad_w < w else "replicate"
    return F.pad(x, (0, pad_w, 0, pad_h), mode=mode)


# ------------------------------------------------------------------------- the generator


def load_translator(
    run: str | Path,
    direction: str,
    checkpoint: str | Path | None = None,
    device: str | torch.device = "cpu",
    note: Note | None = None,
) -> Translator:
    """The generator of `direction` ("a2b": G_ab, "b2a": G_ba) from `checkpoint`, else from the
    newest checkpoint of run directory `run` (or `run` itself when it is a checkpoint file)."""
    if direction not in DIRECTIONS:
        raise GankitError(
            f"--direction {direction!r}: use a2b (domain A -> B, generator G_ab) or b2a "
            "(B -> A, G_ba)"
        )
    device = resolve_device(device) if isinstance(device, str) else device
    path, state = open_checkpoint(run, checkpoint, note)
    name, source, target = DIRECTIONS[direction]
    spec, nets = state["model"], state["nets"]
    check_translation_model(run, path, spec, nets)
    key = f"{name}_ema" if f"{name}_ema" in nets else name  # the average, where the run keeps one
    G = generator_from(spec, name, nets[key], path)
    channels = {"A": spec["img_channels"], "B": spec.get("img_channels_b", spec["img_channels"])}
    multiple = int(getattr(G, "size_multiple", 1))
    # The residual blocks reflect-pad by 1 at a quarter of the input's size: 2 px needed there.
    min_side = 2 * multiple if isinstance(G, ResnetGenerator) else multiple
    return Translator(
        G.to(device).eval().requires_grad_(False), direction, path, channels[source],
        channels[target], multiple, min_side, device,
    )  # fmt: skip


def check_translation_model(
    run: str | Path, path: Path, spec: dict[str, Any], nets: dict[str, dict]
) -> None:
    """Refuse a checkpoint without G_ab and G_ba, saying what the run is and what to do instead."""
    if "G_ab" in nets and "G_ba" in nets:
        return
    raise GankitError(
        f"{str(path)!r} holds a {spec.get('name')!r} model (nets {', '.join(sorted(nets))}), not "
        "a translation model with generators G_ab and G_ba: translate needs a run of an unpaired "
        "translation recipe (e.g. `gankit train cyclegan --data DIR` with DIR/trainA and "
        f"DIR/trainB); to sample from this run use `gankit generate {run}`"
    )


def generator_from(
    spec: dict[str, Any], name: str, weights: dict[str, torch.Tensor], path: Path
) -> nn.Module:
    """Net `name` of the model `spec` with `weights`, the other nets never given memory."""
    if not all(torch.isfinite(t).all() for t in weights.values() if t.is_floating_point()):
        raise CheckpointError(
            f"{name} in {str(path)!r} has NaN or infinite weights (the run diverged before this "
            "snapshot); translate with an earlier checkpoint (--checkpoint)"
        )
    weights = {k: v.clone() for k, v in weights.items()}  # off the file's memory map
    with torch.device("meta"):  # built without storage or initialisation: the weights replace it
        G = build_nets(spec)[name]
    G.load_state_dict(weights, assign=True)
    if any(t.is_meta for t in [*G.parameters(), *G.buffers()]):
        # A tensor the state dict does not hold (a non-persistent buffer): build it for real.
        G = build_nets(spec)[name]
        G.load_state_dict(weights)
    return G


def open_checkpoint(
    run: str | Path, checkpoint: str | Path | None = None, note: Note | None = None
) -> tuple[Path, dict[str, Any]]:
    """(path, state) of `checkpoint` (a path, or a file name in RUN/checkpoints/), else of the
    newest readable checkpoint of run directory `run`, or of `run` when it is a file."""
    run = Path(run)
    if checkpoint is not None:
        path = Path(checkpoint)
        if not path.exists() and (run / "checkpoints" / path).is_file():
            path = run / "checkpoints" / path
        return path, load_mapped(path)
    if run.is_file():
        return run, load_mapped(run)
    if not run.is_dir():
        raise CheckpointError(f"{str(run)!r} is neither a run directory nor a checkpoint file")
    candidates = ckpt.list_checkpoints(run / "checkpoints")
    if not candidates:
        ckpt.load_latest(run)  # raises its error: no checkpoint, and why there may be none
    note = note or _note
    for path in reversed(candidates):
        try:
            return path, load_mapped(path)
        except CheckpointError as err:
            note(f"skipping {err}; using an older checkpoint")
    raise CheckpointError(f"every checkpoint in {str(run / 'checkpoints')!r} is corrupt")


def load_mapped(path: Path) -> dict[str, Any]:
    """A checkpoint with its tensors memory-mapped: only the tensors used are read from disk."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # mmap needs the zip format; load_checkpoint reads the rest or says why not
        return ckpt.load_checkpoint(path)
    fine = isinstance(state, dict) and state.get("format") == ckpt.FORMAT
    if not fine or any(key not in state for key in ckpt.REQUIRED_KEYS):
        return ckpt.load_checkpoint(path)  # raises, naming what is wrong with the file
    return state


def _note(text: str) -> None:
    tqdm.write(f"gankit: note: {text}", file=sys.stderr)


# ------------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class Job:
    """One input image and the file its translation goes to (relative to the output folder)."""

    ref: ImageRef
    out_name: str

    @property
    def label(self) -> str:
        """The input as messages name it: its path, or zip:member."""
        return self.ref.path if self.ref.member is None else f"{self.ref.path}:{self.ref.member}"


def list_inputs(source: str | Path) -> list[Job]:
    """The input images of an image file, a folder (recursively, sorted) or a .zip, each with
    the PNG name its output gets; two inputs that would write one name are an error."""
    path = Path(source)
    if not path.exists():
        raise DataError(
            f"--input {str(path)!r} does not exist; give an image file, a folder of images or a "
            ".zip of them"
        )
    if path.is_dir() or path.suffix.lower() == ".zip":
        refs = list_images(path)[0]
    else:
        refs = [ImageRef(path.name, str(path))]
    jobs = [Job(ref, PurePosixPath(ref.name).with_suffix(".png").as_posix()) for ref in refs]
    check_unique_names(jobs)
    return jobs


def check_unique_names(jobs: list[Job]) -> None:
    """Refuse inputs that would write the same output (compared ignoring case, as macOS and
    Windows file systems do), before anything is written."""
    seen: dict[str, Job] = {}
    for job in jobs:
        other = seen.setdefault(job.out_name.casefold(), job)
        if other is not job:
            raise DataError(
                f"{other.label} and {job.label} would both be written to {job.out_name!r} "
                "(outputs are named after the input without its extension); rename one of them"
            )


def read_image(job: Job, channels: int) -> Image.Image:
    """The input image upright (EXIF orientation) in the source domain's mode ("L" or "RGB")."""
    try:
        with job.ref.open() as file, open_image(file) as raw:
            im = to_mode(ImageOps.exif_transpose(raw), channels)
            im.load()
    except Exception as exc:  # PIL raises many types for broken files; all mean "unreadable"
        raise DataError(
            f"cannot read the input image {failure(job.label, exc)}; fix or remove the file"
        ) from None
    return im


def scale_width(im: Image.Image, width: int) -> Image.Image:
    """`im` resized to `width`, height in proportion (rounded down, as the official
    `__scale_width`), with bicubic filtering; unchanged when it already has that width."""
    w, h = im.size
    if w == width:
        return im
    return im.resize((width, max(1, width * h // w)), Image.Resampling.BICUBIC)


def to_input(im: Image.Image) -> torch.Tensor:
    """An "L" or "RGB" image as float `[1, C, H, W]` in [-1, 1]."""
    pixels = torch.from_numpy(np.asarray(im).copy())
    chw = pixels[None] if pixels.ndim == 2 else pixels.permute(2, 0, 1)
    return chw[None].float() / 127.5 - 1.0


def planned_size(job: Job, resolution: int | None) -> tuple[int, int]:
    """(width, height) the output of `job` will have, from the image's header (EXIF rotation
    aside: `check_same_size` runs again on the outputs); unreadable headers are an error."""
    try:
        with job.ref.open() as file:
            w, h, _ = image_size(file)
    except Exception as exc:  # as in `read_image`
        raise DataError(
            f"cannot read the input image {failure(job.label, exc)}; fix or remove the file"
        ) from None
    return (w, h) if resolution is None or w == resolution else (resolution, resolution * h // w)


def check_same_size(sizes: dict[str, tuple[int, int]]) -> None:
    """Refuse outputs of different sizes for one .npy array, naming two of them."""
    first = next(iter(sizes.items()), None)
    for name, size in sizes.items():
        if first is not None and size != first[1]:
            raise GankitError(
                f"a .npy output holds images of one size, but {first[0]} gives "
                f"{first[1][0]}x{first[1][1]} and {name} {size[0]}x{size[1]} (width x height); "
                "write a folder (--out DIR/) or give --resolution R (all R px wide)"
            )


# ------------------------------------------------------------------------- translating


def translate_image(
    tr: Translator, x: torch.Tensor, tile: int | None = None, note: Note | None = None
) -> torch.Tensor:
    """`tr`'s translation of `x` `[1, C_in, H, W]` in [-1, 1]: in one pass, or in `tile` tiles
    when the image is larger than `tile`; a pass that runs out of memory is retried in
    `OOM_TILE` tiles."""
    h, w = x.shape[-2:]
    if tile is None or (h <= tile and w <= tile):
        try:
            return tr(x)
        except RuntimeError as err:  # torch.OutOfMemoryError is one
            if not out_of_memory(err) or (h <= OOM_TILE and w <= OOM_TILE):
                raise
        if tr.device.type == "cuda":
            torch.cuda.empty_cache()
        (note or _note)(
            f"out of memory translating a {w}x{h} image in one pass on {tr.device}; "
            f"retrying it in {OOM_TILE} px tiles"
        )
        tile = OOM_TILE
    return translate_tiled(tr, x, tile)


def out_of_memory(err: BaseException) -> bool:
    """True for an allocation failure: CUDA's and MPS's "out of memory", the CPU's "can't
    allocate memory"."""
    text = str(err).lower()
    return "out of memory" in text or "can't allocate memory" in text


def translate_tiled(tr: Translator, x: torch.Tensor, tile: int) -> torch.Tensor:
    """`tr`'s translation of `x` `[1, C_in, H, W]` from overlapping tiles of `tile` px (rounded
    down to sides G takes), each weighted by linear ramps across its overlaps."""
    h, w = x.shape[-2:]
    tile = max(tile // tr.multiple * tr.multiple, tr.min_side)
    padded = pad_for(x, tr.multiple, tr.min_side)
    side_h, side_w = min(tile, padded.shape[-2]), min(tile, padded.shape[-1])
    rows = tile_starts(padded.shape[-2], tile, tr.multiple)
    cols = tile_starts(padded.shape[-1], tile, tr.multiple)
    out = torch.zeros(1, tr.channels_out, *padded.shape[-2:])
    total = torch.zeros(1, 1, *padded.shape[-2:])
    for i, top in enumerate(rows):
        for j, left in enumerate(cols):
            piece = tr(padded[..., top : top + side_h, left : left + side_w])
            weight = blend_weights(rows, i, side_h)[:, None] * blend_weights(cols, j, side_w)
            out[..., top : top + side_h, left : left + side_w] += piece * weight
            total[..., top : top + side_h, left : left + side_w] += weight
    return (out / total)[..., :h, :w]


def tile_starts(size: int, tile: int, multiple: int = 1) -> list[int]:
    """Where tiles of `tile` px start along a side of `size` px (both multiples of `multiple`):
    evenly spread from 0 to `size - tile`, neighbours overlapping by at least a quarter of a
    tile, and every start a multiple of `multiple`, so each tile's stride-2 layers sample the
    grid the whole image's do (a tile shifted off it gives a different image); [0] if one fits."""
    if size <= tile:
        return [0]
    overlap = min(max(multiple, tile // 4 // multiple * multiple), tile - multiple)
    count = math.ceil((size - overlap) / (tile - overlap))
    steps = (size - tile) // multiple
    return [round(k * steps / (count - 1)) * multiple for k in range(count)]


def blend_weights(starts: list[int], k: int, length: int) -> torch.Tensor:
    """Weights `[length]` of tile `k` along one side: 1, ramping linearly down towards its ends
    across the overlap with each neighbour, so two overlapping tiles' weights add up to 1."""
    weight = torch.ones(length)
    if k > 0:
        lap = starts[k - 1] + length - starts[k]
        weight[:lap] = (torch.arange(lap) + 0.5) / lap
    if k < len(starts) - 1:
        lap = starts[k] + length - starts[k + 1]
        ramp = (lap - 0.5 - torch.arange(lap)) / lap
        weight[length - lap :] = torch.minimum(weight[length - lap :], ramp)
    return weight


def translations(
    tr: Translator,
    jobs: list[Job],
    *,
    resolution: int | None = None,
    tile: int | None = None,
    progress: bool = True,
) -> Iterator[tuple[Job, torch.Tensor]]:
    """(job, uint8 `[C_out, H, W]`) for each input in turn, with a progress bar."""
    disable = None if progress else True  # None: drawn only on a terminal, not in a log file
    bar = tqdm(jobs, desc=f"translating {tr.direction}", unit="img", disable=disable)
    try:
        for job in bar:
            im = read_image(job, tr.channels_in)
            if resolution is not None:
                im = scale_width(im, resolution)
            try:
                y = translate_image(tr, to_input(im), tile)
            except RuntimeError as err:
                if not out_of_memory(err):
                    raise
                raise GankitError(
                    f"out of memory translating {job.label} ({im.size[0]}x{im.size[1]}) on "
                    f"{tr.device}: give a smaller --tile (e.g. 256) or --resolution, or "
                    "--device cpu"
                ) from None
            yield job, to_uint8(y[0])
    finally:
        bar.close()
        close_zips()


# ------------------------------------------------------------------------- the command


@dataclass
class Result:
    """What `translate` wrote: `count` images to `path`, with the generator it used."""

    count: int
    path: Path
    translator: Translator


def translate(
    run: str | Path,
    direction: str,
    source: str | Path,
    out: str | Path,
    *,
    checkpoint: str | Path | None = None,
    resolution: int | None = None,
    tile: int | None = None,
    device: str = "auto",
    progress: bool = True,
) -> Result:
    """Translate every image of `source` (a file, folder or .zip) with the `direction` generator
    of `run` and write them to `out`: a folder (one PNG each), an image file (one input only) or
    a .npy (uint8 `[N, C, H, W]`, one size for all). Everything is checked before any work."""
    for flag, value in (("--resolution", resolution), ("--tile", tile)):
        if value is not None and value < 1:
            raise GankitError(f"{flag} must be at least 1 px; got {value}")
    kind = output_kind(out)
    tr = load_translator(run, direction, checkpoint, device)
    jobs = list_inputs(source)
    if kind == "image" and len(jobs) > 1:
        raise GankitError(
            f"--out {str(out)!r} is one image file, but --input holds {len(jobs)} images; "
            "give a folder (--out DIR/) or a .npy"
        )
    if kind == "folder":
        check_not_overwriting(jobs, Path(out))
    try:
        sizes = {job.label: planned_size(job, resolution) for job in jobs}
    finally:
        close_zips()
    if kind == "npy":
        check_same_size(sizes)
    write = {"npy": write_npy, "image": write_image, "folder": write_folder}[kind]
    # closing(): a failed write ends the progress bar and the zip now, not when garbage-collected
    with closing(translations(tr, jobs, resolution=resolution, tile=tile, progress=progress)) as it:
        path = write(it, out)
    return Result(len(jobs), path, tr)


def output_kind(out: str | Path) -> str:
    """What `out` names: "npy", "image" (a file with an image suffix, not a folder) or "folder"."""
    text, path = str(out), Path(out)
    if text.endswith(("/", "\\")) or path.is_dir():
        return "folder"
    suffix = path.suffix.lower()
    return "npy" if suffix == ".npy" else "image" if suffix in IMAGE_EXTENSIONS else "folder"


def check_not_overwriting(jobs: list[Job], folder: Path) -> None:
    """Refuse an output folder where an output would replace one of the input files."""
    inputs = {Path(job.ref.path).resolve() for job in jobs if job.ref.member is None}
    for job in jobs:
        if (folder / job.out_name).resolve() in inputs:
            raise GankitError(
                f"--out {str(folder)!r} would overwrite the input {job.label} with its "
                "translation; choose another output folder"
            )


def save_png(image: torch.Tensor, path: Path) -> None:
    """uint8 `[C, H, W]` as an image file: mode "L" for one channel, "RGB" for three."""
    path.parent.mkdir(parents=True, exist_ok=True)
    array = image.permute(1, 2, 0).numpy()
    Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array).save(path)


def write_folder(outputs: Iterator[tuple[Job, torch.Tensor]], out: str | Path) -> Path:
    """Each translation as `out/<input's relative path, .png>`, written as it is made."""
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    for job, image in outputs:
        save_png(image, folder / job.out_name)
    return folder


def write_image(outputs: Iterator[tuple[Job, torch.Tensor]], out: str | Path) -> Path:
    """The one translation as the image file `out` (its format from the suffix)."""
    for _, image in outputs:
        save_png(image, Path(out))
    return Path(out)


def write_npy(outputs: Iterator[tuple[Job, torch.Tensor]], out: str | Path) -> Path:
    """Every translation in one uint8 array `[N, C, H, W]` (checked again here: EXIF rotation
    can swap an image's sides after the headers were read)."""
    done = list(outputs)
    check_same_size({job.label: (img.shape[2], img.shape[1]) for job, img in done})
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, torch.stack([img for _, img in done]).numpy())
    return path
