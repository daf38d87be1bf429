"""The item catalogue that turns recommended ids into render-ready Braze items.

Each item is rendered to its JSON fragment once, when the catalogue is built, so that decorating a
response is a dictionary lookup and a string join on the request path.

What an item's properties cannot do to a response: replace its `id` (a property of that name, in
any case, is dropped), put anything but an absolute http(s) URL in `url`, `image` or another
`*_url`/`*_image` field (Braze would render a `javascript:` link), or put NaN or Infinity in it
(invalid JSON: those become null).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol
from urllib.parse import quote, urlsplit

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
NAME_FIELDS = ("name", "product_name", "title")
IMAGE_FIELDS = ("image", "image_url")
URL_FIELDS = ("url", "product_url")
CORE_FIELDS = ("id", "url", "name", "price", "image")
MAX_URL = 2048  # longer is no link a mail client or browser handles well
_UNSAFE_URL_CHARS = re.compile(r"[\x00-\x20\x7f\\<>\"'`]")


def field_name(key: str) -> str:
    """`PRODUCT_NAME`, `productName` and `product_name` all become `product_name`."""
    return _CAMEL.sub("_", key.strip()).lower()


def normalise(properties: Mapping[str, Any]) -> dict[str, Any]:
    return {field_name(k): v for k, v in properties.items()}


def safe_url(value: Any) -> str | None:
    """`value` if it is an absolute http(s) URL with nothing a template could be tricked by."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    if not text or len(text) > MAX_URL or _UNSAFE_URL_CHARS.search(text):
        return None
    try:
        parts = urlsplit(text)
    except ValueError:  # e.g. a bad IPv6 literal
        return None
    return text if parts.scheme.lower() in ("http", "https") and parts.hostname else None


def _finite(value: Any) -> Any:
    """NaN and Infinity (an import from before they were refused) become null: JSON has none."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, list):
        return [_finite(v) for v in value]
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    return value


def _price(value: Any) -> Any:
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return value
        return number if math.isfinite(number) else None
    return _finite(value)


def _first(fields: dict[str, Any], names: Sequence[str]) -> Any:
    for name in names:
        if fields.get(name) not in (None, ""):
            return fields.pop(name)
    return None


def _first_url(fields: dict[str, Any], names: Sequence[str]) -> str | None:
    found = [safe_url(fields.pop(name, None)) for name in names]
    return next((url for url in found if url), None)


def _fill(template: str, item_id: str) -> str | None:
    # str.replace, not str.format: a template or an id with braces must never be interpreted.
    return safe_url(template.replace("{id}", quote(item_id, safe=""))) if template else None


RECOMMENDATION_ID = "{recommendation_id}"


def with_recommendation_id(body: str, template: str, recommendation_id: str | None) -> str:
    """`body` (rendered items) with the answer's id where the URL template asks for it. Items are
    rendered once, with the placeholder left in their template URLs; this fills it per answer
    (none: an empty value, as in batch output that has no answer id)."""
    if RECOMMENDATION_ID not in template:
        return body
    return body.replace(RECOMMENDATION_ID, quote(recommendation_id or "", safe=""))


def _link_field(name: str) -> bool:
    return name.endswith(("_url", "_image", "_link")) or name in ("link", "href", "thumbnail")


def decorate(
    item_id: str, properties: Mapping[str, Any], url_template: str, image_template: str
) -> dict[str, Any]:
    fields = normalise(properties)
    fields.pop("item_id", None)
    fields.pop("id", None)  # never replaces the item's own id
    name = _finite(_first(fields, NAME_FIELDS))
    url = _first_url(fields, URL_FIELDS) or _fill(url_template, item_id)
    image = _first_url(fields, IMAGE_FIELDS) or _fill(image_template, item_id)
    price = _price(fields.pop("price", None))
    extra = {
        key: _finite(value)
        for key, value in fields.items()
        if not _link_field(key) or safe_url(value) is not None
    }
    return {"id": item_id, "url": url, "name": name, "price": price, "image": image, **extra}


class Catalogue(Protocol):
    """What serving needs of a provider's catalogue: items rendered for a response, and which
    of some ids it has. The local provider's is `InMemoryCatalogue`; the personalize
    provider's reads the DynamoDB item table on demand (`providers.personalize.catalogue`)."""

    def render(
        self, item_ids: Iterable[str], limit: int | None = None, recommendation_id: str = ""
    ) -> str:
        """The JSON array of the items `item_ids`, in order, at most `limit` long, with
        `recommendation_id` in the URLs the template gives (`{recommendation_id}`)."""
        ...

    def known(self, item_ids: Sequence[str]) -> list[str]:
        """`item_ids` less those the catalogue does not have (all of them when it cannot tell,
        as when it is empty), in order."""
        ...

    def __len__(self) -> int: ...


class InMemoryCatalogue:
    """Item id → rendered item, all in memory. Immutable: a change to the items builds a new
    catalogue."""

    def __init__(
        self,
        items: Iterable[tuple[str, Mapping[str, Any]]],
        url_template: str = "",
        image_template: str = "",
        revision: object = None,
    ) -> None:
        self.revision = revision
        self._url_template, self._image_template = url_template, image_template
        self._json: dict[str, str] = {}
        self._fields: dict[str, dict[str, Any]] = {}
        for item_id, properties in items:
            rendered = decorate(item_id, properties, url_template, image_template)
            self._json[item_id] = json.dumps(rendered, ensure_ascii=False, separators=(",", ":"))
            self._fields[item_id] = normalise(properties)
        self._columns: dict[str, dict[str, Any]] = {}

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._json

    def __len__(self) -> int:
        return len(self._json)

    def ids(self) -> Iterable[str]:
        return self._json.keys()

    def known(self, item_ids: Sequence[str]) -> list[str]:
        if not self._json:
            return list(item_ids)
        return [i for i in item_ids if i in self._json]

    def render(
        self, item_ids: Iterable[str], limit: int | None = None, recommendation_id: str = ""
    ) -> str:
        """The JSON array of `item_ids`, in order, at most `limit` long."""
        parts: list[str] = []
        for item_id in item_ids:
            fragment = self._json.get(item_id)
            if fragment is None:
                # Only when the shop has no items dataset yet: render what the templates give.
                bare = decorate(item_id, {}, self._url_template, self._image_template)
                fragment = json.dumps(bare, ensure_ascii=False, separators=(",", ":"))
            parts.append(fragment)
            if limit is not None and len(parts) >= limit:
                break
        body = "[" + ",".join(parts) + "]"
        return with_recommendation_id(body, self._url_template, recommendation_id)

    def column(self, field: str) -> dict[str, Any]:
        """Item id → value of one normalised field (for filters), built once per field."""
        column = self._columns.get(field)
        if column is None:
            column = {i: f[field] for i, f in self._fields.items() if field in f}
            self._columns[field] = column
        return column

    def fields_of(self, item_id: str) -> dict[str, Any] | None:
        """The item's normalised fields (what filters test), or None for an unknown item."""
        return self._fields.get(item_id)
