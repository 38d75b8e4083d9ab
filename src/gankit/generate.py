"""Sampling from a trained run: rebuild G_ema from a checkpoint, draw images, write them out."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from gankit.errors import GankitError
from gankit.train import checkpoint as ckpt
from gankit.train.run import build_nets, resolve_device
from gankit.viz import save_grid, to_uint8


def load_generator(
    target: str | Path, device: str | torch.device = "cpu"
) -> tuple[nn.Module, dict[str, Any], dict[str, Any]]:
    """(G_ema in eval mode, sampling kwargs of the checkpoint's stage, model spec) of a run or file."""
    device = resolve_device(device) if isinstance(device, str) else device
    _, state = ckpt.resolve_checkpoint(target, map_location="cpu")
    spec = state["model"]
    G = build_nets(spec)["G"]
    G.load_state_dict(state["nets"]["G_ema"])
    return G.to(device).eval().requires_grad_(False), dict(state.get("sampling", {})), spec


@torch.no_grad()
def generate(
    target: str | Path, *, num: int, seed: int = 0, batch: int = 64, device: str = "auto"
) -> torch.Tensor:
    """`num` images from G_ema as uint8 `[N, C, H, W]`; latents come from a CPU generator, so the
    same seed gives the same images on any device."""
    G, kwargs, _ = load_generator(target, device)
    dev = next(G.parameters()).device
    z = torch.randn(num, G.z_dim, generator=torch.Generator().manual_seed(seed))
    return torch.cat([to_uint8(G(chunk.to(dev), **kwargs)).cpu() for chunk in z.split(batch)])


def write_samples(images: torch.Tensor, out: str | Path) -> Path:
    """A grid (.png/.jpg), one PNG per image (a folder, `out` ending in '/'), or a .npy array."""
    out_text = str(out)
    path = Path(out_text)
    if out_text.endswith(("/", "\\")) or path.is_dir():
        return _write_folder(images, path)
    suffix = path.suffix.lower()
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".npy":
        np.save(path, images.numpy())
        return path
    if suffix in (".png", ".jpg", ".jpeg", ".webp"):
        return save_grid(images, path)
    raise GankitError(
        f"--out {out_text!r}: use a .png/.jpg grid, a folder ending in '/', or a .npy file"
    )


def _write_folder(images: torch.Tensor, folder: Path) -> Path:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for i, img in enumerate(images):
        array = img.permute(1, 2, 0).numpy()
        Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array).save(
            folder / f"{i:06d}.png"
        )
    return folder
