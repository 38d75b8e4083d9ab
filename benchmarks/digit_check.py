"""An independent digit classifier that says whether generated samples read as digits (issue 24).

gankit's own MNIST classifier (`gankit.metrics.classifier`) scores gankit's runs; this one is
deliberately separate: a different network (two VGG-style double 3x3 conv blocks with batch norm
and max pooling, dropout, a 128-unit dense layer), trained here on MNIST's IDX files with
augmentation, and cached to a file. It must reach >= 99% on MNIST test (checked after training).

Every image, real or generated, goes through one path: greyscale (luma for RGB), then MNIST's
own normalisation (LeCun et al.): the ink's bounding box (pixels >= 30% of white) is scaled so its
longer side is 20 px and the ink's centre of mass is put at the centre of a 28x28 frame. So a
32x32 sklearn digit that fills its frame and an MNIST digit padded to 32 are read alike. Training
also degrades half of each batch to a low resolution (the digit box at 7-13 px, upscaled
bicubically back), because the demo's data are 8x8 scans upscaled to 32x32: a reader that only
knew sharp MNIST strokes would reject those real digits.

A sample is *read as a digit* when the classifier's top softmax probability is >= 0.9 (the
threshold, `--threshold`). Reported: that fraction, the count per class among those, and for a
conditional run the fraction whose top class is the asked one (and that with confidence).

    python benchmarks/digit_check.py train --data-root ../shared/data
    python benchmarks/digit_check.py reference --data-root ../shared/data
    python benchmarks/digit_check.py score runs/demo            # 500 samples, seed 0
    python benchmarks/digit_check.py score samples.npy          # uint8 [N, C, H, W] (+ labels)
    python benchmarks/digit_check.py export-folder /tmp/digits32 --data-root ../shared/data
    python benchmarks/digit_check.py style-mix runs/stylegan2-mnist32   # a conditional StyleGAN2

`style-mix` checks the StyleGAN paper's reading of a style-mixing figure on a class-conditional
StyleGAN2 run (issue 26): 20 row seeds of classes 0-9 (twice) and 10 column seeds of classes
5-9, 0-4; the cells that mix two different classes (180 of 200) are read. Taking the `coarse` layers (4-8 px) from the
column should draw the column's digit; taking the `fine` ones (above 8 px at 32 px) should keep
the row's. Reported per group: the fraction of mixed cells read as the column's class, as the
row's class, and confidently.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

THRESHOLD = 0.9
FRAME, BOX = 28, 20  # MNIST: the digit's box is 20x20, centred by mass in a 28x28 frame
INK = 0.3  # a pixel at >= 30% of white counts as ink for the bounding box
DEFAULT_CACHE = Path.home() / ".cache" / "gankit" / "digit-check" / "cnn.pt"


class DigitNet(nn.Module):
    """Two double-conv blocks (24 and 48 channels, batch norm, max pool), dense 128, 10 logits."""

    def __init__(self) -> None:
        super().__init__()

        def block(c_in: int, c_out: int) -> nn.Sequential:
            return nn.Sequential(
                nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
                nn.BatchNorm2d(c_out),
                nn.ReLU(),
                nn.Conv2d(c_out, c_out, 3, padding=1, bias=False),
                nn.BatchNorm2d(c_out),
                nn.ReLU(),
                nn.MaxPool2d(2),
            )

        self.body = nn.Sequential(block(1, 24), block(24, 48), nn.Flatten(), nn.Dropout(0.3))
        self.head = nn.Sequential(nn.Linear(48 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


def to_grey(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 `[N, C, H, W]` or `[N, H, W]` -> float `[N, 1, H, W]` in [0, 1] (luma for RGB)."""
    x = torch.as_tensor(np.asarray(images))
    if x.dtype != torch.uint8:
        raise SystemExit(f"expected uint8 images, got {x.dtype}")
    x = x.float() / 255.0
    if x.ndim == 3:
        x = x.unsqueeze(1)
    if x.shape[1] == 3:
        x = (0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]).unsqueeze(1)
    return x


