"""The MNIST domain classifier: accuracy, save/load, input conventions, score and accuracy maths."""

from __future__ import annotations

import gzip
import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from filelock import FileLock

from gankit.errors import CheckpointError, ConfigError
from gankit.metrics.classifier import (
    Classifier,
    class_accuracy,
    classifier_score,
    default_classifier_path,
    extract_features,
    load_classifier,
    predict,
    predict_logits,
    pretrained_classifier,
    save_classifier,
    train_classifier,
)


def _read_idx(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(dims).copy()


def _mnist(shared_data: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    prefix = "train" if split == "train" else "t10k"
    folder = shared_data / "mnist"
    images = _read_idx(folder / f"{prefix}-images-idx3-ubyte.gz")[:, None]
    return images, _read_idx(folder / f"{prefix}-labels-idx1-ubyte.gz").astype(np.int64)


@pytest.fixture(scope="module")
def mnist_classifier(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Classifier:
    """The MNIST classifier, trained once per test session (shared by xdist workers via a lock)."""
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    path = shared / "gankit-test-mnist-classifier.pt"
    with FileLock(f"{path}.lock"):
        if not path.is_file():
            test_images, test_labels = _mnist(shared_data, "test")
            model = train_classifier(
                *_mnist(shared_data, "train"),
                epochs=3,
                seed=0,
                progress=False,
                test_images=test_images,
                test_labels=test_labels,
                dataset="mnist",
            )
            save_classifier(model, path)
    return load_classifier(path)


@pytest.mark.slow
@pytest.mark.shared_data
def test_mnist_classifier_reaches_99_percent(
    shared_data: Path, mnist_classifier: Classifier
) -> None:
    images, labels = _mnist(shared_data, "test")
    accuracy = class_accuracy(mnist_classifier, images, labels)
    assert accuracy >= 0.99
    assert mnist_classifier.meta["test_accuracy"] == accuracy
    assert mnist_classifier.meta["dataset"] == "mnist"
    # The same digits zero-padded to 32x32 (gankit's built-in MNIST at 32) score identically.
    padded = F.pad(torch.from_numpy(images[:500]), (2, 2, 2, 2))
    torch.testing.assert_close(
        predict_logits(mnist_classifier, padded), predict_logits(mnist_classifier, images[:500])
    )


def _tiny_model() -> Classifier:
    torch.manual_seed(0)
    model = Classifier(meta={"dataset": "toy", "test_accuracy": 0.5})
    with torch.no_grad():  # non-trivial BatchNorm statistics, so the round trip covers buffers
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-1, 1)
                m.running_var.uniform_(0.5, 2)
    return model.eval()


def _random_images(n: int, size: int = 28, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 1, size, size), generator=gen, dtype=torch.uint8)


def test_save_load_round_trip_gives_identical_logits(tmp_path: Path) -> None:
    model = _tiny_model()
    path = save_classifier(model, tmp_path / "sub" / "clf.pt")
    raw = torch.load(path, weights_only=True)  # plain containers and tensors only
    assert raw["meta"] == {"dataset": "toy", "test_accuracy": 0.5}
    assert raw["config"] == {"resolution": 28, "num_classes": 10, "feature_dim": 128, "width": 16}
    loaded = load_classifier(path)
    x = _random_images(16)
    torch.testing.assert_close(predict_logits(loaded, x), predict_logits(model, x), rtol=0, atol=0)
    assert loaded.meta == model.meta and not loaded.training


def test_bad_classifier_files_raise_checkpoint_errors(tmp_path: Path) -> None:
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(2)}, other)
    with pytest.raises(CheckpointError, match="not a gankit classifier"):
        load_classifier(other)
    with pytest.raises(CheckpointError, match="cannot read"):
        load_classifier(tmp_path / "absent.pt")


