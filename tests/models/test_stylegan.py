"""StyleGAN (v1) networks against hand computations and the official code's definitions: the
AdaIN epilogue, the noise inputs, the [1, 2, 1] blur, the mapping layer, fade-in, the label
switch, truncation and the stored growth stage."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from gankit.errors import ConfigError
from gankit.models.stylegan import Blur, StyleLayer, StyleMapping, build, instance_norm
from gankit.nn.resample import upsample2x


def _layer(**flags: bool) -> StyleLayer:
    options = {"use_styles": True, "use_noise": False, "use_pixel_norm": False,
               "use_instance_norm": True, **flags}  # fmt: skip
    return StyleLayer(None, 1, 3, 2, **options)


def test_adain_normalises_each_map_then_applies_the_style_with_its_plus_one() -> None:
    layer = _layer()
    with torch.no_grad():
        layer.style.weight.zero_()
        layer.style.bias.copy_(torch.tensor([0.5, 0.25]))  # y_s = 0.5, y_b = 0.25
        layer.bias.fill_(1.0)
    x = torch.tensor([[[[0.0, 1.0], [2.0, 3.0]]]])
    out = layer(x, torch.zeros(1, 3), "none")
    # By hand: +1 bias -> [1, 2, 3, 4] (all positive, LeakyReLU keeps them); mean 2.5,
    # deviations -1.5 -0.5 0.5 1.5, mean square 1.25; x * (0.5 + 1) + 0.25.
    expected = torch.tensor([-1.5, -0.5, 0.5, 1.5]) / math.sqrt(1.25) * 1.5 + 0.25
    torch.testing.assert_close(out.flatten(), expected, rtol=1e-6, atol=1e-6)


def test_the_leaky_relu_comes_before_the_normalisation() -> None:
    layer = _layer(use_styles=False)
    x = torch.tensor([[[[-2.0, -1.0], [1.0, 2.0]]]])
    # LeakyReLU(0.2): [-0.4, -0.2, 1, 2]; mean 0.6; deviations -1 -0.8 0.4 1.4.
    dev = torch.tensor([-1.0, -0.8, 0.4, 1.4])
    expected = dev / dev.square().mean().sqrt()
    torch.testing.assert_close(layer(x, torch.zeros(1, 3), "none").flatten(), expected)


def test_noise_weights_start_at_zero_and_leave_the_output_unchanged() -> None:
    torch.manual_seed(0)
    layer = StyleLayer(None, 4, 3, 8, use_styles=True, use_noise=True, use_pixel_norm=False,
                       use_instance_norm=True)  # fmt: skip
    x, w = torch.randn(2, 4, 8, 8), torch.randn(2, 3)
    assert torch.equal(layer.noise_weight, torch.zeros(4))
    torch.testing.assert_close(layer(x, w, "random"), layer(x, w, "none"))


def test_noise_is_one_image_per_layer_scaled_per_channel() -> None:
    torch.manual_seed(0)
    layer = StyleLayer(None, 3, 2, 4, use_styles=False, use_noise=True, use_pixel_norm=False,
                       use_instance_norm=False)  # fmt: skip
    with torch.no_grad():
        layer.noise_weight.copy_(torch.tensor([0.0, 1.0, -2.0]))
    x = torch.zeros(1, 3, 4, 4)
    added = layer.add_noise(x, "const")
    noise = layer.noise_const
    for channel, weight in enumerate((0.0, 1.0, -2.0)):
        torch.testing.assert_close(added[0, channel], weight * noise)


def test_the_blur_sums_to_one_and_matches_a_hand_computed_convolution() -> None:
    blur = Blur(2)
    assert torch.allclose(blur.kernel.sum(dim=(1, 2, 3)), torch.ones(2))
    x = torch.zeros(1, 2, 5, 5)
    x[0, 0, 2, 2] = 16.0  # an impulse: the output is the kernel x 16
    x[0, 1] = 1.0  # a constant: 1 inside, the kept share of the kernel at the zero-padded edge
    out = blur(x)
    hand = torch.tensor([[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]])
    torch.testing.assert_close(out[0, 0, 1:4, 1:4], hand)
    assert out[0, 0].sum() == 16.0
    assert out[0, 1, 2, 2] == 1.0
    assert out[0, 1, 0, 0] == (4 + 2 + 2 + 1) / 16  # corner: the 2x2 of the kernel that lands
    assert out[0, 1, 0, 2] == (4 + 2 + 2 + 1 + 2 + 1) / 16  # edge


def test_the_blurs_first_and_second_derivatives_are_the_convolutions() -> None:
    blur = Blur(3).double()
    x = torch.randn(2, 3, 6, 6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(blur, (x,))
    assert torch.autograd.gradgradcheck(blur, (x,))
    kernel = blur.kernel
    plain = F.conv2d(x, kernel, padding=1, groups=3)
    torch.testing.assert_close(blur(x), plain)
    # R1's pattern: the gradient of a penalty on the input gradient, against F.conv2d's.
    weight = torch.randn(3, 3, 3, 3, dtype=torch.float64)
    grads = []
    for fn in (blur, lambda t: F.conv2d(t, kernel, padding=1, groups=3)):
        (g,) = torch.autograd.grad(F.conv2d(fn(x), weight).square().sum(), x, create_graph=True)
        grads.append(torch.autograd.grad(g.square().sum(), x)[0])
    torch.testing.assert_close(grads[0], grads[1])


def test_instance_norm_is_per_sample_and_per_map() -> None:
    x = torch.randn(3, 4, 5, 5) * 7 + 3
    y = instance_norm(x)
    torch.testing.assert_close(y.mean(dim=(2, 3)), torch.zeros(3, 4), atol=1e-5, rtol=0)
    torch.testing.assert_close(y.square().mean(dim=(2, 3)), torch.ones(3, 4), atol=1e-4, rtol=0)


def test_the_mapping_layer_is_the_official_dense_layer() -> None:
    """Officially: lrelu(x @ W * sqrt(2) / sqrt(fan_in) * lrmul + b * lrmul), W ~ N(0, 1 / lrmul)."""
    torch.manual_seed(0)
    mapping = StyleMapping(z_dim=6, c_dim=0, w_dim=6, num_ws=2, num_layers=1)
    layer = mapping.layers[0]
    with torch.no_grad():
        layer.bias.copy_(torch.linspace(-50, 50, 6))  # large: the bias's gain shows
    z = torch.randn(4, 6)
    x = z * torch.rsqrt(z.square().mean(dim=1, keepdim=True) + 1e-8)
    lrmul = 0.01
    official = F.leaky_relu(
        x @ (layer.weight * math.sqrt(2) / math.sqrt(6) * lrmul).t() + layer.bias * lrmul, 0.2
    )
    torch.testing.assert_close(mapping(z)[:, 0], official)


def test_labels_are_embedded_and_pixel_normalised_with_z() -> None:
    torch.manual_seed(0)
    mapping = StyleMapping(z_dim=4, c_dim=3, w_dim=4, num_ws=1, num_layers=1)
    z, c = torch.randn(2, 4), torch.tensor([2, 0])
    joined = torch.cat([z, mapping.label_embed[c]], dim=1)
    expected = joined * torch.rsqrt(joined.square().mean(dim=1, keepdim=True) + 1e-8)
    torch.testing.assert_close(mapping.embed_inputs(z, c), expected)


def _nets(resolution: int = 16, classes: int = 0, **arch: object) -> torch.nn.ModuleDict:
    torch.manual_seed(0)
    small = {"z_dim": 8, "w_dim": 8, "mapping_layers": 2, "channel_base": 64, "channel_max": 8}
    return build(resolution, 3, classes, **{**small, **arch})


def test_g_fade_in_at_alpha_0_is_the_previous_stage_upsampled() -> None:
    G = _nets()["G"]
    z = torch.randn(3, 8)
    previous = G(z, resolution=8, alpha=1.0, noise_mode="const")
    torch.testing.assert_close(
        G(z, resolution=16, alpha=0.0, noise_mode="const"), upsample2x(previous)
    )
    halfway = G(z, resolution=16, alpha=0.5, noise_mode="const")
    full = G(z, resolution=16, alpha=1.0, noise_mode="const")
    torch.testing.assert_close(halfway, (upsample2x(previous) + full) / 2)


def test_d_fade_in_at_alpha_0_is_the_previous_stage_of_the_pooled_image() -> None:
    D = _nets()["D"]
    img = torch.randn(4, 3, 16, 16)
    torch.testing.assert_close(D(img, alpha=0.0), D(F.avg_pool2d(img, 2), alpha=1.0))


def test_the_d_block_blurs_before_its_downsampling_conv_and_pools_before_the_activation() -> None:
    D = _nets()["D"]
    block = D.blocks[2]  # 16x16 -> 8x8
    x = torch.randn(2, block.conv0.in_channels, 16, 16)
    y = F.leaky_relu(block.conv0(x), 0.2)
    y = F.conv2d(y, block.blur.kernel, padding=1, groups=y.shape[1])
    expected = F.leaky_relu(F.avg_pool2d(block.conv1(y), 2), 0.2)
    torch.testing.assert_close(block(x), expected)


def test_a_conditional_d_keeps_the_labels_logit() -> None:
    D = _nets(classes=3)["D"]
    img = torch.randn(3, 3, 16, 16)
    logits = [D(img, torch.full((3,), k)) for k in range(3)]
    picked = D(img, torch.tensor([0, 2, 1]))
    torch.testing.assert_close(picked, torch.stack([logits[0][0], logits[2][1], logits[1][2]]))
    torch.testing.assert_close(D(img, F.one_hot(torch.tensor([0, 2, 1]), 3).float()), picked)


@pytest.mark.parametrize("cutoff", [None, 2])
def test_truncation_at_psi_0_gives_w_avg_and_at_psi_1_changes_nothing(cutoff: int | None) -> None:
    G = _nets()["G"]
    with torch.no_grad():
        G.mapping.w_avg.copy_(torch.arange(8.0))
    z = torch.randn(3, 8)
    ws = G.mapping(z)
    truncated = G.mapping(z, truncation_psi=0.0, truncation_cutoff=cutoff)
    upto = G.num_ws if cutoff is None else cutoff
    assert torch.equal(truncated[:, :upto], G.mapping.w_avg.expand(3, upto, 8))
    assert torch.equal(truncated[:, upto:], ws[:, upto:])
    assert torch.equal(G.mapping(z, truncation_psi=1.0, truncation_cutoff=cutoff), ws)
    # psi 0 on every layer: one image, whatever z (the constant noise is the same too).
    images = G(z, truncation_psi=0.0, noise_mode="const")
    torch.testing.assert_close(images[0], images[2])


def test_synthesis_renders_the_stage_g_was_last_trained_at() -> None:
    G = _nets()["G"]
    z = torch.randn(2, 8)
    ws = G.mapping(z)
    assert G.synthesis.stage() == (16, 1.0)  # a new G is fully grown
    G.synthesis.set_stage(16, 0.25)
    assert G.synthesis.stage() == (16, 0.25) and float(G.synthesis.lod) == 0.75
    torch.testing.assert_close(
        G.synthesis(ws, noise_mode="const"), G.synthesis(ws, 16, 0.25, noise_mode="const")
    )
    G.synthesis.set_stage(8)
    assert G.synthesis(ws, noise_mode="const").shape == (2, 3, 8, 8)
    assert "synthesis.lod" in G.state_dict()


@pytest.mark.parametrize(
    ("flags", "num_ws", "has"),
    [
        ({"use_styles": False, "const_input": False, "mapping_layers": 0}, 1, "dense_input"),
        ({"use_styles": True, "const_input": False}, 8, "dense_input"),
        ({"use_styles": True, "const_input": True}, 8, "const"),
    ],
)
def test_the_table_1_flags_build_the_official_layers(
    flags: dict[str, object], num_ws: int, has: str
) -> None:
    G = _nets(resolution=32, **flags)["G"]
    assert G.num_ws == num_ws and getattr(G.synthesis, has) is not None
    assert G(torch.randn(2, 8), resolution=32).shape == (2, 3, 32, 32)
    styled = [layer.style is not None for layer in G.synthesis.layers]
    assert styled == [bool(flags["use_styles"])] * 8


def test_bad_arguments_are_config_errors_naming_the_fix() -> None:
    with pytest.raises(ConfigError, match="power-of-two"):
        build(24, 3)
    with pytest.raises(ConfigError, match="w_dim must be z_dim"):
        build(16, 3, z_dim=8, w_dim=16, mapping_layers=0)
