"""The progressive schedule: images shown -> (resolution, alpha, batch)."""

from __future__ import annotations

import pytest
import torch

from gankit.recipes.schedule import ProgressiveSchedule, downsample_to, fade_reals

SCHEDULE = ProgressiveSchedule(
    resolutions=(4, 8, 16, 32),
    fade_nimg=600,
    stable_nimg=400,
    batch_size=16,
    batch_sizes=((32, 8),),
)


@pytest.mark.parametrize(
    ("nimg", "resolution", "alpha", "key"),
    [
        (0, 4, 1.0, "4x4-stable"),
        (399, 4, 1.0, "4x4-stable"),
        (400, 8, 0.0, "8x8-fade"),
        (550, 8, 0.25, "8x8-fade"),
        (999, 8, 599 / 600, "8x8-fade"),
        (1000, 8, 1.0, "8x8-stable"),
        (1399, 8, 1.0, "8x8-stable"),
        (1400, 16, 0.0, "16x16-fade"),
        (1700, 16, 0.5, "16x16-fade"),
        (2400, 32, 0.0, "32x32-fade"),
        (3000, 32, 1.0, "32x32-stable"),
        (10**9, 32, 1.0, "32x32-stable"),
    ],
)
def test_schedule_table(nimg: int, resolution: int, alpha: float, key: str) -> None:
    stage = SCHEDULE.stage(nimg)
    assert (stage.resolution, stage.key) == (resolution, key)
    assert stage.alpha == pytest.approx(alpha)
    assert stage.batch_size == (8 if resolution == 32 else 16)


def test_fully_grown_after_stable_plus_three_fade_and_stable_phases() -> None:
    assert SCHEDULE.grown_nimg == 400 + 3 * 1000


def test_reals_are_area_downsampled_and_faded_like_the_generator() -> None:
    img = torch.arange(16.0).reshape(1, 1, 4, 4)
    low = downsample_to(img, 2)
    torch.testing.assert_close(low, torch.tensor([[[[2.5, 4.5], [10.5, 12.5]]]]))
    faded = fade_reals(img, 0.0)
    torch.testing.assert_close(faded, low.repeat_interleave(2, 2).repeat_interleave(2, 3))
    torch.testing.assert_close(fade_reals(img, 1.0), img)
    torch.testing.assert_close(fade_reals(img, 0.5), 0.5 * faded + 0.5 * img)
