"""CycleGAN's networks against the official code's numbers: output shapes, parameter counts, the
state-dict layout, the PatchGAN's 70 px receptive field, and clear errors for sizes they cannot
take."""

from __future__ import annotations

import pytest
import torch

from gankit.errors import ConfigError
from gankit.models.cyclegan import build, patch_map_side, receptive_field


def _millions(net: torch.nn.Module) -> float:
    """Parameters in millions to 3 places, as the official code prints them."""
    return round(sum(p.numel() for p in net.parameters()) / 1e6, 3)


def test_the_default_nets_have_the_official_parameter_counts() -> None:
    # The official code prints 11.378 M for CycleGAN's resnet_9blocks and 2.765 M for its basic
    # PatchGAN (3 -> 3 channels, instance norm), and for pix2pix (batch norm, D on 6 channels)
    # 54.414 M for unet_256 and 2.769 M for the PatchGAN.
    nets = build(256, 3, 0, 3)
    assert (_millions(nets["G_ab"]), _millions(nets["D_b"])) == (11.378, 2.765)
    pix2pix = build(256, 3, 0, 3, netG="unet", norm="batch")["G_ab"]
    assert _millions(pix2pix) == 54.414
    assert _millions(build(256, 6, 0, 3, norm="batch")["D_a"]) == 2.769
    assert len([m for m in nets["G_ab"].modules() if type(m).__name__ == "ResnetBlock"]) == 9
    six = build(128, 3, 0, 3)["G_ab"]
    assert len([m for m in six.modules() if type(m).__name__ == "ResnetBlock"]) == 6


def test_the_state_dict_uses_the_official_layout() -> None:
    # So that the official latest_net_G_A.pth / latest_net_D_A.pth load by name.
    G = build(256, 3, 0, 3)["G_ab"].state_dict()
    assert {"model.1.weight", "model.10.conv_block.1.weight", "model.19.weight"} <= set(G)
    assert {"model.22.bias", "model.26.weight", "model.26.bias"} <= set(G)
    D = build(256, 3, 0, 3)["D_a"].state_dict()
    assert set(D) == {f"model.{i}.{p}" for i in (0, 2, 5, 8, 11) for p in ("weight", "bias")}
    U = build(256, 3, 0, 3, netG="unet")["G_ab"].state_dict()
    assert "model.model.0.weight" in U and "model.model.1.model.3.model.3.model.1.weight" in U


@pytest.mark.parametrize(
    ("resolution", "c_a", "c_b", "arch"),
    [
        (8, 1, 3, {"ngf": 2, "n_blocks": 1, "netD": "n_layers", "n_layers_d": 1}),
        (16, 3, 3, {"ngf": 2, "n_blocks": 2, "netD": "n_layers", "n_layers_d": 2}),
        (12, 3, 1, {"ngf": 2, "n_blocks": 1, "netD": "pixel"}),
        (16, 1, 3, {"ngf": 2, "netG": "unet", "num_downs": 4, "netD": "n_layers",
                    "n_layers_d": 1, "dropout": True}),
    ],
)  # fmt: skip
def test_generators_map_each_domain_to_the_others_channels_at_its_size(
    resolution: int, c_a: int, c_b: int, arch: dict
) -> None:
    torch.manual_seed(0)
    nets = build(resolution, c_a, 0, c_b, ndf=2, **arch)
    a, b = torch.randn(2, c_a, resolution, resolution), torch.randn(2, c_b, resolution, resolution)
    fake_b, fake_a = nets["G_ab"](a), nets["G_ba"](b)
    assert fake_b.shape == b.shape and fake_a.shape == a.shape
    assert fake_b.abs().max() <= 1 and fake_a.abs().max() <= 1  # tanh
    side = resolution if arch["netD"] == "pixel" else patch_map_side(resolution, arch["n_layers_d"])
    assert nets["D_a"](a).shape == (2, 1, side, side)
    assert nets["D_b"](fake_b).shape == (2, 1, side, side)


def test_the_resnet_generator_takes_any_size_divisible_by_four() -> None:
    G = build(8, 3, 0, 3, ngf=2, n_blocks=1, netD="pixel")["G_ab"]
    assert G(torch.randn(1, 3, 20, 36)).shape == (1, 3, 20, 36)


def test_the_patchgan_sees_70_pixels() -> None:
    assert receptive_field(3) == 70 and receptive_field(1) == 16 and receptive_field(2) == 34
    torch.manual_seed(0)
    # Without norm (instance norm mixes every pixel into the statistics), the gradient of one
    # score reaches exactly the pixels of its patch.
    D = build(128, 1, 0, 1, ndf=2, norm="none")["D_a"]
    x = torch.randn(1, 1, 128, 128, requires_grad=True)
    scores = D(x)
    assert scores.shape == (1, 1, 14, 14)
    scores[0, 0, 7, 7].backward()
    rows, cols = (x.grad[0, 0] != 0).nonzero(as_tuple=True)
    assert (rows.max() - rows.min() + 1, cols.max() - cols.min() + 1) == (70, 70)


def test_instance_norm_keeps_no_parameters_or_statistics() -> None:
    D = build(32, 3, 0, 3, ndf=2)["D_b"]
    assert not any("running" in key for key in D.state_dict())
    x = torch.randn(2, 3, 32, 32)
    train_mode = D(x)
    assert torch.equal(D.eval()(x), train_mode)


def test_weights_start_at_the_official_normal_init() -> None:
    torch.manual_seed(0)
    G = build(256, 3, 0, 3)["G_ab"]
    weights = torch.cat([m.weight.flatten() for m in G.modules() if isinstance(m, torch.nn.Conv2d)])
    assert weights.std().item() == pytest.approx(0.02, rel=0.01)
    assert all(m.bias.abs().sum() == 0 for m in G.modules() if isinstance(m, torch.nn.Conv2d))


@pytest.mark.parametrize(
    ("resolution", "arch", "words"),
    [
        (16, {}, "n_layers_d=3 needs images of at least 24 px"),
        (16, {}, "set model.arch.n_layers_d=2"),
        (18, {"netD": "pixel"}, "divisible by 4"),
        (32, {"netG": "unet", "num_downs": 6, "netD": "pixel"}, "divisible by 64"),
        (32, {"norm": "group"}, "model.arch.norm must be one of instance, batch, none"),
    ],
)
def test_sizes_and_names_the_nets_cannot_take_are_clear_errors(
    resolution: int, arch: dict, words: str
) -> None:
    with pytest.raises(ConfigError, match=words.replace(".", r"\.")):
        build(resolution, 3, 0, 3, ngf=2, ndf=2, **arch)
