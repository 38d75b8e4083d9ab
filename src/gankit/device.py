"""Choosing a torch device from a user's `--device` text, with errors that list what exists.

Kept below everything that runs networks (training, `generate`, `evaluate`, the classifier), so
none of them imports the training code to pick a device.
"""

from __future__ import annotations

import torch

from gankit.errors import ConfigError

#: Device types gankit knows how to check, with the test that this PyTorch build can use them.
_AVAILABLE = {
    "cpu": lambda: True,
    "cuda": lambda: torch.cuda.is_available(),
    "mps": lambda: _mps_available(),
    "xpu": lambda: hasattr(torch, "xpu") and torch.xpu.is_available(),
}


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def available_devices() -> list[str]:
    """The device names this machine and PyTorch build can run on, e.g. ['cpu', 'cuda:0']."""
    found = ["cpu"]
    if torch.cuda.is_available():
        found += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    if _AVAILABLE["mps"]():
        found.append("mps")
    if _AVAILABLE["xpu"]():
        found += [f"xpu:{i}" for i in range(torch.xpu.device_count())]
    return found


def resolve_device(name: str, dist_local_rank: int = 0, option: str = "--device") -> torch.device:
    """'auto' -> CUDA when available else CPU; any device this build or machine lacks is a
    ConfigError naming `option` and listing the devices that exist."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(
            f"{option} {name!r} is not a device; use auto, cpu, cuda or cuda:N "
            f"(this machine has: {', '.join(available_devices())})"
        ) from None
    usable = _AVAILABLE.get(device.type)
    if usable is None or not usable():
        raise ConfigError(_missing_device_text(device, option))
    if device.type == "cuda":
        if device.index is None:
            device = torch.device("cuda", dist_local_rank)
        elif device.index >= torch.cuda.device_count():
            raise ConfigError(_missing_device_text(device, option))
    return device


def _missing_device_text(device: torch.device, option: str) -> str:
    what = {
        "cuda": "no CUDA device is visible",
        "mps": "this PyTorch build or machine has no MPS (Apple GPU) support",
    }.get(device.type, f"this PyTorch build cannot run on {device.type!r} devices")
    if device.type == "cuda" and torch.cuda.is_available():
        what = f"there is no {device} (CUDA devices: {torch.cuda.device_count()})"
    return (
        f"{option} {str(device)!r}: {what}; this machine has {', '.join(available_devices())} "
        "(use --device cpu, or auto to take a GPU when there is one)"
    )
