"""The registered metrics. Each takes an `EvalContext` and returns `{quantity: value}` (the key ""
is the metric's headline number); `evaluate()` prefixes every key with the metric's label, e.g.
`fid50k`, `kid50k/std`, `swd16k/64`, `swd16k/avg`, `ms_ssim10k/fake`.

Protocols and the references each one matches are documented in docs/metrics.md.
"""

from __future__ import annotations

import numpy as np
import torch

from gankit.errors import ConfigError
from gankit.metrics.runner import EvalContext, Pass, Plan, metric
from gankit.metrics.sources import GeneratorSource, Source

INCEPTION = "inception"
CLASSIFIER = "classifier"


def _fake_and_real_counts(ctx: EvalContext, default: int) -> tuple[int, int, dict[str, float]]:
    n = ctx.count(default)
    m = ctx.real_count(n)
    # Say so in the results when the reals were fewer (or, with all_reals, more) than the fakes.
    return n, m, ({"real_samples": float(m)} if m != n else {})


def _require_images(ctx: EvalContext) -> None:
    if ctx.fakes.kind != "images":
        raise ConfigError(
            f"{ctx.label} measures images, but {ctx.fakes.name} gives 2-D points; for ring8 or "
            "grid25 use --metrics modes"
        )


def _paired_plan(ctx: EvalContext, default: int, kind: str | None = None, domain=None) -> Plan:
    """n samples and the matching reals, both through `kind` (or no extractor)."""
    n, m, _ = _fake_and_real_counts(ctx, default)
    reals = ctx.require_reals()
    return Plan(n, [Pass(ctx.fakes, n, kind, domain), Pass(reals, m, kind, domain, real=True)])


def _swd_plan(ctx: EvalContext) -> Plan:
    from gankit.metrics.swd import MIN_RESOLUTION, swd_resolutions

    _require_images(ctx)
    res = ctx.fakes.resolution
    try:
        swd_resolutions(res)
    except ValueError:
        raise ConfigError(
            f"{ctx.label}: SWD needs images of at least {MIN_RESOLUTION}x{MIN_RESOLUTION} (its "
            f"Laplacian pyramid stops at {MIN_RESOLUTION}), and {ctx.fakes.name} gives "
            f"{res}x{res}; evaluate a later checkpoint, or use other metrics (e.g. fid, ms_ssim)"
        ) from None
    n, m, _ = _fake_and_real_counts(ctx, 16384)
    n = min(n, m)
    return Plan(n, [Pass(ctx.fakes, n), Pass(ctx.require_reals(), n, real=True)])


@metric("swd", num=16384, reals=True, unit=1024, plan=_swd_plan)
def swd(ctx: EvalContext) -> dict[str, float]:
    """Sliced Wasserstein distance (x1e3) per Laplacian level and averaged (PGGAN paper)."""
    from gankit.metrics.swd import swd as sliced

    n, m, extra = _fake_and_real_counts(ctx, 16384)
    n = min(n, m)  # SWD compares equally many images
    real = ctx.take(ctx.require_reals(), n)
    fake = ctx.take(ctx.fakes, n)
    out = sliced(real, fake, seed=ctx.options.seed, device=ctx.options.device)
    return {key.split("/", 1)[1]: value for key, value in out.items()} | extra


#: The PGGAN MS-SSIM halves the images 4 times (5 scales).
MS_SSIM_MIN_RESOLUTION = 16


def _ms_ssim_plan(ctx: EvalContext) -> Plan:
    _require_images(ctx)
    res = ctx.fakes.resolution
    if res < MS_SSIM_MIN_RESOLUTION:
        raise ConfigError(
            f"{ctx.label}: MS-SSIM compares images at 5 scales, which needs at least "
            f"{MS_SSIM_MIN_RESOLUTION}x{MS_SSIM_MIN_RESOLUTION}; {ctx.fakes.name} gives "
            f"{res}x{res}: evaluate a later checkpoint, or use other metrics (e.g. fid)"
        )
    pairs = ctx.num or 10000
    sources = [ctx.fakes] if ctx.reals is None else [ctx.fakes, ctx.reals]
    passes = [Pass(s, min(pairs, s.size or pairs), real=s is ctx.reals) for s in sources]
    if min(p.n for p in passes) < 2:
        raise ConfigError(f"{ctx.label} pairs distinct images: it needs at least 2 of each set")
    return Plan(pairs, passes, unit="pairs")


@metric("ms-ssim", num=10000, reals=False, plan=_ms_ssim_plan)
def ms_ssim(ctx: EvalContext) -> dict[str, float]:
    """Mean MS-SSIM of random pairs of samples (diversity; lower = more diverse); reals too if given."""
    from gankit.metrics.ms_ssim import ms_ssim_diversity

    pairs = ctx.num or 10000
    out = {"fake": _diversity(ctx.fakes, pairs, ctx, ms_ssim_diversity)}
    if ctx.reals is not None:
        out["real"] = _diversity(ctx.reals, pairs, ctx, ms_ssim_diversity)
    return out


