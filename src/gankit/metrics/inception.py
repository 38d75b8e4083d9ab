"""The FID InceptionV3: the TF-ported network, its weights file, and the two resize protocols.

The network is the TensorFlow graph `inception-2015-12-05` that FID (Heusel et al., "GANs Trained by a
Two Time-Scale Update Rule Converge to a Local Nash Equilibrium", arXiv:1706.08500) and the Inception
Score (Salimans et al., "Improved Techniques for Training GANs", arXiv:1606.03498) were defined with,
an InceptionV3 (Szegedy et al., arXiv:1512.00567) whose blocks differ from torchvision's: the
average pools exclude padding (`count_include_pad=False`), the last block max-pools, and the
classifier has 1008 outputs. Parameter names follow torch-fidelity's `FeatureExtractorInceptionV3`
(and torchvision's, which pytorch-fid uses), so both projects' converted weights files load.

Resize protocols (inputs are always uint8 first; float G outputs in [-1, 1] are quantised the way
images are saved):
- `"reference"`: torch-fidelity's path: uint8 -> float32, TensorFlow-1.x bilinear resize to 299x299
  (`align_corners=False`, no half-pixel centres, no antialiasing), then `(x - 128) / 128`.
- `"clean"`: clean-fid's path (Parmar et al., "On Aliased Resizing and Surprising Subtleties in GAN
  Evaluation", arXiv:2104.11222): each channel resized by PIL bicubic in float mode (antialiased
  when shrinking), clipped to [0, 255], then `(x - 128) / 128`.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.request
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor, nn

from gankit.errors import GankitError
from gankit.paths import cache_dir, downloads_allowed

WEIGHTS_FILE = "weights-inception-2015-12-05-6726825d.pth"
#: torch-fidelity's file is named after the first 8 hex digits of its SHA-256.
WEIGHTS_SHA256_PREFIX = "6726825d"
PYTORCH_FID_WEIGHTS_FILE = "pt_inception-2015-12-05-6726825d.pth"
WEIGHTS_URL = f"https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/{WEIGHTS_FILE}"
WEIGHTS_ENV = "GANKIT_INCEPTION_WEIGHTS"
INPUT_SIZE = 299
RESIZE_PROTOCOLS = ("reference", "clean")


class InceptionWeightsError(GankitError):
    """The FID Inception weights file is missing, unreadable, or not the expected network."""


# ---------------------------------------------------------------------------------------------
# The network (torch-fidelity / torchvision parameter names).


class BasicConv2d(nn.Module):
    """Convolution without bias, BatchNorm (TF's eps 1e-3), ReLU."""

    def __init__(self, in_channels: int, out_channels: int, **conv: int | tuple[int, int]) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, bias=False, **conv)  # type: ignore[arg-type]
        self.bn = nn.BatchNorm2d(out_channels, eps=0.001)

    def forward(self, x: Tensor) -> Tensor:
        """`[N, C_in, H, W]` -> `[N, C_out, H', W']`."""
        # In place: saves allocating (and page-faulting) a second full-size activation on CPU.
        return F.relu(self.bn(self.conv(x)), inplace=True)


def _avg_pool_same(x: Tensor) -> Tensor:
    # TF's 'SAME' average pool divides by the number of real (unpadded) pixels.
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


class InceptionA(nn.Module):
    """35x35 block: 1x1, 5x5, double 3x3 and pooled branches."""

    def __init__(self, in_channels: int, pool_features: int) -> None:
        super().__init__()
        self.branch1x1 = BasicConv2d(in_channels, 64, kernel_size=1)
        self.branch5x5_1 = BasicConv2d(in_channels, 48, kernel_size=1)
        self.branch5x5_2 = BasicConv2d(48, 64, kernel_size=5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, padding=1)
        self.branch_pool = BasicConv2d(in_channels, pool_features, kernel_size=1)

    def forward(self, x: Tensor) -> Tensor:
        """`[N, C, 35, 35]` -> `[N, 224 + pool_features, 35, 35]`."""
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        bp = self.branch_pool(_avg_pool_same(x))
        return torch.cat([self.branch1x1(x), b5, b3, bp], 1)


