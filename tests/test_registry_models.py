"""Generated from the model registry (as timm's tests are): every registered model, at each
resolution and kind of data its registration declares, in its smallest arch, builds, gives the
documented shapes (`G(z, c) -> [N, C, R, R]` or `[N, 2]`, `D(x, c) -> [N]`) and image range,
back-propagates finite gradients into G and D, and round-trips its `state_dict` exactly.

A new model gets these tests by registering: `@MODELS.register(name, resolutions=..., kinds=...,
small_arch=..., labels=..., output_range=...)`.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from gankit.registry import MODELS, Entry

N = 2  # samples per batch: few, as the largest ProGAN sizes cost seconds per sample
CLASSES = 3
CHANNELS = 3
DEFAULT_RESOLUTION = 32  # for a registration that declares none


def _cases() -> list[tuple[str, str, int, int]]:
    """(model, kind, resolution, classes) for every registered model: each image resolution
    it declares (with and without labels where it takes them) and 2-D points where it makes them."""
    cases = []
    for entry in MODELS:
        classes = (0, CLASSES) if entry.labels else (0,)
        if "images" in entry.kinds:
            resolutions = entry.resolutions or (DEFAULT_RESOLUTION,)
            cases += [(entry.name, "images", r, c) for r in resolutions for c in classes]
        if "points" in entry.kinds:
            cases += [(entry.name, "points", 0, c) for c in classes]
    return cases


def _build(entry: Entry, kind: str, resolution: int, classes: int, seed: int) -> nn.ModuleDict:
    torch.manual_seed(seed)
    channels = CHANNELS if kind == "images" else 0  # 2-D points: resolution = channels = 0
    return entry.fn(resolution, channels, classes, **entry.small_arch)


def _inputs(
    G: nn.Module, kind: str, resolution: int, classes: int
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
    """Latents, labels (None without classes) and real samples of the expected shape."""
    gen = torch.Generator().manual_seed(1)
    z = torch.randn(N, G.z_dim, generator=gen)
    c = torch.randint(classes, (N,), generator=gen) if classes else None
    shape = (N, CHANNELS, resolution, resolution) if kind == "images" else (N, 2)
    return z, c, torch.rand(shape, generator=gen) * 2 - 1


def _case_id(case: tuple[str, str, int, int]) -> str:
    name, kind, resolution, classes = case
    where = f"{resolution}px" if kind == "images" else "points"
    return f"{name}-{where}" + (f"-{classes}classes" if classes else "")


CASES = _cases()


@pytest.mark.parametrize("case", CASES, ids=[_case_id(c) for c in CASES])
def test_every_model_builds_with_the_documented_shapes_range_and_a_finite_backward(
    case: tuple[str, str, int, int],
) -> None:
    name, kind, resolution, classes = case
    entry = MODELS.entry(name)
    nets = _build(entry, kind, resolution, classes, seed=0)
    G, D = nets["G"], nets["D"]
    assert (G.c_dim, getattr(G, "output_kind", "images")) == (classes, kind)
    z, c, real = _inputs(G, kind, resolution, classes)

    fake = G(z, c)
    assert fake.shape == real.shape
    if kind == "images" and entry.output_range is not None:
        low, high = entry.output_range
        assert low <= fake.min().item() and fake.max().item() <= high
    fake_logits, real_logits = D(fake, c), D(real, c)
    assert fake_logits.shape == real_logits.shape == (N,)

    loss = F.softplus(fake_logits).mean() + F.softplus(-real_logits).mean()
    loss.backward()
    assert torch.isfinite(loss)
    for net_name in ("G", "D"):
        grads = [p.grad for p in nets[net_name].parameters() if p.grad is not None]
        assert grads, f"{name}: {net_name} got no gradient"
        assert all(torch.isfinite(g).all() for g in grads), f"{name}: {net_name}"
        assert sum(g.abs().sum() for g in grads) > 0, f"{name}: {net_name} got zero gradients"


@pytest.mark.parametrize("case", CASES, ids=[_case_id(c) for c in CASES])
def test_every_model_round_trips_its_state_dict_exactly(case: tuple[str, str, int, int]) -> None:
    name, kind, resolution, classes = case
    entry = MODELS.entry(name)
    nets = _build(entry, kind, resolution, classes, seed=0)
    G = nets["G"]
    z, c, real = _inputs(G, kind, resolution, classes)
    G(z, c)  # a training-mode step moves batch-norm statistics away from their initial values
    saved = {k: v.clone() for k, v in nets.state_dict().items()}
    other = _build(entry, kind, resolution, classes, seed=1)
    assert any(not torch.equal(v, other.state_dict()[k]) for k, v in saved.items())

    other.load_state_dict(nets.state_dict())
    assert other.state_dict().keys() == saved.keys()
    assert all(torch.equal(v, saved[k]) for k, v in other.state_dict().items())
    nets.eval()
    other.eval()
    with torch.no_grad():
        assert torch.equal(other["G"](z, c), G(z, c))
        assert torch.equal(other["D"](real, c), nets["D"](real, c))


def _translation_cases() -> list[tuple[str, int]]:
    """(model, resolution) for every model of unpaired A/B images, at each declared size."""
    return [
        (entry.name, r)
        for entry in MODELS
        if "unpaired" in entry.kinds
        for r in entry.resolutions or (DEFAULT_RESOLUTION,)
    ]


TRANSLATION_CASES = _translation_cases()


@pytest.mark.parametrize(("name", "resolution"), TRANSLATION_CASES)
def test_every_translation_model_maps_grey_a_and_colour_b_both_ways(
    name: str, resolution: int
) -> None:
    entry = MODELS.entry(name)
    torch.manual_seed(0)
    nets = entry.fn(resolution, 1, 0, img_channels_b=3, **entry.small_arch)
    gen = torch.Generator().manual_seed(1)
    a = torch.rand(N, 1, resolution, resolution, generator=gen) * 2 - 1
    b = torch.rand(N, 3, resolution, resolution, generator=gen) * 2 - 1
    fake_b, fake_a = nets["G_ab"](a), nets["G_ba"](b)
    assert fake_b.shape == b.shape and fake_a.shape == a.shape
    if entry.output_range is not None:
        low, high = entry.output_range
        assert low <= min(fake_a.min(), fake_b.min()) and max(fake_a.max(), fake_b.max()) <= high
    scores = [nets["D_a"](fake_a), nets["D_b"](fake_b), nets["D_a"](a), nets["D_b"](b)]
    loss = sum((s - 1).square().mean() for s in scores)
    loss.backward()
    for net_name in ("G_ab", "G_ba", "D_a", "D_b"):
        grads = [p.grad for p in nets[net_name].parameters() if p.grad is not None]
        assert grads and all(torch.isfinite(g).all() for g in grads), f"{name}: {net_name}"
    other = entry.fn(resolution, 1, 0, img_channels_b=3, **entry.small_arch)
    other.load_state_dict(nets.state_dict())
    with torch.no_grad():
        assert torch.equal(other["G_ab"].eval()(a), nets["G_ab"].eval()(a))


def test_the_registry_declares_every_built_in_models_sizes() -> None:
    # What the generated tests above run over: a model with no declared size would be tested at
    # 32 px only, so a built-in that forgets its resolutions is caught here.
    declared = {e.name: (e.kinds, e.resolutions) for e in MODELS}
    assert declared["dcgan"] == (("images",), (28, 32, 64))
    assert declared["resnet"] == (("images",), (32, 64))
    assert declared["progan"][1] == tuple(2**i for i in range(2, 11))
    assert declared["mlp"][0] == ("images", "points")
    assert declared["cyclegan"] == (("unpaired",), (8, 16, 32))
