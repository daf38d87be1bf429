"""The `personalize` provider's loop with Braze: one DynamoDB table (`RECS_SERVED_TABLE`) with a
TTL (`expires_at`, `RECS_SERVED_TTL_DAYS`) holding what was served, what users did with it, and
the Currents records already forwarded.

Items, by key (`pk`, `sk`):
- `U#<user>`, `S#<served ms>#<rid>`: a served list (items in order, version, campaign);
- `U#<user>`, `E#<ts ms>#<record id>`: an engagement (impression, click, purchase) from Currents;
- `C#<record id>`, `C`: a claimed Currents record (`status` pending until `lease_until`, then
  done), put only when absent or pending with its lease over, so that of two deliveries of one
  record (Currents is at-least-once) one forwards it, and a sender that died before marking it
  done leaves it to the next delivery after the lease (`RECS_CURRENTS_LEASE_SECONDS`). A claim
  without `status` (written before leases) counts as done.

A user's lists and engagements share a partition: the Content Card join reads the latest list of
one user with one Query. Nothing is kept without a table: every call then does nothing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from typing import Any

from chalicelib import aws
from chalicelib.attribution import Attribution, Scratch
from chalicelib.settings import Settings
from chalicelib.vocabulary import ClaimOutcome, Engagement, EngagementKind, ServedList

log = logging.getLogger("recs.loop")
CLAIM_THREADS = 8  # conditional puts in flight: a 100k-record file claims in minutes, not hours


def _s(value: str | None) -> dict[str, str] | None:
    return None if value is None else {"S": value}


def _n(value: float | None) -> dict[str, str] | None:
    return None if value is None else {"N": repr(float(value))}


def _item(**fields: dict[str, Any] | None) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if v is not None}


def _str(item: dict[str, Any], key: str) -> str | None:
    value = item.get(key)
    return None if value is None else str(value["S"])


def _num(item: dict[str, Any], key: str) -> float | None:
    value = item.get(key)
    return None if value is None else float(value["N"])


def _claim_key(record_id: str) -> dict[str, dict[str, str]]:
    return {"pk": {"S": f"C#{record_id}"}, "sk": {"S": "C"}}


def _ms(ts: float) -> str:
    return f"{int(ts * 1000):015d}"  # sorts as a string


def served_of(item: dict[str, Any]) -> ServedList:
    return ServedList(
        recommendation_id=str(_str(item, "recommendation_id")),
        user_id=str(_str(item, "user_id")),
        item_ids=[v["S"] for v in item.get("items", {}).get("L", [])],
        route=str(_str(item, "route")),
        source="fallback" if _str(item, "source") == "fallback" else "personalized",
        served_at=float(_num(item, "served_at") or 0.0),
        solution_version=_str(item, "solution_version"),
        campaign=_str(item, "campaign"),
        canvas_step=_str(item, "canvas_step"),
    )


def engagement_of(item: dict[str, Any]) -> Engagement:
    kinds: dict[str | None, EngagementKind] = {
        "impression": "impression",
        "click": "click",
        "purchase": "purchase",
    }
    return Engagement(
        event_id=str(_str(item, "event_id")),
        user_id=str(_str(item, "user_id")),
        kind=kinds.get(_str(item, "kind"), "event"),
        ts=float(_num(item, "ts") or 0.0),
        item_id=_str(item, "item_id"),
        recommendation_id=_str(item, "recommendation_id"),
        campaign=_str(item, "campaign"),
        value=_num(item, "value"),
        event_type=_str(item, "event_type"),
    )


class DynamoLoop:
    def __init__(self, settings: Settings) -> None:
        self.table = settings.served_table
        self.ttl = settings.served_ttl_days * 86_400
        self.lease = settings.currents_lease_seconds

    def _expires(self, ts: float) -> dict[str, str]:
        return {"N": str(int(max(ts, time.time()) + self.ttl))}

    def flush(self) -> int:
        return 0  # each served list is put in its answer: a Lambda may freeze right after it

    def record_served(self, served: ServedList) -> None:
        if not self.table:
            return
        item = _item(
            pk=_s(f"U#{served.user_id}"),
            sk=_s(f"S#{_ms(served.served_at)}#{served.recommendation_id}"),
            recommendation_id=_s(served.recommendation_id),
            user_id=_s(served.user_id),
            items={"L": [{"S": i} for i in served.item_ids]},
            route=_s(served.route),
            source=_s(served.source),
            served_at=_n(served.served_at),
            solution_version=_s(served.solution_version),
            campaign=_s(served.campaign),
            canvas_step=_s(served.canvas_step),
            expires_at=self._expires(served.served_at),
        )
        # The request path's client: short timeouts, one attempt (the answer never waits long).
        aws.client("dynamodb", fast=True).put_item(TableName=self.table, Item=item)

    def served_to(self, user_id: str, campaign: str | None, before: float) -> ServedList | None:
        if not self.table:
            return None
        client = aws.client("dynamodb")
        params: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "pk = :pk AND sk BETWEEN :low AND :high",
            "ExpressionAttributeValues": {
                ":pk": {"S": f"U#{user_id}"},
                ":low": {"S": "S#"},
                ":high": {"S": f"S#{_ms(before)}#~"},
            },
            "ScanIndexForward": False,
        }
        if campaign:
            params["FilterExpression"] = "campaign = :c OR canvas_step = :c"
            params["ExpressionAttributeValues"][":c"] = {"S": campaign}
        for page in client.get_paginator("query").paginate(**params):
            for item in page.get("Items", []):
                return served_of(item)
        return None

    def claim(self, record_ids: Sequence[str]) -> dict[str, ClaimOutcome]:
        if not self.table or not record_ids:
            return dict.fromkeys(record_ids, "taken")
        client = aws.client("dynamodb")
        now = time.time()
        expires = self._expires(now)

        def one(record_id: str) -> ClaimOutcome:
            try:
                client.put_item(
                    TableName=self.table,
                    Item={
                        **_claim_key(record_id),
                        "status": {"S": "pending"},
                        "lease_until": {"N": repr(now + self.lease)},
                        "expires_at": expires,
                    },
                    ConditionExpression="attribute_not_exists(pk) OR "
                    "(#status = :pending AND lease_until < :now)",
                    ExpressionAttributeNames={"#status": "status"},
                    ExpressionAttributeValues={
                        ":pending": {"S": "pending"},
                        ":now": {"N": repr(now)},
                    },
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
            except client.exceptions.ConditionalCheckFailedException as exc:
                old = exc.response.get("Item", {})
                return "held" if _str(old, "status") == "pending" else "done"
            return "taken"

        with ThreadPoolExecutor(CLAIM_THREADS) as pool:
            return dict(zip(record_ids, pool.map(one, record_ids), strict=True))

    def done(self, record_ids: Sequence[str]) -> None:
        if not self.table or not record_ids:
            return
        client = aws.client("dynamodb")

        def one(record_id: str) -> None:
            # Conditional: an update never makes a claim that is not there (released, or gone
            # with the TTL), and a claim already done stays as it is.
            with suppress(client.exceptions.ConditionalCheckFailedException):
                client.update_item(
                    TableName=self.table,
                    Key=_claim_key(record_id),
                    UpdateExpression="SET #status = :done REMOVE lease_until",
                    ConditionExpression="#status = :pending",
                    ExpressionAttributeNames={"#status": "status"},
                    ExpressionAttributeValues={
                        ":done": {"S": "done"},
                        ":pending": {"S": "pending"},
                    },
                )

        with ThreadPoolExecutor(CLAIM_THREADS) as pool:
            list(pool.map(one, record_ids))

    def release(self, record_ids: Sequence[str]) -> None:
        if not self.table:
            return
        client = aws.client("dynamodb")
        for record_id in record_ids:
            client.delete_item(TableName=self.table, Key=_claim_key(record_id))

    def record_engagements(self, engagements: Sequence[Engagement]) -> int:
        if not self.table:
            return 0
        client = aws.client("dynamodb")
        requests = [
            {
                "PutRequest": {
                    "Item": _item(
                        pk=_s(f"U#{e.user_id}"),
                        sk=_s(f"E#{_ms(e.ts)}#{e.event_id}"),
                        event_id=_s(e.event_id),
                        user_id=_s(e.user_id),
                        kind=_s(e.kind),
                        ts=_n(e.ts),
                        item_id=_s(e.item_id),
                        recommendation_id=_s(e.recommendation_id),
                        campaign=_s(e.campaign),
                        value=_n(e.value),
                        event_type=_s(e.event_type),
                        expires_at=self._expires(e.ts),
                    )
                }
            }
            for e in engagements
        ]
        for start in range(0, len(requests), 25):  # BatchWriteItem's limit
            pending = {self.table: requests[start : start + 25]}
            for attempt in range(8):
                left = client.batch_write_item(RequestItems=pending).get("UnprocessedItems", {})
                if not left:
                    break
                pending = left
                time.sleep(min(0.05 * 2**attempt, 2.0))
            else:
                raise RuntimeError(f"{self.table}: engagements left unprocessed after retries")
        return len(requests)

    def _scan(self, since: float) -> Iterator[ServedList | Engagement]:
        """The table's lists and engagements since `since`, page by page, in the scan's order."""
        if not self.table:
            return
        paginator = aws.client("dynamodb").get_paginator("scan")
        for page in paginator.paginate(TableName=self.table):
            for item in page.get("Items", []):
                sk = _str(item, "sk") or ""
                if sk.startswith("S#") and (_num(item, "served_at") or 0) >= since:
                    yield served_of(item)
                elif sk.startswith("E#") and (_num(item, "ts") or 0) >= since:
                    yield engagement_of(item)

    def history(self, since: float) -> tuple[Iterator[ServedList], Iterator[Engagement]]:
        served: list[ServedList] = []
        engaged: list[Engagement] = []
        for record in self._scan(since):
            if isinstance(record, ServedList):
                served.append(record)
            else:
                engaged.append(record)
        served.sort(key=lambda s: s.served_at)
        engaged.sort(key=lambda e: e.ts)
        return iter(served), iter(engaged)

    def attribution(self, since: float, window_hours: float) -> Attribution:
        # Streamed page by page into a scratch SQLite file: a table of millions of lists never
        # sits in memory whole (a scan comes in no order, so the file does the sorting).
        with Scratch() as scratch:
            for record in self._scan(since):
                if isinstance(record, ServedList):
                    scratch.served(record)
                else:
                    scratch.engaged(record)
            return scratch.attribution(since, window_hours)
