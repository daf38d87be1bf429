"""The `local` provider: Personalize's concepts (datasets, solution versions, campaigns, filters)
on the embedded engine and the SQLite store.

Serving state (loaded models, catalogue, masks) is cached in the process and refreshed when the
store's revision counters move, so a `train` or an import run from the CLI reaches a running
`chalice local` without a restart, and a request costs one small query when nothing changed.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from chalicelib.catalogue import Catalogue, normalise
from chalicelib.config import ConfigError, ProjectConfig
from chalicelib.csvdata import CsvError, Dataset, Validation, read_rows
from chalicelib.engine.data import Interactions
from chalicelib.engine.filter_expression import check_all
from chalicelib.engine.filters import MAX_EVENTS_PER_TYPE, CompiledFilter, ItemFields, UserData
from chalicelib.engine.preparation import EventOptions
from chalicelib.engine.solution import SolutionModel, train
from chalicelib.models import EventBatch, Item, User
from chalicelib.providers.base import (
    BatchReport,
    FilterError,
    FilterRequest,
    ImportReport,
    Progress,
    Recommendations,
    SolutionVersionInfo,
    UnknownFilterError,
)
from chalicelib.providers.local.batch import run_batch
from chalicelib.providers.local.store import LocalStore
from chalicelib.settings import Settings

# Without a trained model the fallback is a popularity query over all interactions: cache it.
_POPULAR_TTL_SECONDS = 60.0


@dataclass
class _Served:
    version: dict[str, Any]
    model: SolutionModel
    allowed: np.ndarray | None  # items the catalogue can render
    catalogue: Catalogue  # of the state this was loaded in
    fields: ItemFields | None = None  # the model's items indexed for filters, built on first use


@dataclass
class _State:
    revisions: dict[str, int]
    catalogue: Catalogue
    campaigns: dict[str, _Served]


class LocalProvider:
    name = "local"

    def __init__(self, settings: Settings, config: ProjectConfig) -> None:
        self.settings = settings
        self.config = config
        self.store = LocalStore(settings.data_dir)
        self._lock = threading.Lock()
        self._state: _State | None = None
        self._models: dict[str, SolutionModel] = {}
        self._popular: tuple[float, list[str]] = (0.0, [])
        try:
            parsed = check_all(dict(config.filters))
        except FilterError as exc:  # refused when the configuration is loaded
            raise ConfigError(f"{settings.config}: {exc}") from None
        self._filters = {name: CompiledFilter(p) for name, p in parsed.items()}

    # -- serving state -----------------------------------------------------------------------

    def _current(self) -> _State:
        revisions = self.store.revisions()
        state = self._state
        if state is not None and _same(state.revisions, revisions):
            return state
        with self._lock:
            state = self._state
            if state is None or not _same(state.revisions, revisions):
                state = self._load(revisions, state)
                self._state = state
        return state

    def _load(self, revisions: dict[str, int], old: _State | None) -> _State:
        catalogue = (
            old.catalogue
            if old and old.revisions.get("items_rev") == revisions.get("items_rev")
            else Catalogue(
                self.store.items(),
                self.settings.item_url_template,
                self.settings.item_image_template,
                revision=revisions.get("items_rev"),
            )
        )
        campaigns: dict[str, _Served] = {}
        deployed = self.store.campaigns()
        for name, conf in self.config.campaigns.items():
            if conf.solution_version:  # pinned in the configuration
                deployed[name] = conf.solution_version
        for campaign, version_id in deployed.items():
            version = self.store.version(version_id)
            if version is None:
                continue
            model = self._models.get(version_id)
            if model is None:
                model = SolutionModel.load(
                    self._artifact(version_id), version["recipe"], version["params"]
                )
                self._models = {version_id: model, **self._models}
            allowed = None
            if len(catalogue):
                allowed = np.fromiter((i in catalogue for i in model.item_ids.tolist()), bool)
            campaigns[campaign] = _Served(version, model, allowed, catalogue)
        live = {served.version["version_id"] for served in campaigns.values()}
        self._models = {k: v for k, v in self._models.items() if k in live}
        return _State(revisions, catalogue, campaigns)

    def _artifact(self, version_id: str) -> Path:
        return self.store.models_dir / f"{version_id}.npz"

    def catalogue(self) -> Catalogue:
        return self._current().catalogue

    # -- serving -----------------------------------------------------------------------------

    def _compiled(self, flt: FilterRequest) -> CompiledFilter:
        compiled = self._filters.get(flt.name)
        if compiled is None:
            raise UnknownFilterError(flt.name)
        return compiled

    def _user(
        self,
        compiled: CompiledFilter,
        user_id: str | None,
        flt: FilterRequest,
        catalogue: Catalogue,
    ) -> UserData:
        """Only what the filter reads: the user's newest events of each type (including ones
        posted a moment ago), their metadata, and the fields of the request's current item."""
        current = None
        if flt.current_item is not None:
            current = catalogue.fields_of(flt.current_item) or {}
        if not user_id:
            return UserData(current_item=current)
        events: Sequence[tuple[str, str, float]] = ()
        if compiled.needs_events:
            events = self.store.filter_events(user_id, MAX_EVENTS_PER_TYPE)
        properties = None
        if compiled.needs_user:
            properties = normalise(self.store.user(user_id) or {})
        return UserData(events, properties, current)

    def _filter_list(
        self, item_ids: Sequence[str], user_id: str | None, flt: FilterRequest
    ) -> list[str]:
        """A short list (fallback, ranking input) filtered with a one-off index."""
        compiled = self._compiled(flt)
        catalogue = self._current().catalogue
        fields = ItemFields(item_ids, catalogue)
        mask = compiled.mask(fields, flt.values, self._user(compiled, user_id, flt, catalogue))
        return [item for item, keep in zip(item_ids, mask.tolist(), strict=True) if keep]

    def _mask(
        self, served: _Served, user_id: str | None, flt: FilterRequest | None
    ) -> np.ndarray | None:
        if flt is None:
            return served.allowed
        compiled = self._compiled(flt)
        catalogue = served.catalogue
        fields = served.fields
        if fields is None or fields.catalogue is not catalogue:
            fields = ItemFields(served.model.item_ids, catalogue, served.model.item_index)
            served.fields = fields
        user = self._user(compiled, user_id, flt, catalogue)
        mask = compiled.mask(fields, flt.values, user)
        return mask if served.allowed is None else mask & served.allowed

    def recommend(
        self, user_id: str, num_results: int, flt: FilterRequest | None
    ) -> Recommendations:
        served = self._current().campaigns.get("recommendations")
        if served is None:
            return Recommendations(self.popular(num_results, flt, user_id), "fallback")
        recent = self.store.user_events(user_id, served.version["max_seq"])
        history, weights = served.model.fold_in(user_id, [(i, t) for i, t, _ in recent])
        if len(history) == 0:
            return Recommendations(self.popular(num_results, flt, user_id), "fallback")
        allowed = self._mask(served, user_id, flt)
        return Recommendations(
            served.model.recommend(history, num_results, allowed, weights).item_ids,
            "personalized",
        )

    def related_items(
        self, item_id: str, num_results: int, user_id: str | None, flt: FilterRequest | None
    ) -> Recommendations:
        served = self._current().campaigns.get("related-items")
        if served is not None:
            allowed = self._mask(served, user_id, flt)
            items = served.model.related(item_id, num_results, allowed)
            if items:
                return Recommendations(items, "personalized")
        popular = self.popular(num_results + 1, flt, user_id)
        return Recommendations([i for i in popular if i != item_id][:num_results], "fallback")

    def rank(
        self, user_id: str, item_ids: Sequence[str], flt: FilterRequest | None
    ) -> Recommendations:
        state = self._current()
        if len(state.catalogue):
            item_ids = [i for i in item_ids if i in state.catalogue]
        if flt is not None:
            item_ids = self._filter_list(item_ids, user_id, flt)
        served = state.campaigns.get("rankings")
        history = weights = np.zeros(0, dtype=np.int32)
        if served is not None:
            recent = self.store.user_events(user_id, served.version["max_seq"])
            history, weights = served.model.fold_in(user_id, [(i, t) for i, t, _ in recent])
        if served is None or len(history) == 0:
            order = {item: rank for rank, item in enumerate(self.popular(10**9, None, None))}
            ranked = sorted(item_ids, key=lambda i: order.get(i, len(order)))
            return Recommendations(ranked, "fallback")
        ranked = served.model.rank(history, item_ids, weights)
        return Recommendations(ranked.item_ids, "personalized")

    def popular(
        self, num_results: int, flt: FilterRequest | None, user_id: str | None = None
    ) -> list[str]:
        state = self._current()
        served = state.campaigns.get("recommendations") or next(
            iter(state.campaigns.values()), None
        )
        if served is not None:
            allowed = self._mask(served, user_id, flt)
            order = served.model.popular_order
            if allowed is not None:
                order = order[allowed[order]]
            return served.model.item_ids[order[:num_results]].tolist()
        stamp, items = self._popular
        if time.monotonic() - stamp > _POPULAR_TTL_SECONDS:
            items = self.store.popular_items(1000) or list(state.catalogue.ids())[:1000]
            self._popular = (time.monotonic(), items)
        if flt is not None:  # no model yet: the filter still applies to the popular list
            items = self._filter_list(items, user_id, flt)
        return items[:num_results]

    def health(self) -> dict[str, object]:
        state = self._current()
        return {
            "status": "ok",
            "provider": self.name,
            "model_version": _version_id(state, "recommendations"),
            "campaigns": {name: s.version["version_id"] for name, s in state.campaigns.items()},
            "items": len(state.catalogue),
        }

    # -- events and metadata -----------------------------------------------------------------

    def put_events(self, batch: EventBatch) -> int:
        rows = [
            {
                "user_id": batch.user_id,
                "session_id": batch.session,
                "item_id": e.item_id,
                "event_type": e.event_type,
                "event_value": e.event_value,
                "ts": e.timestamp,
                "event_id": e.event_id,
                "recommendation_id": e.recommendation_id,
                "impression": "|".join(e.impression) if e.impression else None,
                "properties": json.dumps(e.properties) if e.properties else None,
            }
            for e in batch.events
        ]
        self.store.add_events(rows)
        return len(rows)

    def put_users(self, users: Sequence[User]) -> int:
        return self.store.upsert("users", ((u.user_id, u.properties) for u in users), merge=True)

    def put_items(self, items: Sequence[Item]) -> int:
        rows = ((i.item_id, normalise(i.properties)) for i in items)
        return self.store.upsert("items", rows, merge=True)

    # -- workflow ----------------------------------------------------------------------------

    def import_file(
        self, dataset: Dataset, path: Path, mode: str, progress: Progress | None = None
    ) -> ImportReport:
        validation = Validation()
        rows = read_rows(path, dataset, validation, self.config.schemas.get(dataset))
        if dataset == "items":
            rows = ((item_id, normalise(props)) for item_id, props in rows)
        if progress:
            rows = _counting(rows, progress, f"importing {dataset}")
        try:
            loaded = self.store.bulk_load(
                dataset, rows, replace=mode == "full", keep=lambda: validation.error_count == 0
            )
        except CsvError as exc:
            return ImportReport(dataset, validation.rows, 0, [str(exc)], "rejected")
        if validation.error_count:
            errors = [*validation.errors]
            if validation.error_count > len(errors):
                errors.append(f"... {validation.error_count - len(errors)} more errors")
            return ImportReport(dataset, validation.rows, 0, errors, "rejected")
        return ImportReport(dataset, validation.rows, loaded, [], "imported")

    def train(
        self, solution: str | None = None, progress: Progress | None = None
    ) -> list[SolutionVersionInfo]:
        solutions = [self.config.solution(solution)] if solution else self.config.solutions
        max_seq = self.store.max_seq()
        data = Interactions.from_rows(self.store.interactions(max_seq))
        infos = []
        for sol in solutions:
            stage = progress and (lambda s, d, t, n=sol.name: progress(f"{n}: {s}", d, t))
            events = EventOptions.model_validate(sol.event_options())
            hpo = sol.hpo_config.model_dump() if sol.perform_hpo and sol.hpo_config else None
            result = train(
                sol.recipe, dict(sol.hyperparameters), data, stage or None, events=events, hpo=hpo
            )
            version_id = f"{sol.name}-{time.strftime('%Y%m%dT%H%M%S')}-{time.time_ns() % 10**6:06d}"
            result.model.save(self._artifact(version_id))
            info = {
                "version_id": version_id,
                "solution": sol.name,
                "recipe": sol.recipe,
                "status": "ACTIVE",
                "params": {
                    **result.model.params.model_dump(),
                    **sol.event_options(),
                    **({"hpo": result.tuning.summary()} if result.tuning else {}),
                    **({"chosen": result.choice} if result.choice else {}),
                },
                "metrics": result.metrics,
                "counts": result.counts,
                "training_seconds": round(result.seconds, 3),
                "created": time.time(),
                "max_seq": max_seq,
            }
            self.store.save_version(info)
            for campaign, conf in self.config.campaigns.items():
                if conf.solution == sol.name and not conf.solution_version:
                    self.store.deploy(campaign, version_id)
            infos.append(_info(info))
        return infos

    def metrics(
        self, solution: str | None = None, version_id: str | None = None
    ) -> SolutionVersionInfo | None:
        """A version's metrics: the one named, else the solution's latest, else the version the
        `recommendations` campaign serves."""
        if version_id is not None:
            version = self.store.version(version_id)
        elif solution is None:
            served = self._current().campaigns.get("recommendations")
            version = served.version if served else None
        else:
            version = self.store.latest_version(solution)
        return _info(version) if version else None

    def versions(self, solution: str | None = None) -> list[SolutionVersionInfo]:
        """Every stored solution version (of one solution), newest first."""
        return [_info(v) for v in self.store.versions(solution)]

    def deploy(self, campaign: str, version_id: str) -> None:
        """Make `campaign` serve a stored version (Personalize's UpdateCampaign)."""
        version = self.store.version(version_id)
        if version is None:
            raise ValueError(f"no solution version {version_id!r}; see `versions`")
        conf = self.config.campaigns.get(campaign)  # type: ignore[call-overload]
        if conf is None:
            known = ", ".join(sorted(self.config.campaigns))
            raise ValueError(f"no campaign {campaign!r} in the configuration (known: {known})")
        if version["solution"] != conf.solution:
            raise ValueError(
                f"campaign {campaign!r} serves solution {conf.solution!r}; "
                f"{version_id!r} is a version of {version['solution']!r}"
            )
        self.store.deploy(campaign, version_id)

    def batch(
        self,
        input_path: Path,
        output_path: Path,
        num_results: int,
        *,
        solution: str | None = None,
        flt: FilterRequest | None = None,
        progress: Progress | None = None,
    ) -> BatchReport:
        return run_batch(
            self,
            input_path,
            output_path,
            num_results,
            solution=solution,
            flt=flt,
            progress=progress,
        )


def _same(a: dict[str, int], b: dict[str, int]) -> bool:
    keys = ("items_rev", "campaigns_rev")
    return all(a.get(k) == b.get(k) for k in keys)


def _version_id(state: _State, campaign: str) -> str | None:
    served = state.campaigns.get(campaign)
    return served.version["version_id"] if served else None


def _info(version: dict[str, Any]) -> SolutionVersionInfo:
    return SolutionVersionInfo(
        version_id=version["version_id"],
        solution=version["solution"],
        recipe=version["recipe"],
        status=version["status"],
        metrics=version["metrics"],
        counts=version["counts"],
        training_seconds=version["training_seconds"],
        created=version["created"],
        params=version["params"],
    )


def _counting(rows: Any, progress: Progress, stage: str) -> Any:
    for n, row in enumerate(rows, start=1):
        if n % 20_000 == 0:
            progress(stage, n, None)
        yield row
