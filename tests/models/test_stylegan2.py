"""StyleGAN2 networks: shapes, the official w count, w_avg and truncation, noise modes, minibatch
stddev by hand, labels, and the state_dict round trip (tiny widths)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from gankit.errors import ConfigError
from gankit.models import stylegan2
from gankit.models.stylegan2 import Generator, MinibatchStdLayer, SynthesisNetwork

TINY = dict(z_dim=8, w_dim=8, mapping_layers=2, channel_base=64, channel_max=8)


def _nets(resolution: int = 16, c_dim: int = 0, seed: int = 0, **arch: object) -> nn.ModuleDict:
    torch.manual_seed(seed)
    return stylegan2.build(resolution, 3, c_dim, **{**TINY, **arch})


def _noise_on(G: nn.Module) -> None:
    """Noise strengths start at zero; make them matter."""
    with torch.no_grad():
        for name, p in G.named_parameters():
            if name.endswith("noise_strength"):
                p.fill_(1.0)


@pytest.mark.parametrize("g_arch", ["skip", "resnet", "orig"])
@pytest.mark.parametrize("d_arch", ["resnet", "skip", "orig"])
@pytest.mark.parametrize("c_dim", [0, 3])
def test_every_architecture_gives_the_documented_shapes(
    g_arch: str, d_arch: str, c_dim: int
) -> None:
    nets = _nets(16, c_dim, g_architecture=g_arch, d_architecture=d_arch)
    G, D = nets["G"], nets["D"]
    z = torch.randn(4, 8)
    c = torch.randint(3, (4,)) if c_dim else None
    ws = G.mapping(z, c)
    assert ws.shape == (4, G.num_ws, 8)
    img = G.synthesis(ws)
    assert img.shape == (4, 3, 16, 16)
    assert G(z, c).shape == (4, 3, 16, 16)
    logits = D(img, c)
    assert logits.shape == (4,)
    logits.sum().backward()
    assert all(p.grad is not None for p in D.parameters())


@pytest.mark.parametrize(("resolution", "num_ws"), [(16, 6), (32, 8), (64, 10), (1024, 18)])
def test_num_ws_is_the_official_count(resolution: int, num_ws: int) -> None:
    # Two convs per block (one at 4x4) and the last block's toRGB: 2 log2(R) - 2.
    synthesis = SynthesisNetwork(4, resolution, 3, channel_base=16, channel_max=1)
    assert synthesis.num_ws == num_ws == 2 * int(math.log2(resolution)) - 2


def test_mapping_normalises_z() -> None:
    G = _nets()["G"]
    z = torch.randn(3, 8)
    torch.testing.assert_close(G.mapping(z, None), G.mapping(5.0 * z, None))


def test_w_avg_moves_by_beta_towards_the_batch_mean_only_with_update_emas() -> None:
    G = _nets()["G"]
    start = torch.randn(8)
    G.mapping.w_avg.copy_(start)
    z = torch.randn(6, 8)
    G.train()
    ws = G.mapping(z, None)  # training mode alone does not move it
    torch.testing.assert_close(G.mapping.w_avg, start)
    G.mapping(z, None, update_emas=True)
    expected = 0.995 * start + 0.005 * ws[:, 0].mean(dim=0)
    torch.testing.assert_close(G.mapping.w_avg, expected.detach())
    G(z, update_emas=True)
    expected = 0.995 * expected + 0.005 * ws[:, 0].mean(dim=0)
    torch.testing.assert_close(G.mapping.w_avg, expected.detach())


def test_truncation_psi_and_cutoff() -> None:
    G = _nets()["G"]
    G.mapping.w_avg.copy_(torch.randn(8))
    w_avg = G.mapping.w_avg
    z = torch.randn(5, 8)
    ws = G.mapping(z, None)
    torch.testing.assert_close(G.mapping(z, None, truncation_psi=1), ws)
    torch.testing.assert_close(
        G.mapping(z, None, truncation_psi=0), w_avg.expand(5, G.num_ws, 8).contiguous()
    )
    half = G.mapping(z, None, truncation_psi=0.5, truncation_cutoff=2)
    torch.testing.assert_close(half[:, :2], w_avg + 0.5 * (ws[:, :2] - w_avg))
    torch.testing.assert_close(half[:, 2:], ws[:, 2:])
    # psi 0 gives every seed the same image.
    G.eval()
    imgs = G(z, truncation_psi=0, noise_mode="const")
    torch.testing.assert_close(imgs, imgs[:1].expand_as(imgs))


def test_noise_modes() -> None:
    G = _nets()["G"]
    _noise_on(G)
    G.eval()
    ws = G.mapping(torch.randn(2, 8), None)
    for mode in ("const", "none"):
        torch.testing.assert_close(
            G.synthesis(ws, noise_mode=mode), G.synthesis(ws, noise_mode=mode)
        )
    assert not torch.allclose(
        G.synthesis(ws, noise_mode="const"), G.synthesis(ws, noise_mode="none")
    )
    assert not torch.allclose(
        G.synthesis(ws, noise_mode="random"), G.synthesis(ws, noise_mode="random")
    )
    with pytest.raises(ValueError, match="noise_mode"):
        G.synthesis(ws, noise_mode="fixed")


def test_fused_and_non_fused_synthesis_agree() -> None:
    G = _nets(g_architecture="resnet")["G"]
    _noise_on(G)
    ws = G.mapping(torch.randn(3, 8), None)
    fused = G.synthesis(ws, noise_mode="const", fused_modconv=True)
    shared = G.synthesis(ws, noise_mode="const", fused_modconv=False)
    torch.testing.assert_close(fused, shared, rtol=1e-4, atol=1e-5)


def test_conv_clamp_bounds_the_orig_generators_image() -> None:
    G = _nets(g_architecture="orig", conv_clamp=0.01)["G"]
    with torch.no_grad():
        G.synthesis.blocks["b16"].torgb.bias.fill_(1.0)  # would give 1.0 without the clamp
    img = G(torch.randn(2, 8))
    assert img.abs().max().item() == pytest.approx(0.01)


def _mbstd_by_hand(x: torch.Tensor, group: int) -> torch.Tensor:
    n = x.shape[0]
    groups = n // group
    extra = torch.empty(n, 1, *x.shape[2:])
    for i in range(n):
        peers = x[[j for j in range(n) if j % groups == i % groups]]
        std = (peers.var(dim=0, unbiased=False) + 1e-8).sqrt()
        extra[i] = std.mean()
    return torch.cat([x, extra], dim=1)


@pytest.mark.parametrize(("batch", "group"), [(8, 4), (4, 4), (2, 4)])
def test_minibatch_stddev_by_hand(batch: int, group: int) -> None:
    x = torch.randn(batch, 5, 3, 3)
    out = MinibatchStdLayer(group_size=4, num_channels=1)(x)
    torch.testing.assert_close(out, _mbstd_by_hand(x, min(group, batch)))


def test_conditional_nets_take_class_indices_or_one_hot() -> None:
    nets = _nets(c_dim=3)
    G, D = nets["G"], nets["D"]
    G.eval()
    z = torch.randn(4, 8)
    labels = torch.tensor([0, 2, 1, 2])
    one_hot = F.one_hot(labels, 3).float()
    torch.testing.assert_close(G(z, labels, noise_mode="const"), G(z, one_hot, noise_mode="const"))
    img = G(z, labels, noise_mode="const")
    torch.testing.assert_close(D(img, labels), D(img, one_hot))
    # The label changes the output.
    assert not torch.allclose(D(img, labels), D(img, (labels + 1) % 3))
    with pytest.raises(ValueError, match="conditional"):
        G(z)
    with pytest.raises(ValueError, match="unconditional"):
        _nets()["D"](img, labels)


def test_projection_discriminator_output() -> None:
    D = _nets(c_dim=3)["D"]
    img = torch.randn(2, 3, 16, 16)
    labels = torch.tensor([1, 0])
    x, image = None, img
    for block in D.blocks.values():
        x, image = block(x, image)
    epilogue = D.b4
    h = epilogue.out(epilogue.fc(epilogue.conv(epilogue.mbstd(x)).flatten(1)))
    cmap = D.mapping(None, F.one_hot(labels, 3).float())
    expected = (h * cmap).sum(dim=1) / math.sqrt(cmap.shape[1])
    torch.testing.assert_close(D(img, labels), expected)


def test_state_dict_round_trip() -> None:
    nets, other = _nets(c_dim=3, seed=0), _nets(c_dim=3, seed=1)
    nets["G"].mapping.w_avg.normal_()
    other.load_state_dict(nets.state_dict())
    for net in (nets, other):
        net.eval()
    z, labels = torch.randn(2, 8), torch.tensor([0, 2])
    assert torch.equal(other["G"].mapping.w_avg, nets["G"].mapping.w_avg)
    kwargs = dict(truncation_psi=0.7, noise_mode="const")
    assert torch.equal(other["G"](z, labels, **kwargs), nets["G"](z, labels, **kwargs))
    img = torch.randn(2, 3, 16, 16)
    assert torch.equal(other["D"](img, labels), nets["D"](img, labels))


def test_bad_resolution_and_architecture_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="at least 8"):
        stylegan2.build(4, 3, **TINY)
    with pytest.raises(ConfigError, match="power-of-two"):
        stylegan2.build(24, 3, **TINY)
    with pytest.raises(ConfigError, match="architecture"):
        stylegan2.build(16, 3, g_architecture="unet", **TINY)


def test_generator_attributes() -> None:
    G = Generator(8, 2, 16, 32, 1, mapping_layers=1, channel_base=64, channel_max=4)
    assert (G.z_dim, G.c_dim, G.w_dim, G.img_resolution, G.img_channels, G.num_ws) == (
        8, 2, 16, 32, 1, 8,
    )  # fmt: skip
    assert G.mapping.w_avg.shape == (16,)
    assert len(G.mapping.layers) == 1
