"""Projection of images into the latent space of a StyleGAN2 run, as the official
stylegan2-ada-pytorch `projector.py` does it (Karras et al., "Analyzing and Improving the Image
Quality of StyleGAN", arXiv:1912.04958, section 5).

The schedule is the official one: w starts at w_avg (the mean of the mapping of 10,000 latents
drawn with `RandomState(123)`, with w_std the root of their summed per-dimension variance), Adam
(0.9, 0.999) optimises w and the per-layer noise maps (redrawn from N(0, 1) at the start); the
learning rate 0.1 ramps up over the first 5% of the steps and down along a half cosine over the
last 25%; Gaussian noise of std `w_std * 0.05 * max(0, 1 - t / 0.75)^2` is added to w before
each synthesis; the loss is the distance to the target plus 1e5 x the noise-map regularisation
(squared mean autocorrelation at a shift of one pixel, both axes, over every 2x average-pooled
scale down to 8 px), and every noise map is renormalised to zero mean and unit variance after
each step. The written image and w are those of the last step, synthesised with the network's
stored constant noise (as the official script renders `proj.png`), so `projected_w.npy` gives
`proj.png` back through `G.synthesis(ws, noise_mode="const")`.

Deviations from the official script:
- Several targets are projected at once: one w (or ws) and one set of noise maps per target,
  summed losses, so each target's gradients and Adam moments are its own.
- `wplus=True` optimises one w per layer (W+), each initialised at w_avg; the official optimises
  one w broadcast to every layer (W, the default here).
- The random draws (noise maps, w noise) come from a `torch.Generator` seeded with `seed`
  (default 303, the official script's), drawn on the CPU so a seed repeats on any device.
- Distance: LPIPS-VGG16 (`gankit.metrics.lpips`, the distance the official's `vgg16.pt` computes)
  when the torchvision VGG16 weights are given or cached; nothing is downloaded. Images above 256
  px are area-downsampled to 256 (`F.interpolate(mode="area")`, as official); images below 32 px,
  too small for VGG16's four poolings, are enlarged by an integer factor to at least 32 px
  (nearest). Without the weights the distance is pixel + MS-SSIM: the mean squared error in
  [-1, 1] plus 1 - MS-SSIM (PGGAN's protocol, which shrinks the window at small scales, with as
  many of the five scales as the resolution has, their weights renormalised to sum to 1).
- Targets are read with gankit's image reading (`gankit.data.imaging`: EXIF orientation, alpha on
  white, converted to the model's RGB or greyscale, centre-cropped) and resized with PIL's Lanczos
  filter, as official (upsampling too).
- Conditional runs: the w statistics use the class given (`class_index`); the official passes none.
- The progress GIF shows target | current every `frame_every` steps instead of an mp4 of every step.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps
from torch import Tensor, nn

from gankit.data.imaging import center_crop, failure, open_image, to_mode
from gankit.errors import GankitError
from gankit.generate import class_labels, has_mapping, load_generator
from gankit.metrics.ms_ssim import WEIGHTS, ms_ssim
from gankit.metrics.progress import Progress
from gankit.viz import make_grid, save_gif, save_grid, to_uint8

#: The official projector's values.
W_AVG_SAMPLES = 10_000
W_STATS_SEED = 123
INITIAL_LEARNING_RATE = 0.1
INITIAL_NOISE_FACTOR = 0.05
LR_RAMPDOWN_LENGTH = 0.25
LR_RAMPUP_LENGTH = 0.05
NOISE_RAMP_LENGTH = 0.75
REGULARIZE_NOISE_WEIGHT = 1e5
ADAM_BETAS = (0.9, 0.999)
DEFAULT_SEED = 303
#: VGG16 sees at most 256 px (official) and at least 32 px (its last pooling needs 2 px).
VGG_MAX_SIZE, VGG_MIN_SIZE = 256, 32
DISTANCES = ("auto", "lpips", "pixel")


def learning_rate(step: int, num_steps: int, initial: float = INITIAL_LEARNING_RATE) -> float:
    """The official learning rate at `step`: linear ramp-up over the first 5% of the steps, half-
    cosine ramp-down over the last 25%, `initial` in between."""
    t = step / num_steps
    down = min(1.0, (1.0 - t) / LR_RAMPDOWN_LENGTH)
    down = 0.5 - 0.5 * math.cos(down * math.pi)
    return initial * down * min(1.0, t / LR_RAMPUP_LENGTH)


def w_noise_scale(step: int, num_steps: int, w_std: float) -> float:
    """The std of the noise added to w at `step`: quadratic decay to 0 at 75% of the steps."""
    t = step / num_steps
    return w_std * INITIAL_NOISE_FACTOR * max(0.0, 1.0 - t / NOISE_RAMP_LENGTH) ** 2


@torch.no_grad()
def w_stats(
    G: nn.Module, c: Tensor | None = None, num_samples: int = W_AVG_SAMPLES
) -> tuple[Tensor, float]:
    """(w_avg `[w_dim]`, w_std) of the mapping of `num_samples` official latents (seed 123).

    w_std is the root of the summed per-dimension variance, the scale of the w noise.
    """
    device = next(G.parameters()).device
    z = torch.from_numpy(np.random.RandomState(W_STATS_SEED).randn(num_samples, G.z_dim)).float()
    labels = None if c is None else c[:1].expand(num_samples).to(device)
    w = G.mapping(z.to(device), labels)[:, 0].double()
    w_avg = w.mean(dim=0)
    w_std = float(((w - w_avg).square().sum() / num_samples).sqrt())
    return w_avg.float(), w_std


def noise_regularization(noise: Tensor) -> Tensor:
    """The official noise-map penalty per target, `[B]`, of maps `[B, 1, H, W]`: squared mean
    products with the map rolled by one pixel along each axis, summed over the 2x average-pooled
    scales down to 8 px."""
    total = noise.new_zeros(noise.shape[0])
    while True:
        for dim in (3, 2):
            total = total + (noise * noise.roll(1, dims=dim)).mean(dim=(1, 2, 3)).square()
        if noise.shape[2] <= 8:
            return total
        noise = F.avg_pool2d(noise, kernel_size=2)


@torch.no_grad()
def normalize_noise_(noise: Tensor) -> None:
    """Each map of `[B, 1, H, W]` to zero mean and unit mean square, in place."""
    noise -= noise.mean(dim=(1, 2, 3), keepdim=True)
    noise *= noise.square().mean(dim=(1, 2, 3), keepdim=True).rsqrt()


# ------------------------------------------------------------------------------------ distances


@dataclass
class Distance:
    """A differentiable distance between image batches in [-1, 1] -> `[N]`, and its name."""

    name: str
    fn: Callable[[Tensor, Tensor], Tensor]

    def __call__(self, x: Tensor, y: Tensor) -> Tensor:
        return self.fn(x, y)


def pixel_msssim_distance(x: Tensor, y: Tensor) -> Tensor:
    """Mean squared error in [-1, 1] plus 1 - MS-SSIM (PGGAN protocol) per pair, `[N]`."""
    scales = min(len(WEIGHTS), int(math.log2(min(x.shape[2:]))) + 1)
    weights = tuple(w / sum(WEIGHTS[:scales]) for w in WEIGHTS[:scales])
    similarity = ms_ssim(x + 1, y + 1, data_range=2.0, weights=weights, protocol="pggan")
    return (x - y).square().flatten(1).mean(1) + (1 - similarity)


def vgg_size(img: Tensor) -> Tensor:
    """Images resized for VGG16: area-downsampled to 256 px above it, enlarged (nearest, by an
    integer factor) to at least 32 px below it."""
    side = img.shape[2]
    if side > VGG_MAX_SIZE:
        return F.interpolate(img, size=(VGG_MAX_SIZE, VGG_MAX_SIZE), mode="area")
    if side < VGG_MIN_SIZE:
        return F.interpolate(img, scale_factor=math.ceil(VGG_MIN_SIZE / side), mode="nearest")
    return img


def find_vgg16(path: str | os.PathLike | None = None) -> Path | None:
    """The VGG16 weights file: `path`, `GANKIT_VGG16_WEIGHTS`, gankit's or torch hub's cache;
    None when there is none (never a download)."""
    from gankit.metrics import lpips
    from gankit.paths import cache_dir

    if path is not None or os.environ.get(lpips.VGG16_ENV):
        return lpips.resolve_vgg16_weights(path)  # explicit: a missing file is an error
    cached = cache_dir() / "weights" / lpips.VGG16_FILE
    hub = Path(torch.hub.get_dir()) / "checkpoints" / lpips.VGG16_FILE
    return next((p for p in (cached, hub) if p.is_file()), None)


def make_distance(
    choice: str = "auto",
    vgg_weights: str | os.PathLike | None = None,
    lpips_heads: str | os.PathLike | None = None,
    device: torch.device | str = "cpu",
) -> Distance:
    """The projection distance: "lpips" (needs VGG16 weights), "pixel", or "auto" (LPIPS when the
    VGG16 weights are given or cached, else pixel + MS-SSIM)."""
    if choice not in DISTANCES:
        raise GankitError(f"--distance {choice!r}: use one of {', '.join(DISTANCES)}")
    weights = None if choice == "pixel" else find_vgg16(vgg_weights)
    if weights is None:
        if choice == "lpips":
            raise GankitError(
                "--distance lpips needs torchvision's ImageNet VGG16 weights (vgg16-397923af.pth) "
                "and found none: pass --vgg-weights FILE, or use --distance pixel"
            )
        why = "chosen" if choice == "pixel" else "no VGG16 weights given or cached"
        return Distance(f"pixel + MS-SSIM ({why})", pixel_msssim_distance)
    from gankit.metrics.lpips import LPIPS

    model = LPIPS(vgg16_weights=weights, heads=lpips_heads).to(device)
    return Distance(
        f"LPIPS (VGG16 weights {weights})", lambda x, y: model(vgg_size(x), vgg_size(y))
    )


# ---------------------------------------------------------------------------------- projecting


@dataclass
class Projection:
    """One target's projection: its ws `[num_ws, w_dim]` and uint8 images `[C, H, W]`."""

    name: str
    target: Tensor
    ws: Tensor
    image: Tensor
    start_distance: float
    final_distance: float
    #: The image every `frame_every` steps (the first at w_avg, the last the final one).
    frames: list[Tensor] = field(default_factory=list)


