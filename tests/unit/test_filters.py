"""Filter expressions evaluated on a small catalogue shaped like the retail-demo-store data
(price, two category levels, gender, promoted; users with age and gender; View, AddToCart and
Purchase events): every documented combination, with the item sets a user would see."""

from __future__ import annotations

import pytest

from chalicelib.catalogue import InMemoryCatalogue
from chalicelib.engine.filters import ItemFields, UserData, compile_filter, recent_events
from chalicelib.filters import CurrentItemFilterError, FilterError, MissingFilterValueError

ITEMS = {
    "bp1": {
        "PRICE": "129.99",
        "CATEGORY_L1": "accessories",
        "CATEGORY_L2": "backpack",
        "GENDER": "F",
        "PROMOTED": "Y",
    },
    "bp2": {
        "PRICE": "49.99",
        "CATEGORY_L1": "accessories",
        "CATEGORY_L2": "backpack",
        "GENDER": "F",
    },
    "sh1": {
        "PRICE": "89.99",
        "CATEGORY_L1": "footwear",
        "CATEGORY_L2": "sneakers",
        "GENDER": "M",
        "PROMOTED": "Y",
    },
    "sh2": {
        "PRICE": "19.99",
        "CATEGORY_L1": "footwear",
        "CATEGORY_L2": "sandals|beach",
        "GENDER": "M",
    },
    "tv1": {"PRICE": "499", "CATEGORY_L1": "electronics", "CATEGORY_L2": "television"},
    "cup": {"PRICE": 9.99, "CATEGORY_L1": "housewares", "CATEGORY_L2": "kitchen|gifts"},
    "bk1": {"PRICE": "n/a", "CATEGORY_L1": "books"},
}
ALL = set(ITEMS)
USERS = {
    "adult": {"AGE": "31", "GENDER": "M", "TIER": "gold|beta"},
    "teen": {"AGE": 17, "GENDER": "F"},
    "anon": None,
}
EVENTS = {
    "adult": [
        ("bp1", "View", 1.0),
        ("sh1", "AddToCart", 2.0),
        ("sh1", "Purchase", 3.0),
        ("tv1", "view", 4.0),
        ("cup", "Purchase", 5.0),
        ("not-in-catalogue", "Purchase", 6.0),
    ],
    "teen": [("bp2", "View", 1.0)],
    "anon": [],
}


@pytest.fixture(scope="module")
def fields() -> ItemFields:
    return ItemFields(list(ITEMS), InMemoryCatalogue(ITEMS.items()))


def run(fields: ItemFields, expression: str, user: str = "adult", **values: object) -> set[str]:
    given = {k: v if isinstance(v, list) else [str(v)] for k, v in values.items()}
    mask = compile_filter(expression).mask(fields, given, UserData(EVENTS[user], USERS[user]))
    return {item for item, keep in zip(fields.item_ids, mask.tolist(), strict=True) if keep}