def normalise(x: torch.Tensor) -> torch.Tensor:
    """MNIST's normalisation of `[N, 1, H, W]` in [0, 1]: ink box to 20 px, mass at the centre."""
    n, _, h, w = x.shape
    ink = x[:, 0] >= INK
    rows, cols = ink.any(2), ink.any(1)
    idx_h, idx_w = torch.arange(h).float(), torch.arange(w).float()
    # Images with no ink keep their full frame (they stay blank).
    top = torch.where(rows.any(1), _first(rows, idx_h), torch.zeros(n))
    bottom = torch.where(rows.any(1), _first(rows.flip(1), idx_h), torch.zeros(n))
    left = torch.where(cols.any(1), _first(cols, idx_w), torch.zeros(n))
    right = torch.where(cols.any(1), _first(cols.flip(1), idx_w), torch.zeros(n))
    extent = torch.maximum(h - bottom - top, w - right - left).clamp(min=1.0)
    scale = BOX / extent  # output pixels per input pixel
    mass = x[:, 0].sum((1, 2)).clamp(min=1e-6)
    cy = (x[:, 0] * (idx_h + 0.5)[:, None]).sum((1, 2)) / mass
    cx = (x[:, 0] * (idx_w + 0.5)[None, :]).sum((1, 2)) / mass
    # Output pixel centre j + 0.5 samples the input at c + (j + 0.5 - FRAME / 2) / scale, written
    # in grid_sample's [-1, 1] coordinates (align_corners=False).
    j = torch.arange(FRAME).float() + 0.5 - FRAME / 2
    gx = (cx[:, None] + j[None, :] / scale[:, None]) * 2 / w - 1
    gy = (cy[:, None] + j[None, :] / scale[:, None]) * 2 / h - 1
    grid = torch.stack(torch.broadcast_tensors(gx[:, None, :], gy[:, :, None]), dim=-1)
    # Shrinking by more than 1.5x would alias: blur first, as a resize with antialiasing does.
    src = x if scale.min() > 0.67 else F.avg_pool2d(x, 3, stride=1, padding=1)
    return F.grid_sample(src, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def _first(mask: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Index of the first True along dim 1 of a `[N, L]` mask (rows with no True give 0)."""
    return torch.where(mask, index[None, :], torch.full_like(mask, 1e9, dtype=torch.float)).amin(1)


def augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Small random affine (rotation +-12 deg, scale 0.9-1.1, shift +-2 px) and, on half of the
    batch, a low-resolution copy (the 28x28 frame at 10-18 px, i.e. the digit box at 7-13 px)."""
    n = x.shape[0]
    angle = (torch.rand(n, generator=gen) - 0.5) * math.radians(24)
    scale = 0.9 + 0.2 * torch.rand(n, generator=gen)
    shift = (torch.rand(n, 2, generator=gen) - 0.5) * (4 / FRAME * 2)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1),
                         torch.stack([sin, cos, shift[:, 1]], 1)], 1)  # fmt: skip
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, align_corners=False)
    low = torch.rand(n, generator=gen) < 0.5
    size = int(torch.randint(10, 19, (1,), generator=gen))
    small = F.interpolate(x[low], size=size, mode="area")
    x[low] = F.interpolate(small, size=FRAME, mode="bicubic", align_corners=False).clamp(0, 1)
    return x


