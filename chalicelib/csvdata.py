"""Streaming reader and validator of Personalize-layout CSV files (plain or gzipped).

Rows are read one at a time with the standard `csv` module, so memory stays flat however large the
file. Each dataset has required columns; every other column is kept as metadata.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

from chalicelib.models import MAX_ID, parse_timestamp

Dataset = Literal["interactions", "users", "items"]
REQUIRED: dict[str, tuple[str, ...]] = {
    "interactions": ("USER_ID", "ITEM_ID", "EVENT_TYPE", "TIMESTAMP"),
    "users": ("USER_ID",),
    "items": ("ITEM_ID",),
}
MAX_ERRORS = 20


class CsvError(ValueError):
    """The file cannot be read as a dataset at all (header, encoding)."""


@dataclass
class Validation:
    rows: int = 0
    valid: int = 0
    errors: list[str] = field(default_factory=list)
    error_count: int = 0

    def fail(self, row: int, reason: str) -> None:
        self.error_count += 1
        if len(self.errors) < MAX_ERRORS:
            self.errors.append(f"row {row}: {reason}")


def open_text(path: Path) -> IO[str]:
    raw: IO[bytes] = path.open("rb")
    if path.suffix == ".gz":
        raw = gzip.GzipFile(fileobj=raw)  # type: ignore[assignment]
    # utf-8-sig drops a byte-order mark; strict decoding turns bad bytes into a clear error.
    return io.TextIOWrapper(raw, encoding="utf-8-sig", errors="strict", newline="")


def _id(value: str, column: str) -> str:
    value = value.strip()
    if not value:
        raise ValueError(f"{column} is empty")
    if len(value) > MAX_ID:
        raise ValueError(f"{column} is longer than {MAX_ID} characters")
    return value


def _interaction(record: dict[str, str]) -> tuple[Any, ...]:
    value = record.get("EVENT_VALUE", "").strip()
    try:
        event_value = float(value) if value else None
    except ValueError:
        raise ValueError("EVENT_VALUE is not a number") from None
    try:
        ts = parse_timestamp(record["TIMESTAMP"])
    except ValueError as exc:
        raise ValueError(f"TIMESTAMP {exc.args[0].removeprefix('timestamp ')}") from None
    return (
        _id(record["USER_ID"], "USER_ID"),
        _id(record["ITEM_ID"], "ITEM_ID"),
        _id(record["EVENT_TYPE"], "EVENT_TYPE"),
        event_value,
        ts,
        None,
        None,
    )


def _entity(record: dict[str, str], key: str) -> tuple[str, dict[str, str]]:
    entity = _id(record[key], key)
    properties = {k: v for k, v in record.items() if k != key and v not in ("", None)}
    return entity, properties


def read_rows(path: Path, dataset: Dataset, validation: Validation) -> Iterator[tuple[Any, ...]]:
    """Valid rows of the file, converted; problems are counted in `validation` by data row
    number (1 is the first row after the header)."""
    try:
        with open_text(path) as text:
            reader = csv.reader(text)
            header = next(reader, None)
            if header is None:
                raise CsvError("the file is empty")
            columns = [h.strip().upper() for h in header]
            missing = [c for c in REQUIRED[dataset] if c not in columns]
            if missing:
                raise CsvError(f"header lacks required column(s): {', '.join(missing)}")
            if dataset != "interactions" and len(columns) < 2:
                raise CsvError("a users or items file needs at least one metadata column")
            key = REQUIRED[dataset][0] if dataset != "interactions" else ""
            for number, fields in enumerate(reader, start=1):
                validation.rows += 1
                if len(fields) != len(columns):
                    validation.fail(number, f"{len(fields)} fields, header has {len(columns)}")
                    continue
                record = dict(zip(columns, fields, strict=True))
                try:
                    row = _interaction(record) if not key else _entity(record, key)
                except ValueError as exc:
                    validation.fail(number, str(exc))
                    continue
                validation.valid += 1
                yield row
    except UnicodeDecodeError as exc:
        raise CsvError(f"the file is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except (OSError, EOFError, csv.Error, codecs.CodecRegistryError) as exc:
        raise CsvError(f"the file cannot be read: {exc}") from None
