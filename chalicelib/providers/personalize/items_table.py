"""The DynamoDB item catalogue (`RECS_ITEMS_TABLE`): its layout, reads by id and writes.

One DynamoDB item per shop item, partition key `item_id` (string), the item's fields as attributes
under their normalised names (`name`, `price`, `url`, `image`, `category`, ...). One reserved row,
`POPULAR_KEY`, holds the precomputed popular items served as the fallback list.
Writers (`POST /items` forwarding, item imports, `python -m chalicelib popular`) and the serving
provider all go through this module, so the layout lives in one place.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from chalicelib import aws
from chalicelib.catalogue import normalise

KEY = "item_id"
# Not a valid Personalize item id would be nicer, but any string is one; this is unlikely enough
# and is never rendered (the provider never asks for it as an item).
POPULAR_KEY = "__popular__"
BATCH_GET_LIMIT = 100  # BatchGetItem's maximum keys per call
BATCH_WRITE_LIMIT = 25  # BatchWriteItem's maximum requests per call


def _plain(value: Any) -> Any:
    """DynamoDB's Decimals back to JSON-friendly ints and floats, recursively."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, set):
        return sorted(_plain(v) for v in value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _dynamo(value: Any) -> Any:
    """JSON values to what the DynamoDB serializer takes (floats become Decimals)."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, list):
        return [_dynamo(v) for v in value]
    if isinstance(value, dict):
        return {k: _dynamo(v) for k, v in value.items()}
    return value


def _serializer() -> tuple[Any, Any]:
    # boto3's own (de)serializers: typed attribute values are easy to get subtly wrong by hand.
    from boto3.dynamodb.types import TypeDeserializer, TypeSerializer  # noqa: PLC0415

    return TypeSerializer(), TypeDeserializer()


def get_items(table: str, item_ids: Sequence[str], deadline: float | None = None) -> dict[str, Any]:
    """Item id → fields for the ids the table has (missing ids are simply absent).

    `deadline` (a `time.monotonic()` value) stops retrying unprocessed keys once it has passed.
    """
    client = aws.client("dynamodb", fast=True)
    _, deserializer = _serializer()
    found: dict[str, Any] = {}
    unique = list(dict.fromkeys(item_ids))
    for start in range(0, len(unique), BATCH_GET_LIMIT):
        keys: list[dict[str, Any]] = [
            {KEY: {"S": i}} for i in unique[start : start + BATCH_GET_LIMIT]
        ]
        while keys:
            out = client.batch_get_item(RequestItems={table: {"Keys": keys}})
            for raw in out.get("Responses", {}).get(table, []):
                row = {k: _plain(deserializer.deserialize(v)) for k, v in raw.items()}
                found[row.pop(KEY)] = row
            keys = out.get("UnprocessedKeys", {}).get(table, {}).get("Keys", [])
            if keys and deadline is not None and time.monotonic() > deadline:
                break
    return found


def put_items(table: str, items: Iterable[tuple[str, Mapping[str, Any]]]) -> int:
    """Write items (id, properties), each replacing the item's whole row, as PutItems replaces
    the item's record on Personalize: a field left out of an update is gone from both."""
    client = aws.client("dynamodb")
    serializer, _ = _serializer()
    count = 0
    for item_id, properties in items:
        client.put_item(TableName=table, Item=_row(serializer, item_id, properties))
        count += 1
    return count


def _row(serializer: Any, item_id: str, properties: Mapping[str, Any]) -> dict[str, Any]:
    fields = {k: v for k, v in normalise(properties).items() if k != KEY and v not in (None, "")}
    row = {KEY: item_id, **fields}
    return {k: serializer.serialize(_dynamo(v)) for k, v in row.items()}


def load_items(table: str, items: Iterable[tuple[str, Mapping[str, Any]]]) -> int:
    """Bulk-write items (whole rows replaced), 25 to a BatchWriteItem call: an items file."""
    client = aws.client("dynamodb")
    serializer, _ = _serializer()
    count = 0
    batch: list[dict[str, Any]] = []

    def flush() -> None:
        pending: dict[str, Any] = {table: batch}
        for attempt in range(8):
            out = client.batch_write_item(RequestItems=pending)
            pending = out.get("UnprocessedItems") or {}
            if not pending:
                return
            time.sleep(min(0.05 * 2**attempt, 2.0))  # DynamoDB asks callers to back off
        raise RuntimeError(f"DynamoDB kept {len(pending[table])} items unprocessed")

    for item_id, properties in items:
        batch.append({"PutRequest": {"Item": _row(serializer, item_id, properties)}})
        count += 1
        if len(batch) == BATCH_WRITE_LIMIT:
            flush()
            batch = []
    if batch:
        flush()
    return count


def count(table: str) -> int:
    """The table's items, less the popular list's row: DynamoDB's ItemCount (DescribeTable),
    which it refreshes about every six hours; a Scan would read the whole table instead."""
    client = aws.client("dynamodb", fast=True)
    total = int(client.describe_table(TableName=table)["Table"].get("ItemCount", 0))
    popular = client.get_item(
        TableName=table, Key={KEY: {"S": POPULAR_KEY}}, ProjectionExpression=KEY
    ).get("Item")
    return max(total - (1 if popular else 0), 0)


def get_popular(table: str) -> list[str]:
    """The precomputed popular item ids, most popular first ([] when none were stored)."""
    out = aws.client("dynamodb", fast=True).get_item(
        TableName=table, Key={KEY: {"S": POPULAR_KEY}}, ConsistentRead=False
    )
    values = out.get("Item", {}).get("item_ids", {}).get("L", [])
    return [v["S"] for v in values if "S" in v]


def put_popular(table: str, item_ids: Sequence[str]) -> None:
    """Store the popular list (DynamoDB's 400 KB item limit holds ~1,000 ids of 256 chars)."""
    aws.client("dynamodb").put_item(
        TableName=table,
        Item={
            KEY: {"S": POPULAR_KEY},
            "item_ids": {"L": [{"S": i} for i in item_ids[:1000]]},
            "updated": {"N": str(int(time.time()))},
        },
    )
