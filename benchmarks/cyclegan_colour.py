"""CycleGAN on a pair of domains with a known answer (issue 28): grey MNIST digits (A) and
coloured MNIST digits (B), made from different images.

Domain B is domain A's kind of image with one fixed colour map: every pixel of grey level g
(0..255) becomes `BACKGROUND + (INK - BACKGROUND) * g / 255`, an orange digit on navy. A and B
hold different MNIST images (train A: MNIST train 0..N-1, train B: N..2N-1; test A: MNIST test
0..499, test B: 500..999), so nothing pairs them; the map is what CycleGAN has to find. Because
it is known, every translation can be scored against the right answer:

- A -> B: G_ab(a) against colour(a), mean absolute error in grey levels (0..255) and PSNR;
- B -> A: G_ba(b) against the grey digit b was made from;
- content: whether the digit survives, read by `digit_check.py`'s independent MNIST classifier
  (trained once, cached): G_ba(b) is read directly; G_ab(a) is first mapped back to grey with the
  known inverse map (the mean over channels of (x - BACKGROUND) / (INK - BACKGROUND)). Reported:
  the fraction classified as the source digit's label, beside the same classifier on the source
  images themselves.

    python benchmarks/cyclegan_colour.py make-data /tmp/grey2colour --data-root ../shared/data
    gankit train configs/cyclegan-small-cpu.yaml --data /tmp/grey2colour --out runs/g2c
    python benchmarks/cyclegan_colour.py score runs/g2c --data /tmp/grey2colour
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
import digit_check
from gankit.translate import load_translator

INK = np.array([255.0, 170.0, 40.0])
BACKGROUND = np.array([20.0, 40.0, 110.0])
RESOLUTION = 32


def colour(grey: np.ndarray) -> np.ndarray:
    """uint8 [N, H, W] grey digits -> uint8 [N, H, W, 3] orange on navy (the known map)."""
    level = grey.astype(np.float64)[..., None] / 255.0
    return np.round(BACKGROUND + (INK - BACKGROUND) * level).astype(np.uint8)


def uncolour(rgb: np.ndarray) -> np.ndarray:
    """The known inverse map: float [N, H, W, 3] in 0..255 -> float grey [N, H, W] in 0..255."""
    level = (rgb.astype(np.float64) - BACKGROUND) / (INK - BACKGROUND)
    return np.clip(level.mean(axis=-1), 0.0, 1.0) * 255.0


def padded_mnist(root: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """MNIST `split` as uint8 [N, 32, 32] (28x28 padded by 2, as LeNet-5 did) and labels."""
    from gankit.data.idx import IMAGES_MAGIC, LABELS_MAGIC, read_idx

    stem = {"train": "train", "test": "t10k"}[split]
    images = read_idx(digit_check._idx(root / "mnist", f"{stem}-images-idx3-ubyte"), IMAGES_MAGIC)
    labels = read_idx(digit_check._idx(root / "mnist", f"{stem}-labels-idx1-ubyte"), LABELS_MAGIC)
    return np.pad(images.astype(np.uint8), ((0, 0), (2, 2), (2, 2))), labels.astype(np.int64)


def make_data(out: Path, root: Path, count: int) -> None:
    """trainA/, trainB/, testA/, testB/ PNGs and the test labels (labels.json)."""
    train, _ = padded_mnist(root, "train")
    test, test_labels = padded_mnist(root, "test")
    parts = {
        "trainA": train[:count],
        "trainB": colour(train[count : 2 * count]),
        "testA": test[:500],
        "testB": colour(test[500:1000]),
    }
    for folder, images in parts.items():
        (out / folder).mkdir(parents=True, exist_ok=True)
        for k, pixels in enumerate(images):
            Image.fromarray(pixels).save(out / folder / f"{k:05d}.png")
    labels = {"testA": test_labels[:500].tolist(), "testB": test_labels[500:1000].tolist()}
    (out / "labels.json").write_text(json.dumps(labels))
    print(f"wrote {out}: {count} + {count} training images, 500 + 500 test images")


def load_folder(folder: Path) -> np.ndarray:
    """The PNGs of `folder` in name order, as uint8 [N, H, W] or [N, H, W, 3]."""
    return np.stack([np.asarray(Image.open(p)) for p in sorted(folder.glob("*.png"))])


def generators(run: Path) -> tuple[Any, Any, float]:
    """`gankit translate`'s translators G_ab and G_ba of the run's newest checkpoint, and the
    kimg it holds."""
    G_ab, G_ba = (load_translator(run, direction) for direction in ("a2b", "b2a"))
    return G_ab, G_ba, int(G_ab.checkpoint.stem.split("-")[-1]) / 1000  # ckpt-<images>.pt


@torch.no_grad()
def translate(G: Any, images: np.ndarray) -> np.ndarray:
    """uint8 images ([N, H, W] grey or [N, H, W, 3]) through G -> float [N, H, W(, 3)] 0..255."""
    x = torch.from_numpy(images).float()
    x = x[:, None] if x.ndim == 3 else x.permute(0, 3, 1, 2)
    out = torch.cat([G(chunk / 127.5 - 1) for chunk in x.split(100)])
    out = ((out.clamp(-1, 1) + 1) * 127.5).permute(0, 2, 3, 1).numpy()
    return out[..., 0] if out.shape[-1] == 1 else out


def errors(got: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Mean absolute error (grey levels) and PSNR (dB, peak 255) of `got` against `truth`."""
    diff = got - truth.astype(np.float64)
    mse = float(np.mean(diff**2))
    return {"mae": float(np.abs(diff).mean()), "psnr": float(10 * np.log10(255.0**2 / mse))}


