"""The CycleGAN recipe's maths against hand computations and the official code's rules: the
losses, the image pool, the learning-rate schedule, the resize-and-crop transform, and the
defaults it resolves for the data."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from gankit.errors import ConfigError
from gankit.models.cyclegan import build
from gankit.recipes.base import Stage, StepContext
from gankit.recipes.cyclegan import (
    CycleGANRecipe,
    ImagePool,
    gan_loss,
    lr_multiplier,
    random_resized_crops,
)
from gankit.train.resolve import DataFacts


class Shift(nn.Module):
    """x + offset: a 'generator' whose translations are known exactly."""

    def __init__(self, offset: float, channels: int = 3) -> None:
        super().__init__()
        self.offset = nn.Parameter(torch.tensor(offset))
        self.img_channels = channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.offset


class Constant(nn.Module):
    """A 'discriminator' scoring every patch `value`."""

    def __init__(self, value: float) -> None:
        super().__init__()
        self.value = nn.Parameter(torch.tensor(value))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.value.expand(x.shape[0], 1, 2, 2)


def _ctx(nets: nn.ModuleDict, batch: int = 2, seed: int = 0) -> StepContext:
    return StepContext(
        nets=nets, stage=Stage(8, batch_size=batch), batch_size=batch,
        device=torch.device("cpu"), generator=torch.Generator().manual_seed(seed), cur_nimg=0,
    )  # fmt: skip


def _hand_made_recipe(**args) -> tuple[CycleGANRecipe, nn.ModuleDict]:
    nets = nn.ModuleDict(
        {"G_ab": Shift(0.1), "G_ba": Shift(0.2), "D_a": Constant(0.5), "D_b": Constant(0.5)}
    )
    return CycleGANRecipe(nets, 2, preprocess="none", flip=False, **args), nets


def test_the_generator_losses_match_a_hand_computation() -> None:
    recipe, nets = _hand_made_recipe()
    a, b = torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8)
    logs = recipe.g_step({"img_a": a, "img_b": b}, _ctx(nets))
    # GAN: each D scores 0.5, (0.5 - 1)^2 = 0.25 per direction. Cycle: a + 0.1 + 0.2 and
    # b + 0.2 + 0.1 are 0.3 off, x 10 each. Identity: G_ab(b) is 0.1 off (x lambda_B 10 x 0.5),
    # G_ba(a) 0.2 off (x lambda_A 10 x 0.5).
    assert logs["gan"].item() == pytest.approx(0.5)
    assert logs["cycle"].item() == pytest.approx(6.0)
    assert logs["identity"].item() == pytest.approx(0.5 + 1.0)
    assert logs["loss"].item() == pytest.approx(8.0)


def test_the_identity_loss_is_off_at_zero_and_weights_follow_the_lambdas() -> None:
    recipe, nets = _hand_made_recipe(lambda_identity=0.0, lambda_A=1.0, lambda_B=2.0)
    a, b = torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8)
    logs = recipe.g_step({"img_a": a, "img_b": b}, _ctx(nets, batch=1))
    assert "identity" not in logs
    assert logs["cycle"].item() == pytest.approx(0.3 * 1.0 + 0.3 * 2.0)


@pytest.mark.parametrize(("mode", "expected"), [("lsgan", 0.25), ("vanilla", 0.7240770)])
def test_each_d_loss_is_halved_over_its_real_and_fake_terms(mode: str, expected: float) -> None:
    recipe, nets = _hand_made_recipe(gan_mode=mode, pool_size=0)
    batch = {"img_a": torch.rand(2, 3, 8, 8), "img_b": torch.rand(2, 3, 8, 8)}
    ctx = _ctx(nets)
    recipe.g_step(batch, ctx)
    logs = recipe.d_step(batch, ctx)
    # lsgan: 0.5 x ((0.5 - 1)^2 + 0.5^2). vanilla: 0.5 x (softplus(-0.5) + softplus(0.5)).
    assert logs["D_a"].item() == pytest.approx(expected) == logs["D_b"].item()
    assert logs["loss"].item() == pytest.approx(2 * expected)


def test_gan_loss_on_a_score_map() -> None:
    scores = torch.tensor([[[[0.5, 2.0], [1.0, 0.0]]]])
    assert gan_loss(scores, True, "lsgan").item() == pytest.approx((0.25 + 1 + 0 + 1) / 4)
    assert gan_loss(scores, False, "lsgan").item() == pytest.approx((0.25 + 4 + 1 + 0) / 4)
    softplus = torch.nn.functional.softplus
    assert gan_loss(scores, True, "vanilla").item() == pytest.approx(
        softplus(-scores).mean().item()
    )


def test_the_pool_fills_then_returns_a_stored_fake_about_half_the_time() -> None:
    pool, gen = ImagePool(50), torch.Generator().manual_seed(0)
    for k in range(50):  # filling: every fake goes in and comes straight back
        fake = torch.full((1, 1, 2, 2), float(k))
        assert torch.equal(pool.query(fake, gen), fake)
    assert len(pool.images) == 50
    stored, swaps = {float(k) for k in range(50)}, 0
    for k in range(50, 1050):
        out = pool.query(torch.full((1, 1, 2, 2), float(k)), gen)[0, 0, 0, 0].item()
        if out != k:  # an older fake came back, and the new one took its place
            assert out in stored
            stored.remove(out)
            stored.add(float(k))
            swaps += 1
    assert 450 <= swaps <= 550  # 1000 fair coins: 500 +- 3 sigma (sigma = 15.8)
    assert {img[0, 0, 0].item() for img in pool.images} == stored


def test_a_pool_of_size_zero_passes_fakes_through_and_state_round_trips() -> None:
    gen = torch.Generator().manual_seed(0)
    fake = torch.rand(3, 1, 2, 2)
    assert ImagePool(0).query(fake, gen) is fake
    pool = ImagePool(2)
    pool.query(fake, gen)
    other = ImagePool(2)
    other.load_state_dict(pool.state_dict(), torch.device("cpu"))
    assert all(torch.equal(x, y) for x, y in zip(pool.images, other.images, strict=True))


@pytest.mark.parametrize(
    ("cur", "expected"), [(0, 1.0), (499, 1.0), (500, 1.0), (750, 0.5), (1000, 0.0)]
)
def test_the_learning_rate_is_constant_then_falls_linearly_to_zero(
    cur: int, expected: float
) -> None:
    # The official 100 + 100 epochs: the decay takes the second half of the run.
    assert lr_multiplier(cur, 1000, decay_fraction=0.5) == pytest.approx(expected)


def test_the_recipe_writes_its_schedule_into_both_optimizers() -> None:
    recipe, _ = _hand_made_recipe(n_epochs=1, n_epochs_decay=3, lr=1e-3)
    # The decay starts after a quarter of the run: at 2,500 of 4,000 images, half-way through it.
    assert recipe.optimizer_settings(2500, 4000) == {"G": {"lr": 5e-4}, "D": {"lr": 5e-4}}


def test_resize_and_crop_is_a_crop_of_the_bicubic_resize_pil_makes() -> None:
    # A smooth image (PIL rounds and clips to uint8 between its two passes, which only shows
    # where the bicubic kernel overshoots, on sharp edges).
    y, x = np.mgrid[0:16, 0:16]
    pixels = np.stack([128 + 80 * np.sin(x / 2.5 + k) * np.cos(y / 3.1) for k in range(3)], -1)
    pixels = pixels.astype(np.uint8)
    img = torch.from_numpy(pixels).permute(2, 0, 1)[None].float() / 127.5 - 1
    out = random_resized_crops(img, 18, False, torch.Generator().manual_seed(3))
    assert out.shape == img.shape
    big = np.asarray(Image.fromarray(pixels).resize((18, 18), Image.BICUBIC)).astype(float)
    big = torch.from_numpy(big).permute(2, 0, 1) / 127.5 - 1
    errors = [
        (out[0] - big[:, y : y + 16, x : x + 16]).abs().max().item()
        for y in range(3)
        for x in range(3)
    ]
    assert min(errors) <= 1.0 / 127.5  # within PIL's rounding to uint8


def test_crops_and_flips_vary_per_image_and_follow_the_seed() -> None:
    img = torch.arange(8 * 8, dtype=torch.float32).reshape(1, 1, 8, 8).repeat(64, 1, 1, 1)
    first = random_resized_crops(img, 8, True, torch.Generator().manual_seed(1))
    flipped = torch.tensor([torch.equal(x, img[0].flip(2)) for x in first])
    assert (torch.tensor([torch.equal(x, img[0]) for x in first]) | flipped).all()
    assert 16 < flipped.sum() < 48
    again = random_resized_crops(img, 8, True, torch.Generator().manual_seed(1))
    assert torch.equal(first, again)


def test_one_pass_over_concatenated_batches_equals_separate_passes() -> None:
    torch.manual_seed(0)
    nets = build(16, 3, 0, 3, ngf=4, ndf=4, n_blocks=1, netD="n_layers", n_layers_d=1)
    batch = {"img_a": torch.rand(2, 3, 16, 16) * 2 - 1, "img_b": torch.rand(2, 3, 16, 16) * 2 - 1}
    results = []
    for batched in (True, False):
        recipe = CycleGANRecipe(nets, 2)
        recipe.batched = batched
        ctx = _ctx(nets, seed=5)
        results.append({**recipe.g_step(batch, ctx), **recipe.d_step(batch, ctx)})
    for key, value in results[0].items():
        assert value.item() == pytest.approx(results[1][key].item(), rel=1e-5), key
    assert CycleGANRecipe(build(16, 3, 0, 3, ngf=2, n_blocks=1, norm="batch", netD="pixel"), 1
                          ).batched is False  # fmt: skip


def _facts(channels: int = 3, channels_b: int = 3, images: int = 0) -> DataFacts:
    return DataFacts("ab", "unpaired", resolution=32, channels=channels, channels_b=channels_b,
                     images=images)  # fmt: skip


def test_resolved_defaults_follow_the_data() -> None:
    args = CycleGANRecipe.resolve_args({}, _facts())
    assert (args["lambda_identity"], args["load_size"], args["pool_size"]) == (0.5, 36, 50)
    grey_to_colour = CycleGANRecipe.resolve_args({}, _facts(channels=1))
    assert grey_to_colour["lambda_identity"] == 0.0
    # The official 200 epochs of the larger domain (1,334 horse images in horse2zebra).
    assert CycleGANRecipe.default_length_kimg(args, _facts(images=1334), 1) == pytest.approx(266.8)
    assert CycleGANRecipe.model_defaults(args, _facts())[1] == {"n_blocks": 6}
    # Batch 1 on each process: torchrun on 4 GPUs trains 4 images per step, none split.
    assert CycleGANRecipe.batch_size_for(args, _facts()) == 1
    four = DataFacts("ab", "unpaired", resolution=32, channels=3, channels_b=3, processes=4)
    assert CycleGANRecipe.batch_size_for(args, four) == 4


@pytest.mark.parametrize(
    ("given", "words"),
    [
        ({"lambda_identity": 0.5}, "set recipe.args.lambda_identity=0"),
        ({"gan_mode": "wgan"}, "gan_mode must be one of lsgan, vanilla"),
        ({"preprocess": "scale_width"}, "keeps non-square images, but gankit trains on square"),
        ({"preprocess": "crop"}, "preprocess must be one of resize_and_crop, resize, none"),
        ({"load_size": 16}, "load_size=16 is smaller than the crop"),
        ({"pool_size": -1}, "pool_size must be a whole number"),
        ({"lambda_A": "ten"}, "lambda_A must be a number"),
    ],
)
def test_bad_recipe_values_are_clear_errors(given: dict, words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        CycleGANRecipe.resolve_args(given, _facts(channels=1))
