"""Served lists written behind the answer (chalicelib/providers/local/write_behind.py): an answer
only queues its list; the list reaches the file within a fraction of a second without anybody
reading, every read of this process sees it at once, a failing store keeps the lists until it
recovers (within a bound), and the writer thread ends when there is nothing to write."""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from chalicelib.providers.local import loop as loop_module
from chalicelib.providers.local import write_behind
from chalicelib.providers.local.database import StoreUnavailable
from chalicelib.providers.local.loop import LocalLoop
from chalicelib.vocabulary import ServedList


def _served(rid: str, user: str = "u1") -> ServedList:
    return ServedList(rid, user, ["a", "b"], "recommendations", "personalized", time.time())


def _on_file(data: Path) -> set[str]:
    with sqlite3.connect(data / "loop.sqlite3") as db:
        return {row[0] for row in db.execute("SELECT recommendation_id FROM served")}


def _until(condition, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline
        time.sleep(0.02)


def test_a_served_list_reaches_the_file_without_a_read(tmp_path: Path) -> None:
    loop = LocalLoop(tmp_path, ttl_days=1, max_records=1000)
    started = time.monotonic()
    loop.record_served(_served("r1"))
    _until(lambda: "r1" in _on_file(tmp_path))  # another process (attribution) sees it soon
    assert time.monotonic() - started < 1.0 + write_behind.FLUSH_SECONDS


def test_every_loop_of_the_file_reads_what_another_queued(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(write_behind, "FLUSH_SECONDS", 30.0)  # the thread writes nothing here
    answering = LocalLoop(tmp_path, ttl_days=1, max_records=1000)
    reading = LocalLoop(tmp_path, ttl_days=1, max_records=1000)  # as a rebuilt runtime has
    answering.record_served(_served("r1", "u7"))
    assert "r1" not in _on_file(tmp_path)  # the answer did not wait for the write
    kept = reading.served_to("u7", None, time.time())
    assert kept is not None and kept.recommendation_id == "r1"
    assert [s.recommendation_id for s in reading.history(0)[0]] == ["r1"]


def test_a_failing_store_keeps_the_lists_until_it_recovers(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(write_behind, "FLUSH_SECONDS", 30.0)
    loop = LocalLoop(tmp_path, ttl_days=1, max_records=1000)
    (tmp_path / "loop.sqlite3").rename(tmp_path / "away.sqlite3")  # the file is gone for now
    loop.record_served(_served("r1"))
    loop.record_served(_served("r2"))
    with pytest.raises(StoreUnavailable):
        loop.flush()
    (tmp_path / "away.sqlite3").rename(tmp_path / "loop.sqlite3")
    assert loop.flush() == 2
    assert _on_file(tmp_path) == {"r1", "r2"}


def test_the_queue_is_bounded_while_the_store_refuses(tmp_path: Path, monkeypatch, caplog) -> None:
    monkeypatch.setattr(write_behind, "FLUSH_SECONDS", 30.0)
    monkeypatch.setattr(write_behind, "MAX_PENDING", 5)
    loop = LocalLoop(tmp_path, ttl_days=1, max_records=1000)
    (tmp_path / "loop.sqlite3").unlink()
    with caplog.at_level(logging.WARNING, logger="recs.local"):
        for n in range(12):
            # From the fifth on, the answer itself tries to write (and its caller logs).
            with contextlib.suppress(StoreUnavailable):
                loop.record_served(_served(f"r{n}"))
    assert loop.pending_served() <= 5
    assert "served lists dropped" in caplog.text


def test_the_writer_ends_when_idle_and_starts_again(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(write_behind, "FLUSH_SECONDS", 0.02)
    monkeypatch.setattr(write_behind, "IDLE_ROUNDS", 3)
    loop = LocalLoop(tmp_path, ttl_days=1, max_records=1000)
    queue = write_behind.queue_for(tmp_path / "loop.sqlite3", "served lists")
    before = {t for t in threading.enumerate() if t.name == "served lists writer"}
    loop.record_served(_served("r1"))
    assert queue.writing()
    (writer,) = {t for t in threading.enumerate() if t.name == "served lists writer"} - before
    _until(lambda: not writer.is_alive())
    assert not queue.writing()
    loop.record_served(_served("r2"))
    _until(lambda: _on_file(tmp_path) == {"r1", "r2"})


@pytest.mark.parametrize("one_statement", [True, False])
def test_a_batch_is_written_whole_with_or_without_sqlite_json(
    tmp_path: Path, monkeypatch, one_statement: bool
) -> None:
    """SQLite older than 3.38 has no `->>`: the rows then go one by one, to the same result."""
    monkeypatch.setattr(loop_module, "JSON_INSERT", one_statement)
    monkeypatch.setattr(write_behind, "FLUSH_SECONDS", 30.0)
    loop = LocalLoop(tmp_path, ttl_days=1, max_records=1000)
    hostile = ServedList(
        "r-é", 'u"1\\', ["a,b", "ü", '"x"'], "related-items", "fallback", 1.25, None, "c", None
    )
    loop.record_served(hostile)
    loop.record_served(_served("r2"))
    assert loop.flush() == 2
    kept = [*loop.history(0)[0]]
    assert kept[0] == hostile and [s.recommendation_id for s in kept] == ["r-é", "r2"]
    assert loop.served_to('u"1\\', "c", 2.0) == hostile
