"""`python -m chalicelib import DATASET PATH_OR_S3_URI [--mode full|incremental]`: one file, a local
path or an `s3://bucket/key` URI, through the same code as the deployed import, on either provider.

- `personalize`: an S3 object is validated and imported as `import_s3` would (report, job, item
  table); a local file is first uploaded under `imports/<dataset>/` of RECS_IMPORT_BUCKET, so the
  data Personalize reads is the data validated. The bucket's own notification for that upload
  then finds the same job name and starts nothing more.
- `local`: an S3 object is streamed to a temporary file (never held in memory), then loaded into
  the local store with the same schema validation as a local file.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from chalicelib import aws
from chalicelib.providers.base import Dataset, Progress
from chalicelib.runtime import Runtime

SUFFIXES = (".csv", ".csv.gz")


class ImportCommandError(ValueError):
    """The command's arguments cannot work; the message says why."""


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """`s3://bucket/some/key.csv` → ("bucket", "some/key.csv")."""
    parts = urlsplit(uri)
    key = parts.path.lstrip("/")
    if parts.scheme != "s3" or not parts.netloc or not key:
        raise ImportCommandError(f"{uri!r} is not an s3://BUCKET/KEY URI")
    return parts.netloc, key


def _check_suffix(name: str) -> None:
    if not name.endswith(SUFFIXES):
        raise ImportCommandError(f"{name!r}: only .csv and .csv.gz files are imported")


def run(
    rt: Runtime, dataset: Dataset, source: str, mode: str, progress: Progress | None
) -> tuple[dict[str, Any], bool]:
    """Import one file; returns (what to print, whether it was accepted)."""
    is_s3 = source.startswith("s3://")
    if rt.settings.provider == "personalize":
        return _on_personalize(rt, dataset, source, mode, progress)
    if not is_s3:
        path = Path(source)
        if not path.is_file():
            raise ImportCommandError(f"{source}: no such file")
        report = rt.provider.import_file(dataset, path, mode, progress)
        return asdict(report), report.status == "imported"
    bucket, key = parse_s3_uri(source)
    _check_suffix(key)
    suffix = ".csv.gz" if key.endswith(".gz") else ".csv"
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(tmp) / f"{dataset}{suffix}"
        body = aws.client("s3").get_object(Bucket=bucket, Key=key)["Body"]
        with local.open("wb") as out:
            shutil.copyfileobj(body, out, 1 << 20)  # chunked: flat memory
        report = rt.provider.import_file(dataset, local, mode, progress)
    return asdict(report), report.status == "imported"


def _on_personalize(
    rt: Runtime, dataset: Dataset, source: str, mode: str, progress: Progress | None
) -> tuple[dict[str, Any], bool]:
    from chalicelib import imports  # noqa: PLC0415

    if source.startswith("s3://"):
        bucket, key = parse_s3_uri(source)
        if imports.dataset_of(key) != dataset:
            # The dataset comes from the key on AWS (as for the bucket's notifications).
            raise ImportCommandError(
                f"{key!r} is not a .csv or .csv.gz under {imports.PREFIX}{dataset}/"
            )
    else:
        path = Path(source)
        if not path.is_file():
            raise ImportCommandError(f"{source}: no such file")
        _check_suffix(path.name)
        bucket = rt.settings.import_bucket
        if not bucket:
            raise ImportCommandError("RECS_IMPORT_BUCKET is not set: where should the file go?")
        key = f"{imports.PREFIX}{dataset}/{path.name}"
        aws.client("s3").upload_file(str(path), bucket, key)  # multipart, streamed
    result = imports.import_object(
        bucket, key, rt.settings, rt.config, mode=mode, progress=progress
    )
    return asdict(result), result.status in ("started", "duplicate")
