"""ADA's controller of p: direction and size of each step, clamping, fixed mode, exact resume."""

from __future__ import annotations

import io

import pytest
import torch

from gankit.augment.ada import AugmentPipe
from gankit.augment.adaptive import AdaptiveP

BATCH = 64
# The official step: batch * interval / (ada_kimg * 1000) = 64 * 4 / 500,000.
STEP = 64 * 4 / 500_000


def logits(n_positive: int, n: int = BATCH) -> torch.Tensor:
    """D's logits on a batch of reals with `n_positive` positive ones (mean sign known)."""
    values = torch.full((n,), -2.5)
    values[:n_positive] = 0.7
    return values


def run_interval(ada: AdaptiveP, n_positive: int) -> list[float | None]:
    results = []
    for _ in range(4):
        ada.observe(logits(n_positive))
        results.append(ada.step(BATCH))
    return results


def test_p_rises_by_one_step_when_the_mean_sign_exceeds_the_target() -> None:
    ada = AdaptiveP(AugmentPipe.preset("bgc"), p=0.2)
    # 56 of 64 positive: mean sign (56 - 8) / 64 = 0.75 > 0.6. Only the 4th iteration adjusts.
    assert run_interval(ada, 56) == [None, None, None, 0.75]
    assert ada.p == pytest.approx(0.2 + STEP)
    assert float(ada.pipe.p) == pytest.approx(0.2 + STEP)  # the pipe sees it


def test_p_falls_by_one_step_below_the_target_and_stays_at_target() -> None:
    ada = AdaptiveP(AugmentPipe(), p=0.2)
    assert run_interval(ada, 40)[-1] == pytest.approx(0.25)  # (40 - 24) / 64
    assert ada.p == pytest.approx(0.2 - STEP)
    ada = AdaptiveP(AugmentPipe(), p=0.2, target=0.5)
    run_interval(ada, 48)  # mean sign exactly 0.5: sign(0) = 0
    assert ada.p == pytest.approx(0.2)


def test_the_mean_is_over_the_whole_interval() -> None:
    ada = AdaptiveP(AugmentPipe(), p=0.5)
    for n_positive in (64, 64, 0, 0):  # mean sign 0 over the interval, though half were 1
        ada.observe(logits(n_positive))
        ada.step(BATCH)
    assert ada.p == pytest.approx(0.5 - STEP)


def test_p_is_floored_at_zero_and_may_pass_one_as_officially() -> None:
    ada = AdaptiveP(AugmentPipe(), p=STEP / 2)
    run_interval(ada, 0)
    assert ada.p == 0.0
    ada = AdaptiveP(AugmentPipe(), p=1.0)
    run_interval(ada, 64)
    assert ada.p == pytest.approx(1.0 + STEP)


def test_p_goes_from_zero_to_one_in_speed_kimg() -> None:
    ada = AdaptiveP(AugmentPipe(), p=0.0, speed_kimg=2.0)  # 2,000 images
    for _ in range(2000 // BATCH):
        ada.observe(logits(BATCH))
        ada.step(BATCH)
    assert ada.p == pytest.approx(2000 // BATCH // 4 * 4 * BATCH / 2000)


def test_fixed_mode_never_moves_p() -> None:
    ada = AdaptiveP(AugmentPipe(), p=0.3, target=None)
    assert run_interval(ada, 64) == [None] * 4
    assert ada.p == pytest.approx(0.3)
    assert not ada.adaptive


def test_state_round_trip_resumes_mid_interval() -> None:
    def fresh() -> AdaptiveP:
        return AdaptiveP(AugmentPipe(), p=0.1)

    whole, first = fresh(), fresh()
    pattern = [60, 10, 50, 63, 5, 64, 30, 40]
    for k in pattern[:6]:
        for ada in (whole, first):
            ada.observe(logits(k))
            ada.step(BATCH)
    state = first.state_dict()
    assert all(isinstance(v, torch.Tensor | int) for v in state.values())
    saved = torch.load(_roundtrip(state), weights_only=True)
    resumed = fresh()
    resumed.load_state_dict(saved)
    assert resumed.iterations == 2 and resumed.p == pytest.approx(first.p)
    for k in pattern[6:]:
        for ada in (whole, resumed):
            ada.observe(logits(k))
            ada.step(BATCH)
    assert resumed.p == whole.p and resumed.p != pytest.approx(0.1)


def _roundtrip(state: dict) -> io.BytesIO:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return buffer


@pytest.mark.parametrize(
    "kwargs", [{"target": 1.5}, {"interval": 0}, {"speed_kimg": 0}, {"p": -0.1}]
)
def test_bad_settings_are_refused(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        AdaptiveP(AugmentPipe(), **kwargs)
