"""Augmentation of what D sees: StyleGAN2-ADA's pipe and adaptive p, and DiffAugment."""

from gankit.augment.ada import PRESETS, AugmentPipe
from gankit.augment.adaptive import AdaptiveP
from gankit.augment.diffaug import DiffAugment, diff_augment
from gankit.augment.grid_sample import grid_sample

__all__ = ["PRESETS", "AdaptiveP", "AugmentPipe", "DiffAugment", "diff_augment", "grid_sample"]
