"""Ingestion benchmark: events per second per core through `ingest_sqs`'s code, in process, and
the number of PutEvents calls per 1,000 events; against a one-call-per-event forwarder in the same
run. Personalize is stubbed three ways: by a fake client (the cost of this project's code alone),
at botocore's `before-call` (as botocore's Stubber does: the request serialised, nothing signed or
sent), and at `before-send` (the whole botocore request path, signing included, only the network
replaced). botocore's own cost per call is what packing events 10 a call saves.

    .venv/bin/python bench/ingest.py [--events 50000] [--users 500] [--batch 100]

SPEC §7 target: at least 20,000 events/s per core, with the fewest calls the 10-events-per-call and
one-session-per-call rules allow (printed as the lower bound).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

for key, value in {
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_DEFAULT_REGION": "us-east-1",
}.items():
    os.environ.setdefault(key, value)

from botocore.awsrequest import AWSResponse  # noqa: E402

from chalicelib import aws  # noqa: E402
from chalicelib.handlers import ingest  # noqa: E402
from chalicelib.payloads import EventsEnvelope  # noqa: E402
from chalicelib.providers.personalize.ingest import calls as pe  # noqa: E402
from chalicelib.settings import Settings  # noqa: E402


class _Raw:
    def stream(self, **_: Any) -> Any:
        yield b"{}"


class FakeClient:
    """Counts calls like the hooks below, with no botocore in the way."""

    def __init__(self, counting: Counting) -> None:
        self.counting = counting

    def put_events(self, **params: Any) -> dict[str, Any]:
        self.counting.calls += 1
        self.counting.events += len(params["eventList"])
        return {}


class Counting:
    def __init__(self) -> None:
        self.calls = 0
        self.events = 0

    def send(self, request: Any, **_: Any) -> AWSResponse:
        self.calls += 1
        self.events += len(json.loads(request.body)["eventList"])
        return AWSResponse(request.url, 200, {"Content-Type": "application/json"}, _Raw())

    def call(self, params: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        self.calls += 1
        self.events += len(json.loads(params["body"])["eventList"])
        return AWSResponse("https://stub", 200, {}, _Raw()), {}


def workload(n_events: int, n_users: int, batch: int, seed: int = 7) -> list[dict[str, Any]]:
    """SQS batches of `batch` messages; each message is one user's 1-4 events (a page view, an
    add to cart, a purchase), users drawn with a long tail as on a real shop."""
    rng = random.Random(seed)
    weights = [1 / (rank + 1) for rank in range(n_users)]
    messages: list[str] = []
    made = 0
    while made < n_events:
        user = rng.choices(range(n_users), weights)[0]
        count = min(rng.randint(1, 4), n_events - made)
        body = {
            "type": "events",
            "user_id": f"user-{user}",
            "session_id": f"session-{user}",
            "events": [
                {
                    "event_type": rng.choice(["view", "cart", "purchase"]),
                    "item_id": f"item-{rng.randrange(4000)}",
                    "timestamp": 1_700_000_000 + made + k,
                }
                for k in range(count)
            ],
        }
        messages.append(json.dumps(body))
        made += count
    return [
        {
            "Records": [
                {"messageId": f"m{start + i}", "receiptHandle": "r", "body": body}
                for i, body in enumerate(messages[start : start + batch])
            ]
        }
        for start in range(0, len(messages), batch)
    ]


def lower_bound(batches: list[dict[str, Any]]) -> int:
    """Fewest PutEvents calls possible: ceil(events / 10) per session per batch."""
    total = 0
    for batch in batches:
        per_session: Counter[str] = Counter()
        for record in batch["Records"]:
            body = json.loads(record["body"])
            per_session[body["session_id"]] += len(body["events"])
        total += sum(math.ceil(n / 10) for n in per_session.values())
    return total


def one_call_per_event(batches: list[dict[str, Any]], client: Any, tracking_id: str) -> None:
    """The peer: validate each message, then one PutEvents call for each of its events."""
    for batch in batches:
        for n, record in enumerate(batch["Records"]):
            parsed = EventsEnvelope.model_validate_json(record["body"])
            for i, event in enumerate(parsed.events):
                entry = pe.event_entry(event, pe.event_id(record["messageId"], n, i))
                pe.put_events(client, tracking_id, parsed.user_id, parsed.session, [entry])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--users", type=int, default=500)
    parser.add_argument("--batch", type=int, default=100, help="SQS messages per invocation")
    args = parser.parse_args()

    settings = Settings(provider="personalize", tracking_id="bench-tracker")
    batches = workload(args.events, args.users, args.batch)
    bound = lower_bound(batches)
    print(f"{args.events:,} events from {args.users} users in {len(batches)} SQS batches")
    print(f"fewest PutEvents calls possible: {1000 * bound / args.events:.1f} per 1,000 events")
    for stub in ("a fake client", "before-call", "before-send"):
        aws.reset()
        counting = Counting()
        if stub == "a fake client":
            client: Any = FakeClient(counting)
            aws.override("personalize-events", client)
        else:
            client = aws.client("personalize-events")
            hook = counting.call if stub == "before-call" else counting.send
            client.meta.events.register(f"{stub}.personalize-events.PutEvents", hook)
        ingest.handle_sqs(batches[0], settings)  # warm up: models, client, endpoint resolution
        counting.calls = counting.events = 0
        cpu = time.process_time()
        for batch in batches:
            ingest.handle_sqs(batch, settings)
        ours_cpu, ours_calls, ours_events = (
            time.process_time() - cpu,
            counting.calls,
            counting.events,
        )
        counting.calls = counting.events = 0
        cpu = time.process_time()
        one_call_per_event(batches, client, settings.tracking_id)
        peer_cpu, peer_calls = time.process_time() - cpu, counting.calls
        ours, peer = ours_events / ours_cpu, args.events / peer_cpu
        print(f"Personalize stubbed {'by' if stub.startswith('a ') else 'at'} {stub}:")
        print(
            f"  ingest_sqs          {ours:9,.0f} events/s per core  "
            f"{1000 * ours_calls / ours_events:6.1f} PutEvents per 1,000"
        )
        print(
            f"  one call per event  {peer:9,.0f} events/s per core  "
            f"{1000 * peer_calls / args.events:6.1f} PutEvents per 1,000"
        )
        fewer = peer_calls / ours_calls
        print(f"  ratio {ours / peer:.1f}x the events/s with {fewer:.1f}x fewer calls")


if __name__ == "__main__":
    main()
