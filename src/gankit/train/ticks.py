"""Ticks: the losses of each phase since the last tick, and the clock, turned into one stats
record (stats.jsonl, TensorBoard) and one status line (the progress bar, log.txt)."""

from __future__ import annotations

import time
from typing import Any

import torch
from tqdm import tqdm

from gankit.recipes.base import Stage
from gankit.train.distributed import DistInfo, all_reduce_mean

#: The progress bar; the status (resolution, img/s, losses) goes in {desc}, because tqdm puts
#: ", " before a {postfix}.
BAR_FORMAT = "{percentage:3.0f}%|{bar}| {n:.1f}/{total_fmt} kimg [{elapsed}<{remaining}] {desc}"


class TickStats:
    """Losses per phase since the last tick ("D_main/loss" -> one scalar per step) and when
    the tick began."""

    def __init__(self) -> None:
        self.losses: dict[str, list[torch.Tensor]] = {}
        self.restart(0)

    def restart(self, cur_nimg: int) -> None:
        """Start timing a tick at `cur_nimg` images."""
        self.started, self.start_nimg = time.perf_counter(), cur_nimg

    def add(self, phase: str, logs: dict[str, torch.Tensor]) -> None:
        """A phase's logged values for one step."""
        for key, value in logs.items():
            self.losses.setdefault(f"{phase}/{key}", []).append(value.detach().float())

    def record(self, cur_nimg: int, stage: Stage, dist: DistInfo, device: torch.device) -> dict:
        """The tick's stats (mean losses over the tick and the ranks, speed, stage); clears them."""
        rate = (cur_nimg - self.start_nimg) / max(time.perf_counter() - self.started, 1e-9)
        record: dict[str, Any] = {"kimg": round(cur_nimg / 1000, 3)}
        for key, values in self.losses.items():
            record[key] = all_reduce_mean(torch.stack(values).mean(), dist).item()
        self.losses.clear()
        record.update(
            stage=stage.key, resolution=stage.resolution, alpha=round(stage.alpha, 4),
            batch=stage.batch_size, img_per_s=round(rate, 2), mem_gb=peak_memory_gb(device),
        )  # fmt: skip
        return record


def status_line(record: dict[str, Any]) -> str:
    """`16px a=0.50 85.1 img/s D_main -0.5 G_main 1.2`: where training is, its speed, losses."""
    losses = " ".join(
        f"{k.split('/')[0]} {v:.3g}" for k, v in record.items() if k.endswith("/loss")
    )
    where = f"{record['resolution']}px " if record["resolution"] else ""  # 0: 2-D points
    fading = f"a={record['alpha']:.2f} " if record["alpha"] < 1 else ""
    return f"{where}{fading}{record['img_per_s']:.1f} img/s {losses}"


def progress_bar(total_kimg: float, cur_nimg: int, show: bool) -> tqdm:
    """The run's progress bar in kimg (`show`: when asked for, on the main process)."""
    return tqdm(
        total=round(total_kimg, 3),
        initial=round(cur_nimg / 1000, 3),
        unit="kimg",
        # None: shown only on a terminal, so a job's log file (`> log 2>&1`, a batch
        # scheduler's output) gets the tick lines without the bar's carriage returns
        disable=None if show else True,
        bar_format=BAR_FORMAT,
        dynamic_ncols=True,
    )


def peak_memory_gb(device: torch.device) -> float:
    """Peak memory of this process so far: CUDA allocations on a GPU, resident set on a CPU."""
    if device.type == "cuda":
        return round(torch.cuda.max_memory_allocated(device) / 2**30, 3)
    import resource

    # ru_maxrss is in KiB on Linux.
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 3)


def crossed(prev_nimg: int, cur_nimg: int, kimg: float) -> bool:
    """Whether going from `prev_nimg` to `cur_nimg` images passed a multiple of `kimg` (0: never)."""
    step = round(kimg * 1000)
    return step > 0 and cur_nimg // step > prev_nimg // step
