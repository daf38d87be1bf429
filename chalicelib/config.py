"""The declarative configuration (`recs.toml`): dataset group, solutions, campaigns, filters."""

from __future__ import annotations

import tomllib
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from chalicelib.names import personalize_name
from chalicelib.vocabulary import CampaignName, Dataset, RecipeName

NAME_PATTERN = r"^[a-zA-Z0-9][a-zA-Z0-9\-_]{0,62}$"  # Personalize's resource-name rule


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class DatasetGroup(_Strict):
    name: str = Field(default="braze-shop", pattern=NAME_PATTERN)


class EventParameters(_Strict):
    """One entry of Personalize's solutionConfig.eventsConfig.eventParametersList."""

    event_type: str = Field(min_length=1)
    event_value_threshold: float | None = None
    weight: float = Field(default=1.0, ge=0.0, le=1.0)


class EventOptions(_Strict):
    """A solution's event settings, in Personalize's names: what the engine trains on and how
    much each posted event weighs (saved with every local model)."""

    event_type: str | None = None
    event_value_threshold: float | None = None
    events: tuple[EventParameters, ...] = Field(default=(), max_length=10)

    def weight_of(self, event_type: str) -> float:
        """The fold-in weight of a posted event of this type (thresholds need the value)."""
        if self.event_type is not None and event_type.lower() != self.event_type.lower():
            return 0.0
        if not self.events:
            return 1.0
        for param in self.events:
            if param.event_type.lower() == event_type.lower():
                return param.weight
        return 0.0


class IntegerRange(_Strict):
    name: str
    min_value: int = Field(ge=-1_000_000, le=1_000_000)
    max_value: int = Field(ge=-1_000_000, le=1_000_000)


class ContinuousRange(_Strict):
    name: str
    min_value: float
    max_value: float


class CategoricalRange(_Strict):
    name: str
    values: list[str] = Field(min_length=1, max_length=100)


class HyperParameterRanges(_Strict):
    """Personalize's algorithmHyperParameterRanges, in snake case."""

    integer_hyperparameter_ranges: list[IntegerRange] = Field(default_factory=list, max_length=100)
    continuous_hyperparameter_ranges: list[ContinuousRange] = Field(
        default_factory=list, max_length=100
    )
    categorical_hyperparameter_ranges: list[CategoricalRange] = Field(
        default_factory=list, max_length=100
    )

    @model_validator(mode="after")
    def _ranges_are_ordered(self) -> HyperParameterRanges:
        ranges: list[IntegerRange | ContinuousRange] = [
            *self.integer_hyperparameter_ranges,
            *self.continuous_hyperparameter_ranges,
        ]
        for r in ranges:
            if r.min_value > r.max_value:
                raise ValueError(f"range of {r.name!r}: min_value is above max_value")
        return self


class HpoObjective(_Strict):
    type: Literal["Maximize", "Minimize"] = "Maximize"
    metric_name: str = "normalized_discounted_cumulative_gain_at_10"


class HpoResourceConfig(_Strict):
    max_number_of_training_jobs: int = Field(default=16, ge=1, le=40)
    max_parallel_training_jobs: int = Field(default=1, ge=1, le=10)  # accepted; local runs 1


class HpoConfig(_Strict):
    """Personalize's solutionConfig.hpoConfig, in snake case."""

    hpo_objective: HpoObjective = HpoObjective()
    hpo_resource_config: HpoResourceConfig = HpoResourceConfig()
    algorithm_hyperparameter_ranges: HyperParameterRanges = HyperParameterRanges()


class Solution(_Strict):
    name: str = Field(pattern=NAME_PATTERN)
    recipe: RecipeName
    hyperparameters: dict[str, str | int | float | bool] = Field(default_factory=dict)
    # Which events train it (Personalize's CreateSolution.eventType, solutionConfig's
    # eventValueThreshold and eventsConfig); by default every event weighs the same.
    event_type: str | None = None
    event_value_threshold: float | None = None
    events: list[EventParameters] = Field(default_factory=list, max_length=10)
    # Personalize's performHPO: tune the ranges of `hpo_config` before training the version.
    perform_hpo: bool = Field(default=False, alias="performHPO")
    hpo_config: HpoConfig | None = None
    # Personalize's own default is a weekly retraining, billed; we make it a choice.
    perform_auto_training: bool = False

    @model_validator(mode="after")
    def _hpo_needs_ranges(self) -> Solution:
        if self.perform_hpo and self.hpo_config is None:
            raise ValueError(f"solution {self.name!r}: performHPO needs an hpo_config with ranges")
        return self

    def event_options(self) -> EventOptions:
        return EventOptions(
            event_type=self.event_type,
            event_value_threshold=self.event_value_threshold,
            events=tuple(self.events),
        )


class Campaign(_Strict):
    solution: str
    # The solution version this campaign serves; unset, every `train` deploys its new version
    # (and `python -m chalicelib deploy` can switch to any stored one).
    solution_version: str | None = None
    # Personalize: provisioned transactions per second (billed) and item metadata in responses.
    min_tps: int = Field(default=1, ge=1, le=5000)
    enable_metadata: bool = False


class CustomEvent(_Strict):
    """A Braze custom event forwarded to Personalize: its event type, and which of its properties
    holds the item id (and, optionally, the event value)."""

    event_type: str = Field(min_length=1, max_length=256)
    item_id: str = Field(default="product_id", min_length=1)
    value: str | None = None


