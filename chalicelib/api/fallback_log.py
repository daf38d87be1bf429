"""Counts of the fallback lists served, by reason, and their log lines.

Every fallback is counted (`/health` shows the counts of this process since it started) and
logged, but at most one line per reason a minute with the count since the last line: a broken
model under Braze's send rate would otherwise write a line per recipient.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable

log = logging.getLogger("recs.fallback")
LOG_EVERY_SECONDS = 60.0
# A reason a provider does not name: the provider raised, or gave no reason.
UNSPECIFIED = "unspecified"


class FallbackCounter:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._total: Counter[str] = Counter()
        self._unlogged: Counter[str] = Counter()
        self._logged_at: dict[str, float] = {}

    def record(self, route: str, reason: str | None) -> None:
        reason = reason or UNSPECIFIED
        now = self._clock()
        with self._lock:
            self._total[reason] += 1
            self._unlogged[reason] += 1
            last = self._logged_at.get(reason)
            if last is not None and now - last < LOG_EVERY_SECONDS:
                return
            count, self._unlogged[reason] = self._unlogged[reason], 0
            self._logged_at[reason] = now
        level = logging.INFO if reason in ("unknown_user", "unknown_item") else logging.WARNING
        log.log(level, "fallback list served (%s, on %s): %d time(s) since last logged",
                reason, route, count)  # fmt: skip

    def counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self._total)


COUNTER = FallbackCounter()
