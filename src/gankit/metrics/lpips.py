"""LPIPS v0.1 with a VGG16 backbone, written for gankit; the distance PPL is defined with.

Paper: Zhang et al., "The Unreasonable Effectiveness of Deep Features as a Perceptual Metric",
arXiv:1801.03924. Reference implementation: the `lpips` package (github.com/richzhang/
PerceptualSimilarity), `LPIPS(net="vgg", version="0.1")`, which this matches to float rounding
(tested with a shared random backbone):

1. inputs in [-1, 1] go through the scaling layer `(x - shift) / scale` (per RGB channel);
2. torchvision's VGG16 `features` give relu1_2, relu2_2, relu3_3, relu4_3 and relu5_3;
3. each map is unit-normalised over channels (`f / (|f| + 1e-10)`), the two images' maps are
   subtracted and squared, weighted by a learned non-negative 1x1 conv ("lin" head) to one channel,
   averaged over space, and the five layers summed.

Weights come from files, never at import time:
- the lin heads: the `lpips` package's `weights/v0.1/vgg.pth` format (keys `lin{k}.model.1.weight`);
  looked up as an explicit path, `GANKIT_LPIPS_WEIGHTS`, `cache_dir()/weights/lpips-vgg-v0.1.pth`,
  then the file shipped inside an installed `lpips` package;
- the ImageNet VGG16 backbone: torchvision's `vgg16-397923af.pth`; an explicit path,
  `GANKIT_VGG16_WEIGHTS`, `cache_dir()/weights/`, torch hub's checkpoint folder, else a download
  from torchvision's URL when `gankit.paths.downloads_allowed()`, else `VGG16WeightsError`.
"""

from __future__ import annotations

import importlib.util
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import Tensor, nn

from gankit.errors import GankitError
from gankit.paths import cache_dir, downloads_allowed

VGG16_FILE = "vgg16-397923af.pth"
VGG16_URL = f"https://download.pytorch.org/models/{VGG16_FILE}"
VGG16_ENV = "GANKIT_VGG16_WEIGHTS"
HEADS_FILE = "lpips-vgg-v0.1.pth"
HEADS_ENV = "GANKIT_LPIPS_WEIGHTS"

#: torchvision's VGG16 ("D") feature stack; "M" is a 2x2 max-pool.
_VGG16_LAYERS = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512)
#: Index in `vgg16().features` of the ReLU after conv1_2, conv2_2, conv3_3, conv4_3, conv5_3.
TAP_LAYERS = (3, 8, 15, 22, 29)
TAP_CHANNELS = (64, 128, 256, 512, 512)
# The lpips package's ScalingLayer constants (ImageNet statistics mapped to [-1, 1] inputs).
_SHIFT = (-0.030, -0.088, -0.188)
_SCALE = (0.458, 0.448, 0.450)


class VGG16WeightsError(GankitError):
    """The ImageNet VGG16 or LPIPS head weights are missing or unreadable."""


def vgg16_features() -> nn.Sequential:
    """torchvision's `vgg16().features` up to relu5_3 (same module indices, random init)."""
    layers: list[nn.Module] = []
    c_in = 3
    for spec in _VGG16_LAYERS:
        if spec == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers += [nn.Conv2d(c_in, int(spec), kernel_size=3, padding=1), nn.ReLU(inplace=True)]
            c_in = int(spec)
    return nn.Sequential(*layers)


class LPIPS(nn.Module):
    """LPIPS-VGG v0.1: `(img0, img1)` `[N, 3, H, W]` in [-1, 1] -> distances `[N]`.

    `pretrained=False` skips all weight files (random backbone, channel-averaging heads): for
    plumbing tests only, its distances mean nothing.
    """

    def __init__(
        self,
        vgg16_weights: str | os.PathLike | None = None,
        heads: str | os.PathLike | None = None,
        *,
        pretrained: bool = True,
    ) -> None:
        super().__init__()
        self.features = vgg16_features()
        self.heads = nn.ModuleList(nn.Conv2d(c, 1, 1, bias=False) for c in TAP_CHANNELS)
        self.register_buffer("shift", torch.tensor(_SHIFT).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor(_SCALE).view(1, 3, 1, 1))
        if pretrained:
            self.load_backbone(resolve_vgg16_weights(vgg16_weights))
            self.load_heads(resolve_heads(heads))
        else:
            # Plumbing only: random backbone, heads that average channels (distances stay >= 0).
            for head, c in zip(self.heads, TAP_CHANNELS, strict=True):
                nn.init.constant_(head.weight, 1.0 / c)
        self.eval().requires_grad_(False)

    def load_backbone(self, path: str | os.PathLike) -> None:
        """Load torchvision VGG16 weights (`features.*` keys; the classifier is ignored)."""
        state = _read_state(path, "VGG16 backbone")
        feats = {k.split("features.", 1)[1]: v for k, v in state.items() if "features." in k}
        ours = self.features.state_dict()
        missing = sorted(set(ours) - set(feats))
        if missing:
            raise VGG16WeightsError(
                f"{path} is not a torchvision VGG16 state dict: it lacks features.{missing[0]} "
                f"(and {len(missing) - 1} more); {_how_to_get_vgg16()}"
            )
        self.features.load_state_dict({k: feats[k] for k in ours})

    def load_heads(self, path: str | os.PathLike) -> None:
        """Load the lin heads from an `lpips` package file (`lin{k}.model.1.weight`)."""
        state = _read_state(path, "LPIPS head")
        for k, head in enumerate(self.heads):
            key = f"lin{k}.model.1.weight"
            if key not in state or state[key].shape != head.weight.shape:
                raise VGG16WeightsError(
                    f"{path} is not an LPIPS v0.1 VGG head file: expected {key} of shape "
                    f"{tuple(head.weight.shape)}; use the lpips package's weights/v0.1/vgg.pth"
                )
            head.weight.data.copy_(state[key])

    def layer_features(self, img: Tensor) -> list[Tensor]:
        """The five unit-normalised VGG maps of scaled inputs."""
        x = (_as_rgb(img) - self.shift) / self.scale
        out = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in TAP_LAYERS:
                # The lpips package adds eps to the norm (not under the sqrt); so do we.
                out.append(x / (x.square().sum(1, keepdim=True).sqrt() + 1e-10))
            if i == TAP_LAYERS[-1]:
                break
        return out

    def forward(self, img0: Tensor, img1: Tensor) -> Tensor:
        """LPIPS distance per pair, `[N]`."""
        if img0.shape != img1.shape:
            raise ValueError(f"image batches differ in shape: {img0.shape} vs {img1.shape}")
        feats = self.layer_features(torch.cat([img0, img1]))
        n = img0.shape[0]
        total = img0.new_zeros(n, dtype=feats[0].dtype)
        for f, head in zip(feats, self.heads, strict=True):
            total = total + head((f[:n] - f[n:]).square()).mean(dim=(1, 2, 3))
        return total


