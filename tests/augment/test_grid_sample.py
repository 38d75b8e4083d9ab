"""The differentiable grid_sample: equal to PyTorch's (values and first gradients), twice differentiable."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from gankit.augment.grid_sample import grid_sample


def _inputs(seed: int = 0, size: int = 5, out: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    img = torch.randn(2, 3, size, size + 1, dtype=torch.float64, generator=gen)
    # Points beyond [-1, 1] as well, so the padding is exercised; none on an exact pixel centre.
    grid = torch.rand(2, out, out + 1, 2, dtype=torch.float64, generator=gen) * 2.6 - 1.3
    return img, grid


@pytest.mark.parametrize("padding_mode", ["zeros", "border"])
@pytest.mark.parametrize("align_corners", [False, True])
def test_values_and_gradients_equal_pytorch(padding_mode: str, align_corners: bool) -> None:
    img, grid = _inputs()
    img.requires_grad_(True)
    grid.requires_grad_(True)
    ours = grid_sample(img, grid, padding_mode, align_corners)
    ref = F.grid_sample(img, grid, "bilinear", padding_mode, align_corners)
    torch.testing.assert_close(ours, ref)
    weight = torch.randn_like(ref)
    grads = torch.autograd.grad((ours * weight).sum(), (img, grid))
    ref_grads = torch.autograd.grad((ref * weight).sum(), (img, grid))
    torch.testing.assert_close(grads[0], ref_grads[0])
    torch.testing.assert_close(grads[1], ref_grads[1])


def test_known_values_by_hand() -> None:
    # A 1x1x2x2 image [[0, 1], [2, 3]]; align_corners=False puts pixel centres at -0.5 and +0.5.
    img = torch.tensor([[[[0.0, 1.0], [2.0, 3.0]]]])
    grid = torch.tensor([[[[0.0, 0.0], [-0.5, -0.5], [0.5, 0.5], [1.0, -0.5]]]])
    out = grid_sample(img, grid).flatten().tolist()
    # Centre: mean of all four; pixel centres exactly; x = 1.0 is half a pixel past the right
    # column, so half of pixel (0, 1) against zero padding.
    assert out == pytest.approx([1.5, 0.0, 3.0, 0.5])
    border = grid_sample(img, grid, padding_mode="border").flatten().tolist()
    assert border == pytest.approx([1.5, 0.0, 3.0, 1.0])


@pytest.mark.parametrize("padding_mode", ["zeros", "border"])
def test_gradcheck_and_gradgradcheck(padding_mode: str) -> None:
    img, grid = _inputs(seed=1, size=3, out=2)
    img.requires_grad_(True)
    grid.requires_grad_(True)

    def fn(x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        return grid_sample(x, g, padding_mode, align_corners=False)

    assert torch.autograd.gradcheck(fn, (img, grid))
    assert torch.autograd.gradgradcheck(fn, (img, grid))


def test_r1_through_the_sampler_has_a_weight_gradient() -> None:
    # What R1 needs: the gradient of |d D(sample(x)) / dx|^2 with respect to D's weight, where
    # PyTorch's own sampler raises. D is linear (D(y) = <w, y>), so d/dx = S^T w and the penalty
    # |S^T w|^2 has the weight gradient 2 S S^T w: one more sample of the transposed sample.
    img, grid = _inputs(seed=2, size=4, out=3)
    img.requires_grad_(True)
    w = torch.randn(2, 3, 3, 4, dtype=torch.float64, requires_grad=True)
    (dx,) = torch.autograd.grad((grid_sample(img, grid) * w).sum(), img, create_graph=True)
    (dw,) = torch.autograd.grad(dx.square().sum(), w)
    torch.testing.assert_close(dw, 2 * grid_sample(dx.detach(), grid))


def test_unknown_padding_mode_is_refused() -> None:
    img, grid = _inputs()
    with pytest.raises(ValueError, match="reflection"):
        grid_sample(img, grid, padding_mode="reflection")
