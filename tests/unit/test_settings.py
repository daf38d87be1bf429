"""Settings from `RECS_*` variables: types parsed, arguments first, bad values named."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from chalicelib.settings import PROJECT_ROOT, Settings


def test_variables_are_read_and_typed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECS_PROVIDER", "personalize")
    monkeypatch.setenv("RECS_SQS_BATCH_ITEM_FAILURES", "true")
    monkeypatch.setenv("RECS_PERSONALIZE_BUDGET_MS", "900")
    monkeypatch.setenv("RECS_DATA_DIR", "var/data")
    monkeypatch.setenv("RECS_API_KEYS", "old, new")
    settings = Settings()
    assert settings.provider == "personalize"
    assert settings.sqs_batch_item_failures is True
    assert settings.personalize_budget_ms == 900
    assert settings.data_dir == PROJECT_ROOT / "var" / "data"
    assert settings.keys == ("old", "new")


def test_arguments_win_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECS_PROVIDER", "personalize")
    monkeypatch.setenv("RECS_CATALOGUE_TTL", "60")
    settings = Settings(provider="local", data_dir=Path("/tmp/x"))
    assert settings.provider == "local"
    assert settings.data_dir == Path("/tmp/x")
    assert settings.catalogue_ttl == 60


def test_unknown_variables_are_ignored_and_defaults_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECS_NOT_A_SETTING", "x")
    monkeypatch.setenv("OTHER_PROVIDER", "personalize")
    monkeypatch.delenv("RECS_PROVIDER", raising=False)
    assert Settings().provider == "local"


@pytest.mark.parametrize(
    ("name", "value", "field"),
    [
        ("RECS_PROVIDER", "azure", "provider"),
        ("RECS_PERSONALIZE_BUDGET_MS", "50", "personalize_budget_ms"),
        ("RECS_PERSONALIZE_BUDGET_MS", "fast", "personalize_budget_ms"),
        ("RECS_SQS_BATCH_ITEM_FAILURES", "perhaps", "sqs_batch_item_failures"),
    ],
)
def test_a_bad_value_names_the_setting(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, field: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError) as info:
        Settings()
    assert [e["loc"] for e in info.value.errors()] == [(field,)]
