"""The deploy walkthrough's data step on the bundled sample (README "Deploy on AWS", step 5):
`popular` and `catalogue` read data/retail-demo-store with the configured schemas (its
interactions carry DISCOUNT, its items PRODUCT_NAME, ...), as `import` and `import_s3` do, and
store what they found in the stage's item table (moto)."""

from __future__ import annotations

import csv
import gzip
import json
from collections import Counter

import pytest

from chalicelib.cli import main
from chalicelib.providers.personalize import items_table
from chalicelib.settings import PROJECT_ROOT
from tests.personalize_fakes import TABLE

SAMPLE = PROJECT_ROOT / "data" / "retail-demo-store"


def _rows(name: str) -> list[dict[str, str]]:
    with gzip.open(SAMPLE / name, "rt", newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_popular_of_the_samples_last_90_days_is_stored_as_the_fallback_list(
    item_table: str, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["popular", "--input", str(SAMPLE / "interactions.csv.gz"), "--days", "90"]
    assert main([*args, "--top", "5"]) == 0
    top = json.loads(capsys.readouterr().out)
    rows = _rows("interactions.csv.gz")
    newest = max(int(r["TIMESTAMP"]) for r in rows)
    counts = Counter(r["ITEM_ID"] for r in rows if int(r["TIMESTAMP"]) >= newest - 90 * 86_400)
    assert [counts[i] for i in top] == [n for _, n in counts.most_common(5)]
    assert items_table.get_popular(TABLE) == top


def test_catalogue_loads_every_item_of_the_sample_with_its_fields(
    item_table: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["catalogue", str(SAMPLE / "items.csv.gz")]) == 0
    loaded = json.loads(capsys.readouterr().out)
    items = _rows("items.csv.gz")
    assert (loaded["loaded"], loaded["errors"]) == (len(items), [])
    first = items[0]
    stored = items_table.get_items(TABLE, [first["ITEM_ID"]])[first["ITEM_ID"]]
    assert stored["product_name"] == first["PRODUCT_NAME"]