def noise_layers(G: nn.Module) -> list[nn.Module]:
    """G's synthesis layers that hold a `noise_const` buffer."""
    return [m for m in G.synthesis.modules() if "noise_const" in m._buffers]


@contextmanager
def swapped_noise(layers: list[nn.Module], maps: list[Tensor]) -> Iterator[None]:
    """Within: each layer's `noise_const` replaced by a per-target map `[B, 1, H, W]` (the
    synthesis broadcasts it over channels); the stored buffers come back afterwards."""
    stored = [layer.noise_const for layer in layers]
    for layer, noise in zip(layers, maps, strict=True):
        layer.noise_const = noise
    try:
        yield
    finally:
        for layer, noise in zip(layers, stored, strict=True):
            layer.noise_const = noise


def project(
    G: nn.Module,
    targets: Tensor,
    distance: Distance,
    *,
    num_steps: int = 1000,
    wplus: bool = False,
    seed: int = DEFAULT_SEED,
    c: Tensor | None = None,
    frame_every: int = 0,
    w_avg_samples: int = W_AVG_SAMPLES,
    progress: bool = True,
) -> tuple[Tensor, list[Tensor]]:
    """Project float targets `[B, C, H, W]` in [-1, 1] (see the module doc).

    Returns the ws `[B, num_ws, w_dim]` of the last step and the frames (float images `[B, C, H,
    W]` with the stored constant noise, at step 0 and every `frame_every` steps; none for 0).
    """
    device = next(G.parameters()).device
    targets = targets.to(device)
    batch, num_ws = targets.shape[0], G.num_ws
    gen = torch.Generator().manual_seed(seed)
    w_avg, w_std = w_stats(G, c, w_avg_samples)
    w_opt = w_avg.to(device).expand(batch, num_ws if wplus else 1, -1).clone().requires_grad_()
    layers = noise_layers(G)
    maps = [
        torch.randn(batch, 1, *layer.noise_const.shape, generator=gen).to(device).requires_grad_()
        for layer in layers
    ]
    optimizer = torch.optim.Adam([w_opt, *maps], betas=ADAM_BETAS, lr=INITIAL_LEARNING_RATE)
    frames = [_render(G, w_opt, num_ws)] if frame_every else []
    with Progress(num_steps, "projecting", enabled=progress, unit="step") as bar:
        for step in range(num_steps):
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(step, num_steps)
            scale = w_noise_scale(step, num_steps, w_std)
            w_noise = torch.randn(w_opt.shape, generator=gen).to(device) * scale
            with swapped_noise(layers, maps):
                images = G.synthesis((w_opt + w_noise).expand(-1, num_ws, -1), noise_mode="const")
            reg = sum((noise_regularization(m) for m in maps), images.new_zeros(batch))
            loss = (distance(images, targets) + REGULARIZE_NOISE_WEIGHT * reg).sum()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            for noise in maps:
                normalize_noise_(noise)
            if frame_every and ((step + 1) % frame_every == 0 or step + 1 == num_steps):
                frames.append(_render(G, w_opt, num_ws))
            bar.update(1)
    return w_opt.detach().expand(-1, num_ws, -1).cpu().contiguous(), frames


