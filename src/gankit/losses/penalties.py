"""Critic penalties, unweighted and per sample (`[N]`); the recipe owns weights and intervals.

- wgan_gp: Gulrajani et al. 2017 (arXiv:1704.00028), (|grad D(x_hat)| - 1)^2 at interpolates.
- drift: Karras et al. 2018 (arXiv:1710.10196, appendix A.1), D(real)^2 keeping logits near zero.
- r1: Mescheder et al. 2018 (arXiv:1801.04406), |grad D(real)|^2.

Gradients are taken in float32 whatever the autocast dtype of the forward pass: the inputs are
float32 leaves and the squared norm is computed after promoting to float32.
"""

from __future__ import annotations

import torch


def _input_gradients(logits: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
    """d(sum logits)/d(inputs), kept in the graph so the penalty can be back-propagated."""
    (grad,) = torch.autograd.grad(
        outputs=logits.sum(), inputs=inputs, create_graph=True, only_inputs=True
    )
    return grad.float().flatten(1)


def wgan_gp(
    interp_logits: torch.Tensor, interp_img: torch.Tensor, target: float = 1.0
) -> torch.Tensor:
    """(|grad_x D(x)| - target)^2 per sample, at the interpolates `interp_img` (requires_grad)."""
    grad = _input_gradients(interp_logits, interp_img)
    return (grad.norm(dim=1) - target).square()


def r1(real_logits: torch.Tensor, real_img: torch.Tensor) -> torch.Tensor:
    """|grad_x D(x)|^2 per sample, at the real images `real_img` (requires_grad)."""
    return _input_gradients(real_logits, real_img).square().sum(dim=1)


def drift(real_logits: torch.Tensor) -> torch.Tensor:
    """D(real)^2 per sample (ProGAN's epsilon-drift term, weight 0.001 there)."""
    return real_logits.float().square()


def interpolate(
    real_img: torch.Tensor, fake_img: torch.Tensor, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Random points on straight lines between reals and fakes (one uniform t per sample), as a leaf.

    Works for images `[N, C, H, W]` and for flat samples such as 2-D points `[N, 2]`.
    """
    shape = (real_img.shape[0],) + (1,) * (real_img.dim() - 1)
    t = torch.rand(shape, device=real_img.device, dtype=torch.float32, generator=generator)
    mixed = torch.lerp(real_img.float(), fake_img.float(), t)
    return mixed.detach().requires_grad_(True)
