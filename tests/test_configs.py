"""The shipped configs in configs/: each resolves, and the CPU ones grow to 32x32 within their run."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from gankit.cli import main
from gankit.config import config_from_dict, load_yaml
from gankit.models.progan import build
from gankit.recipes.progan import ProGANRecipe

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def _recipe(name: str) -> tuple[ProGANRecipe, float]:
    """The progan recipe a config builds (1 channel: the schedule does not depend on it)."""
    config = config_from_dict(load_yaml(CONFIGS / name))
    resolution = config.data.resolution or 32
    nets = build(resolution, 1, **config.model.arch)
    recipe = ProGANRecipe(nets, config.train.batch_size, **config.recipe.args)
    return recipe, config.train.kimg


@pytest.mark.parametrize("name", sorted(p.name for p in CONFIGS.glob("*.yaml")))
def test_every_config_resolves(name: str) -> None:
    config = config_from_dict(load_yaml(CONFIGS / name))
    family = name.split("-")[0]
    assert config.model.name == family and config.recipe.name == family


def test_the_stylegan2_mnist_config_resolves_on_mnist_to_what_its_comment_says(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """The values its header promises (and RESULTS measured), after the auto configuration and
    the data's facts are applied: a conditional net at 32 px, batch 32, 60 kimg capped at 20 min."""
    out = tmp_path / "run"
    args = ["train", str(CONFIGS / "stylegan2-mnist32-cpu.yaml"), "--data-root", str(shared_data)]
    assert main([*args, "--out", str(out), "--dry-run"]) == 0
    resolved = yaml.safe_load(capsys.readouterr().out)
    args, arch, train = resolved["recipe"]["args"], resolved["model"]["arch"], resolved["train"]
    assert args["cond"] is True and args["aug"] == "noaug"
    assert (args["lr"], args["r1_gamma"], args["pl_weight"], args["style_mixing_prob"]) == (
        0.0025,
        10,
        0,
        0,
    )
    assert (arch["channel_base"], arch["channel_max"], arch["mapping_layers"]) == (1024, 64, 2)
    assert resolved["data"]["resolution"] == 32
    assert (train["batch_size"], train["kimg"], train["max_minutes"]) == (32, 60, 20)
    assert (train["ema_kimg"], train["ema_rampup"]) == (10.0, 0.05)


def test_the_stylegan_mnist_config_resolves_to_what_its_comment_says(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """Row F's official training with the header's changes; 32x32 from 16 kimg, 60 kimg in 25 min."""
    out = tmp_path / "run"
    args = ["train", str(CONFIGS / "stylegan-mnist32-cpu.yaml"), "--data-root", str(shared_data)]
    assert main([*args, "--out", str(out), "--dry-run"]) == 0
    resolved = yaml.safe_load(capsys.readouterr().out)
    args, arch, train = resolved["recipe"]["args"], resolved["model"]["arch"], resolved["train"]
    assert (args["ladder"], args["cond"], args["loss"], args["lr"]) == (
        "F",
        True,
        "logistic",
        0.005,
    )
    assert (args["r1_gamma"], args["style_mixing_prob"], args["batch_sizes"]) == (10, 0.9, {})
    assert (arch["channel_base"], arch["channel_max"], arch["mapping_layers"]) == (1024, 64, 8)
    assert arch["use_styles"] and arch["const_input"] and arch["use_noise"] and arch["blur"]
    assert resolved["data"]["resolution"] == 32
    assert (train["batch_size"], train["kimg"], train["max_minutes"]) == (32, 60, 25)
    assert (train["ema_kimg"], train["ema_rampup"]) == (10.0, 0.05)
    from gankit.recipes.progan import _schedule

    schedule = _schedule([4, 8, 16, 32], 32, start_resolution=8, batch_sizes={},
                         phase_kimg=args["phase_kimg"])  # fmt: skip
    assert [(r, n / 1000) for r, n in schedule.starts()] == [(8, 0), (16, 4), (32, 16)]
    assert schedule.stage(60_000 - 1).resolution == 32


@pytest.mark.parametrize("name", ["progan-digits-demo.yaml", "progan-folder-cpu.yaml"])
def test_cpu_configs_are_fully_grown_at_the_end_of_their_run(name: str) -> None:
    recipe, kimg = _recipe(name)
    schedule = recipe.schedule_
    assert schedule.grown_nimg == round(kimg * 1000)
    last = schedule.stage(round(kimg * 1000) - 1)
    assert (last.resolution, last.alpha) == (32, 1.0)
    # 32x32 is reached with a real fade-in and a stable phase of its own, not squeezed to nothing.
    fade, stable = schedule.phases()[-1]
    assert fade >= 0.05 * kimg * 1000 and stable >= 0.05 * kimg * 1000


def test_demo_config_keeps_the_default_generator_average() -> None:
    """The ema ramp-up makes short runs safe, so the demo overrides no ema_kimg (issue 24)."""
    config = config_from_dict(load_yaml(CONFIGS / "progan-digits-demo.yaml"))
    assert config.train.ema_kimg is None and config.train.ema_rampup is None


def test_folder_config_fits_its_growth_with_grown_kimg() -> None:
    """The paper's equal fade and stable phases, scaled by one factor to the run's length."""
    recipe, kimg = _recipe("progan-folder-cpu.yaml")
    assert recipe.grown_kimg == kimg
    fades_and_stables = [n for phase in recipe.schedule_.phases()[1:] for n in phase]
    assert max(fades_and_stables) - min(fades_and_stables) <= 1


def test_the_cyclegan_config_resolves_to_what_its_comment_says(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """The official recipe at half widths, 32 px, 6 kimg in at most 20 minutes; on grey A and
    RGB B the identity loss is off (its comparison needs equal channels)."""
    from two_domain import write_unpaired_folder

    data = write_unpaired_folder(tmp_path / "ab", count=4, size=32)
    args = ["train", str(CONFIGS / "cyclegan-small-cpu.yaml"), "--data", str(data)]
    assert main([*args, "--out", str(tmp_path / "run"), "--dry-run"]) == 0
    resolved = yaml.safe_load(capsys.readouterr().out)
    args, arch, train = resolved["recipe"]["args"], resolved["model"]["arch"], resolved["train"]
    assert (args["gan_mode"], args["lambda_A"], args["lambda_B"], args["pool_size"]) == (
        "lsgan", 10.0, 10.0, 50,
    )  # fmt: skip
    assert (args["lambda_identity"], args["load_size"], args["lr"], args["beta1"]) == (
        0.0, 36, 2e-4, 0.5,
    )  # fmt: skip
    assert (arch["ngf"], arch["ndf"], arch["n_blocks"], arch["netD"]) == (32, 32, 6, "basic")
    assert resolved["data"]["resolution"] == 32
    assert (train["batch_size"], train["kimg"], train["max_minutes"]) == (1, 6, 20)
