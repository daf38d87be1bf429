"""Push batch recommendations into Braze: each user's items, decorated from the catalogue, become
one custom attribute (`RECS_BRAZE_ATTRIBUTE`) set through `POST /users/track`.

Braze rules this module keeps (see the fact sheet, section 4.2):
- at most 75 attributes objects per request (`RECS_BRAZE_BATCH_SIZE`; 50 on MAU CY24-25 plans);
- a request rate under the workspace limit (`RECS_BRAZE_REQUESTS_PER_SECOND`; Braze allows 3,000
  per 3 s), and 429 / 5xx retried after `Retry-After` (else an exponential pause);
- the attribute is an array of objects, one per item (id, name, url, image, price, ...), so
  Liquid can loop over it; key names without spaces, `.` or `$`, strings of at most 255
  characters, and the whole array under 50 KB (the older, stricter of Braze's documented caps):
  trailing items are dropped to fit. One bad nested value would drop every nested update of the
  request, hence the cleaning here;
- every write costs data points: a user is sent only when the value differs from what was last
  confirmed for them.

The state (user → hash of the last value Braze confirmed) is a SQLite file committed after each
confirmed request, so a crash or a Ctrl-C loses at most the request in flight: the next run skips
what was confirmed and sends the rest. The API key is sent only as the Bearer header and never
written to a log, an exception or the state.
"""

from __future__ import annotations

import email.utils
import hashlib
import json
import logging
import re
import sqlite3
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from chalicelib.batchfile import read_lines

log = logging.getLogger("recs.braze")

MAX_OBJECTS_PER_REQUEST = 75
MAX_STRING = 255
MAX_ATTRIBUTE_BYTES = 50 * 1024
RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})
_BAD_KEY_CHARS = re.compile(r"[\s.$]+")


class BrazeError(Exception):
    """The push cannot go on (bad key, bad endpoint); the message names the problem, not the key."""


@dataclass
class PushReport:
    delivered: int = 0  # users whose new value Braze confirmed in this run
    unchanged: int = 0  # same value as last confirmed: not sent
    failed: int = 0  # sent but refused (a 4xx, an `errors[]` entry) or retries exhausted
    skipped: int = 0  # lines without a userId result (errors, related-items lines, duplicates)
    requests: int = 0  # HTTP requests made, retries included
    retries: int = 0
    truncated: int = 0  # users whose list was cut to fit Braze's size cap
    first_failures: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# -- the attribute value ---------------------------------------------------------------------


def _clean(value: Any) -> Any:
    """A value Braze accepts inside a nested attribute: keys without spaces, `.` or `$`, strings
    cut at 255 characters, no nulls (a null would remove the nested key)."""
    if isinstance(value, str):
        return value[:MAX_STRING]
    if isinstance(value, Mapping):
        out = {}
        for key, inner in value.items():
            name = _BAD_KEY_CHARS.sub("_", str(key)).strip("_")[:MAX_STRING]
            if name and inner is not None:
                out[name] = _clean(inner)
        return out
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value if v is not None]
    return value


def attribute_value(items: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], bool]:
    """(the cleaned array, whether items were dropped to stay under the size cap)."""
    kept: list[dict[str, Any]] = []
    size = 2  # the brackets
    for item in items:
        cleaned = _clean(item)
        size += len(_dumps(cleaned).encode()) + (1 if kept else 0)
        if size > MAX_ATTRIBUTE_BYTES:
            return kept, True
        kept.append(cleaned)
    return kept, False


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def value_hash(value: Any) -> str:
    return hashlib.sha256(_dumps(value).encode()).hexdigest()[:32]


# -- the state file --------------------------------------------------------------------------


