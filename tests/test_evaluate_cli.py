"""`gankit evaluate` as a new user meets it, and `gankit cache`: the resolution samples are compared
at, checks before any work, the plan, estimate and progress lines, one-line errors, the formats
both sides take; the cache listing and clearing."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from fake_runs import TINY_IMAGE, make_run, register_tiny_models
from gankit.cli import main
from gankit.metrics import progress as progress_module
from gankit.metrics import runner, sources
from gankit.registry import MODELS, Entry


def _images(n: int, res: int, channels: int = 3, seed: int = 0) -> np.ndarray:
    g = np.random.default_rng(seed)
    return g.integers(0, 256, (n, channels, res, res), dtype=np.uint8)


def _folder(images: np.ndarray, path: Path) -> Path:
    path.mkdir()
    for i, img in enumerate(images):
        Image.fromarray(img.transpose(1, 2, 0).squeeze()).save(path / f"{i:03d}.png")
    return path


@pytest.fixture
def pixel_features(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, ...]]:
    """Every feature extractor becomes "the first 16 pixels" (fast, no weights); returns the
    shapes of the batches it was given."""
    shapes: list[tuple[int, ...]] = []

    def build(self, kind: str, domain: str | None):
        def extract(images: torch.Tensor) -> dict[str, torch.Tensor]:
            shapes.append(tuple(images.shape))
            flat = images.float().flatten(1)[:, :16]
            return {"pool3": flat, "logits_unbiased": flat, "features": flat, "logits": flat}

        return extract, f"pixels-{kind}"

    monkeypatch.setattr(runner.FeatureBank, "_build", build)
    return shapes


class StagedG(nn.Module):
    """A generator built for `img_resolution` that outputs 8x8 now, like ProGAN at its 8x8 stage."""

    output_kind = "images"

    def __init__(self, img_resolution: int, img_channels: int, c_dim: int, z_dim: int = 8) -> None:
        super().__init__()
        self.z_dim, self.c_dim = z_dim, c_dim
        self.img_resolution, self.img_channels = img_resolution, img_channels
        self.fc = nn.Linear(z_dim, img_channels * 64)

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None, scale: float = 1.0):
        return torch.tanh(scale * self.fc(z)).reshape(-1, self.img_channels, 8, 8)


def _staged(img_resolution: int, img_channels: int, c_dim: int) -> nn.ModuleDict:
    return nn.ModuleDict({"G": StagedG(img_resolution, img_channels, c_dim), "D": nn.Linear(1, 1)})


# --- Item 9: the resolution samples are compared at, printed with every value.


def test_a_run_at_a_lower_stage_is_compared_at_the_resolution_it_outputs(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    pixel_features: list[tuple[int, ...]],
    capsys: pytest.CaptureFixture,
) -> None:
    register_tiny_models(monkeypatch)
    monkeypatch.setitem(MODELS._entries, TINY_IMAGE, Entry(TINY_IMAGE, _staged, "test model"))
    reals = _folder(_images(8, 32), tmp_path / "reals")
    run = make_run(tmp_path / "run", resolution=32, data=str(reals))
    assert main(["evaluate", str(run.path), "--metrics", "fid8", "--no-progress"]) == 0
    # The run's own data (32x32 on disk) was brought to the 8x8 that G outputs; nothing upscaled.
    assert pixel_features and all(shape[1:] == (3, 8, 8) for shape in pixel_features)
    out, err = capsys.readouterr()
    assert "fid8  " in out and out.rstrip().endswith("(at 8x8, 8 samples)")
    assert "at 8x8 (the resolution it outputs at its current stage; it grows to 32x32)" in err


def test_sample_folder_keeps_its_size_and_npy_reals_are_brought_to_it(
    tmp_path: Path, pixel_features: list[tuple[int, ...]], capsys: pytest.CaptureFixture
) -> None:
    # 24x24 samples: a training folder would be prepared at 16, the largest power of two.
    samples = _folder(_images(6, 24, seed=1), tmp_path / "samples")
    np.save(tmp_path / "reals.npy", _images(6, 48, seed=2))
    args = ["evaluate", str(samples), "--metrics", "kid", "--num", "6", "--no-progress"]
    assert main([*args, "--data", str(tmp_path / "reals.npy")]) == 0
    assert {shape[1:] for shape in pixel_features} == {(3, 24, 24)}
    out = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in out] == ["kid6", "kid6/std"]
    assert all(line.endswith("(at 24x24, 6 samples)") for line in out)


# --- Item 15: every metric checked before any work; plan, estimate, progress, classifier.


def test_missing_inception_weights_fail_before_any_sample_is_drawn(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    register_tiny_models(monkeypatch)
    reals = _folder(_images(8, 16), tmp_path / "reals")
    run = make_run(tmp_path / "run", resolution=16, data=str(reals))
    drawn = []
    original = sources.GeneratorSource.batches

    def counting(self, n: int, batch_size: int):
        drawn.append(n)
        return original(self, n, batch_size)

    monkeypatch.setattr(sources.GeneratorSource, "batches", counting)
    # ms_ssim comes first and could run, but fid's missing weights are found before it starts.
    assert main(["evaluate", str(run.path), "--metrics", "ms_ssim8,fid8", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("gankit evaluate: error: ") and "GANKIT_INCEPTION_WEIGHTS" in err
    assert drawn == []


def test_plan_estimate_and_progress_lines_when_not_on_a_terminal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    register_tiny_models(monkeypatch)
    run = make_run(tmp_path / "run", resolution=16)
    monkeypatch.setattr(progress_module, "PROGRESS_SECONDS", 0.0)  # a line per batch
    assert main(["evaluate", str(run.path), "--metrics", "ms_ssim2048", "--batch", "512"]) == 0
    out, err = capsys.readouterr()
    lines = err.splitlines()
    assert lines[0] == (
        f"evaluating G_ema of {run.path} at 16x16 against the dataset 'digits' (1,797 samples): "
        "ms_ssim2048 on 2,048 pairs"
    )
    assert lines[1].startswith("estimated time: about ") and "s for sampling" in lines[1]
    # 2,048 samples in batches of 512 (and 1,797 reals): a line after each batch but the last.
    progress = [line for line in lines if line.startswith("ms_ssim2048: samples: ")]
    assert [line.split()[2] for line in progress] == ["512/2,048", "1,024/2,048", "1,536/2,048"]
    assert progress[0].split(" (")[1].startswith("25%), ") and progress[0].endswith(" left")
    assert out.splitlines()[0].endswith("(at 16x16, 2,048 pairs)")


def test_first_classifier_metric_says_it_trains_the_classifier(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    from gankit.metrics import classifier

    trained = []

    def fake_pretrained(dataset: str, **kwargs) -> classifier.Classifier:
        trained.append(dataset)  # stands in for 3 epochs on MNIST
        model = classifier.Classifier(resolution=28)
        classifier.save_classifier(model, classifier.default_classifier_path(dataset))
        return model

    monkeypatch.setattr(classifier, "pretrained_classifier", fake_pretrained)
    np.save(tmp_path / "fakes.npy", _images(12, 28, channels=1, seed=3))
    np.save(tmp_path / "reals.npy", _images(12, 28, channels=1, seed=4))
    args = ["evaluate", str(tmp_path / "fakes.npy"), "--metrics", "clf_fid12,clf_is12",
            "--data", str(tmp_path / "reals.npy"), "--no-progress"]  # fmt: skip
    assert main(args) == 0
    err = capsys.readouterr().err
    path = classifier.default_classifier_path("mnist")
    assert err.count("training the mnist domain classifier") == 1 and str(path) in err
    assert "about 1.5 min" in err and trained == ["mnist"]
    monkeypatch.setattr(classifier, "pretrained_classifier", classifier.pretrained_classifier)
    assert main(args) == 0  # cached now: loaded, nothing said
    assert "training" not in capsys.readouterr().err


# --- Items 21 and 22: one error line for bad input; both sides take the same formats.


def test_results_are_printed_before_a_failing_json_write(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    np.save(tmp_path / "x.npy", _images(4, 16))
    (tmp_path / "file").write_text("a file where a folder is needed")
    json_path = tmp_path / "file" / "out.json"
    args = ["evaluate", str(tmp_path / "x.npy"), "--metrics", "ms_ssim4", "--no-progress"]
    assert main([*args, "--json", str(json_path)]) == 2
    out, err = capsys.readouterr()
    assert out.startswith("ms_ssim4/fake ")  # the computed value is not lost
    errors = [line for line in err.splitlines() if line.startswith("gankit evaluate: error:")]
    assert errors == [
        f"gankit evaluate: error: could not write the results to {json_path} ({tmp_path / 'file'} "
        "is a file, not a folder); they are printed above: pass --json with a path in a writable "
        "folder"
    ]
    assert main([*args, "--json", str(tmp_path / "ok" / "out.json")]) == 0
    assert set(json.loads((tmp_path / "ok" / "out.json").read_text())) == {"ms_ssim4/fake"}


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--num", "-5"], "--num must be a positive sample count; got -5"),
        (["--num", "0"], "--num must be a positive sample count; got 0"),
        (["--metrics", "fid0"], "'fid0' asks for 0 samples; give a positive count"),
        (["--batch", "0"], "--batch must be at least 1; got 0"),
    ],
)
def test_non_positive_counts_are_refused(
    tmp_path: Path, extra: list[str], message: str, capsys: pytest.CaptureFixture
) -> None:
    np.save(tmp_path / "ring.npy", np.zeros((10, 2), dtype=np.float32))
    args = ["evaluate", str(tmp_path / "ring.npy"), "--metrics", "modes", "--data", "ring8"]
    assert main([*args, *extra]) == 2
    err = capsys.readouterr().err
    assert err == f"gankit evaluate: error: {err.split('error: ', 1)[1]}" and message in err
    assert err.count("\n") == 1


def test_a_string_npy_is_one_error_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    np.save(tmp_path / "words.npy", np.array(["a", "bc"]))
    assert main(["evaluate", str(tmp_path / "words.npy"), "--metrics", "ms_ssim"]) == 2
    err = capsys.readouterr().err
    assert err == (
        f"gankit evaluate: error: {tmp_path / 'words.npy'} holds <U2 values; expected uint8 "
        "images [N, C, H, W] or float points [N, 2] (as `gankit generate --out samples.npy` "
        "writes)\n"
    )


def test_skip_bad_images_for_samples_and_data_folders(
    tmp_path: Path, pixel_features: list[tuple[int, ...]], capsys: pytest.CaptureFixture
) -> None:
    samples = _folder(_images(5, 16, seed=5), tmp_path / "samples")
    reals = _folder(_images(5, 16, seed=6), tmp_path / "reals")
    for folder in (samples, reals):
        (folder / "broken.png").write_bytes(b"not a png")
    args = ["evaluate", str(samples), "--metrics", "fid5", "--data", str(reals), "--no-progress"]
    assert main(args) == 2
    assert "--skip-bad-images" in capsys.readouterr().err  # the advice names a real flag...
    assert main([*args, "--skip-bad-images"]) == 0  # ...which evaluate accepts
    assert capsys.readouterr().out.startswith("fid5 ")
    assert len(pixel_features) == 2  # five good images on each side


def test_npy_reals_of_another_size_and_channels(tmp_path: Path) -> None:
    from gankit.evaluate import evaluate_target

    np.save(tmp_path / "fakes.npy", _images(6, 16, channels=1, seed=7))
    big = _images(6, 32, channels=3, seed=8)
    np.save(tmp_path / "reals.npy", big)
    evaluation = evaluate_target(
        str(tmp_path / "fakes.npy"),
        "ms_ssim6",
        data=str(tmp_path / "reals.npy"),
        progress=False,
        log=lambda line: None,
    )
    # The reals were brought to the samples' 16x16 greyscale, as a dataset would be.
    assert set(evaluation.results) == {"ms_ssim6/fake", "ms_ssim6/real"}
    assert evaluation.resolution == "16x16"
    np.save(tmp_path / "small.npy", _images(6, 8, seed=9))
    with pytest.raises(Exception, match="gankit never upscales"):
        evaluate_target(str(tmp_path / "fakes.npy"), "ms_ssim6", data=str(tmp_path / "small.npy"))


# --- Item 16: gankit cache.


def _fill_cache(root: Path) -> None:
    for part, size in (("prepared/digits-1/images.npy", 3000), ("metrics/inception-a.npz", 1500),
                       ("metrics/inception-b.npz", 500), ("weights/w.pth", 2_000_000)):  # fmt: skip
        (root / part).parent.mkdir(parents=True, exist_ok=True)
        (root / part).write_bytes(b"x" * size)


def test_cache_lists_and_clears(capsys: pytest.CaptureFixture) -> None:
    from gankit.paths import cache_dir

    root = cache_dir()
    assert main(["cache"]) == 0
    assert capsys.readouterr().out == f"the cache {root} is empty\n"
    assert main(["cache", "--clear"]) == 0  # a missing cache is not an error
    assert capsys.readouterr().out == f"nothing to remove in {root}\n"
    _fill_cache(root)
    assert main(["cache"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"{root}:"
    assert [line.split()[:3] for line in lines[1:]] == [
        ["prepared/", "3.0", "KB"], ["metrics/", "2.0", "KB"], ["weights/", "2.0", "MB"],
        ["total", "2.0", "MB"],
    ]  # fmt: skip
    assert "2 files" in lines[2] and "features of real images" in lines[2]
    assert main(["cache", "--clear", "metrics"]) == 0
    assert capsys.readouterr().out == f"removed {root / 'metrics'} (2.0 KB)\n"
    assert sorted(p.name for p in root.iterdir()) == ["prepared", "weights"]
    assert main(["cache", "--clear", "metrix"]) == 2
    assert "no part 'metrix'; name one of classifiers, data, metrics" in capsys.readouterr().err
    assert main(["cache", "--clear"]) == 0
    removed = capsys.readouterr().out.splitlines()
    assert removed == [
        f"removed {root / 'prepared'} (3.0 KB)",
        f"removed {root / 'weights'} (2.0 MB)",
    ]
    assert list(root.iterdir()) == []


# --- Translation runs (CycleGAN): each direction on the translated test set.


def _unpaired_with_tests(root: Path) -> Path:
    """trainA/testA grey, trainB/testB RGB, 8 px; 20 and 24 test images."""
    counts = {"trainA": 6, "trainB": 6, "testA": 20, "testB": 24}
    root.mkdir()
    for k, (folder, count) in enumerate(counts.items()):
        _folder(_images(count, 8, 1 if folder.endswith("A") else 3, seed=k), root / folder)
    return root


def test_a_translation_run_is_scored_on_its_translated_test_set_per_direction(
    tmp_path: Path, pixel_features: list, capsys: pytest.CaptureFixture
) -> None:
    from gankit.metrics.fid import fid_from_features
    from gankit.translate import load_translator

    data, run = _unpaired_with_tests(tmp_path / "ab"), tmp_path / "run"
    arch = ["ngf=2", "ndf=2", "n_blocks=1", "netD=n_layers", "n_layers_d=1"]
    sets = [x for a in arch for x in ("--set", f"model.arch.{a}")]
    train = ["train", "cyclegan", "--data", str(data), "--out", str(run), "--kimg", "0.004"]
    assert main([*train, "--device", "cpu", "--no-progress", *sets]) == 0
    capsys.readouterr()
    out_json = tmp_path / "scores.json"
    args = ["evaluate", str(run), "--metrics", "fid,kid", "--no-progress", "--json", str(out_json)]
    assert main([*args, "--device", "cpu"]) == 0
    results = json.loads(out_json.read_text())
    assert {"fid20/a2b", "kid20/a2b", "fid24/b2a", "kid24/b2a"} <= set(results)
    # Every image of the target's test set, as pytorch-fid on the two folders (CUT's protocol).
    assert results["fid20/real_samples/a2b"] == 24 and results["fid24/real_samples/b2a"] == 20
    err = capsys.readouterr().err
    assert f"G_ab of {data / 'testA'} at 8x8 against {data / 'testB'} (24 samples)" in err

    # fid20/a2b by hand: G_ab of every testA image against every testB image, same features.
    G = load_translator(run, "a2b", device="cpu")
    test_a = torch.from_numpy(_images(20, 8, 1, seed=2)).float() / 127.5 - 1
    fakes = ((G(test_a) + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)
    reals = torch.from_numpy(_images(24, 8, 3, seed=3))
    expected = fid_from_features(reals.float().flatten(1)[:, :16], fakes.float().flatten(1)[:, :16])
    assert results["fid20/a2b"] == pytest.approx(expected, rel=1e-6)


def test_a_translation_run_without_test_folders_uses_its_training_images(
    tmp_path: Path, pixel_features: list, capsys: pytest.CaptureFixture
) -> None:
    data, run = tmp_path / "ab", tmp_path / "run"
    data.mkdir()
    _folder(_images(12, 8, 3, seed=0), data / "trainA")
    _folder(_images(10, 8, 3, seed=1), data / "trainB")
    arch = ["ngf=2", "ndf=2", "n_blocks=1", "netD=pixel"]
    sets = [x for a in arch for x in ("--set", f"model.arch.{a}")]
    train = ["train", "cyclegan", "--data", str(data), "--out", str(run), "--kimg", "0.002"]
    assert main([*train, "--device", "cpu", "--no-progress", *sets]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(run), "--metrics", "kid", "--no-progress", "--device", "cpu"]) == 0
    captured = capsys.readouterr()
    assert "no test split" in captured.err and "training images instead" in captured.err
    assert "kid12/a2b" in captured.out and "kid10/b2a" in captured.out