def digits_read(net: torch.nn.Module, grey: np.ndarray, labels: np.ndarray) -> float:
    """Fraction of grey digit images (float 0..255) the classifier reads as their label."""
    grey = np.clip(np.round(grey), 0, 255).astype(np.uint8)
    probs = digit_check.probabilities(net, digit_check.normalise(digit_check.to_grey(grey)))
    return float((probs.argmax(1).numpy() == labels).mean())


def score(run: Path, data: Path, cache: Path) -> dict[str, dict[str, float]]:
    """The known-answer errors and the content check of both directions (module docstring)."""
    G_ab, G_ba, kimg = generators(run)
    labels = json.loads((data / "labels.json").read_text())
    a, b = load_folder(data / "testA"), load_folder(data / "testB")
    label_a, label_b = np.array(labels["testA"]), np.array(labels["testB"])
    net = digit_check.load_net(cache)
    fake_b, fake_a = translate(G_ab, a), translate(G_ba, b)
    truth_a_of_b = np.round(uncolour(b.astype(np.float64)))
    return {
        "A -> B": {
            **errors(fake_b, colour(a)),
            "read": digits_read(net, uncolour(fake_b), label_a),
            "read_source": digits_read(net, a.astype(np.float64), label_a),
        },
        "B -> A": {
            **errors(fake_a, truth_a_of_b),
            "read": digits_read(net, fake_a, label_b),
            "read_source": digits_read(net, truth_a_of_b, label_b),
        },
        "kimg": {"shown": kimg},
    }


def print_table(result: dict[str, dict[str, float]]) -> None:
    print(f"after {result['kimg']['shown']:g} kimg")
    print("| direction | MAE (grey levels) | PSNR (dB) | digit read as its label | source read |")
    print("|---|---|---|---|---|")
    for key in ("A -> B", "B -> A"):
        r = result[key]
        print(f"| {key} | {r['mae']:.2f} | {r['psnr']:.1f} | {r['read']:.1%} | "
              f"{r['read_source']:.1%} |")  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    make = sub.add_parser("make-data", help="write the grey/colour MNIST domains")
    make.add_argument("out", type=Path)
    make.add_argument("--data-root", type=Path, default=Path("../shared/data"))
    make.add_argument("--count", type=int, default=2000, help="training images per domain")
    scorer = sub.add_parser("score", help="score a run's translations of the test images")
    scorer.add_argument("run", type=Path)
    scorer.add_argument("--data", type=Path, required=True, help="the make-data folder")
    scorer.add_argument("--cache", type=Path, default=digit_check.DEFAULT_CACHE)
    args = parser.parse_args(argv)
    if args.command == "make-data":
        make_data(args.out, args.data_root, args.count)
    else:
        print_table(score(args.run, args.data, args.cache))


if __name__ == "__main__":
    main()
