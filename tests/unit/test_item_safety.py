"""What item properties cannot do to a rendered item: replace its id, smuggle a non-http(s) link,
or put NaN/Infinity (not JSON) in a response."""

from __future__ import annotations

import json
import math

import pytest

from chalicelib.api.web import ApiError, Request, body, non_finite_at
from chalicelib.catalogue import InMemoryCatalogue, decorate, safe_url
from chalicelib.payloads import Item

URL, IMAGE = "https://shop.example/p/{id}", "https://shop.example/i/{id}.jpg"


@pytest.mark.parametrize("key", ["id", "ID", "Id", " id "])
def test_a_property_named_id_never_replaces_the_item_id(key: str) -> None:
    item = decorate("real-1", {key: "evil", "name": "N"}, URL, IMAGE)
    assert item["id"] == "real-1"
    assert list(item).count("id") == 1


@pytest.mark.parametrize(
    "value",
    ["javascript:alert(1)", " JavaScript:alert(1)", "data:text/html,x", "//evil.example/x",
     "http://", "http://a b", "https://a/\"onmouseover=x", "vbscript:x", "ftp://a/b"],
)  # fmt: skip
def test_only_http_urls_are_rendered(value: str) -> None:
    item = decorate("i1", {"url": value, "image": value, "thumb_url": value}, URL, IMAGE)
    assert item["url"] == "https://shop.example/p/i1"  # the template instead
    assert item["image"] == "https://shop.example/i/i1.jpg"
    assert "thumb_url" not in item


def test_http_and_https_urls_pass() -> None:
    item = decorate(
        "i1", {"URL": "https://a.example/x?y=1", "image_url": "http://b/c.png"}, URL, ""
    )
    assert item["url"] == "https://a.example/x?y=1"
    assert item["image"] == "http://b/c.png"
    assert safe_url("HTTPS://A.example") == "HTTPS://A.example"


@pytest.mark.parametrize("price", ["NaN", "nan", "inf", "-Infinity", "1e999"])
def test_a_non_finite_price_string_is_refused_at_the_input(price: str) -> None:
    with pytest.raises(ValueError, match="not a finite number"):
        Item(item_id="i1", properties={"PRICE": price})


def test_non_finite_numbers_already_stored_render_as_null() -> None:
    fields = {"price": "NaN", "weight": math.inf, "dims": [1.0, math.nan]}
    catalogue = InMemoryCatalogue([("i1", fields)])
    rendered = json.loads(catalogue.render(["i1"]), parse_constant=pytest.fail)
    assert rendered == [{"id": "i1", "url": None, "name": None, "price": None, "image": None,
                         "weight": None, "dims": [1.0, None]}]  # fmt: skip


@pytest.mark.parametrize(
    ("raw", "where"),
    [
        (
            b'{"items": [{"item_id": "a", "properties": {"price": NaN}}]}',
            "items[0].properties.price",
        ),
        (b'{"x": Infinity}', "x"),
        (b'{"x": [1, -Infinity]}', "x[1]"),
        (b'{"x": 1e999}', "x"),
    ],
)
def test_a_body_with_nan_or_infinity_names_where(raw: bytes, where: str) -> None:
    assert non_finite_at(json.loads(raw)) == where
    with pytest.raises(ApiError) as caught:
        body(Item, Request("POST", {"content-type": "application/json"}, {}, raw), 10_000)
    assert caught.value.status == 400
    assert caught.value.message.startswith(where)