def _diversity(source: Source, pairs: int, ctx: EvalContext, fn) -> float:
    images = ctx.take(source, min(pairs, source.size or pairs))
    gen = torch.Generator().manual_seed(ctx.options.seed)
    return fn(images, pairs, generator=gen, protocol="pggan")


def _inception_features(ctx: EvalContext, n: int, m: int | None) -> tuple[dict, dict | None]:
    fake = ctx.bank.features(ctx.fakes, n, INCEPTION)
    real = None
    if m is not None:
        real = ctx.bank.features(ctx.require_reals(), m, INCEPTION, real=True)
    return fake, real


def _inception_plan(ctx: EvalContext) -> Plan:
    _require_images(ctx)
    return _paired_plan(ctx, 50000, INCEPTION)


def _inception_score_plan(ctx: EvalContext) -> Plan:
    _require_images(ctx)
    n = ctx.count(50000)
    return Plan(n, [Pass(ctx.fakes, n, INCEPTION)])


@metric("fid", num=50000, reals=True, plan=_inception_plan)
def fid(ctx: EvalContext) -> dict[str, float]:
    """Frechet Inception Distance (2048-d pool3 of the FID InceptionV3; torch-fidelity protocol)."""
    from gankit.metrics.fid import fid_from_features

    n, m, extra = _fake_and_real_counts(ctx, 50000)
    fake, real = _inception_features(ctx, n, m)
    return {"": fid_from_features(real["pool3"], fake["pool3"])} | extra


@metric("kid", num=50000, reals=True, plan=_inception_plan)
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


@metric("is", num=50000, reals=False, plan=_inception_score_plan)
def inception_score(ctx: EvalContext) -> dict[str, float]:
    """Inception Score over 10 splits (the 1008-way logits, torch-fidelity protocol)."""
    from gankit.metrics.inception_score import inception_score as score

    fake, _ = _inception_features(ctx, ctx.count(50000), None)
    mean, std = score(fake["logits_unbiased"], splits=10, seed=ctx.options.seed + 2020)
    return {"": mean, "std": std}


@metric("pr", num=50000, reals=True, plan=_inception_plan)
def precision_recall(ctx: EvalContext) -> dict[str, float]:
    """Improved precision and recall (Kynkaanniemi et al. 2019, k=3) on Inception pool3 features."""
    from gankit.metrics.precision_recall import precision_recall as pr

    n, m, extra = _fake_and_real_counts(ctx, 50000)
    fake, real = _inception_features(ctx, n, m)
    precision, recall = pr(real["pool3"], fake["pool3"], k=3)
    return {"precision": precision, "recall": recall} | extra


def _ppl_plan(ctx: EvalContext) -> Plan:
    from gankit.metrics.lpips import resolve_heads, resolve_vgg16_weights

    _style_generator(ctx)
    resolve_vgg16_weights()  # missing LPIPS weights fail now, not after sampling
    resolve_heads()
    n = ctx.num or 50000
    return Plan(n, [Pass(ctx.fakes, 2 * n)])  # two images per path segment


def _ppl(ctx: EvalContext, space: str, sampling: str) -> dict[str, float]:
    from gankit.metrics.ppl import perceptual_path_length as ppl

    G = _style_generator(ctx)
    out = ppl(
        G,
        num_samples=ctx.num or 50000,
        space=space,
        sampling=sampling,
        seed=ctx.options.seed,
        device=ctx.options.device,
        progress=ctx.options.progress,
    )
    return {"": out["ppl"], "unfiltered": out["ppl_unfiltered"]}


@metric("ppl", num=50000, reals=False, plan=_ppl_plan)
def perceptual_path_length(ctx: EvalContext) -> dict[str, float]:
    """Perceptual path length in W, endpoints sampling, LPIPS-VGG (StyleGAN); needs mapping/synthesis."""
    return _ppl(ctx, "w", "end")


def _register_official_ppl(space: str, sampling: str) -> None:
    """StyleGAN2-ADA's names: ppl_zfull, ppl_wfull, ppl_zend, ppl_wend (no crop)."""

    def run(ctx: EvalContext) -> dict[str, float]:
        return _ppl(ctx, space, sampling)

    run.__doc__ = (
        f"Perceptual path length in {space.upper()}, {sampling} sampling, LPIPS-VGG "
        "(StyleGAN2-ADA's name); needs mapping/synthesis."
    )
    metric(f"ppl-{space}{sampling}", num=50000, reals=False, plan=_ppl_plan)(run)


