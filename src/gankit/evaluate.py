"""`gankit evaluate`: samples (a run, a checkpoint, a folder, a .npy) + real data -> metric values.

Samples are compared at their own resolution: a run's G_ema at the resolution it outputs now (a
ProGAN run stopped at its 8x8 stage gives 8x8 images), a folder or .npy at its images' size; the
reals are brought to it. Every metric is checked before any of them runs.

A translation run (CycleGAN) has no latent to sample: each direction translates the source
domain's test images (testA/ for a2b) and compares them with the target domain's test images
(testB/), the protocol of the CUT paper (Park et al. 2020, arXiv:2007.15651) for FID and of many
since for KID, which is unbiased for the small test sets these datasets have; plain metric names
count every translated image. Without test folders the training images are used, and said.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from gankit.data import open_dataset
from gankit.device import resolve_device
from gankit.errors import GankitError
from gankit.generate import run_dir_of, translation_run
from gankit.metrics.progress import format_seconds, say
from gankit.metrics.runner import (
    EvalContext,
    EvalOptions,
    estimate_seconds,
    parse_metrics,
    prepare,
    run_prepared,
    to_json_ready,
)
from gankit.metrics.sources import (
    DatasetSource,
    GeneratorSource,
    Source,
    TensorSource,
    file_key,
    fit_images,
    load_array,
    open_samples,
)
from gankit.viz import to_uint8


@dataclass
class Evaluation:
    """Metric values with what they were computed on."""

    results: dict[str, float]
    #: "8x8", or "2-D points".
    resolution: str
    #: Label -> (count, unit), e.g. "fid10k" -> (10000, "samples").
    counts: dict[str, tuple[int, str]] = field(default_factory=dict)

    def lines(self) -> list[str]:
        """One line per value, each saying the resolution and sample count it was computed at."""
        width = max((len(k) for k in self.results), default=10)
        out = []
        for key, value in self.results.items():
            count, unit = self.counts.get(key.split("/", 1)[0], (0, "samples"))
            where = f"at {self.resolution}" if self.resolution != "2-D points" else "2-D points"
            detail = f"{where}, {count:,} {unit}" if count else where
            out.append(f"{key:<{width}}  {value:<12.6g}  ({detail})")
        return out


def evaluate_target(
    target: str,
    metrics: str,
    *,
    data: str | None = None,
    data_root: str | None = None,
    num: int | None = None,
    inception_weights: str | None = None,
    resize: str = "reference",
    classifier: str | None = None,
    device: str = "auto",
    batch: int = 64,
    seed: int = 0,
    cache: bool = True,
    progress: bool = True,
    skip_bad_images: bool = False,
    log: Callable[[str], None] = say,
) -> Evaluation:
    """Compute `metrics` of `target` against `data`, saying first what will be computed and about
    how long it will take."""
    if batch < 1:
        raise GankitError(f"--batch must be at least 1; got {batch}")
    parse_metrics(metrics, num)  # unknown names and bad counts fail before any work
    dev = resolve_device(device)
    options = EvalOptions(
        device=dev, batch_size=batch, seed=seed, inception_weights=inception_weights,
        resize=resize, classifier=classifier, data_root=data_root, progress=progress,
        cache=cache, log=log,
    )  # fmt: skip
    if translation_run(Path(target).expanduser()):
        return evaluate_translation(target, metrics, options, data=data, num=num)
    requests = parse_metrics(metrics, num)
    fakes = open_samples(target, device=dev, seed=seed, skip_bad_images=skip_bad_images)
    data, data_root, skip = _default_data(target, fakes, data, data_root)
    reals = _reals(data, data_root, fakes, seed, skip or skip_bad_images) if data else None
    contexts = prepare(requests, fakes, reals, options, data_name=data or "")
    log(_plan_line(fakes, reals, contexts))
    seconds = estimate_seconds(contexts)
    if seconds is not None:
        log(f"estimated time: about {format_seconds(seconds)} for sampling and feature extraction")
    results = run_prepared(contexts)
    counts = {ctx.label: (ctx.plan.count, ctx.plan.unit) for ctx in contexts if ctx.plan}
    return Evaluation(results, _resolution_text(fakes), counts)


def evaluate_translation(
    target: str, metrics: str, options: EvalOptions, *, data: str | None = None,
    num: int | None = None,
) -> Evaluation:  # fmt: skip
    """Metrics of both directions of a translation run (see the module docstring); the keys
    end in the direction: `fid/a2b`, `kid/b2a`."""
    from gankit.translate import load_translator

    options = dataclasses.replace(options, all_reals=True)
    domains = _translation_domains(target, data, options.log)
    results: dict[str, float] = {}
    counts: dict[str, tuple[int, str]] = {}
    for direction, (source, goal) in (("a2b", domains), ("b2a", domains[::-1])):
        G = load_translator(target, direction, device=options.device)
        generator = "G_ab" if direction == "a2b" else "G_ba"
        fakes = TensorSource(
            _translate_all(G, source.images, options), name=f"{generator} of {source.name}"
        )
        reals = TensorSource(goal.images, name=goal.name)
        contexts = prepare(parse_metrics(metrics, num or fakes.size), fakes, reals, options)
        options.log(_plan_line(fakes, reals, contexts))
        for key, value in run_prepared(contexts).items():
            results[f"{key}/{direction}"] = value
        counts.update({ctx.label: (ctx.plan.count, ctx.plan.unit) for ctx in contexts if ctx.plan})
    return Evaluation(results, _resolution_text(fakes), counts)


def _translation_domains(
    target: str, data: str | None, log: Callable[[str], None]
) -> tuple[Any, Any]:
    """(domain A, domain B) of the test split, or the training one if there is none, of `data`
    or the run's training data, at the run's resolution and channels."""
    from gankit.config import config_from_dict, load_yaml
    from gankit.data.unpaired import open_unpaired

    saved = config_from_dict(load_yaml(run_dir_of(Path(target).expanduser()) / "config.yaml")).data
    path = Path(data or saved.name).expanduser()
    kwargs = {k: v for k, v in saved.args.items() if k in ("channels_a", "channels_b")}
    kwargs.update(
        name=path.name, resolution=saved.resolution, skip_bad_images=saved.skip_bad_images
    )
    try:
        dataset, split = open_unpaired(path, split="test", **kwargs), "test"
    except GankitError as err:
        log(f"no test split ({err}); evaluating on the training images instead")
        dataset, split = open_unpaired(path, split="train", **kwargs), "train"
    dataset.a.name, dataset.b.name = f"{path / split}A", f"{path / split}B"
    return dataset.a, dataset.b


@torch.no_grad()
def _translate_all(G: Any, images: torch.Tensor, options: EvalOptions) -> torch.Tensor:
    """uint8 images through a `Translator` (which moves them to its device), `options.batch_size`
    at a time, back to uint8."""
    batches = images.split(options.batch_size)
    return torch.cat([to_uint8(G(batch.float() / 127.5 - 1)).cpu() for batch in batches])


def run_evaluate(
    target: str, metrics: str, *, json_path: str | None = None, **kwargs: Any
) -> dict[str, float]:
    """Compute `metrics` of `target` (see `evaluate_target`); optionally write them to `json_path`."""
    evaluation = evaluate_target(target, metrics, **kwargs)
    if json_path:
        write_json(evaluation.results, json_path)
    return evaluation.results


def write_json(results: dict[str, float], json_path: str) -> Path:
    """Write the results as JSON (NaN as null), or raise one clear error line."""
    path = Path(json_path).expanduser()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(to_json_ready(results), indent=2) + "\n")
    except OSError as err:
        blocking = next((p for p in path.parents if p.is_file()), None)
        reason = f"{blocking} is a file, not a folder" if blocking else err.strerror or str(err)
        raise GankitError(
            f"could not write the results to {path} ({reason}); they are printed above: pass "
            "--json with a path in a writable folder"
        ) from None
    return path


def _resolution_text(source: Source) -> str:
    return "2-D points" if source.kind == "points" else f"{source.resolution}x{source.resolution}"


def _plan_line(fakes: Source, reals: Source | None, contexts: list[EvalContext]) -> str:
    """'evaluating G_ema of RUN at 8x8 (its current stage; full 32x32) against ...: fid10k on ...'."""
    where = _resolution_text(fakes)
    what = f"{fakes.name} ({where})" if where == "2-D points" else f"{fakes.name} at {where}"
    if isinstance(fakes, GeneratorSource) and fakes.resolution != fakes.full_resolution:
        full = fakes.full_resolution
        what += f" (the resolution it outputs at its current stage; it grows to {full}x{full})"
    if reals is not None:
        size = f"{reals.size:,} samples" if reals.size else "samples"
        what += f" against {reals.name} ({size})"
    jobs = ", ".join(
        f"{ctx.label} on {ctx.plan.count:,} {ctx.plan.unit}" if ctx.plan and ctx.plan.count
        else ctx.label
        for ctx in contexts
    )  # fmt: skip
    return f"evaluating {what}: {jobs}"


def _default_data(
    target: str, fakes: Source, data: str | None, root: str | None
) -> tuple[str | None, str | None, bool]:
    """Without --data, a run directory is compared with the data it was trained on."""
    if data or not isinstance(fakes, GeneratorSource):
        return data, root, False
    config = Path(target) / "config.yaml"
    if not config.is_file():
        config = Path(target).parent.parent / "config.yaml"  # a checkpoint inside a run
    if not config.is_file():
        return None, root, False
    from gankit.config import config_from_dict, load_yaml

    saved = config_from_dict(load_yaml(config)).data
    return saved.name, root or saved.root, bool(saved.skip_bad_images)


def _reals(data: str, root: str | None, fakes: Source, seed: int, skip: bool) -> Source:
    """The reference data at the samples' resolution and channels, in a seeded order."""
    if data.lower().endswith(".npy"):
        return _array_reals(Path(data).expanduser(), fakes)
    kwargs: dict[str, Any] = {"root": root, "skip_bad_images": skip}
    if fakes.kind == "images":
        kwargs.update(channels=fakes.channels, resolution=fakes.resolution)
    dataset = open_dataset(data, **kwargs)
    return DatasetSource(dataset, seed=seed)


def _array_reals(path: Path, fakes: Source) -> TensorSource:
    """A .npy of real images (or points), fitted to the samples like a dataset would be."""
    array = load_array(path)
    key = file_key(path)
    if fakes.kind == "images" and array.ndim == 4:
        array = fit_images(array, fakes.channels, fakes.resolution, str(path))
        key += f"|{fakes.channels}|{fakes.resolution}"
    return TensorSource(array, name=str(path), key=key)