def load_mnist(root: Path, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """MNIST `split` from ROOT/mnist as normalised float `[N, 1, 28, 28]` and int64 labels."""
    from gankit.data.idx import IMAGES_MAGIC, LABELS_MAGIC, read_idx

    stem = {"train": "train", "test": "t10k"}[split]
    folder = root / "mnist"
    images = read_idx(_idx(folder, f"{stem}-images-idx3-ubyte"), IMAGES_MAGIC)
    labels = read_idx(_idx(folder, f"{stem}-labels-idx1-ubyte"), LABELS_MAGIC)
    return normalise(to_grey(images)), torch.from_numpy(labels.astype(np.int64))


def _idx(folder: Path, stem: str) -> Path:
    for name in (stem + ".gz", stem):
        if (folder / name).exists():
            return folder / name
    raise SystemExit(f"no {stem}[.gz] in {folder}; pass --data-root with a mnist/ folder")


def train(root: Path, cache: Path, epochs: int, seed: int) -> nn.Module:
    """Train DigitNet on MNIST train with augmentation, check >= 99% on test, save to `cache`."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    x, y = load_mnist(root, "train")
    net = DigitNet()
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    steps = epochs * math.ceil(len(x) / 128)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=steps)
    start = time.time()
    for epoch in range(epochs):
        net.train()
        for batch in torch.randperm(len(x), generator=gen).split(128):
            loss = F.cross_entropy(net(augment(x[batch], gen)), y[batch])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        print(f"epoch {epoch + 1}/{epochs}: loss {loss.item():.4f} ({time.time() - start:.0f} s)")
    accuracy = test_accuracy(net.eval(), root)
    print(f"MNIST test accuracy {accuracy:.2%}")
    if accuracy < 0.99:
        raise SystemExit(f"test accuracy {accuracy:.2%} is below 99%; train longer (--epochs)")
    cache.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"weights": net.state_dict(), "mnist_test_accuracy": accuracy}, cache)
    print(f"saved {cache}")
    return net


@torch.no_grad()
def probabilities(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Softmax `[N, 10]` of already normalised images, 500 at a time."""
    return torch.cat([F.softmax(net(b), 1) for b in x.split(500)])


def test_accuracy(net: nn.Module, root: Path) -> float:
    x, y = load_mnist(root, "test")
    return (probabilities(net, x).argmax(1) == y).float().mean().item()


def load_net(cache: Path) -> nn.Module:
    if not cache.exists():
        raise SystemExit(f"no classifier at {cache}; run `digit_check.py train` first")
    state = torch.load(cache, weights_only=True)
    net = DigitNet()
    net.load_state_dict(state["weights"])
    return net.eval()


def report(net: nn.Module, images: np.ndarray | torch.Tensor, labels=None, threshold=THRESHOLD):
    """Fraction read as a digit (top prob >= threshold), per-class counts, conditional accuracy."""
    p = probabilities(net, normalise(to_grey(images)))
    top, cls = p.max(1)
    sure = top >= threshold
    counts = torch.bincount(cls[sure], minlength=10).tolist()
    out = {
        "n": len(p),
        "threshold": threshold,
        "confident": round(sure.float().mean().item(), 4),
        "confident_per_class": counts,
        "classes_present": sum(c > 0 for c in counts),
        "mean_top_prob": round(top.mean().item(), 4),
    }
    if labels is not None:
        right = cls == torch.as_tensor(np.asarray(labels))
        out["as_asked"] = round(right.float().mean().item(), 4)
        out["as_asked_confident"] = round((right & sure).float().mean().item(), 4)
        out["as_asked_per_class"] = [
            round(right[torch.as_tensor(np.asarray(labels)) == k].float().mean().item(), 3)
            for k in range(10)
        ]
    return out


def samples_of(target: str, num: int, seed: int) -> tuple[np.ndarray, np.ndarray | None]:
    """uint8 images (and labels) from a .npy (labels from NAME.labels.npy) or a run/checkpoint."""
    path = Path(target)
    if path.suffix == ".npy":
        labels = path.with_name(path.stem + ".labels.npy")
        return np.load(path), (np.load(labels) if labels.exists() else None)
    from gankit.generate import generate

    samples = generate(target, num=num, seed=seed, device="cpu", **untruncated(target))
    labels = None if samples.labels is None else samples.labels.numpy()
    return samples.values.numpy(), labels


def untruncated(target: str) -> dict[str, float]:
    """`truncation_psi=1` for a family whose pictures are truncated by default (StyleGAN v1):
    the check scores what G draws, not the typical images truncation picks."""
    from gankit.generate import PICTURE_TRUNCATION, load_generator

    family = load_generator(target, "cpu")[2]["name"]
    return {"truncation_psi": 1.0} if family in PICTURE_TRUNCATION else {}


def digits32() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's digits exactly as the demo trains on them (32x32, via gankit)."""
    from gankit.data import open_dataset

    ds = open_dataset("digits")
    return np.asarray(ds.images), np.asarray(ds.labels)


def blends(images: np.ndarray, labels: np.ndarray, num: int, seed: int) -> np.ndarray:
    """Pixel averages of `num` pairs of images of two different classes."""
    rng = np.random.default_rng(seed)
    a, b = rng.integers(0, len(images), (2, num * 3))
    keep = (labels[a] != labels[b]).nonzero()[0][:num]
    mix = (images[a[keep]].astype(np.float32) + images[b[keep]].astype(np.float32)) / 2
    return mix.round().astype(np.uint8)


def reference(net: nn.Module, root: Path, threshold: float) -> dict[str, dict]:
    """The same scores for real digits and for two-digit blends."""
    from gankit.data.idx import IMAGES_MAGIC, LABELS_MAGIC, read_idx

    test_x = read_idx(_idx(root / "mnist", "t10k-images-idx3-ubyte"), IMAGES_MAGIC)
    test_y = read_idx(_idx(root / "mnist", "t10k-labels-idx1-ubyte"), LABELS_MAGIC)
    dig_x, dig_y = digits32()
    return {
        "mnist test (10,000)": report(net, test_x, test_y, threshold),
        "sklearn digits at 32x32 (1,797)": report(net, dig_x, dig_y, threshold),
        "sklearn digit blends (500 pairs)": report(net, blends(dig_x, dig_y, 500, 0), None,
                                                   threshold),
        "mnist test blends (500 pairs)": report(net, blends(test_x, test_y, 500, 0), None,
                                                threshold),
    }  # fmt: skip


def export_folder(root: Path, out: Path, num: int, resolution: int, seed: int) -> None:
    """Write `num` MNIST train digits as flat PNGs (28x28, or zero-padded to `resolution`)."""
    from PIL import Image

    from gankit.data.idx import IMAGES_MAGIC, read_idx

    images = read_idx(_idx(root / "mnist", "train-images-idx3-ubyte"), IMAGES_MAGIC)
    pick = np.random.default_rng(seed).choice(len(images), num, replace=False)
    pad = (resolution - 28) // 2
    out.mkdir(parents=True, exist_ok=True)
    for i, k in enumerate(pick):
        img = np.pad(images[k], ((pad, resolution - 28 - pad),) * 2)
        Image.fromarray(img).save(out / f"digit-{i:05d}.png")
    print(f"wrote {num} {resolution}x{resolution} PNGs to {out}")


def style_mix_check(net: nn.Module, run: str, threshold: float) -> dict[str, dict]:
    """For `coarse` and `fine`: the mixed cells' readings against the row's and column's class."""
    from gankit.stylemix import style_mix

    rows, cols = list(range(20)), list(range(100, 110))
    row_classes = [k % 10 for k in range(20)]
    col_classes = [(k + 5) % 10 for k in range(10)]
    results = {}
    for group in ("coarse", "fine"):
        mix = style_mix(
            run, rows, cols, group, row_classes=row_classes, col_classes=col_classes,
            device="cpu", **untruncated(run),
        )  # fmt: skip
        cells = mix.images[1:, 1:].flatten(0, 1)  # row-major: (row i, column j)
        row_of = torch.tensor(row_classes).repeat_interleave(len(cols))
        col_of = torch.tensor(col_classes).repeat(len(rows))
        two = row_of != col_of
        cells, row_of, col_of = cells[two], row_of[two], col_of[two]
        top, cls = probabilities(net, normalise(to_grey(cells))).max(1)
        results[group] = {
            "cells": len(cls),
            "layers": mix.styles,
            "read_as_column": round((cls == col_of).float().mean().item(), 4),
            "read_as_row": round((cls == row_of).float().mean().item(), 4),
            "confident": round((top >= threshold).float().mean().item(), 4),
        }
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "command", choices=["train", "reference", "score", "export-folder", "style-mix"]
    )
    parser.add_argument("targets", nargs="*", help="score: runs, checkpoints or .npy files; "
                        "export-folder: the output folder")  # fmt: skip
    parser.add_argument("--data-root", type=Path, default=Path("../shared/data"))
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--num", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threshold", type=float, default=THRESHOLD)
    parser.add_argument("--resolution", type=int, default=32, help="export-folder: PNG size")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.command == "train":
        train(args.data_root, args.cache, args.epochs, args.seed)
        return
    if args.command == "export-folder":
        export_folder(args.data_root, Path(args.targets[0]), args.num, args.resolution, args.seed)
        return
    net = load_net(args.cache)
    if args.command == "reference":
        results = reference(net, args.data_root, args.threshold)
    elif args.command == "style-mix":
        results = {t: style_mix_check(net, t, args.threshold) for t in args.targets}
    else:
        results = {}
        for target in args.targets:
            images, labels = samples_of(target, args.num, args.seed)
            results[target] = report(net, images, labels, args.threshold)
    for name, result in results.items():
        print(f"{name}: {json.dumps(result)}")


if __name__ == "__main__":
    sys.exit(main())
