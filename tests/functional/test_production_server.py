"""`python -m chalicelib serve --workers N`, the production server: the same routes and answers as
the Chalice handler, the environment's keys, and no accepted event lost to kill -9."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from chalicelib.api.server import REQUESTS_PER_CONNECTION
from tests.functional.live import LiveServer

KEY = "shop-key-1"
AUTH = {"x-api-key": KEY}
JSON = {"content-type": "application/json", **AUTH}
READS = [
    ("GET", "/recommendations?user_id=u1&num_results=7", None),
    ("GET", "/recommendations?user_id=unknown&num_results=3", None),
    ("GET", "/recommendations?user_id=u4&filter=exclude-purchased&num_results=5", None),
    ("GET", "/related-items?item_id=garden-1&num_results=4", None),
    ("GET", "/recommendations?user_id=", None),
    ("GET", "/recommendations?user_id=u1&num_results=1000", None),
    ("GET", "/recommendations?user_id=u1&filter=nope", None),
    ("POST", "/rankings", b'{"user_id": "u2", "item_ids": ["toys-1", "garden-3", "zzz"]}'),
    ("POST", "/rankings", b"{not json"),
    (
        "POST",
        "/events",
        b'{"user_id": "x", "events": [{"event_type": "v", "item_id": "y", "event_value": NaN}]}',
    ),
    ("DELETE", "/events", None),
    ("GET", "/no-such-route", None),
    ("GET", "/health", None),
]
COMPARED_HEADERS = ("Content-Type", "X-Recommendation-Source", "Cache-Control", "Allow",
                    "X-Fallback-Reason")  # fmt: skip


@pytest.fixture
def served(trained_store: Path, tmp_path: Path) -> Iterator[LiveServer]:
    data = tmp_path / "live"
    shutil.copytree(trained_store, data)
    server = LiveServer(data, "--workers", "2", env={"RECS_API_KEYS": KEY})
    yield server
    server.stop()


def _stored(data: Path, prefix: str) -> set[str]:
    with sqlite3.connect(data / "store.sqlite3") as db:
        query = "SELECT event_id FROM interactions WHERE event_id LIKE ?"
        return {row[0] for row in db.execute(query, (f"{prefix}%",))}


def test_it_answers_as_the_chalice_handler_does(served: LiveServer, client) -> None:
    for method, path, body in READS:
        headers = JSON if body is not None else AUTH
        live = served.request(method, path, body, headers)
        local = client.http.request(
            method, path, body=body or b"", headers={**headers, "x-api-key": "dev-local-key"}
        )
        assert live.status == local.status_code, (method, path, live.body)
        expected = json.loads(local.body)
        if path == "/health":
            expected.pop("fallbacks"), live.json().pop("fallbacks")  # per process
            assert {k: v for k, v in live.json().items() if k != "fallbacks"} == expected
        else:
            assert live.json() == expected, (method, path)
        for name in COMPARED_HEADERS:
            assert live.headers.get(name.lower()) == local.headers.get(name), (path, name)


def test_a_keep_alive_connection_is_closed_after_its_100th_request(served: LiveServer) -> None:
    """So that connections spread over the workers again (see chalicelib.api.server). http.client
    would reopen a connection closed earlier without saying so, and the count start again."""
    conn = http.client.HTTPConnection("127.0.0.1", served.port, timeout=10)
    try:
        for n in range(1, REQUESTS_PER_CONNECTION + 1):
            conn.request("GET", "/recommendations?user_id=u1", headers=AUTH)
            answer = conn.getresponse()
            assert answer.status == 200 and json.loads(answer.read())
            assert (answer.getheader("connection") == "close") == (n == REQUESTS_PER_CONNECTION)
    finally:
        conn.close()


def test_the_environment_key_wins_over_the_development_key(served: LiveServer) -> None:
    path = "/recommendations?user_id=u1"
    assert served.request("GET", path, headers=AUTH).status == 200
    refused = served.request("GET", path, headers={"x-api-key": "dev-local-key"})
    assert refused.status == 401
    assert refused.json() == {"error": "unauthorized", "message": "a valid API key is required"}
    assert KEY not in served.output()  # a shop's own key is never printed


def test_chalice_local_also_honours_the_environment_key(trained_store, tmp_path) -> None:
    data = tmp_path / "chalice"
    shutil.copytree(trained_store, data)
    server = LiveServer(data, "--server", "chalice", env={"RECS_API_KEYS": KEY})
    try:
        path = "/recommendations?user_id=u1"
        assert server.request("GET", path, headers=AUTH).status == 200
        assert server.request("GET", path, headers={"x-api-key": "dev-local-key"}).status == 401
    finally:
        server.stop()


def _write_stream(server: LiveServer, prefix: str, stop: threading.Event, accepted: list[str]):
    n = 0
    while not stop.is_set():
        n += 1
        events = [{"event_type": "view", "item_id": "garden-1", "event_id": f"{prefix}{n}-{k}"}
                  for k in range(3)]  # fmt: skip
        body = json.dumps({"user_id": f"k{n % 7}", "events": events}).encode()
        try:
            answer = server.request("POST", "/events", body, JSON)
        except (OSError, http.client.HTTPException):
            time.sleep(0.02)  # cut by a kill: no 202 was read, so nothing counts as accepted
            continue
        if answer.status == 202:
            assert answer.json() == {"accepted": 3}
            accepted += [e["event_id"] for e in events]


def _until(condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the writers made no progress"
        time.sleep(0.05)


def test_kill_9_during_a_write_stream_loses_no_accepted_event(served: LiveServer) -> None:
    """Three clients write events while first a worker, then the whole server, is killed with
    SIGKILL (and the server started again on the same store): every event answered 202 is
    stored. Requests cut by the kill got no 202 and count as not accepted."""
    stop = threading.Event()
    accepted: list[str] = []
    writers = [
        threading.Thread(target=_write_stream, args=(served, f"w{t}-", stop, accepted))
        for t in range(3)
    ]
    for writer in writers:
        writer.start()
    try:
        _until(lambda: len(accepted) >= 30)
        before = len(accepted)
        os.kill(served.workers()[0], signal.SIGKILL)  # the supervisor starts another
        _until(lambda: len(accepted) >= before + 30)
        served.kill_all()
        killed = len(accepted)
        restarted = LiveServer(served.data_dir, "--workers", "2", env={"RECS_API_KEYS": KEY})
        served.port, served.process, served.log = restarted.port, restarted.process, restarted.log
        _until(lambda: len(accepted) >= killed + 30)
    finally:
        stop.set()
        for writer in writers:
            writer.join()
    assert 0 < before < len(accepted)
    assert set(accepted) <= _stored(served.data_dir, "w")


@pytest.mark.parametrize("kind", ["production", "chalice"])
def test_a_stopped_server_has_kept_every_list_it_served(
    trained_store: Path, tmp_path: Path, kind: str
) -> None:
    """Served lists are written behind the answers (chalicelib/providers/local/write_behind.py):
    stopping the server (SIGTERM) writes what it still held, on either server."""
    data = tmp_path / kind
    shutil.copytree(trained_store, data)
    extra = ("--workers", "2") if kind == "production" else ("--server", "chalice")
    server = LiveServer(data, *extra, env={"RECS_API_KEYS": KEY})
    rids = set()
    try:
        for n in range(40):
            path = f"/recommendations?user_id=u{n % 5}&campaign=c"
            answer = server.request("GET", path, None, AUTH)
            assert answer.status == 200
            rids.add(answer.headers["x-recommendation-id"])
    finally:
        server.stop()
    with sqlite3.connect(data / "loop.sqlite3") as db:
        kept = {row[0] for row in db.execute("SELECT recommendation_id FROM served")}
    assert rids <= kept and len(rids) == 40
