"""The shared vocabulary: the type names every layer uses, and the plain data and errors that
cross the seam between the edges and the providers. Each is defined here once.

Standard library only, and nothing of the project but the filters' request type: the Lambdas,
the engine and both providers import it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

Source = Literal["personalized", "fallback"]
Dataset = Literal["interactions", "users", "items"]
DATASETS: tuple[Dataset, ...] = ("interactions", "users", "items")
# Personalize's recipes, by the names the configuration gives them.
RecipeName = Literal[
    "user-personalization", "personalized-ranking", "similar-items", "popularity-count"
]
# The campaigns, named after the route each one serves.
CampaignName = Literal["recommendations", "related-items", "rankings"]
# (stage, done, total): how long commands report where they are.
Progress = Callable[[str, int, int | None], None]


class ProviderError(Exception):
    """The backend could not answer; serving turns this into the fallback list."""


class UnavailableError(ProviderError):
    """The backend cannot take a write now (a full or read-only disk, a store that is gone) but
    may later: serving answers 503 with `Retry-After`. The message is safe to show a caller."""

    def __init__(self, message: str, retry_after: int = 5) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class Recommendations:
    item_ids: Sequence[str]
    source: Source
    recommendation_id: str | None = None
    # Why a fallback was served (`no_model`, `unknown_user`, `model_unavailable`, ...): counted
    # and logged by serving, shown in `/health`.
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class ImportReport:
    dataset: Dataset
    rows: int
    imported: int
    errors: list[str]
    # `started`: on AWS the dataset import job runs on in Personalize after the file passed.
    status: Literal["imported", "started", "rejected"]


@dataclass(frozen=True, slots=True)
class SolutionVersionInfo:
    version_id: str
    solution: str
    recipe: str
    status: str
    metrics: Mapping[str, float]
    counts: Mapping[str, int]
    training_seconds: float
    created: float
    params: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class BatchReport:
    lines: int
    written: int
    errors: list[str]
