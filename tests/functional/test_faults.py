"""Model and store faults, as Braze sees them: the fallback list with 200 within the usual
latency, a counted reason, a `/health` that says what is wrong, and recovery without a restart
once the file is good again."""

from __future__ import annotations

import json
import shutil
import sqlite3
import time
from pathlib import Path

import pytest

from chalicelib.engine.solution import SolutionModel
from chalicelib.seam import runtime
from tests.functional.support import assert_error, get, ids_of, post, purchases, source_of

RECS = "/recommendations?user_id=u1&num_results=5"
RELATED = "/related-items?item_id=garden-1&num_results=5"
RANKING = {"user_id": "u1", "item_ids": ["garden-1", "toys-2", "kitchen-3"]}


def _artifact(data_dir: Path, solution: str) -> Path:
    (path,) = (data_dir / "models").glob(f"{solution}-*.npz")
    return path


def _break(path: Path, how: str) -> None:
    if how == "deleted":
        path.unlink()
    elif how == "truncated":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 3])
    else:  # garbage
        path.write_bytes(b"\x00not a model\xff" * 1000)


def _checkpointed(store: Path) -> bytes:
    """The store's bytes with everything the WAL holds written into the file (a backup)."""
    with sqlite3.connect(store) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return store.read_bytes()


def _health(client) -> dict:
    response = client.http.get("/health")
    assert response.status_code == 200
    return json.loads(response.body)


def _timed_get(client, path: str) -> tuple[float, object]:
    started = time.perf_counter()
    response = get(client, path)
    return time.perf_counter() - started, response


@pytest.mark.parametrize("how", ["deleted", "truncated", "garbage"])
def test_a_broken_recommendations_model_serves_the_fallback(client, data_dir, how) -> None:
    _break(_artifact(data_dir, "user-personalization"), how)
    runtime.reset()  # a server (re)started on the broken file
    response = get(client, RECS)
    assert len(ids_of(response)) == 5
    assert source_of(response) == "fallback"
    assert response.headers["X-Fallback-Reason"] == "model_unavailable"
    ranked = post(client, "/rankings", RANKING)
    assert sorted(ids_of(ranked)) == sorted(RANKING["item_ids"])
    # The other solution still serves.
    assert source_of(get(client, RELATED)) == "personalized"
    health = _health(client)
    assert health["status"] == "degraded"
    problem = next(p for p in health["problems"] if p["part"] == "campaign recommendations")
    assert "model file" in problem["reason"]
    assert str(data_dir) not in json.dumps(health)  # no paths
    assert health["fallbacks"]["model_unavailable"] >= 1


@pytest.mark.parametrize("how", ["deleted", "truncated", "garbage"])
def test_a_broken_similar_items_model_serves_popular_related_items(client, data_dir, how) -> None:
    _break(_artifact(data_dir, "similar-items"), how)
    runtime.reset()
    response = get(client, RELATED)
    assert source_of(response) == "fallback"
    assert len(ids_of(response)) == 5
    assert "garden-1" not in ids_of(response)
    assert source_of(get(client, RECS)) == "personalized"
    assert any(p["part"] == "campaign related-items" for p in _health(client)["problems"])


