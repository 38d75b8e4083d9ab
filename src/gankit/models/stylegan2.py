"""StyleGAN2 networks: Karras et al., "Analyzing and Improving the Image Quality of StyleGAN",
CVPR 2020, arXiv:1912.04958, as in the official NVlabs/stylegan2-ada-pytorch
`training/networks.py` (Karras et al., "Training Generative Adversarial Networks with Limited
Data", NeurIPS 2020, arXiv:2006.06676).

Generator: an 8-layer mapping network (lr multiplier 0.01, z and the label embedding normalised
to unit second moment) makes w, broadcast to `num_ws` copies; the synthesis network starts from a
learned 4x4 constant and, per resolution, runs modulated 3x3 convolutions (the first of each block
upsamples 2x through the [1, 3, 3, 1] filter) with per-pixel noise, bias and LeakyReLU(0.2) x
sqrt(2). Architectures: "skip" (default; each block adds its toRGB to the upsampled image so far),
"resnet" (1x1 upsampling skip connections, outputs scaled by sqrt(0.5), one toRGB at the end),
"orig" (one toRGB at the end). `G.mapping` tracks `w_avg`, the moving average of w (beta 0.995)
that truncation pulls towards: `w_avg + psi * (w - w_avg)` for the first `truncation_cutoff` ws.

Discriminator: "resnet" (default), "skip" or "orig" blocks of two 3x3 convolutions, the second
downsampling 2x through the filter, then at 4x4 minibatch standard deviation (group 4, 1 channel),
a 3x3 conv, a dense layer and the output. With classes (c_dim > 0) G embeds the one-hot label in
its mapping network and D projects its output onto a mapped label (`cmap`), as the official code.
Widths are `min(channel_base // resolution, channel_max)` (at least 1, for tiny test widths).

Labels: gankit passes class indices int64 `[N]`; G and D turn them into one-hot `[N, c_dim]`
(the official code's input), and also take one-hot or soft labels `[N, c_dim]` as given.

Defaults and deviations from the official code:
- The defaults are the official "stylegan2" config (train.py `--cfg=stylegan2`, the paper's
  setup): channel_base 32768, channel_max 512, 8 mapping layers, minibatch-stddev group 4. The
  official `auto` config uses 2 mapping layers and channel_base 16384 below 512 px; the
  stylegan2 recipe's configuration sets those through `model.name: auto`.
- No per-block float16 (`num_fp16_res`) and so `conv_clamp` defaults to None: gankit's loop runs
  mixed precision as autocast for the whole step. `conv_clamp` (the official uses 256 with its
  float16 blocks) is available and clamps every conv output as the official does.
- `force_fp32=True` runs the networks with autocast switched off (the official flag only turns
  off its float16 blocks, of which there are none here).
- w_avg moves only when the caller passes `update_emas=True` (the convention of the later official
  StyleGAN3 code); stylegan2-ada's `MappingNetwork` moved it on every training-mode call unless
  told to skip, which the recipe reproduces by passing `update_emas=True` on every G run of
  training (not on the style-mixing latent).
- D returns logits `[N]` (gankit's model contract), not the official `[N, 1]`.
- Freeze-D (`freeze_layers`) and channels-last weights are not implemented.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext

import torch
import torch.nn.functional as F
from torch import nn

from gankit.errors import ConfigError
from gankit.models.progan import channels_at, check_resolution
from gankit.nn.modulated import (
    FullyConnectedLayer,
    activation_gain,
    bias_act,
    conv2d_resample,
    modulated_conv2d,
)
from gankit.nn.normalization import MinibatchStdDev
from gankit.nn.upfirdn import downsample2d, setup_filter, upsample2d
from gankit.registry import MODELS

G_ARCHITECTURES = ("orig", "skip", "resnet")
D_ARCHITECTURES = ("orig", "skip", "resnet")
NOISE_MODES = ("random", "const", "none")
SQRT_HALF = math.sqrt(0.5)


def normalize_2nd_moment(x: torch.Tensor, dim: int = 1, eps: float = 1e-8) -> torch.Tensor:
    """Scale `x` to unit mean square along `dim`."""
    return x * (x.square().mean(dim=dim, keepdim=True) + eps).rsqrt()


def labels_as_vectors(c: torch.Tensor | None, c_dim: int, batch: int) -> torch.Tensor | None:
    """Labels as float `[N, c_dim]`: class indices `[N]` become one-hot; None when c_dim = 0."""
    if c_dim == 0:
        if c is not None and c.numel() > 0:
            raise ValueError(
                "this StyleGAN2 is unconditional (c_dim = 0) but was given labels c; call it "
                "without c, or build it with c_dim > 0"
            )
        return None
    if c is None:
        raise ValueError(
            f"this StyleGAN2 is conditional on {c_dim} classes: pass labels c as class indices "
            f"[N] or one-hot [N, {c_dim}]"
        )
    if c.shape == (batch,) and not c.is_floating_point():
        return F.one_hot(c.long(), c_dim).float()
    if c.shape != (batch, c_dim):
        raise ValueError(
            f"labels c must be class indices [{batch}] or vectors [{batch}, {c_dim}]; got "
            f"{list(c.shape)} ({c.dtype})"
        )
    return c.float()


def _channels(resolutions: Sequence[int], channel_base: int, channel_max: int) -> dict[int, int]:
    return {r: channels_at(r, channel_base, channel_max) for r in resolutions}


def _autocast_off(x: torch.Tensor, force_fp32: bool) -> AbstractContextManager[object]:
    """A context that switches autocast off for `force_fp32` (a no-op context otherwise)."""
    return torch.autocast(x.device.type, enabled=False) if force_fp32 else nullcontext()


def check_stylegan2_resolution(img_resolution: int) -> list[int]:
    """4, 8, ..., img_resolution; a clear error below 8 (D needs one block above its 4x4 end)."""
    resolutions = check_resolution(img_resolution, "stylegan2")
    if img_resolution < 8:
        raise ConfigError(
            f"stylegan2's discriminator needs a resolution of at least 8 (it ends in a 4x4 "
            f"block); got {img_resolution}. Pass --resolution 8 or more."
        )
    return resolutions


class MappingNetwork(nn.Module):
    """z `[N, z_dim]` (and labels) -> ws `[N, num_ws, w_dim]` (`[N, w_dim]` when num_ws is None)."""

    def __init__(
        self,
        z_dim: int,
        c_dim: int,
        w_dim: int,
        num_ws: int | None,
        num_layers: int = 8,
        embed_features: int | None = None,
        layer_features: int | None = None,
        activation: str = "lrelu",
        lr_multiplier: float = 0.01,
        w_avg_beta: float | None = 0.995,
    ) -> None:
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim, self.num_ws = z_dim, c_dim, w_dim, num_ws
        self.num_layers, self.w_avg_beta = num_layers, w_avg_beta
        embed_features = 0 if c_dim == 0 else (w_dim if embed_features is None else embed_features)
        layer_features = w_dim if layer_features is None else layer_features
        features = [z_dim + embed_features] + [layer_features] * (num_layers - 1) + [w_dim]
        self.embed = FullyConnectedLayer(c_dim, embed_features) if c_dim > 0 else None
        self.layers = nn.ModuleList(
            FullyConnectedLayer(
                features[i], features[i + 1], activation=activation, lr_multiplier=lr_multiplier
            )
            for i in range(num_layers)
        )
        if num_ws is not None and w_avg_beta is not None:
            self.register_buffer("w_avg", torch.zeros(w_dim))

    def forward(
        self,
        z: torch.Tensor | None,
        c: torch.Tensor | None = None,
        truncation_psi: float = 1,
        truncation_cutoff: int | None = None,
        update_emas: bool = False,
    ) -> torch.Tensor:
        x = self.embed_inputs(z, c)
        for layer in self.layers:
            x = layer(x)

        if update_emas and self.w_avg_beta is not None and self.num_ws is not None:
            with torch.no_grad():
                self.w_avg.copy_(x.detach().float().mean(dim=0).lerp(self.w_avg, self.w_avg_beta))
        if self.num_ws is None:
            return x
        x = x.unsqueeze(1).expand(-1, self.num_ws, -1)
        if truncation_psi != 1:
            x = self._truncate(x, truncation_psi, truncation_cutoff)
        return x

    def embed_inputs(self, z: torch.Tensor | None, c: torch.Tensor | None) -> torch.Tensor:
        """The first layer's input: z and the embedded label, each normalised, concatenated."""
        batch = z.shape[0] if z is not None else (c.shape[0] if c is not None else 0)
        parts = []
        if self.z_dim > 0:
            parts.append(normalize_2nd_moment(self.checked_z(z, batch).float()))
        y = labels_as_vectors(c, self.c_dim, batch)
        if self.embed is not None and y is not None:
            parts.append(normalize_2nd_moment(self.embed(y)))
        return torch.cat(parts, dim=1) if len(parts) > 1 else parts[0]

    def checked_z(self, z: torch.Tensor | None, batch: int) -> torch.Tensor:
        """`z`, or a clear error when it is not `[N, z_dim]`."""
        if z is None or z.shape != (batch, self.z_dim):
            raise ValueError(f"mapping takes z [N, {self.z_dim}]; got {_shape(z)}")
        return z

    def _truncate(self, x: torch.Tensor, psi: float, cutoff: int | None) -> torch.Tensor:
        """Pull the first `cutoff` ws (all for None) towards w_avg: `w_avg + psi * (w - w_avg)`."""
        if self.w_avg_beta is None:
            raise ValueError("truncation needs w_avg, which this mapping network does not track")
        w_avg = self.w_avg.to(x.dtype)
        if cutoff is None:
            return w_avg.lerp(x, psi)
        return torch.cat([w_avg.lerp(x[:, :cutoff], psi), x[:, cutoff:]], dim=1)


