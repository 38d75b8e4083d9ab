"""A small domain classifier for 28x28 greyscale data (MNIST, Fashion-MNIST) and what is built on it.

Inception-v3 features mean little on 28x28 digits, so papers on MNIST-like data score samples with
a classifier trained on the data itself: Stacked-MNIST mode counting (VEEGAN, Srivastava et al.,
arXiv:1705.07761; PacGAN, Lin et al., arXiv:1712.04086), the class accuracy of conditional samples,
an Inception-Score-like score (Salimans et al., "Improved Techniques for Training GANs",
arXiv:1606.03498) and FID/KID on the classifier's penultimate features. No paper fixes this network;
ours is a three-layer strided CNN, small enough to train in minutes on one CPU core and accurate
enough on MNIST's test split to judge digits (training stores that accuracy in `meta`, and the CLI
prints it). Numbers computed with it compare only with numbers computed with the same weights.

Input convention for every function here: `[N, 1, H, W]` images, either uint8 in [0, 255] or float
in [-1, 1] (the generator's range). Inputs whose size differs from the classifier's are fitted:
32x32 to a 28x28 classifier is a center crop (gankit's built-in MNIST pads 28 -> 32 with 2 black
pixels per side, so the crop undoes it exactly), 28x28 to a 32x32 classifier is that padding, and
any other size is an antialiased bilinear resize.
"""

from __future__ import annotations

import math
import os
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from gankit.errors import CheckpointError, ConfigError, DataError
from gankit.paths import cache_dir

FORMAT = "gankit-classifier"
FORMAT_VERSION = 1

ImageBatch = torch.Tensor | np.ndarray


class Classifier(nn.Module):
    """Three strided conv blocks and a `feature_dim` hidden layer; `[N, 1, H, W]` -> logits."""

    def __init__(
        self,
        resolution: int = 28,
        num_classes: int = 10,
        feature_dim: int = 128,
        width: int = 16,
        meta: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.resolution, self.num_classes = resolution, num_classes
        self.feature_dim, self.width = feature_dim, width
        self.meta: dict[str, Any] = dict(meta or {})
        self.body = nn.Sequential(
            _conv_block(1, width, stride=2),
            _conv_block(width, 2 * width, stride=2),
            _conv_block(2 * width, 2 * width, stride=1),
        )
        side = math.ceil(math.ceil(resolution / 2) / 2)
        self.hidden = nn.Linear(2 * width * side * side, feature_dim)
        self.dropout = nn.Dropout(0.2)
        self.fc = nn.Linear(feature_dim, num_classes)

    def config(self) -> dict[str, int]:
        """The constructor arguments that rebuild this architecture."""
        return {
            "resolution": self.resolution,
            "num_classes": self.num_classes,
            "feature_dim": self.feature_dim,
            "width": self.width,
        }

    def prepare(self, img: torch.Tensor) -> torch.Tensor:
        """uint8 or [-1, 1] images `[N, 1, H, W]` -> float [-1, 1] at the classifier's resolution."""
        if img.ndim != 4 or img.shape[1] != 1:
            raise ValueError(
                f"the classifier takes single-channel images [N, 1, H, W], got {tuple(img.shape)}; "
                "classify the channels of a colour image one at a time"
            )
        param = self.hidden.weight
        x = img.to(device=param.device)
        x = x.to(param.dtype) / 127.5 - 1 if x.dtype == torch.uint8 else x.to(param.dtype)
        return fit_resolution(x, self.resolution)

    def features(self, img: torch.Tensor) -> torch.Tensor:
        """Penultimate features `[N, feature_dim]` (after the ReLU), for FID/KID on this domain."""
        h = self.body(self.prepare(img))
        return F.relu(self.hidden(h.flatten(1)))

    def logits(self, img: torch.Tensor) -> torch.Tensor:
        """Class logits `[N, num_classes]`."""
        return self.fc(self.dropout(self.features(img)))

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        return self.logits(img)


def _conv_block(c_in: int, c_out: int, stride: int) -> nn.Sequential:
    # No conv bias: BatchNorm's shift replaces it.
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


def fit_resolution(x: torch.Tensor, resolution: int) -> torch.Tensor:
    """[-1, 1] images to `resolution`: undo/apply the 2-px black border (28 <-> 32), else resize."""
    size = x.shape[-1]
    if x.shape[-2] == size == resolution:
        return x
    if x.shape[-2] == size == resolution + 4:
        return x[..., 2:-2, 2:-2]
    if x.shape[-2] == size == resolution - 4:
        return F.pad(x, (2, 2, 2, 2), value=-1.0)
    return F.interpolate(
        x, size=(resolution, resolution), mode="bilinear", align_corners=False, antialias=True
    )


def train_classifier(
    images: ImageBatch,
    labels: ImageBatch,
    *,
    epochs: int = 3,
    batch_size: int = 128,
    lr: float = 4e-3,
    seed: int = 0,
    device: str | torch.device = "cpu",
    progress: bool = True,
    test_images: ImageBatch | None = None,
    test_labels: ImageBatch | None = None,
    dataset: str = "",
) -> Classifier:
    """Train a `Classifier` on uint8 images `[N, 1, H, W]` (resolution H) with int labels `[N]`.

    AdamW with a one-cycle learning-rate schedule (peak `lr`). When test data is given, its accuracy
    is stored in `classifier.meta["test_accuracy"]`.
    """
    x_train, y_train = _as_uint8_images(images, "images"), _as_labels(labels, "labels")
    if len(x_train) != len(y_train) or len(x_train) < batch_size:
        raise ValueError(
            f"need at least batch_size={batch_size} images with one label each, got "
            f"{len(x_train)} images and {len(y_train)} labels"
        )
    start = time.perf_counter()
    num_classes = int(y_train.max()) + 1
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Classifier(resolution=x_train.shape[-1], num_classes=num_classes).to(device)
        _fit(model, x_train, y_train, epochs, batch_size, lr, seed, progress)
    model.eval()
    model.meta.update(
        dataset=dataset,
        epochs=epochs,
        seed=seed,
        train_images=len(x_train),
        train_seconds=round(time.perf_counter() - start, 1),
    )
    if test_images is not None and test_labels is not None:
        model.meta["test_accuracy"] = class_accuracy(model, test_images, test_labels)
    return model


def _fit(
    model: Classifier,
    x_train: torch.Tensor,
    y_train: torch.Tensor,
    epochs: int,
    batch_size: int,
    lr: float,
    seed: int,
    progress: bool,
) -> None:
    """The training loop: shuffled minibatches, cross-entropy, AdamW + one-cycle schedule."""
    steps_per_epoch = len(x_train) // batch_size
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=lr, total_steps=epochs * steps_per_epoch, pct_start=0.2
    )
    gen = torch.Generator().manual_seed(seed)
    model.train()
    disable = None if progress else True  # None: shown only on a terminal, not in a log file
    bar = tqdm(total=epochs * steps_per_epoch, desc="classifier", unit="step", disable=disable)
    for _ in range(epochs):
        order = torch.randperm(len(x_train), generator=gen)
        for step in range(steps_per_epoch):
            idx = order[step * batch_size : (step + 1) * batch_size]
            target = y_train[idx].to(model.hidden.weight.device)
            loss = F.cross_entropy(model.logits(x_train[idx]), target)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            bar.update()
            if step % 50 == 0:
                bar.set_postfix(loss=f"{loss.item():.3f}")
    bar.close()


