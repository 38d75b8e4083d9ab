"""Training recipes (a paper's maths); importing this package registers them all."""

from gankit.recipes import cyclegan, gan, progan, stylegan, stylegan2
from gankit.recipes.base import Phase, Recipe, Stage, StepContext

__all__ = [
    "Phase",
    "Recipe",
    "Stage",
    "StepContext",
    "cyclegan",
    "gan",
    "progan",
    "stylegan",
    "stylegan2",
]
