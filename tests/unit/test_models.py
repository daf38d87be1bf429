"""Edge models: Personalize's limits that botocore does not check, timestamps, error text."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from chalicelib.payloads import (
    EventBatch,
    RankingRequest,
    RecommendationsQuery,
    describe,
    parse_timestamp,
)


def batch(**event: object) -> dict[str, object]:
    return {"user_id": "u1", "events": [{"event_type": "purchase", "item_id": "i1", **event}]}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1700000000, 1700000000.0),
        ("1700000000", 1700000000.0),
        ("2023-11-14T22:13:20Z", 1700000000.0),
        ("2023-11-14T22:13:20", 1700000000.0),
        ("2023-11-14T23:13:20+01:00", 1700000000.0),
    ],
)
def test_timestamps_in_epoch_seconds_or_iso(value: object, expected: float) -> None:
    assert parse_timestamp(value) == expected


@pytest.mark.parametrize("value", ["yesterday", True, float("nan"), -1, 1700000000000, None])
def test_timestamps_that_are_not_times_are_refused(value: object) -> None:
    with pytest.raises(ValueError, match="timestamp"):
        parse_timestamp(value)


def test_numeric_ids_are_accepted_as_strings() -> None:
    parsed = EventBatch.model_validate(
        {"user_id": 13085, "events": [{"event_type": "view", "item_id": 85123}]}
    )
    assert (parsed.user_id, parsed.events[0].item_id) == ("13085", "85123")
    assert parsed.session == "13085"


def test_limits_at_and_over_each_boundary() -> None:
    EventBatch.model_validate({**batch(), "user_id": "u" * 256})
    with pytest.raises(ValidationError):
        EventBatch.model_validate({**batch(), "user_id": "u" * 257})
    EventBatch.model_validate(batch(recommendation_id="r" * 40, impression=["i"] * 25))
    with pytest.raises(ValidationError):
        EventBatch.model_validate(batch(recommendation_id="r" * 41))
    with pytest.raises(ValidationError):
        EventBatch.model_validate(batch(impression=["i"] * 26))
    ten = {"user_id": "u", "events": [{"event_type": "v", "item_id": "i"}] * 10}
    EventBatch.model_validate(ten)
    with pytest.raises(ValidationError):
        EventBatch.model_validate({**ten, "events": ten["events"] * 2})


def test_event_properties_limit_is_1024_characters_of_json() -> None:
    # {"k":"…"} is 8 characters of JSON around the value.
    EventBatch.model_validate(batch(properties={"k": "x" * 1016}))
    with pytest.raises(ValidationError, match="1024"):
        EventBatch.model_validate(batch(properties={"k": "x" * 1017}))


def test_reserved_property_names_and_unknown_fields_are_refused() -> None:
    with pytest.raises(ValidationError, match="reserved"):
        EventBatch.model_validate(batch(properties={"userId": "x"}))
    with pytest.raises(ValidationError):
        EventBatch.model_validate(batch(colour="red"))


def test_num_results_range() -> None:
    assert RecommendationsQuery.model_validate({"user_id": "u"}).num_results == 25
    for bad in (0, 101, "many"):
        with pytest.raises(ValidationError):
            RecommendationsQuery.model_validate({"user_id": "u", "num_results": bad})


def test_rankings_take_at_most_500_items() -> None:
    RankingRequest.model_validate({"user_id": "u", "item_ids": ["i"] * 500})
    with pytest.raises(ValidationError):
        RankingRequest.model_validate({"user_id": "u", "item_ids": ["i"] * 501})


def test_describe_names_the_field_and_never_echoes_the_input() -> None:
    secret = "<script>alert(1)</script>"
    with pytest.raises(ValidationError) as caught:
        EventBatch.model_validate(
            {
                "user_id": "u",
                "events": [{"event_type": "v", "item_id": secret, "timestamp": secret}],
            }
        )
    text = describe(caught.value)
    assert "events[0].timestamp" in text
    assert secret not in text
