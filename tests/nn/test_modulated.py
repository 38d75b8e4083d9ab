"""Modulated convolution, resampling convolution and the equalized dense layer, against
straightforward re-implementations and their statistics."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from gankit.nn.modulated import (
    FullyConnectedLayer,
    bias_act,
    conv2d_resample,
    modulated_conv2d,
)
from gankit.nn.upfirdn import setup_filter

TAPS = torch.tensor([1.0, 3.0, 3.0, 1.0])


def _fir(x: torch.Tensor, taps: torch.Tensor, pad: tuple[int, int], gain: float) -> torch.Tensor:
    """Depthwise 2-D FIR filtering with the normalized outer-product filter, zero padded."""
    f = torch.outer(taps, taps).to(x.dtype)
    f = f / f.sum() * gain
    c = x.shape[1]
    x = F.pad(x, [pad[0], pad[1], pad[0], pad[1]])
    return F.conv2d(x, f.flip([0, 1]).expand(c, 1, *f.shape), groups=c)


def _zeros_between(x: torch.Tensor) -> torch.Tensor:
    """2x zero insertion: each pixel followed by a zero in both directions."""
    n, c, h, w = x.shape
    big = torch.zeros(n, c, 2 * h, 2 * w, dtype=x.dtype)
    big[:, :, ::2, ::2] = x
    return big


def _upsample_by_hand(x: torch.Tensor) -> torch.Tensor:
    """2x: zeros between pixels, then the [1, 3, 3, 1] filter (gain 4 for the zeros), 2 before, 1 after."""
    return _fir(_zeros_between(x), TAPS, (2, 1), gain=4.0)


def _downsample_by_hand(x: torch.Tensor) -> torch.Tensor:
    """2x: the [1, 3, 3, 1] filter with one pixel of zeros each side, then every other pixel."""
    return _fir(x, TAPS, (1, 1), gain=1.0)[:, :, ::2, ::2]


def _up_conv_by_hand(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """The official up=2 with a 3x3 kernel and padding 1: zero insertion, ONE padding of the
    upsampled image (3 before, 2 after: the kernel's 1 plus the filter's 2 and 1), a valid
    correlation with w, then the valid [1, 3, 3, 1] filter with gain 4."""
    big = F.pad(_zeros_between(x), [3, 2, 3, 2])
    return _fir(F.conv2d(big, w), TAPS, (0, 0), gain=4.0)


def _conv_down_by_hand(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """The official down=2 with a 3x3 kernel and padding 1: ONE padding of 2 each side, a valid
    correlation with w, the valid [1, 3, 3, 1] filter, then every other pixel."""
    return _fir(F.conv2d(F.pad(x, [2, 2, 2, 2]), w), TAPS, (0, 0), gain=1.0)[:, :, ::2, ::2]


def _modulated_by_hand(
    x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor, demodulate: bool
) -> list[torch.Tensor]:
    """Each sample's own modulated (and demodulated) weight, [O, I, k, k]."""
    out = []
    for s in styles:
        w = weight * s.reshape(1, -1, 1, 1)
        if demodulate:
            w = w / (w.square().sum(dim=[1, 2, 3], keepdim=True) + 1e-8).sqrt()
        out.append(w)
    return out


def _inputs(seed: int = 0, i: int = 5, o: int = 4, k: int = 3, n: int = 3, size: int = 8):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, i, size, size, generator=gen, dtype=torch.float64)
    weight = torch.randn(o, i, k, k, generator=gen, dtype=torch.float64)
    styles = torch.randn(n, i, generator=gen, dtype=torch.float64) + 1.0
    return x, weight, styles


