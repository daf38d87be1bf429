"""The `local` provider's workflow: CSV files into the SQLite store, solution versions trained
by the engine and stored with their model files, campaigns deployed, batch inference, and the
configuration checked (`setup`). What a write changes reaches serving at once (`state`)."""

from __future__ import annotations

import errno
import gzip
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from chalicelib import aws
from chalicelib.catalogue import normalise
from chalicelib.config import ProjectConfig
from chalicelib.csvdata import CsvError, Validation, read_rows
from chalicelib.currents.failures import CurrentsReplay
from chalicelib.currents.ingest import CurrentsReport
from chalicelib.engine.data import Interactions
from chalicelib.engine.training import train
from chalicelib.filters import FilterRequest
from chalicelib.invocations import ImportReplay
from chalicelib.providers.local import evaluations, segments
from chalicelib.providers.local.batch import BatchJob
from chalicelib.providers.local.currents import LocalCurrents
from chalicelib.providers.local.filtering import LocalFilters
from chalicelib.providers.local.loop import LocalLoop
from chalicelib.providers.local.state import ServingState
from chalicelib.providers.local.store import LocalStore
from chalicelib.segments import AttributeExpression, SegmentError
from chalicelib.settings import Settings
from chalicelib.vocabulary import (
    BatchReport,
    CatalogueLoad,
    Dataset,
    ImportMode,
    ImportReport,
    Progress,
    SetupReport,
    SolutionVersionInfo,
)


