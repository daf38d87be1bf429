"""The README's Braze Liquid snippets, rendered as Braze would render them (python-liquid with the
emulated connected_content and abort_message tags, see `braze_harness`) against the app: a known
user, a brand-new user, an email address as user id, a wrong key, an unknown filter, a filter with
a placeholder from a custom attribute, and the batch-push attribute."""

from __future__ import annotations

import json
import re

import pytest
from chalice.test import Client

from chalicelib.api.preview.message import DEFAULT_CARD, PreviewQuery, message
from tests.conftest import DEV_KEY
from tests.functional.braze_harness import client_fetch, readme_snippets, render_for
from tests.functional.support import get, items_of, post, purchases, recs_path

SNIPPETS = readme_snippets()
MESSAGE = SNIPPETS[0]
(FILTERED,) = [s for s in SNIPPETS if "filter=by-category" in s]
(PUSHED,) = [s for s in SNIPPETS if "{% assign recs" in s]
CALL_FAILED, NOTHING = "recommendations call failed", "no recommendations"


def _names(output: str) -> list[str]:
    return re.findall(r"\n  (.+?) — £", output)


def test_the_readme_message_is_the_preview_default() -> None:
    assert message(PreviewQuery(user_id="any"), {}) == MESSAGE
    assert MESSAGE.endswith(DEFAULT_CARD)


def test_a_known_user_gets_the_cards_of_the_json_recommendations_returns(client: Client) -> None:
    rendered = render_for(client, MESSAGE, "u3", DEV_KEY)
    assert rendered.aborted is None and rendered.error is None
    expected = items_of(get(client, recs_path("u3", num_results=3)))
    assert _names(rendered.output) == [item["name"] for item in expected]
    for item in expected:
        assert f'<a href="{item["url"]}">' in rendered.output
    assert rendered.calls[0].response.headers["x-recommendation-source"] == "personalized"


def test_a_brand_new_user_gets_the_popular_items_not_an_aborted_message(client: Client) -> None:
    rendered = render_for(client, MESSAGE, "brand-new-user-1", DEV_KEY)
    assert rendered.aborted is None
    assert rendered.calls[0].response.headers["x-recommendation-source"] == "fallback"
    assert len(_names(rendered.output)) == 3


def test_an_email_address_as_user_id_reaches_the_app_intact(client: Client) -> None:
    email = "jane.doe+braze@example.com"
    bought = items_of(get(client, recs_path("u5", num_results=2)))
    assert post(client, "/events", purchases(email, *(i["id"] for i in bought))).status_code == 202
    calls: list[str] = []
    from chalicelib.api.preview.braze_liquid import render

    rendered = render(MESSAGE, client_fetch(client, DEV_KEY, calls), {"user_id": email})
    # Outside a Braze campaign (a test send) `campaign.${api_id}` is empty: no campaign.
    assert calls == [
        "/recommendations?user_id=jane.doe%2Bbraze%40example.com&num_results=3&campaign="
    ]
    # The events were posted under the exact address: the app knows this user.
    assert rendered.calls[0].response.headers["x-recommendation-source"] == "personalized"
    assert rendered.aborted is None


@pytest.mark.parametrize("key", ["wrong-key", None])
def test_a_wrong_or_missing_key_aborts_the_message(client: Client, key: str | None) -> None:
    rendered = render_for(client, MESSAGE, "u3", key)
    assert rendered.aborted == CALL_FAILED
    assert rendered.calls[0].response.status == 401
    assert rendered.calls[0].value["__http_status_code__"] == 401


def test_an_unknown_filter_aborts_the_message(client: Client) -> None:
    """The README's filter snippet naming a filter the configuration lacks gets a 400 object,
    and its guard (the default card's) aborts."""
    rendered = render_for(
        client,
        FILTERED.replace("filter=by-category", "filter=no-such-filter") + "\n" + DEFAULT_CARD,
        "u3",
        DEV_KEY,
        custom_attribute={"favourite_category": "garden"},
    )
    assert rendered.calls[0].response.status == 400
    assert json.loads(rendered.calls[0].response.body)["error"] == "unknown_filter"
    assert rendered.aborted == CALL_FAILED


def test_the_old_size_guard_lets_an_error_object_through(client: Client) -> None:
    """Why the guard changed: an error object has two keys, so `size == 0` is false and the
    message would be sent with an empty card."""
    old_card = (
        "{% if recommendations.size == 0 %}{% abort_message('no recommendations') %}{% endif %}"
        '<a href="{{ recommendations[0].url }}">{{ recommendations[0].name }}</a>'
    )
    old = MESSAGE.replace(DEFAULT_CARD, old_card)
    rendered = render_for(client, old, "u3", "wrong-key")
    assert rendered.aborted is None
    assert rendered.output.strip() == '<a href=""></a>'


def test_a_filter_placeholder_from_a_custom_attribute(cat_client: Client) -> None:
    template = FILTERED + "\n" + DEFAULT_CARD
    rendered = render_for(
        cat_client, template, "u0", DEV_KEY, custom_attribute={"favourite_category": "toys & games"}
    )
    call = rendered.calls[0]
    assert "CATEGORY=toys+%26+games" in call.url  # escaped: `&` would end the parameter
    assert call.response.status == 200
    # No toys & games category exists: an empty list, and the message is not sent.
    assert call.value == [] and rendered.aborted == NOTHING
    rendered = render_for(
        cat_client, template, "u0", DEV_KEY, custom_attribute={"favourite_category": "kitchen"}
    )
    assert rendered.aborted is None
    assert all(item["id"].startswith("kitchen-") for item in rendered.calls[0].value)


def test_the_pushed_attribute_snippet(client: Client) -> None:
    items = items_of(get(client, recs_path("u3", num_results=4)))
    rendered = render_for(
        client, PUSHED, "u3", DEV_KEY, custom_attribute={"recommendations": items}
    )
    assert rendered.aborted is None
    assert rendered.output.count("<a href=") == 3
    missing: list[object] | None
    for missing in ([], None):
        rendered = render_for(
            client, PUSHED, "u3", DEV_KEY, custom_attribute={"recommendations": missing}
        )
        assert rendered.aborted == NOTHING
