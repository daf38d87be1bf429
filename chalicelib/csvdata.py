"""Streaming validation of Personalize-layout CSV files (plain or gzipped) against a dataset's
schema from the declarative configuration.

Rows are read one at a time with the standard `csv` module over a text stream, so memory stays
flat however large the file. The header is checked once and turned into one converter per column
(id, long, float, boolean, string with its length limit), so that checking a row is a handful of
function calls: hand-written because a pydantic model per row is three times slower
(bench/imports.py) and gives no better messages. What Personalize checks on import is checked
here too: required columns, no column outside the schema, field counts, id lengths, epoch-second
timestamps, numeric and boolean types, strict UTF-8.
"""

from __future__ import annotations

import csv
import gzip
import io
import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from chalicelib.payloads import MAX_EPOCH_SECONDS, MAX_ID
from chalicelib.vocabulary import Dataset

KEYS: dict[str, str] = {"users": "USER_ID", "items": "ITEM_ID"}
REQUIRED: dict[str, tuple[str, ...]] = {
    "interactions": ("USER_ID", "ITEM_ID", "EVENT_TYPE", "TIMESTAMP"),
    "users": ("USER_ID",),
    "items": ("ITEM_ID",),
}
MAX_ERRORS = 20  # the report lists this many; the next bad row stops the file there
# Longer than any row Personalize takes (a few textual fields of 20,000 characters): past it a file
# is refused without reading the rest of the line (one 150 MB line would be held whole).
MAX_LINE_BYTES = 1 << 20
MAX_CATEGORICAL = 1_000  # Personalize's limit for a categorical string value
MAX_TEXTUAL = 20_000  # and for a textual one
csv.field_size_limit(1_000_000)  # a textual field may be long; a runaway quote still stops


class CsvError(ValueError):
    """The file cannot be read as the dataset at all (empty, header, encoding, a runaway line),
    or has more bad rows than a report lists."""


@dataclass
class Validation:
    """Counts of a file's rows and the first errors, by data row (1 = the row after the header)."""

    rows: int = 0
    valid: int = 0
    errors: list[str] = field(default_factory=list)
    details: list[dict[str, Any]] = field(default_factory=list)
    error_count: int = 0
    columns: list[str] = field(default_factory=list)

    def fail(self, row: int, reason: str, column: str | None = None) -> None:
        self.error_count += 1
        if len(self.errors) < MAX_ERRORS:
            self.errors.append(f"row {row}: {reason}")
            self.details.append({"row": row, "column": column, "reason": reason})


def open_text(path: Path) -> IO[str]:
    return text_stream(path.open("rb"), gzipped=path.name.endswith(".gz"))


class _LineLimit(io.RawIOBase):
    """The bytes of `raw` as they are, refused (CsvError) once a line runs past `limit` bytes.
    Checked per chunk, not per line: the common case costs a search of each 64 KB chunk."""

    def __init__(self, raw: IO[bytes], limit: int) -> None:
        self._raw, self._limit = raw, limit
        self._run = 0  # bytes since the last newline
        self._lines = 1

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        chunk = self._raw.read(len(buffer))
        size = len(chunk)
        buffer[:size] = chunk
        last = chunk.rfind(b"\n")
        if last < 0:
            self._run += size
        else:
            self._lines += chunk.count(b"\n")
            self._run = size - last - 1
        if self._run > self._limit:
            raise CsvError(
                f"line {self._lines:,} is longer than {self._limit:,} bytes: not a CSV row "
                "(a missing line break or a runaway quote?)"
            )
        return size


def text_stream(raw: IO[bytes], gzipped: bool, line_limit: int = MAX_LINE_BYTES) -> IO[str]:
    if gzipped:
        raw = gzip.GzipFile(fileobj=raw)  # type: ignore[assignment]
    limited = io.BufferedReader(_LineLimit(raw, line_limit), buffer_size=1 << 16)
    # utf-8-sig drops a byte-order mark; strict decoding turns bad bytes into a clear error;
    # newline="" lets the csv module handle CRLF and line breaks inside quoted fields.
    return io.TextIOWrapper(limited, encoding="utf-8-sig", errors="strict", newline="")


# -- converters: value text -> typed value, ValueError with a reason ------------------------------

Converter = Callable[[str], Any]


def _id(column: str) -> Converter:
    def convert(value: str) -> str:
        if not value or len(value) > MAX_ID:
            raise ValueError(f"{column} is empty" if not value else f"{column} is over 256 chars")
        return value

    return convert


def _timestamp(value: str) -> int:
    if not value.isdigit() or not value.isascii():
        raise ValueError(f"TIMESTAMP {value[:40]!r} is not epoch seconds")
    seconds = int(value)
    if seconds > MAX_EPOCH_SECONDS:
        raise ValueError("TIMESTAMP is after 2100: milliseconds instead of seconds?")
    return seconds