class InceptionB(nn.Module):
    """Grid reduction 35 -> 17."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.branch3x3 = BasicConv2d(in_channels, 384, kernel_size=3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        """`[N, 288, 35, 35]` -> `[N, 768, 17, 17]`."""
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([self.branch3x3(x), b3, F.max_pool2d(x, kernel_size=3, stride=2)], 1)


class InceptionC(nn.Module):
    """17x17 block with factorised 7x7 convolutions."""

    def __init__(self, in_channels: int, channels_7x7: int) -> None:
        super().__init__()
        c7 = channels_7x7
        self.branch1x1 = BasicConv2d(in_channels, 192, kernel_size=1)
        self.branch7x7_1 = BasicConv2d(in_channels, c7, kernel_size=1)
        self.branch7x7_2 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c7, 192, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2d(in_channels, c7, kernel_size=1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, kernel_size=(1, 7), padding=(0, 3))
        self.branch_pool = BasicConv2d(in_channels, 192, kernel_size=1)

    def forward(self, x: Tensor) -> Tensor:
        """`[N, 768, 17, 17]` -> `[N, 768, 17, 17]`."""
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        bd = x
        for layer in (self.branch7x7dbl_1, self.branch7x7dbl_2, self.branch7x7dbl_3):
            bd = layer(bd)
        bd = self.branch7x7dbl_5(self.branch7x7dbl_4(bd))
        bp = self.branch_pool(_avg_pool_same(x))
        return torch.cat([self.branch1x1(x), b7, bd, bp], 1)


class InceptionD(nn.Module):
    """Grid reduction 17 -> 8."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.branch3x3_1 = BasicConv2d(in_channels, 192, kernel_size=1)
        self.branch3x3_2 = BasicConv2d(192, 320, kernel_size=3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(in_channels, 192, kernel_size=1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, kernel_size=3, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        """`[N, 768, 17, 17]` -> `[N, 1280, 8, 8]`."""
        b3 = self.branch3x3_2(self.branch3x3_1(x))
        b7 = self.branch7x7x3_2(self.branch7x7x3_1(x))
        b7 = self.branch7x7x3_4(self.branch7x7x3_3(b7))
        return torch.cat([b3, b7, F.max_pool2d(x, kernel_size=3, stride=2)], 1)


class InceptionE(nn.Module):
    """8x8 block with split 3x3 branches; `max_pool` marks the TF graph's last block (`Mixed_7c`)."""

    def __init__(self, in_channels: int, *, max_pool: bool) -> None:
        super().__init__()
        self.max_pool = max_pool
        self.branch1x1 = BasicConv2d(in_channels, 320, kernel_size=1)
        self.branch3x3_1 = BasicConv2d(in_channels, 384, kernel_size=1)
        self.branch3x3_2a = BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 448, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, kernel_size=3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(in_channels, 192, kernel_size=1)

    def forward(self, x: Tensor) -> Tensor:
        """`[N, C, 8, 8]` -> `[N, 2048, 8, 8]`."""
        b3 = self.branch3x3_1(x)
        b3 = torch.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], 1)
        bd = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        bd = torch.cat([self.branch3x3dbl_3a(bd), self.branch3x3dbl_3b(bd)], 1)
        # The TF graph's final block max-pools where the paper (and torchvision) average-pools.
        if self.max_pool:
            pooled = F.max_pool2d(x, kernel_size=3, stride=1, padding=1)
        else:
            pooled = _avg_pool_same(x)
        return torch.cat([self.branch1x1(x), b3, bd, self.branch_pool(pooled)], 1)


