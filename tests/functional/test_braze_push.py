"""`braze-push` against a fake Braze `/users/track` on 127.0.0.1: batches of at most 75, 429/500
retried after Retry-After, the rate kept, a crash resumed, unchanged users skipped, the key never
logged."""

from __future__ import annotations

import itertools
import json
import logging
import socket
from pathlib import Path
from typing import Any

import pytest

from chalicelib import braze, cli
from chalicelib.seam import runtime
from tests.braze_support import KEY, FakeBraze, FakeClock


def write_output(path: Path, users: dict[str, list[str]], extra: list[str] = ()) -> Path:
    lines = [
        json.dumps({"input": {"userId": u}, "output": {"recommendedItems": i}, "error": None})
        for u, i in users.items()
    ]
    path.write_text("\n".join([*lines, *extra]) + "\n", encoding="utf-8")
    return path


def decorate(item_ids: list[str]) -> list[dict[str, Any]]:
    return [{"id": i, "name": f"Item {i}", "url": f"https://shop.example/p/{i}"} for i in item_ids]


def pusher(fake: FakeBraze, state: Path, clock: FakeClock, **kw: Any) -> braze.Pusher:
    return braze.Pusher(
        braze.BrazeClient(fake.url, KEY),
        braze.PushState(state, "test recs"),
        "recs",
        kw.pop("decorate", decorate),
        pacer=braze.Pacer(kw.pop("rate", 100.0), clock, clock.sleep),
        **kw,
    )


