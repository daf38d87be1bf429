"""The `personalize` provider's event sink: `POST /events`, `/users` and `/items` only queue.

Each request becomes SPEC §4 envelopes on `RECS_EVENTS_QUEUE`; the `ingest_sqs` Lambda forwards
them to PutEvents, PutUsers and PutItems with Personalize's batching and retry rules
(`providers.personalize.ingest`). Items are also written to the DynamoDB item table at once, so
that responses are decorated with them before Personalize has them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from chalicelib import aws
from chalicelib.payloads import EventBatch, Item, User
from chalicelib.providers.personalize import items_table
from chalicelib.providers.personalize.catalogue import TableCatalogue
from chalicelib.settings import Settings
from chalicelib.vocabulary import ProviderError

# SQS takes 256 KiB a message; ten 32,000-character items can exceed it, so records are split.
SQS_MESSAGE_BYTES = 256 * 1024 - 1024


def envelopes(kind: str, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`{"type": kind, kind: [...]}` envelopes of `records`, each small enough for one message."""
    out: list[dict[str, Any]] = []
    chunk: list[dict[str, Any]] = []
    size = 64
    for record in records:
        record_size = len(json.dumps(record, ensure_ascii=False).encode()) + 1
        if chunk and size + record_size > SQS_MESSAGE_BYTES:
            out.append({"type": kind, kind: chunk})
            chunk, size = [], 64
        chunk.append(record)
        size += record_size
    if chunk:
        out.append({"type": kind, kind: chunk})
    return out


class QueueEvents:
    def __init__(self, settings: Settings, catalogue: TableCatalogue) -> None:
        self.settings = settings
        self._catalogue = catalogue  # the serving role's: items written here are re-read
        self._queue_urls: dict[str, str] = {}

    def put_events(self, batch: EventBatch) -> int:
        envelope = {
            "type": "events",
            "user_id": batch.user_id,
            "session_id": batch.session,
            "events": [e.model_dump(mode="json", exclude_none=True) for e in batch.events],
        }
        self._enqueue([envelope])
        return len(batch.events)

    def put_users(self, users: Sequence[User]) -> int:
        records = [u.model_dump(mode="json") for u in users]
        self._enqueue(envelopes("users", records))
        return len(records)

    def put_items(self, items: Sequence[Item]) -> int:
        if self.settings.items_table:
            # Decoration follows at once; the queue takes the item to Personalize (PutItems).
            items_table.put_items(
                self.settings.items_table, ((i.item_id, i.properties) for i in items)
            )
            self._catalogue.forget(i.item_id for i in items)
        records = [i.model_dump(mode="json") for i in items]
        self._enqueue(envelopes("items", records))
        return len(records)

    def _enqueue(self, bodies: Sequence[Mapping[str, Any]]) -> None:
        """Send envelopes to RECS_EVENTS_QUEUE, one SQS message each."""
        queue = self.settings.events_queue
        if not queue:
            raise ProviderError("RECS_EVENTS_QUEUE is not set: events cannot be forwarded")
        sqs = aws.client("sqs")
        url = self._queue_urls.get(queue)
        if url is None:
            url = sqs.get_queue_url(QueueName=queue)["QueueUrl"]
            self._queue_urls[queue] = url
        for envelope in bodies:
            body = json.dumps(envelope, ensure_ascii=False, separators=(",", ":"))
            sqs.send_message(QueueUrl=url, MessageBody=body)
