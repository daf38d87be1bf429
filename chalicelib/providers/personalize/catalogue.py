"""The `personalize` provider's item catalogue: render-ready items read from the DynamoDB table
(`RECS_ITEMS_TABLE`) or taken from the metadata Personalize returned, cached in the container.

A Lambda container cannot hold a scan of a large table on every cold start, so items are fetched
by id when a response needs them (one BatchGetItem for the ids not cached) and kept for a TTL.
Items the table does not have are left out of responses (discontinued or not yet synced: an item
without a name or price is no use in a Braze message); when the table cannot be read at all, the
items are rendered from the URL templates alone rather than dropped.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from chalicelib.catalogue import decorate, with_recommendation_id
from chalicelib.providers.personalize import items_table

log = logging.getLogger("recs.personalize.catalogue")
# Items absent from the table are remembered for less time than present ones: a new product
# should show up soon after it is written.
MISSING_TTL_FRACTION = 0.2


class TableCatalogue:
    """A lazily filled view of the item table: a `chalicelib.catalogue.Catalogue`."""

    def __init__(
        self,
        table: str,
        url_template: str,
        image_template: str,
        *,
        ttl: float,
        clock: Callable[[], float] = time.monotonic,
        read_seconds: float = 0.5,
    ) -> None:
        self.table = table
        self._url_template, self._image_template = url_template, image_template
        self._ttl = ttl
        self._clock = clock
        self._read_seconds = read_seconds
        self._lock = threading.Lock()
        # item id -> (expiry, rendered JSON, or None when the table has no such item)
        self._cache: dict[str, tuple[float, str | None]] = {}
        self._size: tuple[float, int] = (float("-inf"), 0)  # (expiry, items in the table)

    # -- filling -----------------------------------------------------------------------------

    def _fresh(self, item_id: str, now: float) -> bool:
        entry = self._cache.get(item_id)
        return entry is not None and entry[0] > now

    def _render_one(self, item_id: str, properties: Mapping[str, Any]) -> str:
        rendered = decorate(item_id, properties, self._url_template, self._image_template)
        return json.dumps(rendered, ensure_ascii=False, separators=(",", ":"))

    def _bare(self, item_id: str) -> str:
        return self._render_one(item_id, {})

    def remember(self, items: Iterable[tuple[str, Mapping[str, Any]]]) -> None:
        """Cache items whose fields are already known (Personalize's returned metadata)."""
        expiry = self._clock() + self._ttl
        with self._lock:
            for item_id, properties in items:
                self._cache[item_id] = (expiry, self._render_one(item_id, properties))

    def forget(self, item_ids: Iterable[str]) -> None:
        """Drop cached items (this container wrote them); other containers wait for the TTL."""
        with self._lock:
            for item_id in item_ids:
                self._cache.pop(item_id, None)

    def prefetch(self, item_ids: Sequence[str]) -> bool:
        """Make sure `item_ids` are cached; False when the table could not be read."""
        if not self.table:
            return True
        now = self._clock()
        wanted = [i for i in dict.fromkeys(item_ids) if not self._fresh(i, now)]
        wanted = [i for i in wanted if i != items_table.POPULAR_KEY]
        if not wanted:
            return True
        try:
            found = items_table.get_items(self.table, wanted, deadline=now + self._read_seconds)
        except Exception as exc:  # any AWS or network error: decorate from templates instead
            log.warning("item table %s unreadable (%s); rendering bare items", self.table, exc)
            return False
        present = now + self._ttl
        missing = now + self._ttl * MISSING_TTL_FRACTION
        with self._lock:
            for item_id in wanted:
                fields = found.get(item_id)
                if fields is None:
                    self._cache[item_id] = (missing, None)
                else:
                    self._cache[item_id] = (present, self._render_one(item_id, fields))
        if len(found) < len(wanted):
            log.info("%d of %d items not in the item table", len(wanted) - len(found), len(wanted))
        return True

    def known(self, item_ids: Sequence[str]) -> list[str]:
        """`item_ids` less those the table does not have (all of them when it cannot tell)."""
        if not self.table or not self.prefetch(item_ids):
            return list(item_ids)
        return [i for i in item_ids if (e := self._cache.get(i)) is None or e[1] is not None]

    # -- the Catalogue Protocol --------------------------------------------------------------

    def render(
        self, item_ids: Iterable[str], limit: int | None = None, recommendation_id: str = ""
    ) -> str:
        ids = list(item_ids)
        readable = self.prefetch(ids[: None if limit is None else limit * 2])
        parts: list[str] = []
        for item_id in ids:
            entry = self._cache.get(item_id)
            if entry is not None:
                fragment = entry[1]
            elif not self.table or not readable:
                fragment = self._bare(item_id)
            else:
                # Beyond the prefetched window (many items missing): fetch the rest on demand.
                self.prefetch([item_id])
                entry = self._cache.get(item_id)
                fragment = entry[1] if entry else self._bare(item_id)
            if fragment is None:
                continue
            parts.append(fragment)
            if limit is not None and len(parts) >= limit:
                break
        body = "[" + ",".join(parts) + "]"
        return with_recommendation_id(body, self._url_template, recommendation_id)

    def __len__(self) -> int:
        """How many items the table holds: DynamoDB's own count (DescribeTable, which DynamoDB
        refreshes about every six hours), cached for the TTL; 0 when it cannot be read, as for
        an empty catalogue. Without a table, the items cached from Personalize's metadata."""
        if not self.table:
            return sum(1 for _, fragment in self._cache.values() if fragment is not None)
        expiry, size = self._size
        now = self._clock()
        if expiry > now:
            return size
        try:
            size = items_table.count(self.table)
        except Exception as exc:  # a size is a hint: never fail a request for it
            log.warning("item table %s: no item count (%s)", self.table, exc)
            size = 0
        self._size = (now + self._ttl, size)
        return size
