"""Decoration of recommended ids into Braze-ready items."""

from __future__ import annotations

import json

from chalicelib.catalogue import InMemoryCatalogue, decorate, field_name


def test_field_names_from_csv_camel_and_snake_case_agree() -> None:
    assert {field_name(k) for k in ("PRODUCT_NAME", "productName", "product_name")} == {
        "product_name"
    }


def test_decorate_takes_fields_and_fills_templates_for_missing_url_and_image() -> None:
    item = decorate(
        "A 1/2",
        {"PRODUCT_NAME": "Mug", "PRICE": "4.50", "CATEGORY": "kitchen"},
        "https://shop.example/p/{id}",
        "https://img.example/{id}.jpg",
    )
    assert item == {
        "id": "A 1/2",
        "url": "https://shop.example/p/A%201%2F2",
        "name": "Mug",
        "price": 4.5,
        "image": "https://img.example/A%201%2F2.jpg",
        "category": "kitchen",
    }


def test_item_fields_win_over_templates() -> None:
    item = decorate("x", {"url": "https://a/x", "image_url": "https://i/x"}, "t/{id}", "i/{id}")
    assert (item["url"], item["image"]) == ("https://a/x", "https://i/x")


def test_templates_are_not_format_strings() -> None:
    item = decorate("{0.__class__}", {}, "https://s/{id}/{other}", "")
    assert item["url"] == "https://s/%7B0.__class__%7D/{other}"
    assert item["image"] is None


def test_render_keeps_order_and_limit_and_is_valid_json() -> None:
    catalogue = InMemoryCatalogue(
        [("a", {"name": 'Ä "quoted"'}), ("b", {"name": "B"}), ("c", {"name": "C"})],
        url_template="https://s/{id}",
    )
    rendered = json.loads(catalogue.render(["c", "a", "b"], limit=2))
    assert [i["id"] for i in rendered] == ["c", "a"]
    assert rendered[1]["name"] == 'Ä "quoted"'


def test_unknown_ids_render_from_templates_only() -> None:
    catalogue = InMemoryCatalogue([], url_template="https://s/{id}")
    assert json.loads(catalogue.render(["zz"])) == [
        {"id": "zz", "url": "https://s/zz", "name": None, "price": None, "image": None}
    ]


def test_column_gives_normalised_field_values_for_filters() -> None:
    catalogue = InMemoryCatalogue([("a", {"CATEGORY": "toys"}), ("b", {"price": 3})])
    assert catalogue.column("category") == {"a": "toys"}
    assert catalogue.column("price") == {"b": 3}
    assert "a" in catalogue and "zz" not in catalogue and len(catalogue) == 2
