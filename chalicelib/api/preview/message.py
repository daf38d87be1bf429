"""The Braze message the preview renders: the Connected Content call that the page's controls
describe (exactly what to paste into Braze) followed by the card template, plus the query the
page takes. No python-liquid here: `/openapi.json` describes the query without loading it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated
from urllib.parse import quote_plus

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from chalicelib.payloads import Id

# The README's placeholders: the deployed API's URL with its API Gateway stage, and the key.
API_BASE = "https://YOUR-API/api"
KEY_PLACEHOLDER = "YOUR-KEY"
SAVE_AS = "recommendations"
MAX_TEMPLATE_CHARS = 20_000
DEFAULT_NUM_RESULTS = 3
DEFAULT_CARD = (Path(__file__).parent / "templates" / "card.liquid").read_text(encoding="utf-8")
RESERVED = frozenset(
    {"user_id", "item_id", "num_results", "filter", "template", "campaign", "canvas_step"}
)
USER_ID_LIQUID = "{{${user_id} | url_param_escape}}"
# The Braze campaign or Canvas step, so that what was served can be joined to its clicks.
CAMPAIGN_LIQUID = "{{campaign.${api_id}}}"
_PLACEHOLDER = re.compile(r"\$([A-Za-z0-9_]+)")


class PreviewQuery(BaseModel):
    """`GET /preview`: whose card (a user's recommendations, or the items related to an item),
    how many items, which filter, and the card template; other parameters fill the filter's
    placeholders, as on `/recommendations`."""

    model_config = ConfigDict(extra="ignore", frozen=True, coerce_numbers_to_str=True)

    user_id: Id | None = Field(default=None, description="the Braze user's external id")
    item_id: Id | None = Field(
        default=None, description="show the related-items card of this item instead"
    )
    num_results: int = Field(default=DEFAULT_NUM_RESULTS, ge=1, le=100)
    filter: Annotated[str, StringConstraints(max_length=256)] | None = None
    template: Annotated[str, StringConstraints(max_length=MAX_TEMPLATE_CHARS)] | None = Field(
        default=None, description="the card's Liquid template (default: the README's)"
    )

    @field_validator("user_id", "item_id", "filter", mode="before")
    @classmethod
    def _empty_is_absent(cls, value: object) -> object:
        """A form sends its empty fields (`item_id=`): an empty one means not given."""
        return None if value == "" else value


def url_param_escape(value: object) -> str:
    """Braze's `url_param_escape`: every character a URL does not allow as is, `&` included,
    as Ruby's `CGI.escape` does (a space becomes `+`)."""
    return quote_plus("" if value is None else str(value), safe="")


def placeholders(expression: str) -> list[str]:
    """The `$NAME`s of a filter expression, in order of first use."""
    return list(dict.fromkeys(_PLACEHOLDER.findall(expression)))


def connected_content_tag(query: PreviewQuery, values: Mapping[str, Sequence[str]]) -> str:
    """The `{% connected_content %}` tag for the page's controls. The user id is Braze's
    `${user_id}` (escaped: an email address as id must survive the query string); the item id and
    filter values are the literal ones typed on the page, escaped the same way."""
    if query.item_id is not None:
        route = "related-items"
        params = [f"item_id={url_param_escape(query.item_id)}"]
        if query.user_id is not None:
            params.append(f"user_id={USER_ID_LIQUID}")
    else:
        route = "recommendations"
        params = [f"user_id={USER_ID_LIQUID}"]
    params.append(f"num_results={query.num_results}")
    params.append(f"campaign={CAMPAIGN_LIQUID}")
    if query.filter:
        params.append(f"filter={url_param_escape(query.filter)}")
        for name, given in values.items():
            if given:
                params.append(f"{url_param_escape(name)}={url_param_escape(','.join(given))}")
    return (
        f"{{% connected_content {API_BASE}/{route}?{'&'.join(params)}\n"
        f'   :headers {{"x-api-key": "{KEY_PLACEHOLDER}"}}\n'
        "   :cache_max_age 900\n"
        "   :retry\n"
        f"   :save {SAVE_AS} %}}"
    )


def card_template(query: PreviewQuery) -> str:
    return DEFAULT_CARD if query.template is None else query.template


def message(query: PreviewQuery, values: Mapping[str, Sequence[str]]) -> str:
    """The whole message: the call, a blank line, the card template."""
    return f"{connected_content_tag(query, values)}\n\n{card_template(query)}"
