"""gankit: train, sample and evaluate the GAN family in pure PyTorch."""

from gankit.config import Config, load_yaml
from gankit.errors import (
    CheckpointError,
    ConfigError,
    DataError,
    GankitError,
    TrainingDivergedError,
)
from gankit.registry import DATASETS, METRICS, MODELS, RECIPES

__version__ = "0.1.0"

__all__ = [
    "DATASETS",
    "METRICS",
    "MODELS",
    "RECIPES",
    "CheckpointError",
    "Config",
    "ConfigError",
    "DataError",
    "GankitError",
    "TrainingDivergedError",
    "__version__",
    "load_yaml",
]
