"""Writes behind the answer: a queue per SQLite file of this process, written in one transaction
every `FLUSH_SECONDS` by a thread of its own, for records an answer keeps but does not wait for.

A transaction per answer (BEGIN IMMEDIATE, an insert, COMMIT into the WAL) cost about a fifth of
a recommendation's CPU on the production server (bench/mix.py), and its request waited for it.
The queue belongs to the file, not to the object writing it, so that every object of this process
on that file (the test client and a rebuilt runtime make several) flushes what the others queued
before it reads. What is queued is written by the thread, by a reader's `flush`, at exit, and by
the caller itself when the queue reaches `MAX_PENDING` (a writer that falls behind slows answers,
never grows memory). A process killed with SIGKILL loses at most the last `FLUSH_SECONDS`.
The thread stops after `IDLE_ROUNDS` rounds with nothing to write and starts again when needed,
and holds no connection between rounds (a file held open for writing keeps a disk from being
remounted read-only, and a replaced file from being seen).
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Generic, TypeVar

T = TypeVar("T")
FLUSH_SECONDS = 0.2
MAX_PENDING = 10_000
IDLE_ROUNDS = 25
log = logging.getLogger("recs.local")
Write = Callable[[list[T]], object]


class WriteBehind(Generic[T]):
    """The records waiting for one file, and the thread that writes them."""

    def __init__(self, path: Path, name: str) -> None:
        self.path, self.name = path, name
        self._pending: list[T] = []
        self._lock = threading.Lock()
        # A write may read the file, and a read flushes first: the same thread may come back.
        self._flushing = threading.RLock()
        self._writer: threading.Thread | None = None
        self._write: Write[T] | None = None  # the running thread's, for the flush at exit
        atexit.register(self._at_exit)

    def put(self, record: T, write: Write[T], release: Callable[[], object]) -> None:
        """Queue `record`; `write` (one transaction for a list of records) is how the thread
        this starts, if none runs, writes, and `release` closes that thread's connection."""
        with self._lock:
            self._pending.append(record)
            waiting = len(self._pending)
            if self._writer is None:
                self._write = write
                self._writer = threading.Thread(
                    target=self._run,
                    args=(write, release),
                    name=f"{self.name} writer",
                    daemon=True,
                )
                self._writer.start()
        if waiting >= MAX_PENDING:
            self.flush(write)

    def writing(self) -> bool:
        """Whether its writer thread runs."""
        with self._lock:
            return self._writer is not None

    def pending(self) -> int:
        with self._lock:
            return len(self._pending)

    def flush(self, write: Write[T]) -> int:
        """Write what is queued with `write`; how many were written. On a failure the records
        stay queued, the oldest beyond `MAX_PENDING` dropped (and said), and the error raised."""
        with self._flushing:
            with self._lock:
                records, self._pending = self._pending, []
            if not records:
                return 0
            try:
                write(records)
            except BaseException:
                self._requeue(records)
                raise
            return len(records)

    def _requeue(self, records: list[T]) -> None:
        with self._lock:
            self._pending[:0] = records
            overflow = len(self._pending) - MAX_PENDING
            if overflow > 0:
                del self._pending[:overflow]
                log.warning("%d %s dropped: their store takes no writes", overflow, self.name)

    def _run(self, write: Write[T], release: Callable[[], object]) -> None:
        failed, idle = False, 0
        while True:
            time.sleep(FLUSH_SECONDS)
            try:
                idle = 0 if self.flush(write) else idle + 1
                failed = False
            except Exception as exc:  # logged once per streak; the records wait for the next round
                if not failed:
                    log.warning("%s not written yet: %s", self.name, exc)
                failed, idle = True, 0
            release()
            if idle >= IDLE_ROUNDS:
                with self._lock:
                    if not self._pending:
                        self._writer = self._write = None
                        return

    def _at_exit(self) -> None:
        write = self._write
        if write is not None and self.path.exists():  # else removed with its directory
            try:
                self.flush(write)
            except Exception as exc:
                log.warning("%s not written at exit: %s", self.name, exc)


_queues: dict[Path, WriteBehind[Any]] = {}
_queues_lock = threading.Lock()


def queue_for(path: Path, name: str) -> WriteBehind[Any]:
    """The one queue of this process for the file at `path`."""
    with _queues_lock:
        queue = _queues.get(path)
        if queue is None:
            queue = _queues[path] = WriteBehind(path, name)
        return queue