class LocalWorkflow:
    def __init__(
        self,
        settings: Settings,
        config: ProjectConfig,
        store: LocalStore,
        state: ServingState,
        filters: LocalFilters,
        *,
        loop: LocalLoop,
    ) -> None:
        self.settings, self.config = settings, config
        self.store, self.state, self.filters = store, state, filters
        self.currents = LocalCurrents(settings, config, store, loop)

    def segment(
        self, item_ids: Sequence[str] | None, attribute: str | None, top: int
    ) -> tuple[list[str], list[tuple[str, float]]]:
        """Item-(Attribute-)Affinity on the engine: the served recommendations model's scores."""
        state = self.state.current()
        served = state.campaigns.get("recommendations")
        if served is None:
            raise SegmentError("no model serves recommendations yet: run train first")
        if attribute is not None:
            expression = AttributeExpression.parse(attribute)
            fields = ((i, state.catalogue.fields_of(i) or {}) for i in state.catalogue.ids())
            item_ids = expression.items(fields)
            if not item_ids:
                raise SegmentError(f"no item of the catalogue matches {attribute!r}")
        items = list(item_ids or [])
        return items, segments.affinity(served, self.store, items, top)

    def import_currents(
        self, source: str, event_type: str | None = None, progress: Progress | None = None
    ) -> list[CurrentsReport]:
        """Braze Currents Avro files (a file or a folder) into the store."""
        if source.startswith("s3://"):
            raise ValueError("the local provider reads Currents files from disk: copy it down")
        return self.currents.import_path(Path(source), event_type, progress)

    def replay_currents(
        self, *, dry_run: bool = False, drop: Sequence[str] = ()
    ) -> list[CurrentsReplay]:
        """Nothing to replay: `import currents` here reports a file's failures as it runs."""
        raise ValueError(
            "the local provider keeps no failures queue (`import currents` reports a file's "
            "unsent records as it runs, exit code 1: run it again); on AWS run this with the "
            "stage's settings, e.g. `--stage dev`"
        )

    def replay_imports(
        self, *, dry_run: bool = False, drop: Sequence[str] = ()
    ) -> list[ImportReplay]:
        """Nothing to replay: `import` here reports a file's failures as it runs."""
        raise ValueError(
            "the local provider keeps no failures queue (`import` reports a file's errors as "
            "it runs: run it again); on AWS run this with the stage's settings, e.g. "
            "`--stage dev`"
        )

    # -- datasets ----------------------------------------------------------------------------

    def import_file(
        self, dataset: Dataset, source: str, mode: ImportMode, progress: Progress | None = None
    ) -> ImportReport:
        """A local file, or an s3:// object streamed down first, loaded into the store."""
        if not source.startswith("s3://"):
            return self._import(dataset, Path(source), mode, progress, source)
        bucket, _, key = source.removeprefix("s3://").partition("/")
        if not bucket or not key:
            raise ValueError(f"{source} is not an s3://bucket/key URI")
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / key.rsplit("/", 1)[-1]
            aws.client("s3").download_file(bucket, key, str(path))
            return self._import(dataset, path, mode, progress, source)

    def _import(
        self,
        dataset: Dataset,
        path: Path,
        mode: ImportMode,
        progress: Progress | None,
        source: str,
    ) -> ImportReport:
        if not path.is_file():  # said now: read lazily, under the store's guard, it would
            # come out as the store being unavailable ("retry later"), which no retry mends
            raise FileNotFoundError(errno.ENOENT, "no such file", source)
        validation = Validation()
        rows = read_rows(path, dataset, validation, self.config.schemas.get(dataset))
        if dataset == "items":
            rows = ((item_id, normalise(props)) for item_id, props in rows)
        if progress:
            rows = _counting(rows, progress, f"importing {dataset}", _data_lines(path))
        try:
            loaded = self.store.bulk_load(
                dataset, rows, replace=mode == "full", keep=lambda: validation.error_count == 0
            )
        except CsvError as exc:
            errors = [*validation.errors, str(exc)]
            return ImportReport(dataset, "rejected", validation.rows, 0, errors, source)
        finally:
            self.state.invalidate()
        if validation.error_count:
            errors = [*validation.errors]
            if validation.error_count > len(errors):
                errors.append(f"... {validation.error_count - len(errors)} more errors")
            return ImportReport(dataset, "rejected", validation.rows, 0, errors, source)
        return ImportReport(dataset, "imported", validation.rows, loaded, [], source)

    def load_catalogue(self, path: Path) -> CatalogueLoad:
        """The local catalogue is the items dataset: the file is imported into it."""
        report = self.import_file("items", str(path), "incremental")
        return CatalogueLoad("the local store's items", report.imported, report.errors)

    def store_popular(self, item_ids: Sequence[str]) -> str | None:
        return None  # the local provider counts popularity from its own store and models

    def setup(
        self, progress: Progress | None = None, *, dry_run: bool = False, poll_seconds: float = 15
    ) -> SetupReport:
        """Nothing to create: building the provider validated the configuration and compiled
        every filter; the report lists what it holds."""
        report = SetupReport()
        report.add("configuration", str(self.settings.config), "checked")
        for sol in self.config.solutions:
            report.add("solution", sol.name, "checked", detail=sol.recipe)
        for route, campaign in self.config.campaigns.items():
            report.add("campaign", route, "checked", detail=f"serves {campaign.solution}")
        for name, expression in self.config.filters.items():
            report.add("filter", name, "checked", detail=expression)
        return report

    # -- solution versions and campaigns -----------------------------------------------------

    def train(
        self, solution: str | None = None, progress: Progress | None = None
    ) -> list[SolutionVersionInfo]:
        solutions = [self.config.solution(solution)] if solution else self.config.solutions
        max_seq = self.store.max_seq()
        data = Interactions.from_rows(self.store.interactions(max_seq))
        infos = []
        for sol in solutions:
            stage = _prefixed(progress, sol.name) if progress else None
            events = sol.event_options()
            hpo = sol.hpo_config if sol.perform_hpo else None
            result = train(
                sol.recipe, dict(sol.hyperparameters), data, stage, events=events, hpo=hpo
            )
            version_id = f"{sol.name}-{time.strftime('%Y%m%dT%H%M%S')}-{time.time_ns() % 10**6:06d}"
            result.model.save(
                self.state.artifact(version_id), {"version_id": version_id, "solution": sol.name}
            )
            info = {
                "version_id": version_id,
                "solution": sol.name,
                "recipe": sol.recipe,
                "status": "ACTIVE",
                "params": {
                    **result.model.params.model_dump(),
                    **events.model_dump(),
                    **({"hpo": result.tuning.summary()} if result.tuning else {}),
                    **({"chosen": result.choice} if result.choice else {}),
                },
                "metrics": result.metrics,
                "counts": result.counts,
                "training_seconds": round(result.seconds, 3),
                "created": time.time(),
                "max_seq": max_seq,
            }
            if result.diagnostics is not None:  # beside the model, for the report
                evaluations.save(self.state.artifact(version_id), result.diagnostics)
            self.store.save_version(info)
            for campaign, conf in self.config.campaigns.items():
                if conf.solution == sol.name and not conf.solution_version:
                    self.store.deploy(campaign, version_id)
            self.state.invalidate()
            infos.append(_info(info, result.diagnostics))
        return infos

    def metrics(
        self, solution: str | None = None, version_id: str | None = None
    ) -> SolutionVersionInfo | None:
        """A version's metrics: the one named, else the solution's latest, else the version the
        `recommendations` campaign serves."""
        if version_id is not None:
            version = self.store.version(version_id)
        elif solution is None:
            served = self.state.current().campaigns.get("recommendations")
            version = served.version if served else None
        else:
            version = self.store.latest_version(solution)
        return self._with_evaluation(version) if version else None

    def versions(self, solution: str | None = None) -> list[SolutionVersionInfo]:
        """Every stored solution version (of one solution), newest first."""
        return [self._with_evaluation(v) for v in self.store.versions(solution)]

    def _with_evaluation(self, version: dict[str, Any]) -> SolutionVersionInfo:
        return _info(version, evaluations.load(self.state.artifact(version["version_id"])))

    def deploy(self, campaign: str, version_id: str) -> None:
        """Make `campaign` serve a stored version (Personalize's UpdateCampaign)."""
        version = self.store.version(version_id)
        if version is None:
            raise ValueError(f"no solution version {version_id!r}; see `versions`")
        conf = next((c for name, c in self.config.campaigns.items() if name == campaign), None)
        if conf is None:
            known = ", ".join(sorted(self.config.campaigns))
            raise ValueError(f"no campaign {campaign!r} in the configuration (known: {known})")
        if version["solution"] != conf.solution:
            raise ValueError(
                f"campaign {campaign!r} serves solution {conf.solution!r}; "
                f"{version_id!r} is a version of {version['solution']!r}"
            )
        self.store.deploy(campaign, version_id)
        self.state.invalidate()

    def prune(self) -> list[tuple[str, int]]:
        """Versions beyond the newest `keep_versions` of their solution that no campaign serves
        or pins: their model file and their row go (the file first: a row without its file
        would be listed but could not be deployed)."""
        keep = self.settings.keep_versions
        kept = set(self.store.campaigns().values())
        kept |= {c.solution_version for c in self.config.campaigns.values() if c.solution_version}
        newest: dict[str, int] = {}
        removed = []
        for version in self.store.versions(None):  # newest first
            rank = newest[version["solution"]] = newest.get(version["solution"], 0) + 1
            if rank <= keep or version["version_id"] in kept:
                continue
            path = self.state.artifact(version["version_id"])
            size = path.stat().st_size if path.exists() else 0
            path.unlink(missing_ok=True)
            self.store.delete_version(version["version_id"])
            removed.append((version["version_id"], size))
        return removed

    def batch(
        self,
        input_path: Path,
        output_path: Path,
        num_results: int,
        *,
        solution: str | None = None,
        flt: FilterRequest | None = None,
        progress: Progress | None = None,
    ) -> BatchReport:
        job = BatchJob(
            self.config, self.store, self.state, self.filters, num_results=num_results, flt=flt
        )
        if solution is not None:
            job.use_solution(solution)
        return job.run(input_path, output_path, progress)


