"""`gankit evaluate`: samples (a run, a checkpoint, a folder, a .npy) + real data -> metric values."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from gankit.data import open_dataset
from gankit.metrics.runner import EvalOptions, evaluate, parse_metrics, to_json_ready
from gankit.metrics.sources import DatasetSource, GeneratorSource, Source, open_samples
from gankit.train.run import resolve_device


def run_evaluate(
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
    json_path: str | None = None,
) -> dict[str, float]:
    """Compute `metrics` of `target` against `data`; optionally write them to `json_path`."""
    requests = parse_metrics(metrics, num)  # unknown names fail before any work
    dev = resolve_device(device)
    fakes = open_samples(target, device=dev, seed=seed)
    data, data_root = _default_data(target, fakes, data, data_root)
    reals = _reals(data, data_root, fakes, seed) if data else None
    options = EvalOptions(
        device=dev,
        batch_size=batch,
        seed=seed,
        inception_weights=inception_weights,
        resize=resize,
        classifier=classifier,
        data_root=data_root,
        progress=progress,
        cache=cache,
    )
    results = evaluate(requests, fakes, reals, options, data_name=data or "")
    if json_path:
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(json_path).write_text(json.dumps(to_json_ready(results), indent=2) + "\n")
    return results


def _default_data(
    target: str, fakes: Source, data: str | None, root: str | None
) -> tuple[str | None, str | None]:
    """Without --data, a run directory is compared with the data it was trained on."""
    if data or not isinstance(fakes, GeneratorSource):
        return data, root
    config = Path(target) / "config.yaml"
    if not config.is_file():
        config = Path(target).parent.parent / "config.yaml"  # a checkpoint inside a run
    if not config.is_file():
        return None, root
    from gankit.config import config_from_dict, load_yaml

    saved = config_from_dict(load_yaml(config)).data
    return saved.name, root or saved.root


def _reals(data: str, root: str | None, fakes: Source, seed: int) -> DatasetSource:
    kwargs: dict[str, Any] = {"root": root}
    if fakes.kind == "images":
        kwargs.update(channels=fakes.channels, resolution=fakes.resolution)
    dataset = open_dataset(data, **kwargs)
    return DatasetSource(dataset, seed=seed)
