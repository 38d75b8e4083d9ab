"""Metrics on a tiny StyleGAN2 run: during training (swd, ms-ssim), through `gankit evaluate`
(ppl with LPIPS from local weight files, precision/recall on Inception features, swd), and PPL's
const-noise redraw on StyleGAN2's own buffers against a by-hand recomputation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import Tensor

from gankit.cli import main
from gankit.generate import load_generator
from gankit.metrics.lpips import TAP_CHANNELS, vgg16_features
from gankit.metrics.ppl import EPSILON, perceptual_path_length, uniform_labels

TINY = [
    "--set", "model.arch.z_dim=4", "--set", "model.arch.w_dim=4",
    "--set", "model.arch.mapping_layers=2", "--set", "model.arch.channel_base=64",
    "--set", "model.arch.channel_max=4", "--set", "train.grid_size=4",
]  # fmt: skip


pytestmark = pytest.mark.slow  # one shared tiny run of a few seconds


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 16 px StyleGAN2 run of 2 iterations that scores swd and ms-ssim as it trains."""
    out = tmp_path_factory.mktemp("sg2-metrics") / "run"
    args = ["train", "stylegan2", "--data", "digits", "--resolution", "16", "--batch", "4"]
    args += ["--kimg", "0.008", "--out", str(out), "--device", "cpu", "--no-progress", *TINY]
    assert main([*args, "--metrics", "swd32,ms_ssim8"]) == 0
    return out


@pytest.fixture(scope="module")
def lpips_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Seeded random VGG16 features and LPIPS heads in their published formats (no download)."""
    folder = tmp_path_factory.mktemp("lpips")
    gen = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    vgg = {f"features.{k}": v for k, v in vgg16_features().state_dict().items()}
    heads = {
        f"lin{k}.model.1.weight": torch.rand(1, c, 1, 1, generator=gen)
        for k, c in enumerate(TAP_CHANNELS)
    }
    torch.save(vgg, folder / "vgg16.pth")
    torch.save(heads, folder / "heads.pth")
    return folder / "vgg16.pth", folder / "heads.pth"


def test_training_time_metrics_are_logged(run: Path) -> None:
    records = [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()]
    scored = [r for r in records if "swd32/avg" in r]
    # The snapshot interval (a quarter of the run, at least one batch) times the metrics.
    assert [r["kimg"] for r in scored] == [0.004]
    record = scored[0]
    # At 16 px SWD's Laplacian pyramid has one level.
    assert record["swd32/avg"] == record["swd32/16"] > 0 and "swd32/8" not in record
    assert -1 <= record["ms_ssim8/fake"] <= 1 and -1 <= record["ms_ssim8/real"] <= 1


def test_evaluate_ppl_precision_recall_and_swd_of_the_run(
    run: Path,
    tmp_path: Path,
    lpips_files: tuple[Path, Path],
    inception_weights: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    vgg, heads = lpips_files
    monkeypatch.setenv("GANKIT_VGG16_WEIGHTS", str(vgg))
    monkeypatch.setenv("GANKIT_LPIPS_WEIGHTS", str(heads))
    out = tmp_path / "scores.json"
    args = ["evaluate", str(run), "--metrics", "ppl8,pr16,swd32", "--no-progress", "--batch", "8"]
    assert main([*args, "--inception-weights", str(inception_weights), "--json", str(out)]) == 0
    scores = json.loads(out.read_text())
    assert set(scores) == {
        "ppl8", "ppl8/unfiltered", "pr16/precision", "pr16/recall",
        "swd32/16", "swd32/avg",
    }  # fmt: skip
    # Coverage fractions of 16 samples: multiples of 1/16.
    for key in ("pr16/precision", "pr16/recall"):
        count = scores[key] * 16
        assert 0 <= count <= 16 and count == pytest.approx(round(count))
    # PPL is the same LPIPS path length as the library function on the run's G_ema.
    from gankit.metrics.lpips import LPIPS

    G = load_generator(run, device="cpu")[0]
    expected = perceptual_path_length(
        G, num_samples=8, batch_size=16, distance=LPIPS(vgg, heads), progress=False
    )
    assert scores["ppl8"] == pytest.approx(expected["ppl"], rel=1e-6)
    assert scores["ppl8/unfiltered"] == pytest.approx(expected["ppl_unfiltered"], rel=1e-6)
    assert expected["ppl"] > 0


def _sq_l2(a: Tensor, b: Tensor) -> Tensor:
    return (a - b).square().flatten(1).sum(1)


def test_ppl_redraws_every_const_noise_buffer_of_stylegan2(run: Path) -> None:
    G = load_generator(run, device="cpu")[0].eval()
    names = [name for name, _ in G.named_buffers() if name.endswith("noise_const")]
    # 16 px: one noise input at 4 px, two at 8 and at 16
    assert len(names) == 5 and all(name.startswith("synthesis.") for name in names)
    got = perceptual_path_length(G, num_samples=6, batch_size=3, distance=_sq_l2, progress=False)
    # By hand: per batch z0, z1 and t (zeros for "end"), then each noise buffer in turn, drawn
    # from one CPU generator; both ends share the noise.
    gen, distances = torch.Generator().manual_seed(0), []
    buffers = dict(G.named_buffers())
    with torch.no_grad():
        for _ in range(2):
            z = torch.randn(6, G.z_dim, generator=gen, dtype=torch.float64).float()
            torch.rand(3, generator=gen, dtype=torch.float64)
            c = uniform_labels(G.c_dim)(3, gen) if G.c_dim else None
            for name in names:
                shape = buffers[name].shape
                buffers[name].copy_(torch.randn(shape, generator=gen, dtype=torch.float64))
            w0, w1 = G.mapping(z, None if c is None else torch.cat([c, c])).chunk(2)
            # Both ends in one batch, as the metric runs them (the distance divides by eps^2).
            ends = torch.cat([w0, w0.lerp(w1, EPSILON)])
            img_a, img_b = G.synthesis(ends, noise_mode="const").chunk(2)
            distances.append(_sq_l2(img_a, img_b) / EPSILON**2)
    d = torch.cat(distances).double()
    assert got["ppl_unfiltered"] == pytest.approx(float(d.mean()), rel=1e-4)
    # With 6 samples the 1st and 99th percentiles are the extremes: nothing is filtered out.
    assert got["ppl"] == pytest.approx(got["ppl_unfiltered"], rel=1e-12)
