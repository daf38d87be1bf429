"""SQLite connections of the `local` store, one per thread, and what a fault of the file becomes.

Every SQLite or OS error becomes `StoreUnavailable` (a 503 with Retry-After on writes, a fallback
list on reads) and drops the thread's connection, so that the next call opens the file afresh: a
store that is repaired or restored is used again without a restart. The file is created only when
the store is first made; if it disappears later the store refuses to work until the file is back,
rather than create an empty one under a running server (which would take writes into a store
whose history is gone, and which a restart of the server would not even notice).
"""

from __future__ import annotations

import functools
import logging
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import ParamSpec, TypeVar
from urllib.parse import quote

from chalicelib.vocabulary import UnavailableError

log = logging.getLogger("recs.local")
P = ParamSpec("P")
# How often a process that takes writes from the API checkpoints the WAL (see
# `Database.background_checkpoints`): also how old, at most, the newest commits that a power
# loss could take are (synchronous=NORMAL syncs the WAL at each checkpoint, not at each commit).
CHECKPOINT_SECONDS = 1.0
R = TypeVar("R")


class StoreUnavailable(UnavailableError):
    """The store cannot be used now; `kind` says why in a few words (for health and logs)."""

    def __init__(self, kind: str, detail: str = "") -> None:
        super().__init__("the local store cannot take this request now; retry later")
        self.kind, self.detail = kind, detail


_KINDS = (
    ("readonly", "read-only"),
    ("read-only", "read-only"),
    ("disk is full", "disk full"),
    ("no space", "disk full"),
    ("not a database", "not a database (corrupt)"),
    ("malformed", "corrupt"),
    ("locked", "locked by another writer"),
    ("unable to open", "cannot be opened"),
    ("i/o error", "disk I/O error"),
    ("permission denied", "permission denied"),
)


def describe(error: BaseException) -> str:
    """What went wrong, in words safe for `/health` (never a path)."""
    if isinstance(error, StoreUnavailable):
        return error.kind
    text = str(error).lower()
    return next((kind for needle, kind in _KINDS if needle in text), type(error).__name__)


def guarded(method: Callable[P, R]) -> Callable[P, R]:
    """A `Database` method whose SQLite and OS errors become StoreUnavailable."""

    @functools.wraps(method)
    def wrapped(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(*args, **kwargs)
        except StoreUnavailable:
            raise
        except (sqlite3.Error, OSError) as exc:
            database: Database = args[0]  # type: ignore[assignment]
            database.drop_connection()
            raise StoreUnavailable(describe(exc), str(exc)) from exc

    return wrapped


def rollback(db: sqlite3.Connection) -> None:
    """Roll back what can be; SQLite has already rolled back after some errors (a full disk)."""
    with suppress(sqlite3.Error):
        if db.in_transaction:
            db.execute("ROLLBACK")


class Database:
    """One SQLite file in WAL mode, a connection per thread (the servers answer on threads)."""

    def __init__(self, path: Path, schema: str, folders: Sequence[Path] = ()) -> None:
        self.path = path
        self._schema = schema
        self._folders = folders
        self._local = threading.local()
        self._created = False
        self._checkpointer: threading.Thread | None = None
        # A read-only or full disk at start: every call tries again and says why.
        with suppress(sqlite3.Error, OSError, StoreUnavailable):
            self._create()

    def _create(self) -> None:
        for folder in (self.path.parent, *self._folders):
            folder.mkdir(parents=True, exist_ok=True)
        self._connect("rwc").executescript(self._schema)  # idempotent
        self._created = True

    def _connect(self, mode: str) -> sqlite3.Connection:
        # mode=rw after creation: a file that disappeared is an error, never a new empty store.
        uri = f"file:{quote(str(self.path))}?mode={mode}"
        conn = sqlite3.connect(uri, uri=True, timeout=10, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            if self._checkpointer is not None:
                conn.execute("PRAGMA wal_autocheckpoint=0")  # the checkpointer's job
        except sqlite3.Error:
            conn.close()
            raise
        self._local.conn, self._local.identity = conn, self._identity()
        return conn

    def _identity(self) -> tuple[int, int]:
        try:
            stat = os.stat(self.path)
        except FileNotFoundError:
            raise StoreUnavailable("store file missing") from None
        return stat.st_dev, stat.st_ino

    @property
    def db(self) -> sqlite3.Connection:
        """This thread's connection, opened again when the file was replaced (a restored copy):
        an open connection would go on using the old, unlinked file."""
        if not self._created:
            self._create()
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None and self._local.identity != self._identity():
            self.drop_connection()
            conn = None
        return conn if conn is not None else self._connect("rw")

    def drop_connection(self) -> None:
        conn = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None:
            with suppress(sqlite3.Error):
                conn.close()

    def background_checkpoints(self, every: float = CHECKPOINT_SECONDS) -> None:
        """From now on this process checkpoints the WAL on a thread of its own, every `every`
        seconds, instead of inside the commit that takes the WAL past SQLite's 1,000 pages.
        That commit copies 4 MB into the database file and syncs both files (5-25 ms at a few
        hundred writes a second), and its request, with every request queued behind it on a
        server worker, waited for it: about half of the production server's requests over
        13 ms in bench/load.py. A PASSIVE checkpoint waits for no reader or writer, and SQLite
        runs it without Python's GIL, so requests go on meanwhile. Idempotent."""
        if self._checkpointer is not None:
            return
        thread = threading.Thread(
            target=_checkpoints, args=(weakref.ref(self), every), name="wal-checkpoint", daemon=True
        )
        self._checkpointer = thread
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            with suppress(sqlite3.Error):
                conn.execute("PRAGMA wal_autocheckpoint=0")
        thread.start()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE … COMMIT, or ROLLBACK on any error: a failed write changes nothing."""
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            rollback(db)
            raise
        db.execute("COMMIT")


def _checkpoints(ref: weakref.ref[Database], every: float) -> None:
    """The checkpointer's loop: it ends with its `Database`. A fault (a full or read-only disk,
    a missing file) is logged once and tried again on the next round; in the meantime the WAL
    keeps every commit, only longer."""
    failed = False
    while True:
        time.sleep(every)
        database = ref()
        if database is None:
            return
        try:
            database.db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            failed = False
        except (sqlite3.Error, OSError, StoreUnavailable) as exc:
            database.drop_connection()
            if not failed:
                log.warning("WAL checkpoint failed (%s); trying again", describe(exc))
            failed = True
        del database  # no reference held while asleep: the store can go
