"""Braze Currents into the `local` store: `python -m chalicelib import currents PATH` with Avro
files written in Braze's layout; each record once, skipped ones counted, Content Cards joined to
what was served."""

from __future__ import annotations

import json
import time
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from chalice.test import Client

from chalicelib.cli import main
from chalicelib.seam import runtime
from tests import currents_support as cs
from tests.functional.support import get, recs_path

NOW = int(time.time())


def _import(path: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, Any]:
    code = main(["import", "currents", str(path), *extra])
    return code, json.loads(capsys.readouterr().out)


def _events(user: str) -> list[tuple[str, str, float]]:
    store = runtime.current().serving.store  # type: ignore[attr-defined]
    return store.user_events(user)  # type: ignore[no-any-return]


def test_purchases_reach_the_store_once_even_when_delivered_twice(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = [cs.purchase(n, "u7", f"toys-{n}", 2.5 + n, NOW - 100 + n) for n in range(3)]
    path = cs.write(tmp_path, cs.PURCHASE, rows)
    before = len(_events("u7"))
    code, [report] = _import(path, capsys)
    assert code == 0
    assert report["event_type"] == cs.PURCHASE
    assert (report["records"], report["forwarded"], report["duplicates"]) == (3, 3, 0)
    added = _events("u7")[before:]
    assert added == [(f"toys-{n}", "purchase", float(NOW - 100 + n)) for n in range(3)]
    # Currents delivers the same file again (at-least-once): nothing is stored twice.
    code, [again] = _import(path, capsys)
    assert code == 0 and (again["forwarded"], again["duplicates"]) == (0, 3)
    assert len(_events("u7")) == before + 3


def test_records_that_are_no_event_are_counted_never_fatal(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = [
        cs.purchase(1, None, "toys-1", 3.0, NOW),  # an anonymous Braze user: no external id
        cs.purchase(2, "u1", "toys-2", 3.0, NOW),
        cs.purchase(3, "u1", "x" * 300, 3.0, NOW),  # an item id over Personalize's 256
        {**cs.purchase(4, "u1", "toys-4", 3.0, NOW), "time": 2**31 - 1},  # year 2038: fine
        {**cs.purchase(5, "u1", "toys-5", float("nan"), NOW)},  # NaN price
    ]
    cs.write(tmp_path, cs.PURCHASE, rows)
    unknown = cs.write(
        tmp_path, cs.SESSION_START, [{**cs.card(1, "u1", "c", NOW)} | {"session_id": "s"}]
    )
    code, reports = _import(tmp_path / "currents", capsys)
    assert code == 0
    by_type = {r["event_type"]: r for r in reports}
    purchases = by_type[cs.PURCHASE]
    assert purchases["forwarded"] == 2
    assert purchases["skipped"] == {"no_external_id": 1, "bad_record": 2}
    assert any("product_id" in e for e in purchases["errors"])
    assert any("price" in e for e in purchases["errors"])
    assert by_type[cs.SESSION_START]["skipped"] == {"unmapped_type": 1}
    assert unknown.exists()


def test_a_file_that_is_not_avro_is_reported(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = cs.write(
        tmp_path, cs.PURCHASE, [cs.purchase(n, "u2", "toys-1", 1.0, NOW) for n in range(50)]
    )
    cut = good.with_name("cut.avro")
    cut.write_bytes(good.read_bytes()[:-40])
    junk = good.with_name("junk.avro")
    junk.write_bytes(b"not avro at all")
    code, reports = _import(good.parent, capsys)
    assert code == 0
    by_name = {Path(r["source"]).name: r for r in reports}
    assert by_name["junk.avro"]["skipped"] == {"bad_file": 1}
    assert by_name["cut.avro"]["skipped"] == {"bad_file": 1}
    assert by_name["part-0.avro"]["forwarded"] == 50


def test_custom_events_and_email_clicks_map_as_configured(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    custom = [
        {
            "id": "e1",
            "user_id": "b",
            "external_user_id": "u5",
            "time": NOW,
            "name": "added_to_cart",
            "properties": '{"product_id": "garden-3", "quantity": 2}',
        },
        {
            "id": "e2",
            "user_id": "b",
            "external_user_id": "u5",
            "time": NOW,
            "name": "logged_in",
            "properties": None,
        },
        {
            "id": "e3",
            "user_id": "b",
            "external_user_id": "u5",
            "time": NOW,
            "name": "added_to_cart",
            "properties": '{"sku": "garden-3"}',
        },
    ]
    cs.write(tmp_path, cs.CUSTOM, custom)
    clicks = [
        cs.email_click(1, "u5", "https://shop.example/p/toys-9?rid=rid-abc&utm_source=braze", NOW),
        cs.email_click(2, "u5", "https://shop.example/help", NOW),
        cs.email_click(3, "u5", "https://shop.example/p/toys-8?rid=" + "r" * 60, NOW),
    ]
    cs.write(tmp_path, cs.EMAIL_CLICK, clicks)
    code, reports = _import(tmp_path / "currents", capsys)
    assert code == 0
    by_type = {r["event_type"]: r for r in reports}
    assert by_type[cs.CUSTOM]["skipped"] == {"unmapped_custom_event": 1, "no_item": 1}
    assert by_type[cs.EMAIL_CLICK]["skipped"] == {"not_an_item_link": 1}
    events = _events("u5")[-3:]
    assert ("garden-3", "add-to-cart", float(NOW)) in events
    assert ("toys-9", "click", float(NOW)) in events
    store = runtime.current().serving.store  # type: ignore[attr-defined]
    rids = dict(
        store.db.execute(
            "SELECT item_id, recommendation_id FROM interactions WHERE user_id='u5'"
        ).fetchall()
    )
    assert rids["toys-9"] == "rid-abc"
    assert rids["toys-8"] is None  # a rid over PutEvents' 40 characters is dropped, not sent


def test_a_content_card_click_is_joined_to_what_was_served(
    client: Client, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    served = get(client, recs_path("u4", num_results=5, campaign="cmp-cards"))
    rid = served.headers["X-Recommendation-Id"]
    shown = [i["id"] for i in json.loads(served.body)]
    later = int(time.time()) + 5
    cs.write(tmp_path, cs.CARD_IMPRESSION, [cs.card(1, "u4", "cmp-cards", later)])
    cs.write(
        tmp_path,
        cs.CARD_CLICK,
        [cs.card(2, "u4", "cmp-cards", later + 1), cs.card(3, "u4", "cmp-other", later)],
    )
    code, reports = _import(tmp_path / "currents", capsys)
    assert code == 0
    by_type = {r["event_type"]: r for r in reports}
    assert by_type[cs.CARD_CLICK]["skipped"] == {"not_served": 1}
    _, engaged = runtime.current().loop.history(0)
    joined = {e.kind: e for e in engaged}
    assert joined["click"].recommendation_id == rid and joined["click"].campaign == "cmp-cards"
    assert joined["impression"].recommendation_id == rid
    assert shown  # the list the card showed is the served one


def test_a_100k_record_file_streams_in_flat_memory(
    empty_data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    n = 100_000
    rows = (cs.purchase(k, f"u{k % 500}", f"item-{k % 3000}", 1.0, NOW - k) for k in range(n))
    path = cs.write(tmp_path, cs.PURCHASE, rows)
    runtime.current()  # the provider built (and its libraries loaded) outside the measure
    _import(
        cs.write(tmp_path / "warm", cs.PURCHASE, [cs.purchase(-1, "u1", "i", 1.0, NOW)]), capsys
    )
    tracemalloc.start()
    try:
        code, [report] = _import(path, capsys)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert code == 0 and (report["records"], report["forwarded"]) == (n, n)
    # Read, claimed and stored a chunk at a time: the 100k records decoded at once would take
    # over 100 MB (about 1 KB each as dicts); the import peaks at a few MB.
    assert peak < 20_000_000, peak


def test_an_import_that_dies_after_claiming_is_finished_by_one_after_the_lease(
    data_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from chalicelib.providers.local.store import LocalStore

    clock = cs.Clock()
    monkeypatch.setattr("chalicelib.providers.local.loop.time", clock)
    rows = [cs.purchase(n, "u8", f"toys-{n}", 1.0, NOW - 10 + n) for n in range(3)]
    path = cs.write(tmp_path, cs.PURCHASE, rows)
    before = len(_events("u8"))
    add_events = LocalStore.add_events

    class Killed(BaseException):
        """The import's process ends between its claims and its writes (kill -9, power)."""

    def dies(*args: Any) -> None:
        raise Killed

    monkeypatch.setattr(LocalStore, "add_events", dies)
    with pytest.raises(Killed):
        main(["import", "currents", str(path)])
    monkeypatch.setattr(LocalStore, "add_events", add_events)
    capsys.readouterr()
    # Run again within the lease: nothing stored, nothing dropped, and the exit code says so.
    code, [held] = _import(path, capsys)
    assert code == 1 and (held["forwarded"], held["pending"], held["duplicates"]) == (0, 3, 0)
    assert len(_events("u8")) == before
    clock.sleep(961)  # past RECS_CURRENTS_LEASE_SECONDS
    code, [report] = _import(path, capsys)
    assert code == 0 and (report["forwarded"], report["pending"]) == (3, 0)
    code, [again] = _import(path, capsys)
    assert code == 0 and (again["forwarded"], again["duplicates"]) == (0, 3)
    assert len(_events("u8")) == before + 3
