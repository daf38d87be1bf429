"""The provider interface: one small typed Protocol covering serving, events, metadata, import,
training, metrics and batch, plus the plain data it exchanges."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

from chalicelib.filters import FilterRequest

if TYPE_CHECKING:
    from chalicelib.catalogue import Catalogue
    from chalicelib.models import EventBatch, Item, User

Source = Literal["personalized", "fallback"]
Dataset = Literal["interactions", "users", "items"]
Progress = Callable[[str, int, int | None], None]  # (stage, done, total)


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


class Provider(Protocol):
    name: str

    # serving
    def recommend(
        self, user_id: str, num_results: int, flt: FilterRequest | None
    ) -> Recommendations: ...
    def related_items(
        self, item_id: str, num_results: int, user_id: str | None, flt: FilterRequest | None
    ) -> Recommendations: ...
    def rank(
        self, user_id: str, item_ids: Sequence[str], flt: FilterRequest | None
    ) -> Recommendations: ...
    def popular(self, num_results: int, flt: FilterRequest | None) -> Sequence[str]: ...
    def catalogue(self) -> Catalogue: ...
    def health(self) -> dict[str, object]: ...

    # events and metadata
    def put_events(self, batch: EventBatch) -> int: ...
    def put_users(self, users: Sequence[User]) -> int: ...
    def put_items(self, items: Sequence[Item]) -> int: ...

    # workflow
    def import_file(
        self, dataset: Dataset, path: Path, mode: str, progress: Progress | None
    ) -> ImportReport: ...
    def train(
        self, solution: str | None, progress: Progress | None
    ) -> list[SolutionVersionInfo]: ...
    def metrics(
        self, solution: str | None, version_id: str | None = None
    ) -> SolutionVersionInfo | None: ...
    def versions(self, solution: str | None) -> list[SolutionVersionInfo]: ...
    def deploy(self, campaign: str, version_id: str) -> None: ...
    def batch(
        self,
        input_path: Path,
        output_path: Path,
        num_results: int,
        *,
        solution: str | None = None,
        flt: FilterRequest | None = None,
        progress: Progress | None = None,
    ) -> BatchReport: ...
