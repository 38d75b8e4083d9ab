"""Checkpoints: atomic writes, pruning, weights-only loading, corrupt-file fallback."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from gankit.errors import CheckpointError
from gankit.train import checkpoint as ckpt


def _state(value: float) -> dict:
    return {
        "nets": {"G": {"w": torch.full((3,), float(value))}},
        "cur_nimg": int(value),
        "stage": {"key": "a", "alpha": 0.5},
        "model": {"name": "toy"},
    }


def test_save_prunes_to_keep_and_names_sort_by_image_count(tmp_path: Path) -> None:
    for nimg in (100, 2000, 30000, 400000):
        ckpt.save_checkpoint(_state(nimg), tmp_path, nimg, keep=2)
    assert [p.name for p in ckpt.list_checkpoints(tmp_path)] == [
        "ckpt-000000030000.pt",
        "ckpt-000000400000.pt",
    ]


def test_checkpoints_load_with_weights_only(tmp_path: Path) -> None:
    path = ckpt.save_checkpoint(_state(7), tmp_path, 7, keep=3)
    raw = torch.load(path, weights_only=True)
    assert raw["format"] == "gankit-checkpoint" and raw["cur_nimg"] == 7
    torch.testing.assert_close(ckpt.load_checkpoint(path)["nets"]["G"]["w"], torch.full((3,), 7.0))


def test_a_write_that_dies_midway_leaves_the_previous_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ckpt.save_checkpoint(_state(1), tmp_path, 1, keep=3)

    def torn_save(obj: object, f) -> None:
        f.write(b"PK\x03\x04 half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", torn_save)
    with pytest.raises(CheckpointError, match=r"disk full; the last good checkpoint, .*1\.pt, is"):
        ckpt.save_checkpoint(_state(2), tmp_path, 2, keep=3)
    # The rename never happened: no ckpt-...2.pt, and the temporary file was cleaned up.
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt-000000000001.pt"]
    assert ckpt.load_checkpoint(tmp_path / "ckpt-000000000001.pt")["cur_nimg"] == 1


def test_corrupt_newest_checkpoint_falls_back_with_a_note_in_gankits_words(tmp_path: Path) -> None:
    folder = tmp_path / "checkpoints"
    ckpt.save_checkpoint(_state(1), folder, 1, keep=3)
    (folder / ckpt.checkpoint_name(5)).write_bytes(b"garbage")
    (folder / ckpt.checkpoint_name(7)).write_bytes(b"")
    notes: list[str] = []
    path, state = ckpt.load_latest(tmp_path, note=notes.append)
    assert path.name == "ckpt-000000000001.pt" and state["cur_nimg"] == 1
    assert len(notes) == 2
    assert "ckpt-000000000007.pt' is an empty file (0 bytes)" in notes[0]
    assert "ckpt-000000000005.pt' is unreadable: cut short, damaged" in notes[1]
    assert not any("weights_only" in n or "file an issue" in n for n in notes)


def test_a_checkpoint_with_the_format_tag_but_no_contents_is_corrupt(tmp_path: Path) -> None:
    folder = tmp_path / "checkpoints"
    ckpt.save_checkpoint(_state(1), folder, 1, keep=3)
    torch.save({"format": ckpt.FORMAT, "version": 1}, folder / ckpt.checkpoint_name(9))
    with pytest.raises(CheckpointError, match="incomplete: it has no model, nets, cur_nimg"):
        ckpt.load_checkpoint(folder / ckpt.checkpoint_name(9))
    path, _ = ckpt.load_latest(tmp_path, note=lambda text: None)
    assert path.name == "ckpt-000000000001.pt"


def test_a_skipped_newer_checkpoint_is_set_aside_not_deleted(tmp_path: Path) -> None:
    """A junk checkpoint numbered above the run would stay 'newest' forever and take a kept
    slot; a resume renames it so the next snapshots prune only real checkpoints."""
    for nimg in (1, 2):
        ckpt.save_checkpoint(_state(nimg), tmp_path, nimg, keep=2)
    junk = tmp_path / ckpt.checkpoint_name(10**9)
    junk.write_bytes(b"junk")
    moved = ckpt.set_aside_newer(tmp_path, tmp_path / ckpt.checkpoint_name(2))
    assert moved == [tmp_path / f"{junk.name}.corrupt"] and moved[0].read_bytes() == b"junk"
    ckpt.save_checkpoint(_state(3), tmp_path, 3, keep=2)
    assert [p.name for p in ckpt.list_checkpoints(tmp_path)] == [
        ckpt.checkpoint_name(2),
        ckpt.checkpoint_name(3),
    ]


def test_stray_temporary_files_are_ignored_and_cleaned(tmp_path: Path) -> None:
    stray = tmp_path / f".{ckpt.checkpoint_name(9)}.tmp-{os.getpid() + 1}"
    stray.write_bytes(b"partial")
    assert ckpt.list_checkpoints(tmp_path) == []
    ckpt.save_checkpoint(_state(3), tmp_path, 3, keep=3)
    assert not stray.exists()


def test_clear_errors_for_missing_and_foreign_files(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="no checkpoint in"):
        ckpt.load_latest(tmp_path)
    torch.save({"something": 1}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a gankit checkpoint"):
        ckpt.load_checkpoint(tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="neither a run directory nor a checkpoint"):
        ckpt.resolve_checkpoint(tmp_path / "nope")