def _nullable(convert: Converter) -> Converter:
    def maybe(value: str) -> Any:
        return convert(value) if value else None

    return maybe


def _integer(column: str) -> Converter:
    def convert(value: str) -> Any:
        try:
            return int(value)
        except ValueError:
            raise ValueError(f"{column} {value[:40]!r} is not an integer") from None

    return convert


def _number(column: str) -> Converter:
    def convert(value: str) -> Any:
        try:
            number = float(value)
        except ValueError:
            raise ValueError(f"{column} {value[:40]!r} is not a number") from None
        if not math.isfinite(number):
            raise ValueError(f"{column} is not a finite number")
        return number

    return convert


def _boolean(column: str) -> Converter:
    def convert(value: str) -> Any:
        lowered = value.lower()
        if lowered not in ("true", "false"):
            raise ValueError(f"{column} {value[:40]!r} is not true or false")
        return lowered == "true"

    return convert


def _string(column: str, limit: int) -> Converter:
    def convert(value: str) -> Any:
        if len(value) > limit:
            raise ValueError(f"{column} is over {limit:,} characters")
        return value

    return convert


def _typed(column: str, kind: str, flags: set[str]) -> Converter:
    if kind in ("long", "int"):
        convert = _integer(column)
    elif kind in ("float", "double"):
        convert = _number(column)
    elif kind == "boolean":
        convert = _boolean(column)
    else:
        convert = _string(column, MAX_TEXTUAL if "textual" in flags else MAX_CATEGORICAL)
    typed: Any
    if "nullable" in flags:
        typed = _nullable(convert)
    else:

        def typed(value: str) -> Any:
            if not value:
                raise ValueError(f"{column} is empty and the schema does not allow it")
            return convert(value)

    # What `compile_row` inlines: (check, length limit, nullable).
    check = {"long": "integer", "int": "integer", "float": "number", "double": "number"}
    limit = MAX_TEXTUAL if "textual" in flags else MAX_CATEGORICAL
    typed.kind = (check.get(kind, kind), limit, "nullable" in flags)
    return typed  # type: ignore[no-any-return]


def converters(dataset: Dataset, columns: list[str], schema: Mapping[str, str]) -> list[Converter]:
    """One converter per header column; CsvError when the header does not fit the schema."""
    fields = {name.upper(): spec.split() for name, spec in schema.items()}
    missing = [c for c in REQUIRED[dataset] if c not in columns]
    missing += [
        name
        for name, (_, *flags) in fields.items()
        if "nullable" not in flags and name not in columns and name not in missing
    ]
    if missing:
        raise CsvError(f"the header lacks the column(s) {', '.join(missing)}")
    unknown = [c for c in columns if c not in fields and c not in REQUIRED[dataset]]
    if unknown:
        raise CsvError(
            f"column(s) {', '.join(unknown)} are not in the {dataset} schema "
            f"(add them under [schemas.{dataset}] in recs.toml)"
        )
    if len(set(columns)) != len(columns):
        raise CsvError("the header names a column twice")
    if dataset != "interactions" and len(columns) < 2:
        raise CsvError(f"a {dataset} file needs at least one metadata column")
    result: list[Converter] = []
    for column in columns:
        if column in ("USER_ID", "ITEM_ID", "EVENT_TYPE"):
            result.append(_id(column))
        elif column == "TIMESTAMP":
            result.append(_timestamp)
        else:
            kind, *flags = fields.get(column, ["string", "nullable"])
            result.append(_typed(column, kind, set(flags)))
    return result


# -- reading ----------------------------------------------------------------------------------


def read_rows(
    path: Path,
    dataset: Dataset,
    validation: Validation,
    schema: Mapping[str, str] | None = None,
) -> Iterator[tuple[Any, ...]]:
    """Valid rows of the file at `path` (see `read_text`)."""
    with open_text(path) as text:
        yield from read_text(text, dataset, validation, schema)