@torch.no_grad()
def _render(G: nn.Module, w: Tensor, num_ws: int) -> Tensor:
    """The images of w `[B, 1 | num_ws, w_dim]` with the stored constant noise, on the CPU."""
    return G.synthesis(w.detach().expand(-1, num_ws, -1), noise_mode="const").cpu()


def rendered_resolution(G: nn.Module) -> int:
    """The size G's synthesis renders: a growing StyleGAN's stage, else its full resolution."""
    stage = getattr(G.synthesis, "stage", None)
    return stage()[0] if callable(stage) else G.img_resolution


def read_target(path: str | os.PathLike, resolution: int, channels: int) -> Tensor:
    """A target image as the network sees it: uint8 `[channels, resolution, resolution]`
    (EXIF-oriented, converted, centre-cropped, Lanczos-resized)."""
    p = Path(path)
    if p.is_dir():
        raise GankitError(
            f"--target {str(p)!r} is a folder; give image files, one --target per image"
        )
    if not p.is_file():
        raise GankitError(f"--target {str(p)!r}: no such file")
    try:
        with p.open("rb") as f, open_image(f) as raw:
            im = center_crop(to_mode(ImageOps.exif_transpose(raw), channels))
            if im.size != (resolution, resolution):
                im = im.resize((resolution, resolution), Image.Resampling.LANCZOS)
            pixels = np.asarray(im)
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise GankitError(f"--target: cannot read {failure(str(p), exc)}") from exc
    pixels = pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1)
    return torch.from_numpy(np.array(pixels, dtype=np.uint8, copy=True))


