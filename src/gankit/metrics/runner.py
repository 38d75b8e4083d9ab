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
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from gankit.errors import ConfigError
from gankit.metrics.sources import Source
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

    def __call__(self, ctx: EvalContext) -> dict[str, float]:
        return self.fn(ctx)


def metric(name: str, *, num: int | None, reals: bool, unit: int = 1000) -> Callable:
    """Decorator registering `fn(ctx) -> dict` as metric `name` (docstring's first line = description)."""

    def register(fn: Callable[[EvalContext], dict[str, float]]) -> MetricSpec:
        doc = (fn.__doc__ or "").strip().splitlines()
        spec = MetricSpec(name, fn, num, reals, doc[0] if doc else "", unit)
        METRICS.register(name, spec.description)(spec)
        return spec

    return register


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
    if name in METRICS:
        spec = METRICS.get(name)
        count = num if num is not None else spec.default_num
        return MetricRequest(spec, count, _label(spec, count))
    match = _COUNT.match(name)
    if match and match["base"].rstrip("-") in METRICS:
        spec = METRICS.get(match["base"].rstrip("-"))
        count = int(match["count"]) * (spec.unit if match["k"] else 1)
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
            from gankit.metrics.inception import load_inception, resolve_weights

            path = resolve_weights(o.inception_weights)
            net = load_inception(path, resize=o.resize, device=o.device)
            return net, f"inception|{_file_key(path)}|{o.resize}"
        from gankit.metrics.classifier import default_classifier_path, pretrained_classifier

        if o.classifier:
            from gankit.metrics.classifier import load_classifier

            path = Path(o.classifier)
            clf = load_classifier(path, o.device)
        else:
            dataset = domain or "mnist"
            clf = pretrained_classifier(
                dataset, root=o.data_root, device=o.device, progress=o.progress
            )
            path = default_classifier_path(dataset)
        clf = clf.eval()

        @torch.no_grad()
        def run(images: torch.Tensor) -> dict[str, torch.Tensor]:
            x = images.to(o.device)
            return {"features": clf.features(x).float(), "logits": clf.logits(x).float()}

        run.classifier = clf  # type: ignore[attr-defined]
        return run, f"classifier|{_file_key(path)}"

    def features(
        self, source: Source, n: int, kind: str, domain: str | None = None, *, real: bool = False
    ) -> dict[str, torch.Tensor]:
        """Features of the first `n` samples of `source`; the reals' are cached on disk."""
        memo_key = (id(source), n, kind, domain)
        if memo_key not in self._memo:
            self._memo[memo_key] = self._compute(source, n, kind, domain, real)
        return self._memo[memo_key]

    def _compute(
        self, source: Source, n: int, kind: str, domain: str | None, real: bool
    ) -> dict[str, torch.Tensor]:
        extract, ident = self.extractor(kind, domain)
        what = "the real images" if real else "the samples"
        cache = None
        if real and self.options.cache:
            digest = hashlib.sha1(f"{source.identity()}|{n}|{ident}".encode()).hexdigest()[:20]
            cache = cache_dir() / "metrics" / f"{kind}-{digest}.npz"
            if cache.is_file():
                with np.load(cache) as data:
                    return {k: torch.from_numpy(data[k]) for k in data.files}
        chunks: dict[str, list[torch.Tensor]] = {}
        bs = self.options.batch_size
        desc = f"{kind} features of {what}"
        with tqdm(
            # disable=None: shown only on a terminal, not in a log file
            total=n,
            desc=desc,
            unit="img",
            disable=None if self.options.progress else True,
            leave=False,
        ) as bar:
            for batch in source.batches(n, bs):
                for key, value in extract(batch).items():
                    chunks.setdefault(key, []).append(value.cpu())
                bar.update(len(batch))
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

    def count(self, default: int) -> int:
        """The requested sample count (checked against what the fakes can give)."""
        return self.fakes.check_count(self.num or default, self.label)

    def real_count(self, n: int) -> int:
        """As many reals as fakes, or every real when the dataset is smaller (said in the keys)."""
        assert self.reals is not None
        return min(n, self.reals.size or n)

    def require_reals(self) -> Source:
        """The reference data, or a clear error."""
        if self.reals is None:
            raise ConfigError(f"{self.label} compares with real data: pass --data NAME_OR_PATH")
        return self.reals


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
    bank = bank or FeatureBank(options)
    bank.forget()
    results: dict[str, float] = {}
    for request in requests:
        if request.spec.needs_reals and reals is None:
            raise ConfigError(f"{request.label} compares with real data: pass --data NAME_OR_PATH")
        ctx = EvalContext(fakes, reals, request.num, request.label, options, bank, data_name)
        for key, value in request.spec(ctx).items():
            results[request.label if key == "" else f"{request.label}/{key}"] = float(value)
    return results


def to_json_ready(results: dict[str, Any]) -> dict[str, Any]:
    """NaN -> None so the JSON is standard."""
    return {
        k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in results.items()
    }
