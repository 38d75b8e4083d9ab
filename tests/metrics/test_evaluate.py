"""`gankit evaluate` and the metric runner: names and counts, sources, the real-feature cache."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from gankit.cli import main
from gankit.errors import ConfigError
from gankit.metrics.runner import parse_metric


@pytest.mark.parametrize(
    ("text", "num", "name", "count", "label"),
    [
        ("fid50k", None, "fid", 50000, "fid50k"),
        ("swd16k", None, "swd", 16384, "swd16k"),
        ("swd", None, "swd", 16384, "swd16k"),
        ("ms_ssim10k", None, "ms-ssim", 10000, "ms_ssim10k"),
        ("MS-SSIM", 2500, "ms-ssim", 2500, "ms_ssim2500"),
        ("fid", 2000, "fid", 2000, "fid2k"),
        ("kid300", None, "kid", 300, "kid300"),
        ("clf-fid10k", None, "clf-fid", 10000, "clf_fid10k"),
        ("modes", None, "modes", None, "modes"),
    ],
)
def test_metric_names_carry_their_counts(
    text: str, num: int | None, name: str, count: int | None, label: str
) -> None:
    request = parse_metric(text, num)
    assert (request.spec.name, request.num, request.label) == (name, count, label)


def test_unknown_metric_suggests_one() -> None:
    with pytest.raises(ConfigError, match=r"unknown metric 'fdi'.*Did you mean 'fid'"):
        parse_metric("fdi")


def _images(n: int, seed: int, res: int = 32) -> np.ndarray:
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(n, 3, 4, 4, generator=g)
    img = F.interpolate(low, size=res, mode="bicubic", align_corners=False) * 255
    img = img + 8 * torch.randn(n, 3, res, res, generator=g)
    return img.clamp(0, 255).round().to(torch.uint8).numpy()


def _folder(images: np.ndarray, path: Path) -> Path:
    path.mkdir()
    for i, img in enumerate(images):
        Image.fromarray(img.transpose(1, 2, 0)).save(path / f"{i:03d}.png")
    return path


def test_fid_kid_is_of_a_set_against_itself_and_another(
    tmp_path: Path, inception_weights: Path, capsys: pytest.CaptureFixture
) -> None:
    same = _images(24, seed=1)
    np.save(tmp_path / "same.npy", same)
    np.save(tmp_path / "other.npy", 255 - _images(24, seed=2))
    reals = _folder(same, tmp_path / "reals")
    args = [
        "--metrics",
        "fid,kid,is,pr",
        "--num",
        "24",
        "--data",
        str(reals),
        "--inception-weights",
        str(inception_weights),
        "--no-progress",
        "--device",
        "cpu",
    ]
    assert (
        main(["evaluate", str(tmp_path / "same.npy"), *args, "--json", str(tmp_path / "a.json")])
        == 0
    )
    same_result = json.loads((tmp_path / "a.json").read_text())
    assert same_result["pr24/precision"] == 1.0 and same_result["pr24/recall"] == 1.0
    assert set(same_result) == {
        "fid24", "kid24", "kid24/std", "is24", "is24/std", "pr24/precision", "pr24/recall"
    }  # fmt: skip
    json_b = str(tmp_path / "b.json")
    assert main(["evaluate", str(tmp_path / "other.npy"), *args, "--json", json_b]) == 0
    other = json.loads((tmp_path / "b.json").read_text())
    # Same images in another order: FID is order-free, so it vanishes up to the sqrtm round-off
    # of 24 samples in 2048 dimensions. Unbiased KID of a set against itself with one subset of
    # every image is (2/m) (mean off-diagonal - mean diagonal kernel) with no spread. (KID's and
    # IS's values are checked against torch-fidelity in test_fid_kid_is.py.)
    assert abs(same_result["fid24"]) < 1e-4 * other["fid24"]
    assert same_result["kid24/std"] == pytest.approx(0.0, abs=1e-9 * abs(same_result["kid24"]))
    assert all(np.isfinite(v) for v in other.values())
    out = capsys.readouterr().out
    assert "fid24" in out and "wrote" in out


def test_real_features_are_cached_and_reused(
    tmp_path: Path, inception_weights: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gankit.metrics import runner

    np.save(tmp_path / "fakes.npy", _images(12, seed=3))
    reals = _folder(_images(12, seed=4), tmp_path / "reals")
    args = [
        "evaluate",
        str(tmp_path / "fakes.npy"),
        "--metrics",
        "fid12",
        "--data",
        str(reals),
        "--inception-weights",
        str(inception_weights),
        "--no-progress",
        "--json",
        str(tmp_path / "r.json"),
    ]
    assert main(args) == 0
    first = json.loads((tmp_path / "r.json").read_text())["fid12"]
    cached = list((runner.cache_dir() / "metrics").glob("inception-*.npz"))
    assert len(cached) == 1
    extracted = []
    original = runner.FeatureBank.extractor

    def counting(self, kind, domain=None):
        extract, ident = original(self, kind, domain)
        return (lambda images: extracted.append(len(images)) or extract(images)), ident

    monkeypatch.setattr(runner.FeatureBank, "extractor", counting)
    assert main(args) == 0
    assert json.loads((tmp_path / "r.json").read_text())["fid12"] == first
    assert extracted == [12]  # only the fakes went through the network the second time


def test_swd_and_ms_ssim_keys_and_ordering(tmp_path: Path) -> None:
    base = _images(256, seed=5)
    reals = _folder(base, tmp_path / "reals")
    noisy = np.clip(
        base.astype(np.int16) + np.random.default_rng(0).integers(-60, 61, base.shape), 0, 255
    )
    np.save(tmp_path / "near.npy", base)
    np.save(tmp_path / "far.npy", noisy.astype(np.uint8))
    results = {}
    for name in ("near", "far"):
        json_path = tmp_path / f"{name}.json"
        assert (
            main(
                [
                    "evaluate",
                    str(tmp_path / f"{name}.npy"),
                    "--metrics",
                    "swd256,ms_ssim200",
                    "--data",
                    str(reals),
                    "--no-progress",
                    "--json",
                    str(json_path),
                ]
            )
            == 0
        )
        results[name] = json.loads(json_path.read_text())
    assert set(results["near"]) == {
        "swd256/32",
        "swd256/16",
        "swd256/avg",
        "ms_ssim200/fake",
        "ms_ssim200/real",
    }
    assert results["near"]["swd256/avg"] == pytest.approx(
        np.mean([results["near"]["swd256/32"], results["near"]["swd256/16"]])
    )
    assert results["far"]["swd256/avg"] > 3 * results["near"]["swd256/avg"]
    # The same images as the reals: equal diversity up to the pairs drawn.
    assert results["near"]["ms_ssim200/fake"] == pytest.approx(
        results["near"]["ms_ssim200/real"], abs=0.05
    )


def test_mode_coverage_of_points(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    threads = []
    monkeypatch.setattr(torch, "set_num_threads", threads.append)  # --threads 2, asked for
    angles = torch.arange(2500) % 8 * (2 * math.pi / 8)
    points = torch.stack([angles.cos(), angles.sin()], dim=1).numpy().astype(np.float32)
    np.save(tmp_path / "ring.npy", points)
    assert (
        main(
            [
                "evaluate",
                str(tmp_path / "ring.npy"),
                "--metrics",
                "modes",
                "--data",
                "ring8",
                "--json",
                str(tmp_path / "m.json"),
                "--no-progress",
                "--threads",
                "2",
            ]
        )
        == 0
    )
    result = json.loads((tmp_path / "m.json").read_text())
    # 2,500 points over 8 modes: four modes hold 313, four 312; KL of that histogram to uniform.
    p = np.array([313] * 4 + [312] * 4) / 2500
    expected_kl = float(np.sum(p * np.log(p * 8)))
    assert result["modes/covered"] == 8.0 and result["modes/high_quality"] == 1.0
    assert threads == [2]
    assert result["modes/reverse_kl"] == pytest.approx(expected_kl, rel=1e-6)


def test_clear_errors(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    np.save(tmp_path / "x.npy", _images(8, seed=6))
    assert main(["evaluate", str(tmp_path / "x.npy"), "--metrics", "fid"]) == 2
    assert "compares with real data: pass --data" in capsys.readouterr().err
    reals = _folder(_images(8, seed=7), tmp_path / "reals")
    assert (
        main(["evaluate", str(tmp_path / "x.npy"), "--metrics", "fid8", "--data", str(reals)]) == 2
    )
    assert "GANKIT_INCEPTION_WEIGHTS" in capsys.readouterr().err
    assert (
        main(
            [
                "evaluate",
                str(tmp_path / "x.npy"),
                "--metrics",
                "fid",
                "--num",
                "100",
                "--data",
                str(reals),
            ]
        )
        == 2
    )
    assert "needs 100 samples but" in capsys.readouterr().err
    assert main(["evaluate", str(tmp_path / "x.npy"), "--metrics", "ppl"]) == 2
    assert "StyleGAN-family generator" in capsys.readouterr().err
    assert main(["evaluate", str(tmp_path / "x.npy"), "--metrics", "ppl", "--threads", "0"]) == 2
    assert "--threads must be at least 1" in capsys.readouterr().err


def test_metrics_during_training_go_to_stats_and_log(tmp_path: Path, tiny_run_args) -> None:
    args = [
        *tiny_run_args(tmp_path / "run", kimg=0.08),
        "--metrics",
        "swd64,ms_ssim50",
        "--metrics-kimg",
        "0.04",
    ]
    assert main(args) == 0
    records = [
        json.loads(line) for line in (tmp_path / "run" / "stats.jsonl").read_text().splitlines()
    ]
    evaluated = [r for r in records if "swd64/avg" in r]
    # One evaluation at 0.04 kimg (8x8 fade-in stage), none at the end (the final snapshot).
    assert [r["kimg"] for r in evaluated] == [0.04]
    assert set(evaluated[0]) == {
        "kimg",
        "swd64/16",
        "swd64/avg",
        "ms_ssim50/fake",
        "ms_ssim50/real",
    }
    assert "metrics at 0.04 kimg: swd64/16" in (tmp_path / "run" / "log.txt").read_text()


def test_unknown_training_metric_fails_before_training(
    tmp_path: Path, tiny_run_args, capsys: pytest.CaptureFixture
) -> None:
    assert main([*tiny_run_args(tmp_path / "run"), "--metrics", "fid50k,swdd"]) == 2
    assert "unknown metric 'swdd'" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_classifier_train_command(
    tmp_path: Path, shared_data: Path, capsys: pytest.CaptureFixture
) -> None:
    from gankit.metrics.classifier import load_classifier

    out = tmp_path / "clf.pt"
    assert main(["classifier", "train", "--data", "mnist", "--data-root", str(shared_data),
                 "--epochs", "1", "--out", str(out), "--device", "cpu"]) == 0  # fmt: skip
    printed = capsys.readouterr().out
    accuracy = load_classifier(out).meta["test_accuracy"]
    # One epoch of the small CNN already clears 98% on MNIST (3 epochs: >= 99%, test_classifier.py).
    assert accuracy >= 0.98
    assert f"test accuracy {100 * accuracy:.2f}%" in printed and str(out) in printed


def test_generator_samples_repeat_for_a_g_that_draws_global_noise() -> None:
    """A StyleGAN2-like G (random noise from torch's global stream) gives the same samples at
    every evaluation, and the caller's global stream is left where it was."""
    from gankit.metrics.sources import GeneratorSource

    class NoisyG(torch.nn.Module):
        z_dim, img_resolution, img_channels = 4, 4, 1

        def __init__(self) -> None:
            super().__init__()
            self.scale = torch.nn.Parameter(torch.ones(()))

        def forward(self, z: torch.Tensor) -> torch.Tensor:
            noise = torch.randn(z.shape[0], 1, 4, 4)  # the global stream, as StyleGAN2's noise
            return torch.tanh(z.mean(1).view(-1, 1, 1, 1) + noise) * self.scale

    source = GeneratorSource(NoisyG(), {}, seed=5)
    torch.manual_seed(0)
    first = torch.cat(list(source.batches(6, 4)))
    after = torch.get_rng_state()
    second = torch.cat(list(source.batches(6, 4)))  # the global stream has not moved meanwhile
    torch.testing.assert_close(first, second)
    assert torch.equal(torch.get_rng_state(), after)
    other = torch.cat(list(GeneratorSource(NoisyG(), {}, seed=6).batches(6, 4)))
    assert not torch.equal(first, other)
