"""The registered metrics. Each takes an `EvalContext` and returns `{quantity: value}` (the key ""
is the metric's headline number); `evaluate()` prefixes every key with the metric's label, e.g.
`fid50k`, `kid50k/std`, `swd16k/64`, `swd16k/avg`, `ms_ssim10k/fake`.

Protocols and the references each one matches are documented in docs/metrics.md.
"""

from __future__ import annotations

import numpy as np
import torch

from gankit.errors import ConfigError
from gankit.metrics.runner import EvalContext, metric
from gankit.metrics.sources import GeneratorSource, Source

INCEPTION = "inception"
CLASSIFIER = "classifier"


def _fake_and_real_counts(ctx: EvalContext, default: int) -> tuple[int, int, dict[str, float]]:
    n = ctx.count(default)
    m = ctx.real_count(n)
    # Say so in the results when the dataset had fewer reals than the requested count.
    return n, m, ({"real_samples": float(m)} if m < n else {})


@metric("swd", num=16384, reals=True, unit=1024)
def swd(ctx: EvalContext) -> dict[str, float]:
    """Sliced Wasserstein distance (x1e3) per Laplacian level and averaged (PGGAN paper)."""
    from gankit.metrics.swd import swd as sliced

    n, m, extra = _fake_and_real_counts(ctx, 16384)
    n = min(n, m)  # SWD compares equally many images
    real = ctx.require_reals().take(n, ctx.options.batch_size)
    fake = ctx.fakes.take(n, ctx.options.batch_size)
    out = sliced(real, fake, seed=ctx.options.seed, device=ctx.options.device)
    return {key.split("/", 1)[1]: value for key, value in out.items()} | extra


@metric("ms-ssim", num=10000, reals=False)
def ms_ssim(ctx: EvalContext) -> dict[str, float]:
    """Mean MS-SSIM of random pairs of samples (diversity; lower = more diverse); reals too if given."""
    from gankit.metrics.ms_ssim import ms_ssim_diversity

    pairs = ctx.num or 10000
    out = {"fake": _diversity(ctx.fakes, pairs, ctx, ms_ssim_diversity)}
    if ctx.reals is not None:
        out["real"] = _diversity(ctx.reals, pairs, ctx, ms_ssim_diversity)
    return out


def _diversity(source: Source, pairs: int, ctx: EvalContext, fn) -> float:
    images = source.take(min(pairs, source.size or pairs), ctx.options.batch_size)
    gen = torch.Generator().manual_seed(ctx.options.seed)
    return fn(images, pairs, generator=gen, protocol="pggan")


def _inception_features(ctx: EvalContext, n: int, m: int | None) -> tuple[dict, dict | None]:
    fake = ctx.bank.features(ctx.fakes, n, INCEPTION)
    real = None
    if m is not None:
        real = ctx.bank.features(ctx.require_reals(), m, INCEPTION, real=True)
    return fake, real


@metric("fid", num=50000, reals=True)
def fid(ctx: EvalContext) -> dict[str, float]:
    """Frechet Inception Distance (2048-d pool3 of the FID InceptionV3; torch-fidelity protocol)."""
    from gankit.metrics.fid import fid_from_features

    n, m, extra = _fake_and_real_counts(ctx, 50000)
    fake, real = _inception_features(ctx, n, m)
    return {"": fid_from_features(real["pool3"], fake["pool3"])} | extra


@metric("kid", num=50000, reals=True)
def kid(ctx: EvalContext) -> dict[str, float]:
    """Kernel Inception Distance: unbiased MMD^2, cubic kernel, 100 subsets of 1000 (torch-fidelity)."""
    from gankit.metrics.kid import kid as kernel_distance

    n, m, extra = _fake_and_real_counts(ctx, 50000)
    fake, real = _inception_features(ctx, n, m)
    size = min(1000, n, m)
    mean, std = kernel_distance(
        real["pool3"], fake["pool3"], subset_size=size, seed=ctx.options.seed + 2020
    )
    return {"": mean, "std": std} | extra


@metric("is", num=50000, reals=False)
def inception_score(ctx: EvalContext) -> dict[str, float]:
    """Inception Score over 10 splits (the 1008-way logits, torch-fidelity protocol)."""
    from gankit.metrics.inception_score import inception_score as score

    fake, _ = _inception_features(ctx, ctx.count(50000), None)
    mean, std = score(fake["logits_unbiased"], splits=10, seed=ctx.options.seed + 2020)
    return {"": mean, "std": std}


