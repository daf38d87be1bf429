"""S3 objects read as streamed text, and plain copies of them for Personalize: nothing is ever
held whole in memory, whatever the file's size."""

from __future__ import annotations

import io
from typing import IO, Any

from chalicelib import aws
from chalicelib.csvdata import text_stream


class _S3Raw(io.RawIOBase):
    """botocore's StreamingBody as a raw stream, so gzip and TextIOWrapper read it in chunks."""

    def __init__(self, body: Any) -> None:
        self._body = body

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        chunk = self._body.read(len(buffer))
        buffer[: len(chunk)] = chunk
        return len(chunk)


def open_text(bucket: str, key: str, version: str | None) -> IO[str]:
    params = {"Bucket": bucket, "Key": key} | ({"VersionId": version} if version else {})
    body = aws.client("s3").get_object(**params)["Body"]
    raw = io.BufferedReader(_S3Raw(body), buffer_size=1 << 20)
    return text_stream(raw, gzipped=key.endswith(".gz"))


def needs_staging(bucket: str, key: str, version: str | None) -> bool:
    """Personalize reads plain UTF-8 CSV: a gzipped file or one with a byte-order mark is
    staged as a plain copy (streamed, never held whole)."""
    if key.endswith(".gz"):
        return True
    params = {"Bucket": bucket, "Key": key, "Range": "bytes=0-2"}
    head = aws.client("s3").get_object(**params | ({"VersionId": version} if version else {}))
    return bool(head["Body"].read() == b"\xef\xbb\xbf")


class _Encoded(io.RawIOBase):
    """A text stream re-encoded as UTF-8 bytes (without a BOM) for a streamed upload."""

    def __init__(self, text: IO[str]) -> None:
        self._text, self._pending = text, b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while len(self._pending) < len(buffer):
            chunk = self._text.read(1 << 16)
            if not chunk:
                break
            self._pending += chunk.encode("utf-8")
        size = min(len(buffer), len(self._pending))
        buffer[:size], self._pending = self._pending[:size], self._pending[size:]
        return size


def stage(bucket: str, key: str, version: str | None, name: str) -> str:
    staged = f"staged/{name}.csv"
    with open_text(bucket, key, version) as text:
        aws.client("s3").upload_fileobj(io.BufferedReader(_Encoded(text)), bucket, staged)
    return staged
