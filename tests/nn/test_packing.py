"""PacGAN packing: sample layout, the packed discriminators, and its errors."""

from __future__ import annotations

import pytest
import torch

from gankit.errors import ConfigError
from gankit.models import dcgan, mlp
from gankit.nn.packing import check_pack, pack_samples


def test_pack_samples_puts_consecutive_samples_side_by_side() -> None:
    x = torch.arange(6 * 2, dtype=torch.float32).view(6, 2)  # six 2-D points
    packed = pack_samples(x, 3)
    assert packed.tolist() == [[0, 1, 2, 3, 4, 5], [6, 7, 8, 9, 10, 11]]
    images = torch.randn(4, 3, 5, 5)
    packed = pack_samples(images, 2)
    assert packed.shape == (2, 6, 5, 5)
    torch.testing.assert_close(packed[1, 3:], images[3])  # pack 1 holds images 2 and 3
    assert pack_samples(images, 1) is images


def test_batch_not_divisible_by_pack_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"divisible by 4.*batch_size"):
        pack_samples(torch.randn(6, 2), 4)


@pytest.mark.parametrize("pack", [0, -1, 2.5, True])
def test_bad_pack_values_are_config_errors(pack: object) -> None:
    with pytest.raises(ConfigError, match="pack must be an integer >= 1"):
        check_pack(pack, 0)  # type: ignore[arg-type]


def test_pack_refuses_conditional_models() -> None:
    with pytest.raises(ConfigError, match="unconditional"):
        mlp.build(28, 1, c_dim=10, pack=2)


def _only_pack_changes(D: torch.nn.Module, x: torch.Tensor, index: int, pack: int) -> None:
    """Changing sample `index` changes exactly the logit of its pack."""
    D.eval()
    with torch.no_grad():
        before = D(x)
        y = x.clone()
        y[index] += 0.5
        after = D(y)
    assert before.shape == (len(x) // pack,)
    changed = (before - after).abs() > 1e-6
    assert changed.tolist() == [i == index // pack for i in range(len(x) // pack)]


def test_packed_mlp_discriminator_judges_pack_samples_jointly() -> None:
    torch.manual_seed(0)
    nets = mlp.build(0, 0, pack=4)  # 2-D points
    assert nets["D"].net[1].linear.in_features == 8  # 4 points x 2 coordinates
    _only_pack_changes(nets["D"], torch.randn(12, 2), index=6, pack=4)


def test_packed_dcgan_discriminator_stacks_images_on_channels() -> None:
    torch.manual_seed(0)
    nets = dcgan.build(32, 3, ngf=8, ndf=8, pack=2)
    assert nets["D"].net[0].in_channels == 6
    _only_pack_changes(nets["D"], torch.randn(6, 3, 32, 32), index=3, pack=2)
