"""A run survives what a user does to it: resume overrides, damaged config files, a second
training on the same folder, NaN weights, Ctrl-C and SIGTERM, and each is one clear line."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
import yaml

from gankit.cli import main
from gankit.errors import ConfigError, TrainingDivergedError
from gankit.train import checkpoint as ckpt
from gankit.train.rundir import RunLock, truncate_stats

RING = ["--data", "ring8", "--batch", "20", "--no-progress", "--device", "cpu", "--threads", "1"]


def _ring_run(out: Path, kimg: float = 0.06, *extra: str) -> list[str]:
    return ["train", "gan", *RING, "--kimg", str(kimg), "--out", str(out), *extra]


@pytest.fixture(scope="module")
def progan_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny ProGAN run with channel_max 16 and two checkpoints (0.08 and 0.16 kimg)."""
    from fake_runs import tiny_progan_overrides

    out = tmp_path_factory.mktemp("progan") / "run"
    assert main(tiny_progan_overrides(out)) == 0
    return out


def _copy_run(run: Path, dest: Path) -> Path:
    import shutil

    shutil.copytree(run, dest)
    (dest / ".lock").unlink(missing_ok=True)
    return dest


def test_resume_with_a_new_model_width_is_one_line_and_leaves_the_run_usable(
    progan_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = _copy_run(progan_run, tmp_path / "run")
    before = (run / "config.yaml").read_bytes()
    capsys.readouterr()
    code = main(["train", "--resume", str(run), "--set", "model.arch.channel_max=64"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert "cannot change model.arch.channel_max when resuming: the run was saved with 16" in err
    assert "the override gives 64" in err
    assert (run / "config.yaml").read_bytes() == before
    assert main(["train", "--resume", str(run), "--kimg", "0.176"]) == 0


def test_a_config_yaml_edited_to_another_width_is_caught_against_the_checkpoint(
    progan_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = _copy_run(progan_run, tmp_path / "run")
    text = (run / "config.yaml").read_text().replace("channel_max: 16", "channel_max: 32")
    (run / "config.yaml").write_text(text)
    capsys.readouterr()
    assert main(["train", "--resume", str(run)]) == 2
    err = capsys.readouterr().err
    assert "model.arch.channel_max = 32, but checkpoint ckpt-000000000160.pt" in err
    assert "holds networks with 16" in err and "Traceback" not in err
    assert (run / "config.yaml").read_text() == text


def test_learning_rate_and_length_may_change_on_resume(progan_run: Path, tmp_path: Path) -> None:
    run = _copy_run(progan_run, tmp_path / "run")
    args = ["train", "--resume", str(run), "--kimg", "0.176", "--set", "recipe.args.lr=0.0005"]
    assert main(args) == 0
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["recipe"]["args"]["lr"] == 0.0005 and saved["train"]["kimg"] == 0.176


@pytest.mark.parametrize(
    ("cut", "message"),
    [
        (lambda text: text[: text.index("train:")], "has no train: section"),
        (lambda text: "", "is empty"),
        (lambda text: text.replace("  kimg: 0.16\n", ""), "train: lacks kimg"),
    ],
)
def test_a_cut_or_empty_config_yaml_is_refused_not_filled_with_defaults(
    progan_run: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    cut: Callable[[str], str],
    message: str,
) -> None:
    run = _copy_run(progan_run, tmp_path / "run")
    damaged = cut((run / "config.yaml").read_text())
    (run / "config.yaml").write_text(damaged)
    kept = sorted(p.name for p in (run / "checkpoints").iterdir())
    capsys.readouterr()
    assert main(["train", "--resume", str(run)]) == 2
    err = capsys.readouterr().err
    assert message in err and "cut short by a full disk" in err
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == kept
    assert (run / "config.yaml").read_text() == damaged


def test_config_yaml_is_written_atomically(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from gankit import atomic
    from gankit.config import Config, save_config

    path = tmp_path / "config.yaml"
    save_config(Config(), path)
    before = path.read_text()

    def full_disk(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(atomic.os, "fsync", full_disk)
    changed = Config()
    changed.train.kimg = 20.0
    with pytest.raises(OSError):
        save_config(changed, path)
    assert path.read_text() == before and [p.name for p in tmp_path.iterdir()] == ["config.yaml"]


def test_runs_saved_before_the_ema_ramp_up_resume_without_it(tmp_path: Path) -> None:
    from gankit.config import Config, config_to_dict
    from gankit.train.resume import load_run_config

    saved = config_to_dict(Config())
    saved["train"].update(kimg=20.0, batch_size=16)
    del saved["train"]["ema_rampup"]  # as written by the releases before the ramp-up
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(saved))
    assert load_run_config(tmp_path, {}).train.ema_rampup == 0.0
    saved["train"]["ema_rampup"] = 0.05
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(saved))
    assert load_run_config(tmp_path, {}).train.ema_rampup == 0.05


def test_a_second_training_on_the_same_folder_is_refused_naming_the_process(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "ring"
    with RunLock(out):
        capsys.readouterr()
        assert main(_ring_run(out)) == 2
        err = capsys.readouterr().err
        assert f"is in use by another training process (PID {os.getpid()} on" in err
        assert not (out / "checkpoints").exists()
    assert main(_ring_run(out)) == 0  # released with the `with` block


def test_the_lock_is_released_when_its_holder_dies(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from pathlib import Path; "
         "from gankit.train.rundir import RunLock; lock = RunLock(Path(sys.argv[1])); "
         "lock.__enter__(); print('held', flush=True); time.sleep(60)", str(tmp_path)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert holder.stdout.readline().strip() == "held"
    with pytest.raises(ConfigError, match=f"PID {holder.pid}"), RunLock(tmp_path):
        pass
    holder.kill()
    holder.wait()
    with RunLock(tmp_path):  # the kernel dropped the dead process's lock
        pass


def test_stats_lines_after_the_resumed_snapshot_are_dropped(tmp_path: Path) -> None:
    path = tmp_path / "stats.jsonl"
    records = [{"kimg": k} for k in (0.02, 0.04, 0.06, 0.08)] + [{"kimg": 0.04, "fid": 3.0}]
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    assert truncate_stats(path, 40) == 2
    assert [json.loads(line) for line in path.read_text().splitlines()] == [
        {"kimg": 0.02},
        {"kimg": 0.04},
        {"kimg": 0.04, "fid": 3.0},
    ]


def test_resuming_from_an_older_snapshot_leaves_no_duplicate_ticks(tmp_path: Path) -> None:
    out = tmp_path / "ring"
    assert main(_ring_run(out, 0.1, "--tick-kimg", "0.02", "--snapshot-kimg", "0.04")) == 0
    newest = ckpt.list_checkpoints(out / "checkpoints")[-1]
    newest.write_bytes(b"")  # the newest is damaged: the resume starts from 0.08 kimg
    assert main(["train", "--resume", str(out)]) == 0
    ticks = [json.loads(line)["kimg"] for line in (out / "stats.jsonl").read_text().splitlines()]
    assert ticks == [0.02, 0.04, 0.06, 0.08, 0.1]
    assert (out / "checkpoints" / f"{newest.name}.corrupt").exists()
    assert "set aside the unreadable" in (out / "log.txt").read_text()


def _ring_trainer_nan_after(run_dir: Path, n_iter: int, tick_kimg: float, snapshot_kimg: float):
    """A 2-D gan trainer (batch 20) whose G's weights turn NaN after iteration `n_iter`."""
    from gankit.config import config_from_dict
    from gankit.train.logging import RunLogger
    from gankit.train.run import build_trainer

    train = {"out": str(run_dir), "device": "cpu", "kimg": 0.2, "batch_size": 20,
             "tick_kimg": tick_kimg, "snapshot_kimg": snapshot_kimg, "sample_kimg": 1.0}  # fmt: skip
    config = config_from_dict(
        {"recipe": {"name": "gan"}, "data": {"name": "ring8"}, "train": train}
    )
    trainer = build_trainer(config, RunLogger(run_dir, tensorboard=False))
    step = trainer.step

    def poisoned_step() -> None:
        step()
        if trainer.cur_iter == n_iter:
            with torch.no_grad():
                next(trainer.nets["G"].parameters()).fill_(float("nan"))

    trainer.step = poisoned_step
    return trainer


def test_nan_weights_are_never_snapshotted_even_between_ticks(tmp_path: Path) -> None:
    """Snapshots more often than ticks: the snapshot checks the weights itself."""
    trainer = _ring_trainer_nan_after(tmp_path, 3, tick_kimg=1.0, snapshot_kimg=0.02)
    with pytest.raises(TrainingDivergedError) as caught:
        trainer.run()
    kept = ckpt.list_checkpoints(tmp_path / "checkpoints")
    assert [p.name for p in kept] == ["ckpt-000000000020.pt", "ckpt-000000000040.pt"]
    for path in kept:
        state = ckpt.load_checkpoint(path)
        assert all(torch.isfinite(t).all() for t in state["nets"]["G"].values())
    message = str(caught.value)
    assert "G weights not finite" in message and "ckpt-000000000040.pt" in message
    assert "--amp none" not in message  # amp is already off
    assert message in (tmp_path / "log.txt").read_text()


def test_divergence_before_any_snapshot_does_not_offer_a_resume(tmp_path: Path) -> None:
    trainer = _ring_trainer_nan_after(tmp_path, 1, tick_kimg=0.04, snapshot_kimg=1.0)
    with pytest.raises(TrainingDivergedError, match="no checkpoint was written yet") as caught:
        trainer.run()
    assert "--resume" not in str(caught.value)


def test_generate_refuses_a_checkpoint_with_nan_weights(
    progan_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = ckpt.load_checkpoint(ckpt.list_checkpoints(progan_run / "checkpoints")[-1])
    next(iter(state["nets"]["G_ema"].values())).fill_(float("nan"))
    bad = tmp_path / "nan.pt"
    torch.save(state, bad)
    capsys.readouterr()
    assert main(["generate", str(bad), "--out", str(tmp_path / "x.png")]) == 2
    assert "NaN or infinite weights" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()


def _wait_for(path: Path, text: str, proc: subprocess.Popen, timeout: float = 120) -> None:
    end = time.time() + timeout
    while time.time() < end:
        if path.is_file() and text in path.read_text():
            return
        if proc.poll() is not None:
            raise AssertionError(f"the run ended early: {proc.stderr.read()}")
        time.sleep(0.05)
    raise AssertionError(f"{text!r} never appeared in {path}")


@pytest.mark.slow
@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_stopped_run_saves_then_exits_with_the_signals_code(
    tmp_path: Path, signum: int, code: int
) -> None:
    out = tmp_path / "ring"
    args = ["-m", "gankit", *_ring_run(out, 1000.0, "--tick-kimg", "0.02")]
    proc = subprocess.Popen([sys.executable, *args], stderr=subprocess.PIPE, text=True)
    _wait_for(out / "log.txt", "tick 0.04 kimg", proc)
    proc.send_signal(signum)
    assert proc.wait(timeout=120) == code
    err = proc.stderr.read()
    assert "Traceback" not in err and "after writing a snapshot" in err
    assert ckpt.list_checkpoints(out / "checkpoints")  # the stop's snapshot


def test_a_second_ctrl_c_during_the_save_aborts_without_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from gankit.train.loop import Trainer

    original_step, original_save = Trainer.step, ckpt.save_checkpoint
    saves = []

    def step(self: Trainer) -> None:
        original_step(self)
        if self.cur_iter == 3:
            os.kill(os.getpid(), signal.SIGINT)  # the first Ctrl-C: stop after a snapshot

    def save(state, folder, cur_nimg, keep):
        saves.append(cur_nimg)
        if cur_nimg == 60:  # the stop's snapshot: a second Ctrl-C while it is written
            os.kill(os.getpid(), signal.SIGINT)
        return original_save(state, folder, cur_nimg, keep)

    monkeypatch.setattr(Trainer, "step", step)
    monkeypatch.setattr(ckpt, "save_checkpoint", save)
    out = tmp_path / "ring"
    capsys.readouterr()
    assert main(_ring_run(out, 1.0, "--snapshot-kimg", "0.04")) == 130
    err = capsys.readouterr().err
    assert "Traceback" not in err and "aborted; the last good checkpoint," in err
    assert "ckpt-000000000040.pt, stands" in err and saves == [40, 60]
    assert [p.name for p in (out / "checkpoints").iterdir()] == ["ckpt-000000000040.pt"]


class _Trap:
    """Unpickling this would create `marker`: the code a malicious checkpoint would run."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (Path.touch, (self.marker,))


def test_a_malicious_newest_checkpoint_never_runs_and_is_skipped(
    progan_run: Path, tmp_path: Path
) -> None:
    run = _copy_run(progan_run, tmp_path / "run")
    marker = tmp_path / "pwned"
    evil = {"format": ckpt.FORMAT, "model": {}, "nets": {}, "cur_nimg": 0, "x": _Trap(marker)}
    torch.save(evil, run / "checkpoints" / ckpt.checkpoint_name(10**6))
    notes: list[str] = []
    path, _ = ckpt.load_latest(run, note=notes.append)
    assert path.name == "ckpt-000000000160.pt" and not marker.exists()
    assert "loading it could run code" in notes[0]


def test_python_tags_in_a_config_file_never_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    marker = tmp_path / "pwned"
    config = tmp_path / "evil.yaml"
    config.write_text(f'recipe: !!python/object/apply:os.system ["touch {marker}"]\n')
    assert main(["train", str(config), "--dry-run"]) == 2
    assert "is not valid YAML" in capsys.readouterr().err and not marker.exists()


@pytest.mark.parametrize("command", ["generate", "plot"])
def test_a_read_only_output_folder_is_one_line_for_generate_and_plot(
    progan_run: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    command: str,
) -> None:
    """As root the suite cannot make a folder read-only: the OSError is raised at mkdir."""

    def read_only(self: Path, *args: object, **kwargs: object) -> None:
        raise PermissionError(errno.EACCES, "Permission denied", str(self))

    monkeypatch.setattr(Path, "mkdir", read_only)
    out = tmp_path / "out"
    args = {
        "generate": ["generate", str(progan_run), "--out", str(out / "grid.png")],
        "plot": ["plot", str(progan_run), "--out", str(out)],
    }[command]
    capsys.readouterr()
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "permission denied; choose a folder you can write to" in err


def test_progan_runs_saved_before_fused_scale_resume_with_their_unfused_layers(
    tmp_path: Path,
) -> None:
    from gankit.config import Config, config_to_dict
    from gankit.train.resume import load_run_config

    saved = config_to_dict(Config())
    saved["train"].update(kimg=20.0, batch_size=16)
    saved["model"].update(name="progan", arch={"channel_base": 64, "channel_max": 4})
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(saved))
    assert load_run_config(tmp_path, {}).model.arch["fused_scale"] is False
    saved["model"]["arch"]["fused_scale"] = True
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(saved))
    assert load_run_config(tmp_path, {}).model.arch["fused_scale"] is True
