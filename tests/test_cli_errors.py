"""Every failure of a README command is one `gankit COMMAND: error: ...` line, never a traceback
(the traceback is there with --debug), and a failed command leaves the user's files alone."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from gankit import cli
from gankit.cli import main

RING = ["--data", "ring8", "--batch", "20", "--no-progress", "--device", "cpu", "--threads", "1"]


def _ring(out: Path, kimg: float = 0.04, *extra: str) -> list[str]:
    return ["train", "gan", *RING, "--kimg", str(kimg), "--out", str(out), *extra]


def _one_error_line(capsys: pytest.CaptureFixture[str], command: str) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith(f"gankit {command}: error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.fixture(scope="module")
def ring_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ring") / "run"
    assert main(_ring(out)) == 0
    return out


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0 and capsys.readouterr().out.startswith("gankit 0.")


@pytest.mark.parametrize("command", ["train", "generate", "evaluate"])
def test_a_device_this_build_lacks_names_the_devices_there_are(
    command: str, ring_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = {
        "train": _ring(tmp_path / "new"),
        "generate": ["generate", str(ring_run), "--out", str(tmp_path / "p.npy")],
        "evaluate": ["evaluate", str(ring_run), "--metrics", "modes"],
    }[command]
    assert main([*args, "--device", "mps"]) == 2
    line = _one_error_line(capsys, command)
    assert "'mps': this PyTorch build or machine has no MPS" in line and "has cpu" in line
    assert not (tmp_path / "new").exists()


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="needs a machine without CUDA")
def test_generate_without_cuda_names_its_own_option(
    ring_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(["generate", str(ring_run), "--device", "cuda", "--out", str(tmp_path / "p.npy")]) == 2
    )
    line = _one_error_line(capsys, "generate")
    assert "--device 'cuda': no CUDA device is visible" in line and "train.device" not in line


def test_negative_workers_are_refused_before_the_run_folder_exists(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*_ring(tmp_path / "run"), "--workers", "-1"]) == 2
    assert "data.workers (--workers) must be 0 or more; got -1" in _one_error_line(capsys, "train")
    assert not (tmp_path / "run").exists()


def test_an_invalid_optimizer_value_is_a_config_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*_ring(tmp_path / "run"), "--set", "recipe.args.betas=[2,3]"]) == 2
    line = _one_error_line(capsys, "train")
    assert "Invalid beta parameter at index 0: 2" in line and "betas=[2, 3]" in line
    assert not (tmp_path / "run").exists()


def test_disk_full_at_a_snapshot_names_the_checkpoint_that_is_intact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """torch reports a full disk as a RuntimeError from its zip writer."""
    from gankit.train import checkpoint as ckpt

    real_save, calls = ckpt.save_atomic, []

    def fills_up(obj: object, path: Path) -> None:
        calls.append(path)
        if len(calls) == 2:
            raise RuntimeError(
                "[enforce fail at inline_container.cc:664] . PytorchStreamWriter failed writing "
                "file data/0: file write failed"
            )
        real_save(obj, path)

    monkeypatch.setattr(ckpt, "save_atomic", fills_up)
    monkeypatch.setattr(ckpt, "_free_bytes", lambda folder: 0)
    assert main(_ring(tmp_path / "run", 0.1, "--snapshot-kimg", "0.04")) == 2
    line = _one_error_line(capsys, "train")
    assert "could not write checkpoint" in line and "no space left on the device" in line
    assert "the last good checkpoint," in line and "ckpt-000000000040.pt, is intact" in line


def test_a_read_only_run_folder_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """As root the suite cannot make a folder read-only: the OSError is raised at the write."""
    from gankit.train import rundir

    def read_only(path: object, *args: object) -> int:
        raise OSError(errno.EROFS, "Read-only file system", str(path))

    monkeypatch.setattr(rundir.os, "open", read_only)
    assert main(_ring(tmp_path / "run")) == 2
    line = _one_error_line(capsys, "train")
    assert "the file system is read-only; choose a folder you can write to" in line


def test_out_pointing_at_a_file_is_one_line(
    ring_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a_file = tmp_path / "notes.txt"
    a_file.write_text("keep me")
    assert main(_ring(a_file)) == 2
    assert "already exists as something else" in _one_error_line(capsys, "train")
    assert main(["generate", str(ring_run), "--out", str(a_file / "grid.png")]) == 2
    assert "notes.txt" in _one_error_line(capsys, "generate")
    assert a_file.read_text() == "keep me"


def test_a_huge_num_is_refused_with_its_size(
    ring_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(["generate", str(ring_run), "--num", "2000000000", "--out", str(tmp_path / "p.npy")])
        == 2
    )
    line = _one_error_line(capsys, "generate")
    assert "would hold 14.9 GiB of samples" in line and "at most 1,073,741,824 per call" in line


def test_an_unexpected_error_is_one_line_and_debug_shows_the_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(args: object) -> int:
        raise KeyError("boom")

    monkeypatch.setattr(cli, "_cmd_list", broken)
    assert main(["list"]) == 1
    line = _one_error_line(capsys, "list")
    assert "unexpected KeyError: 'boom' (rerun with --debug for the traceback" in line
    with pytest.raises(KeyError):
        main(["list", "--debug"])
    monkeypatch.setenv("GANKIT_DEBUG", "1")
    with pytest.raises(KeyError):
        main(["list"])


def test_the_progress_bar_has_no_stray_comma() -> None:
    """tqdm puts ', ' before a {postfix}; the loop draws its status as the description."""
    import io

    from tqdm import tqdm

    from gankit.train.ticks import BAR_FORMAT

    out = io.StringIO()
    bar = tqdm(total=10, file=out, bar_format=BAR_FORMAT)
    bar.set_description_str("32px 600.0 img/s D_main 0.5", refresh=True)
    bar.close()
    last = out.getvalue().split("\r")[-1]
    assert "kimg [00:00<?] 32px 600.0 img/s" in last and ", 32px" not in last


def test_single_stage_runs_write_no_stage_main_grid(ring_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert main(["train", "gan", "--data", "digits", "--kimg", "0.02", "--batch", "10",
                 "--no-progress", "--device", "cpu", "--out", str(out)]) == 0  # fmt: skip
    names = sorted(p.name for p in (out / "samples").iterdir())
    assert "final.png" in names and not any(n.startswith("stage-") for n in names)
    assert os.path.exists(out / "samples" / "reals.png")


def test_a_closed_pipe_ends_quietly(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    """`gankit list | head -2`: the reader leaving is no error (was `error: Broken pipe`)."""
    import sys

    from gankit import cli

    def reader_left(args: object) -> int:
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(cli, "_cmd_list", reader_left)
    monkeypatch.setattr(sys, "stdout", sys.stdout)  # main swaps it for os.devnull
    assert cli.main(["list"]) == 0
    assert capsys.readouterr().err == ""
