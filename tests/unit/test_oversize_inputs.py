"""Inputs too large for where they go: a CSV line past the line limit, a file of bad rows past a
full report, and a dead letter past SQS's 1 MiB."""

from __future__ import annotations

import gzip
import json
import tracemalloc
from pathlib import Path

import pytest

from chalicelib.csvdata import MAX_ERRORS, MAX_LINE_BYTES, CsvError, Validation, read_rows
from chalicelib.handlers import imports as s3_handler
from chalicelib.handlers import ingest
from tests.ingest_support import FakeEvents, Queues, events, settings
from tests.unit.test_imports import BUCKET, drop, env  # noqa: F401 - env is a fixture
from tests.unit.test_imports import config as import_config
from tests.unit.test_imports import settings as import_settings

HEADER = b"USER_ID,ITEM_ID,EVENT_TYPE,TIMESTAMP\n"


def _read_all(path: Path, validation: Validation) -> int:
    return sum(1 for _ in read_rows(path, "interactions", validation))


def test_one_huge_line_is_refused_without_holding_it(tmp_path: Path) -> None:
    path = tmp_path / "one-line.csv.gz"
    with gzip.open(path, "wb", compresslevel=9) as fh:
        fh.write(HEADER + b"u1,i1,view,1700000000\n")
        for _ in range(150):  # a 150 MB line, written in pieces
            fh.write(b"u" * 1_000_000)
    assert path.stat().st_size < 300_000
    tracemalloc.start()
    try:
        with pytest.raises(CsvError, match="line 3 is longer than"):
            _read_all(path, Validation())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 * MAX_LINE_BYTES  # a few buffers of the line limit, not the 150 MB line


def test_long_lines_under_the_limit_still_load(tmp_path: Path) -> None:
    path = tmp_path / "items.csv"
    long_text = "x" * 20_000  # a textual field at Personalize's limit
    path.write_text(f'ITEM_ID,DESCRIPTION\ni1,"{long_text}"\n')
    validation = Validation()
    rows = list(read_rows(path, "items", validation, {"DESCRIPTION": "string nullable textual"}))
    assert rows == [("i1", {"DESCRIPTION": long_text})]


def test_a_bad_file_stops_once_the_report_is_full(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes(HEADER + b"not,a,row\n" * 2_000_000)
    validation = Validation()
    with pytest.raises(CsvError, match=f"stopped after {MAX_ERRORS} invalid rows"):
        _read_all(path, validation)
    assert len(validation.errors) == MAX_ERRORS
    assert validation.rows == MAX_ERRORS + 1  # read no further than the row after a full report


def test_a_few_bad_rows_are_all_reported(tmp_path: Path) -> None:
    good = b"u1,i1,view,1700000000\n"
    path = tmp_path / "few.csv"
    path.write_bytes(HEADER + good * 100 + b"u2,i2,view,soon\n" * 3 + good * 100)
    validation = Validation()
    assert _read_all(path, validation) == 200
    assert validation.error_count == 3
    assert validation.rows == 203


def test_a_dead_letter_over_one_mib_keeps_its_reason(
    fake_events: FakeEvents, queues: Queues
) -> None:
    # An envelope of ~900 KB with an invalid event: its letter (reason + escaped body) is > 1 MiB.
    big = events("u-big", "i1")
    big["events"][0]["timestamp"] = "not a time"
    big["padding"] = "\\" * 450_000  # 900 KB as sent, escaped; doubles again in the letter
    queues.send(big, events("u-ok", "i2"))
    event = queues.receive_event()
    ingest.handle_sqs(event, settings())
    queues.lambda_deletes(event)  # the handler returned: nothing is retried
    letters = queues.dead_letters()
    assert len(letters) == 1
    letter = letters[0]
    assert letter["reason"]
    assert letter["truncated"]["bytes"] > 850_000
    assert len(letter["truncated"]["sha256"]) == 64
    assert len(json.dumps(letter)) < 1_048_576
    assert [e["itemId"] for e in fake_events.accepted] == ["i2"]


def test_dead_letters_are_sent_in_batches_under_one_mib(
    fake_events: FakeEvents, queues: Queues
) -> None:
    bodies = []
    for n in range(5):  # five ~300 KB invalid messages: 1.5 MB, more than one batch may carry
        bad = events(f"u{n}", "i1")
        bad["events"][0]["event_type"] = ""
        bad["padding"] = "p" * 300_000
        bodies.append(bad)
    queues.send(*bodies)
    event = queues.receive_event()
    ingest.handle_sqs(event, settings())
    assert len(queues.dead_letters()) == 5


def test_an_s3_import_with_a_huge_line_is_rejected_with_a_report(env) -> None:  # noqa: F811
    """The S3 path (import_s3) reads through the same guard: rejected, reported, no job."""
    s3, jobs = env
    body = gzip.compress(HEADER + b"u1,i1,view,1700000000\n" + b"u" * 60_000_000, 9)
    key = "imports/interactions/huge.csv.gz"
    (result,) = s3_handler.handle_s3(drop(s3, key, body), import_settings(), import_config())
    assert result.status == "rejected"
    assert "is longer than" in (result.reason or "")
    assert not jobs.jobs
    report = json.loads(s3.get_object(Bucket=BUCKET, Key=f"reports/{key}.json")["Body"].read())
    assert report["status"] == "rejected"


def test_an_s3_import_of_bad_rows_stops_once_the_report_is_full(env) -> None:  # noqa: F811
    s3, jobs = env
    key = "imports/interactions/bad.csv"
    assert not jobs.jobs
    body = HEADER + b"u1,i1,view,never\n" * 200_000
    (result,) = s3_handler.handle_s3(drop(s3, key, body), import_settings(), import_config())
    assert result.status == "rejected"
    assert result.rows == MAX_ERRORS + 1
    assert len(result.errors) == MAX_ERRORS
    assert "stopped after" in (result.reason or "")
    assert not jobs.jobs
