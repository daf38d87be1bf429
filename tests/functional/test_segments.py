"""`python -m chalicelib segments` on the `local` provider: the users most likely to engage with
some items (by id or by item attribute) from the engine's scores, pushed to a fake Braze
`/users/track` as a custom attribute, changed ones only, leavers removed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from chalicelib.cli import main
from chalicelib.segments import AttributeExpression, SegmentError
from tests.braze_support import KEY, FakeBraze


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, Any]:
    code = main(["segments", *args])
    out = capsys.readouterr()
    return code, (json.loads(out.out) if code == 0 else out.err)


def _taste(user: str) -> int:
    return int(user.removeprefix("u")) % 3  # u<n> prefers CATEGORIES[n % 3]


def test_item_affinity_finds_the_users_of_those_items(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = _run(capsys, "--items", "garden-1,garden-2,garden-3", "--top", "20", "--dry-run")
    assert code == 0
    users = [u["user_id"] for u in out["users"]]
    assert len(users) == 20
    assert sum(_taste(u) == 0 for u in users) >= 18  # garden lovers
    scores = [u["affinity"] for u in out["users"]]
    assert scores == sorted(scores, reverse=True) and 0 < scores[-1] <= scores[0] <= 1


def test_item_attribute_affinity_selects_items_by_their_fields(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = _run(capsys, "--attribute", 'ITEMS.CATEGORY = "toys"', "--top", "15", "--dry-run")
    assert code == 0 and out["items"] == 40
    assert sum(_taste(u["user_id"]) == 2 for u in out["users"]) >= 13


def test_the_segment_goes_to_braze_changed_only_and_leavers_removed(
    data_dir: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    fake_braze: FakeBraze,
) -> None:
    monkeypatch.setenv("RECS_BRAZE_REST_ENDPOINT", fake_braze.url)
    monkeypatch.setenv("RECS_BRAZE_API_KEY", KEY)
    args = ("--items", "kitchen-1,kitchen-4", "--name", "likes_kitchen")
    code, out = _run(capsys, *args, "--top", "5")
    assert code == 0 and out["braze"]["delivered"] == 5
    top5 = [u["user_id"] for u in out["users"]]
    assert {u: v["likes_kitchen"] for u, v in fake_braze.values.items()} == dict.fromkeys(
        top5, True
    )
    code, again = _run(capsys, *args, "--top", "5")
    assert code == 0 and again["braze"]["unchanged"] == 5 and len(fake_braze.calls) == 1
    code, fewer = _run(capsys, *args, "--top", "3")
    assert code == 0 and fewer["braze"]["delivered"] == 2  # the two who left, set to null
    assert [fake_braze.values[u]["likes_kitchen"] for u in top5] == [True] * 3 + [None] * 2
    assert KEY not in json.dumps([again, fewer])


def test_bad_requests_are_refused_with_a_reason(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = _run(capsys, "--attribute", "CATEGORY == toys", "--dry-run")
    assert code == 2 and "ITEMS.FIELD" in err
    code, err = _run(capsys, "--items", "no-such-item", "--dry-run")
    assert code == 2 and "known" in err
    code, err = _run(capsys, "--items", "garden-1")  # no --dry-run and no Braze endpoint
    assert code == 2 and "RECS_BRAZE" in err


def test_attribute_expressions() -> None:
    both = AttributeExpression.parse('ITEMS.CATEGORY = "toys" AND items.colour = "red"')
    assert both.matches({"category": "toys", "colour": "red|blue"})
    assert not both.matches({"category": "toys", "colour": "blue"})
    either = AttributeExpression.parse('ITEMS.CATEGORY = "toys" OR ITEMS.CATEGORY = "garden"')
    assert either.matches({"category": "garden"}) and not either.matches({"category": "x"})
    for bad in ("", 'ITEMS.A = "x" AND ITEMS.B = "y" OR ITEMS.C = "z"', "ITEMS.A = x"):
        with pytest.raises(SegmentError):
            AttributeExpression.parse(bad)
