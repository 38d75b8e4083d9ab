"""The command line end to end on tiny settings: train, generate, resume, list, dry run, errors."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gankit.cli import main


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One tiny ProGAN run shared by the generate tests (grows 4 -> 16 in 20 iterations)."""
    from fake_runs import tiny_progan_overrides

    out = tmp_path_factory.mktemp("cli") / "run"
    assert main(tiny_progan_overrides(out)) == 0
    return out


def test_train_leaves_every_promised_output(trained_run: Path) -> None:
    names = {p.relative_to(trained_run).as_posix() for p in trained_run.rglob("*") if p.is_file()}
    for expected in (
        "config.yaml",
        "log.txt",
        "stats.jsonl",
        "samples/reals.png",
        "samples/final.png",
        "samples/progress.gif",
        "plots/losses.png",
        "samples/stage-16x16-stable.png",
        "checkpoints/ckpt-000000000160.pt",
    ):
        assert expected in names
    assert {n for n in names if n.startswith("samples/stage-")} == {
        f"samples/stage-{s}.png"
        for s in ("4x4-stable", "8x8-fade", "8x8-stable", "16x16-fade", "16x16-stable")
    }
    log = (trained_run / "log.txt").read_text()
    assert "data: digits" in log and "done. In" in log
    last = json.loads((trained_run / "stats.jsonl").read_text().splitlines()[-1])
    assert last["kimg"] == 0.16 and last["resolution"] == 16