def _as_rgb(img: Tensor) -> Tensor:
    if img.ndim != 4 or img.shape[1] not in (1, 3):
        raise ValueError(f"LPIPS takes [N, 1|3, H, W] images in [-1, 1], got {tuple(img.shape)}")
    if min(img.shape[2:]) < 16:
        raise ValueError(f"LPIPS-VGG needs images of at least 16x16, got {tuple(img.shape[2:])}")
    return img.expand(-1, 3, -1, -1) if img.shape[1] == 1 else img


def _read_state(path: str | os.PathLike, what: str) -> Mapping[str, Tensor]:
    try:
        state = torch.load(Path(path), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise VGG16WeightsError(f"could not read the {what} weights file {path}: {exc}") from exc
    if isinstance(state, Mapping) and isinstance(state.get("state_dict"), Mapping):
        state = state["state_dict"]
    if not isinstance(state, Mapping):
        raise VGG16WeightsError(f"{path} holds a {type(state).__name__}, not a state dict")
    return state


def _how_to_get_vgg16() -> str:
    return (
        f"download {VGG16_URL} (torchvision's ImageNet VGG16, 528 MB) and pass its path "
        f"(vgg16_weights=...), or set {VGG16_ENV}=FILE, or put it at "
        f"{cache_dir() / 'weights' / VGG16_FILE}"
    )


def _explicit(path: str | os.PathLike | None, env: str, what: str) -> Path | None:
    """The path given as an argument or in `env`; an error if it names no file."""
    given = path if path is not None else os.environ.get(env) or None
    if given is None:
        return None
    p = Path(given).expanduser()
    if not p.is_file():
        source = "the path given" if path is not None else f"{env}"
        raise VGG16WeightsError(f"{source} points to {p}, which is not a file ({what})")
    return p


def resolve_vgg16_weights(path: str | os.PathLike | None = None) -> Path:
    """The VGG16 weights file: argument, env, gankit cache, torch hub cache, else a download."""
    explicit = _explicit(path, VGG16_ENV, "VGG16 weights")
    if explicit is not None:
        return explicit
    cached = cache_dir() / "weights" / VGG16_FILE
    hub = Path(torch.hub.get_dir()) / "checkpoints" / VGG16_FILE
    for candidate in (cached, hub):
        if candidate.is_file():
            return candidate
    if not downloads_allowed():
        raise VGG16WeightsError(
            f"LPIPS needs torchvision's ImageNet VGG16 weights ({VGG16_FILE}) and found none "
            f"(not at {cached} or {hub}, {VGG16_ENV} unset) and downloads are off "
            f"(GANKIT_NO_DOWNLOAD). To fix: {_how_to_get_vgg16()}."
        )
    _download(VGG16_URL, cached, hash_prefix="397923af")
    return cached


def _download(url: str, target: Path, hash_prefix: str) -> None:
    """Fetch `url` to `target` atomically, checking torchvision's SHA-256 prefix."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    os.close(fd)
    try:
        torch.hub.download_url_to_file(url, tmp, hash_prefix=hash_prefix, progress=True)
        os.replace(tmp, target)
    except Exception as exc:
        Path(tmp).unlink(missing_ok=True)
        raise VGG16WeightsError(f"downloading {url} failed: {exc}; {_how_to_get_vgg16()}") from exc


def resolve_heads(path: str | os.PathLike | None = None) -> Path:
    """The LPIPS VGG head file: argument, env, gankit cache, else the installed lpips package's."""
    explicit = _explicit(path, HEADS_ENV, "LPIPS heads")
    if explicit is not None:
        return explicit
    cached = cache_dir() / "weights" / HEADS_FILE
    if cached.is_file():
        return cached
    spec = importlib.util.find_spec("lpips")
    if spec is not None and spec.origin is not None:
        packaged = Path(spec.origin).parent / "weights" / "v0.1" / "vgg.pth"
        if packaged.is_file():
            return packaged
    raise VGG16WeightsError(
        f"no LPIPS VGG head weights found: pass heads=FILE, set {HEADS_ENV}=FILE, put the lpips "
        f"package's weights/v0.1/vgg.pth at {cached}, or `pip install lpips` (it ships the file)"
    )