PURCHASED = 'Interactions.EVENT_TYPE IN ("Purchase")'
TABLE = [
    # interactions
    (f"EXCLUDE ItemID WHERE {PURCHASED}", "adult", {}, ALL - {"sh1", "cup"}),
    (f"INCLUDE ItemID WHERE {PURCHASED}", "adult", {}, {"sh1", "cup"}),
    ('INCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("purchase")', "adult", {}, {"sh1", "cup"}),
    ('INCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("VIEW")', "adult", {}, {"bp1", "tv1"}),
    ('EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("*")', "adult", {}, {"bp2", "sh2", "bk1"}),
    ('INCLUDE ItemID WHERE Interactions.EVENT_TYPE NOT IN ("View")', "adult", {}, {"sh1", "cup"}),
    (
        'INCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("View") OR '
        'Interactions.EVENT_TYPE IN ("AddToCart")',
        "adult",
        {},
        {"bp1", "tv1", "sh1"},
    ),
    (
        "EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ($EVENT)",
        "adult",
        {"EVENT": ["View", "AddToCart"]},
        ALL - {"bp1", "tv1", "sh1"},
    ),
    (f"EXCLUDE ItemID WHERE {PURCHASED}", "anon", {}, ALL),
    # items: IN / NOT IN, multi-value fields, numbers
    (
        'INCLUDE ItemID WHERE Items.CATEGORY_L1 IN ("footwear", "books")',
        "adult",
        {},
        {"sh1", "sh2", "bk1"},
    ),
    ('INCLUDE ItemID WHERE Items.CATEGORY_L2 IN ("beach")', "adult", {}, {"sh2"}),
    ('EXCLUDE ItemID WHERE Items.CATEGORY_L2 IN ("gifts")', "adult", {}, ALL - {"cup"}),
    ('INCLUDE ItemID WHERE Items.PROMOTED NOT IN ("Y")', "adult", {}, set()),
    ('INCLUDE ItemID WHERE Items.GENDER NOT IN ("F")', "adult", {}, {"sh1", "sh2"}),
    ("INCLUDE ItemID WHERE Items.PRICE < 50", "adult", {}, {"bp2", "sh2", "cup"}),
    ("INCLUDE ItemID WHERE Items.PRICE <= 49.99", "adult", {}, {"bp2", "sh2", "cup"}),
    ("INCLUDE ItemID WHERE Items.PRICE > 129.99", "adult", {}, {"tv1"}),
    ("INCLUDE ItemID WHERE Items.PRICE >= 129.99", "adult", {}, {"bp1", "tv1"}),
    ("INCLUDE ItemID WHERE Items.PRICE = 499", "adult", {}, {"tv1"}),
    ("EXCLUDE ItemID WHERE Items.PRICE != 499", "adult", {}, {"tv1", "bk1"}),
    ("INCLUDE ItemID WHERE Items.PRICE > -1", "adult", {}, ALL - {"bk1"}),
    ("INCLUDE ItemID WHERE Items.PRICE <= $MAX", "adult", {"MAX": "20"}, {"sh2", "cup"}),
    (
        "INCLUDE ItemID WHERE Items.CATEGORY_L1 IN ($CAT)",
        "adult",
        {"CAT": ["books", "nope"]},
        {"bk1"},
    ),
    ('INCLUDE ItemID WHERE Items.ITEM_ID IN ("cup", "tv1")', "adult", {}, {"cup", "tv1"}),
    # AND binds tighter than OR
    (
        'INCLUDE ItemID WHERE Items.CATEGORY_L1 IN ("footwear") AND Items.PRICE < 50 OR '
        'Items.CATEGORY_L1 IN ("books")',
        "adult",
        {},
        {"sh2", "bk1"},
    ),
    (
        'INCLUDE ItemID WHERE Items.CATEGORY_L1 IN ("accessories") AND Items.PROMOTED IN ("Y")',
        "adult",
        {},
        {"bp1"},
    ),
    # | combinations
    (
        'INCLUDE ItemID WHERE Items.CATEGORY_L1 IN ("books") | '
        "INCLUDE ItemID WHERE Items.PRICE > 400",
        "adult",
        {},
        {"bk1", "tv1"},
    ),
    (
        f'EXCLUDE ItemID WHERE Items.CATEGORY_L1 IN ("books") | EXCLUDE ItemID WHERE {PURCHASED}',
        "adult",
        {},
        {"bp1", "bp2", "sh2", "tv1"},
    ),
    (
        'INCLUDE ItemID WHERE Items.CATEGORY_L1 IN ("footwear") | '
        f"EXCLUDE ItemID WHERE {PURCHASED}",
        "adult",
        {},
        {"sh2"},
    ),
    (
        f"EXCLUDE ItemID WHERE {PURCHASED} | "
        'INCLUDE ItemID WHERE Items.CATEGORY_L1 IN ("footwear")',
        "adult",
        {},
        {"sh2"},
    ),
    (
        "INCLUDE ItemID WHERE Items.CATEGORY_L1 IN ($CAT) | "
        'INCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("View") | '
        f"EXCLUDE ItemID WHERE {PURCHASED} | EXCLUDE ItemID WHERE Items.PRICE > $MAX",
        "adult",
        {"CAT": "footwear", "MAX": "100"},
        {"sh2"},
    ),
    # an EXCLUDE whose placeholder is not given is skipped
    ("EXCLUDE ItemID WHERE Items.CATEGORY_L1 IN ($CAT)", "adult", {}, ALL),
    (
        'INCLUDE ItemID WHERE Items.GENDER IN ("M") | EXCLUDE ItemID WHERE Items.PRICE > $MAX',
        "adult",
        {},
        {"sh1", "sh2"},
    ),
    # IF CurrentUser: the expression applies only when the user matches
    (
        'EXCLUDE ItemID WHERE Items.CATEGORY_L1 IN ("electronics") IF CurrentUser.AGE < 18',
        "teen",
        {},
        ALL - {"tv1"},
    ),
    (
        'EXCLUDE ItemID WHERE Items.CATEGORY_L1 IN ("electronics") IF CurrentUser.AGE < 18',
        "adult",
        {},
        ALL,
    ),
    (
        'EXCLUDE ItemID WHERE Items.CATEGORY_L1 IN ("electronics") IF CurrentUser.AGE < 18',
        "anon",
        {},
        ALL,
    ),
    (
        'INCLUDE ItemID WHERE Items.GENDER IN ("M") IF CurrentUser.GENDER IN ("M")',
        "adult",
        {},
        {"sh1", "sh2"},
    ),
    ('INCLUDE ItemID WHERE Items.GENDER IN ("M") IF CurrentUser.GENDER IN ("M")', "teen", {}, ALL),
    (
        "INCLUDE ItemID WHERE Items.PRICE <= $MAX IF CurrentUser.AGE >= $AGE AND "
        'CurrentUser.TIER IN ("beta")',
        "adult",
        {"MAX": 10, "AGE": 30},
        {"cup"},
    ),
    (
        "INCLUDE ItemID WHERE Items.PRICE <= $MAX IF CurrentUser.AGE >= $AGE AND "
        'CurrentUser.TIER IN ("beta")',
        "adult",
        {"MAX": 10, "AGE": 40},
        ALL,
    ),
    (
        f'EXCLUDE ItemID WHERE {PURCHASED} IF CurrentUser.GENDER NOT IN ("F")',
        "adult",
        {},
        ALL - {"sh1", "cup"},
    ),
    # hostile values are data
    (
        "INCLUDE ItemID WHERE Items.CATEGORY_L1 IN ($CAT)",
        "adult",
        {"CAT": ['books") | INCLUDE ItemID WHERE Items.PRICE > ("0']},
        set(),
    ),
]