@metric("pr", num=50000, reals=True)
def precision_recall(ctx: EvalContext) -> dict[str, float]:
    """Improved precision and recall (Kynkaanniemi et al. 2019, k=3) on Inception pool3 features."""
    from gankit.metrics.precision_recall import precision_recall as pr

    n, m, extra = _fake_and_real_counts(ctx, 50000)
    fake, real = _inception_features(ctx, n, m)
    precision, recall = pr(real["pool3"], fake["pool3"], k=3)
    return {"precision": precision, "recall": recall} | extra


@metric("ppl", num=50000, reals=False)
def perceptual_path_length(ctx: EvalContext) -> dict[str, float]:
    """Perceptual path length in W, endpoints sampling, LPIPS-VGG (StyleGAN); needs mapping/synthesis."""
    from gankit.metrics.ppl import perceptual_path_length as ppl

    G = _style_generator(ctx)
    out = ppl(
        G,
        num_samples=ctx.num or 50000,
        space="w",
        sampling="end",
        seed=ctx.options.seed,
        device=ctx.options.device,
        progress=ctx.options.progress,
    )
    return {"": out["ppl"], "unfiltered": out["ppl_unfiltered"]}


def _style_generator(ctx: EvalContext) -> torch.nn.Module:
    source = ctx.fakes
    if not isinstance(source, GeneratorSource) or not hasattr(source.G, "mapping"):
        raise ConfigError(
            f"{ctx.label} needs a StyleGAN-family generator (G.mapping and G.synthesis); evaluate a "
            "StyleGAN or StyleGAN2 run directory"
        )
    return source.G


# ---------------------------------------------------------------------------------------------
# Mode coverage


@metric("modes", num=None, reals=False)
def modes(ctx: EvalContext) -> dict[str, float]:
    """Mode coverage: 2-D mixtures (2,500 points, VEEGAN/PacGAN) or Stacked MNIST (26,000 samples)."""
    if ctx.fakes.kind == "points":
        return _mixture_modes(ctx)
    if ctx.data_name == "stacked-mnist" or ctx.fakes.channels == 3:
        return _stacked_modes(ctx)
    raise ConfigError(
        f"{ctx.label} works on 2-D points (ring8, grid25) or Stacked MNIST samples; "
        f"got {ctx.fakes.channels}-channel images"
    )


def _mixture_modes(ctx: EvalContext) -> dict[str, float]:
    from gankit.metrics.modes import mixture_coverage

    if ctx.data_name not in ("ring8", "grid25"):
        raise ConfigError(f"{ctx.label} on 2-D points needs --data ring8 or --data grid25")
    points = ctx.fakes.take(ctx.count(2500))
    out = mixture_coverage(points, ctx.data_name)
    return {
        "covered": out["modes"],
        "high_quality": out["high_quality"],
        "reverse_kl": out["reverse_kl"],
    }


def _stacked_modes(ctx: EvalContext) -> dict[str, float]:
    from gankit.metrics.modes import stacked_mnist_coverage

    extract, _ = ctx.bank.extractor(CLASSIFIER, "mnist")
    images = ctx.fakes.take(ctx.count(26000), ctx.options.batch_size)
    out = stacked_mnist_coverage(images, extract.classifier, device=ctx.options.device)
    return {"covered": out["modes"], "kl": out["kl"]}


# ---------------------------------------------------------------------------------------------
# Domain-classifier metrics for small grayscale data (MNIST, Fashion-MNIST)


def _domain(ctx: EvalContext) -> str:
    name = ctx.data_name if ctx.data_name in ("mnist", "fashion-mnist") else "mnist"
    if ctx.fakes.kind != "images" or ctx.fakes.channels != 1:
        raise ConfigError(
            f"{ctx.label} uses the MNIST-style domain classifier: it needs 1-channel images"
        )
    return name


@metric("clf-fid", num=10000, reals=True)
def classifier_fid(ctx: EvalContext) -> dict[str, float]:
    """FID on the domain classifier's penultimate features (MNIST-like data, no Inception)."""
    from gankit.metrics.fid import fid_from_features

    n, m, extra = _fake_and_real_counts(ctx, 10000)
    domain = _domain(ctx)
    fake = ctx.bank.features(ctx.fakes, n, CLASSIFIER, domain)
    real = ctx.bank.features(ctx.require_reals(), m, CLASSIFIER, domain, real=True)
    return {"": fid_from_features(real["features"], fake["features"])} | extra


