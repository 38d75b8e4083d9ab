"""StyleGAN2's networks and training phases against the official NVlabs/stylegan2-ada-pytorch.

The reference values of `OFFICIAL` were computed once with the official `training/networks.py`
(its reference, non-CUDA ops, float32 on a CPU, no float16 blocks, no clamping) for networks whose
every parameter and buffer was filled by `_fill` in the order of the official names; the tests
rebuild gankit's networks with the same rule and must reproduce them. The recipe tests check the
official loss's details against plain computations written here.
"""

from __future__ import annotations

import copy
import math
import re

import pytest
import torch
from torch import nn

from gankit.models.stylegan2 import (
    Conv2dLayer,
    Discriminator,
    Generator,
    SynthesisLayer,
    ToRGBLayer,
)
from gankit.nn.modulated import FullyConnectedLayer
from gankit.recipes.base import Stage, StepContext
from gankit.recipes.stylegan2 import StyleGAN2Recipe

#: Official outputs for (G architecture, D architecture): ws[:, (0, -1), :2] of the truncated
#: mapping, img[:, :, 5, 9] and sum(img^2) of the const-noise synthesis, per-sample |d(img . y)/dws|^2,
#: D's logits and per-sample |dD/dimg|^2 (see `_outputs`).
OFFICIAL = {
    ("skip", "resnet"): {
        "ws": [0.06974217, 0.5591726, -0.02937032, 0.8435622, -0.07919334, 0.4024744,
               -0.2421353, 0.6197078, 0.01591006, 0.5685989, -0.1062733, 0.8570285,
               0.6487342, -0.3146291, 0.7977612, -0.4047258],
        "img": [-1.550694, 0.2376788, -0.7759996, -1.431781, 0.5736558, 0.5773432,
                -0.01270556, 5.0568, -2.026398, -0.2350901, -0.5292886, 0.3626142],
        "img_sq": [5702.193],
        "dws_sq": [3895.431, 1873.94, 33445.32, 253.8225],
        "logits": [-0.2244662, -0.2116001, -0.2524928, -0.269259],
        "r1": [0.001364471, 0.002397871, 0.001633961, 0.002382371],
    },
    ("resnet", "skip"): {
        "ws": [0.06974217, 0.5591726, -0.02937032, 0.8435622, -0.07919334, 0.4024744,
               -0.2421353, 0.6197078, 0.01591006, 0.5685989, -0.1062733, 0.8570285,
               0.6487342, -0.3146291, 0.7977612, -0.4047258],
        "img": [-0.8966449, 2.25892, -0.3947308, 0.08983587, -0.2699922, 0.2164892,
                2.227312, 1.187903, 0.5102941, -0.1807226, -0.2336683, 0.2169496],
        "img_sq": [2704.688],
        "dws_sq": [7449.521, 337.6692, 4712.051, 177.7512],
        "logits": [-0.1895494, -0.1567532, -0.3149045, -0.4127926],
        "r1": [0.005335133, 0.02145032, 0.006323658, 0.005538962],
    },
}  # fmt: skip


def _official_name(name: str) -> str:
    """gankit's state-dict name -> the official one (fc{i}, b{res} directly under the net)."""
    name = re.sub(r"^mapping\.layers\.(\d+)\.", r"mapping.fc\1.", name)
    name = name.replace("synthesis.blocks.", "synthesis.")
    return re.sub(r"^blocks\.", "", name)


def _fill(net: nn.Module) -> None:
    """Every parameter and buffer but the fixed filters from one seeded stream, in the order of
    the official names: N(0, 1), biases / noise strengths / w_avg x 0.2, mapping weights x 100
    (their initial scale, 1 / lr_multiplier)."""
    generator = torch.Generator().manual_seed(7)
    tensors = dict(net.named_parameters())
    tensors |= {k: v for k, v in net.named_buffers() if not k.endswith("resample_filter")}
    small = ("bias", "noise_strength", "w_avg")
    with torch.no_grad():
        for name in sorted(tensors, key=_official_name):
            scale = 0.2 if name.endswith(small) else 100.0 if name.startswith("mapping.") else 1.0
            tensor = tensors[name]
            tensor.copy_(torch.randn(tensor.shape, generator=generator) * scale)


def _outputs(G: Generator, D: Discriminator) -> dict[str, list[float]]:
    """The quantities `OFFICIAL` holds, for inputs drawn from a seeded stream."""
    G.eval(), D.eval()
    generator = torch.Generator().manual_seed(11)
    z = torch.randn(4, 8, generator=generator)
    ws_in = torch.randn(4, G.num_ws, 8, generator=generator).requires_grad_(True)
    imgs = torch.randn(4, 3, 16, 16, generator=generator).requires_grad_(True)
    y = torch.randn(4, 3, 16, 16, generator=generator)
    ws = G.mapping(z, truncation_psi=0.7, truncation_cutoff=3)
    img = G.synthesis(ws_in, noise_mode="const")
    (grad_ws,) = torch.autograd.grad((img * y).sum(), ws_in)
    logits = D(imgs)
    (grad_img,) = torch.autograd.grad(logits.sum(), imgs)
    return {
        "ws": ws[:, [0, -1], :2].flatten().tolist(),
        "img": img[:, :, 5, 9].flatten().tolist(),
        "img_sq": [img.square().sum().item()],
        "dws_sq": grad_ws.square().sum((1, 2)).tolist(),
        "logits": logits.tolist(),
        "r1": grad_img.square().sum((1, 2, 3)).tolist(),
    }