def as_tensor(x: ImageBatch) -> torch.Tensor:
    """`torch.as_tensor` without copying, also for read-only arrays (e.g. memory-mapped .npy)."""
    if isinstance(x, np.ndarray) and not x.flags.writeable:
        # Nothing here writes to its inputs, so sharing read-only memory is safe.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
            return torch.as_tensor(x)
    return torch.as_tensor(x)


def _as_uint8_images(images: ImageBatch, what: str) -> torch.Tensor:
    x = as_tensor(images)
    if x.dtype != torch.uint8 or x.ndim != 4 or x.shape[1] != 1 or x.shape[2] != x.shape[3]:
        raise ValueError(
            f"{what} must be uint8 [N, 1, H, H] (the dataset contract), got {x.dtype} "
            f"{tuple(x.shape)}"
        )
    return x


def _as_labels(labels: ImageBatch, what: str) -> torch.Tensor:
    y = as_tensor(labels)
    if y.ndim != 1 or y.dtype.is_floating_point or y.dtype == torch.bool:
        raise ValueError(f"{what} must be integer class ids [N], got {y.dtype} {tuple(y.shape)}")
    return y.long()


def save_classifier(model: Classifier, path: str | os.PathLike) -> Path:
    """Write weights + plain metadata, loadable with `torch.load(weights_only=True)`; atomic."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    payload = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "config": model.config(),
        "meta": dict(model.meta),
        "state_dict": state,
    }
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)
    return path


def load_classifier(path: str | os.PathLike, device: str | torch.device = "cpu") -> Classifier:
    """A classifier written by `save_classifier`, in eval mode on `device`."""
    path = Path(path)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError) as err:
        raise CheckpointError(f"cannot read the classifier file {path}: {err}") from err
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(
            f"{path} is not a gankit classifier file (no format={FORMAT!r} entry); write one "
            "with gankit.metrics.classifier.save_classifier"
        )
    if payload.get("version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{path} has classifier format version {payload.get('version')}, this gankit reads "
            f"version {FORMAT_VERSION}; retrain it with train_classifier"
        )
    model = Classifier(**payload["config"], meta=payload["meta"])
    model.load_state_dict(payload["state_dict"])
    return model.to(device).eval()


@torch.no_grad()
def _batched(
    classifier: Classifier,
    images: ImageBatch,
    fn_name: str,
    batch_size: int,
    device: str | torch.device | None,
) -> torch.Tensor:
    """Apply `classifier.<fn_name>` in eval mode over batches; float32 CPU result."""
    x = as_tensor(images)
    if device is not None:
        classifier = classifier.to(device)
    was_training = classifier.training
    classifier.eval()
    try:
        fn = getattr(classifier, fn_name)
        outs = [fn(x[i : i + batch_size]).float().cpu() for i in range(0, len(x), batch_size)]
    finally:
        classifier.train(was_training)
    if not outs:
        width = classifier.feature_dim if fn_name == "features" else classifier.num_classes
        return torch.empty(0, width)
    return torch.cat(outs)


def predict_logits(
    classifier: Classifier,
    images: ImageBatch,
    *,
    batch_size: int = 500,
    device: str | torch.device | None = None,
) -> torch.Tensor:
    """Logits `[N, num_classes]` (float32, CPU) for images `[N, 1, H, W]`."""
    return _batched(classifier, images, "logits", batch_size, device)


def predict(
    classifier: Classifier,
    images: ImageBatch,
    *,
    batch_size: int = 500,
    device: str | torch.device | None = None,
) -> torch.Tensor:
    """Predicted class ids `[N]` (int64)."""
    return predict_logits(classifier, images, batch_size=batch_size, device=device).argmax(1)


def extract_features(
    classifier: Classifier,
    images: ImageBatch,
    *,
    batch_size: int = 500,
    device: str | torch.device | None = None,
) -> torch.Tensor:
    """Penultimate features `[N, feature_dim]` (float32, CPU) for classifier-FID/KID."""
    return _batched(classifier, images, "features", batch_size, device)


def class_accuracy(
    classifier: Classifier,
    images: ImageBatch,
    labels: ImageBatch,
    *,
    batch_size: int = 500,
    device: str | torch.device | None = None,
) -> float:
    """Fraction of `images` classified as `labels` (e.g. conditional samples and their classes)."""
    y = _as_labels(labels, "labels")
    if len(y) == 0 or len(y) != len(images):
        raise ValueError(f"need one label per image, got {len(images)} images, {len(y)} labels")
    pred = predict(classifier, images, batch_size=batch_size, device=device)
    return float((pred == y).double().mean())


def classifier_score(
    logits_or_probs: ImageBatch, splits: int = 10, *, probs: bool = False
) -> tuple[float, float]:
    """Inception-Score formula with this classifier: exp(E_x KL(p(y|x) || p(y))), mean/std over splits.

    `logits_or_probs` is `[N, K]` logits (softmaxed here) or, with `probs=True`, probabilities. The
    N rows are cut into `splits` contiguous parts as in the reference Inception Score code; the std
    is numpy's population std over the parts.
    """
    p = torch.as_tensor(logits_or_probs).double()
    if p.ndim != 2 or len(p) < splits or splits < 1:
        raise ValueError(f"need [N, K] with N >= splits >= 1, got {tuple(p.shape)}, {splits=}")
    if probs:
        if (p < 0).any() or not torch.allclose(p.sum(1), torch.ones(len(p), dtype=p.dtype)):
            raise ValueError("probs=True needs non-negative rows that sum to 1")
    else:
        p = p.softmax(1)
    scores = []
    for i in range(splits):
        part = p[i * len(p) // splits : (i + 1) * len(p) // splits]
        marginal = part.mean(0, keepdim=True)
        # xlogy makes 0 * log 0 = 0, so one-hot predictions are fine.
        kl = torch.xlogy(part, part) - torch.xlogy(part, marginal.expand_as(part))
        scores.append(math.exp(float(kl.sum(1).mean())))
    return float(np.mean(scores)), float(np.std(scores))


def default_classifier_path(dataset: str) -> Path:
    """Where `pretrained_classifier` caches the classifier for `dataset`."""
    return cache_dir() / "classifiers" / f"{dataset}-classifier-v{FORMAT_VERSION}.pt"


def pretrained_classifier(
    dataset: str = "mnist",
    *,
    root: str | None = None,
    path: str | os.PathLike | None = None,
    epochs: int = 3,
    device: str | torch.device = "cpu",
    progress: bool = True,
) -> Classifier:
    """The cached classifier for `dataset` ("mnist", "fashion-mnist"); trained and cached if absent.

    Training reads the built-in dataset's train split (28x28) from `root` (see
    `gankit.paths.data_root`), reports test-split accuracy in `meta`, and writes `path` (default:
    `default_classifier_path(dataset)`).
    """
    if dataset not in ("mnist", "fashion-mnist"):
        raise ConfigError(
            f"no built-in classifier recipe for {dataset!r}; use 'mnist' or 'fashion-mnist', or "
            "train one on your data with train_classifier and save_classifier"
        )
    target = Path(path) if path is not None else default_classifier_path(dataset)
    if target.is_file():
        return load_classifier(target, device)
    from gankit.data import open_dataset

    train = open_dataset(dataset, root=root, split="train")
    test = open_dataset(dataset, root=root, split="test")
    if getattr(train, "labels", None) is None or getattr(test, "labels", None) is None:
        raise DataError(f"the built-in {dataset!r} dataset came without labels")
    model = train_classifier(
        train.images,
        train.labels,
        epochs=epochs,
        device=device,
        progress=progress,
        test_images=test.images,
        test_labels=test.labels,
        dataset=dataset,
    )
    save_classifier(model, target)
    return model
