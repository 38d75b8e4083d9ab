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


def test_per_resolution_phase_lengths_override_the_uniform_ones() -> None:
    # 4x4: stable 5; 8x8: fade 2 + stable 10 (overridden); 16x16: fade 4 + stable 4.
    s = ProgressiveSchedule(
        resolutions=(4, 8, 16),
        fade_nimg=4,
        stable_nimg=4,
        batch_size=1,
        phase_nimg=((4, 0, 5), (8, 2, 10)),
    )
    table = {
        0: (4, 1.0),
        4: (4, 1.0),
        5: (8, 0.0),
        6: (8, 0.5),
        7: (8, 1.0),
        16: (8, 1.0),
        17: (16, 0.0),
        19: (16, 0.5),
        21: (16, 1.0),
        10_000: (16, 1.0),
    }
    for nimg, (res, alpha) in table.items():
        stage = s.stage(nimg)
        assert (stage.resolution, stage.alpha) == (res, alpha), nimg
    assert s.grown_nimg == 5 + 12 + 8


def test_bad_phase_kimg_names_the_key() -> None:
    from gankit.errors import ConfigError
    from gankit.models import progan
    from gankit.recipes.progan import ProGANRecipe

    nets = progan.build(16, 1, channel_base=64, channel_max=16, z_dim=8)
    with pytest.raises(ConfigError, match=r"phase_kimg\[32\]"):
        ProGANRecipe(nets, 4, phase_kimg={32: (1.0, 1.0)})
    recipe = ProGANRecipe(nets, 4, stable_kimg=1, fade_kimg=1, phase_kimg={8: (0.5, 2.0)})
    assert recipe.schedule_.grown_nimg == 1000 + 2500 + 2000


def test_a_fitted_schedule_is_fully_grown_at_the_asked_length() -> None:
    uneven = ProgressiveSchedule(
        (4, 8, 16, 32), 4000, 4000, 16, phase_nimg=((4, 0, 6000), (8, 4000, 12000))
    )  # 38,000 images in all
    fitted = uneven.fitted(20_000)
    assert fitted.grown_nimg == 20_000
    assert fitted.phases() == [(0, 3158), (2105, 6316), (2105, 2105), (2106, 2105)]
    assert [r for r, _ in fitted.starts()] == [4, 8, 16, 32]
    assert fitted.stage(19_999).resolution == 32 and fitted.stage(20_000).key == "32x32-stable"
    # Every phase is 20/38 of its length, within a rounded image.
    for (fade, stable), (f0, s0) in zip(fitted.phases(), uneven.phases(), strict=True):
        assert abs(fade - f0 * 20 / 38) <= 1 and abs(stable - s0 * 20 / 38) <= 1


def test_progan_says_which_resolution_a_run_reaches_and_how_to_fit_it() -> None:
    from gankit.models import progan
    from gankit.recipes.progan import ProGANRecipe

    nets = progan.build(32, 1, channel_base=64, channel_max=16, z_dim=16)
    plain = ProGANRecipe(nets, 16)
    text = plain.plan(20_000)
    assert "8x8 at 800, 16x16 at 2400, 32x32 at 4000; fully grown at 5600" in text
    assert "This run of 20 kimg ends at 4x4, before 32x32" in text
    assert "--set recipe.args.grown_kimg=20" in text
    fitted = ProGANRecipe(progan.build(32, 1, channel_base=64, channel_max=16, z_dim=16), 16,
                          grown_kimg=20)  # fmt: skip
    assert fitted.default_kimg == 20 and fitted.schedule(19_999).resolution == 32
    assert "grown_kimg" not in fitted.plan(20_000)
    assert "ends at 32x32" in fitted.plan(20_000)