def target_names(paths: Sequence[str | os.PathLike]) -> list[str]:
    """Each target's output folder name (its file name's stem); two targets of one stem are an
    error, since their folders would collide."""
    names = [Path(p).stem for p in paths]
    for name in names:
        if names.count(name) > 1:
            clash = [str(p) for p in paths if Path(p).stem == name]
            raise GankitError(
                f"--target: {', '.join(clash)} would all be written to the folder {name!r}; "
                "rename one of them or project them in separate runs"
            )
    return names


def project_images(
    run: str | os.PathLike,
    targets: Sequence[str | os.PathLike],
    *,
    num_steps: int = 1000,
    wplus: bool = False,
    seed: int = DEFAULT_SEED,
    distance: str = "auto",
    vgg_weights: str | os.PathLike | None = None,
    lpips_heads: str | os.PathLike | None = None,
    class_index: int | None = None,
    frame_every: int | None = None,
    device: str = "auto",
    progress: bool = True,
) -> tuple[list[Projection], str]:
    """Project image files into G_ema of a StyleGAN2 run; returns the projections and the
    distance's name. `frame_every` None: about 50 GIF frames."""
    if num_steps < 1:
        raise GankitError(f"--steps must be at least 1; got {num_steps}")
    if not targets:
        raise GankitError("give at least one --target image")
    names = target_names(targets)
    G, _, spec = load_generator(run, device)
    if not has_mapping(G):
        raise GankitError(
            f"project needs a StyleGAN2 generator (a mapping network and style inputs); this "
            f"run's generator is {spec['name']!r}, which has none"
        )
    c_dim = int(spec.get("c_dim") or 0)
    if c_dim and class_index is None:
        raise GankitError(
            f"this run's generator is conditional on {c_dim} classes: say which class the "
            f"targets are with --class K (0 <= K < {c_dim})"
        )
    c = class_labels(c_dim, 1, class_index)
    size = rendered_resolution(G)
    uint8 = torch.stack([read_target(p, size, G.img_channels) for p in targets])
    device_ = next(G.parameters()).device
    dist = make_distance(distance, vgg_weights, lpips_heads, device_)
    every = max(1, num_steps // 50) if frame_every is None else frame_every
    real = uint8.float() / 127.5 - 1
    ws, frames = project(
        G, real, dist, num_steps=num_steps, wplus=wplus, seed=seed, c=c,
        frame_every=every, progress=progress,
    )  # fmt: skip
    with torch.no_grad():
        final = _render(G, ws.to(device_), G.num_ws)
        start = frames[0] if frames else _render(G, w_stats(G, c)[0][None, None], G.num_ws)
        d_start = dist(start.expand_as(real).to(device_), real.to(device_)).cpu()
        d_final = dist(final.to(device_), real.to(device_)).cpu()
    out = []
    for i, name in enumerate(names):
        images = [to_uint8(f[i]) for f in frames]
        out.append(
            Projection(name, uint8[i], ws[i], to_uint8(final[i]), float(d_start[i]),
                       float(d_final[i]), images)
        )  # fmt: skip
    return out, dist.name


def write_projection(projection: Projection, out: str | os.PathLike) -> Path:
    """Write `out/<name>/`: proj.png, target.png, projected_w.npy (float32 `[num_ws, w_dim]`) and
    progress.gif (target | current); returns the folder."""
    folder = Path(out) / projection.name
    folder.mkdir(parents=True, exist_ok=True)
    save_grid(projection.image[None], folder / "proj.png", cols=1)
    save_grid(projection.target[None], folder / "target.png", cols=1)
    np.save(folder / "projected_w.npy", projection.ws.numpy().astype(np.float32))
    pictures = [
        Image.fromarray(_squeeze(make_grid(torch.stack([projection.target, f]), 2, 256)))
        for f in projection.frames or [projection.image]
    ]
    save_gif(pictures, folder / "progress.gif", frame_ms=100)
    return folder


def _squeeze(array: np.ndarray) -> np.ndarray:
    return array[..., 0] if array.shape[-1] == 1 else array
