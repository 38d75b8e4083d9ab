"""LPIPS-VGG against the `lpips` package with a shared random backbone; weight lookup errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from gankit.errors import GankitError
from gankit.metrics.lpips import (
    LPIPS,
    VGG16_ENV,
    VGG16WeightsError,
    resolve_heads,
    resolve_vgg16_weights,
    vgg16_features,
)


@pytest.fixture(scope="module")
def random_vgg16(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A torchvision-format VGG16 weights file (features only) with seeded random weights."""
    torch.manual_seed(0)
    features = vgg16_features()
    path = tmp_path_factory.mktemp("vgg") / "vgg16-random.pth"
    torch.save({f"features.{k}": v for k, v in features.state_dict().items()}, path)
    return path


def _images(n: int, size: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, size, size, generator=gen) * 2 - 1


@pytest.mark.shared_data
@pytest.mark.filterwarnings("ignore::UserWarning")  # torchvision's `pretrained=` deprecation
def test_lpips_matches_reference_package(random_vgg16: Path, shared_data: Path) -> None:
    lpips = pytest.importorskip("lpips")
    heads = shared_data / "lpips" / "vgg.pth"
    ref = lpips.LPIPS(
        net="vgg", pretrained=True, pnet_rand=True, model_path=str(heads), verbose=False
    )
    # The package keeps torchvision's vgg16().features in net.slice1..5 with the original indices.
    state = torch.load(random_vgg16, weights_only=True)
    for k, v in ref.net.named_parameters():
        index = k.split(".", 1)[1]
        v.data.copy_(state[f"features.{index}"])
    ours = LPIPS(vgg16_weights=random_vgg16, heads=heads)
    x0, x1 = _images(4, 48, 1), _images(4, 48, 2)
    x1[0] = x0[0]
    with torch.no_grad():
        expected = ref(x0, x1).reshape(-1)
        got = ours(x0, x1)
    assert got.shape == (4,)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)
    assert float(got[0]) == 0.0
    assert float(expected[1:].min()) > 1e-3  # the comparison is not between zeros


def test_lpips_of_identical_images_is_zero_and_symmetric(random_vgg16: Path) -> None:
    heads = resolve_heads()  # the file shipped with the installed lpips package
    model = LPIPS(vgg16_weights=random_vgg16, heads=heads)
    x0, x1 = _images(2, 32, 3), _images(2, 32, 4)
    with torch.no_grad():
        assert model(x0, x0).tolist() == [0.0, 0.0]
        torch.testing.assert_close(model(x0, x1), model(x1, x0), rtol=1e-6, atol=0)
        grey = x0[:, :1]
        torch.testing.assert_close(
            model(grey, x1[:, :1]),
            model(grey.expand(-1, 3, -1, -1), x1[:, :1].expand(-1, 3, -1, -1)),
        )


def test_missing_backbone_with_downloads_off_names_the_fix(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv(VGG16_ENV, raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))  # no torchvision cache either
    with pytest.raises(VGG16WeightsError, match=r"vgg16-397923af\.pth.*GANKIT_NO_DOWNLOAD") as err:
        resolve_vgg16_weights()
    assert isinstance(err.value, GankitError)
    assert "GANKIT_VGG16_WEIGHTS" in str(err.value)
    with pytest.raises(VGG16WeightsError):
        LPIPS()


def test_explicit_weight_paths_must_exist(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(VGG16_ENV, str(tmp_path / "nope.pth"))
    with pytest.raises(VGG16WeightsError, match=r"nope\.pth"):
        resolve_vgg16_weights()
    with pytest.raises(VGG16WeightsError, match=r"missing\.pth"):
        resolve_vgg16_weights(tmp_path / "missing.pth")
    bad = tmp_path / "bad.pth"
    torch.save({"classifier.0.weight": torch.zeros(1)}, bad)
    with pytest.raises(VGG16WeightsError, match="not a torchvision VGG16"):
        LPIPS(vgg16_weights=bad)


def test_cached_backbone_is_found(monkeypatch: pytest.MonkeyPatch, random_vgg16: Path) -> None:
    from gankit.paths import cache_dir

    monkeypatch.delenv(VGG16_ENV, raising=False)
    target = cache_dir() / "weights" / "vgg16-397923af.pth"
    target.parent.mkdir(parents=True)
    target.write_bytes(random_vgg16.read_bytes())
    assert resolve_vgg16_weights() == target


def test_untrained_lpips_needs_no_files_and_gives_nonnegative_distances() -> None:
    torch.manual_seed(0)
    model = LPIPS(pretrained=False)
    for head, c in zip(model.heads, (64, 128, 256, 512, 512), strict=True):
        assert torch.equal(head.weight, torch.full((1, c, 1, 1), 1.0 / c))
    d = model(_images(3, 16, 5), _images(3, 16, 6))
    assert d.shape == (3,) and bool((d > 0).all())
