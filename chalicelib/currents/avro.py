"""The records of one Braze Currents Avro file, streamed: fastavro reads block by block from any
readable binary stream (an S3 body, a local file), so memory stays flat in the file's size.

fastavro is imported here and only here: the `ingest_currents` function loads it, the API and
the other Lambdas never do.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import IO, Any

# Currents writes one event type per file, named in the key:
# .../event_type=users.behaviors.Purchase/date=2026-12-01-10/<schema>/<zone>/<file>.avro
_EVENT_TYPE = re.compile(r"(?:^|/)event_type=([^/]+)/")


class NotAvroError(ValueError):
    """The file is not an Avro object container file (or is cut short)."""


def event_type_of(key: str) -> str | None:
    """The Currents event type a file's key names, e.g. `users.behaviors.Purchase`."""
    found = _EVENT_TYPE.search(key)
    return found.group(1) if found else None


def records(stream: IO[bytes]) -> Iterator[dict[str, Any]]:
    """Each record of the file as a dict (nullable unions read as the value or None)."""
    import fastavro  # noqa: PLC0415 - only the Currents path pays for it

    try:
        reader = fastavro.reader(stream)
    except (ValueError, EOFError, StopIteration) as exc:
        raise NotAvroError(f"not an Avro container file: {exc}") from None
    try:
        for record in reader:
            if isinstance(record, dict):
                yield record
    except (EOFError, ValueError) as exc:  # a truncated or corrupt block
        raise NotAvroError(f"the Avro file is cut short or corrupt: {exc}") from None
