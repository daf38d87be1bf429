"""The `local` provider: Personalize's concepts (datasets, solution versions, campaigns, filters)
on the embedded engine and the SQLite store.

Serving state (loaded models, catalogue, masks) is cached in the process and refreshed when the
store's revision counters move, so a `train` or an import run from the CLI reaches a running
`chalice local` without a restart, and a request costs one small query when nothing changed.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from chalicelib.catalogue import Catalogue, normalise
from chalicelib.config import ConfigError, ProjectConfig
from chalicelib.csvdata import CsvError, Validation, read_rows
from chalicelib.engine.data import Interactions
from chalicelib.engine.filters import MAX_EVENTS_PER_TYPE, CompiledFilter, ItemFields, UserData
from chalicelib.engine.training import train
from chalicelib.filters import FilterError, FilterRequest, UnknownFilterError
from chalicelib.filters.language import check_all
from chalicelib.payloads import EventBatch, Item, User
from chalicelib.providers.local.batch import run_batch
from chalicelib.providers.local.database import StoreUnavailable
from chalicelib.providers.local.popular import PopularList
from chalicelib.providers.local.state import Served, ServingState, State
from chalicelib.providers.local.store import LocalStore
from chalicelib.settings import Settings
from chalicelib.vocabulary import (
    BatchReport,
    Dataset,
    ImportReport,
    Progress,
    Recommendations,
    SolutionVersionInfo,
)


class LocalProvider:
    name = "local"

    def __init__(self, settings: Settings, config: ProjectConfig) -> None:
        self.settings = settings
        self.config = config
        self.store = LocalStore(settings.data_dir)
        self.serving = ServingState(self.store, settings, config)
        self._popular = PopularList(self.store)
        try:
            parsed = check_all(dict(config.filters))
        except FilterError as exc:  # refused when the configuration is loaded
            raise ConfigError(f"{settings.config}: {exc}") from None
        self._filters = {name: CompiledFilter(p) for name, p in parsed.items()}

    # -- serving state -----------------------------------------------------------------------

    def _current(self) -> State:
        return self.serving.current()

    def _artifact(self, version_id: str) -> Path:
        return self.serving.artifact(version_id)

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
        properties = None
        try:
            if compiled.needs_events:
                events = self.store.filter_events(user_id, MAX_EVENTS_PER_TYPE)
            if compiled.needs_user:
                properties = normalise(self.store.user(user_id) or {})
        except StoreUnavailable:
            pass  # the store cannot tell what the user did: filter on what is known
        return UserData(events, properties, current)

    def _history(self, served: Served, user_id: str) -> tuple[np.ndarray, np.ndarray | None]:
        """The user's history as the model knows it, plus the events stored since it was
        trained (without them when the store cannot be read)."""
        try:
            recent = self.store.user_events(user_id, served.version["max_seq"])
        except StoreUnavailable:
            recent = []
        return served.model.fold_in(user_id, [(i, t) for i, t, _ in recent])

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
        self, served: Served, user_id: str | None, flt: FilterRequest | None
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
        state = self._current()
        served = state.campaigns.get("recommendations")
        if served is None:
            reason = state.missing_reason("recommendations")
            return Recommendations(
                self.popular(num_results, flt, user_id), "fallback", reason=reason
            )
        history, weights = self._history(served, user_id)
        if len(history) == 0:
            items = self.popular(num_results, flt, user_id)
            return Recommendations(items, "fallback", reason="unknown_user")
        allowed = self._mask(served, user_id, flt)
        return Recommendations(
            served.model.recommend(history, num_results, allowed, weights).item_ids,
            "personalized",
        )

    def related_items(
        self, item_id: str, num_results: int, user_id: str | None, flt: FilterRequest | None
    ) -> Recommendations:
        state = self._current()
        served = state.campaigns.get("related-items")
        reason = state.missing_reason("related-items")
        if served is not None:
            allowed = self._mask(served, user_id, flt)
            items = served.model.related(item_id, num_results, allowed)
            if items:
                return Recommendations(items, "personalized")
            reason = "unknown_item"
        popular = self.popular(num_results + 1, flt, user_id)
        items = [i for i in popular if i != item_id][:num_results]
        return Recommendations(items, "fallback", reason=reason)

    def rank(
        self, user_id: str, item_ids: Sequence[str], flt: FilterRequest | None
    ) -> Recommendations:
        state = self._current()
        if len(state.catalogue):
            item_ids = [i for i in item_ids if i in state.catalogue]
        if flt is not None:
            item_ids = self._filter_list(item_ids, user_id, flt)
        served = state.campaigns.get("rankings")
        reason = state.missing_reason("rankings")
        history = weights = np.zeros(0, dtype=np.int32)
        if served is not None:
            history, weights = self._history(served, user_id)
            reason = "unknown_user"
        if served is None or len(history) == 0:
            order = {item: rank for rank, item in enumerate(self.popular(10**9, None, None))}
            ranked = sorted(item_ids, key=lambda i: order.get(i, len(order)))
            return Recommendations(ranked, "fallback", reason=reason)
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
        items = self._popular.items(lambda: list(state.catalogue.ids())[:1000])
        if flt is not None:  # no model yet: the filter still applies to the popular list
            items = self._filter_list(items, user_id, flt)
        return items[:num_results]

    def health(self) -> dict[str, object]:
        state = self._current()
        problems = self.serving.problems()
        return {
            "status": "degraded" if problems else "ok",
            "provider": self.name,
            "model_version": state.version_id("recommendations"),
            "campaigns": {name: s.version["version_id"] for name, s in state.campaigns.items()},
            "items": len(state.catalogue),
            "problems": problems,
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
        return self.store.add_events(rows)  # an event id stored before is not stored again

    def put_users(self, users: Sequence[User]) -> int:
        return self.store.upsert("users", ((u.user_id, u.properties) for u in users), merge=False)

    def put_items(self, items: Sequence[Item]) -> int:
        rows = ((i.item_id, normalise(i.properties)) for i in items)
        try:
            return self.store.upsert("items", rows, merge=False)
        finally:
            self.serving.invalidate()

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
            errors = [*validation.errors, str(exc)]
            return ImportReport(dataset, validation.rows, 0, errors, "rejected")
        finally:
            self.serving.invalidate()
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
            events = sol.event_options()
            hpo = sol.hpo_config if sol.perform_hpo else None
            result = train(
                sol.recipe, dict(sol.hyperparameters), data, stage or None, events=events, hpo=hpo
            )
            version_id = f"{sol.name}-{time.strftime('%Y%m%dT%H%M%S')}-{time.time_ns() % 10**6:06d}"
            result.model.save(
                self._artifact(version_id), {"version_id": version_id, "solution": sol.name}
            )
            info = {
                "version_id": version_id,
                "solution": sol.name,
                "recipe": sol.recipe,
                "status": "ACTIVE",
                "params": {
                    **result.model.params.model_dump(),
                    **sol.event_options().model_dump(),
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
            self.serving.invalidate()
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
        self.serving.invalidate()

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


def _counting(rows: Iterator[Any], progress: Progress, stage: str) -> Iterator[Any]:
    """`rows` as they are, reporting their count every 20,000."""
    for n, row in enumerate(rows, start=1):
        if n % 20_000 == 0:
            progress(stage, n, None)
        yield row
