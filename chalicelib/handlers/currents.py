"""The `ingest_currents` Lambda: each Braze Currents Avro file S3 announces (keys under
`currents/` of RECS_CURRENTS_BUCKET) forwarded to PutEvents, each record once; then Lambda is
told to deliver the event again when any record failed for a passing reason or is held under
another delivery's lease (what was accepted is claimed done, so the next delivery sends only the
rest)."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote_plus

from chalicelib.config import load_config
from chalicelib.currents.ingest import CurrentsReport
from chalicelib.providers.personalize.currents import CurrentsForwarder
from chalicelib.settings import Settings


class CurrentsRetryError(Exception):
    """Raised after every file is handled when some records must be sent again."""


def handle_s3(event: dict[str, Any], settings: Settings | None = None) -> list[CurrentsReport]:
    """Every record of the notification (Chalice's S3Event reads only the first)."""
    settings = settings or Settings()
    forwarder = CurrentsForwarder(settings, load_config(settings.config))
    reports = []
    for record in event.get("Records", []):
        s3 = record.get("s3", {})
        bucket = s3.get("bucket", {}).get("name", "")
        key = unquote_plus(s3.get("object", {}).get("key", ""))
        if not key.endswith(".avro"):
            continue  # Currents writes nothing else there; anything else is not ours to read
        reports.append(forwarder.forward_object(bucket, key))
    # Records another delivery holds under its lease count too: raising keeps this S3 event
    # with Lambda (retried), where returning would drop it even if that delivery had died.
    waiting = sum(r.retry + r.pending for r in reports)
    if waiting:
        raise CurrentsRetryError(f"{waiting} Currents records will be sent again")
    return reports
