"""ProGAN networks: the paper's widths, fade-in identities, and the resolution rules."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from gankit.errors import ConfigError
from gankit.models import progan


def tiny(resolution: int = 16, channels: int = 3) -> torch.nn.ModuleDict:
    torch.manual_seed(0)
    return progan.build(resolution, channels, channel_base=128, channel_max=16, z_dim=8)


def test_default_widths_follow_the_paper_table() -> None:
    widths = [progan.channels_at(2**i, 16384, 512) for i in range(2, 11)]
    assert widths == [512, 512, 512, 512, 256, 128, 64, 32, 16]


def test_reduced_width_setting_of_the_benchmark() -> None:
    widths = [progan.channels_at(2**i, 4096, 128) for i in range(2, 7)]
    assert widths == [128, 128, 128, 128, 64]


@pytest.mark.parametrize("resolution", [3, 12, 48, 100])
def test_non_power_of_two_resolution_is_a_clear_error(resolution: int) -> None:
    with pytest.raises(ConfigError, match="power-of-two resolution"):
        progan.build(resolution, 3)


def test_conditional_data_is_refused_with_advice() -> None:
    with pytest.raises(ConfigError, match="unconditional"):
        progan.build(16, 3, c_dim=10)


@pytest.mark.parametrize("res", [8, 16])
def test_generator_fade_in_limits(res: int) -> None:
    nets = tiny()
    G = nets["G"]
    z = torch.randn(5, 8)
    low = G(z, resolution=res // 2, alpha=1.0)
    at_zero = G(z, resolution=res, alpha=0.0)
    torch.testing.assert_close(at_zero, F.interpolate(low, scale_factor=2, mode="nearest"))
    # alpha = 1: the new branch alone (blocks up to res, then this resolution's toRGB).
    level = G.level(res)
    x = G.latent_norm(z)
    for block in G.blocks[: level + 1]:
        x = block(x)
    torch.testing.assert_close(G(z, resolution=res, alpha=1.0), G.to_rgb[level](x))
    # In between, exactly the linear blend of the two.
    half = G(z, resolution=res, alpha=0.25)
    torch.testing.assert_close(
        half, 0.75 * at_zero + 0.25 * G.to_rgb[level](x), rtol=1e-5, atol=1e-6
    )


@pytest.mark.parametrize("res", [8, 16])
def test_discriminator_fade_in_limits(res: int) -> None:
    D = tiny()["D"]
    img = torch.randn(4, 3, res, res)
    # alpha = 0: D at 2R sees exactly what D at R sees for the 2x area-downsampled image.
    torch.testing.assert_close(D(img, alpha=0.0), D(F.avg_pool2d(img, 2), alpha=1.0))
    # alpha = 1: fromRGB at R then the block chain, no skip branch.
    level = D.level(res)
    x = F.leaky_relu(D.from_rgb[level](img), 0.2)
    for block in reversed(D.blocks[: level + 1]):
        x = block(x)
    torch.testing.assert_close(D(img, alpha=1.0), x)


def test_shapes_ranges_and_errors_at_every_stage() -> None:
    nets = tiny(16, 1)
    for res in (4, 8, 16):
        img = nets["G"](torch.randn(3, 8), resolution=res, alpha=0.5)
        assert img.shape == (3, 1, res, res)
        assert nets["D"](img, alpha=0.5).shape == (3,)
    with pytest.raises(ValueError, match="takes one of"):
        nets["D"](torch.randn(2, 1, 32, 32))
    with pytest.raises(ValueError, match="not one of"):
        nets["G"](torch.randn(2, 8), resolution=32)


def test_generator_block_is_nearest_upsample_then_two_convs() -> None:
    """G's fused upsample + conv (the official fused layer) is the function of the two layers."""
    torch.manual_seed(0)
    block = tiny(16)["G"].blocks[1]
    with torch.no_grad():
        block.conv0.bias.normal_()
    x = torch.randn(2, block.conv0.in_channels, 4, 4)
    w, b = block.conv0.scaled()
    h = F.conv2d(F.interpolate(x, scale_factor=2, mode="nearest"), w, b, padding=1)
    h = block.norm(F.leaky_relu(h, 0.2))
    expected = block.norm(F.leaky_relu(block.conv1(h), 0.2))
    torch.testing.assert_close(block(x), expected)


def test_fused_discriminator_pools_before_bias_and_activation_as_the_official_code() -> None:
    """D's official fused layer: lrelu(avgpool(conv(x)) + b); unfused: avgpool(lrelu(conv(x) + b))."""
    torch.manual_seed(0)
    nets = progan.build(8, 3, channel_base=64, channel_max=4, z_dim=8)
    block = nets["D"].blocks[1]
    with torch.no_grad():
        block.conv1.bias.normal_()  # zero at init; a bias tells the two orders apart
    x = torch.randn(2, 4, 8, 8)
    w, b = block.conv1.scaled()
    h = F.leaky_relu(block.conv0(x), 0.2)
    official = F.leaky_relu(F.avg_pool2d(F.conv2d(h, w, padding=1), 2) + b[:, None, None], 0.2)
    torch.testing.assert_close(block(x), official)
    block.fused = False
    unfused = F.avg_pool2d(F.leaky_relu(F.conv2d(h, w, b, padding=1), 0.2), 2)
    torch.testing.assert_close(block(x), unfused)
    assert not torch.allclose(official, unfused, atol=1e-3)


def test_checkpoints_saved_before_fused_scale_rebuild_the_unfused_networks() -> None:
    from gankit.nets import build_nets

    spec = {"name": "progan", "img_resolution": 8, "img_channels": 3, "c_dim": 0,
            "arch": {"z_dim": 8, "channel_base": 64, "channel_max": 4}}  # fmt: skip
    assert not build_nets(spec)["D"].blocks[1].fused
    spec["arch"]["fused_scale"] = True
    assert build_nets(spec)["D"].blocks[1].fused
