"""The `personalize` provider's workflow, as the commands run it: files imported as `import_s3`
imports them, the configuration applied (`setup`), solution versions trained and deployed
(`training`), batch inference jobs (`batch`), and the DynamoDB item table that decorates
responses and holds the fallback list (`items_table`).

Each part is imported when its command runs, so the serving Lambda never loads them. Errors of
AWS (botocore's) become `ProviderError`s with Personalize's own message, which names the
problem; usage errors (a setting or file missing) are `ValueError`s.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from chalicelib.filters import FilterRequest
from chalicelib.settings import Settings
from chalicelib.vocabulary import (
    BatchReport,
    CatalogueLoad,
    Dataset,
    ImportMode,
    ImportReport,
    Progress,
    ProviderError,
    SetupReport,
    SolutionVersionInfo,
)

if TYPE_CHECKING:
    from chalicelib.config import ProjectConfig
    from chalicelib.currents.failures import CurrentsReplay
    from chalicelib.currents.ingest import CurrentsReport
    from chalicelib.invocations import ImportReplay

T = TypeVar("T")


@contextmanager
def _aws_errors() -> Iterator[None]:
    """botocore's errors as ProviderError, with the service's message."""
    from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415

    try:
        yield
    except (ClientError, BotoCoreError) as exc:
        raise ProviderError(str(exc)) from exc


class PersonalizeWorkflow:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @property
    def config(self) -> ProjectConfig:
        from chalicelib.config import load_config  # noqa: PLC0415 - cached by path

        return load_config(self.settings.config)

    # -- datasets ----------------------------------------------------------------------------

    def import_file(
        self, dataset: Dataset, source: str, mode: ImportMode, progress: Progress | None = None
    ) -> ImportReport:
        """A local file is first uploaded under s3://RECS_IMPORT_BUCKET/imports/<dataset>/; an
        s3:// object must lie there already. Then validated, reported and imported exactly as
        `import_s3` does: a dataset import job, which runs on in Personalize ("started")."""
        from chalicelib.providers.personalize import imports  # noqa: PLC0415

        if source.startswith("s3://"):
            bucket, _, key = source.removeprefix("s3://").partition("/")
        else:
            bucket = self.settings.import_bucket
            if not bucket:
                raise ValueError("RECS_IMPORT_BUCKET is not set")
            key = imports.upload(bucket, dataset, Path(source))
        if imports.dataset_of(key) != dataset:
            raise ValueError(f"s3://{bucket}/{key} is not a .csv[.gz] under imports/{dataset}/")
        with _aws_errors():
            result = imports.import_object(
                bucket, key, self.settings, self.config, mode=mode, progress=progress
            )
        return imports.as_report(dataset, bucket, result)

    def replay_imports(
        self, *, dry_run: bool = False, drop: Sequence[str] = ()
    ) -> list[ImportReplay]:
        """The messages of RECS_IMPORT_FAILURES_QUEUE, each file imported again as `import_s3`
        imports it (`import_replay`)."""
        from chalicelib.providers.personalize import import_replay  # noqa: PLC0415

        with _aws_errors():
            return import_replay.replay(self.settings, self.config, dry_run=dry_run, drop=drop)

    def import_currents(
        self, source: str, event_type: str | None = None, progress: Progress | None = None
    ) -> list[CurrentsReport]:
        """Currents files forwarded to PutEvents as `ingest_currents` forwards them: an
        s3://bucket/key object, or local files (a file or a folder)."""
        from chalicelib.providers.personalize.currents import CurrentsForwarder  # noqa: PLC0415

        with _aws_errors():
            forwarder = CurrentsForwarder(self.settings, self.config)
            if source.startswith("s3://"):
                bucket, _, key = source.removeprefix("s3://").partition("/")
                if not bucket or not key:
                    raise ValueError(f"{source} is not an s3://bucket/key URI")
                return [forwarder.forward_object(bucket, key, progress)]
            return forwarder.forward_path(Path(source), event_type, progress)

    def replay_currents(
        self, *, dry_run: bool = False, drop: Sequence[str] = ()
    ) -> list[CurrentsReplay]:
        """The messages of RECS_CURRENTS_FAILURES_QUEUE, each file forwarded again as
        `ingest_currents` forwards it (`currents_replay`)."""
        from chalicelib.providers.personalize import currents_replay  # noqa: PLC0415
        from chalicelib.providers.personalize.currents import CurrentsForwarder  # noqa: PLC0415

        with _aws_errors():
            forwarder = CurrentsForwarder(self.settings, self.config)
            return currents_replay.replay(
                self.settings, forwarder.forward_object, dry_run=dry_run, drop=drop
            )

    def segment(
        self, item_ids: Sequence[str] | None, attribute: str | None, top: int
    ) -> tuple[list[str], list[tuple[str, float]]]:
        """Not on this provider yet: Personalize answers segments with batch segment jobs
        (CreateBatchSegmentJob on an Item-Affinity solution), which `setup` does not make."""
        from chalicelib.segments import SegmentError  # noqa: PLC0415

        raise SegmentError(
            "segments run on the local provider only for now (Personalize's batch segment "
            "jobs are not wired yet)"
        )

    def load_catalogue(self, path: Path) -> CatalogueLoad:
        """An items file into the DynamoDB item table (`RECS_ITEMS_TABLE`)."""
        from chalicelib.csvdata import Validation, read_rows  # noqa: PLC0415
        from chalicelib.providers.personalize import items_table  # noqa: PLC0415

        table = self.settings.items_table
        if not table:
            raise ValueError("RECS_ITEMS_TABLE is not set")
        validation = Validation()
        with _aws_errors():
            rows = read_rows(path, "items", validation, self.config.schemas.get("items"))
            loaded = items_table.load_items(table, rows)
        return CatalogueLoad(table, loaded, validation.errors)

    def store_popular(self, item_ids: Sequence[str]) -> str | None:
        """The fallback list, into the item table (when there is one)."""
        from chalicelib.providers.personalize import items_table  # noqa: PLC0415

        table = self.settings.items_table
        if not table:
            return None
        with _aws_errors():
            items_table.put_popular(table, item_ids)
        return table

    def setup(
        self, progress: Progress | None = None, *, dry_run: bool = False, poll_seconds: float = 15
    ) -> SetupReport:
        from chalicelib.filters.language import check_all  # noqa: PLC0415
        from chalicelib.providers.personalize.setup import setup  # noqa: PLC0415

        config = self.config
        # The grammar refuses a bad expression, with its position, before any AWS call.
        check_all(dict(config.filters))
        with _aws_errors():
            return setup(config, progress, poll_seconds=poll_seconds, dry_run=dry_run)

    # -- solution versions and campaigns -----------------------------------------------------

    def train(
        self, solution: str | None = None, progress: Progress | None = None
    ) -> list[SolutionVersionInfo]:
        from chalicelib.providers.personalize import training  # noqa: PLC0415

        # The CLI reports ValueErrors as "training failed: ..." without a traceback; the
        # message (no dataset group yet, Personalize's own reason) is what to act on.
        return _as_value_error(
            lambda: training.train(
                self.settings, self.config, solution, progress, **self._polling()
            )
        )

    def metrics(
        self, solution: str | None = None, version_id: str | None = None
    ) -> SolutionVersionInfo | None:
        from chalicelib.providers.personalize import training  # noqa: PLC0415

        with _aws_errors():
            return training.metrics(self.settings, self.config, solution, version_id)

    def versions(self, solution: str | None = None) -> list[SolutionVersionInfo]:
        from chalicelib.providers.personalize import training  # noqa: PLC0415

        with _aws_errors():
            return training.versions(self.config, solution)

    def deploy(self, campaign: str, version_id: str) -> None:
        from chalicelib.providers.personalize import training  # noqa: PLC0415

        _as_value_error(lambda: training.deploy(self.config, campaign, version_id))

    def prune(self) -> list[tuple[str, int]]:
        """Personalize keeps its solution versions itself (there is no DeleteSolutionVersion, and
        they cost nothing while no campaign serves them): nothing here to remove."""
        return []

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
        from chalicelib.providers.personalize import batch  # noqa: PLC0415

        with _aws_errors():
            return batch.run_batch(
                self.settings,
                self.config,
                input_path,
                output_path,
                num_results,
                solution=solution,
                flt=flt,
                progress=progress,
                **self._polling(),
            )

    def _polling(self) -> dict[str, Any]:
        seconds = self.settings.personalize_poll_seconds
        return {} if seconds is None else {"poll_seconds": seconds}


def _as_value_error(call: Callable[[], T]) -> T:
    try:
        with _aws_errors():
            return call()
    except ProviderError as exc:
        raise ValueError(str(exc)) from exc
