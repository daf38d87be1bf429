"""The shared vocabulary: the type names every layer uses, and the plain data and errors that
cross the seam between the edges and the providers. Each is defined here once.

Standard library only, and nothing of the project: the Lambdas, the engine and both providers
import it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

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
    """The backend could not do what was asked; the message says why (the CLI prints it; the
    HTTP routes serve the fallback list instead)."""


class UnavailableError(ProviderError):
    """The backend cannot take a write now (a full or read-only disk, a store that is gone) but
    may later: serving answers 503 with `Retry-After`. The message is safe to show a caller."""

    def __init__(self, message: str, retry_after: int = 5) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class Recommendations:
    """Items to serve, best first: a provider's personalized answer, or the fallback policy's."""

    item_ids: Sequence[str]
    source: Source
    # Personalize's `recommendationId`, the local engine's own, or the fallback policy's: every
    # answer has one (`X-Recommendation-Id`), so that what Braze did with it can be traced back.
    recommendation_id: str | None = None
    # Why a fallback was served (`no_model`, `unknown_user`, `model_unavailable`, ...): counted
    # and logged by the HTTP routes, shown in `/health`.
    reason: str | None = None
    # The solution version that answered (None for a fallback list).
    solution_version: str | None = None


def new_recommendation_id(source: Source = "personalized") -> str:
    """A recommendation id of our own (the local engine's, or a fallback list's): 32 hex digits
    behind a short prefix that says which, within PutEvents' 40-character `recommendationId`."""
    return ("rid-" if source == "personalized" else "fb-") + uuid.uuid4().hex


@dataclass(frozen=True, slots=True)
class Unanswered:
    """A provider has no personalized answer; what is served instead is the fallback policy's
    decision (`chalicelib.seam.fallback`), never the provider's."""

    reason: str  # no_model, unknown_user, unknown_item, ThrottlingException, ...
    # For a ranking: the given items the provider would have ranked (in its catalogue and passing
    # the filter), when it got that far; None leaves the choice to the catalogue.
    candidates: Sequence[str] | None = None


# What a provider's serving call gives back.
Answer = Recommendations | Unanswered

ImportMode = Literal["full", "incremental"]
ImportStatus = Literal["imported", "started", "duplicate", "rejected", "error"]


@dataclass(frozen=True, slots=True)
class ImportReport:
    """What one import did, in one shape for both providers (the CLI prints it as JSON)."""

    dataset: Dataset
    # imported: loaded into the local store; started: the file passed and a dataset import job
    # runs on in Personalize; duplicate: this S3 object version was imported before; rejected:
    # an invalid file, nothing imported; error: a good file Personalize could not take now.
    status: ImportStatus
    rows: int  # data rows read
    imported: int  # rows loaded (local) or handed to the import job (AWS)
    errors: list[str]
    source: str = ""  # the file, or s3://bucket/key
    version: str | None = None  # the S3 object version imported (AWS)
    job: str | None = None  # the dataset import job's ARN (AWS)
    mode: str | None = None  # FULL or INCREMENTAL, as the job was started (AWS)
    items_loaded: int | None = None  # items written to the DynamoDB item table (AWS)
    report: str | None = None  # where the validation report was written (AWS)

    @property
    def ok(self) -> bool:
        return self.status in ("imported", "started", "duplicate")


SetupAction = Literal[
    "checked",
    "created",
    "exists",
    "updated",
    "changed",
    "pending",
    "skipped",
    "would create",
    "would update",
]


@dataclass
class SetupStep:
    kind: str  # dataset group, schema, filter, solution, campaign, ...
    name: str
    action: SetupAction
    arn: str | None = None
    detail: str = ""


@dataclass
class SetupReport:
    """What `setup` found, did or would do, and the stage settings it yields (AWS)."""

    steps: list[SetupStep] = field(default_factory=list)
    settings: dict[str, str] = field(default_factory=dict)

    def add(
        self, kind: str, name: str, action: SetupAction, arn: str | None = None, detail: str = ""
    ) -> SetupStep:
        step = SetupStep(kind, name, action, arn, detail)
        self.steps.append(step)
        return step

    def count(self, action: SetupAction) -> int:
        return sum(1 for s in self.steps if s.action == action)

    def as_dict(self) -> dict[str, Any]:
        return {"steps": [asdict(s) for s in self.steps], "settings": self.settings}


@dataclass(frozen=True, slots=True)
class CatalogueLoad:
    """An items file loaded into the catalogue that decorates responses."""

    destination: str  # the DynamoDB item table, or the local store
    loaded: int
    errors: list[str]


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
    # Evaluation detail beyond the metric names (engine.diagnostics: metrics at every k, by
    # history length, popularity), where the provider records it; empty otherwise.
    evaluation: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class BatchReport:
    lines: int
    written: int
    errors: list[str]


@dataclass(frozen=True, slots=True)
class ServedList:
    """What one answer served (SPEC section 11): to whom, under which recommendation id, the items
    in order, the solution version, and the Braze campaign or Canvas step that asked for it."""

    recommendation_id: str
    user_id: str
    item_ids: Sequence[str]
    route: str  # recommendations, related-items, rankings
    source: Source
    served_at: float
    solution_version: str | None = None
    campaign: str | None = None  # Braze campaign api id (`campaign={{campaign.${api_id}}}`)
    canvas_step: str | None = None  # Braze Canvas step api id


EngagementKind = Literal["impression", "click", "purchase", "event"]
# What claiming a Currents record found: `taken` (new, or a pending claim whose lease ran out:
# now this caller's to send), `done` (forwarded before: a duplicate), `held` (pending under
# another delivery's lease: that one may still send it).
ClaimOutcome = Literal["taken", "done", "held"]


@dataclass(frozen=True, slots=True)
class Engagement:
    """One thing a user did with what was served, as Braze Currents reported it: the source of
    attribution. `event_id` is the Currents record id (a record is counted once)."""

    event_id: str
    user_id: str
    kind: EngagementKind
    ts: float
    item_id: str | None = None
    recommendation_id: str | None = None
    campaign: str | None = None
    value: float | None = None  # a purchase's price times quantity
    event_type: str | None = None  # the Personalize event type it was forwarded as