class PushState:
    """user → hash of the value Braze last confirmed, per attribute name (and endpoint, so a
    second workspace is a separate history)."""

    def __init__(self, path: Path, scope: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path, self.scope = path, scope
        self.db = sqlite3.connect(path)
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS pushed (scope TEXT NOT NULL, user_id TEXT NOT NULL, "
            "hash TEXT NOT NULL, pushed_at REAL NOT NULL, PRIMARY KEY (scope, user_id))"
        )
        self.db.commit()

    def unchanged(self, user_id: str, digest: str) -> bool:
        row = self.db.execute(
            "SELECT hash FROM pushed WHERE scope = ? AND user_id = ?", (self.scope, user_id)
        ).fetchone()
        return row is not None and row[0] == digest

    def confirm(self, rows: Iterable[tuple[str, str]]) -> None:
        """Record (user, hash) pairs Braze confirmed, in one transaction."""
        now = time.time()
        with self.db:
            self.db.executemany(
                "INSERT INTO pushed (scope, user_id, hash, pushed_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (scope, user_id) DO UPDATE SET hash = excluded.hash, "
                "pushed_at = excluded.pushed_at",
                [(self.scope, user, digest, now) for user, digest in rows],
            )

    def holding(self, digest: str) -> set[str]:
        """The users whose confirmed value has this hash (a segment's members)."""
        rows = self.db.execute(
            "SELECT user_id FROM pushed WHERE scope = ? AND hash = ?", (self.scope, digest)
        )
        return {user for (user,) in rows}

    def close(self) -> None:
        self.db.close()


# -- the HTTP side ---------------------------------------------------------------------------


@dataclass
class Response:
    status: int
    body: dict[str, Any]
    retry_after: float | None


def _retry_after(value: str | None, now: float) -> float | None:
    """Seconds from `Retry-After`: a number of seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None
    return max(0.0, when - now)


def _check_endpoint(endpoint: str) -> str:
    """`https://rest.<cluster>.braze.com`; plain http only to this machine (tests, a local
    proxy), so that the key never crosses a network unencrypted."""
    parts = urlsplit(endpoint.strip())
    loopback = parts.hostname in {"127.0.0.1", "localhost", "::1"}
    if parts.scheme != "https" and not (parts.scheme == "http" and loopback):
        raise BrazeError("RECS_BRAZE_REST_ENDPOINT must be an https:// URL")
    if not parts.hostname:
        raise BrazeError("RECS_BRAZE_REST_ENDPOINT has no host")
    return f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"


class BrazeClient:
    """POST /users/track. The standard library's urllib rather than requests or httpx: one JSON
    POST needs nothing more, and the deployed Lambda stays free of another dependency."""

    def __init__(self, endpoint: str, api_key: str, timeout: float = 30.0) -> None:
        if not api_key:
            raise BrazeError("RECS_BRAZE_API_KEY is not set")
        self.url = _check_endpoint(endpoint) + "/users/track"
        self._key = api_key
        self.timeout = timeout
        # A loopback endpoint is reached directly even when HTTP(S)_PROXY is set.
        local = urlsplit(self.url).hostname in {"127.0.0.1", "localhost", "::1"}
        handlers = [urllib.request.ProxyHandler({})] if local else []
        self._opener = urllib.request.build_opener(*handlers)

    def __repr__(self) -> str:  # never the key
        return f"BrazeClient({self.url!r})"

    def track(self, body: Mapping[str, Any]) -> Response:
        request = urllib.request.Request(
            self.url,
            data=json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode(),
            method="POST",
            headers={
                "Authorization": f"Bearer {self._key}",
                "Content-Type": "application/json",
                "User-Agent": "braze-personalize-recs",
            },
        )
        try:
            with self._opener.open(request, timeout=self.timeout) as reply:
                status, headers, raw = reply.status, reply.headers, reply.read()
        except urllib.error.HTTPError as exc:
            status, headers, raw = exc.code, exc.headers, exc.read()
        try:
            parsed = json.loads(raw or b"{}")
        except ValueError:
            parsed = {"message": raw[:200].decode("utf-8", "replace")}
        body_out = parsed if isinstance(parsed, dict) else {"message": str(parsed)[:200]}
        return Response(status, body_out, _retry_after(headers.get("Retry-After"), time.time()))


# -- the push --------------------------------------------------------------------------------


@dataclass
class Pacer:
    """At most `rate` request starts per second (a minimum interval between them)."""

    rate: float
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    _next: float = float("-inf")

    def wait(self) -> None:
        now = self.clock()
        if now < self._next:
            self.sleep(self._next - now)
            now = self._next
        self._next = now + 1.0 / self.rate


def user_lines(path: Path, report: PushReport) -> Iterator[tuple[str, list[str]]]:
    """(userId, recommended item ids) of each answered line with a userId, first one per user."""
    seen: set[str] = set()
    for _, raw in read_lines(path):
        try:
            record = json.loads(raw)
        except ValueError:
            report.skipped += 1
            continue
        given = record.get("input") if isinstance(record, dict) else None
        output = record.get("output") if isinstance(record, dict) else None
        user = given.get("userId") if isinstance(given, dict) else None
        if record.get("error") or not isinstance(output, dict) or not isinstance(user, str):
            report.skipped += 1
            continue
        if user in seen:
            report.skipped += 1
            continue
        seen.add(user)
        items = output.get("recommendedItems") or []
        yield user, [i for i in items if isinstance(i, str)]


@dataclass
class Pusher:
    client: BrazeClient
    state: PushState
    attribute: str
    decorate: Callable[[list[str]], list[dict[str, Any]]]
    batch_size: int = MAX_OBJECTS_PER_REQUEST
    pacer: Pacer = field(default_factory=lambda: Pacer(10.0))
    max_attempts: int = 8
    report: PushReport = field(default_factory=PushReport)

    def __post_init__(self) -> None:
        if not 1 <= self.batch_size <= MAX_OBJECTS_PER_REQUEST:
            raise BrazeError(f"the batch size must be 1-{MAX_OBJECTS_PER_REQUEST}")
        if not self.attribute or len(self.attribute) > MAX_STRING:
            raise BrazeError("RECS_BRAZE_ATTRIBUTE must be 1-255 characters")

    def run(self, path: Path) -> PushReport:
        """Each user's batch recommendations, decorated, as the attribute's value."""
        lines = user_lines(path, self.report)
        return self.push((user, self.decorate(items)) for user, items in lines)

    def push(self, values: Iterable[tuple[str, Any]]) -> PushReport:
        """Set the attribute of each user to its value (an item list is cleaned and capped;
        None removes the attribute), sending only what differs from what Braze confirmed."""
        pending: list[tuple[str, str, Any]] = []
        for user, raw in values:
            value, truncated = attribute_value(raw) if isinstance(raw, list) else (raw, False)
            digest = value_hash(value)
            if self.state.unchanged(user, digest):
                self.report.unchanged += 1
                continue
            self.report.truncated += truncated
            pending.append((user, digest, value))
            if len(pending) == self.batch_size:
                self._send(pending)
                pending = []
        if pending:
            self._send(pending)
        return self.report

    def _fail(self, users: Iterable[str], reason: str) -> None:
        users = list(users)
        self.report.failed += len(users)
        if len(self.report.first_failures) < 10:
            self.report.first_failures.append(f"{len(users)} user(s): {reason}")
        log.warning("braze: %d user(s) not updated: %s", len(users), reason)

    def _send(self, pending: list[tuple[str, str, Any]]) -> None:
        body = {"attributes": [{"external_id": u, self.attribute: v} for u, _, v in pending]}
        pause = 1.0
        cause = ""
        for attempt in range(1, self.max_attempts + 1):
            self.pacer.wait()
            self.report.requests += 1
            try:
                response = self.client.track(body)
            except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
                reason = getattr(exc, "reason", exc)
                response = Response(0, {"message": f"network error: {reason}"}, None)
            if response.status in (401, 403):
                raise BrazeError(
                    f"Braze refused the API key ({response.status}): it needs users.track"
                )
            if response.status not in RETRYABLE_STATUS and response.status != 0:
                self._settle(pending, response)
                return
            message = str(response.body.get("message", ""))[:200]
            cause = message if response.status == 0 else f"HTTP {response.status}: {message}"
            if attempt == self.max_attempts:
                break
            wait = response.retry_after if response.retry_after is not None else pause
            # A warning, so that a push that waits (up to two minutes) says why, on stderr.
            log.warning("braze: attempt %d of %d failed (%s); retrying in %.1f s",
                        attempt, self.max_attempts, cause, wait)  # fmt: skip
            self.report.retries += 1
            self.pacer.sleep(wait)
            pause = min(pause * 2, 60.0)
        self._fail(
            (u for u, _, _ in pending), f"gave up after {self.max_attempts} attempts: {cause}"
        )

    def _settle(self, pending: list[tuple[str, str, Any]], r: Response) -> None:
        """Record what Braze confirmed: all objects on success, all but those named in
        `errors[]` on a non-fatal error, none on a fatal one."""
        message = str(r.body.get("message", ""))
        if not (200 <= r.status < 300) or message != "success":
            self._fail((u for u, _, _ in pending), f"HTTP {r.status}: {message[:200]}")
            return
        refused: dict[int, str] = {}
        for error in r.body.get("errors") or []:
            if not isinstance(error, dict):
                continue
            index = error.get("index")
            if error.get("input_array", "attributes") == "attributes" and isinstance(index, int):
                refused[index] = str(error.get("type", "refused"))
        confirmed = [(u, d) for n, (u, d, _) in enumerate(pending) if n not in refused]
        self.state.confirm(confirmed)
        self.report.delivered += len(confirmed)
        for n, reason in refused.items():
            if 0 <= n < len(pending):
                self._fail([pending[n][0]], reason)


def catalogue_decorator(catalogue: Any) -> Callable[[list[str]], list[dict[str, Any]]]:
    """Item ids → the items `GET /recommendations` would render, from a provider's catalogue."""

    def decorate(item_ids: list[str]) -> list[dict[str, Any]]:
        return json.loads(catalogue.render(item_ids)) if item_ids else []

    return decorate