def _shape(t: torch.Tensor | None) -> object:
    return None if t is None else list(t.shape)


class Conv2dLayer(nn.Module):
    """Equalized conv with optional 2x resampling, bias, activation (gain) and clamp."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        bias: bool = True,
        activation: str = "linear",
        up: int = 1,
        down: int = 1,
        resample_filter: Sequence[float] = (1, 3, 3, 1),
        conv_clamp: float | None = None,
    ) -> None:
        super().__init__()
        self.activation, self.up, self.down, self.conv_clamp = activation, up, down, conv_clamp
        self.register_buffer("resample_filter", setup_filter(list(resample_filter)))
        self.padding = kernel_size // 2
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size**2)
        self.act_gain = activation_gain(activation)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None

    def forward(self, x: torch.Tensor, gain: float = 1) -> torch.Tensor:
        w = (self.weight * self.weight_gain).to(x.dtype)
        x = conv2d_resample(
            x, w, self.resample_filter, up=self.up, down=self.down, padding=self.padding,
            flip_weight=self.up == 1,  # the official choice; a true convolution when upsampling
        )  # fmt: skip
        clamp = None if self.conv_clamp is None else self.conv_clamp * gain
        return bias_act(x, self.bias, act=self.activation, gain=self.act_gain * gain, clamp=clamp)


class SynthesisLayer(nn.Module):
    """Modulated 3x3 conv (optionally upsampling 2x), noise, bias and LeakyReLU x sqrt(2)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        w_dim: int,
        resolution: int,
        kernel_size: int = 3,
        up: int = 1,
        use_noise: bool = True,
        activation: str = "lrelu",
        resample_filter: Sequence[float] = (1, 3, 3, 1),
        conv_clamp: float | None = None,
    ) -> None:
        super().__init__()
        self.resolution, self.up, self.use_noise = resolution, up, use_noise
        self.activation, self.conv_clamp = activation, conv_clamp
        self.register_buffer("resample_filter", setup_filter(list(resample_filter)))
        self.padding = kernel_size // 2
        self.act_gain = activation_gain(activation)
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        if use_noise:
            self.register_buffer("noise_const", torch.randn(resolution, resolution))
            self.noise_strength = nn.Parameter(torch.zeros([]))
        self.bias = nn.Parameter(torch.zeros(out_channels))

    def forward(
        self,
        x: torch.Tensor,
        w: torch.Tensor,
        noise_mode: str = "random",
        fused_modconv: bool = True,
        gain: float = 1,
    ) -> torch.Tensor:
        if noise_mode not in NOISE_MODES:
            raise ValueError(f"noise_mode must be one of {NOISE_MODES}; got {noise_mode!r}")
        styles = self.affine(w)
        noise = None
        if self.use_noise and noise_mode == "random":
            size = (x.shape[0], 1, self.resolution, self.resolution)
            noise = torch.randn(size, device=x.device) * self.noise_strength
        elif self.use_noise and noise_mode == "const":
            noise = self.noise_const * self.noise_strength
        x = modulated_conv2d(
            x, self.weight, styles, noise=noise, up=self.up, padding=self.padding,
            resample_filter=self.resample_filter, flip_weight=self.up == 1,
            fused_modconv=fused_modconv,
        )  # fmt: skip
        clamp = None if self.conv_clamp is None else self.conv_clamp * gain
        return bias_act(x, self.bias, act=self.activation, gain=self.act_gain * gain, clamp=clamp)