def test_generate_grid_folder_and_npy(
    trained_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    assert (
        main(
            [
                "generate",
                str(trained_run),
                "--num",
                "6",
                "--seed",
                "3",
                "--out",
                str(tmp_path / "g.png"),
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    assert Image.open(tmp_path / "g.png").size == (3 * 16, 2 * 16)
    assert (
        main(["generate", str(trained_run), "--num", "5", "--out", str(tmp_path / "each") + "/"])
        == 0
    )
    assert sorted(p.name for p in (tmp_path / "each").iterdir()) == [
        f"{i:06d}.png" for i in range(5)
    ]
    assert (
        main(
            [
                "generate",
                str(trained_run),
                "--num",
                "6",
                "--seed",
                "3",
                "--out",
                str(tmp_path / "a.npy"),
            ]
        )
        == 0
    )
    array = np.load(tmp_path / "a.npy")
    assert array.shape == (6, 1, 16, 16) and array.dtype == np.uint8
    # The same seed gives the same images; the grid holds exactly those pixels.
    assert (
        main(
            [
                "generate",
                str(trained_run / "checkpoints" / "ckpt-000000000160.pt"),
                "--num",
                "6",
                "--seed",
                "3",
                "--out",
                str(tmp_path / "b.npy"),
            ]
        )
        == 0
    )
    np.testing.assert_array_equal(np.load(tmp_path / "b.npy"), array)
    grid = np.asarray(Image.open(tmp_path / "g.png"))
    np.testing.assert_array_equal(grid[16:32, 32:48], array[5, 0])
    assert (
        main(
            [
                "generate",
                str(trained_run),
                "--num",
                "6",
                "--seed",
                "4",
                "--out",
                str(tmp_path / "c.npy"),
            ]
        )
        == 0
    )
    assert not np.array_equal(np.load(tmp_path / "c.npy"), array)
    assert "wrote 6 images (16x16)" in capsys.readouterr().out


def test_list_shows_every_registry(capsys: pytest.CaptureFixture) -> None:
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for section in ("models:", "recipes:", "datasets:", "metrics:"):
        assert section in out
    assert "progan" in out and "digits" in out


def test_dry_run_prints_the_resolved_config_and_writes_nothing(
    tmp_path: Path, tiny_run_args: Callable, capsys: pytest.CaptureFixture
) -> None:
    import yaml

    args = [a for a in tiny_run_args(tmp_path / "dry") if a != "--kimg" and a != "0.16"]
    assert main([*args, "--dry-run"]) == 0
    resolved = yaml.safe_load(capsys.readouterr().out)
    # kimg defaults to the end of the schedule: stable 32 + 2 x (fade 32 + stable 32) images.
    assert resolved["train"]["kimg"] == pytest.approx(0.16)
    assert resolved["data"]["resolution"] == 16 and resolved["data"]["channels"] == 1
    assert resolved["train"]["ema_kimg"] == 10.0 and resolved["model"]["arch"]["channel_max"] == 16
    assert not (tmp_path / "dry").exists()


def test_help_explains_the_commands(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "--resume RUN_DIR" in out and "--set KEY=VALUE" in out and "torchrun" in out


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--set", "train.batchsize=4"], r"unknown config key train\.'batchsize'"),
        (["--set", "train.kimg=lots"], r"train\.kimg: expected"),
        (["--set", "model.arch.chanel_max=4"], r"model\.arch\.'chanel_max'.*Did you mean"),
        (["--resolution", "24"], r"power-of-two resolution"),
        (["--threads", "0"], r"train\.threads must be >= 1"),
        (["--batch-gpu", "-1"], r"train\.batch_gpu must be 0 \(the whole batch at once\) or more"),
    ],
)
def test_bad_configuration_is_a_clear_error(
    tmp_path: Path,
    tiny_run_args: Callable,
    capsys: pytest.CaptureFixture,
    extra: list[str],
    message: str,
) -> None:
    assert main([*tiny_run_args(tmp_path / "bad"), *extra]) == 2
    import re

    assert re.search(message, capsys.readouterr().err)


def test_threads_sets_torchs_cpu_threads_for_the_run_and_its_resume(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    import torch
    import yaml

    from gankit.train import run

    monkeypatch.setattr(run, "busy_cores", lambda: 1.0)  # one core of two kept busy
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    before = torch.get_num_threads()
    out = tmp_path / "ring"
    try:
        common = ["--no-progress", "--device", "cpu", "--batch", "20"]
        assert (
            main(
                [
                    "train",
                    "gan",
                    "--data",
                    "ring8",
                    "--kimg",
                    "0.04",
                    "--out",
                    str(out),
                    *common,
                    "--threads",
                    "2",
                ]
            )
            == 0
        )
        assert torch.get_num_threads() == 2
        assert yaml.safe_load((out / "config.yaml").read_text())["train"]["threads"] == 2
        assert main(["train", "--resume", str(out), "--kimg", "0.08", "--threads", "1"]) == 0
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    log = (out / "log.txt").read_text()
    assert "on cpu (2 threads)" in log and "on cpu (1 thread)" in log
    # The busy CPU is named for the 2-thread run, not for its 1-thread resume.
    assert log.count("the CPU is busy (other work keeps 1.0 of 2 cores busy) and training") == 1


def test_the_busy_cpu_warning_counts_threads_against_idle_cores() -> None:
    from gankit.train.threads import busy_cpu_warning

    assert busy_cpu_warning(2, 0.3, 2) is None  # an idle machine
    assert busy_cpu_warning(2, 1.0, 2) is not None  # one core busy: one of two threads waits
    assert busy_cpu_warning(4, 4.2, 8) is None  # 4 threads, about 4 idle cores
    assert "keeps 5.0 of 8 cores busy" in busy_cpu_warning(4, 5.0, 8)
    assert busy_cpu_warning(1, 9.0, 2) is None  # one thread waits for nobody
    assert busy_cpu_warning(2, None, 2) is None  # not measured (no /proc/stat)


@pytest.mark.skipif(not Path("/proc/stat").exists(), reason="needs Linux's /proc/stat")
def test_busy_cores_counts_a_process_that_spins_on_one_core() -> None:
    import os
    import subprocess
    import sys

    from gankit.train.threads import busy_cores

    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.3)  # started and spinning
        during = busy_cores(0.5)
    finally:
        spinner.kill()
        spinner.wait()
    # At least the spinner's core (other tests may keep the other cores busy meanwhile).
    assert 0.7 <= during <= os.cpu_count() + 0.05


def test_busy_cores_from_the_cpu_ticks_between_two_readings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    from gankit.train import threads

    stat = tmp_path / "stat"  # /proc/stat's first line: user nice system idle iowait irq ...
    stat.write_text(
        "cpu  122032 1183916 36480 522762 833 0 167 1282 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\n"
    )
    assert threads._cpu_times(str(stat)) == (1867472, 523595)
    readings = iter([(10_000, 6_000), (10_400, 6_100)])  # 400 ticks, 100 of them idle
    monkeypatch.setattr(threads, "_cpu_times", lambda: next(readings))
    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    assert threads.busy_cores(0.0) == pytest.approx(3.0)  # 3/4 of the time busy, on 4 cores


def test_unknown_recipe_suggests_a_name(capsys: pytest.CaptureFixture) -> None:
    assert main(["train", "pogan"]) == 2
    assert "Did you mean 'progan'" in capsys.readouterr().err


def test_an_existing_run_is_not_overwritten_and_resume_needs_checkpoints(
    trained_run: Path, tmp_path: Path, tiny_run_args: Callable, capsys: pytest.CaptureFixture
) -> None:
    assert main(tiny_run_args(trained_run)) == 2
    assert "--resume" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["train", "--resume", str(tmp_path / "empty")]) == 2
    assert "not a gankit run directory" in capsys.readouterr().err


def test_resume_with_a_longer_kimg_rederives_the_default_intervals(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import yaml

    out = tmp_path / "ring"
    common = ["--no-progress", "--device", "cpu", "--batch", "20", "--threads", "1"]
    first = ["train", "gan", "--data", "ring8", "--kimg", "0.1", "--out", str(out), *common]
    assert main([*first, "--sample-kimg", "0.005"]) == 0
    saved = yaml.safe_load((out / "config.yaml").read_text())["train"]
    # 0.1 kimg at batch 20: ticks every 1/100 and snapshots every 1/4 of the run, but at least
    # a batch apart (0.001 and 0.02 -> 0.02); samples chosen by hand.
    assert (saved["tick_kimg"], saved["sample_kimg"], saved["snapshot_kimg"]) == (
        0.02,
        0.005,
        0.02,
    )
    assert main(["train", "--resume", str(out), "--kimg", "1"]) == 0
    resumed = yaml.safe_load((out / "config.yaml").read_text())["train"]
    # 1 kimg: tick 0.02 (a batch) and snapshot (and metrics) 0.2; the hand-chosen sample
    # interval stays.
    assert resumed["tick_kimg"] == 0.02 and resumed["snapshot_kimg"] == 0.2
    assert resumed["metrics_kimg"] == 0.2 and resumed["sample_kimg"] == 0.005
    log = (out / "log.txt").read_text()
    resumed_log = log[log.index("resumed from") :]
    # Snapshots at 0.2, 0.4, 0.6, 0.8 and 1.0 kimg; at the old 0.02 there would be 45.
    assert resumed_log.count("snapshot ckpt-") == 5
    assert "ticks every 0.02 kimg, samples every 0.005, snapshots every 0.2" in log
    # A shorter --kimg than the run has trained is refused, and config.yaml stays as it was.
    capsys.readouterr()
    assert main(["train", "--resume", str(out), "--kimg", "0.5"]) == 2
    assert "already trained 1 kimg, more than --kimg 0.5" in capsys.readouterr().err
    assert yaml.safe_load((out / "config.yaml").read_text())["train"]["kimg"] == 1
    # The saved config as a new run's file, ten times longer: the same rule.
    capsys.readouterr()
    copy = ["train", str(out / "config.yaml"), "--kimg", "10", "--out", str(tmp_path / "copy")]
    assert main([*copy, "--dry-run"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)["train"]
    assert (printed["tick_kimg"], printed["sample_kimg"], printed["snapshot_kimg"]) == (
        0.1,
        0.005,
        2.0,
    )


def test_rederive_intervals_keeps_what_was_given_and_what_is_not_a_default() -> None:
    from gankit.train.resume import rederive_intervals

    saved = {
        "train": {
            "kimg": 40.0,
            "batch_size": 16,
            "tick_kimg": 0.2,  # the default for 40 kimg (0.4 -> 0.2)
            "sample_kimg": 2.0,  # the default (4 -> 2)
            "snapshot_kimg": 3.0,  # chosen by hand (the default is 10 -> 10)
            "metrics_kimg": 3.0,  # followed the hand-chosen snapshots
        }
    }
    train = rederive_intervals(saved, 4000.0, {"kimg", "sample_kimg"})["train"]
    assert train == {
        "kimg": 40.0,  # the override replaces it later
        "batch_size": 16,
        "tick_kimg": None,
        "sample_kimg": 2.0,  # given on the resume's command line: its value wins there
        "snapshot_kimg": 3.0,
        "metrics_kimg": 3.0,
    }
    assert rederive_intervals(saved, 40.0, {"kimg"}) is saved  # same length: nothing changes
    broken = {"train": {"kimg": "forty", "tick_kimg": 0.2}}  # the type check reports this later
    assert rederive_intervals(broken, 4000.0, {"kimg"}) is broken


def test_intervals_saved_by_earlier_releases_are_rederived_too() -> None:
    """Before the intervals followed the batch, samples came every 1/25 and snapshots every
    1/10 of the run: a run saved then and resumed longer re-derives those as defaults."""
    from gankit.train.resume import rederive_intervals

    saved = {"train": {"kimg": 40.0, "batch_size": 16, "sample_kimg": 1.0, "snapshot_kimg": 2.0,
                       "metrics_kimg": 2.0}}  # fmt: skip
    train = rederive_intervals(saved, 4000.0, {"kimg"})["train"]
    assert train["sample_kimg"] is None and train["snapshot_kimg"] is None
    assert train["metrics_kimg"] is None


# StyleGAN2's augmentation flags (the official --aug, --p, --target, --augpipe), on a tiny arch.
TINY_STYLEGAN2 = [
    "train", "stylegan2", "--data", "digits", "--resolution", "8", "--batch", "4",
    "--device", "cpu", "--no-progress", "--set", "train.grid_size=4",
    "--set", "model.arch.z_dim=4", "--set", "model.arch.w_dim=4",
    "--set", "model.arch.mapping_layers=2", "--set", "model.arch.channel_base=16",
    "--set", "model.arch.channel_max=2",
]  # fmt: skip


@pytest.mark.slow
def test_augmentation_flags_land_in_the_recipe_arguments(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    import torch
    import yaml

    from gankit.train.checkpoint import list_checkpoints, load_checkpoint

    out = tmp_path / "fixed"
    flags = ["--aug", "fixed", "--p", "0.25", "--augpipe", "bg"]
    assert main([*TINY_STYLEGAN2, "--kimg", "0.004", "--out", str(out), *flags]) == 0
    args = yaml.safe_load((out / "config.yaml").read_text())["recipe"]["args"]
    assert (args["aug"], args["p"], args["augpipe"], args["target"]) == ("fixed", 0.25, "bg", 0.6)
    state = load_checkpoint(list_checkpoints(out / "checkpoints")[-1])
    assert torch.equal(state["recipe"]["ada"]["p"], torch.tensor(0.25))
    assert "augmentation bg at fixed p 0.25" in (out / "log.txt").read_text()
    capsys.readouterr()  # the run's log lines
    # A flag wins over the config's default, and --set after it wins over the flag.
    dry = [*TINY_STYLEGAN2, "--out", str(tmp_path / "dry"), "--dry-run", "--aug", "diffaug"]
    assert main([*dry, "--target", "0.8", "--set", "recipe.args.p=0.5"]) == 0
    args = yaml.safe_load(capsys.readouterr().out)["recipe"]["args"]
    assert (args["aug"], args["target"], args["p"], args["augpipe"]) == ("diffaug", 0.8, 0.5, "bgc")


def test_cond_trains_a_conditional_stylegan2_on_labelled_data(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    from gankit.generate import labels_path
    from gankit.train.checkpoint import list_checkpoints, load_checkpoint

    out = tmp_path / "cond"
    assert main([*TINY_STYLEGAN2, "--out", str(out), "--kimg", "0.008", "--cond"]) == 0
    state = load_checkpoint(list_checkpoints(out / "checkpoints")[-1])
    assert state["model"]["c_dim"] == 10  # sklearn's digits: ten classes
    # G embeds the label (official `embed`), D projects onto it (official `mapping` of c)
    assert state["nets"]["G"]["mapping.embed.weight"].shape[1] == 10
    assert any(k.startswith("mapping.") for k in state["nets"]["D"])
    images = tmp_path / "three.npy"
    assert main(["generate", str(out), "--class", "3", "--num", "2", "--out", str(images),
                 "--device", "cpu"]) == 0  # fmt: skip
    assert np.load(labels_path(images)).tolist() == [3, 3]
    capsys.readouterr()
    # Unlabelled data (a folder of images): one line naming the problem.
    folder = tmp_path / "faces"
    folder.mkdir()
    for i in range(4):
        Image.fromarray(np.full((8, 8, 3), 60 * i, np.uint8)).save(folder / f"{i}.png")
    assert (
        main([*TINY_STYLEGAN2, "--out", str(tmp_path / "x"), "--cond", "--data", str(folder)]) == 2
    )
    assert "has no class labels" in capsys.readouterr().err


@pytest.mark.parametrize(
    "flag",
    [["--aug", "ada"], ["--p", "0.2"], ["--target", "0.5"], ["--augpipe", "bgc"], ["--cond"]],
)
def test_augmentation_flags_are_refused_on_a_recipe_without_them(
    trained_run: Path,
    tmp_path: Path,
    tiny_run_args: Callable,
    capsys: pytest.CaptureFixture,
    flag: list[str],
) -> None:
    out = tmp_path / "progan"
    assert main([*tiny_run_args(out), *flag]) == 2
    err = capsys.readouterr().err
    name = flag[0].removeprefix("--")
    owner = (
        "--cond is an option of stylegan2 and stylegan"
        if name == "cond"
        else ("it is a stylegan2 option")
    )
    assert err == (
        f"gankit train: error: {flag[0]} sets recipe.args.{name}, which recipe progan does not "
        f"have: {owner}; drop {flag[0]} or train a recipe that has it\n"
    )
    assert not out.exists()
    # On --resume the recipe is the run's.
    before = sorted(p.name for p in (trained_run / "checkpoints").iterdir())
    assert main(["train", "--resume", str(trained_run), *flag]) == 2
    assert "which recipe progan does not have" in capsys.readouterr().err
    assert sorted(p.name for p in (trained_run / "checkpoints").iterdir()) == before


def test_help_explains_the_augmentation_flags(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "--aug {ada,noaug,fixed,diffaug}" in out and "--p P" in out
    assert "--target T" in out and "--augpipe NAME" in out
    assert "recipe.args.cond, .aug, .p, .target, .augpipe" in out and "refuses the flag" in out
    assert "--cond" in out and "class labels" in out
    # A bad mode is argparse's error, a bad pipe the recipe's, each naming the value.
    with pytest.raises(SystemExit) as exit_info:
        main([*TINY_STYLEGAN2, "--aug", "adaptive"])
    assert exit_info.value.code == 2 and "invalid choice: 'adaptive'" in capsys.readouterr().err
    assert main([*TINY_STYLEGAN2, "--augpipe", "bgcx", "--dry-run"]) == 2
    assert "recipe.args.augpipe: 'bgcx' is not one of" in capsys.readouterr().err
