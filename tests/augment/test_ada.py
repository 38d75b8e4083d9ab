"""ADA's augmentation pipe: each transformation's effect on known images, p = 0, gradients.

The expected parameters are re-drawn in the test from a clone of the generator, in the official
order (for each transformation: its parameter, then its gate), so each test checks the
transformation the pipe really applied.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from gankit.augment.ada import PRESETS, AugmentPipe

F64 = torch.float64


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def pipe_at(p: float, **multipliers: float) -> AugmentPipe:
    pipe = AugmentPipe(**multipliers)
    pipe.p.fill_(p)
    return pipe


def random_images(n: int, c: int, size: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, c, size, size, dtype=F64, generator=gen(seed)) * 2 - 1


def centred_coordinates(size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """x, y [size, size] of each pixel about the image centre (the pipe's origin)."""
    c = torch.arange(size, dtype=F64) - (size - 1) / 2
    y, x = torch.meshgrid(c, c, indexing="ij")
    return x, y


# -- helpers: a linear ramp follows a geometric map (to a fraction of a pixel) ------------------


def ramp(size: int, a: float = 0.05, b: float = -0.03) -> torch.Tensor:
    x, y = centred_coordinates(size)
    return (a * x + b * y).expand(1, 3, size, size).clone()


def check_ramp_moved(out: torch.Tensor, sx: torch.Tensor, sy: torch.Tensor, tol_px: float) -> None:
    """out(x, y) == ramp(source(x, y)) wherever the source lies well inside the image."""
    size = out.shape[-1]
    expected = 0.05 * sx - 0.03 * sy
    inside = (sx.abs() < (size - 1) / 2 - 8) & (sy.abs() < (size - 1) / 2 - 8)
    assert inside.sum() > 100
    err = (out[0] - expected).abs()[:, inside].max()
    # The asymmetric sym6 wavelet shifts non-translations by a fraction of a pixel (as the
    # official pipe does); a wrong map is off by pixels.
    assert err < tol_px * math.hypot(0.05, 0.03)


# -- pixel blitting ----------------------------------------------------------------------------
# Flips and quarter turns go through the same upsample / sample / downsample as the rest of the
# geometry; the sym6 wavelet is asymmetric, so (as in the official pipe) they are exact only up
# to a fraction of a pixel, while integer translations are exact.


def nearest(out: torch.Tensor, candidates: list[torch.Tensor]) -> int:
    """Index of the candidate image closest to `out` (max abs difference)."""
    return min(range(len(candidates)), key=lambda j: (out - candidates[j]).abs().max().item())


def test_xflip_mirrors_the_images_it_picks() -> None:
    size = 32
    img = random_images(8, 3, size)
    out = pipe_at(1, xflip=1)(img, gen(0))
    flips = torch.floor(torch.rand(8, generator=gen(0)) * 2)  # then the gate, open at p = 1
    assert 0 < flips.sum() < 8  # both cases occur in this batch
    picked = [nearest(out[k], [img[k], img[k].flip(-1)]) for k in range(8)]
    assert picked == flips.long().tolist()
    x, y = centred_coordinates(size)
    ramps = pipe_at(1, xflip=1)(ramp(size).expand(8, -1, -1, -1), gen(0))
    for k in range(8):
        check_ramp_moved(ramps[k : k + 1], -x if flips[k] else x, y, tol_px=0.25)


def test_rotate90_rotates_by_the_drawn_quarter_turns() -> None:
    size = 32
    img = random_images(8, 3, size)
    out = pipe_at(1, rotate90=1)(img, gen(1))
    turns = torch.floor(torch.rand(8, generator=gen(1)) * 4).long()
    assert set(turns.tolist()) == {0, 1, 2, 3}
    # torch.rot90(k=1, dims=(H, W)) maps output pixel (x, y) to input (-y, x) (y points down),
    # the pipe's quarter turn.
    picked = [
        nearest(out[k], [torch.rot90(img[k], j, dims=(1, 2)) for j in range(4)]) for k in range(8)
    ]
    assert picked == turns.tolist()
    x, y = centred_coordinates(size)
    ramps = pipe_at(1, rotate90=1)(ramp(size).expand(8, -1, -1, -1), gen(1))
    sources = [(x, y), (-y, x), (-x, -y), (y, -x)]
    for k in range(8):
        check_ramp_moved(ramps[k : k + 1], *sources[int(turns[k])], tol_px=0.25)


def test_integer_translation_shifts_with_reflected_borders() -> None:
    size = 16
    img = random_images(6, 3, size)
    out = pipe_at(1, xint=1)(img, gen(2))
    shifts = torch.round((torch.rand(6, 2, generator=gen(2)) * 2 - 1) * 0.125 * size).long()
    assert shifts.abs().max() == 2 and (shifts == 0).any()
    padded = F.pad(img, [2, 2, 2, 2], mode="reflect")
    for k in range(6):
        tx, ty = shifts[k].tolist()
        # out(x, y) = img(x - tx, y - ty): the content moves by +t.
        expected = padded[k, :, 2 - ty : 2 - ty + size, 2 - tx : 2 - tx + size]
        torch.testing.assert_close(out[k], expected, atol=1e-6, rtol=0)  # float32 sym6 taps


# -- general geometry --------------------------------------------------------------------------


def test_fractional_translation_moves_a_ramp_by_the_drawn_offset() -> None:
    size = 32
    out = pipe_at(1, xfrac=1)(ramp(size), gen(3))
    t = torch.randn(1, 2, generator=gen(3))[0].double() * 0.125 * size
    assert t.norm() > 2  # a visible move
    x, y = centred_coordinates(size)
    check_ramp_moved(out, x - t[0], y - t[1], tol_px=1e-4)


def test_isotropic_and_anisotropic_scaling() -> None:
    size = 32
    x, y = centred_coordinates(size)
    s = 2 ** (torch.randn(1, generator=gen(4)).double() * 0.2)
    assert abs(s.item() - 1) > 0.1
    check_ramp_moved(pipe_at(1, scale=1)(ramp(size), gen(4)), x / s, y / s, tol_px=0.25)
    # Anisotropic: x stretched by s, y by 1/s.
    check_ramp_moved(pipe_at(1, aniso=1)(ramp(size), gen(4)), x / s, y * s, tol_px=0.25)


def test_rotation_before_and_after_the_anisotropic_scaling() -> None:
    size = 32
    # At p = 1 both rotations happen (P(either) = 1); draws: angle, gate, angle, gate.
    u = torch.rand(4, generator=gen(5)).double()
    theta = (u[0] * 2 - 1) * math.pi + (u[2] * 2 - 1) * math.pi
    assert abs(math.sin(theta)) > 0.3
    out = pipe_at(1, rotate=1)(ramp(size), gen(5))
    x, y = centred_coordinates(size)
    sx = torch.cos(theta) * x - torch.sin(theta) * y
    sy = torch.sin(theta) * x + torch.cos(theta) * y
    check_ramp_moved(out, sx, sy, tol_px=0.25)


def test_geometry_keeps_a_constant_image() -> None:
    img = torch.full((3, 3, 16, 16), 0.3, dtype=F64)
    out = AugmentPipe.preset("bg")(img, gen(6))
    torch.testing.assert_close(out, img, atol=1e-6, rtol=0)


# -- colour: known maps -----------------------------------------------------------------------


def test_brightness_adds_the_drawn_offset() -> None:
    img = random_images(4, 3, 4)
    out = pipe_at(1, brightness=1)(img, gen(7))
    b = torch.randn(4, generator=gen(7)).double() * 0.2
    torch.testing.assert_close(out, img + b[:, None, None, None])


def test_contrast_scales_about_zero() -> None:
    img = random_images(4, 1, 4)
    out = pipe_at(1, contrast=1)(img, gen(8))
    c = 2 ** (torch.randn(4, generator=gen(8)).double() * 0.5)
    torch.testing.assert_close(out, img * c[:, None, None, None])


def test_luma_flip_negates_luma_and_keeps_chroma() -> None:
    img = random_images(6, 3, 4)
    out = pipe_at(1, lumaflip=1)(img, gen(9))
    flips = torch.floor(torch.rand(6, generator=gen(9)) * 2)
    assert 0 < flips.sum() < 6
    luma = img.mean(dim=1, keepdim=True)
    expected = torch.where(flips[:, None, None, None] > 0, img - 2 * luma, img)
    torch.testing.assert_close(out, expected)


def test_hue_rotates_chroma_about_the_grey_axis() -> None:
    img = random_images(4, 3, 4)
    out = pipe_at(1, hue=1)(img, gen(10))
    theta = (torch.rand(4, generator=gen(10)).double() * 2 - 1) * math.pi
    luma_in, luma_out = img.mean(dim=1, keepdim=True), out.mean(dim=1, keepdim=True)
    torch.testing.assert_close(luma_out, luma_in)
    chroma_in, chroma_out = img - luma_in, out - luma_out
    cos = (chroma_in * chroma_out).sum(1) / (chroma_in.norm(dim=1) * chroma_out.norm(dim=1))
    torch.testing.assert_close(chroma_out.norm(dim=1), chroma_in.norm(dim=1))
    torch.testing.assert_close(cos, torch.cos(theta)[:, None, None].expand_as(cos))


def test_saturation_scales_chroma() -> None:
    img = random_images(4, 3, 4)
    out = pipe_at(1, saturation=1)(img, gen(11))
    s = 2 ** torch.randn(4, generator=gen(11)).double()
    luma = img.mean(dim=1, keepdim=True)
    torch.testing.assert_close(out, luma + (img - luma) * s[:, None, None, None])


def test_colour_maps_compose_in_the_official_order() -> None:
    # Brightness first, then contrast: c * (x + b), not c * x + b.
    img = random_images(4, 3, 4)
    out = pipe_at(1, brightness=1, contrast=1)(img, gen(20))
    replay = gen(20)
    b = torch.randn(4, generator=replay).double() * 0.2
    torch.rand(4, generator=replay)
    c = 2 ** (torch.randn(4, generator=replay).double() * 0.5)
    torch.testing.assert_close(out, c[:, None, None, None] * (img + b[:, None, None, None]))


def test_greyscale_gets_brightness_and_contrast_but_no_hue_or_saturation() -> None:
    img = random_images(3, 1, 4)
    pipe = pipe_at(1, brightness=1, hue=1, saturation=1)
    b = torch.randn(3, generator=gen(12)).double() * 0.2
    torch.testing.assert_close(pipe(img, gen(12)), img + b[:, None, None, None])


# -- filtering and corruptions ----------------------------------------------------------------


def test_filter_bands_sum_to_an_impulse() -> None:
    bank = AugmentPipe().Hz_fbank.double()
    impulse = torch.zeros(bank.shape[1], dtype=F64)
    impulse[bank.shape[1] // 2] = 1
    torch.testing.assert_close(bank.sum(0), impulse, atol=1e-7, rtol=0)


def test_filter_gain_on_a_constant_image_is_the_power_normalization() -> None:
    # Only the top band amplified by g: the constant (DC) lies in band 0, whose gain is 1
    # divided by the power normalization n = sqrt((10 + 1 + 1 + g^2) / 13), once per axis.
    img = torch.full((2, 3, 24, 24), 0.5, dtype=F64)
    out = pipe_at(1, imgfilter=1, imgfilter_bands=[0, 0, 0, 1])(img, gen(13))
    replay = gen(13)  # per band: its gain [2], then its gate [2]
    for _ in range(3):
        torch.randn(2, generator=replay)
        torch.rand(2, generator=replay)
    g = 2 ** torch.randn(2, generator=replay).double()
    assert (g - 1).abs().min() > 0.2
    expected = 0.5 / ((12 + g**2) / 13)
    torch.testing.assert_close(out, expected[:, None, None, None].expand_as(out))


def test_noise_adds_gaussian_noise_of_the_drawn_strength() -> None:
    img = random_images(2, 3, 4)
    out = pipe_at(1, noise=1)(img, gen(14))
    replay = gen(14)
    sigma = torch.randn(2, 1, 1, 1, generator=replay).abs().double() * 0.1
    torch.rand(2, 1, 1, 1, generator=replay)
    noise = torch.randn(2, 3, 4, 4, generator=replay).double()
    torch.testing.assert_close(out, img + noise * sigma)


def test_cutout_zeroes_a_half_size_square_at_the_drawn_centre() -> None:
    size = 16
    img = random_images(3, 3, size) + 3  # no pixel is zero before the cutout
    out = pipe_at(1, cutout=1)(img, gen(15))
    replay = gen(15)
    torch.rand(3, generator=replay)
    centre = torch.rand(3, 2, generator=replay).double() * size  # in pixels
    x, y = centred_coordinates(size)
    x, y = x + (size - 1) / 2 + 0.5, y + (size - 1) / 2 + 0.5  # pixel centres
    for k in range(3):
        hole = ((x - centre[k, 0]).abs() < size / 4) & ((y - centre[k, 1]).abs() < size / 4)
        assert 0 < hole.sum() <= (size // 2) ** 2
        assert (out[k][:, hole] == 0).all()
        torch.testing.assert_close(out[k][:, ~hole], img[k][:, ~hole])


# -- the whole pipe ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["bgc", "bgcfnc"])
def test_p_zero_is_the_identity(name: str) -> None:
    img = random_images(2, 3, 24)
    out = pipe_at(0, **dict.fromkeys(PRESETS[name], 1.0))(img, gen(16))
    torch.testing.assert_close(out, img, atol=1e-6, rtol=0)


def test_same_generator_state_same_augmentation() -> None:
    img = random_images(4, 3, 8)
    pipe = AugmentPipe.preset("bgc")
    g = gen(17)
    first = pipe(img, g)
    state = g.get_state()
    second = pipe(img, g)
    assert not torch.allclose(first, second)
    resumed = torch.Generator()
    resumed.set_state(state)
    torch.testing.assert_close(pipe(img, resumed), second)


def test_bgc_gradcheck_and_gradgradcheck() -> None:
    pipe = AugmentPipe.preset("bgc")
    img = random_images(1, 3, 8, seed=18).requires_grad_(True)

    def augment(x: torch.Tensor) -> torch.Tensor:
        return pipe(x, gen(19))  # the same draws at every call

    assert torch.autograd.gradcheck(augment, (img,))
    # Fast mode checks random projections of the second derivative (the full one takes ~10 s).
    assert torch.autograd.gradgradcheck(augment, (img,), fast_mode=True)


def test_presets_are_the_official_ones() -> None:
    assert PRESETS["bgc"] == (
        "xflip", "rotate90", "xint", "scale", "rotate", "aniso", "xfrac",
        "brightness", "contrast", "lumaflip", "hue", "saturation",
    )  # fmt: skip
    assert PRESETS["bgcfnc"] == (*PRESETS["bgc"], "imgfilter", "noise", "cutout")
    pipe = AugmentPipe.preset("geom", rotate_max=0.5)
    assert (pipe.scale, pipe.rotate, pipe.xflip, pipe.rotate_max) == (1, 1, 0, 0.5)
    with pytest.raises(ValueError, match="bgc"):
        AugmentPipe.preset("bgx")
