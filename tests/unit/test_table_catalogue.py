"""The `personalize` provider's item-table catalogue: its length is the table's item count, which
`python -m chalicelib batch` divides by for coverage."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chalicelib import aws, batchfile
from chalicelib.providers.personalize.catalogue import TableCatalogue
from tests.personalize_fakes import SHOP


def test_the_catalogue_counts_the_items_of_the_table(item_table: str, tmp_path: Path) -> None:
    """Not 1 (which made a batch's coverage 3.0): the table's items, the popular list's row
    left out, so coverage is the share of the catalogue recommended."""
    catalogue = TableCatalogue(item_table, "u/{id}", "i/{id}", ttl=60)
    assert len(catalogue) == len(SHOP) == 4
    output = tmp_path / "recs.jsonl"
    lines = [
        {"input": {"userId": "u1"}, "output": {"recommendedItems": ["i1", "i2"]}},
        {"input": {"userId": "u2"}, "output": {"recommendedItems": ["i2", "i3"]}},
    ]
    output.write_text("".join(json.dumps(line) + "\n" for line in lines))
    summary = batchfile.summarize(output, len(catalogue))
    assert summary.coverage == 0.75


def test_an_unreadable_item_table_counts_as_no_catalogue(
    aws_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1:9")  # nothing listens
    aws.reset()
    assert len(TableCatalogue("recs-items", "", "", ttl=60)) == 0
