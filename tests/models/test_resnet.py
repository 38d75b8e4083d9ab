"""SN-GAN ResNet: Table 4's layout, resolutions, spectral norm, WGAN-GP critic, backward."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import gankit.models
from gankit.errors import ConfigError
from gankit.models import resnet
from gankit.registry import MODELS


def tiny(resolution: int = 32, channels: int = 3, c_dim: int = 0, **arch: object) -> nn.ModuleDict:
    torch.manual_seed(0)
    return resnet.build(
        resolution, channels, c_dim, **{"z_dim": 8, "g_channels": 8, "d_channels": 8, **arch}
    )


def assert_finite_backward(nets: nn.ModuleDict, real: torch.Tensor, c: torch.Tensor | None) -> None:
    """A hinge D + G loss backpropagates finite gradients into every parameter."""
    G, D = nets["G"], nets["D"]
    fake = G(torch.randn(real.shape[0], G.z_dim), c)
    loss = F.relu(1 + D(fake, c)).mean() + F.relu(1 - D(real, c)).mean() - D(fake, c).mean()
    loss.backward()
    for name, p in nets.named_parameters():
        assert p.grad is not None, f"{name} got no gradient"
        assert torch.isfinite(p.grad).all(), f"{name} has a non-finite gradient"


@pytest.mark.parametrize("resolution", [32, 64])
@pytest.mark.parametrize("channels", [1, 3])
def test_shapes_and_range(resolution: int, channels: int) -> None:
    nets = tiny(resolution, channels)
    G, D = nets["G"], nets["D"]
    assert (G.img_resolution, G.img_channels, G.output_kind) == (resolution, channels, "images")
    with torch.no_grad():
        G.out.bias.fill_(50.0)  # drive the tanh into saturation
        img = G(torch.randn(3, 8))
    assert img.shape == (3, channels, resolution, resolution)
    assert img.abs().max() <= 1.0 and img.min() > 0.99
    assert D(img).shape == (3,)


def test_default_layout_is_table_4() -> None:
    G, D = resnet.build(32, 3).values()
    assert G.z_dim == 128 and G.dense.out_features == 4 * 4 * 256
    assert len(G.blocks) == 3 and all(b.conv2.out_channels == 256 for b in G.blocks)
    assert G.out.out_channels == 3
    # D: optimized down block 3 -> 128, a down block, two plain blocks (identity shortcut).
    first, *rest = D.blocks
    assert isinstance(first, resnet._DBlockFirst) and first.conv1.out_channels == 128
    assert [b.down for b in rest] == [True, False, False]
    assert [b.shortcut is None for b in rest] == [False, True, True]
    assert D.out.out_features == 1 and D.out.bias is None
    assert not any(isinstance(m, nn.BatchNorm2d) for m in D.modules())
    # Feature map before pooling: 8x8 (32 -> 16 -> 8).
    with torch.no_grad():
        assert D.blocks(torch.zeros(1, 3, 32, 32)).shape == (1, 128, 8, 8)


def test_64px_adds_one_block_each() -> None:
    G, D = tiny(64).values()
    assert len(G.blocks) == 4 and len(D.blocks) == 5
    with torch.no_grad():
        assert D.blocks(torch.zeros(1, 3, 64, 64)).shape == (1, 8, 8, 8)


def test_discriminator_sums_over_positions() -> None:
    D = tiny(spectral_norm=False)["D"]
    with torch.no_grad():
        for block in D.blocks:  # identity blocks: every conv zero but the shortcuts
            for m in block.modules():
                if isinstance(m, nn.Conv2d):
                    m.weight.zero_()
                    m.bias.zero_()
        D.blocks[0].shortcut.weight[:, 0] = 1.0  # every channel: the image's channel 0
        D.blocks[1].shortcut.weight[:, :, 0, 0] = torch.eye(8)
        D.out.weight.fill_(1.0)
        img = torch.rand(2, 3, 32, 32)
        # Two 2x average poolings leave 8x8 maps of 4x4 cell means; the global *sum* of such a
        # map is sum(channel 0) / 16, and the linear layer adds the 8 equal channels.
        expected = img[:, 0].sum(dim=(1, 2)) / 16 * 8
        torch.testing.assert_close(D(img), expected)


def test_unsupported_resolution_lists_the_supported_ones() -> None:
    with pytest.raises(ConfigError, match="32, 64"):
        resnet.build(48, 3)


def test_points_point_to_the_mlp() -> None:
    with pytest.raises(ConfigError, match="--model mlp"):
        resnet.build(0, 0)


def test_spectral_norm_gives_unit_spectral_norms() -> None:
    D = tiny()["D"].train()
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        for _ in range(30):  # one power iteration per training-mode forward
            D(x)
        layers = [m for m in D.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
        # 3 convs in each of the two down blocks, 2 in each plain block, the linear.
        assert len(layers) == 11
        for m in layers:
            sigma = torch.linalg.matrix_norm(m.weight.reshape(m.weight.shape[0], -1), ord=2)
            assert abs(sigma.item() - 1.0) < 1e-2, (m, sigma)


def test_without_spectral_norm_it_is_the_wgan_gp_critic() -> None:
    D = tiny(spectral_norm=False)["D"]
    assert not any(hasattr(m, "parametrizations") for m in D.modules())
    # No normalisation at all, so a sample's logit does not depend on the rest of the batch and
    # the gradient penalty can be taken through D twice.
    x = torch.randn(4, 3, 32, 32, requires_grad=True)
    torch.testing.assert_close(D(x)[:2], D(x[:2]))
    (grad,) = torch.autograd.grad(D(x).sum(), x, create_graph=True)
    ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean().backward()
    assert all(torch.isfinite(p.grad).all() for p in D.parameters() if p.grad is not None)
    assert D.blocks[0].conv1.weight.grad is not None


def test_finite_backward_into_every_parameter() -> None:
    nets = tiny(32, 1)
    assert_finite_backward(nets, torch.rand(4, 1, 32, 32) * 2 - 1, None)


def test_conditional_model_uses_and_requires_labels() -> None:
    nets = tiny(c_dim=5, embed_dim=2)
    G, D = nets["G"].eval(), nets["D"].eval()
    assert G.c_dim == D.c_dim == 5
    assert D.blocks[0].conv1.in_channels == 3 + 2
    z = torch.randn(1, 8).expand(3, 8)
    img = G(z, torch.tensor([1, 1, 4]))
    torch.testing.assert_close(img[0], img[1])
    assert not torch.allclose(img[0], img[2])
    logits = D(img[:1].expand(2, -1, -1, -1), torch.tensor([0, 3]))
    assert not torch.allclose(logits[0], logits[1])
    with pytest.raises(ValueError, match="conditional on 5 classes"):
        G(z)
    with pytest.raises(ValueError, match="conditional on 5 classes"):
        D(img)
    assert_finite_backward(nets.train(), torch.rand(3, 3, 32, 32), torch.tensor([0, 1, 2]))


def test_registered() -> None:
    assert gankit.models.resnet is resnet
    assert MODELS.get("resnet") is resnet.build


@pytest.mark.parametrize("spectral_norm", [True, False])
def test_bf16_autocast_forward_backward_is_finite(spectral_norm: bool) -> None:
    nets = tiny(c_dim=2, spectral_norm=spectral_norm)
    c = torch.tensor([0, 1, 1, 0])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        fake = nets["G"](torch.randn(4, 8), c)
        loss = F.relu(1 - nets["D"](fake, c)).mean() - nets["D"](fake, c).mean()
    loss.backward()
    assert torch.isfinite(fake.float()).all() and torch.isfinite(loss)
    for name, p in nets.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