class ToRGBLayer(nn.Module):
    """Modulated 1x1 conv to image channels, without demodulation; bias, optional clamp."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        w_dim: int,
        kernel_size: int = 1,
        conv_clamp: float | None = None,
    ) -> None:
        super().__init__()
        self.conv_clamp = conv_clamp
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size**2)

    def forward(self, x: torch.Tensor, w: torch.Tensor, fused_modconv: bool = True) -> torch.Tensor:
        # Equalized learning rate through the styles: without demodulation the weight's scale shows.
        styles = self.affine(w) * self.weight_gain
        x = modulated_conv2d(x, self.weight, styles, demodulate=False, fused_modconv=fused_modconv)
        return bias_act(x, self.bias, clamp=self.conv_clamp)


class SynthesisBlock(nn.Module):
    """One resolution of the synthesis network: `(x, img, ws) -> (x, img)` at twice the size
    (the first block starts from its learned constant)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        w_dim: int,
        resolution: int,
        img_channels: int,
        is_last: bool,
        architecture: str = "skip",
        resample_filter: Sequence[float] = (1, 3, 3, 1),
        conv_clamp: float | None = None,
        use_noise: bool = True,
    ) -> None:
        if architecture not in G_ARCHITECTURES:
            raise ConfigError(
                f"stylegan2 G architecture must be one of {G_ARCHITECTURES}; got {architecture!r}"
            )
        super().__init__()
        self.in_channels, self.w_dim, self.resolution = in_channels, w_dim, resolution
        self.img_channels, self.is_last, self.architecture = img_channels, is_last, architecture
        self.register_buffer("resample_filter", setup_filter(list(resample_filter)))
        layer = dict(w_dim=w_dim, resolution=resolution, conv_clamp=conv_clamp, use_noise=use_noise)
        self.num_conv = self.num_torgb = 0
        if in_channels == 0:
            self.const = nn.Parameter(torch.randn(out_channels, resolution, resolution))
        else:
            self.conv0 = SynthesisLayer(
                in_channels, out_channels, up=2, resample_filter=resample_filter, **layer
            )
            self.num_conv += 1
        self.conv1 = SynthesisLayer(out_channels, out_channels, **layer)
        self.num_conv += 1
        if is_last or architecture == "skip":
            self.torgb = ToRGBLayer(out_channels, img_channels, w_dim, conv_clamp=conv_clamp)
            self.num_torgb += 1
        if in_channels != 0 and architecture == "resnet":
            self.skip = Conv2dLayer(
                in_channels, out_channels, 1, bias=False, up=2, resample_filter=resample_filter
            )

    def forward(
        self,
        x: torch.Tensor | None,
        img: torch.Tensor | None,
        ws: torch.Tensor,
        noise_mode: str = "random",
        fused_modconv: bool | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        if ws.shape[1:] != (self.num_conv + self.num_torgb, self.w_dim):
            raise ValueError(f"block {self.resolution}: ws {list(ws.shape)} has the wrong shape")
        w_iter = iter(ws.unbind(dim=1))
        if fused_modconv is None:
            # The official choice: per-sample weights when sampling, shared ones while training.
            fused_modconv = not self.training
        if self.in_channels == 0:
            x = self.const.unsqueeze(0).expand(ws.shape[0], -1, -1, -1)
            x = self.conv1(x, next(w_iter), noise_mode, fused_modconv)
        elif self.architecture == "resnet":
            y = self.skip(x, gain=SQRT_HALF)
            x = self.conv0(x, next(w_iter), noise_mode, fused_modconv)
            x = y + self.conv1(x, next(w_iter), noise_mode, fused_modconv, gain=SQRT_HALF)
        else:
            x = self.conv0(x, next(w_iter), noise_mode, fused_modconv)
            x = self.conv1(x, next(w_iter), noise_mode, fused_modconv)
        if img is not None:
            img = upsample2d(img, self.resample_filter)
        if self.is_last or self.architecture == "skip":
            y = self.torgb(x, next(w_iter), fused_modconv).float()
            img = y if img is None else img + y
        return x, img


class SynthesisNetwork(nn.Module):
    """ws `[N, num_ws, w_dim]` -> images `[N, img_channels, img_resolution, img_resolution]`."""

    def __init__(
        self,
        w_dim: int,
        img_resolution: int,
        img_channels: int,
        channel_base: int = 32768,
        channel_max: int = 512,
        architecture: str = "skip",
        resample_filter: Sequence[float] = (1, 3, 3, 1),
        conv_clamp: float | None = None,
        use_noise: bool = True,
    ) -> None:
        super().__init__()
        self.w_dim, self.img_resolution, self.img_channels = w_dim, img_resolution, img_channels
        self.block_resolutions = check_resolution(img_resolution, "stylegan2")
        ch = _channels(self.block_resolutions, channel_base, channel_max)
        self.blocks = nn.ModuleDict()
        self.num_ws = 0
        for res in self.block_resolutions:
            block = SynthesisBlock(
                ch[res // 2] if res > 4 else 0, ch[res], w_dim, res, img_channels,
                is_last=res == img_resolution, architecture=architecture,
                resample_filter=resample_filter, conv_clamp=conv_clamp, use_noise=use_noise,
            )  # fmt: skip
            # Consecutive blocks share a w: a block's toRGB uses the next block's first w.
            self.num_ws += block.num_conv + (block.num_torgb if res == img_resolution else 0)
            self.blocks[f"b{res}"] = block

    def forward(
        self,
        ws: torch.Tensor,
        noise_mode: str = "random",
        force_fp32: bool = False,
        fused_modconv: bool | None = None,
    ) -> torch.Tensor:
        if ws.ndim != 3 or ws.shape[1:] != (self.num_ws, self.w_dim):
            raise ValueError(
                f"synthesis takes ws [N, {self.num_ws}, {self.w_dim}]; got {_shape(ws)}"
            )
        with _autocast_off(ws, force_fp32):
            ws = ws.float()
            x = img = None
            w_idx = 0
            for block in self.blocks.values():
                block_ws = ws.narrow(1, w_idx, block.num_conv + block.num_torgb)
                x, img = block(x, img, block_ws, noise_mode, fused_modconv)
                w_idx += block.num_conv
        assert img is not None
        return img


class Generator(nn.Module):
    """StyleGAN2 G: `G(z [N, z_dim], c) -> img [N, img_channels, R, R]` via `mapping` and `synthesis`."""

    def __init__(
        self,
        z_dim: int,
        c_dim: int,
        w_dim: int,
        img_resolution: int,
        img_channels: int,
        *,
        mapping_layers: int = 8,
        mapping_lr_multiplier: float = 0.01,
        embed_features: int | None = None,
        layer_features: int | None = None,
        w_avg_beta: float = 0.995,
        channel_base: int = 32768,
        channel_max: int = 512,
        architecture: str = "skip",
        resample_filter: Sequence[float] = (1, 3, 3, 1),
        conv_clamp: float | None = None,
        use_noise: bool = True,
    ) -> None:
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim = z_dim, c_dim, w_dim
        self.img_resolution, self.img_channels = img_resolution, img_channels
        self.output_kind = "images"
        self.synthesis = SynthesisNetwork(
            w_dim, img_resolution, img_channels, channel_base, channel_max, architecture,
            resample_filter, conv_clamp, use_noise,
        )  # fmt: skip
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(
            z_dim, c_dim, w_dim, self.num_ws, mapping_layers, embed_features, layer_features,
            lr_multiplier=mapping_lr_multiplier, w_avg_beta=w_avg_beta,
        )  # fmt: skip

    def forward(
        self,
        z: torch.Tensor,
        c: torch.Tensor | None = None,
        truncation_psi: float = 1,
        truncation_cutoff: int | None = None,
        noise_mode: str = "random",
        update_emas: bool = False,
        force_fp32: bool = False,
        fused_modconv: bool | None = None,
    ) -> torch.Tensor:
        ws = self.mapping(z, c, truncation_psi, truncation_cutoff, update_emas=update_emas)
        return self.synthesis(ws, noise_mode, force_fp32, fused_modconv)


class DiscriminatorBlock(nn.Module):
    """One resolution of D: `(x, img) -> (x, img)` at half the size (fromRGB where it reads img)."""

    def __init__(
        self,
        in_channels: int,
        tmp_channels: int,
        out_channels: int,
        resolution: int,
        img_channels: int,
        architecture: str = "resnet",
        activation: str = "lrelu",
        resample_filter: Sequence[float] = (1, 3, 3, 1),
        conv_clamp: float | None = None,
    ) -> None:
        if architecture not in D_ARCHITECTURES:
            raise ConfigError(
                f"stylegan2 D architecture must be one of {D_ARCHITECTURES}; got {architecture!r}"
            )
        if in_channels not in (0, tmp_channels):
            raise ValueError(f"in_channels must be 0 or {tmp_channels}; got {in_channels}")
        super().__init__()
        self.in_channels, self.resolution, self.img_channels = in_channels, resolution, img_channels
        self.architecture = architecture
        self.register_buffer("resample_filter", setup_filter(list(resample_filter)))
        conv = dict(activation=activation, conv_clamp=conv_clamp)
        if in_channels == 0 or architecture == "skip":
            self.fromrgb = Conv2dLayer(img_channels, tmp_channels, 1, **conv)
        self.conv0 = Conv2dLayer(tmp_channels, tmp_channels, 3, **conv)
        self.conv1 = Conv2dLayer(
            tmp_channels, out_channels, 3, down=2, resample_filter=resample_filter, **conv
        )
        if architecture == "resnet":
            self.skip = Conv2dLayer(
                tmp_channels, out_channels, 1, bias=False, down=2, resample_filter=resample_filter
            )

    def forward(
        self, x: torch.Tensor | None, img: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        if self.in_channels == 0 or self.architecture == "skip":
            assert img is not None
            y = self.fromrgb(img)
            x = y if x is None else x + y
            img = downsample2d(img, self.resample_filter) if self.architecture == "skip" else None
        assert x is not None
        if self.architecture == "resnet":
            y = self.skip(x, gain=SQRT_HALF)
            x = y + self.conv1(self.conv0(x), gain=SQRT_HALF)
        else:
            x = self.conv1(self.conv0(x))
        return x, img


class MinibatchStdLayer(MinibatchStdDev):
    """StyleGAN2's minibatch standard deviation: gankit's shared layer, the official grouping
    (sample i in group i mod N / G), `group_size` capped by the batch; appends `num_channels` maps."""

    def __init__(self, group_size: int = 4, num_channels: int = 1) -> None:
        super().__init__(group_size, num_channels)


class DiscriminatorEpilogue(nn.Module):
    """D at 4x4: minibatch stddev, 3x3 conv, dense, output (projected onto `cmap` with labels)."""

    def __init__(
        self,
        in_channels: int,
        cmap_dim: int,
        resolution: int,
        img_channels: int,
        architecture: str = "resnet",
        mbstd_group_size: int = 4,
        mbstd_num_channels: int = 1,
        activation: str = "lrelu",
        conv_clamp: float | None = None,
    ) -> None:
        super().__init__()
        self.in_channels, self.cmap_dim, self.resolution = in_channels, cmap_dim, resolution
        self.img_channels, self.architecture = img_channels, architecture
        if architecture == "skip":
            self.fromrgb = Conv2dLayer(img_channels, in_channels, 1, activation=activation)
        self.mbstd = (
            MinibatchStdLayer(mbstd_group_size, mbstd_num_channels) if mbstd_num_channels else None
        )
        self.conv = Conv2dLayer(
            in_channels + mbstd_num_channels, in_channels, 3, activation=activation,
            conv_clamp=conv_clamp,
        )  # fmt: skip
        self.fc = FullyConnectedLayer(
            in_channels * resolution**2, in_channels, activation=activation
        )
        self.out = FullyConnectedLayer(in_channels, cmap_dim or 1)

    def forward(
        self, x: torch.Tensor, img: torch.Tensor | None, cmap: torch.Tensor | None
    ) -> torch.Tensor:
        # The epilogue runs in float32 as the official one does.
        x = x.float()
        if self.architecture == "skip":
            assert img is not None
            x = x + self.fromrgb(img.float())
        if self.mbstd is not None:
            x = self.mbstd(x)
        x = self.out(self.fc(self.conv(x).flatten(1)))
        if self.cmap_dim > 0:
            assert cmap is not None
            x = (x * cmap).sum(dim=1, keepdim=True) * (1 / math.sqrt(self.cmap_dim))
        return x


class Discriminator(nn.Module):
    """StyleGAN2 D: `D(img [N, img_channels, R, R], c) -> logits [N]`."""

    def __init__(
        self,
        c_dim: int,
        img_resolution: int,
        img_channels: int,
        *,
        architecture: str = "resnet",
        channel_base: int = 32768,
        channel_max: int = 512,
        conv_clamp: float | None = None,
        cmap_dim: int | None = None,
        mapping_layers: int = 8,
        mbstd_group_size: int = 4,
        mbstd_num_channels: int = 1,
        resample_filter: Sequence[float] = (1, 3, 3, 1),
    ) -> None:
        super().__init__()
        self.c_dim, self.img_resolution, self.img_channels = c_dim, img_resolution, img_channels
        resolutions = check_stylegan2_resolution(img_resolution)
        self.block_resolutions = resolutions[:0:-1]  # img_resolution down to 8
        ch = _channels(resolutions, channel_base, channel_max)
        cmap_dim = 0 if c_dim == 0 else (ch[4] if cmap_dim is None else cmap_dim)
        self.blocks = nn.ModuleDict()
        for res in self.block_resolutions:
            self.blocks[f"b{res}"] = DiscriminatorBlock(
                ch[res] if res < img_resolution else 0, ch[res], ch[res // 2], res, img_channels,
                architecture=architecture, resample_filter=resample_filter, conv_clamp=conv_clamp,
            )  # fmt: skip
        self.mapping = None
        if c_dim > 0:
            self.mapping = MappingNetwork(
                0, c_dim, cmap_dim, num_ws=None, num_layers=mapping_layers, w_avg_beta=None
            )
        self.b4 = DiscriminatorEpilogue(
            ch[4], cmap_dim, 4, img_channels, architecture, mbstd_group_size,
            mbstd_num_channels, conv_clamp=conv_clamp,
        )  # fmt: skip

    def forward(
        self, img: torch.Tensor, c: torch.Tensor | None = None, force_fp32: bool = False
    ) -> torch.Tensor:
        expected = (self.img_channels, self.img_resolution, self.img_resolution)
        if img.ndim != 4 or img.shape[1:] != expected:
            raise ValueError(
                f"D takes images [N, {', '.join(map(str, expected))}]; got {_shape(img)}"
            )
        y = labels_as_vectors(c, self.c_dim, img.shape[0])
        with _autocast_off(img, force_fp32):
            x, image = None, img
            for block in self.blocks.values():
                x, image = block(x, image)
            assert x is not None
            cmap = None if self.mapping is None or y is None else self.mapping(None, y)
            return self.b4(x, image, cmap).squeeze(1)


@MODELS.register(
    "stylegan2",
    resolutions=(8, 16, 32, 64, 128, 256, 512, 1024),
    small_arch={"z_dim": 4, "w_dim": 4, "mapping_layers": 2, "channel_base": 16, "channel_max": 2},
    labels=True,
    output_range=None,  # linear toRGB: images are not clamped to [-1, 1]
)
def build(
    img_resolution: int,
    img_channels: int,
    c_dim: int = 0,
    *,
    z_dim: int = 512,
    w_dim: int = 512,
    mapping_layers: int = 8,
    mapping_lr_multiplier: float = 0.01,
    channel_base: int = 32768,
    channel_max: int = 512,
    g_architecture: str = "skip",
    d_architecture: str = "resnet",
    conv_clamp: float | None = None,
    mbstd_group_size: int = 4,
    mbstd_num_channels: int = 1,
    d_mapping_layers: int = 8,
    resample_filter: tuple[int, ...] = (1, 3, 3, 1),
    use_noise: bool = True,
) -> nn.ModuleDict:
    """StyleGAN2 G and D (mapping network, modulated convs, skip G, residual D)."""
    check_stylegan2_resolution(img_resolution)
    G = Generator(
        z_dim, c_dim, w_dim, img_resolution, img_channels,
        mapping_layers=mapping_layers, mapping_lr_multiplier=mapping_lr_multiplier,
        channel_base=channel_base, channel_max=channel_max, architecture=g_architecture,
        resample_filter=resample_filter, conv_clamp=conv_clamp, use_noise=use_noise,
    )  # fmt: skip
    D = Discriminator(
        c_dim, img_resolution, img_channels, architecture=d_architecture,
        channel_base=channel_base, channel_max=channel_max, conv_clamp=conv_clamp,
        mapping_layers=d_mapping_layers, mbstd_group_size=mbstd_group_size,
        mbstd_num_channels=mbstd_num_channels, resample_filter=resample_filter,
    )  # fmt: skip
    return nn.ModuleDict({"G": G, "D": D})
