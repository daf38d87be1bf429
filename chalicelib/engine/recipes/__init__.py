"""Recipes: one class each with `fit`, `scores`/`related`, and array (de)serialisation.

The registry maps Personalize's recipe names to the classes; `hyperparameters` in the configuration
are validated by each recipe's own `Params` model.
"""

from chalicelib.engine.recipes.base import Recipe, top_k
from chalicelib.engine.recipes.popularity import PopularityCount
from chalicelib.engine.recipes.similar_items import SimilarItems
from chalicelib.engine.recipes.user_personalization import (
    PersonalizedRanking,
    UserPersonalization,
)

RECIPES: dict[str, type[Recipe]] = {
    "user-personalization": UserPersonalization,
    "personalized-ranking": PersonalizedRanking,
    "similar-items": SimilarItems,
    "popularity-count": PopularityCount,
}

__all__ = [
    "RECIPES",
    "PersonalizedRanking",
    "PopularityCount",
    "Recipe",
    "SimilarItems",
    "UserPersonalization",
    "top_k",
]
