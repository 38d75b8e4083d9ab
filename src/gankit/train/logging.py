"""Run logging: a human log (log.txt and the console), stats.jsonl, optional TensorBoard."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm


class RunLogger:
    """Writes the run's logs; a no-op on ranks other than 0."""

    def __init__(self, run_dir: Path, enabled: bool = True, tensorboard: bool = True) -> None:
        self.run_dir, self.enabled = run_dir, enabled
        self.tb = None
        if enabled:
            run_dir.mkdir(parents=True, exist_ok=True)
            if tensorboard:
                self.tb = _open_tensorboard(run_dir / "tensorboard")

    def info(self, message: str, echo: bool = True) -> None:
        """Append a line to log.txt and, with `echo`, print it (without breaking a progress bar)."""
        if not self.enabled:
            return
        if echo:
            tqdm.write(message)
        with open(self.run_dir / "log.txt", "a") as f:
            f.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {message}\n")

    def stats(self, record: dict[str, Any]) -> None:
        """Append one JSON line to stats.jsonl; numbers also go to TensorBoard."""
        if not self.enabled:
            return
        with open(self.run_dir / "stats.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")
        if self.tb is not None:
            step = round(record["kimg"] * 1000)
            for key, value in record.items():
                if isinstance(value, (int, float)) and key != "kimg":
                    self.tb.add_scalar(key, value, step)

    def image(self, tag: str, grid: np.ndarray, cur_nimg: int) -> None:
        """Send an `[H, W, C]` uint8 grid to TensorBoard, if installed."""
        if self.enabled and self.tb is not None:
            self.tb.add_image(tag, grid, cur_nimg, dataformats="HWC")

    def close(self) -> None:
        """Flush and close TensorBoard."""
        if self.tb is not None:
            self.tb.close()
            self.tb = None


def _open_tensorboard(folder: Path) -> Any:
    # TensorBoard is an optional extra: without it, stats.jsonl and the PNGs are the record.
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(str(folder))
