"""Metrics: the maths, the feature extractors, and the registered evaluations.

Importing this package registers the metrics (`gankit list` shows them); `evaluate()` runs them.
"""

from gankit.metrics import standard
from gankit.metrics.runner import EvalOptions, FeatureBank, MetricRequest, evaluate, parse_metrics
from gankit.metrics.sources import (
    DatasetSource,
    GeneratorSource,
    Source,
    TensorSource,
    open_samples,
)

__all__ = [
    "DatasetSource",
    "EvalOptions",
    "FeatureBank",
    "GeneratorSource",
    "MetricRequest",
    "Source",
    "TensorSource",
    "evaluate",
    "open_samples",
    "parse_metrics",
    "standard",
]