@pytest.mark.parametrize(("expression", "user", "values", "expected"), TABLE)
def test_expression_gives_the_documented_items(
    fields: ItemFields, expression: str, user: str, values: dict, expected: set[str]
) -> None:
    assert run(fields, expression, user, **values) == expected


def test_missing_include_placeholder_is_named(fields: ItemFields) -> None:
    with pytest.raises(MissingFilterValueError, match=r"\$CAT") as info:
        run(fields, "INCLUDE ItemID WHERE Items.CATEGORY_L1 IN ($CAT)")
    assert info.value.code == "missing_filter_value"


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"MAX": "cheap"}, r"\$MAX must be a number"),
        ({"MAX": "nan"}, r"\$MAX must be a number"),
        ({"MAX": "1e3"}, r"\$MAX must be a number"),
        ({"MAX": ["1", "2"]}, r"\$MAX is compared with a number: give one value"),
        ({"MAX": "5", "CAT": [str(n) for n in range(26)]}, r"\$CAT takes at most 25 values"),
    ],
)
def test_bad_values_are_refused(fields: ItemFields, values: dict, message: str) -> None:
    expression = (
        "INCLUDE ItemID WHERE Items.PRICE < $MAX | INCLUDE ItemID WHERE Items.CATEGORY_L1 IN ($CAT)"
    )
    values.setdefault("CAT", "books")
    with pytest.raises(FilterError, match=message):
        run(fields, expression, **values)


def test_filters_see_the_100_most_recent_events_per_type() -> None:
    events = [(f"v{n}", "View", float(n)) for n in range(150)] + [("p", "Purchase", 999.0)]
    kept = recent_events(events)
    assert [e[0] for e in kept] == [f"v{n}" for n in range(50, 150)] + ["p"]


def test_an_item_posted_after_indexing_is_found_by_its_event(fields: ItemFields) -> None:
    # Items absent from the indexed array are ignored, never an error.
    assert run(fields, f"INCLUDE ItemID WHERE {PURCHASED}") == {"sh1", "cup"}


CHEAPER_ALIKE = (
    "INCLUDE ItemID WHERE Items.PRICE < CurrentItem.PRICE AND "
    "Items.CATEGORY_L1 IN CurrentItem.CATEGORY_L1"
)


@pytest.mark.parametrize(
    ("expression", "current", "expected"),
    [
        (CHEAPER_ALIKE, "bp1", {"bp2"}),  # cheaper accessories
        (CHEAPER_ALIKE, "sh1", {"sh2"}),
        (CHEAPER_ALIKE, "sh2", set()),  # nothing cheaper in footwear
        # a multi-value field: any shared value matches
        ("INCLUDE ItemID WHERE Items.CATEGORY_L2 IN CurrentItem.CATEGORY_L2", "sh2", {"sh2"}),
        ("EXCLUDE ItemID WHERE Items.CATEGORY_L1 IN CurrentItem.CATEGORY_L1", "tv1", ALL - {"tv1"}),
        ("INCLUDE ItemID WHERE Items.PRICE >= CurrentItem.PRICE", "tv1", {"tv1"}),
        # the current item lacks the field (or it is no number): no item passes the test
        ("INCLUDE ItemID WHERE Items.PRICE < CurrentItem.PRICE", "bk1", set()),
        ("INCLUDE ItemID WHERE Items.GENDER NOT IN CurrentItem.GENDER", "tv1", set()),
        ("INCLUDE ItemID WHERE Items.PRICE < CurrentItem.PRICE", "not-in-catalogue", set()),
    ],
)
def test_current_item_fields_are_the_related_items_seed(
    fields: ItemFields, expression: str, current: str, expected: set[str]
) -> None:
    seed = fields.catalogue.fields_of(current) or {}
    user = UserData(EVENTS["adult"], USERS["adult"], current_item=seed)
    mask = compile_filter(expression).mask(fields, {}, user)
    assert {i for i, keep in zip(fields.item_ids, mask.tolist(), strict=True) if keep} == expected


def test_a_current_item_filter_without_a_current_item_is_refused(fields: ItemFields) -> None:
    with pytest.raises(CurrentItemFilterError, match="related-items"):
        compile_filter(CHEAPER_ALIKE).mask(fields, {}, UserData(EVENTS["adult"], USERS["adult"]))