@pytest.mark.usefixtures("data_dir")
def test_cli_push_delivers_every_user_once_through_429_and_500(
    tmp_path, capsys, caplog, monkeypatch, fake_braze
):
    src = tmp_path / "users.jsonl"
    src.write_text("".join(json.dumps({"userId": f"u{n}"}) + "\n" for n in range(150)) + "{}\n")
    out = tmp_path / "recs.jsonl"
    assert cli.main(["batch", "--input", str(src), "--output", str(out), "--num-results", "5"]) == 1
    fake_braze.script = {1: (429, {"Retry-After": "0"}, {}), 3: (500, {"Retry-After": "0"}, {})}
    monkeypatch.setenv("RECS_BRAZE_REST_ENDPOINT", fake_braze.url)
    monkeypatch.setenv("RECS_BRAZE_API_KEY", KEY)
    monkeypatch.setenv("RECS_BRAZE_ATTRIBUTE", "product_recs")
    runtime.reset()
    caplog.set_level(logging.DEBUG)
    capsys.readouterr()

    assert cli.main(["braze-push", str(out)]) == 0
    printed = capsys.readouterr()
    report = json.loads(printed.out)
    assert (report["delivered"], report["unchanged"], report["failed"]) == (150, 0, 0)
    assert report["skipped"] == 1  # the error line
    assert report["retries"] == 2
    assert sorted(fake_braze.accepted) == sorted(f"u{n}" for n in range(150))
    assert len(fake_braze.calls) == 4  # 75 + 75, and the two retried requests
    assert all(len(c["body"]["attributes"]) <= 75 for c in fake_braze.calls)
    assert all(c["auth"] == f"Bearer {KEY}" for c in fake_braze.calls)
    items = fake_braze.values["u2"]["product_recs"]
    assert len(items) == 5
    for item in items:
        assert item["url"] == f"https://shop.example/p/{item['id']}"
        assert item["name"]
        assert isinstance(item["price"], float)
    assert KEY not in caplog.text + printed.out + printed.err

    # A second run with the same results sends nothing.
    runtime.reset()
    assert cli.main(["braze-push", str(out)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["delivered"], report["unchanged"], report["requests"]) == (0, 150, 0)
    assert len(fake_braze.calls) == 4


def test_rate_and_retry_after_are_respected(tmp_path, fake_braze):
    clock = FakeClock()
    fake_braze.clock = clock
    fake_braze.script = {
        2: (429, {"Retry-After": "7"}, {}),
        4: (503, {}, {}),  # no Retry-After: the exponential pause, starting at 1 s
        5: (502, {}, {}),
    }
    users = {f"x{n}": [f"i{n}"] for n in range(10)}
    p = pusher(fake_braze, tmp_path / "state.sqlite", clock, rate=4.0, batch_size=3)
    report = p.run(write_output(tmp_path / "recs.jsonl", users))
    assert (report.delivered, report.failed, report.retries) == (10, 0, 3)
    assert sorted(fake_braze.accepted) == sorted(users)
    starts = [c["at"] for c in fake_braze.calls]
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert all(g >= 0.25 - 1e-9 for g in gaps)  # 4 requests per second at most
    assert gaps[1] >= 7  # Retry-After of the 2nd call
    assert 1 <= gaps[3] < 2 and 2 <= gaps[4] < 3  # 1 s, then 2 s
    assert [len(c["body"]["attributes"]) for c in fake_braze.calls] == [3, 3, 3, 3, 3, 3, 1]


def test_a_restart_after_a_crash_resumes_where_it_stopped(tmp_path, fake_braze):
    users = {f"y{n}": [f"i{n}", "common"] for n in range(200)}
    path = write_output(tmp_path / "recs.jsonl", users)
    state = tmp_path / "state.sqlite"
    seen = 0

    def crashing(item_ids: list[str]) -> list[dict[str, Any]]:
        nonlocal seen
        seen += 1
        if seen == 170:  # two requests of 75 confirmed, 19 users decorated but not sent
            raise KeyboardInterrupt
        return decorate(item_ids)

    with pytest.raises(KeyboardInterrupt):
        pusher(fake_braze, state, FakeClock(), decorate=crashing).run(path)
    assert len(fake_braze.accepted) == 150
    report = pusher(fake_braze, state, FakeClock()).run(path)
    assert (report.delivered, report.unchanged) == (50, 150)
    assert sorted(fake_braze.accepted) == sorted(users)  # each exactly once


def test_only_changed_users_are_sent_again(tmp_path, fake_braze):
    users = {f"z{n}": [f"i{n}", f"j{n}"] for n in range(20)}
    state = tmp_path / "state.sqlite"
    pusher(fake_braze, state, FakeClock()).run(write_output(tmp_path / "a.jsonl", users))
    users["z3"] = ["new"]
    users["z7"] = [f"j{7}", "i7"]  # same items, new order: a change
    users["z99"] = ["i1"]  # a new user
    report = pusher(fake_braze, state, FakeClock()).run(write_output(tmp_path / "b.jsonl", users))
    assert (report.delivered, report.unchanged) == (3, 18)
    assert fake_braze.accepted[20:] == ["z3", "z7", "z99"]
    assert [i["id"] for i in fake_braze.values["z3"]["recs"]] == ["new"]


def test_objects_braze_refuses_are_failed_and_sent_again_next_run(tmp_path, fake_braze):
    users = {f"w{n}": [f"i{n}"] for n in range(4)}
    path = write_output(tmp_path / "recs.jsonl", users)
    state = tmp_path / "state.sqlite"
    fake_braze.script = {1: (201, {}, {"errors": [{"type": "bad", "input_array": "attributes",
                                                    "index": 2}]})}  # fmt: skip
    report = pusher(fake_braze, state, FakeClock()).run(path)
    assert (report.delivered, report.failed) == (3, 1)
    report = pusher(fake_braze, state, FakeClock()).run(path)
    assert (report.delivered, report.unchanged) == (1, 3)
    assert fake_braze.accepted[-1] == "w2"


def test_retries_give_up_and_count_the_users_failed(tmp_path, fake_braze):
    fake_braze.script = {n: (500, {"Retry-After": "1"}, {}) for n in range(1, 4)}
    clock = FakeClock()
    p = pusher(fake_braze, tmp_path / "s.sqlite", clock, max_attempts=3)
    report = p.run(write_output(tmp_path / "r.jsonl", {"a": ["1"], "b": ["2"]}))
    assert (report.delivered, report.failed, report.requests) == (0, 2, 3)
    report = pusher(fake_braze, tmp_path / "s.sqlite", clock).run(tmp_path / "r.jsonl")
    assert report.delivered == 2  # nothing was recorded as pushed


def test_a_refused_key_stops_the_push_without_showing_the_key(tmp_path, fake_braze, caplog):
    fake_braze.script = {1: (401, {}, {"message": "Invalid API key"})}
    with pytest.raises(braze.BrazeError) as info:
        pusher(fake_braze, tmp_path / "s.sqlite", FakeClock()).run(
            write_output(tmp_path / "r.jsonl", {"a": ["1"]})
        )
    assert KEY not in str(info.value) + caplog.text
    assert KEY not in repr(braze.BrazeClient(fake_braze.url, KEY))


def test_the_key_never_travels_over_plain_http_to_another_host():
    with pytest.raises(braze.BrazeError, match="https"):
        braze.BrazeClient("http://rest.iad-01.braze.com", KEY)
    braze.BrazeClient("https://rest.iad-01.braze.com/", KEY)


def test_values_are_cleaned_for_nested_attributes_and_cut_to_the_size_cap():
    value, truncated = braze.attribute_value(
        [{"id": "1", "my key.x$": "v", "long": "x" * 300, "gone": None, "ok": [1, None]}]
    )
    assert value == [{"id": "1", "my_key_x": "v", "long": "x" * 255, "ok": [1]}]
    assert not truncated
    many = [{"id": str(n), "name": "n" * 250} for n in range(400)]
    value, truncated = braze.attribute_value(many)
    assert truncated
    assert 100 < len(value) < 400
    assert len(json.dumps(value, separators=(",", ":")).encode()) <= braze.MAX_ATTRIBUTE_BYTES
    assert [v["id"] for v in value] == [str(n) for n in range(len(value))]  # best items kept


def test_an_unreachable_endpoint_says_why_at_each_retry_and_when_it_gives_up(tmp_path, caplog):
    with socket.socket() as closed:  # a port nothing listens on: connection refused
        closed.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{closed.getsockname()[1]}"
    clock = FakeClock()
    p = braze.Pusher(
        braze.BrazeClient(url, KEY), braze.PushState(tmp_path / "s.sqlite", "t"), "recs",
        decorate, pacer=braze.Pacer(100.0, clock, clock.sleep), max_attempts=3,
    )  # fmt: skip
    with caplog.at_level(logging.WARNING, logger="recs.braze"):
        report = p.run(write_output(tmp_path / "r.jsonl", {"a": ["1"]}))
    retries = [r.getMessage() for r in caplog.records if "retrying" in r.getMessage()]
    assert len(retries) == 2
    assert all("Connection refused" in line for line in retries), retries
    assert retries[0].startswith("braze: attempt 1 of 3 failed (network error: ")
    assert report.failed == 1
    assert "gave up after 3 attempts: network error: " in report.first_failures[0]
    assert "Connection refused" in report.first_failures[0]