def test_input_conventions_uint8_float_and_padding() -> None:
    model = _tiny_model()
    x = _random_images(8)
    as_float = x.float() / 127.5 - 1
    torch.testing.assert_close(predict_logits(model, as_float), predict_logits(model, x))
    padded = F.pad(x, (2, 2, 2, 2))
    torch.testing.assert_close(predict_logits(model, padded), predict_logits(model, x))
    assert predict_logits(model, _random_images(3, size=64)).shape == (3, 10)
    # A classifier trained on 32x32 (padded) data pads 28x28 inputs with black instead.
    torch.manual_seed(1)
    model32 = Classifier(resolution=32).eval()
    torch.testing.assert_close(predict_logits(model32, x), predict_logits(model32, padded))
    feats = extract_features(model, x, batch_size=3)
    assert feats.shape == (8, 128) and feats.dtype == torch.float32
    with torch.no_grad():
        torch.testing.assert_close(feats, model.features(x))
    with pytest.raises(ValueError, match="single-channel"):
        predict(model, torch.zeros(2, 3, 28, 28, dtype=torch.uint8))


def test_class_accuracy_counts_matches_exactly() -> None:
    model = _tiny_model()
    x = _random_images(40, seed=1)
    labels = predict(model, x).clone()
    assert class_accuracy(model, x, labels) == 1.0
    labels[:10] = (labels[:10] + 1) % 10
    assert class_accuracy(model, x, labels, batch_size=7) == 0.75
    with pytest.raises(ValueError, match="one label per image"):
        class_accuracy(model, x, labels[:5])


def test_classifier_score_known_values() -> None:
    uniform = torch.full((100, 10), 0.1)
    assert classifier_score(uniform, splits=10, probs=True) == pytest.approx((1.0, 0.0))
    assert classifier_score(torch.zeros(100, 10), splits=5) == pytest.approx((1.0, 0.0))
    for k in (1, 5, 10):
        one_hot = F.one_hot(torch.arange(1000) % k, 10).double()
        assert classifier_score(one_hot, splits=10, probs=True) == pytest.approx((k, 0.0))
        # Confident logits approach the one-hot score.
        assert classifier_score(60 * one_hot, splits=10)[0] == pytest.approx(k, rel=1e-9)
    # A hand-computed case: two samples, p = (0.75, 0.25) and (0.25, 0.75); marginal (0.5, 0.5).
    p = torch.tensor([[0.75, 0.25], [0.25, 0.75]])
    kl = 0.75 * math.log(1.5) + 0.25 * math.log(0.5)
    assert classifier_score(p, splits=1, probs=True) == pytest.approx((math.exp(kl), 0.0))
    with pytest.raises(ValueError, match="sum to 1"):
        classifier_score(torch.ones(4, 2), splits=1, probs=True)


def test_pretrained_classifier_reads_its_cache(tmp_path: Path) -> None:
    model = _tiny_model()
    save_classifier(model, default_classifier_path("mnist"))
    loaded = pretrained_classifier("mnist", root=str(tmp_path))  # the cache hit trains nothing
    assert loaded.meta == model.meta
    with pytest.raises(ConfigError, match="cifar10"):
        pretrained_classifier("cifar10")


def test_training_runs_and_is_seeded() -> None:
    # A 2-class toy task (bright vs dark squares) learns quickly; equal seeds give equal weights.
    gen = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 2, (256,), generator=gen)
    images = (
        labels[:, None, None, None] * 200 + torch.randint(0, 50, (256, 1, 12, 12), generator=gen)
    ).to(torch.uint8)
    a = train_classifier(
        images,
        labels,
        epochs=2,
        batch_size=32,
        progress=False,
        test_images=images,
        test_labels=labels,
    )
    b = train_classifier(images, labels, epochs=2, batch_size=32, progress=False)
    assert a.resolution == 12 and a.num_classes == 2
    assert a.meta["test_accuracy"] == 1.0
    for (name, pa), pb in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        torch.testing.assert_close(pa, pb, rtol=0, atol=0, msg=name)
