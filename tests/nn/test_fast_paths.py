"""Fast paths give the values and derivatives of the plain ops they replace.

EqualConv2d's CPU Winograd (NNPACK) path against F.conv2d, and ProGAN's `upsample2x` against
F.interpolate's nearest mode.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
import torch
import torch.nn.functional as F

from gankit.nn import EqualConv2d, equalized
from gankit.nn.resample import upsample2x

needs_nnpack = pytest.mark.skipif(
    not torch.backends.nnpack.is_available(), reason="NNPACK is not available on this CPU"
)


@pytest.fixture
def fast_path() -> Iterator[None]:
    equalized.set_cpu_winograd(True)
    yield
    equalized.set_cpu_winograd(None)


def _critic_with_penalty(fast: bool) -> list[torch.Tensor]:
    """Logits, input gradients, and the parameter gradients of loss + gradient penalty."""
    equalized.set_cpu_winograd(fast)
    torch.manual_seed(0)
    conv0, conv1 = EqualConv2d(3, 8, 3), EqualConv2d(8, 8, 3)
    with torch.no_grad():
        conv0.bias.normal_()
        conv1.bias.normal_()
    x = torch.randn(16, 3, 16, 16, requires_grad=True)  # batch and size where the path applies
    h = F.leaky_relu(conv1(F.leaky_relu(conv0(x), 0.2)), 0.2)
    # A minibatch statistic makes the penalty's second derivatives reach the activations too.
    logits = h.mean(dim=(1, 2, 3)) + h.std(dim=0).mean() * h.square().mean(dim=(1, 2, 3))
    (grad_x,) = torch.autograd.grad(logits.sum(), x, create_graph=True)
    penalty = (grad_x.flatten(1).norm(dim=1) - 1).square().mean()
    params = [conv0.weight, conv0.bias, conv1.weight, conv1.bias]
    grads = torch.autograd.grad(penalty + logits.mean(), [*params, x])
    return [logits.detach(), grad_x.detach(), *grads]


@needs_nnpack
def test_values_and_first_and_second_derivatives_match_conv2d(fast_path: None) -> None:
    fast, reference = _critic_with_penalty(True), _critic_with_penalty(False)
    for got, want in zip(fast, reference, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4 * want.abs().max().item())


@needs_nnpack
def test_penalty_input_gradients_skip_weight_gradients(
    fast_path: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = []
    backward = equalized._Conv3x3ParamGrads.backward
    monkeypatch.setattr(
        equalized._Conv3x3ParamGrads,
        "backward",
        staticmethod(lambda ctx, grad: calls.append(1) or backward(ctx, grad)),
    )
    conv = EqualConv2d(4, 4, 3)
    x = torch.randn(16, 4, 16, 16, requires_grad=True)
    out = conv(x).square().sum()
    torch.autograd.grad(out, x, create_graph=True)
    assert calls == []
    out.backward()
    assert len(calls) == 1 and conv.weight.grad is not None


@needs_nnpack
def test_frozen_weights_still_pass_input_gradients(fast_path: None) -> None:
    conv = EqualConv2d(4, 4, 3).requires_grad_(False)
    x = torch.randn(16, 4, 16, 16, requires_grad=True)
    conv(x).square().sum().backward()
    expected = torch.autograd.grad(
        F.conv2d(x, conv.weight * conv.weight_scale, conv.bias, padding=1).square().sum(), x
    )[0]
    torch.testing.assert_close(x.grad, expected, rtol=1e-4, atol=1e-4 * expected.abs().max().item())


@needs_nnpack
def test_graphs_of_weight_gradients_are_refused_with_advice(fast_path: None) -> None:
    conv = EqualConv2d(4, 4, 3)
    x = torch.randn(16, 4, 16, 16, requires_grad=True)
    with pytest.raises(RuntimeError, match="set_cpu_winograd"):
        torch.autograd.grad(conv(x).square().sum(), conv.weight, create_graph=True)


@pytest.mark.parametrize(
    ("forced", "avx512", "expected"),
    [
        (None, False, True),
        (None, True, False),
        (True, True, True),
        (False, False, False),
    ],
)
def test_the_path_is_on_for_avx2_cpus_unless_forced(
    forced: bool | None, avx512: bool, expected: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # NNPACK has no AVX-512 kernels, and oneDNN's beat it there.
    monkeypatch.setattr(equalized, "_has_avx512", lambda: avx512)
    equalized.set_cpu_winograd(forced)
    try:
        assert equalized.cpu_winograd_enabled() is expected
    finally:
        equalized.set_cpu_winograd(None)


@needs_nnpack
def test_several_threads_split_the_output_channels_over_gankits_workers(
    fast_path: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """NNPACK's own pool would spin against OpenMP's; each part runs on one thread instead."""
    calls: list[tuple[int, int, str]] = []
    equalized._nnpack_initialised()  # its one start-up convolution is not one of the parts
    conv = equalized._plain_conv

    def recording(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
        calls.append((x.shape[0], w.shape[0], threading.current_thread().name))
        return conv(x, w, b)

    monkeypatch.setattr(equalized, "_plain_conv", recording)
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        x, w, b = torch.randn(17, 4, 16, 16), torch.randn(5, 4, 3, 3), torch.randn(5)
        out = equalized.conv2d_same(x, w, b, 1)
    finally:
        torch.set_num_threads(threads)
    expected = F.conv2d(x, w, b, padding=1)
    torch.testing.assert_close(out, expected, rtol=1e-4, atol=1e-4 * expected.abs().max().item())
    assert sorted((n, c) for n, c, _ in calls) == [(17, 2), (17, 3)]  # the whole batch each
    assert {name.startswith("gankit-nnpack") for *_, name in calls} == {True, False}
    assert torch.backends.mkldnn.enabled  # switched back on


@needs_nnpack
def test_the_convolutions_run_on_nnpack_through_public_dispatch(fast_path: None) -> None:
    conv = EqualConv2d(4, 4, 3)
    x = torch.randn(16, 4, 16, 16, requires_grad=True)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        conv(x).square().sum().backward()
    names = [event.name for event in prof.events()]
    # Forward and input gradient on NNPACK; the weight gradient on the default kernel.
    assert sum("nnpack_spatial_convolution" in name for name in names) >= 2
    assert any("convolution_backward" in name for name in names)


@needs_nnpack
def test_nnpack_start_leaves_the_thread_count_as_it_was(
    fast_path: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads = torch.get_num_threads()
    monkeypatch.setattr(equalized, "_nnpack_ready", None)  # start it again
    assert equalized._nnpack_initialised()
    assert torch.get_num_threads() == threads


def test_upsample2x_equals_nearest_interpolation_with_its_gradients() -> None:
    x = torch.randn(3, 4, 5, 6, dtype=torch.float64, requires_grad=True)
    expected = F.interpolate(x, scale_factor=2, mode="nearest")
    assert torch.equal(upsample2x(x), expected)
    grad = torch.randn_like(expected)
    torch.testing.assert_close(
        torch.autograd.grad(upsample2x(x), x, grad)[0],
        torch.autograd.grad(expected, x, grad)[0],
    )
    assert torch.autograd.gradgradcheck(upsample2x, (x,))
