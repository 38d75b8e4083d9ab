"""What a run leaves to look at in `samples/` and `plots/`: the preview grids, `reals.png` and
the end-of-run report; and the random-stream guard that pictures and metrics run under."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import torch

from gankit.train.logging import RunLogger
from gankit.viz.grid import save_grid


def own_rng(device: torch.device) -> contextlib.AbstractContextManager[Any]:
    """Pictures and metrics leave torch's global random streams as they found them: a net that
    draws from them (StyleGAN2's noise inputs) then trains the same whenever they run, so a
    resumed run, whose pictures fell elsewhere, continues exactly."""
    return torch.random.fork_rng(devices=[device] if device.type == "cuda" else [])


class RunPictures:
    """Writes the preview's pictures into `run_dir/samples` (on the main process only)."""

    def __init__(self, preview: Any, run_dir: Path, log: RunLogger, is_main: bool) -> None:
        self.preview, self.run_dir, self.log, self.is_main = preview, run_dir, log, is_main

    def save(self, drawn: Any, name: str, cur_nimg: int, upscale: bool) -> None:
        """`drawn` (what the preview drew) as samples/NAME, titled with the kimg; the upscaled
        grids also go to TensorBoard."""
        title = f"{cur_nimg / 1000:g} kimg"
        picture = self.preview.save(drawn, self.run_dir / "samples" / name, title, upscale)
        if picture is not None and upscale:
            self.log.image("fakes", picture, cur_nimg)

    def save_reals(self, dataset: Any, grid_size: int, seed: int) -> None:
        """samples/reals.png: a seeded random draw across the data, laid out as the previews
        (once per run)."""
        path = self.run_dir / "samples" / "reals.png"
        if not self.is_main or path.exists():
            return
        reals = self.preview.reals(dataset, grid_size, seed)
        if reals is not None:
            save_grid(reals[0], path, cols=reals[1])

    def write_report(self) -> None:
        """Losses, progress GIF, real vs fake, interpolations; a failure is a log line, since
        the final snapshot is already safe."""
        from gankit.viz.report import write_report

        try:
            write_report(self.run_dir)
        except Exception as error:
            self.log.info(
                f"could not write the run's plots ({error}); try `gankit plot {self.run_dir}`"
            )
