"""Which keys `python -m chalicelib serve` serves with: the environment's, else the dev key."""

from __future__ import annotations

import pytest

from chalicelib.cli.serve import DEV_KEY, serving_keys


@pytest.fixture(autouse=True)
def _clean(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("RECS_API_KEYS", "RECS_API_KEYS_PARAMETER"):
        monkeypatch.setenv(name, "")  # recorded, so that what serving_keys sets is undone
        monkeypatch.delenv(name)


def test_nothing_set_gives_the_development_key(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    assert serving_keys() == DEV_KEY
    assert os.environ["RECS_API_KEYS"] == DEV_KEY


@pytest.mark.parametrize("name", ["RECS_API_KEYS", "RECS_API_KEYS_PARAMETER"])
def test_a_key_set_in_the_environment_wins_and_is_not_shown(monkeypatch, name) -> None:
    import os

    monkeypatch.setenv(name, "shop-secret")
    assert serving_keys() is None  # the banner shows a placeholder, never the shop's key
    assert os.environ.get("RECS_API_KEYS") == ("shop-secret" if name == "RECS_API_KEYS" else None)


def test_an_empty_value_counts_as_not_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECS_API_KEYS", " ")
    assert serving_keys() == DEV_KEY
