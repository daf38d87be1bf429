"""A full disk and a read-only disk under the data directory, for real: a small tmpfs mounted for
the test (needs root, as CI and the development machines have; skipped where mounting is not
allowed). Writes answer 503 with Retry-After, reads keep answering, no 202'd event is lost, and
writes work again once the disk has room (or is writable) again, without a restart."""

from __future__ import annotations

import gc
import shutil
import sqlite3
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from chalicelib.providers.local.database import Database
from chalicelib.seam import runtime
from tests.functional.support import get, ids_of, post

RECS = "/recommendations?user_id=u1&num_results=5"


def _mount(target: Path, *options: str) -> None:
    subprocess.run(["mount", *options, target], check=True, capture_output=True)


@pytest.fixture
def small_disk(trained_store: Path, tmp_path: Path, monkeypatch) -> Iterator[Path]:
    mountpoint = tmp_path / "disk"
    mountpoint.mkdir()
    try:
        _mount(mountpoint, "-t", "tmpfs", "-o", "size=160m", "tmpfs")
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"cannot mount a tmpfs here: {exc}")
    try:
        data = mountpoint / "data"
        shutil.copytree(trained_store, data)
        monkeypatch.setenv("RECS_DATA_DIR", str(data))
        runtime.reset()
        yield data
    finally:
        runtime.reset()
        subprocess.run(["umount", "-l", mountpoint], check=False, capture_output=True)


def _event(n: int) -> dict:
    event = {"event_type": "view", "item_id": "garden-1", "event_id": f"d-{n}-{uuid.uuid4().hex}"}
    return {"user_id": "disk", "events": [event]}


def _stored(data: Path) -> set[str]:
    with sqlite3.connect(data / "store.sqlite3") as db:
        return {r[0] for r in db.execute("SELECT event_id FROM interactions WHERE user_id='disk'")}


def _fill(disk: Path) -> Path:
    filler = disk / "filler"
    with filler.open("wb") as fh:
        try:
            while True:
                fh.write(b"\0" * (1 << 20))
        except OSError:
            pass
    return filler


def test_a_full_disk_answers_503_and_loses_no_accepted_event(client, small_disk: Path) -> None:
    assert len(ids_of(get(client, RECS))) == 5
    filler = _fill(small_disk.parent)
    accepted, refused = [], []
    for n in range(400):  # until the WAL needs a page the disk cannot give
        body = _event(n)
        response = post(client, "/events", body)
        if response.status_code == 202:
            accepted.append(body["events"][0]["event_id"])
        else:
            assert response.status_code == 503
            assert response.headers["Retry-After"].isdigit()
            refused.append(n)
        if len(refused) >= 3:
            break
    assert refused, "the full disk never refused a write"
    assert len(ids_of(get(client, RECS))) == 5  # reads go on
    filler.unlink()  # room again
    body = _event(10_000)
    assert post(client, "/events", body).status_code == 202
    assert {*accepted, body["events"][0]["event_id"]} <= _stored(small_disk)


def test_a_read_only_disk_answers_503_and_recovers(client, small_disk: Path) -> None:
    assert len(ids_of(get(client, RECS))) == 5
    # Linux refuses to remount a file system read-only while a file on it is open for writing
    # (the kernel itself does so on I/O errors): close the store's connections first. The models
    # and the catalogue stay loaded, as in a server whose disk turned read-only.
    for found in gc.get_objects():  # the app's store and any other opened by this test
        if isinstance(found, Database):
            found.drop_connection()
    _mount(small_disk.parent, "-o", "remount,ro")
    try:
        response = post(client, "/events", _event(1))
        assert response.status_code == 503
        assert response.headers["Retry-After"].isdigit()
        assert get(client, RECS).status_code == 200  # reads answer (from memory if need be)
        assert client.http.get("/health").status_code == 200
    finally:
        _mount(small_disk.parent, "-o", "remount,rw")
    body = _event(2)
    assert post(client, "/events", body).status_code == 202
    assert body["events"][0]["event_id"] in _stored(small_disk)