def test_a_broken_model_is_not_reread_on_every_request(client, data_dir, monkeypatch) -> None:
    _break(_artifact(data_dir, "user-personalization"), "truncated")
    runtime.reset()
    loads = []
    original = SolutionModel.load

    def counting(*args, **kwargs):
        loads.append(args[0])
        return original(*args, **kwargs)

    monkeypatch.setattr(SolutionModel, "load", counting)
    timings = [_timed_get(client, RECS)[0] for _ in range(30)]
    # the broken file once (each other campaign's model once), not per request
    assert len(loads) == len(set(loads))
    assert sorted(timings)[len(timings) // 2] < 0.05  # the usual latency, not a reload each time


def test_a_repaired_model_is_served_again_without_a_restart(client, data_dir) -> None:
    path = _artifact(data_dir, "user-personalization")
    good = path.read_bytes()
    _break(path, "garbage")
    runtime.reset()
    assert source_of(get(client, RECS)) == "fallback"
    path.write_bytes(good)  # restored
    deadline = time.monotonic() + 5
    while source_of(get(client, RECS)) == "fallback":
        assert time.monotonic() < deadline, "the restored model was never picked up"
        time.sleep(0.1)
    assert _health(client)["status"] == "ok"


def test_a_model_broken_while_serving_keeps_serving_from_memory(client, data_dir) -> None:
    assert source_of(get(client, RECS)) == "personalized"
    _break(_artifact(data_dir, "user-personalization"), "deleted")
    assert source_of(get(client, RECS)) == "personalized"


def test_a_deleted_store_keeps_reads_and_refuses_writes(client, data_dir) -> None:
    before = ids_of(get(client, RECS))
    store = data_dir / "store.sqlite3"
    backup = data_dir.parent / "backup.sqlite3"
    backup.write_bytes(_checkpointed(store))
    for suffix in ("", "-wal", "-shm"):
        Path(f"{store}{suffix}").unlink(missing_ok=True)
    time.sleep(0.06)  # past the revision cache
    response = get(client, RECS)
    assert len(ids_of(response)) == 5  # from memory: the model and the catalogue are loaded
    assert ids_of(response) == before or source_of(response) == "fallback"
    write = post(client, "/events", purchases("u-new", "garden-1"))
    message = assert_error(write, 503, "unavailable")
    assert "retry" in message
    assert write.headers["Retry-After"].isdigit()
    assert not store.exists()  # never silently recreated empty
    health = _health(client)
    assert {"part": "store", "reason": "store file missing"} in health["problems"]
    shutil.copy(backup, store)  # restored
    assert post(client, "/events", purchases("u-new", "garden-1")).status_code == 202
    assert _health(client)["status"] == "ok"


def test_a_corrupt_store_serves_fallbacks_and_recovers(client, data_dir) -> None:
    store = data_dir / "store.sqlite3"
    good = _checkpointed(store)
    for suffix in ("-wal", "-shm"):
        Path(f"{store}{suffix}").unlink(missing_ok=True)
    store.write_bytes(b"garbage" * 10_000)
    runtime.reset()  # started on the corrupt store: nothing in memory yet
    response = get(client, RECS)
    assert response.status_code == 200
    assert source_of(response) == "fallback"
    assert json.loads(response.body) == []
    assert_error(post(client, "/events", purchases("u1", "garden-1")), 503, "unavailable")
    health = _health(client)
    assert health["status"] == "degraded"
    assert health["problems"][0]["part"] == "store"
    store.write_bytes(good)
    time.sleep(0.06)
    assert len(ids_of(get(client, RECS))) == 5
    assert _health(client)["status"] == "ok"


def test_events_written_while_the_store_was_missing_were_never_accepted(client, data_dir) -> None:
    """Only 202s count as accepted: every one of them is in the store afterwards."""
    store = data_dir / "store.sqlite3"
    accepted = []
    for n in range(20):
        if n == 10:
            shutil.move(store, data_dir / "moved.sqlite3")
        if n == 15:
            shutil.move(data_dir / "moved.sqlite3", store)
        body = {"user_id": "w", "events": [{"event_type": "view", "item_id": "garden-1",
                                            "event_id": f"w-{n}"}]}  # fmt: skip
        if post(client, "/events", body).status_code == 202:
            accepted.append(f"w-{n}")
    assert 10 <= len(accepted) < 20
    with sqlite3.connect(store) as db:
        stored = {r[0] for r in db.execute("SELECT event_id FROM interactions WHERE user_id='w'")}
    assert set(accepted) <= stored


def test_with_every_model_broken_the_fallback_does_not_wait_for_a_popularity_count(
    client, data_dir, monkeypatch
) -> None:
    """The popular list without a model counts every interaction (1.2 s on the sample shop): a
    request gets the catalogue's items at once and the counted list once it is ready."""
    from chalicelib.providers.local.store import LocalStore

    original = LocalStore.popular_items

    def slow(self, limit):
        time.sleep(1.0)
        return original(self, limit)

    monkeypatch.setattr(LocalStore, "popular_items", slow)
    for solution in ("user-personalization", "similar-items"):
        _break(_artifact(data_dir, solution), "deleted")
    runtime.reset()
    elapsed, response = _timed_get(client, RECS)
    assert elapsed < 0.5
    assert len(ids_of(response)) == 5
    assert response.headers["X-Fallback-Reason"] == "model_unavailable"
    counted = original(LocalStore(data_dir), 5)
    deadline = time.monotonic() + 5
    while ids_of(get(client, RECS)) != counted:
        assert time.monotonic() < deadline, "the counted popular list never arrived"
        time.sleep(0.1)
