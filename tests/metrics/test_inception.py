"""The FID InceptionV3: torch-fidelity / pytorch-fid equivalence, resize protocols, weights loading."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gankit.metrics import inception
from gankit.metrics.inception import (
    PYTORCH_FID_WEIGHTS_FILE,
    WEIGHTS_ENV,
    WEIGHTS_FILE,
    InceptionV3,
    InceptionWeightsError,
    calibrated_random_inception,
    convert_state_dict,
    load_inception,
    load_state_dict,
    preprocess,
    resize_clean,
    resize_reference,
    resolve_weights,
    textured_images,
    to_uint8_rgb,
)


def calibrated_network(seed: int = 0) -> InceptionV3:
    """Random weights whose BatchNorm statistics are re-estimated on images, so features spread."""
    return calibrated_random_inception(textured_images(6, 96, seed=seed + 100), seed=seed)


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("inception") / WEIGHTS_FILE
    torch.save(calibrated_network().state_dict(), path)
    return path


# --- The network against torch-fidelity and pytorch-fid.


def test_features_equal_torch_fidelity(weights_file: Path) -> None:
    fidelity = pytest.importorskip("torch_fidelity.feature_extractor_inceptionv3")
    reference = fidelity.FeatureExtractorInceptionV3(
        "inception-v3-compat",
        ["2048", "logits_unbiased"],
        feature_extractor_weights_path=str(weights_file),
    )
    ours = load_inception(weights_file)
    for images in (textured_images(2, 32, seed=1), textured_images(1, 40, seed=2)):
        ref_pool3, ref_logits = reference(images)
        out = ours(images)
        # Channels-last picks other oneDNN kernels, so the sums round differently and 90 random
        # layers amplify that: agreement is relative to the features' norm (3e-5 measured), not bitwise.
        for ours_, ref in ((out["pool3"], ref_pool3), (out["logits_unbiased"], ref_logits)):
            assert float((ours_ - ref).norm() / ref.norm()) < 1e-4
    assert float(out["pool3"].std()) > 1e-2  # calibrated: features are not collapsed


def _pytorch_fid_model(monkeypatch: pytest.MonkeyPatch, state: dict) -> torch.nn.Module:
    pfid = pytest.importorskip("pytorch_fid.inception")
    # pytorch-fid downloads its weights inside fid_inception_v3(); hand it ours instead.
    monkeypatch.setattr(pfid, "load_state_dict_from_url", lambda *args, **kwargs: state)
    return pfid.fid_inception_v3().eval()


def test_pytorch_fid_layouts_load_and_compute_the_same(
    weights_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = torch.load(weights_file, weights_only=True)
    torchvision_model = _pytorch_fid_model(monkeypatch, state)
    pfid = pytest.importorskip("pytorch_fid.inception")
    monkeypatch.setattr(pfid, "fid_inception_v3", lambda: torchvision_model)
    wrapper = pfid.InceptionV3([3], resize_input=False, normalize_input=False).eval()

    ours = InceptionV3().eval()
    for layout, module in (("torchvision", torchvision_model), ("blocks", wrapper)):
        path = tmp_path / f"{layout}-{PYTORCH_FID_WEIGHTS_FILE}"
        torch.save(module.state_dict(), path)
        if layout == "blocks":  # the wrapper has no classifier; borrow it to check the trunk
            with pytest.raises(InceptionWeightsError, match="missing"):
                load_state_dict(path)
            converted = convert_state_dict(torch.load(path, weights_only=True))
            converted |= {k: v for k, v in state.items() if k.startswith("fc.")}
        else:
            converted = load_state_dict(path)
        ours.load_state_dict(converted, strict=False)
        x = torch.rand(2, 3, 80, 80) * 2 - 1  # the trunk is fully convolutional down to pool3
        with torch.no_grad():
            expected = wrapper(x)[0].flatten(1)
            torch.testing.assert_close(ours(x), expected, rtol=1e-5, atol=1e-6, msg=layout)


# --- Input preparation.


def test_uint8_quantisation_and_grayscale_tiling() -> None:
    floats = torch.tensor([-1.0, -0.999, 0.0, 0.5, 1.0, 1.5]).view(1, 1, 1, 6)
    out = to_uint8_rgb(floats)
    assert out.shape == (1, 3, 1, 6) and out.dtype == torch.uint8
    assert out[0, 0, 0].tolist() == [0, 0, 128, 191, 255, 255]
    assert torch.equal(out[:, 0], out[:, 2])
    with pytest.raises(ValueError, match=r"\[N, 1 or 3, H, W\]"):
        to_uint8_rgb(torch.zeros(2, 4, 8, 8))


@pytest.mark.parametrize(
    "shape", [(2, 3, 32, 32), (1, 3, 28, 45), (1, 3, 512, 400), (1, 3, 299, 299)]
)
def test_reference_resize_equals_torch_fidelity(shape: tuple[int, ...]) -> None:
    compat = pytest.importorskip("torch_fidelity.interpolate_compat_tensorflow")
    images = torch.randint(
        0, 256, shape, dtype=torch.uint8, generator=torch.Generator().manual_seed(0)
    )
    expected = compat.interpolate_bilinear_2d_like_tensorflow1x(
        images.float(), size=(299, 299), align_corners=False
    )
    assert torch.equal(resize_reference(images), expected)


def test_clean_resize_is_pil_bicubic_and_antialiased() -> None:
    # A 1-pixel checkerboard halved: antialiasing gives ~mid-grey, bilinear sampling aliases.
    board = (torch.arange(598).view(-1, 1) + torch.arange(598)) % 2 * 255
    images = board.to(torch.uint8).expand(1, 3, -1, -1)
    clean, reference = resize_clean(images), resize_reference(images)
    assert float((clean - 127.5).abs().max()) < 5
    assert float((reference - 127.5).abs().max()) > 100
    small = textured_images(1, 32, seed=3)
    channel = Image.fromarray(small[0, 1].numpy().astype(np.float32), mode="F")
    expected = np.asarray(channel.resize((299, 299), resample=Image.BICUBIC)).clip(0, 255)
    np.testing.assert_array_equal(resize_clean(small)[0, 1].numpy(), expected)


def test_preprocess_maps_uint8_to_the_tf_range() -> None:
    images = torch.tensor([0, 255], dtype=torch.uint8).view(2, 1, 1, 1).expand(2, 3, 7, 9)
    x = preprocess(images)
    assert x.shape == (2, 3, 299, 299)
    assert torch.all(x[0] == -1.0) and torch.all(x[1] == 127 / 128)
    with pytest.raises(ValueError, match="unknown resize protocol 'bilinear'"):
        preprocess(images, resize="bilinear")


# --- Weights: where they come from, and the errors.


def test_missing_weights_with_downloads_disabled_explains_the_fix(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(WEIGHTS_ENV, raising=False)
    with pytest.raises(InceptionWeightsError) as info:
        resolve_weights()
    message = str(info.value)
    assert WEIGHTS_ENV in message and "--inception-weights" in message
    assert "GANKIT_NO_DOWNLOAD" in message and WEIGHTS_FILE in message
    assert str(inception.cache_dir() / "weights") in message


def test_weights_lookup_order(
    weights_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cached = inception.cache_dir() / "weights" / PYTORCH_FID_WEIGHTS_FILE
    cached.parent.mkdir(parents=True)
    cached.write_bytes(weights_file.read_bytes())
    monkeypatch.delenv(WEIGHTS_ENV, raising=False)
    assert resolve_weights() == cached
    monkeypatch.setenv(WEIGHTS_ENV, str(weights_file))
    assert resolve_weights() == weights_file
    explicit = tmp_path / "explicit.pth"
    explicit.write_bytes(b"")
    assert resolve_weights(explicit) == explicit
    monkeypatch.setenv(WEIGHTS_ENV, str(tmp_path / "absent.pth"))
    with pytest.raises(
        InceptionWeightsError, match=f"absent.pth \\(from {WEIGHTS_ENV}\\) does not exist"
    ):
        resolve_weights()


class _FakeResponse(io.BytesIO):
    def __enter__(self) -> _FakeResponse:
        return self

    def __exit__(self, *args: object) -> None:
        self.close()


def test_download_is_atomic_and_verified(
    weights_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GANKIT_NO_DOWNLOAD")
    monkeypatch.delenv(WEIGHTS_ENV, raising=False)
    payloads = [b"<html>not a checkpoint</html>", weights_file.read_bytes()]
    urls = []

    def fake_urlopen(url: str, timeout: float) -> _FakeResponse:
        urls.append(url)
        return _FakeResponse(payloads.pop(0))

    monkeypatch.setattr(inception.urllib.request, "urlopen", fake_urlopen)
    folder = inception.cache_dir() / "weights"
    with pytest.raises(InceptionWeightsError, match="is not a weights file of the expected kind"):
        resolve_weights()
    assert list(folder.iterdir()) == []  # nothing half-written under the standard name
    assert resolve_weights() == folder / WEIGHTS_FILE
    assert urls == [inception.WEIGHTS_URL] * 2
    assert resolve_weights() == folder / WEIGHTS_FILE and not payloads  # cached: no third fetch


def test_wrong_state_dict_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "other.pth"
    torch.save(torch.nn.Linear(3, 4).state_dict(), path)
    with pytest.raises(InceptionWeightsError, match="not an FID InceptionV3 state dict"):
        load_inception(path)


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (b",,,junk text that is no weights file\n", "neither a zip archive"),
        (b"", "the file is empty"),
        (b"PK\x03\x04 a zip header and nothing else", "a zip archive that torch.load cannot read"),
    ],
)
def test_junk_weights_file_is_one_line_naming_the_file(
    tmp_path: Path, content: bytes, why: str
) -> None:
    path = tmp_path / "junk.pth"
    path.write_bytes(content)
    with pytest.raises(InceptionWeightsError) as info:
        load_state_dict(path)
    message = str(info.value)
    # torch's unpickler text ("Unsupported operand 44", "Please file an issue") stays out.
    assert "\n" not in message and "operand" not in message and "file an issue" not in message
    assert message.startswith(f"{path} is not a weights file of the expected kind ({why}")
    assert WEIGHTS_FILE in message and "--inception-weights" in message


def test_a_pickle_of_objects_is_refused_without_unpickling(tmp_path: Path) -> None:
    import pickle

    path = tmp_path / "objects.pth"
    path.write_bytes(pickle.dumps({"net": Path("x")}, protocol=2))
    with pytest.raises(InceptionWeightsError, match="a pickle holding objects other than tensors"):
        load_state_dict(path)


def test_weights_hash_is_checked_against_the_known_file(
    weights_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import hashlib

    actual = hashlib.sha256(weights_file.read_bytes()).hexdigest()
    assert inception.file_sha256(weights_file) == actual
    # A file whose tensors fit but whose hash is not torch-fidelity's: used, with one line saying so.
    note = inception.weights_hash_note(weights_file)
    assert note is not None and "\n" not in note
    assert f"SHA-256 {actual[:8]}..., not 6726825d..." in note and str(weights_file) in note
    # The known file (its name carries the first 8 hex digits of its SHA-256): no note.
    monkeypatch.setattr(inception, "WEIGHTS_SHA256_PREFIX", actual[:8])
    assert inception.weights_hash_note(weights_file) is None