@pytest.mark.parametrize(("g_arch", "d_arch"), list(OFFICIAL))
def test_networks_reproduce_the_official_outputs(g_arch: str, d_arch: str) -> None:
    widths = {"channel_base": 64, "channel_max": 8}
    G = Generator(8, 0, 8, 16, 3, mapping_layers=2, architecture=g_arch, **widths)
    D = Discriminator(0, 16, 3, architecture=d_arch, mbstd_group_size=4, **widths)
    _fill(G), _fill(D)
    got = _outputs(G, D)
    for key, expected in OFFICIAL[(g_arch, d_arch)].items():
        torch.testing.assert_close(
            torch.tensor(got[key]), torch.tensor(expected), rtol=1e-4, atol=1e-6, msg=key
        )


def test_initialisation_and_gains_follow_the_official_rules() -> None:
    torch.manual_seed(0)
    G = Generator(32, 0, 32, 32, 1, mapping_layers=2, channel_base=1024, channel_max=64)
    D = Discriminator(0, 32, 1, channel_base=1024, channel_max=64)
    for name, module in [*G.named_modules(), *D.named_modules()]:
        if isinstance(module, FullyConnectedLayer):
            lr = 0.01 if name.startswith("mapping.") else 1.0
            assert module.weight_gain == pytest.approx(lr / math.sqrt(module.in_features))
            assert module.bias_gain == lr
            assert module.weight.std().item() == pytest.approx(1 / lr, rel=0.25)
            # The styles start at 1 (unmodulated weights); every other bias at 0.
            assert torch.all(module.bias == (1.0 if name.endswith("affine") else 0.0))
        elif isinstance(module, Conv2dLayer):
            fan_in = module.weight[0].numel()
            assert module.weight_gain == pytest.approx(1 / math.sqrt(fan_in))
            assert module.act_gain == (math.sqrt(2) if module.activation == "lrelu" else 1.0)
        elif isinstance(module, SynthesisLayer):
            assert module.noise_strength.item() == 0 and torch.all(module.bias == 0)
            assert module.act_gain == pytest.approx(math.sqrt(2))
            assert module.noise_const.shape == (module.resolution,) * 2
        elif isinstance(module, ToRGBLayer):
            assert module.weight_gain == pytest.approx(1 / math.sqrt(module.weight.shape[1]))
    assert G.synthesis.blocks["b4"].const.std().item() == pytest.approx(1, rel=0.2)


def _recipe(seed: int = 0) -> tuple[StyleGAN2Recipe, nn.ModuleDict, StepContext]:
    torch.manual_seed(seed)
    widths = {"channel_base": 32, "channel_max": 4}
    G = Generator(4, 0, 4, 8, 1, mapping_layers=2, **widths)
    D = Discriminator(0, 8, 1, **widths)
    with torch.no_grad():  # noise in play, as after some training
        for name, param in G.named_parameters():
            if name.endswith("noise_strength"):
                param.fill_(0.3)
    nets = nn.ModuleDict({"G": G, "D": D}).train()
    recipe = StyleGAN2Recipe(nets, 4, aug="noaug", style_mixing_prob=0.0, r1_gamma=1.0)
    ctx = StepContext(
        nets=nets, stage=Stage(8, batch_size=4), batch_size=4, device=torch.device("cpu"),
        generator=torch.Generator().manual_seed(5), cur_nimg=0,
    )  # fmt: skip
    return recipe, nets, ctx


def test_path_length_gradient_flows_through_pl_mean_as_officially() -> None:
    recipe, nets, ctx = _recipe()
    recipe.pl_mean = torch.tensor(0.5)
    reference = copy.deepcopy(nets["G"])
    torch.manual_seed(3)  # the synthesis' random noise
    recipe.g_reg({}, ctx)["loss"].backward()
    # The phase's draws in its order: 4 latents, then the noise for the first 2 images.
    generator = torch.Generator().manual_seed(5)
    z = torch.randn(4, 4, generator=generator)[:2]
    y = torch.randn(2, 1, 8, 8, generator=generator) / 8
    torch.manual_seed(3)
    ws = reference.mapping(z)
    img = reference.synthesis(ws)
    (grad,) = torch.autograd.grad((img * y).sum(), ws, create_graph=True)
    lengths = grad.square().sum(2).mean(1).sqrt()
    pl_mean = 0.5 + 0.01 * (lengths.mean() - 0.5)  # not detached: the official target
    # Weight 2, times the interval 4; img * 0 as officially (zero gradients for the toRGB biases).
    ((img[:, 0, 0, 0] * 0 + 2.0 * (lengths - pl_mean).square()).mean() * 4).backward()
    pairs = zip(nets["G"].named_parameters(), reference.parameters(), strict=True)
    for (name, mine), theirs in pairs:
        torch.testing.assert_close(mine.grad, theirs.grad, rtol=1e-4, atol=1e-7, msg=name)
    torch.testing.assert_close(recipe.pl_mean, pl_mean.detach(), rtol=1e-5, atol=0)


def test_regularisation_phases_give_every_parameter_a_gradient() -> None:
    """The official losses add img * 0 (path length) and logits * 0 (R1), so the parameters the
    penalty does not reach get zero gradients, not none: Adam then steps them (second moment,
    step count) as the official loop does."""
    recipe, nets, ctx = _recipe()
    recipe.g_reg({}, ctx)["loss"].backward()
    recipe.d_reg({"img": torch.randn(4, 1, 8, 8)}, ctx)["loss"].backward()
    for net in ("G", "D"):
        missing = [k for k, p in nets[net].named_parameters() if p.grad is None]
        assert missing == [], f"{net}: no gradient for {missing}"
    for name, param in nets["G"].named_parameters():
        if ".torgb.bias" in name:  # a constant shift of the image: no path-length gradient
            assert torch.all(param.grad == 0), name
    assert torch.all(nets["D"].b4.out.bias.grad == 0)
    assert nets["D"].b4.fc.weight.grad.abs().sum() > 0
