"""Braze Currents files to PutEvents (`ingest_currents`, and `import currents` on AWS).

The Avro object is streamed from S3 (fastavro reads the body as it arrives); each chunk's
records are claimed in the served table (`DynamoLoop.claim`: conditional writes, a lease until
marked done once accepted, so that a function killed between the two loses nothing), then sent
grouped by user, ten events a call, each under an event id derived from its Currents id. A
call Personalize refuses as invalid is sent again event by event to find the bad one, which
goes to the dead-letter queue with the reason (`RECS_DEAD_LETTER_QUEUE`, as `ingest_sqs`
does); a failure that may pass (throttling, 5xx, no tracker yet) releases the claims, and the
handler raises so that Lambda delivers the file again: what was accepted is then a duplicate.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from chalicelib import aws
from chalicelib.config import ProjectConfig
from chalicelib.currents.avro import event_type_of, records
from chalicelib.currents.files import avro_files
from chalicelib.currents.ingest import CurrentsReport, Verdict, ingest
from chalicelib.currents.mapping import Mapped, Mapper
from chalicelib.providers.personalize.ingest import calls as pe
from chalicelib.providers.personalize.ingest import requeue
from chalicelib.providers.personalize.loop import DynamoLoop
from chalicelib.settings import Settings
from chalicelib.vocabulary import Progress

log = logging.getLogger("recs.currents")
CALL_THREADS = 8


class CurrentsForwarder:
    def __init__(self, settings: Settings, config: ProjectConfig, client: Any = None) -> None:
        self.settings = settings
        self.loop = DynamoLoop(settings)
        self.mapper = Mapper(config.currents, settings.item_url_template, self.loop.served_to)
        self.client = client if client is not None else aws.client("personalize-events")

    def forward_object(
        self, bucket: str, key: str, progress: Progress | None = None
    ) -> CurrentsReport:
        body = aws.client("s3").get_object(Bucket=bucket, Key=key)["Body"]
        try:
            return self.forward(body, f"s3://{bucket}/{key}", event_type_of(key), progress)
        finally:
            body.close()

    def forward_path(
        self, path: Path, event_type: str | None = None, progress: Progress | None = None
    ) -> list[CurrentsReport]:
        reports = []
        for file in avro_files(path):
            with file.open("rb") as stream:
                kind = event_type_of(file.as_posix()) or event_type
                reports.append(self.forward(stream, str(file), kind, progress))
        return reports

    def forward(
        self,
        stream: IO[bytes],
        source: str,
        event_type: str | None,
        progress: Progress | None = None,
    ) -> CurrentsReport:
        report = CurrentsReport(source, event_type)
        ingest(records(stream), report, self.mapper, self.loop, self._send, progress=progress)
        line = {"handler": "ingest_currents", **report.as_dict()}
        log.info(json.dumps(line, default=str)[:4000])
        return report

    # -- PutEvents ---------------------------------------------------------------------------

    def _send(self, mapped: Sequence[Mapped]) -> Mapping[str, tuple[Verdict, str]]:
        verdicts: dict[str, tuple[Verdict, str]] = {}
        if not mapped:
            return verdicts
        if not self.settings.tracking_id:
            return {m.record_id: ("retry", "RECS_TRACKING_ID is not set") for m in mapped}
        users: dict[tuple[str, str], list[Mapped]] = {}
        for m in mapped:
            users.setdefault((m.user_id, m.session_id), []).append(m)
        calls = [
            group[start : start + pe.MAX_PER_CALL]
            for group in users.values()
            for start in range(0, len(group), pe.MAX_PER_CALL)
        ]
        # PutEvents takes one user a call, and a Currents file holds many users: calls go out
        # side by side (boto3 clients are thread-safe), well under Personalize's 1,000 a second.
        with ThreadPoolExecutor(CALL_THREADS) as pool:
            list(pool.map(lambda call: self._call(call, verdicts), calls))
        invalid = [m for m in mapped if verdicts[m.record_id][0] == "invalid"]
        if invalid:
            self._dead_letter(invalid, verdicts)
        return verdicts

    def _call(self, group: list[Mapped], verdicts: dict[str, tuple[Verdict, str]]) -> None:
        first = group[0]
        entries = [_entry(m) for m in group]
        result = pe.put_events(
            self.client, self.settings.tracking_id, first.user_id, first.session_id, entries
        )
        if result.verdict == "invalid" and len(group) > 1:
            for one in group:  # find the bad one; the others go on their own
                self._call([one], verdicts)
            return
        for m in group:
            verdicts[m.record_id] = (result.verdict, result.reason)

    def _dead_letter(
        self, invalid: Sequence[Mapped], verdicts: dict[str, tuple[Verdict, str]]
    ) -> None:
        bodies = [
            json.dumps(
                {
                    "reason": verdicts[m.record_id][1],
                    "source": "currents",
                    "record_id": m.record_id,
                    "user_id": m.user_id,
                    "event": m.entry,
                },
                default=str,
                separators=(",", ":"),
            )
            for m in invalid
        ]
        failed = requeue.send_to(self.settings.dead_letter_queue, bodies)
        for n in failed:  # a letter the queue cannot take: retried with the file, not lost
            verdicts[invalid[n].record_id] = ("retry", "the dead-letter queue refused it")


def _entry(m: Mapped) -> dict[str, Any]:
    assert m.entry is not None
    # An aware datetime: the same epoch seconds, without botocore's timestamp parsing.
    return {**m.entry, "sentAt": datetime.fromtimestamp(m.entry["sentAt"], UTC)}