def _prefixed(progress: Progress, name: str) -> Progress:
    def report(stage: str, done: int, total: int | None) -> None:
        progress(f"{name}: {stage}", done, total)

    return report


def _counting(rows: Iterator[Any], progress: Progress, stage: str, total: int) -> Iterator[Any]:
    """`rows` as they are, reporting their count against `total` every 5,000 and at the end
    (where the total becomes the rows read, so the display ends at it)."""
    progress(stage, 0, total)
    n = 0
    for n, row in enumerate(rows, start=1):
        if n % 5_000 == 0:
            progress(stage, n, max(total, n))
        yield row
    progress(stage, n, n)


def _data_lines(path: Path) -> int:
    """The file's lines after the header: its rows, unless a quoted field spans lines. One
    pass of the raw bytes (a gzipped file is inflated once more; 0.1 s for 400k rows)."""
    lines, last = 0, b"\n"
    with path.open("rb") as raw, gzip.GzipFile(fileobj=raw) if path.suffix == ".gz" else raw as fh:
        while chunk := fh.read(1 << 20):
            lines += chunk.count(b"\n")
            last = chunk[-1:]
    return max(0, lines + (last != b"\n") - 1)


def _info(version: dict[str, Any], evaluation: dict[str, Any] | None = None) -> SolutionVersionInfo:
    return SolutionVersionInfo(
        version_id=version["version_id"],
        solution=version["solution"],
        recipe=version["recipe"],
        status=version["status"],
        metrics=version["metrics"],
        counts=version["counts"],
        training_seconds=version["training_seconds"],
        created=version["created"],
        params=version["params"],
        evaluation=evaluation or {},
    )