def read_text(
    text: IO[str],
    dataset: Dataset,
    validation: Validation,
    schema: Mapping[str, str] | None = None,
) -> Iterator[tuple[Any, ...]]:
    """Valid rows, converted: interactions as (user, item, event type, event value, timestamp,
    None, None); users and items as (id, {FIELD: value} without empty fields). Row problems
    are counted in `validation`; a file that cannot be read at all raises CsvError."""
    if schema is None:
        from chalicelib.config import DEFAULT_SCHEMAS  # noqa: PLC0415

        schema = DEFAULT_SCHEMAS[dataset]
    try:
        reader = csv.reader(text)
        header = next(reader, None)
        if header is None or not any(h.strip() for h in header):
            raise CsvError("the file is empty")
        columns = [h.strip().upper() for h in header]
        validation.columns = columns
        convert = converters(dataset, columns, schema)
        yield from _rows(reader, dataset, columns, convert, validation)
    except UnicodeDecodeError as exc:
        raise CsvError(f"the file is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except (OSError, EOFError, csv.Error) as exc:
        raise CsvError(f"the file cannot be read: {exc}") from None


def _rows(
    reader: Iterator[list[str]],
    dataset: Dataset,
    columns: list[str],
    convert: list[Converter],
    validation: Validation,
) -> Iterator[tuple[Any, ...]]:
    width = len(columns)
    pairs = list(enumerate(convert))
    blank = 0  # blank lines (e.g. at the end) are skipped and not counted as rows
    number = 0
    try:
        # map() over the generated row function keeps the common case in C but for one call.
        for number, row in enumerate(map(compile_row(dataset, columns, convert), reader), 1):
            if type(row) is tuple:
                yield row
                continue
            if not row:
                blank += 1
                continue
            # Rare path: the same checks one column at a time, for the reason and the column.
            at = number - blank
            if validation.error_count >= MAX_ERRORS:  # the report is full: a bad file stops here
                raise CsvError(
                    f"row {at} is invalid too: stopped after {MAX_ERRORS} invalid rows "
                    "(fix those listed and send the file again)"
                )
            if len(row) != width:
                validation.fail(at, f"{len(row)} fields where the header has {width}")
                continue
            for i, conv in pairs:
                try:
                    conv(row[i])
                except ValueError as exc:
                    validation.fail(at, str(exc), columns[i])
                    break
            else:  # not expected: the row function accepts exactly what the converters accept
                validation.fail(at, "invalid row")
    finally:
        validation.rows = number - blank
        validation.valid = validation.rows - validation.error_count


def compile_row(
    dataset: Dataset, columns: list[str], convert: list[Converter]
) -> Callable[[list[str]], tuple[Any, ...] | list[str]]:
    """One function checking and converting a whole row, generated once per header.

    It returns the converted row as a tuple, or the row's fields as they came (a list) when
    anything is wrong with it; the caller then asks the per-column converters for the reason,
    so both always agree on what is valid. Why generated code: a loop over per-column
    converters costs calls, a list and a zip per row; straight-line code with the common checks
    inlined (id and string lengths, epoch seconds, numbers) is about twice as fast
    (bench/imports.py), which is what makes a million-row file a few seconds of Lambda time.
    """
    names = [f"v{i}" for i in range(len(columns))]
    scope: dict[str, Any] = {"finite": math.isfinite}
    checks: list[str] = []
    for i, (column, conv) in enumerate(zip(columns, convert, strict=True)):
        checks.extend(_check(names[i], column, conv, f"c{i}"))
        scope[f"c{i}"] = conv
    at = dict(zip(columns, names, strict=True))
    if dataset == "interactions":
        value = at.get("EVENT_VALUE", "None")
        checks.append(
            f"return ({at['USER_ID']}, {at['ITEM_ID']}, {at['EVENT_TYPE']}, {value}, "
            f"{at['TIMESTAMP']}, None, None)"
        )
    else:
        key = at[KEYS[dataset]]
        # Column names reach the source only as repr() string literals, never as code.
        meta = ", ".join(f"{c!r}: {v}" for c, v in at.items() if v != key)
        checks.append(f"props = {{{meta}}}")
        checks.append(f"return ({key}, {{k: x for k, x in props.items() if x is not None}})")
    source = "\n".join(
        [
            "def row(f):",
            f"    if len(f) != {len(columns)}: return f",
            "    try:",
            f"        {', '.join(names)}, = f",
            *(f"        {line}" for line in checks),
            "    except Exception:",
            "        return f",
        ]
    )
    exec(source, scope)
    return scope["row"]  # type: ignore[no-any-return]


def _check(v: str, column: str, conv: Converter, name: str) -> list[str]:
    """Source lines checking and converting the variable `v` of one column; they raise
    (anything) when the value is wrong."""
    if column in ("USER_ID", "ITEM_ID", "EVENT_TYPE"):
        return [f"if not {v} or len({v}) > {MAX_ID}: raise ValueError"]
    if column == "TIMESTAMP":
        return [
            f"if not ({v}.isdigit() and {v}.isascii()): raise ValueError",
            f"{v} = int({v})",
            f"if {v} > {MAX_EPOCH_SECONDS}: raise ValueError",
        ]
    kind = getattr(conv, "kind", None)
    if kind is None:  # a converter with no inlined form: call it
        return [f"{v} = {name}({v})"]
    typ, limit, nullable = kind
    inline = {
        "string": [f"if len({v}) > {limit}: raise ValueError"],
        "integer": [f"{v} = int({v})"],
        "number": [f"{v} = float({v})", f"if not finite({v}): raise ValueError"],
    }.get(typ, [f"{v} = {name}({v})"])
    if nullable:
        return [f"if {v}:", *(f"    {line}" for line in inline), f"else: {v} = None"]
    return [f"if not {v}: raise ValueError", *inline]
