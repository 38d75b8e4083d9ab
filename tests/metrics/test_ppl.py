"""PPL against closed forms: a generator linear in w and a squared-L2 distance."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from gankit.metrics.lpips import VGG16WeightsError
from gankit.metrics.ppl import (
    filtered_mean,
    perceptual_path_length,
    ppl_distances,
    ppl_images,
    sample_ppl_inputs,
    slerp,
)


class LinearG(nn.Module):
    """mapping: w = z M (+ label embedding), broadcast to num_ws; synthesis: img = mean_ws(w) A."""

    def __init__(self, z_dim: int = 6, w_dim: int = 5, c_dim: int = 0, res: int = 4) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(0)
        self.z_dim, self.c_dim, self.res, self.num_ws = z_dim, c_dim, res, 3
        self.M = nn.Parameter(torch.randn(z_dim, w_dim, generator=gen, dtype=torch.float64))
        self.E = nn.Parameter(torch.randn(max(c_dim, 1), w_dim, generator=gen, dtype=torch.float64))
        self.A = nn.Parameter(torch.randn(w_dim, res * res, generator=gen, dtype=torch.float64))
        self.seen_noise_mode = ""

    def mapping(self, z: Tensor, c: Tensor | None) -> Tensor:
        w = z @ self.M + (0 if c is None else c @ self.E)
        return w[:, None, :].expand(-1, self.num_ws, -1)

    def synthesis(self, ws: Tensor, noise_mode: str = "random") -> Tensor:
        self.seen_noise_mode = noise_mode
        return (ws.mean(1) @ self.A).reshape(-1, 1, self.res, self.res)


def sq_l2(a: Tensor, b: Tensor) -> Tensor:
    return (a - b).square().flatten(1).sum(1)


def test_slerp_matches_the_great_circle_formula() -> None:
    a = torch.tensor([[3.0, 0.0, 0.0]], dtype=torch.float64)
    b = torch.tensor([[0.0, 0.0, 0.5]], dtype=torch.float64)
    for t in (0.0, 0.25, 1.0):
        expected = torch.tensor([[math.cos(t * math.pi / 2), 0.0, math.sin(t * math.pi / 2)]])
        torch.testing.assert_close(slerp(a, b, torch.tensor([[t]])), expected.double())


def test_w_space_distance_is_the_linear_closed_form_for_any_epsilon() -> None:
    G = LinearG()
    gen = torch.Generator().manual_seed(1)
    z0, z1 = torch.randn(2, 5, 6, generator=gen, dtype=torch.float64)
    t = torch.rand(5, generator=gen, dtype=torch.float64)
    # img(t + eps) - img(t) = eps (w1 - w0) A exactly, so d / eps^2 = |(w1 - w0) A|^2.
    expected = ((z1 - z0) @ G.M @ G.A).square().sum(1)
    for eps in (1e-2, 1e-4):
        d = ppl_distances(G, z0, z1, t, None, distance=sq_l2, epsilon=eps, space="w")
        torch.testing.assert_close(d, expected, rtol=1e-6, atol=0)
    assert G.seen_noise_mode == "const"


def test_z_space_end_distance_is_angle_squared_times_tangent_norm() -> None:
    G = LinearG()
    gen = torch.Generator().manual_seed(2)
    z0, z1 = torch.randn(2, 4, 6, generator=gen, dtype=torch.float64)
    eps = 1e-4
    d = ppl_distances(
        G, z0, z1, torch.zeros(4, dtype=torch.float64), None, distance=sq_l2, epsilon=eps, space="z"
    )
    a, b = z0 / z0.norm(dim=1, keepdim=True), z1 / z1.norm(dim=1, keepdim=True)
    cos = (a * b).sum(1, keepdim=True)
    theta = torch.acos(cos)
    ortho = (b - cos * a) / (b - cos * a).norm(dim=1, keepdim=True)
    # Exact chord: slerp(eps) - slerp(0) = a (cos(eps theta) - 1) + ortho sin(eps theta).
    chord = a * (torch.cos(eps * theta) - 1) + ortho * torch.sin(eps * theta)
    exact = (chord @ G.M @ G.A).square().sum(1) / eps**2
    torch.testing.assert_close(d, exact, rtol=1e-6, atol=0)
    # And the eps -> 0 limit: theta^2 |ortho M A|^2.
    limit = theta.squeeze(1) ** 2 * (ortho @ G.M @ G.A).square().sum(1)
    torch.testing.assert_close(d, limit, rtol=1e-3, atol=0)


def test_face_crop_and_box_downsampling() -> None:
    img = torch.arange(64.0).reshape(1, 1, 8, 8)
    torch.testing.assert_close(ppl_images(img, crop=True), img[:, :, 3:7, 2:6])
    torch.testing.assert_close(ppl_images(img), img)
    big = torch.rand(1, 1, 512, 512)
    torch.testing.assert_close(
        ppl_images(big), torch.nn.functional.avg_pool2d(big, 2), rtol=1e-6, atol=1e-6
    )


def test_filtered_mean_drops_the_outer_percentiles() -> None:
    d = np.concatenate([np.arange(1.0, 199.0), [1e6, -1e6]])
    np.random.default_rng(0).shuffle(d)
    # 200 values: the 1st percentile ("lower") is 1.0, the 99th ("higher") is 198.0.
    assert filtered_mean(d) == pytest.approx(np.arange(1.0, 199.0).mean(), rel=1e-12)
    assert filtered_mean(np.full(7, 3.5)) == 3.5


@pytest.mark.parametrize("sampling", ["end", "full"])
def test_perceptual_path_length_end_to_end_closed_form(sampling: str) -> None:
    G = LinearG(c_dim=3)
    out = perceptual_path_length(
        G,
        num_samples=300,
        batch_size=64,
        distance=sq_l2,
        space="w",
        sampling=sampling,
        seed=5,
        progress=False,
    )
    # Replay the documented draws: per batch, (z0, z1, t, c) from one generator.
    gen = torch.Generator().manual_seed(5)
    expected = []
    for start in range(0, 300, 64):
        z0, z1, t, c = sample_ppl_inputs(G, min(64, 300 - start), gen, sampling=sampling)
        assert c is not None and c.sum(1).tolist() == [1.0] * len(c)
        assert (t == 0).all() if sampling == "end" else (t > 0).all()
        expected.append(((z1 - z0) @ G.M @ G.A).square().sum(1))  # c cancels in w1 - w0
    d = torch.cat(expected).detach().numpy()
    lo, hi = np.sort(d)[2], np.sort(d)[-3]  # 1st pct "lower" / 99th "higher" of 300 values
    assert out["num_samples"] == 300
    assert out["ppl"] == pytest.approx(d[(d >= lo) & (d <= hi)].mean(), rel=1e-6)
    assert out["ppl_unfiltered"] == pytest.approx(d.mean(), rel=1e-6)


def test_bad_space_and_sampling_are_rejected() -> None:
    G = LinearG()
    with pytest.raises(ValueError, match="space"):
        perceptual_path_length(G, num_samples=4, distance=sq_l2, space="x", progress=False)
    with pytest.raises(ValueError, match="sampling"):
        perceptual_path_length(G, num_samples=4, distance=sq_l2, sampling="mid", progress=False)


def test_default_distance_is_lpips_and_needs_the_vgg16_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("GANKIT_VGG16_WEIGHTS", raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(VGG16WeightsError, match=r"vgg16-397923af\.pth"):
        perceptual_path_length(LinearG(res=16), num_samples=4, progress=False)


@pytest.mark.parametrize(
    ("name", "space", "sampling"),
    [("ppl", "w", "end"), ("ppl_wend", "w", "end"), ("ppl_wfull", "w", "full"),
     ("ppl_zend", "z", "end"), ("ppl_zfull10k", "z", "full")],
)  # fmt: skip
def test_the_official_ppl_names_choose_space_and_sampling(
    name: str, space: str, sampling: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import types

    from gankit.metrics import ppl as ppl_module
    from gankit.metrics import standard
    from gankit.metrics.runner import parse_metric

    calls = []

    def recording(G: object, **kwargs: object) -> dict[str, float]:
        calls.append(kwargs)
        return {"ppl": 1.0, "ppl_unfiltered": 2.0}

    monkeypatch.setattr(ppl_module, "perceptual_path_length", recording)
    monkeypatch.setattr(standard, "_style_generator", lambda ctx: object())
    request = parse_metric(name)
    options = types.SimpleNamespace(seed=3, device="cpu", progress=False)
    ctx = types.SimpleNamespace(num=request.num, options=options)
    assert request.spec.fn(ctx) == {"": 1.0, "unfiltered": 2.0}
    assert (calls[0]["space"], calls[0]["sampling"]) == (space, sampling)
    assert calls[0]["num_samples"] == (10000 if name.endswith("10k") else 50000)
