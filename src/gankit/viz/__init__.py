"""Pictures: sample grids, progress GIFs, loss curves."""

from gankit.viz.grid import grid_shape, make_grid, save_grid, to_uint8
from gankit.viz.plots import plot_losses, save_gif

__all__ = ["grid_shape", "make_grid", "plot_losses", "save_gif", "save_grid", "to_uint8"]
