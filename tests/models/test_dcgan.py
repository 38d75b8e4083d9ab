"""DCGAN: the all-convolutional layout, supported resolutions, init, critic norms, SN, backward."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import gankit.models
from gankit.errors import ConfigError
from gankit.models import dcgan
from gankit.registry import MODELS


def tiny(resolution: int = 32, channels: int = 3, c_dim: int = 0, **arch: object) -> nn.ModuleDict:
    torch.manual_seed(0)
    return dcgan.build(resolution, channels, c_dim, **{"z_dim": 8, "ngf": 4, "ndf": 4, **arch})


def assert_finite_backward(nets: nn.ModuleDict, real: torch.Tensor, c: torch.Tensor | None) -> None:
    """A non-saturating D + G loss backpropagates finite gradients into every parameter."""
    G, D = nets["G"], nets["D"]
    fake = G(torch.randn(real.shape[0], G.z_dim), c)
    loss = F.softplus(D(fake, c)).mean() + F.softplus(-D(real, c)).mean()
    loss = loss + F.softplus(-D(fake, c)).mean()
    loss.backward()
    for name, p in nets.named_parameters():
        assert p.grad is not None, f"{name} got no gradient"
        assert torch.isfinite(p.grad).all(), f"{name} has a non-finite gradient"


def spectral_norms(D: nn.Module) -> list[float]:
    """Largest singular value of every (normalised) conv weight, as `[out, -1]` matrices."""
    return [
        torch.linalg.matrix_norm(m.weight.reshape(m.weight.shape[0], -1), ord=2).item()
        for m in D.modules()
        if isinstance(m, nn.Conv2d)
    ]


@pytest.mark.parametrize("resolution", [28, 32, 64])
@pytest.mark.parametrize("channels", [1, 3])
def test_shapes_and_range(resolution: int, channels: int) -> None:
    nets = tiny(resolution, channels)
    G, D = nets["G"], nets["D"]
    assert (G.img_resolution, G.img_channels, G.output_kind) == (resolution, channels, "images")
    with torch.no_grad():
        G.net[-2].bias.fill_(50.0)  # drive the tanh into saturation
        img = G(torch.randn(3, 8))
    assert img.shape == (3, channels, resolution, resolution)
    assert img.abs().max() <= 1.0 and img.min() > 0.99
    assert D(img).shape == (3,)


@pytest.mark.parametrize("resolution, base, n", [(28, 7, 2), (32, 4, 3), (64, 4, 4)])
def test_layout_follows_the_architecture_guidelines(resolution: int, base: int, n: int) -> None:
    G, D = dcgan.build(resolution, 3).values()
    convt = [m for m in G.modules() if isinstance(m, nn.ConvTranspose2d)]
    # z -> base x base with ngf * 2**(n-1) maps, then halving channels at every doubling.
    assert convt[0].kernel_size == (base, base)
    assert [m.out_channels for m in convt] == [64 * 2**k for k in range(n - 1, -1, -1)] + [3]
    assert all(m.stride == (2, 2) and m.kernel_size == (4, 4) for m in convt[1:])
    assert sum(isinstance(m, nn.BatchNorm2d) for m in G.modules()) == n
    assert isinstance(G.net[-1], nn.Tanh)
    # D: only convs, batch norm and LeakyReLU(0.2); no dense hidden layers; no BN on the input conv.
    kinds = {type(m) for m in D.net}
    assert kinds == {nn.Conv2d, nn.BatchNorm2d, nn.LeakyReLU}
    assert not any(isinstance(m, nn.Linear) for m in D.modules())
    assert isinstance(D.net[1], nn.LeakyReLU) and D.net[1].negative_slope == 0.2
    assert sum(isinstance(m, nn.BatchNorm2d) for m in D.modules()) == n - 1
    assert [m.out_channels for m in D.modules() if isinstance(m, nn.Conv2d)] == [
        64 * 2**k for k in range(n)
    ] + [1]
    assert D.net[-1].kernel_size == (base, base)


def test_unsupported_resolution_lists_the_supported_ones() -> None:
    with pytest.raises(ConfigError, match="28, 32, 64"):
        dcgan.build(48, 3)


def test_points_point_to_the_mlp() -> None:
    with pytest.raises(ConfigError, match="--model mlp"):
        dcgan.build(0, 0)


def test_bad_d_norm_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="'batch', 'layer' or 'none'"):
        dcgan.build(32, 3, d_norm="instance")  # type: ignore[arg-type]


def test_weight_init_is_the_papers() -> None:
    G, D = dcgan.build(64, 3).values()
    big = G.net[3].weight  # 512 -> 256 maps, 4x4: two million draws
    assert big.numel() > 2_000_000
    assert abs(big.std().item() - 0.02) < 2e-4 and abs(big.mean().item()) < 1e-4
    gammas = torch.cat([m.weight for m in G.modules() if isinstance(m, nn.BatchNorm2d)])
    assert abs(gammas.mean().item() - 1.0) < 3e-3 and abs(gammas.std().item() - 0.02) < 3e-3
    assert all(m.bias is None or not m.bias.any() for m in D.modules() if isinstance(m, nn.Conv2d))


@pytest.mark.parametrize("d_norm", ["none", "layer"])
def test_critic_norms_treat_samples_independently(d_norm: str) -> None:
    D = tiny(d_norm=d_norm)["D"].train()
    assert not any(isinstance(m, nn.BatchNorm2d) for m in D.modules())
    assert sum(isinstance(m, nn.GroupNorm) for m in D.modules()) == (2 if d_norm == "layer" else 0)
    x = torch.randn(5, 3, 32, 32)
    # No batch statistics: a sample's logit does not depend on the rest of the batch.
    torch.testing.assert_close(D(x)[:2], D(x[:2]))


def test_batch_norm_critic_depends_on_the_batch() -> None:
    D = tiny()["D"].train()
    x = torch.randn(5, 3, 32, 32)
    assert not torch.allclose(D(x)[:2], D(x[:2]))


def test_gradient_penalty_path_is_differentiable_twice() -> None:
    nets = tiny(d_norm="layer")
    x = torch.randn(4, 3, 32, 32, requires_grad=True)
    (grad,) = torch.autograd.grad(nets["D"](x).sum(), x, create_graph=True)
    ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean().backward()
    # Every weight gets a finite gradient (the logit's bias does not enter the input gradient).
    weights = [p for name, p in nets["D"].named_parameters() if name.endswith("weight")]
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in weights)


def test_spectral_norm_gives_unit_spectral_norms() -> None:
    D = tiny(d_norm="none", spectral_norm=True)["D"].train()
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        for _ in range(30):  # one power iteration per training-mode forward
            D(x)
        sigmas = spectral_norms(D)
    assert len(sigmas) == 4
    assert all(abs(s - 1.0) < 1e-2 for s in sigmas), sigmas
    assert all(abs(s - 1.0) > 0.1 for s in spectral_norms(tiny(d_norm="none")["D"]))


@pytest.mark.parametrize("resolution, channels", [(28, 1), (64, 3)])
def test_finite_backward_into_every_parameter(resolution: int, channels: int) -> None:
    nets = tiny(resolution, channels)
    assert_finite_backward(nets, torch.rand(4, channels, resolution, resolution) * 2 - 1, None)


def test_conditional_model_uses_and_requires_labels() -> None:
    nets = tiny(28, 1, c_dim=10, embed_dim=3)
    G, D = nets["G"].eval(), nets["D"].eval()
    assert G.c_dim == D.c_dim == 10
    assert G.net[0].in_channels == 8 + 3 and D.net[0].in_channels == 1 + 3
    z = torch.randn(1, 8).expand(3, 8)
    img = G(z, torch.tensor([4, 4, 9]))
    torch.testing.assert_close(img[0], img[1])
    assert not torch.allclose(img[0], img[2])
    logits = D(img[:1].expand(2, -1, -1, -1), torch.tensor([0, 5]))
    assert not torch.allclose(logits[0], logits[1])
    with pytest.raises(ValueError, match="conditional on 10 classes"):
        G(z)
    with pytest.raises(ValueError, match="conditional on 10 classes"):
        D(img)
    assert_finite_backward(nets.train(), torch.rand(3, 1, 28, 28), torch.tensor([0, 1, 2]))


def test_registered() -> None:
    assert gankit.models.dcgan is dcgan
    assert MODELS.get("dcgan") is dcgan.build


@pytest.mark.parametrize("arch", [{}, {"d_norm": "layer", "spectral_norm": True}])
def test_bf16_autocast_forward_backward_is_finite(arch: dict) -> None:
    nets = tiny(32, 3, c_dim=2, **arch)
    c = torch.tensor([0, 1, 1, 0])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        fake = nets["G"](torch.randn(4, 8), c)
        loss = F.softplus(-nets["D"](fake, c)).mean() + F.softplus(nets["D"](fake, c)).mean()
    loss.backward()
    assert torch.isfinite(fake.float()).all() and torch.isfinite(loss)
    for name, p in nets.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
