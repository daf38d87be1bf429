"""The roles a provider fills, as small typed Protocols."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from chalicelib.catalogue import Catalogue
    from chalicelib.filters import FilterRequest
    from chalicelib.payloads import EventBatch, Item, User
    from chalicelib.vocabulary import (
        BatchReport,
        Dataset,
        ImportReport,
        Progress,
        Recommendations,
        SolutionVersionInfo,
    )


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
