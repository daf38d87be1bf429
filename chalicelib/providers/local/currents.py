"""Braze Currents files into the `local` store (`python -m chalicelib import currents PATH`):
the same mapping and once-per-record rule as `ingest_currents`, with the SQLite store as the
event sink (each event under its Currents-derived id, stored once) and the local loop keeping
the claims and engagements."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from chalicelib.config import ProjectConfig
from chalicelib.currents.avro import event_type_of, records
from chalicelib.currents.files import avro_files
from chalicelib.currents.ingest import CurrentsReport, Verdict, ingest
from chalicelib.currents.mapping import Mapped, Mapper
from chalicelib.providers.local.loop import LocalLoop
from chalicelib.providers.local.store import LocalStore
from chalicelib.settings import Settings
from chalicelib.vocabulary import Progress


class LocalCurrents:
    def __init__(
        self, settings: Settings, config: ProjectConfig, store: LocalStore, loop: LocalLoop
    ) -> None:
        self.store, self.loop = store, loop
        self.mapper = Mapper(config.currents, settings.item_url_template, loop.served_to)

    def import_path(
        self, path: Path, event_type: str | None = None, progress: Progress | None = None
    ) -> list[CurrentsReport]:
        """Each `.avro` file of `path`; its event type from its key (Currents' layout) or,
        for a file outside that layout, `event_type`."""
        reports = []
        for file in avro_files(path):
            kind = event_type_of(file.as_posix()) or event_type
            report = CurrentsReport(str(file), kind)
            with file.open("rb") as stream:
                ingest(
                    records(stream), report, self.mapper, self.loop, self._send, progress=progress
                )
            reports.append(report)
        return reports

    def _send(self, mapped: Sequence[Mapped]) -> Mapping[str, tuple[Verdict, str]]:
        """Item events into the store; item-less ones (Content Cards) have nothing for the
        engine to learn and count as taken (their engagement is kept)."""
        rows = [
            {
                "user_id": m.user_id,
                "session_id": m.session_id,
                "item_id": m.entry["itemId"],
                "event_type": m.entry["eventType"],
                "event_value": m.entry.get("eventValue"),
                "ts": m.entry["sentAt"],
                "event_id": m.entry["eventId"],
                "recommendation_id": m.entry.get("recommendationId"),
                "impression": "|".join(m.entry["impression"]) if "impression" in m.entry else None,
                "properties": None,
            }
            for m in mapped
            if m.entry is not None and "itemId" in m.entry
        ]
        if rows:
            self.store.add_events(rows)
        return {m.record_id: ("accepted", "") for m in mapped}
