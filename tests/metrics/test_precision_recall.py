"""Improved precision and recall: known values, a hand-computed case, and torch-fidelity agreement."""

from __future__ import annotations

import pytest
import torch

from gankit.metrics.precision_recall import knn_radii, manifold_coverage, precision_recall


def test_identical_sets_have_full_precision_and_recall() -> None:
    f = torch.randn(200, 16, generator=torch.Generator().manual_seed(0))
    assert precision_recall(f, f.clone()) == (1.0, 1.0)


def test_far_apart_sets_have_zero_precision_and_recall() -> None:
    g = torch.Generator().manual_seed(1)
    real, fake = torch.randn(100, 8, generator=g), torch.randn(120, 8, generator=g) + 100.0
    assert precision_recall(real, fake) == (0.0, 0.0)


def test_hand_computed_two_dimensional_case() -> None:
    # k = 1. Real radii: (0,0) 3, (3,0) 3, (0,4) 4, (30,0) 27. Fake radii: (6,0) sqrt(20),
    # (0,8.5) sqrt(46.25), (2,2) sqrt(20).
    real = torch.tensor([[0.0, 0.0], [3.0, 0.0], [0.0, 4.0], [30.0, 0.0]])
    fake = torch.tensor([[6.0, 0.0], [0.0, 8.5], [2.0, 2.0]])
    expected_radii = torch.tensor([20.0, 46.25, 20.0]).sqrt()
    torch.testing.assert_close(knn_radii(fake, k=1), expected_radii)
    torch.testing.assert_close(knn_radii(real, k=1), torch.tensor([3.0, 3.0, 4.0, 27.0]))
    # Precision: (6,0) lies in the (3,0) ball, (2,2) in the (0,0) ball, (0,8.5) in none -> 2/3.
    # Recall: (0,0), (3,0), (0,4) lie in the (2,2) ball, (30,0) in none -> 3/4.
    precision, recall = precision_recall(real, fake, k=1)
    assert precision == pytest.approx(2 / 3) and recall == pytest.approx(3 / 4)


def test_radius_boundary_counts_as_inside() -> None:
    centres = torch.tensor([[0.0, 0.0], [3.0, 0.0]])
    radii = knn_radii(centres, k=1)  # both 3
    assert manifold_coverage(torch.tensor([[6.0, 0.0], [6.5, 0.0]]), centres, radii) == 0.5


def test_batching_does_not_change_the_result() -> None:
    g = torch.Generator().manual_seed(2)
    real, fake = torch.randn(150, 12, generator=g), torch.randn(170, 12, generator=g) * 1.3
    assert precision_recall(real, fake, k=5, batch_size=16) == precision_recall(real, fake, k=5)


def test_agrees_with_torch_fidelity() -> None:
    prc = pytest.importorskip("torch_fidelity.metric_prc")
    g = torch.Generator().manual_seed(3)
    real, fake = torch.randn(300, 64, generator=g), torch.randn(250, 64, generator=g) * 1.2 + 0.2
    # torch-fidelity's first argument is the generated set.
    ref_precision, ref_recall = prc.calculate_precision_recall_full(fake, real, neighborhood=3)
    precision, recall = precision_recall(real, fake, k=3)
    assert precision == pytest.approx(ref_precision, abs=1e-6)
    assert recall == pytest.approx(ref_recall, abs=1e-6)
    assert 0.0 < precision < 1.0 and 0.0 < recall < 1.0  # a case that can tell them apart


def test_k_must_leave_neighbours() -> None:
    with pytest.raises(ValueError, match="k=5"):
        knn_radii(torch.zeros(5, 2), k=5)