class CurrentsConfig(_Strict):
    """`[currents]`: how Braze Currents records become Personalize events (SPEC section 11).
    An event type left empty is not forwarded (still counted, and kept for attribution)."""

    purchase_event_type: str = Field(default="purchase", max_length=256)
    email_click_event_type: str = Field(default="click", max_length=256)
    # Content Card events name no item (Braze's schema): kept for attribution; forwarded, with
    # the recommendation id and the served list as `impression`, only under a type given here.
    content_card_click_event_type: str = Field(default="", max_length=256)
    content_card_impression_event_type: str = Field(default="", max_length=256)
    # Email clicks on item links: a regular expression with a group `item_id`; by default the
    # item URL template (RECS_ITEM_URL_TEMPLATE) up to `{id}`. The recommendation id comes from
    # this query parameter of the link.
    item_url_pattern: str | None = None
    recommendation_id_parameter: str = Field(default="rid", min_length=1)
    custom_events: dict[str, CustomEvent] = Field(default_factory=dict)


# Dataset schemas as field -> "TYPE [categorical|textual] [nullable]" (Avro types: string, long,
# int, float, double, boolean), in column order; the bundled sample shop's layout by default.
DEFAULT_SCHEMAS: dict[Dataset, dict[str, str]] = {
    "interactions": {
        "USER_ID": "string",
        "ITEM_ID": "string",
        "EVENT_TYPE": "string",
        "EVENT_VALUE": "float nullable",
        "TIMESTAMP": "long",
    },
    "users": {"USER_ID": "string", "COUNTRY": "string categorical nullable"},
    "items": {
        "ITEM_ID": "string",
        "NAME": "string textual nullable",
        "PRICE": "float nullable",
        "CATEGORY": "string categorical nullable",
    },
}
_FIELD_TYPES = {"string", "long", "int", "float", "double", "boolean"}
_FIELD_FLAGS = {"categorical", "textual", "nullable"}


class ProjectConfig(_Strict):
    dataset_group: DatasetGroup = DatasetGroup()
    schemas: dict[Dataset, dict[str, str]] = Field(
        default_factory=lambda: {k: dict(v) for k, v in DEFAULT_SCHEMAS.items()}
    )
    # The event tracker (`PutEvents`' tracking id) of the dataset group; one per group.
    event_tracker: str = Field(default="events", pattern=NAME_PATTERN)
    solutions: list[Solution] = Field(min_length=1)
    campaigns: dict[CampaignName, Campaign] = Field(default_factory=dict)
    # name -> Personalize filter expression (CreateFilter takes 1-2,500 characters).
    filters: dict[str, Annotated[str, StringConstraints(min_length=1, max_length=2500)]] = Field(
        default_factory=dict
    )
    currents: CurrentsConfig = CurrentsConfig()

    @field_validator("schemas", mode="before")
    @classmethod
    def _default_schemas(cls, given: object) -> object:
        """Datasets not named keep the default layout; `users = {}` leaves a dataset out."""
        if not isinstance(given, dict):
            return given
        merged = {**DEFAULT_SCHEMAS, **given}
        return {name: fields for name, fields in merged.items() if fields}

    @model_validator(mode="after")
    def _schemas(self) -> ProjectConfig:
        if "interactions" not in self.schemas:
            raise ValueError("schemas.interactions is required")
        required = {"interactions": ("USER_ID", "ITEM_ID", "TIMESTAMP"), "users": ("USER_ID",)}
        required["items"] = ("ITEM_ID",)
        for dataset, fields in self.schemas.items():
            for name in required[dataset]:
                if name not in fields:
                    raise ValueError(f"schemas.{dataset} needs the field {name}")
            for name, spec in fields.items():
                kind, *flags = spec.split()
                if kind not in _FIELD_TYPES or not set(flags) <= _FIELD_FLAGS:
                    raise ValueError(
                        f"schemas.{dataset}.{name}: {spec!r} is not 'TYPE [categorical|textual]"
                        f" [nullable]' with TYPE one of {sorted(_FIELD_TYPES)}"
                    )
        return self

    @model_validator(mode="after")
    def _campaigns_name_solutions(self) -> ProjectConfig:
        names = [s.name for s in self.solutions]
        if len(set(names)) != len(names):
            raise ValueError("solution names must be unique")
        for route, campaign in self.campaigns.items():
            if campaign.solution not in names:
                raise ValueError(f"campaign {route!r} names unknown solution {campaign.solution!r}")
        return self

    @model_validator(mode="after")
    def _personalize_names(self) -> ProjectConfig:
        """Every name `setup` derives for a Personalize resource keeps the service's rule, so a
        bad filter or dataset group name is refused when the file loads, at its key, not
        half-way through `setup` (or cut short into a name that collides)."""
        derived: list[tuple[str, tuple[str, ...]]] = [
            ("event_tracker", (self.event_tracker,)),
            ("dataset_group.name", ("batch", "20240101T000000")),  # batch job names
        ]
        for dataset in self.schemas:
            derived.append((f"schemas.{dataset}", (dataset, "0" * 8)))  # schema: name-hash
        derived += [(f"solutions.{s.name}", (s.name,)) for s in self.solutions]
        derived += [(f"campaigns.{route}", (route,)) for route in self.campaigns]
        derived += [(f"filters.{name}", (name,)) for name in self.filters]
        for where, parts in derived:
            try:
                personalize_name(self.dataset_group.name, *parts)
            except ValueError as exc:
                raise ValueError(f"{where}: {exc}") from None
        return self

    def solution(self, name: str) -> Solution:
        for solution in self.solutions:
            if solution.name == name:
                return solution
        raise KeyError(name)


class ConfigError(ValueError):
    """The configuration file is missing or invalid; the message says where."""


@lru_cache(maxsize=8)
def load_config(path: Path) -> ProjectConfig:
    try:
        with path.open("rb") as fh:
            raw = tomllib.load(fh)
    except FileNotFoundError as exc:
        raise ConfigError(f"configuration file not found: {path}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    try:
        return ProjectConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
