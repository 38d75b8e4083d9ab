"""Running metrics: names with sample counts, feature extraction with a real-feature cache, and
`evaluate()`, which the CLI and the training loop both call.

A metric is registered in `METRICS` as a `MetricSpec`: a function `fn(ctx) -> {key: value}` with
its default sample count. Names may carry the count: `fid50k` is FID on 50,000 samples, `swd16k`
SWD on 16,384 (SWD's counts are powers of two, as in the PGGAN paper), `ms_ssim10k` MS-SSIM over
10,000 pairs. A plain name (`fid`) takes `--num`, else the metric's paper count.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gankit.errors import ConfigError
from gankit.metrics.progress import Progress, format_seconds, say
from gankit.metrics.sources import GeneratorSource, Source
from gankit.paths import cache_dir
from gankit.registry import METRICS


@dataclass(frozen=True)
class MetricSpec:
    """A registered metric: its function, default count and what it needs."""

    name: str
    fn: Callable[[EvalContext], dict[str, float]]
    default_num: int | None
    needs_reals: bool
    description: str
    #: What one "k" of the name's count means (1024 for SWD's power-of-two counts).
    unit: int = 1000
    #: Checks that the metric can run on this context and says what it will compute (no work).
    plan: Callable[[EvalContext], Plan] | None = None

    def __call__(self, ctx: EvalContext) -> dict[str, float]:
        return self.fn(ctx)


def metric(
    name: str,
    *,
    num: int | None,
    reals: bool,
    unit: int = 1000,
    plan: Callable[[EvalContext], Plan] | None = None,
) -> Callable:
    """Decorator registering `fn(ctx) -> dict` as metric `name` (docstring's first line = description).

    `plan(ctx) -> Plan` runs for every requested metric before any of them starts: it raises a
    `GankitError` when the metric cannot run here, and lists the sample passes it will make.
    """

    def register(fn: Callable[[EvalContext], dict[str, float]]) -> MetricSpec:
        doc = (fn.__doc__ or "").strip().splitlines()
        spec = MetricSpec(name, fn, num, reals, doc[0] if doc else "", unit, plan)
        METRICS.register(name, spec.description)(spec)
        return spec

    return register


@dataclass(frozen=True)
class Pass:
    """One pass over the first `n` samples of a source, through a feature extractor or none."""

    source: Source
    n: int
    kind: str | None = None
    domain: str | None = None
    real: bool = False


@dataclass
class Plan:
    """What a metric will compute: how many samples (or pairs), and its passes over the sources."""

    count: int
    passes: list[Pass] = field(default_factory=list)
    unit: str = "samples"


@dataclass(frozen=True)
class MetricRequest:
    """One metric to compute: the spec, how many samples, and the label its keys start with."""

    spec: MetricSpec
    num: int | None
    label: str


_COUNT = re.compile(r"^(?P<base>[a-z][a-z0-9_-]*?)(?P<count>\d+)(?P<k>k?)$")


def parse_metric(text: str, num: int | None = None) -> MetricRequest:
    """`fid50k` -> FID on 50,000; `fid` -> FID on `num` (or its default); unknown names suggest."""
    raw = text.strip().lower()
    name = raw.replace("_", "-")
    if num is not None and num < 1:
        raise ConfigError(f"--num must be a positive sample count; got {num}")
    if name in METRICS:
        spec = METRICS.get(name)
        count = num if num is not None else spec.default_num
        return MetricRequest(spec, count, _label(spec, count))
    match = _COUNT.match(name)
    if match and match["base"].rstrip("-") in METRICS:
        spec = METRICS.get(match["base"].rstrip("-"))
        count = int(match["count"]) * (spec.unit if match["k"] else 1)
        if count < 1:
            raise ConfigError(
                f"{text.strip()!r} asks for {count} samples; give a positive count, e.g. "
                f"{spec.name.replace('-', '_')}10k"
            )
        return MetricRequest(spec, count, raw.replace("-", "_"))
    METRICS.get(name)  # raises with suggestions
    raise AssertionError("unreachable")


def _label(spec: MetricSpec, count: int | None) -> str:
    base = spec.name.replace("-", "_")
    if count is None:
        return base
    if count % spec.unit == 0:
        return f"{base}{count // spec.unit}k"
    return f"{base}{count}"


def parse_metrics(texts: list[str] | str, num: int | None = None) -> list[MetricRequest]:
    """A comma-separated string or a list of names -> requests (validated before any work)."""
    items = texts.split(",") if isinstance(texts, str) else [t for s in texts for t in s.split(",")]
    return [parse_metric(t, num) for t in items if t.strip()]


# ---------------------------------------------------------------------------------------------
# Features


@dataclass
class EvalOptions:
    """Everything a metric may be told from the command line."""

    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    batch_size: int = 64
    seed: int = 0
    inception_weights: str | None = None
    resize: str = "reference"
    classifier: str | None = None
    data_root: str | None = None
    progress: bool = True
    cache: bool = True
    #: Where notes and progress lines go (stderr by default).
    log: Callable[[str], None] = say
    #: Compare with every real sample rather than as many as there are fakes (a translation
    #: run's whole target test set, as pytorch-fid on two folders does in the CUT protocol).
    all_reals: bool = False


class FeatureBank:
    """Builds feature extractors once and caches real-image features on disk."""

    def __init__(self, options: EvalOptions) -> None:
        self.options = options
        self._extractors: dict[
            str, tuple[Callable[[torch.Tensor], dict[str, torch.Tensor]], str]
        ] = {}
        # Features already computed in this evaluation (fid, kid, is, pr share one pass).
        self._memo: dict[tuple, dict[str, torch.Tensor]] = {}

    def forget(self) -> None:
        """Drop the per-evaluation memo (G changes between evaluations during training)."""
        self._memo.clear()

    def extractor(self, kind: str, domain: str | None = None) -> tuple[Callable, str]:
        """(images -> feature dict, identity string) for 'inception' or 'classifier'."""
        key = f"{kind}:{domain}"
        if key not in self._extractors:
            self._extractors[key] = self._build(kind, domain)
        return self._extractors[key]

    def _build(self, kind: str, domain: str | None) -> tuple[Callable, str]:
        o = self.options
        if kind == "inception":
            from gankit.metrics.inception import load_inception, resolve_weights, weights_hash_note

            path = resolve_weights(o.inception_weights)
            net = load_inception(path, resize=o.resize, device=o.device)
            note = weights_hash_note(path)
            if note:
                o.log(note)
            return net, f"inception|{_file_key(path)}|{o.resize}"
        clf, path = self._classifier(domain or "mnist")

        @torch.no_grad()
        def run(images: torch.Tensor) -> dict[str, torch.Tensor]:
            x = images.to(o.device)
            return {"features": clf.features(x).float(), "logits": clf.logits(x).float()}

        run.classifier = clf  # type: ignore[attr-defined]
        return run, f"classifier|{_file_key(path)}"

    def _classifier(self, dataset: str) -> tuple[torch.nn.Module, Path]:
        """The --classifier file, else the cached one for `dataset` (trained first if absent)."""
        from gankit.metrics.classifier import (
            default_classifier_path,
            load_classifier,
            pretrained_classifier,
        )

        o = self.options
        if o.classifier:
            path = Path(o.classifier)
            return load_classifier(path, o.device).eval(), path
        path = default_classifier_path(dataset)
        if not path.is_file():
            o.log(
                f"training the {dataset} domain classifier for the clf-* metrics first (once: 3 "
                f"epochs on the {dataset} train split, about 1.5 min on one CPU core, seconds on "
                f"a GPU); it is cached at {path}"
            )
        start = time.monotonic()
        clf = pretrained_classifier(dataset, root=o.data_root, device=o.device, progress=o.progress)
        if "test_accuracy" in clf.meta and time.monotonic() - start > 1:
            o.log(
                f"trained the {dataset} classifier in {format_seconds(time.monotonic() - start)} "
                f"(test accuracy {100 * clf.meta['test_accuracy']:.2f}%)"
            )
        return clf.eval(), path

    def features(
        self, source: Source, n: int, kind: str, domain: str | None = None, *, real: bool = False
    ) -> dict[str, torch.Tensor]:
        """Features of the first `n` samples of `source`; the reals' are cached on disk."""
        memo_key = (id(source), n, kind, domain)
        if memo_key not in self._memo:
            self._memo[memo_key] = self._compute(source, n, kind, domain, real)
        return self._memo[memo_key]

    def cache_file(
        self, source: Source, n: int, kind: str, domain: str | None = None
    ) -> Path | None:
        """Where the features of `n` real samples of `source` are cached (None: no caching)."""
        if not self.options.cache:
            return None
        _, ident = self.extractor(kind, domain)
        digest = hashlib.sha1(f"{source.identity()}|{n}|{ident}".encode()).hexdigest()[:20]
        return cache_dir() / "metrics" / f"{kind}-{digest}.npz"

    def _compute(
        self, source: Source, n: int, kind: str, domain: str | None, real: bool
    ) -> dict[str, torch.Tensor]:
        extract, _ = self.extractor(kind, domain)
        cache = self.cache_file(source, n, kind, domain) if real else None
        if cache is not None and cache.is_file():
            with np.load(cache) as data:
                return {k: torch.from_numpy(data[k]) for k in data.files}
        chunks: dict[str, list[torch.Tensor]] = {}
        desc = f"{kind} features of {'the real images' if real else 'the samples'}"
        o = self.options
        with Progress(n, desc, enabled=o.progress, log=o.log) as progress:
            for batch in source.batches(n, o.batch_size):
                for key, value in extract(batch).items():
                    chunks.setdefault(key, []).append(value.cpu())
                progress.update(len(batch))
        out = {k: torch.cat(v) for k, v in chunks.items()}
        if cache is not None:
            _save_npz(cache, out)
        return out


def _file_key(path: Path) -> str:
    stat = Path(path).stat()
    return f"{Path(path).resolve()}|{stat.st_size}|{stat.st_mtime_ns}"


def _save_npz(path: Path, arrays: dict[str, torch.Tensor]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp.npz")
    np.savez(tmp, **{k: v.numpy() for k, v in arrays.items()})
    tmp.replace(path)


# ---------------------------------------------------------------------------------------------
# Evaluation


@dataclass
class EvalContext:
    """What a metric function may use."""

    fakes: Source
    reals: Source | None
    num: int | None
    label: str
    options: EvalOptions
    bank: FeatureBank
    data_name: str = ""
    spec: MetricSpec | None = None
    #: Set by `prepare`: what this metric will compute.
    plan: Plan | None = None

    def count(self, default: int) -> int:
        """The requested sample count (checked against what the fakes can give)."""
        return self.fakes.check_count(default if self.num is None else self.num, self.label)

    def real_count(self, n: int) -> int:
        """As many reals as fakes, or every real when the dataset is smaller (said in the keys);
        every real with `options.all_reals`."""
        assert self.reals is not None
        if self.options.all_reals and self.reals.size:
            return self.reals.size
        return min(n, self.reals.size or n)

    def require_reals(self) -> Source:
        """The reference data, or a clear error."""
        if self.reals is None:
            raise ConfigError(f"{self.label} compares with real data: pass --data NAME_OR_PATH")
        return self.reals

    def take(self, source: Source, n: int) -> torch.Tensor:
        """The first `n` samples of `source` as one tensor, with progress for long passes."""
        what = "real samples" if source is self.reals else "samples"
        o = self.options
        batches = []
        with Progress(n, f"{self.label}: {what}", enabled=o.progress, log=o.log) as progress:
            for batch in source.batches(n, o.batch_size):
                batches.append(batch)
                progress.update(len(batch))
        return torch.cat(batches)


def prepare(
    requests: list[MetricRequest],
    fakes: Source,
    reals: Source | None,
    options: EvalOptions,
    *,
    bank: FeatureBank | None = None,
    data_name: str = "",
) -> list[EvalContext]:
    """Check that every requested metric can run, before any of them does any work.

    First each metric's cheap checks (reals given, sample counts, image kind and size, weights
    files found), then the feature extractors are built (loading Inception, or training the
    domain classifier once), so a missing file fails in seconds, not after a long first metric.
    """
    bank = bank or FeatureBank(options)
    bank.forget()
    contexts = []
    for request in requests:
        ctx = EvalContext(
            fakes, reals, request.num, request.label, options, bank, data_name, request.spec
        )
        if request.spec.needs_reals:
            _check_reals(ctx)
        ctx.plan = request.spec.plan(ctx) if request.spec.plan else Plan(request.num or 0)
        contexts.append(ctx)
    passes = [p for ctx in contexts if ctx.plan for p in ctx.plan.passes]
    for kind, domain in dict.fromkeys((p.kind, p.domain) for p in passes if p.kind):
        bank.extractor(kind, domain)
    return contexts


def _check_reals(ctx: EvalContext) -> None:
    reals = ctx.require_reals()
    if reals.kind != ctx.fakes.kind:
        raise ConfigError(
            f"{ctx.label} compares like with like, but the samples are {ctx.fakes.kind} and the "
            f"real data ({reals.name}) is {reals.kind}; pass a --data of {ctx.fakes.kind}"
        )


def run_prepared(contexts: list[EvalContext]) -> dict[str, float]:
    """Run prepared metrics; one flat dict of `label[/quantity]` -> value."""
    results: dict[str, float] = {}
    for ctx in contexts:
        assert ctx.spec is not None
        for key, value in ctx.spec(ctx).items():
            results[ctx.label if key == "" else f"{ctx.label}/{key}"] = float(value)
    return results


def evaluate(
    requests: list[MetricRequest],
    fakes: Source,
    reals: Source | None,
    options: EvalOptions,
    *,
    bank: FeatureBank | None = None,
    data_name: str = "",
) -> dict[str, float]:
    """Run every requested metric; returns one flat dict of `label[/quantity]` -> value."""
    contexts = prepare(requests, fakes, reals, options, bank=bank, data_name=data_name)
    return run_prepared(contexts)


#: Below this many samples in all, no time is estimated (the work takes seconds).
ESTIMATE_MIN_SAMPLES = 2000
#: Samples timed per source and per feature extractor for the estimate.
PROBE_SAMPLES = 8


def estimate_seconds(contexts: list[EvalContext]) -> float | None:
    """Seconds the sampling and feature passes of `contexts` will take, from timing a few samples.

    None when the work is small. Cached real features, and passes that several metrics share
    (FID, KID, IS and PR use one), count once. The metrics' own maths is not included.
    """
    passes = _distinct_passes(contexts)
    if not passes or sum(p.n for p in passes) < ESTIMATE_MIN_SAMPLES:
        return None
    bank = contexts[0].bank
    fakes = contexts[0].fakes
    probe = fakes.take(min(PROBE_SAMPLES, fakes.size or PROBE_SAMPLES))
    seconds = 0.0
    source_cost: dict[int, float] = {}
    kind_cost: dict[tuple[str, str | None], float] = {}
    for p in passes:
        if id(p.source) not in source_cost:
            source_cost[id(p.source)] = _sample_cost(p.source)
        cost = source_cost[id(p.source)]
        if p.kind is not None:
            key = (p.kind, p.domain)
            if key not in kind_cost:
                extract, _ = bank.extractor(p.kind, p.domain)
                kind_cost[key] = _timed(lambda: extract(probe)) / len(probe)  # noqa: B023
            cost += kind_cost[key]
        seconds += p.n * cost
    return seconds


def _distinct_passes(contexts: list[EvalContext]) -> list[Pass]:
    seen: dict[tuple, Pass] = {}
    for ctx in contexts:
        for p in ctx.plan.passes if ctx.plan else []:
            key = (id(p.source), p.n, p.kind, p.domain)
            cached = p.real and p.kind and _is_cached(ctx.bank, p)
            if key not in seen and not cached:
                seen[key] = p
    return list(seen.values())


def _is_cached(bank: FeatureBank, p: Pass) -> bool:
    assert p.kind is not None
    path = bank.cache_file(p.source, p.n, p.kind, p.domain)
    return path is not None and path.is_file()


def _sample_cost(source: Source) -> float:
    """Seconds per sample drawn from `source`: a generator's forward pass; data is at hand."""
    if not isinstance(source, GeneratorSource):
        return 0.0
    return _timed(lambda: source.take(PROBE_SAMPLES)) / PROBE_SAMPLES


def _timed(fn: Callable[[], Any]) -> float:
    """The faster of two runs of `fn` (the first one pays for lazy set-up)."""
    times = []
    for _ in range(2):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def to_json_ready(results: dict[str, Any]) -> dict[str, Any]:
    """NaN -> None so the JSON is standard."""
    return {
        k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in results.items()
    }
