"""DiffAugment: colour, translation and cutout on known images; the draws; gradients."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from gankit.augment.diffaug import DiffAugment, diff_augment, parse_policy

F64 = torch.float64


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def images(n: int = 6, c: int = 3, h: int = 16, w: int = 16, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, c, h, w, dtype=F64, generator=gen(seed)) * 2 - 1


def test_color_is_brightness_then_saturation_then_contrast() -> None:
    x = images()
    out = diff_augment(x, "color", gen(1))
    u = torch.rand(3, 6, 1, 1, 1, dtype=F64, generator=gen(1))  # one number per op per image
    y = x + u[0] - 0.5
    m = y.mean(dim=1, keepdim=True)
    y = m + (y - m) * 2 * u[1]
    m = y.mean(dim=(1, 2, 3), keepdim=True)
    torch.testing.assert_close(out, m + (y - m) * (u[2] + 0.5))


def test_translation_shifts_by_the_drawn_pixels_with_zero_fill() -> None:
    h, w = 16, 24
    x = images(h=h, w=w) + 3  # no zero pixels of its own
    out = diff_augment(x, "translation", gen(2))
    replay = gen(2)
    ty = torch.randint(-2, 3, (6,), generator=replay)  # h // 8 = 2
    tx = torch.randint(-3, 4, (6,), generator=replay)  # w // 8 = 3
    assert len(set(zip(ty.tolist(), tx.tolist(), strict=True))) > 3
    padded = F.pad(x, [3, 3, 2, 2])
    for k in range(6):
        # out[i, j] = x[i + ty, j + tx]: the content moves by -t.
        dy, dx = int(ty[k]), int(tx[k])
        expected = padded[k, :, 2 + dy : 2 + dy + h, 3 + dx : 3 + dx + w]
        torch.testing.assert_close(out[k], expected, atol=0, rtol=0)


def test_cutout_zeroes_a_half_size_rectangle_at_the_drawn_centre() -> None:
    h, w = 8, 12
    x = images(h=h, w=w) + 3
    out = diff_augment(x, "cutout", gen(3))
    replay = gen(3)
    cy = torch.randint(0, h + 1, (6,), generator=replay)  # h // 2 = 4 is even: one more centre
    cx = torch.randint(0, w + 1, (6,), generator=replay)
    for k in range(6):
        top, left = int(cy[k]) - 2, int(cx[k]) - 3
        hole = torch.zeros(h, w, dtype=torch.bool)
        hole[max(top, 0) : top + 4, max(left, 0) : left + 6] = True
        assert (out[k][:, hole] == 0).all()
        torch.testing.assert_close(out[k][:, ~hole], x[k][:, ~hole], atol=0, rtol=0)
    assert (out == 0).sum(dim=(1, 2, 3)).max() == 3 * 4 * 6  # some rectangle lies fully inside


def test_gradients_flow_twice_through_the_full_policy() -> None:
    x = images(n=1, h=8, w=8, seed=4).requires_grad_(True)

    def augment(x: torch.Tensor) -> torch.Tensor:
        return diff_augment(x, "color,translation,cutout", gen(5))

    assert torch.autograd.gradcheck(augment, (x,))
    assert torch.autograd.gradgradcheck(augment, (x,), fast_mode=True)
    (grad,) = torch.autograd.grad(augment(x).sum(), x)
    assert grad.abs().sum() > 0


def test_module_and_policy_parsing() -> None:
    x = images()
    torch.testing.assert_close(DiffAugment()(x, gen(6)), diff_augment(x, generator=gen(6)))
    assert parse_policy(" color , cutout ") == ["color", "cutout"]
    torch.testing.assert_close(DiffAugment("")(x), x)
    with pytest.raises(ValueError, match="translation"):
        DiffAugment("color,translate")
