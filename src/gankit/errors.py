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


class RunStopped(GankitError):
    """A run stopped on request (Ctrl-C, SIGTERM) after saving; `exit_code` tells scripts why."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def os_error_text(err: OSError, doing: str = "") -> str:
    """An OSError in plain words: what failed, on which path, and what to do about it."""
    import errno

    path = err.filename if err.filename is not None else ""
    where = f" {str(path)!r}" if path else ""
    advice = {
        errno.ENOSPC: "no space left on the device; free some space and try again",
        errno.EDQUOT: "the disk quota is exceeded; free some space and try again",
        errno.EACCES: "permission denied; choose a folder you can write to",
        errno.EPERM: "operation not permitted; choose a folder you can write to",
        errno.EROFS: "the file system is read-only; choose a folder you can write to",
        errno.ENOTDIR: "a file is in the way where a folder is needed; choose another path",
        errno.EISDIR: "that is a folder where a file is needed; name a file",
        errno.EEXIST: "it already exists as something else; choose another path",
        errno.ENOENT: "no such file or folder",
    }.get(err.errno or 0, err.strerror or str(err))
    prefix = f"{doing}{where}: ".lstrip() if doing or where else ""
    return f"{prefix}{advice}"
