"""The `import_s3` Lambda: every record of an S3 notification imported as its own file (the
`personalize` provider's `imports` validates, reports and starts the job), then Lambda told to
retry when any of them failed."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote_plus

from chalicelib.config import ProjectConfig, load_config
from chalicelib.providers.personalize.imports import ImportResult, import_notified
from chalicelib.settings import Settings


class ImportFailedError(Exception):
    """Raised after every record is handled when any of them failed: Lambda retries the event,
    then hands it to the function's on-failure destination."""


def handle_s3(
    event: dict[str, Any], settings: Settings | None = None, config: ProjectConfig | None = None
) -> list[ImportResult]:
    """Every record of the notification (Chalice's S3Event reads only the first), keys
    URL-decoded as S3 sends them encoded."""
    settings = settings or Settings()
    config = config or load_config(settings.config)
    results = []
    for record in event.get("Records", []):
        s3 = record.get("s3", {})
        bucket = s3.get("bucket", {}).get("name", "")
        key = unquote_plus(s3.get("object", {}).get("key", ""))
        version = s3.get("object", {}).get("versionId")
        results.append(import_notified(bucket, key, version, settings, config))
    failed = [r.key for r in results if r.status == "error"]
    if failed:
        raise ImportFailedError(f"{len(failed)} import(s) failed: {', '.join(failed)[:500]}")
    return results
