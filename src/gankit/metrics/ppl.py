"""Perceptual path length (PPL): how much the image changes along small latent steps.

Paper: Karras et al., "A Style-Based Generator Architecture for Generative Adversarial Networks",
arXiv:1812.04948, section 4.2 (and StyleGAN2, arXiv:1912.04958). Reference code:
NVlabs/stylegan and NVlabs/stylegan2 `metrics/perceptual_path_length.py`. Per sample:

    z0, z1 ~ N(0, I); t ~ U[0, 1) ("full") or t = 0 ("end"); c shared by both ends
    space "w": w_a, w_b = lerp(mapping(z0), mapping(z1), t), lerp(..., t + eps)
    space "z": z_a, z_b = slerp(z0, z1, t), slerp(z0, z1, t + eps); w = mapping(z)
    img = synthesis([w_a, w_b], noise_mode="const"), with the const noise buffers (named
    `*noise_const`) redrawn for every batch and shared by both ends
    optional face crop: rows [3H/8, 7H/8), columns [2W/8, 6W/8)
    if the (cropped) image is larger than 256: box-downsample by the integer factor H // 256
    d = LPIPS-VGG(img_a, img_b) / eps^2

PPL is the mean of d over the samples lying between the 1st percentile (numpy "lower") and the
99th percentile (numpy "higher"), both inclusive. The slerp returns unit vectors (as the
reference), so in "z" space the mapping sees normalised latents. StyleGAN used 100k samples and
the face crop; StyleGAN2(-ADA)'s `ppl2_wend` uses 50k, space "w", sampling "end", no crop (our
defaults). StyleGAN2-ADA (PyTorch) takes the downsampling factor from the uncropped resolution;
we follow the TF reference (factor from the cropped image). `eps = 1e-4`.

The distance is injected (`distance(img_a, img_b) -> [N]`, inputs in [-1, 1]); the default is
`gankit.metrics.lpips.LPIPS`, which needs the ImageNet VGG16 weights file.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from tqdm import tqdm

from gankit.nets import draw_latents

EPSILON = 1e-4
SPACES = ("w", "z")
SAMPLINGS = ("full", "end")

Distance = Callable[[Tensor, Tensor], Tensor]
LabelFn = Callable[[int, torch.Generator], Tensor]


def _unit(v: Tensor) -> Tensor:
    return v / v.norm(dim=-1, keepdim=True)


def slerp(a: Tensor, b: Tensor, t: Tensor | float) -> Tensor:
    """Spherical interpolation of the directions of `a` and `b` `[N, D]` at `t` `[N, 1]`; unit norm."""
    a, b = _unit(a), _unit(b)
    cos = (a * b).sum(dim=-1, keepdim=True)
    angle = t * torch.acos(cos.clamp(-1, 1))
    ortho = _unit(b - cos * a)
    return _unit(a * torch.cos(angle) + ortho * torch.sin(angle))


def ppl_images(img: Tensor, *, crop: bool = False) -> Tensor:
    """Optional face crop, then box-downsampling to at most ~256 px, as in the reference."""
    if crop:
        if img.shape[2] != img.shape[3]:
            raise ValueError(f"the face crop needs square images, got {tuple(img.shape[2:])}")
        c = img.shape[2] // 8
        img = img[:, :, 3 * c : 7 * c, 2 * c : 6 * c]
    factor = img.shape[2] // 256
    if factor > 1:
        n, ch, h, w = img.shape
        img = img.reshape(n, ch, h // factor, factor, w // factor, factor).mean(dim=(3, 5))
    return img


def filtered_mean(distances: Tensor | np.ndarray, lo: float = 1.0, hi: float = 99.0) -> float:
    """Mean of the values within [percentile lo ("lower"), percentile hi ("higher")]."""
    d = np.asarray(torch.as_tensor(distances).double().cpu())
    if d.size == 0:
        raise ValueError("no distances to average")
    low = np.percentile(d, lo, method="lower")
    high = np.percentile(d, hi, method="higher")
    return float(d[(d >= low) & (d <= high)].mean())


def _mapping(G: nn.Module, z: Tensor, c: Tensor | None) -> Tensor:
    ws = G.mapping(z, c)
    if ws.ndim != 3:
        raise ValueError(f"G.mapping must return ws [N, num_ws, w_dim], got {tuple(ws.shape)}")
    return ws


def ppl_distances(
    G: nn.Module,
    z0: Tensor,
    z1: Tensor,
    t: Tensor,
    c: Tensor | None,
    *,
    distance: Distance,
    epsilon: float = EPSILON,
    space: str = "w",
    crop: bool = False,
) -> Tensor:
    """Per-sample `distance(img(t), img(t + eps)) / eps^2` `[N]` for given latents and `t` `[N]`."""
    if space not in SPACES:
        raise ValueError(f"space must be one of {SPACES}, got {space!r}")
    cc = None if c is None else torch.cat([c, c])
    if space == "w":
        w0, w1 = _mapping(G, torch.cat([z0, z1]), cc).chunk(2)
        tw = t.to(w0.dtype)[:, None, None]
        ws = torch.cat([torch.lerp(w0, w1, tw), torch.lerp(w0, w1, tw + epsilon)])
    else:
        tz = t.to(z0.dtype)[:, None]
        ws = _mapping(G, torch.cat([slerp(z0, z1, tz), slerp(z0, z1, tz + epsilon)]), cc)
    img = ppl_images(G.synthesis(ws, noise_mode="const"), crop=crop)
    img_a, img_b = img.chunk(2)
    return distance(img_a, img_b) / epsilon**2


def _param_like(G: nn.Module) -> Tensor:
    for tensor in [*G.parameters(), *G.buffers()]:
        if tensor.is_floating_point():
            return tensor
    return torch.empty(0)


def uniform_labels(c_dim: int) -> LabelFn:
    """A label sampler drawing one-hot classes `[n, c_dim]` uniformly."""

    def draw(n: int, generator: torch.Generator) -> Tensor:
        return torch.eye(c_dim)[torch.randint(c_dim, (n,), generator=generator)]

    return draw


def sample_ppl_inputs(
    G: nn.Module,
    n: int,
    generator: torch.Generator,
    *,
    sampling: str = "end",
    label_fn: LabelFn | None = None,
) -> tuple[Tensor, Tensor, Tensor, Tensor | None]:
    """(z0, z1, t, c) for `n` samples, drawn on the CPU from `generator` in that order."""
    if sampling not in SAMPLINGS:
        raise ValueError(f"sampling must be one of {SAMPLINGS}, got {sampling!r}")
    like = _param_like(G)
    z = draw_latents(G, 2 * n, generator, dtype=torch.float64)
    t = torch.rand(n, generator=generator, dtype=torch.float64)
    t = t if sampling == "full" else torch.zeros_like(t)
    c_dim = int(getattr(G, "c_dim", 0) or 0)
    c = None
    if c_dim:
        c = (label_fn or uniform_labels(c_dim))(n, generator).to(like)
    z0, z1 = z.to(like).chunk(2)
    return z0, z1, t.to(like), c


def _redraw_noise(G: nn.Module, generator: torch.Generator) -> None:
    """Fresh const noise for this batch (shared by both ends), as the reference does."""
    for name, buf in G.named_buffers():
        if name.endswith("noise_const"):
            buf.copy_(torch.randn(buf.shape, generator=generator, dtype=torch.float64))


@torch.no_grad()
def perceptual_path_length(
    G: nn.Module,
    *,
    num_samples: int = 50_000,
    epsilon: float = EPSILON,
    space: str = "w",
    sampling: str = "end",
    crop: bool = False,
    batch_size: int = 16,
    distance: Distance | None = None,
    label_fn: LabelFn | None = None,
    seed: int = 0,
    device: str | torch.device | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """PPL of a StyleGAN-style `G` (`G.mapping`, `G.synthesis`, `G.z_dim`, `G.c_dim`).

    Returns `{"ppl": filtered mean, "ppl_unfiltered": plain mean, "num_samples": n}`. `distance`
    defaults to LPIPS-VGG (needs the VGG16 weights); `label_fn(n, generator)` draws conditioning
    labels (default: uniform one-hot classes when `G.c_dim > 0`).
    """
    G = copy.deepcopy(G).eval().requires_grad_(False)
    if device is not None:
        G = G.to(device)
    if distance is None:
        from gankit.metrics.lpips import LPIPS

        distance = LPIPS().to(_param_like(G).device)
    gen = torch.Generator().manual_seed(seed)
    dists = []
    disable = None if progress else True  # None: shown only on a terminal, not in a log file
    with tqdm(total=num_samples, desc="ppl", unit="img", disable=disable) as bar:
        for start in range(0, num_samples, batch_size):
            n = min(batch_size, num_samples - start)
            z0, z1, t, c = sample_ppl_inputs(G, n, gen, sampling=sampling, label_fn=label_fn)
            _redraw_noise(G, gen)
            d = ppl_distances(
                G, z0, z1, t, c, distance=distance, epsilon=epsilon, space=space, crop=crop
            )
            dists.append(d.double().cpu())
            bar.update(n)
    all_d = torch.cat(dists)
    return {
        "ppl": filtered_mean(all_d),
        "ppl_unfiltered": float(all_d.mean()),
        "num_samples": len(all_d),
    }