@pytest.mark.parametrize(("up", "down"), [(1, 1), (2, 1), (1, 2)])
@pytest.mark.parametrize("demodulate", [True, False])
@pytest.mark.parametrize("flip_weight", [True, False])
def test_fused_equals_non_fused(up: int, down: int, demodulate: bool, flip_weight: bool) -> None:
    x, weight, styles = (t.float() for t in _inputs())
    size = 8 * up // down
    noise = torch.randn(3, 1, size, size)
    kwargs = dict(
        noise=noise,
        up=up,
        down=down,
        padding=1,
        resample_filter=setup_filter(TAPS),
        demodulate=demodulate,
        flip_weight=flip_weight,
    )
    fused = modulated_conv2d(x, weight, styles, fused_modconv=True, **kwargs)
    plain = modulated_conv2d(x, weight, styles, fused_modconv=False, **kwargs)
    assert fused.shape == (3, 4, size, size)
    torch.testing.assert_close(fused, plain, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("demodulate", [True, False])
def test_same_resolution_equals_per_sample_conv(demodulate: bool) -> None:
    x, weight, styles = _inputs()
    out = modulated_conv2d(x, weight, styles, padding=1, demodulate=demodulate)
    per_sample = _modulated_by_hand(x, weight, styles, demodulate)
    expected = torch.cat([F.conv2d(x[i : i + 1], w, padding=1) for i, w in enumerate(per_sample)])
    torch.testing.assert_close(out, expected)


@pytest.mark.parametrize("fused", [True, False])
def test_up2_is_upsample_then_convolution(fused: bool) -> None:
    x, weight, styles = _inputs()
    f = setup_filter(TAPS).double()
    # flip_weight=False (as the synthesis layers use with up=2) is a true convolution.
    out = modulated_conv2d(
        x, weight, styles, up=2, padding=1, resample_filter=f, flip_weight=False,
        fused_modconv=fused,
    )  # fmt: skip
    per_sample = [w.flip([2, 3]) for w in _modulated_by_hand(x, weight, styles, True)]
    expected = torch.cat([_up_conv_by_hand(x[i : i + 1], w) for i, w in enumerate(per_sample)])
    assert out.shape == (3, 4, 16, 16)
    torch.testing.assert_close(out, expected)
    # Padding happens once, before both steps, so only the border differs from upsampling
    # first and then convolving with its own zero padding.
    up = _upsample_by_hand(x)
    separate = torch.cat([F.conv2d(up[i : i + 1], w, padding=1) for i, w in enumerate(per_sample)])
    torch.testing.assert_close(out[..., 2:-2, 2:-2], separate[..., 2:-2, 2:-2])
    assert not torch.allclose(out, separate)


@pytest.mark.parametrize("fused", [True, False])
def test_down2_is_convolution_then_downsample(fused: bool) -> None:
    x, weight, styles = _inputs()
    f = setup_filter(TAPS).double()
    out = modulated_conv2d(
        x, weight, styles, down=2, padding=1, resample_filter=f, fused_modconv=fused
    )
    per_sample = _modulated_by_hand(x, weight, styles, True)
    expected = torch.cat([_conv_down_by_hand(x[i : i + 1], w) for i, w in enumerate(per_sample)])
    assert out.shape == (3, 4, 4, 4)
    torch.testing.assert_close(out, expected)
    conv = torch.cat([F.conv2d(x[i : i + 1], w, padding=1) for i, w in enumerate(per_sample)])
    separate = _downsample_by_hand(conv)
    torch.testing.assert_close(out[..., 1:-1, 1:-1], separate[..., 1:-1, 1:-1])


def test_1x1_resampling_convolutions_match_the_composition() -> None:
    x, weight, _ = _inputs(k=1)
    f = setup_filter(TAPS).double()
    torch.testing.assert_close(
        conv2d_resample(x, weight, f, up=2), F.conv2d(_upsample_by_hand(x), weight)
    )
    torch.testing.assert_close(
        conv2d_resample(x, weight, f, down=2), _downsample_by_hand(F.conv2d(x, weight))
    )


def test_resampling_convolution_with_groups_and_up2() -> None:
    x, weight, _ = _inputs(i=4, o=6)
    w = weight[:, :2]  # 2 groups of 2 input channels -> 3 output channels each
    f = setup_filter(TAPS).double()
    out = conv2d_resample(x, w, f, up=2, padding=1, groups=2)
    big = F.pad(_zeros_between(x), [3, 2, 3, 2])
    expected = _fir(F.conv2d(big, w, groups=2), TAPS, (0, 0), gain=4.0)
    torch.testing.assert_close(out, expected)


def test_asymmetric_padding_without_resampling() -> None:
    x, weight, _ = _inputs()
    out = conv2d_resample(x, weight, padding=[2, 0, 1, 3])
    torch.testing.assert_close(out, F.conv2d(F.pad(x, [2, 0, 1, 3]), weight))


def test_demodulated_output_has_unit_variance() -> None:
    torch.manual_seed(0)
    x = torch.randn(16, 64, 10, 10)
    weight = torch.randn(32, 64, 3, 3)
    styles = torch.rand(16, 64) * 3 + 0.1  # far from uniform: demodulation must undo it
    out = modulated_conv2d(x, weight, styles, demodulate=True)
    per_channel = out.var(dim=[0, 2, 3])
    assert per_channel.mean().item() == pytest.approx(1.0, abs=0.05)
    assert (per_channel - 1).abs().max().item() < 0.25
    # Without demodulation the variance is each sample's squared modulated weight norm.
    raw = modulated_conv2d(x, weight, styles, demodulate=False)
    expected = (weight.unsqueeze(0) * styles.reshape(16, 1, 64, 1, 1)).square().sum(dim=[2, 3, 4])
    ratio = raw.var(dim=[2, 3]) / expected
    assert ratio.mean().item() == pytest.approx(1.0, abs=0.05)


def test_half_precision_input_is_normalised_and_stays_close() -> None:
    x, weight, styles = (t.float() for t in _inputs())
    styles = styles * 300.0  # big styles: squares of the modulated weights would overflow fp16
    out = modulated_conv2d(x.half(), weight, styles.half(), padding=1)
    assert out.dtype == torch.float16
    assert torch.isfinite(out).all()
    reference = modulated_conv2d(x, weight, styles, padding=1)
    torch.testing.assert_close(out.float(), reference, rtol=2e-2, atol=2e-2)


def test_fully_connected_layer_scales_by_lr_multiplier_and_fan_in() -> None:
    torch.manual_seed(0)
    layer = FullyConnectedLayer(16, 4, lr_multiplier=0.01, bias_init=0.5)
    x = torch.randn(3, 16)
    expected = F.linear(x, layer.weight * (0.01 / 4.0), layer.bias * 0.01)
    torch.testing.assert_close(layer(x), expected)
    # Stored weights are N(0, 1) / lr_multiplier; the stored bias is bias_init (as the official
    # code: the effective bias starts at bias_init * lr_multiplier).
    assert layer.weight.std().item() == pytest.approx(100.0, rel=0.3)
    torch.testing.assert_close(layer.bias.detach(), torch.full((4,), 0.5))


def test_lr_multiplier_scales_the_parameter_gradients() -> None:
    torch.manual_seed(0)
    fast = FullyConnectedLayer(8, 3, activation="lrelu")
    slow = FullyConnectedLayer(8, 3, activation="lrelu", lr_multiplier=0.1)
    with torch.no_grad():
        slow.weight.copy_(fast.weight / 0.1)
        fast.bias.normal_()
        slow.bias.copy_(fast.bias / 0.1)
    x = torch.randn(5, 8)
    torch.testing.assert_close(fast(x), slow(x))  # the same function...
    fast(x).square().sum().backward()
    slow(x).square().sum().backward()
    # ...whose raw parameters move 10x slower (and Adam's steps in the effective weights too).
    torch.testing.assert_close(slow.weight.grad, 0.1 * fast.weight.grad)
    torch.testing.assert_close(slow.bias.grad, 0.1 * fast.bias.grad)


def test_fully_connected_lrelu_has_gain_sqrt2() -> None:
    layer = FullyConnectedLayer(4, 2, activation="lrelu")
    x = torch.randn(6, 4)
    linear = F.linear(x, layer.weight / 2.0, layer.bias)
    torch.testing.assert_close(layer(x), F.leaky_relu(linear, 0.2) * math.sqrt(2))


def test_bias_act_known_values() -> None:
    x = torch.tensor([[-2.0, 0.5], [3.0, -0.25]])
    b = torch.tensor([1.0, -1.0])
    s = math.sqrt(2)
    # Columns get their bias: [[-1, -0.5], [4, -1.25]].
    expected = torch.tensor([[-0.2 * s, -0.1 * s], [4 * s, -0.25 * s]])
    torch.testing.assert_close(bias_act(x, b, act="lrelu"), expected)
    torch.testing.assert_close(bias_act(x, b, act="lrelu", clamp=1.0), expected.clamp(-1.0, 1.0))
    torch.testing.assert_close(bias_act(x, b, act="relu", gain=1.0), (x + b).relu())
    torch.testing.assert_close(bias_act(x, None, act="linear", gain=2.0), 2 * x)
    with pytest.raises(ValueError, match="activation"):
        bias_act(x, act="swish")


@pytest.mark.parametrize(("up", "down"), [(2, 1), (1, 2)])
def test_modulated_conv2d_is_twice_differentiable(up: int, down: int) -> None:
    # The path-length and R1 penalties differentiate through G's and D's gradients.
    x, weight, styles = _inputs(i=2, o=2, n=2, size=4)
    f = setup_filter([1, 1]).double()
    inputs = tuple(t.requires_grad_() for t in (x, weight, styles))

    def fn(x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor) -> torch.Tensor:
        return modulated_conv2d(x, weight, styles, up=up, down=down, padding=1, resample_filter=f)

    assert torch.autograd.gradgradcheck(fn, inputs)
