"""The popular list of the `local` store: its items by distinct users, the fallback list when no
model is loaded (nothing trained yet, or every model file broken).

Counting distinct users per item reads every interaction: 1.2 s on the 400k-interaction sample.
A request must not wait for that (Braze waits 2 s, and the fallback exists to answer at once), so
the count runs on a thread, at most once a minute; a request waits for it only briefly (a small
store answers within that) and otherwise gets the list counted before, or the catalogue's items.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from chalicelib.providers.local.database import StoreUnavailable
from chalicelib.providers.local.store import LocalStore

TTL_SECONDS = 60.0
WAIT_SECONDS = 0.05
SIZE = 1000


class PopularList:
    def __init__(
        self, store: LocalStore, ttl: float = TTL_SECONDS, wait: float = WAIT_SECONDS
    ) -> None:
        self.store, self._ttl, self._wait = store, ttl, wait
        self._lock = threading.Lock()
        self._items: list[str] = []
        self._counted = float("-inf")  # monotonic time of the last count started
        self._counting: threading.Thread | None = None

    def items(self, instead: Callable[[], list[str]]) -> list[str]:
        """The popular items, else `instead()` (e.g. the catalogue's) while none were counted."""
        started = None
        with self._lock:
            if self._counting is None and time.monotonic() - self._counted > self._ttl:
                self._counted = time.monotonic()
                started = self._counting = threading.Thread(
                    target=self._count, name="popular-items", daemon=True
                )
        if started is not None:
            started.start()
            started.join(self._wait)
        return self._items or instead()

    def _count(self) -> None:
        try:
            found = self.store.popular_items(SIZE)
        except StoreUnavailable:
            found = []  # keep the list counted before
        finally:
            self.store.drop_connection()  # this thread's connection: the thread ends here
        with self._lock:
            if found:
                self._items = found
            self._counting = None
