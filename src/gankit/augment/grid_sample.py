"""Bilinear `grid_sample` with derivatives of every order (for R1 through the ADA pipe).

StyleGAN2-ADA ("Training Generative Adversarial Networks with Limited Data", arXiv:2006.06676)
applies its geometric augmentations with `grid_sample` to every image D sees, reals included, and
R1 differentiates D's gradient with respect to those reals once more. PyTorch's own
`grid_sampler_2d_backward` has no derivative, and the official code reaches that backward kernel
through a private operator to supply one. Here the sampling is written with public, differentiable
ops instead: the four neighbours of every sample point are read with one `gather`, whose derivative
is a `scatter_add`, whose derivative is a `gather` again, and weighted by the bilinear factors, which
are polynomials in the grid. Autograd therefore has first and second (and higher) derivatives with
respect to both the input and the grid.

It matches `F.grid_sample(mode="bilinear")` for `padding_mode` "zeros" (the pipe's) and "border",
with either `align_corners`; the native kernel stays faster where no second derivative is needed.
"""

from __future__ import annotations

import torch

PADDING_MODES = ("zeros", "border")


def grid_sample(
    input: torch.Tensor,
    grid: torch.Tensor,
    padding_mode: str = "zeros",
    align_corners: bool = False,
) -> torch.Tensor:
    """Bilinear sampling of `input` [N, C, H, W] at `grid` [N, Ho, Wo, 2] (x, y in [-1, 1]).

    Returns [N, C, Ho, Wo], as `F.grid_sample(input, grid, "bilinear", padding_mode,
    align_corners)`, differentiable to any order.
    """
    if padding_mode not in PADDING_MODES:
        raise ValueError(f"padding_mode={padding_mode!r}: expected one of {PADDING_MODES}")
    if input.ndim != 4 or grid.ndim != 4 or grid.shape[-1] != 2 or grid.shape[0] != input.shape[0]:
        raise ValueError(
            f"expected input [N, C, H, W] and grid [N, Ho, Wo, 2], got {tuple(input.shape)} "
            f"and {tuple(grid.shape)}"
        )
    n, c, h, w = input.shape
    ho, wo = grid.shape[1:3]
    x = _pixel_coordinate(grid[..., 0], w, align_corners)
    y = _pixel_coordinate(grid[..., 1], h, align_corners)
    if padding_mode == "border":
        # The native kernel clamps the coordinate itself, so points outside read the edge pixel
        # and have zero gradient with respect to the grid there.
        x = x.clamp(0, w - 1)
        y = y.clamp(0, h - 1)
    x0 = torch.floor(x).detach()
    y0 = torch.floor(y).detach()
    fx = x - x0  # the bilinear factors carry the whole dependence on the grid
    fy = y - y0
    corners = []
    weights = []
    for dy, wy in ((0, 1 - fy), (1, fy)):
        for dx, wx in ((0, 1 - fx), (1, fx)):
            cx = x0 + dx
            cy = y0 + dy
            inside = (cx >= 0) & (cx <= w - 1) & (cy >= 0) & (cy <= h - 1)
            # Outside points read pixel 0 and get weight 0: zero padding without a padded copy.
            index = torch.where(inside, cy * w + cx, torch.zeros_like(cx)).long()
            corners.append(index.reshape(n, 1, ho * wo))
            weights.append((wx * wy * inside).reshape(n, 1, ho * wo))
    index = torch.cat(corners, dim=2).expand(n, c, 4 * ho * wo)
    values = input.reshape(n, c, h * w).gather(2, index).reshape(n, c, 4, ho * wo)
    weight = torch.stack(weights, dim=2).to(input.dtype)  # [N, 1, 4, Ho*Wo]
    return (values * weight).sum(dim=2).reshape(n, c, ho, wo)


def _pixel_coordinate(coord: torch.Tensor, size: int, align_corners: bool) -> torch.Tensor:
    """Map normalized [-1, 1] coordinates to pixel indices, as `grid_sample` does."""
    if align_corners:
        return (coord + 1) * ((size - 1) / 2)
    return ((coord + 1) * size - 1) / 2