@metric("clf-kid", num=10000, reals=True)
def classifier_kid(ctx: EvalContext) -> dict[str, float]:
    """KID on the domain classifier's penultimate features (MNIST-like data, no Inception)."""
    from gankit.metrics.kid import kid as kernel_distance

    n, m, extra = _fake_and_real_counts(ctx, 10000)
    domain = _domain(ctx)
    fake = ctx.bank.features(ctx.fakes, n, CLASSIFIER, domain)
    real = ctx.bank.features(ctx.require_reals(), m, CLASSIFIER, domain, real=True)
    mean, std = kernel_distance(
        real["features"],
        fake["features"],
        subset_size=min(1000, n, m),
        seed=ctx.options.seed + 2020,
    )
    return {"": mean, "std": std} | extra


@metric("clf-is", num=10000, reals=False)
def classifier_score(ctx: EvalContext) -> dict[str, float]:
    """Inception-Score-like score with the domain classifier's predictions (10 splits)."""
    from gankit.metrics.classifier import classifier_score as score

    fake = ctx.bank.features(ctx.fakes, ctx.count(10000), CLASSIFIER, _domain(ctx))
    mean, std = score(fake["logits"], splits=10)
    return {"": mean, "std": std}


@metric("class-acc", num=10000, reals=False)
def class_accuracy(ctx: EvalContext) -> dict[str, float]:
    """Accuracy of the domain classifier on conditional samples (balanced labels 0..K-1)."""
    source = ctx.fakes
    if not isinstance(source, GeneratorSource) or not getattr(source.G, "c_dim", 0):
        raise ConfigError(f"{ctx.label} needs a conditional generator (a cgan run)")
    c_dim = source.G.c_dim
    n = ctx.count(10000)
    labels = torch.arange(n) % c_dim
    position = iter(range(0, n, ctx.options.batch_size))

    def next_labels(count: int, generator: torch.Generator) -> torch.Tensor:
        start = next(position)
        return labels[start : start + count]

    labelled = GeneratorSource(source.G, source.kwargs, seed=source.seed, labels=next_labels)
    extract, _ = ctx.bank.extractor(CLASSIFIER, _domain(ctx))
    correct = 0
    for batch, start in zip(
        labelled.batches(n, ctx.options.batch_size),
        range(0, n, ctx.options.batch_size),
        strict=True,
    ):
        predicted = extract(batch)["logits"].argmax(dim=1).cpu()
        correct += int((predicted == labels[start : start + len(batch)]).sum())
    return {"": correct / n}


@metric("parzen", num=10000, reals=False)
def parzen(ctx: EvalContext) -> dict[str, float]:
    """Gaussian Parzen-window log-likelihood of the MNIST test set (GAN paper); sigma on validation."""
    samples = _flat01(ctx.fakes.take(ctx.count(10000), ctx.options.batch_size))
    return parzen_test_log_likelihood(
        samples,
        _domain(ctx),
        resolution=ctx.fakes.resolution,
        data_root=ctx.options.data_root,
        device=ctx.options.device,
    )


def parzen_test_log_likelihood(
    samples: torch.Tensor,
    domain: str,
    *,
    resolution: int,
    data_root: str | None = None,
    device: torch.device | str | None = None,
) -> dict[str, float]:
    """The GAN paper's protocol for samples `[N, D]` in [0, 1]: sigma on validation, LL of test."""
    from gankit.data import open_dataset
    from gankit.metrics.parzen import parzen_log_likelihood, select_sigma

    train = open_dataset(domain, root=data_root, resolution=resolution, split="train")
    test = open_dataset(domain, root=data_root, resolution=resolution, split="test")
    # The reference picks sigma on 1,000 images of the last 10,000 of the training set.
    validation = _flat01(train.images[50000:51000])
    sigma = select_sigma(samples, validation)
    mean, std_err = parzen_log_likelihood(samples, _flat01(test.images), sigma, device=device)
    return {"": mean, "std_err": std_err, "sigma": sigma}


def _flat01(images: torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(np.asarray(images)).flatten(1).float() / 255.0
