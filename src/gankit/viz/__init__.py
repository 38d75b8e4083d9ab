"""Pictures: sample grids, progress GIFs, loss curves, interpolations, 2-D scatters.

`gankit.viz.report.write_report` (the `gankit plot` command) is imported from its module: it
loads generators from checkpoints, which needs the training code.
"""

from gankit.viz.grid import grid_shape, make_grid, save_grid, to_uint8
from gankit.viz.plots import plot_losses, save_gif, save_interpolation_strip, save_real_vs_fake
from gankit.viz.points import save_scatter, save_scatter_gif

__all__ = [
    "grid_shape",
    "make_grid",
    "plot_losses",
    "save_gif",
    "save_grid",
    "save_interpolation_strip",
    "save_real_vs_fake",
    "save_scatter",
    "save_scatter_gif",
    "to_uint8",
]