for _space in ("z", "w"):
    for _sampling in ("full", "end"):
        _register_official_ppl(_space, _sampling)


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


def _modes_plan(ctx: EvalContext) -> Plan:
    if ctx.fakes.kind == "points":
        if ctx.data_name not in ("ring8", "grid25"):
            raise ConfigError(f"{ctx.label} on 2-D points needs --data ring8 or --data grid25")
        n = ctx.count(2500)
        return Plan(n, [Pass(ctx.fakes, n)])
    if ctx.data_name == "stacked-mnist" or ctx.fakes.channels == 3:
        n = ctx.count(26000)
        return Plan(n, [Pass(ctx.fakes, n, CLASSIFIER, "mnist")])
    raise ConfigError(
        f"{ctx.label} works on 2-D points (ring8, grid25) or Stacked MNIST samples; "
        f"got {ctx.fakes.channels}-channel images"
    )


@metric("modes", num=None, reals=False, plan=_modes_plan)
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
    points = ctx.take(ctx.fakes, ctx.count(2500))
    out = mixture_coverage(points, ctx.data_name)
    return {
        "covered": out["modes"],
        "high_quality": out["high_quality"],
        "reverse_kl": out["reverse_kl"],
    }


def _stacked_modes(ctx: EvalContext) -> dict[str, float]:
    from gankit.metrics.modes import stacked_mnist_coverage

    extract, _ = ctx.bank.extractor(CLASSIFIER, "mnist")
    images = ctx.take(ctx.fakes, ctx.count(26000))
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


def _classifier_pair_plan(ctx: EvalContext) -> Plan:
    return _paired_plan(ctx, 10000, CLASSIFIER, _domain(ctx))


def _classifier_plan(ctx: EvalContext) -> Plan:
    domain = _domain(ctx)
    n = ctx.count(10000)
    return Plan(n, [Pass(ctx.fakes, n, CLASSIFIER, domain)])


def _class_acc_plan(ctx: EvalContext) -> Plan:
    _conditional(ctx)
    return _classifier_plan(ctx)


def _parzen_plan(ctx: EvalContext) -> Plan:
    _domain(ctx)
    n = ctx.count(10000)
    return Plan(n, [Pass(ctx.fakes, n)])


@metric("clf-fid", num=10000, reals=True, plan=_classifier_pair_plan)
def classifier_fid(ctx: EvalContext) -> dict[str, float]:
    """FID on the domain classifier's penultimate features (MNIST-like data, no Inception)."""
    from gankit.metrics.fid import fid_from_features

    n, m, extra = _fake_and_real_counts(ctx, 10000)
    domain = _domain(ctx)
    fake = ctx.bank.features(ctx.fakes, n, CLASSIFIER, domain)
    real = ctx.bank.features(ctx.require_reals(), m, CLASSIFIER, domain, real=True)
    return {"": fid_from_features(real["features"], fake["features"])} | extra


@metric("clf-kid", num=10000, reals=True, plan=_classifier_pair_plan)
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


@metric("clf-is", num=10000, reals=False, plan=_classifier_plan)
def classifier_score(ctx: EvalContext) -> dict[str, float]:
    """Inception-Score-like score with the domain classifier's predictions (10 splits)."""
    from gankit.metrics.classifier import classifier_score as score

    fake = ctx.bank.features(ctx.fakes, ctx.count(10000), CLASSIFIER, _domain(ctx))
    mean, std = score(fake["logits"], splits=10)
    return {"": mean, "std": std}


@metric("class-acc", num=10000, reals=False, plan=_class_acc_plan)
def class_accuracy(ctx: EvalContext) -> dict[str, float]:
    """Accuracy of the domain classifier on conditional samples (balanced labels 0..K-1)."""
    source = _conditional(ctx)
    c_dim = source.G.c_dim
    n = ctx.count(10000)
    labels = torch.arange(n) % c_dim
    position = iter(range(0, n, ctx.options.batch_size))

    def next_labels(count: int, generator: torch.Generator) -> torch.Tensor:
        start = next(position)
        return labels[start : start + count]

    labelled = GeneratorSource(
        source.G, source.kwargs, seed=source.seed, labels=next_labels, upscale=source.upscale
    )
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


def _conditional(ctx: EvalContext) -> GeneratorSource:
    source = ctx.fakes
    if not isinstance(source, GeneratorSource) or not getattr(source.G, "c_dim", 0):
        raise ConfigError(f"{ctx.label} needs a conditional generator (a cgan run)")
    return source


@metric("parzen", num=10000, reals=False, plan=_parzen_plan)
def parzen(ctx: EvalContext) -> dict[str, float]:
    """Gaussian Parzen-window log-likelihood of the MNIST test set (GAN paper); sigma on validation."""
    samples = _flat01(ctx.take(ctx.fakes, ctx.count(10000)))
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
