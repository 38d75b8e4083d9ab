"""MLP GAN: the paper's layer sizes, maxout, 2-D points, conditioning, spectral norm, backward."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import gankit.models
from gankit.errors import ConfigError
from gankit.models import mlp
from gankit.registry import MODELS

TINY = {"z_dim": 6, "g_hidden": (16, 16), "d_hidden": (12,), "maxout_pieces": 3}


def tiny(resolution: int = 8, channels: int = 1, c_dim: int = 0, **arch: object) -> nn.ModuleDict:
    torch.manual_seed(0)
    return mlp.build(resolution, channels, c_dim, **{**TINY, **arch})


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


def test_maxout_matches_a_hand_computation() -> None:
    layer = mlp.Maxout(2, 2, pieces=3)
    with torch.no_grad():
        # Unit 0 uses rows 0-2, unit 1 rows 3-5.
        layer.linear.weight.copy_(
            torch.tensor(
                [[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0], [2.0, 0.0], [0.0, -2.0], [1.0, 1.0]]
            )
        )
        layer.linear.bias.copy_(torch.tensor([0.0, 0.0, 0.5, -1.0, 0.0, 0.0]))
    x = torch.tensor([[3.0, -1.0], [-2.0, -3.0]])
    # Sample 0: unit 0 = max(3, -1, -1.5) = 3; unit 1 = max(5, 2, 2) = 5.
    # Sample 1: unit 0 = max(-2, -3, 5.5) = 5.5; unit 1 = max(-5, 6, -5) = 6.
    torch.testing.assert_close(layer(x), torch.tensor([[3.0, 5.0], [5.5, 6.0]]))


def test_image_defaults_are_the_papers_mnist_model() -> None:
    nets = mlp.build(28, 1)
    G, D = nets["G"], nets["D"]
    assert G.z_dim == 100 and G.output_kind == "images"
    assert [m.out_features for m in G.modules() if isinstance(m, nn.Linear)] == [1200, 1200, 784]
    assert not any(isinstance(m, nn.BatchNorm1d) for m in G.modules())
    maxouts = [m for m in D.modules() if isinstance(m, mlp.Maxout)]
    assert [(m.out_features, m.pieces) for m in maxouts] == [(240, 5), (240, 5)]
    assert [m.p for m in D.modules() if isinstance(m, nn.Dropout)] == [0.2, 0.5, 0.5]
    # pylearn2 irange: uniform in +-0.05 (G) and +-0.005 (D).
    assert G.net[0].weight.abs().max() <= 0.05 and G.net[0].weight.abs().max() > 0.049
    assert maxouts[0].linear.weight.abs().max() <= 0.005


def test_point_defaults_are_pacgans_2d_model_narrower_and_deeper() -> None:
    nets = mlp.build(0, 0)
    G, D = nets["G"], nets["D"]
    assert G.z_dim == 2 and G.output_kind == "points"
    assert G.img_resolution == 0 and G.img_channels == 0
    assert [m.num_features for m in G.modules() if isinstance(m, nn.BatchNorm1d)] == [128] * 8
    maxouts = [m for m in D.modules() if isinstance(m, mlp.Maxout)]
    assert [(m.out_features, m.pieces) for m in maxouts] == [(128, 5)] * 3
    assert all(m.p == 0.0 for m in D.modules() if isinstance(m, nn.Dropout))
    assert abs(G.net[0].weight.std().item() - 0.02) < 0.002  # PacGAN's N(0, 0.02)
    assert abs(maxouts[1].linear.weight.std().item() - 0.02) < 0.002


def test_pacgan_widths_give_the_protocols_2d_model() -> None:
    nets = mlp.build(0, 0, **mlp.PACGAN_POINT_WIDTHS)
    G, D = nets["G"], nets["D"]
    assert [m.num_features for m in G.modules() if isinstance(m, nn.BatchNorm1d)] == [400] * 4
    maxouts = [m for m in D.modules() if isinstance(m, mlp.Maxout)]
    assert [(m.out_features, m.pieces) for m in maxouts] == [(200, 5)] * 3
    assert abs(maxouts[1].linear.weight.std().item() - 0.02) < 0.001


@pytest.mark.parametrize("resolution", [4, 28])
@pytest.mark.parametrize("channels", [1, 3])
def test_image_shapes_and_range(resolution: int, channels: int) -> None:
    nets = tiny(resolution, channels)
    with torch.no_grad():
        nets["G"].net[-2].bias.fill_(50.0)  # drive the output into saturation
        img = nets["G"](torch.randn(5, 6))
    assert img.shape == (5, channels, resolution, resolution)
    assert img.abs().max() <= 1.0 and img.min() > 0.99
    assert nets["D"](img).shape == (5,)


def test_points_have_a_linear_unbounded_output() -> None:
    nets = tiny(0, 0)
    with torch.no_grad():
        nets["G"].net[-1].bias.copy_(torch.tensor([5.0, -7.0]))
        nets["G"].net[-1].weight.zero_()
        points = nets["G"](torch.randn(4, 6))
    torch.testing.assert_close(points, torch.tensor([[5.0, -7.0]]).expand(4, 2))
    assert nets["D"](points).shape == (4,)


@pytest.mark.parametrize("resolution, channels", [(8, 1), (0, 0)])
def test_finite_backward_into_every_parameter(resolution: int, channels: int) -> None:
    nets = tiny(resolution, channels, dropout=(0.2, 0.5))
    shape = (8, 2) if resolution == 0 else (8, channels, resolution, resolution)
    assert_finite_backward(nets, torch.randn(shape).clamp(-1, 1), None)


def test_dropout_is_active_in_training_only() -> None:
    D = tiny(dropout=(0.2, 0.5))["D"]
    x = torch.rand(6, 1, 8, 8)
    assert not torch.equal(D.train()(x), D(x))
    torch.testing.assert_close(D.eval()(x), D(x))


def test_conditional_model_uses_and_requires_labels() -> None:
    nets = tiny(c_dim=10, embed_dim=4)
    G, D = nets["G"].eval(), nets["D"].eval()
    assert G.c_dim == D.c_dim == 10
    z = torch.randn(1, 6).expand(3, 6)
    img = G(z, torch.tensor([0, 0, 7]))
    torch.testing.assert_close(img[0], img[1])
    assert not torch.allclose(img[0], img[2])
    x = img[:1].expand(2, -1, -1, -1)
    logits = D(x, torch.tensor([1, 2]))
    assert not torch.allclose(logits[0], logits[1])
    with pytest.raises(ValueError, match="conditional on 10 classes"):
        G(z)
    with pytest.raises(ValueError, match="conditional on 10 classes"):
        D(img)
    assert_finite_backward(nets.train(), torch.rand(3, 1, 8, 8), torch.tensor([1, 2, 3]))


def test_unconditional_model_refuses_labels() -> None:
    G = tiny()["G"]
    with pytest.raises(ValueError, match="unconditional"):
        G(torch.randn(2, 6), torch.tensor([0, 1]))


def test_spectral_norm_gives_unit_spectral_norms() -> None:
    D = tiny(0, 0, spectral_norm=True, d_hidden=(24, 24))["D"].train()
    x = torch.randn(16, 2)
    with torch.no_grad():
        for _ in range(30):
            D(x)
        linears = [m for m in D.modules() if isinstance(m, nn.Linear)]
        assert len(linears) == 3
        for m in linears:
            sigma = torch.linalg.matrix_norm(m.weight.reshape(m.weight.shape[0], -1), ord=2)
            assert abs(sigma.item() - 1.0) < 1e-2


@pytest.mark.parametrize(
    "resolution, channels, message",
    [(0, 3, "both 0 for 2-D points"), (-4, 1, "positive image resolution")],
)
def test_bad_shapes_are_config_errors(resolution: int, channels: int, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        mlp.build(resolution, channels)


def test_bad_arch_values_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="maxout_pieces"):
        mlp.build(8, 1, maxout_pieces=0)
    with pytest.raises(ConfigError, match="dropout"):
        mlp.build(8, 1, dropout=(0.2, 1.0))


def test_registered() -> None:
    assert gankit.models.mlp is mlp
    assert MODELS.get("mlp") is mlp.build


@pytest.mark.parametrize("resolution, channels", [(8, 3), (0, 0)])
def test_bf16_autocast_forward_backward_is_finite(resolution: int, channels: int) -> None:
    nets = tiny(resolution, channels, c_dim=3)
    c = torch.tensor([0, 1, 2, 0])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        fake = nets["G"](torch.randn(4, 6), c)
        loss = F.softplus(-nets["D"](fake, c)).mean()
    loss.backward()
    assert torch.isfinite(fake.float()).all() and torch.isfinite(loss)
    assert all(torch.isfinite(p.grad).all() for p in nets.parameters() if p.grad is not None)
    assert nets["G"].net[0].weight.grad is not None
