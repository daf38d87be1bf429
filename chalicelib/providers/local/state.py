"""The `local` provider's serving state: the catalogue and each campaign's loaded model, rebuilt
when the store's revision counters move, and kept answering through faults.

Faults never reach a request as an error:
- a model file that is missing, truncated or not a model leaves its campaign out of the state
  (its routes serve the fallback list) and is remembered with the file's signature, so that it is
  read again only once the file changes (a retrained or restored model), not on every request;
- a store that cannot be read keeps the last good state serving (models and catalogue are in
  memory), and is tried again on the next request.
Each fault is logged once when it starts and once when it ends, and `problems()` lists the
current ones for `/health`.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chalicelib.catalogue import InMemoryCatalogue
from chalicelib.config import ProjectConfig
from chalicelib.engine.solution import SolutionModel
from chalicelib.providers.local.database import StoreUnavailable
from chalicelib.providers.local.served import ServedVersion
from chalicelib.providers.local.store import LocalStore
from chalicelib.settings import Settings

log = logging.getLogger("recs.local")
# How often a broken model file is looked at (a stat, not a read) to see whether it changed.
RECHECK_SECONDS = 1.0
# How long the store's revision counters are trusted without asking again. A request asked twice
# (the items, then their decoration) and every write by this process resets it, so only a change
# made by another process (a CLI `train`, another server worker) waits this long to be seen.
REVISION_SECONDS = 0.05


@dataclass(frozen=True)
class BrokenModel:
    campaign: str
    version_id: str
    reason: str
    signature: tuple[int, int, int] | None  # (inode, size, mtime) of the file, None if missing


@dataclass
class State:
    revisions: dict[str, int]
    catalogue: InMemoryCatalogue
    campaigns: dict[str, ServedVersion]
    broken: dict[str, BrokenModel] = field(default_factory=dict)
    checked: float = 0.0  # monotonic time broken files were last looked at

    def missing_reason(self, campaign: str) -> str:
        """Why a campaign has no model to serve: its file is broken, or none was trained yet."""
        return "model_unavailable" if campaign in self.broken else "no_model"

    def version_id(self, campaign: str) -> str | None:
        served = self.campaigns.get(campaign)
        return served.version_id if served else None


def _signature(path: Path) -> tuple[int, int, int] | None:
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return stat.st_ino, stat.st_size, stat.st_mtime_ns


def _same(a: dict[str, int], b: dict[str, int]) -> bool:
    keys = ("items_rev", "campaigns_rev")
    return all(a.get(k) == b.get(k) for k in keys)


class ServingState:
    def __init__(self, store: LocalStore, settings: Settings, config: ProjectConfig) -> None:
        self.store, self.settings, self.config = store, settings, config
        self._lock = threading.Lock()
        self._state: State | None = None
        self._models: dict[str, SolutionModel] = {}
        # version id -> (file signature, reason): a file that failed is read again only changed.
        self._failed: dict[str, tuple[tuple[int, int, int] | None, str]] = {}
        self.store_fault: str | None = None
        self._asked = -1.0  # monotonic time the revisions were last read

    def invalidate(self) -> None:
        """This process changed the store: read the revisions on the next request."""
        self._asked = -1.0

    def artifact(self, version_id: str) -> Path:
        """Where the model file of a solution version lives."""
        return self.store.models_dir / f"{version_id}.npz"

    def load(self, version: dict[str, Any]) -> ServedVersion:
        """A stored version that no campaign serves, loaded against the current catalogue."""
        path = self.artifact(version["version_id"])
        return ServedVersion.load(version, path, self.current().catalogue)

    def current(self) -> State:
        state = self._state
        now = time.monotonic()
        healthy = state is not None and not state.broken and self.store_fault is None
        if state is not None and healthy and now - self._asked < REVISION_SECONDS:
            return state
        self._asked = now
        try:
            revisions = self.store.revisions()
        except StoreUnavailable as exc:
            self._store_failed(exc)
            return state or State({}, InMemoryCatalogue([]), {})
        if state is not None and _same(state.revisions, revisions) and not self._stale(state):
            self._store_ok()
            return state
        with self._lock:
            if self._state is not state:  # another thread reloaded meanwhile
                return self._state or self.current()
            try:
                state = self._load(revisions, state)
            except StoreUnavailable as exc:  # the store failed half-way: keep what serves
                self._store_failed(exc)
                return state or State({}, InMemoryCatalogue([]), {})
            self._state = state
        self._store_ok()
        return state

    def _stale(self, state: State) -> bool:
        """A broken model file changed since it was found broken (at most one look a second)."""
        if not state.broken:
            return False
        now = time.monotonic()
        if now - state.checked < RECHECK_SECONDS:
            return False
        state.checked = now
        return any(
            _signature(self.artifact(b.version_id)) != b.signature for b in state.broken.values()
        )

    def _load(self, revisions: dict[str, int], old: State | None) -> State:
        catalogue = (
            old.catalogue
            if old and old.revisions.get("items_rev") == revisions.get("items_rev")
            else InMemoryCatalogue(
                self.store.items(),
                self.settings.item_url_template,
                self.settings.item_image_template,
                revision=revisions.get("items_rev"),
            )
        )
        campaigns: dict[str, ServedVersion] = {}
        broken: dict[str, BrokenModel] = {}
        deployed = self.store.campaigns()
        for name, conf in self.config.campaigns.items():
            if conf.solution_version:  # pinned in the configuration
                deployed[name] = conf.solution_version
        for campaign, version_id in deployed.items():
            version = self.store.version(version_id)
            if version is None:
                broken[campaign] = BrokenModel(
                    campaign, version_id, "no such solution version", None
                )
                continue
            model = self._model(version)
            if isinstance(model, str):
                path = self.artifact(version_id)
                broken[campaign] = BrokenModel(campaign, version_id, model, _signature(path))
                continue
            campaigns[campaign] = ServedVersion.of(version, model, catalogue)
        live = {served.version_id for served in campaigns.values()}
        self._models = {k: v for k, v in self._models.items() if k in live}
        self._log_changes(old.broken if old else {}, broken)
        return State(revisions, catalogue, campaigns, broken, time.monotonic())

    def _model(self, version: dict[str, Any]) -> SolutionModel | str:
        """The loaded model, or why it cannot be loaded."""
        version_id = version["version_id"]
        model = self._models.get(version_id)
        if model is not None:
            return model
        path = self.artifact(version_id)
        signature = _signature(path)
        failed = self._failed.get(version_id)
        if failed is not None and failed[0] == signature:
            return failed[1]
        if signature is None:
            reason = "model file missing"
        else:
            try:
                model = SolutionModel.load(path, version)
                _check(model)
            except Exception as exc:  # truncated, garbage, or arrays that do not fit together
                log.debug("model %s unreadable", version_id, exc_info=True)
                reason = f"model file unreadable ({type(exc).__name__})"
            else:
                self._failed.pop(version_id, None)
                self._models = {version_id: model, **self._models}
                return model
        self._failed[version_id] = (signature, reason)
        return reason

    def _log_changes(self, before: dict[str, BrokenModel], after: dict[str, BrokenModel]) -> None:
        for campaign, fault in after.items():
            if before.get(campaign) != fault:
                log.error(
                    "campaign %s: solution version %s cannot be served (%s); serving the "
                    "fallback list until the file is good again",
                    campaign,
                    fault.version_id,
                    fault.reason,
                )
        for campaign in before.keys() - after.keys():
            log.warning("campaign %s: its model is served again", campaign)

    def _store_failed(self, exc: StoreUnavailable) -> None:
        if self.store_fault != exc.kind:
            log.error(
                "the local store cannot be read (%s): serving from memory", exc.detail or exc.kind
            )
        self.store_fault = exc.kind

    def _store_ok(self) -> None:
        if self.store_fault is not None:
            log.warning("the local store can be read again")
            self.store_fault = None

    def problems(self) -> list[dict[str, str]]:
        """The current faults, in words safe for an unauthenticated `/health`."""
        found = []
        if self.store_fault:
            found.append({"part": "store", "reason": self.store_fault})
        state = self._state
        for fault in state.broken.values() if state else ():
            found.append(
                {
                    "part": f"campaign {fault.campaign}",
                    "version": fault.version_id,
                    "reason": fault.reason,
                }
            )
        return found


def _check(model: SolutionModel) -> None:
    """Arrays that load but do not fit together (a file of another version, a bad write) are as
    broken as a truncated file: refuse them now rather than fail inside every request."""
    n_items, n_users = len(model.item_ids), len(model.user_ids)
    if len(model.popularity) != n_items or len(model.hist_indptr) != n_users + 1:
        raise ValueError("model arrays of mismatched sizes")
    indices = model.hist_indices
    if len(indices) and (indices.min() < 0 or indices.max() >= n_items):
        raise ValueError("history indices outside the item range")
