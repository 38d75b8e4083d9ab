"""User-facing errors: each names the bad value, what was expected, and how to fix it."""

from __future__ import annotations


class GankitError(Exception):
    """An error caused by input the user can fix; the CLI prints it without a traceback."""


class ConfigError(GankitError, ValueError):
    """A bad configuration value, unknown key, or unknown registry name."""


class DataError(GankitError):
    """Missing, empty, corrupt, or unsuitable training data."""


class CheckpointError(GankitError):
    """A run directory or checkpoint that cannot be resumed or loaded."""


class TrainingDivergedError(GankitError):
    """A loss became NaN or infinite; the last good checkpoint is kept."""
