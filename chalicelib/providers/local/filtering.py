"""The `local` provider's filters: the configured expressions compiled once, and a request's
filter turned into a mask over a served version's items, or applied to a short list of items
(the fallback list, a ranking's input), reading from the store only what the filter needs."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from chalicelib.catalogue import InMemoryCatalogue, normalise
from chalicelib.config import ConfigError, ProjectConfig
from chalicelib.engine.filters import MAX_EVENTS_PER_TYPE, CompiledFilter, ItemFields, UserData
from chalicelib.filters import FilterError, FilterRequest, UnknownFilterError
from chalicelib.filters.language import check_all
from chalicelib.providers.local.database import StoreUnavailable
from chalicelib.providers.local.served import ServedVersion
from chalicelib.providers.local.store import LocalStore


class LocalFilters:
    def __init__(self, store: LocalStore, config: ProjectConfig, source: Path) -> None:
        self.store = store
        try:
            parsed = check_all(dict(config.filters))
        except FilterError as exc:  # refused when the configuration is loaded
            raise ConfigError(f"{source}: {exc}") from None
        self.compiled = {name: CompiledFilter(p) for name, p in parsed.items()}

    def of(self, flt: FilterRequest) -> CompiledFilter:
        compiled = self.compiled.get(flt.name)
        if compiled is None:
            raise UnknownFilterError(flt.name, self.compiled)
        return compiled

    def user_data(
        self,
        compiled: CompiledFilter,
        user_id: str | None,
        flt: FilterRequest,
        catalogue: InMemoryCatalogue,
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

    def mask(
        self, served: ServedVersion, user_id: str | None, flt: FilterRequest | None
    ) -> np.ndarray | None:
        """The served version's items this user may be shown: the catalogue mask, narrowed by
        the filter (None: every item)."""
        if flt is None:
            return served.allowed
        compiled = self.of(flt)
        user = self.user_data(compiled, user_id, flt, served.catalogue)
        mask = compiled.mask(served.item_fields(), flt.values, user)
        return mask if served.allowed is None else mask & served.allowed

    def keep(
        self,
        item_ids: Sequence[str],
        user_id: str | None,
        flt: FilterRequest,
        catalogue: InMemoryCatalogue,
    ) -> list[str]:
        """The items of a short list (fallback, ranking input) that pass, by a one-off index."""
        compiled = self.of(flt)
        fields = ItemFields(item_ids, catalogue)
        mask = compiled.mask(fields, flt.values, self.user_data(compiled, user_id, flt, catalogue))
        return [item for item, passes in zip(item_ids, mask.tolist(), strict=True) if passes]