class InceptionV3(nn.Module):
    """The FID InceptionV3 trunk and its 1008-way classifier; input `[N, 3, 299, 299]` in [-1, 1]."""

    def __init__(self) -> None:
        super().__init__()
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, kernel_size=3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, kernel_size=3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, kernel_size=3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, kernel_size=1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, kernel_size=3)
        self.Mixed_5b = InceptionA(192, pool_features=32)
        self.Mixed_5c = InceptionA(256, pool_features=64)
        self.Mixed_5d = InceptionA(288, pool_features=64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = InceptionC(768, channels_7x7=128)
        self.Mixed_6c = InceptionC(768, channels_7x7=160)
        self.Mixed_6d = InceptionC(768, channels_7x7=160)
        self.Mixed_6e = InceptionC(768, channels_7x7=192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = InceptionE(1280, max_pool=False)
        self.Mixed_7c = InceptionE(2048, max_pool=True)
        self.fc = nn.Linear(2048, 1008)

    def forward(self, x: Tensor) -> Tensor:
        """`[N, 3, 299, 299]` normalised images -> pool3 features `[N, 2048]`."""
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        for name in ("5b", "5c", "5d", "6a", "6b", "6c", "6d", "6e", "7a", "7b", "7c"):
            x = getattr(self, f"Mixed_{name}")(x)
        return x.mean(dim=(2, 3))

    def logits(self, pool3: Tensor, *, bias: bool = False) -> Tensor:
        """pool3 `[N, 2048]` -> `[N, 1008]` logits; the Inception Score's are without the bias."""
        # The original Inception Score code multiplies pool3 by the softmax weights only.
        out = pool3 @ self.fc.weight.T
        return out + self.fc.bias if bias else out


# ---------------------------------------------------------------------------------------------
# Input preparation: uint8 quantisation and the two resize protocols.


def to_uint8_rgb(images: Tensor) -> Tensor:
    """`[N, 1|3, H, W]` uint8, or float in [-1, 1] (rounded like saved images) -> uint8 `[N, 3, H, W]`."""
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"expected images [N, 1 or 3, H, W], got shape {tuple(images.shape)}")
    if images.dtype != torch.uint8:
        if not images.is_floating_point():
            raise ValueError(f"expected uint8 or float images in [-1, 1], got dtype {images.dtype}")
        images = ((images.detach().float() + 1.0) * 127.5).round().clamp(0, 255).to(torch.uint8)
    return images.expand(-1, 3, -1, -1) if images.shape[1] == 1 else images


def _tf1_bilinear_taps(in_size: int, out_size: int, device: torch.device) -> tuple[Tensor, ...]:
    # TF1 maps output pixel i to source i * in/out (no half-pixel offset), computed in float32.
    src = torch.arange(out_size, dtype=torch.float32, device=device)
    src = src * torch.tensor(in_size / out_size, dtype=torch.float32, device=device)
    lo = src.long()
    hi = (lo + 1).clamp_max(in_size - 1)
    return lo, hi, src - lo.float()


def resize_reference(images: Tensor, size: int = INPUT_SIZE) -> Tensor:
    """uint8 `[N, 3, H, W]` -> float32 `[N, 3, size, size]` in [0, 255], torch-fidelity's TF1 bilinear."""
    x = images.float()
    ylo, yhi, dy = _tf1_bilinear_taps(x.shape[2], size, x.device)
    xlo, xhi, dx = _tf1_bilinear_taps(x.shape[3], size, x.device)
    # Same operation order as torch-fidelity (columns first, then rows) for bit-identical output.
    top, bottom = x[:, :, ylo, :], x[:, :, yhi, :]
    top = top[..., xlo] + (top[..., xhi] - top[..., xlo]) * dx
    bottom = bottom[..., xlo] + (bottom[..., xhi] - bottom[..., xlo]) * dx
    return top + (bottom - top) * dy.view(-1, 1)


def resize_clean(images: Tensor, size: int = INPUT_SIZE) -> Tensor:
    """uint8 `[N, 3, H, W]` -> float32 `[N, 3, size, size]` in [0, 255], clean-fid's PIL bicubic."""
    array = images.detach().cpu().numpy().astype(np.float32)
    out = np.empty((*array.shape[:2], size, size), dtype=np.float32)
    for i in range(array.shape[0]):
        for c in range(array.shape[1]):
            channel = Image.fromarray(array[i, c], mode="F")
            out[i, c] = np.asarray(channel.resize((size, size), resample=Image.BICUBIC))
    return torch.from_numpy(out.clip(0, 255)).to(images.device)


def preprocess(images: Tensor, resize: str = "reference") -> Tensor:
    """Images (uint8, or float in [-1, 1]) -> the network's input `[N, 3, 299, 299]` in [-1, 1]."""
    if resize not in RESIZE_PROTOCOLS:
        raise ValueError(f"unknown resize protocol {resize!r}; expected one of {RESIZE_PROTOCOLS}")
    images = to_uint8_rgb(images)
    x = resize_reference(images) if resize == "reference" else resize_clean(images)
    return (x - 128) / 128


def textured_images(n: int, size: int, seed: int = 0, texture: float = 12.0) -> Tensor:
    """uint8 `[n, 3, size, size]`: smooth random colour fields plus pixel noise of std `texture`."""
    g = torch.Generator().manual_seed(seed)
    low = F.interpolate(torch.rand(n, 3, 4, 4, generator=g) * 220 + 18, size=size, mode="bicubic")
    noisy = low + texture * torch.randn(n, 3, size, size, generator=g)
    return noisy.clamp(0, 255).round().to(torch.uint8)


def calibrated_random_inception(images: Tensor | None = None, *, seed: int = 0) -> InceptionV3:
    """The FID architecture with seeded random weights, its BatchNorm statistics re-estimated on
    `images` (uint8 `[N, 3, H, W]`; default 8 `textured_images` of 32x32) through the reference
    preprocessing; returned in eval mode.

    For tests and timing benchmarks where the real weights are not at hand: with random weights and
    the default BatchNorm statistics the features collapse or explode, while these spread out, so
    metric plumbing and agreement with other libraries can be checked on them (never the values).
    """
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        net = InceptionV3()
    for module in net.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.reset_running_stats()
            module.momentum = None  # a cumulative average over the calibration batch
    images = textured_images(8, 32) if images is None else images
    with torch.no_grad():
        net.train()(preprocess(images, "reference"))
    return net.eval()


class InceptionFeatures(nn.Module):
    """Images -> `{"pool3": [N, 2048], "logits_unbiased": [N, 1008]}` (float32), for FID/KID/IS/PR."""

    def __init__(self, network: InceptionV3, resize: str = "reference") -> None:
        super().__init__()
        if resize not in RESIZE_PROTOCOLS:
            raise ValueError(
                f"unknown resize protocol {resize!r}; expected one of {RESIZE_PROTOCOLS}"
            )
        # Channels-last: oneDNN's convolutions and pooling run faster on CPU in this layout
        # (torch-fidelity uses the default one; benchmarks/RESULTS.md, section "FID + KID at
        # N = 1,000, after the channels-last change"), and it suits cuDNN's tensor cores too.
        self.network = network.eval().requires_grad_(False).to(memory_format=torch.channels_last)
        self.resize = resize

    @torch.no_grad()
    def forward(self, images: Tensor) -> dict[str, Tensor]:
        """One batch of images `[N, 1|3, H, W]` (uint8, or float in [-1, 1]) -> feature dict."""
        device = self.network.fc.weight.device
        x = preprocess(images.to(device), self.resize)
        pool3 = self.network(x.contiguous(memory_format=torch.channels_last))
        return {"pool3": pool3.float(), "logits_unbiased": self.network.logits(pool3).float()}


# ---------------------------------------------------------------------------------------------
# Weights: finding, downloading, and loading the converted TF checkpoint.

# pytorch-fid's `InceptionV3` wrapper keeps the trunk in `blocks`; a state dict saved from it
# names layers by position. The plain torchvision model it wraps uses our names already.
_PYTORCH_FID_BLOCKS = {
    f"blocks.{block}.{i}": name
    for block, names in enumerate(
        (
            ("Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3"),
            ("Conv2d_3b_1x1", "Conv2d_4a_3x3"),
            tuple(f"Mixed_{n}" for n in ("5b", "5c", "5d", "6a", "6b", "6c", "6d", "6e")),
            ("Mixed_7a", "Mixed_7b", "Mixed_7c"),
        )
    )
    for i, name in enumerate(names)
}


def _how_to_get_weights() -> str:
    return (
        f"download {WEIGHTS_URL} (torch-fidelity's file; pytorch-fid's {PYTORCH_FID_WEIGHTS_FILE} "
        f"also works) and pass it with --inception-weights FILE, or set {WEIGHTS_ENV}=FILE, or put it "
        f"at {cache_dir() / 'weights' / WEIGHTS_FILE}"
    )


def convert_state_dict(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """A torch-fidelity, pytorch-fid (torchvision or `blocks.*` layout) state dict -> ours."""
    out: dict[str, Tensor] = {}
    for key, value in state.items():
        key = key.removeprefix("module.")
        for old, new in _PYTORCH_FID_BLOCKS.items():
            if key.startswith(old + "."):
                key = new + key[len(old) :]
                break
        if key.startswith("AuxLogits.") or key.endswith("num_batches_tracked"):
            continue  # the FID graph has no auxiliary head; batch counts are unused in eval
        out[key] = value
    return out


def load_state_dict(path: str | os.PathLike) -> dict[str, Tensor]:
    """Read a weights file, map its keys, and check it against the network (strictly)."""
    path = Path(path)
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        # torch's own text (several paragraphs about weights_only) is no help here: say what
        # the file is not, in one line.
        raise InceptionWeightsError(
            f"{path} is not a weights file of the expected kind ({_why_unreadable(path, exc)}); "
            f"the FID Inception weights are torch-fidelity's {WEIGHTS_FILE}: "
            f"{_how_to_get_weights()}"
        ) from None
    if isinstance(raw, Mapping) and "state_dict" in raw and isinstance(raw["state_dict"], Mapping):
        raw = raw["state_dict"]
    if not isinstance(raw, Mapping):
        raise InceptionWeightsError(f"{path} holds a {type(raw).__name__}, not a state dict")
    state = convert_state_dict(raw)
    expected = {k for k in InceptionV3().state_dict() if not k.endswith("num_batches_tracked")}
    missing, unexpected = sorted(expected - state.keys()), sorted(state.keys() - expected)
    if missing or unexpected:
        raise InceptionWeightsError(
            f"{path} is not an FID InceptionV3 state dict: missing {missing[:5]} "
            f"({len(missing)} in all), unexpected {unexpected[:5]} ({len(unexpected)} in all); "
            f"{_how_to_get_weights()}"
        )
    return state


def _why_unreadable(path: Path, exc: Exception) -> str:
    """Why `torch.load` failed on `path`, in a few words."""
    with open(path, "rb") as file:
        head = file.read(4)
    if not head:
        return "the file is empty"
    if head == b"PK\x03\x04":  # torch.save's zip format: a truncated or foreign zip
        return f"a zip archive that torch.load cannot read: {type(exc).__name__}"
    if head[:1] == b"\x80":  # a legacy pickle
        return "a pickle holding objects other than tensors, which gankit does not unpickle"
    return "neither a zip archive written by torch.save nor a pickle"


def file_sha256(path: str | os.PathLike) -> str:
    """The SHA-256 of a file, in hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def weights_hash_note(path: str | os.PathLike) -> str | None:
    """None when the file's SHA-256 starts with the prefix in the known file's name, else a note.

    torch-fidelity and torchvision name weights files `<name>-<first 8 hex of SHA-256>.pth`; a
    file whose tensors fit but whose hash differs may be a re-saved copy, or other weights.
    """
    actual = file_sha256(path)
    if actual.startswith(WEIGHTS_SHA256_PREFIX):
        return None
    return (
        f"note: the Inception weights {path} have SHA-256 {actual[:8]}..., not "
        f"{WEIGHTS_SHA256_PREFIX}... of {WEIGHTS_FILE}; their tensors fit the FID network, so "
        "they are used (a re-saved copy gives the same numbers, other weights do not)"
    )


def _download(url: str, dest: Path) -> None:
    # Write beside the destination and rename only after the file loads as the right network,
    # so an interrupted or wrong download never sits in the cache under the standard name.
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=dest.name + ".", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f, urllib.request.urlopen(url, timeout=60) as response:
            while chunk := response.read(1 << 20):
                f.write(chunk)
        load_state_dict(tmp)
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def resolve_weights(weights: str | os.PathLike | None = None) -> Path:
    """The weights file: `weights`, else `$GANKIT_INCEPTION_WEIGHTS`, else the cache, else download."""
    for source, candidate in (("argument", weights), (WEIGHTS_ENV, os.environ.get(WEIGHTS_ENV))):
        if candidate:
            path = Path(candidate).expanduser()
            if not path.is_file():
                raise InceptionWeightsError(
                    f"Inception weights file {path} (from {source}) does not exist; "
                    f"{_how_to_get_weights()}"
                )
            return path
    cached = cache_dir() / "weights"
    for name in (WEIGHTS_FILE, PYTORCH_FID_WEIGHTS_FILE):
        if (cached / name).is_file():
            return cached / name
    if not downloads_allowed():
        raise InceptionWeightsError(
            f"the FID Inception weights are not available and downloads are disabled "
            f"(GANKIT_NO_DOWNLOAD is set); {_how_to_get_weights()}"
        )
    try:
        _download(WEIGHTS_URL, cached / WEIGHTS_FILE)
    except OSError as exc:
        raise InceptionWeightsError(
            f"downloading the Inception weights failed ({exc}); {_how_to_get_weights()}"
        ) from exc
    return cached / WEIGHTS_FILE


def load_inception(
    weights: str | os.PathLike | None = None,
    *,
    resize: str = "reference",
    device: str | torch.device = "cpu",
) -> InceptionFeatures:
    """The FID feature extractor with weights from `resolve_weights(weights)`, in eval mode."""
    network = InceptionV3()
    network.load_state_dict(load_state_dict(resolve_weights(weights)), strict=False)
    return InceptionFeatures(network.to(device), resize=resize)
