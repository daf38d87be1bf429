"""The roles a provider fills, each a small typed Protocol. The HTTP routes, the commands and
the fallback policy use only these; `runtime` builds the provider of the environment and hands
out its roles. Both providers fill all four (see `chalicelib.providers`)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from chalicelib.attribution import Attribution
    from chalicelib.catalogue import Catalogue
    from chalicelib.currents.failures import CurrentsReplay
    from chalicelib.currents.ingest import CurrentsReport
    from chalicelib.filters import FilterRequest
    from chalicelib.invocations import ImportReplay
    from chalicelib.payloads import EventBatch, Item, User
    from chalicelib.vocabulary import (
        Answer,
        BatchReport,
        CatalogueLoad,
        ClaimOutcome,
        Dataset,
        Engagement,
        ImportMode,
        ImportReport,
        Progress,
        ServedList,
        SetupReport,
        SolutionVersionInfo,
    )


class Serving(Protocol):
    """What a request asks: personalized answers, the popular list, the catalogue, health.

    An answer is `Recommendations` or `Unanswered` (no model, an unknown user, Personalize
    failing): what is then served is `chalicelib.seam.fallback`'s decision, not the provider's.
    A bad filter or filter value raises `FilterError` (the caller's 400)."""

    name: str

    def recommend(self, user_id: str, num_results: int, flt: FilterRequest | None) -> Answer: ...

    def related_items(
        self, item_id: str, num_results: int, user_id: str | None, flt: FilterRequest | None
    ) -> Answer: ...

    def rank(self, user_id: str, item_ids: Sequence[str], flt: FilterRequest | None) -> Answer: ...

    def popular(
        self, num_results: int, flt: FilterRequest | None, user_id: str | None = None
    ) -> Sequence[str]:
        """The popular items, most popular first, with the filter applied where the provider
        can evaluate it for this user."""
        ...

    def catalogue(self) -> Catalogue: ...

    def health(self) -> dict[str, object]: ...


class EventSink(Protocol):
    """Where `POST /events`, `/users` and `/items` go; each returns how many it took."""

    def put_events(self, batch: EventBatch) -> int: ...

    def put_users(self, users: Sequence[User]) -> int: ...

    def put_items(self, items: Sequence[Item]) -> int: ...


class Workflow(Protocol):
    """Personalize's workflow, as the commands run it. Usage errors (a missing setting, a file
    in the wrong place) raise `ValueError`, failures of the backend `ProviderError`, each with a
    message to print."""

    def import_file(
        self, dataset: Dataset, source: str, mode: ImportMode, progress: Progress | None = None
    ) -> ImportReport:
        """Validate and import a CSV file: a local path or an s3://bucket/key URI."""
        ...

    def setup(
        self, progress: Progress | None = None, *, dry_run: bool = False, poll_seconds: float = 15
    ) -> SetupReport: ...

    def train(
        self, solution: str | None = None, progress: Progress | None = None
    ) -> list[SolutionVersionInfo]: ...

    def metrics(
        self, solution: str | None = None, version_id: str | None = None
    ) -> SolutionVersionInfo | None: ...

    def versions(self, solution: str | None = None) -> list[SolutionVersionInfo]: ...

    def deploy(self, campaign: str, version_id: str) -> None: ...

    def prune(self) -> list[tuple[str, int]]:
        """Remove stored solution versions no campaign serves beyond the newest few of each
        solution (`RECS_KEEP_VERSIONS`); the versions removed and the bytes each freed."""
        ...

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

    def store_popular(self, item_ids: Sequence[str]) -> str | None:
        """Keep a popular list (computed from a file) where serving reads its fallback from;
        where it went, or None when the provider counts its own."""
        ...

    def import_currents(
        self, source: str, event_type: str | None = None, progress: Progress | None = None
    ) -> list[CurrentsReport]:
        """Braze Currents Avro files (a file, a folder, or an s3:// object on AWS) forwarded
        as `ingest_currents` does, each record once; `event_type` names the Currents event type
        of files outside Currents' own layout."""
        ...

    def replay_currents(
        self, *, dry_run: bool = False, drop: Sequence[str] = ()
    ) -> list[CurrentsReplay]:
        """The Currents files `ingest_currents` gave up on (its on-failure destination queue),
        each sent again once the claims' lease of its failed deliveries is over and removed from
        the queue when all its records are sent; `dry_run` only reports them; the message ids
        in `drop` are reported as a dry run would and removed. A provider without such a queue
        raises ValueError saying so."""
        ...

    def replay_imports(
        self, *, dry_run: bool = False, drop: Sequence[str] = ()
    ) -> list[ImportReplay]:
        """The CSV files `import_s3` gave up on (its on-failure destination queue), each imported
        again as `import_s3` imports it and removed from the queue once imported; a file gone
        or failing again stays, with the reason. `dry_run` only reports them; the message ids
        in `drop` are reported as a dry run would and removed. A provider without such a queue
        raises ValueError saying so."""
        ...

    def segment(
        self, item_ids: Sequence[str] | None, attribute: str | None, top: int
    ) -> tuple[list[str], list[tuple[str, float]]]:
        """The items (given, or those the item-attribute expression selects) and the `top`
        users most likely to engage with them, with their affinity, best first (Personalize's
        Item-Affinity and Item-Attribute-Affinity). A request that cannot run raises
        `SegmentError`."""
        ...

    def load_catalogue(self, path: Path) -> CatalogueLoad:
        """Load an items file into the catalogue that decorates responses."""
        ...


class Loop(Protocol):
    """The loop with Braze (SPEC section 11): what was served, kept bounded in size and time, and
    what users did with it (Braze Currents), each Currents record kept once."""

    def record_served(self, served: ServedList) -> None:
        """Keep what an answer served (a failure here must never break the answer: the caller
        logs and goes on). It may be written behind the answer: see `flush`."""
        ...

    def flush(self) -> int:
        """Write the served lists this process still holds back; how many (0 where each is
        written in its answer). Reads flush first; a server flushes when it stops."""
        ...

    def served_to(self, user_id: str, campaign: str | None, before: float) -> ServedList | None:
        """The latest list served to the user at or before `before`, for that Braze campaign
        or Canvas step when one is given."""
        ...

    def claim(self, record_ids: Sequence[str]) -> dict[str, ClaimOutcome]:
        """Claim these Currents record ids under a lease (pending): new ones and pending ones
        whose lease ran out are `taken`; `done` ones were forwarded before (a file Currents
        delivers twice forwards each record once); `held` ones are another sender's still."""
        ...

    def done(self, record_ids: Sequence[str]) -> None:
        """Mark taken claims settled (forwarded or dead-lettered): never sent again."""
        ...

    def release(self, record_ids: Sequence[str]) -> None:
        """Give back claims whose forwarding failed, so that a retry sends them."""
        ...

    def record_engagements(self, engagements: Sequence[Engagement]) -> int: ...

    def history(self, since: float) -> tuple[Iterator[ServedList], Iterator[Engagement]]:
        """Every served list and engagement since `since` (epoch seconds)."""
        ...

    def attribution(self, since: float, window_hours: float) -> Attribution:
        """What the lists served since `since` did (`chalicelib.attribution`), computed where
        the history is kept, in memory bounded whatever its size."""
        ...
