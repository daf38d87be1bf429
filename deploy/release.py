"""`python -m deploy deploy --stage STAGE`: Chalice's own deploy of a synced stage, with what
Chalice 1.34 cannot set.

- ReportBatchItemFailures on the SQS mapping of `ingest_sqs`: Chalice's client creates and
  updates event source mappings with batch size and window only, so its two calls are wrapped to
  add `FunctionResponseTypes` for SQS sources. The function's `RECS_SQS_BATCH_ITEM_FAILURES=true`
  is set in the same deploy, and an existing mapping is switched on before the function's new
  configuration lands: a function that reports partial failures never runs behind a mapping
  that ignores them (Lambda would then delete the failed messages). A plain `chalice deploy`
  sets neither, and the handler falls back to deleting what it finished and raising.
- An on-failure destination for each S3-triggered function, its own queue of the stack:
  `import_s3`'s import failures queue and `ingest_currents`' Currents failures queue, so an S3
  event that still fails after Lambda's two retries is kept, not dropped. A Currents file lands
  there mostly when its retries all came within the claims' lease of a delivery that died;
  `python -m chalicelib replay-currents` sends it once the lease is over.
- Bytecode in the zip (`deploy/chalice_compiled.py`).

The stage is checked first (`deploy.stage.check_stage`): a stage `sync` has not filled is
refused rather than deployed with missing or guessed names.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from pathlib import Path
from typing import Any

from deploy import chalice_compiled
from deploy.stage import PROJECT_ROOT, StageError, check_stage

RESPONSE_TYPES = ["ReportBatchItemFailures"]
BATCH_FAILURES = {"RECS_SQS_BATCH_ITEM_FAILURES": "true"}
IMPORT_RETRIES = 2  # Lambda's asynchronous default, stated
# The S3-triggered functions and the setting naming each one's on-failure destination queue.
FAILURE_DESTINATIONS = {
    "import_s3": "RECS_IMPORT_FAILURES_QUEUE",
    "ingest_currents": "RECS_CURRENTS_FAILURES_QUEUE",
}


def _is_sqs(arn: str) -> bool:
    return arn.startswith("arn:") and arn.split(":")[2] == "sqs"


@contextmanager
def chalice_wiring() -> Iterator[None]:
    """While it lasts, Chalice's event-source calls add FunctionResponseTypes for SQS sources
    and `ingest_sqs` gets RECS_SQS_BATCH_ITEM_FAILURES=true; everything is put back after."""
    from chalice.awsclient import TypedAWSClient  # noqa: PLC0415 - a development dependency
    from chalice.config import Config  # noqa: PLC0415

    create = TypedAWSClient.create_lambda_event_source
    update = TypedAWSClient.update_lambda_event_source
    variables = Config.environment_variables

    @wraps(create)
    def create_lambda_event_source(self: Any, event_source_arn: str, *args: Any, **kw: Any) -> Any:
        if not _is_sqs(event_source_arn):
            return create(self, event_source_arn, *args, **kw)
        return _with_response_types(self, lambda: create(self, event_source_arn, *args, **kw))

    @wraps(update)
    def update_lambda_event_source(self: Any, event_uuid: str, *args: Any, **kw: Any) -> Any:
        arn = self._client("lambda").get_event_source_mapping(UUID=event_uuid)["EventSourceArn"]
        if not _is_sqs(arn):
            return update(self, event_uuid, *args, **kw)
        return _with_response_types(self, lambda: update(self, event_uuid, *args, **kw))

    def environment_variables(self: Any) -> dict[str, str]:
        found = dict(variables.fget(self))  # type: ignore[union-attr]
        if getattr(self, "function_name", None) == "ingest_sqs":
            found.update(BATCH_FAILURES)
        return found

    TypedAWSClient.create_lambda_event_source = create_lambda_event_source  # type: ignore[method-assign]
    TypedAWSClient.update_lambda_event_source = update_lambda_event_source  # type: ignore[method-assign]
    Config.environment_variables = property(environment_variables)  # type: ignore[method-assign,assignment]
    try:
        yield
    finally:
        TypedAWSClient.create_lambda_event_source = create  # type: ignore[method-assign]
        TypedAWSClient.update_lambda_event_source = update  # type: ignore[method-assign]
        Config.environment_variables = variables  # type: ignore[method-assign]


def _with_response_types(self: Any, call: Callable[[], Any]) -> Any:
    """Run Chalice's create/update with FunctionResponseTypes added to the Lambda request."""
    events = self._client("lambda").meta.events
    names = [f"provide-client-params.lambda.{op}EventSourceMapping" for op in ("Create", "Update")]
    for name in names:
        events.register(name, _add_response_types)
    try:
        return call()
    finally:
        for name in names:
            events.unregister(name, _add_response_types)


def _add_response_types(params: dict[str, Any], **_: Any) -> None:
    params["FunctionResponseTypes"] = RESPONSE_TYPES


def _deployed(project_dir: Path, stage: str) -> dict[str, dict[str, Any]]:
    """Chalice's record of the stage's deployed resources, by name ({} before the first)."""
    path = project_dir / ".chalice" / "deployed" / f"{stage}.json"
    if not path.is_file():
        return {}
    return {r["name"]: r for r in json.loads(path.read_text()).get("resources", [])}


def prepare(project_dir: Path, stage: str, session: Any) -> None:
    """Switch an existing SQS mapping to partial batch responses before Chalice deploys the
    function that returns them."""
    for resource in _deployed(project_dir, stage).values():
        if resource.get("resource_type") == "sqs_event" and resource.get("event_uuid"):
            session.client("lambda").update_event_source_mapping(
                UUID=resource["event_uuid"], FunctionResponseTypes=RESPONSE_TYPES
            )


def finish(project_dir: Path, stage: str, session: Any) -> dict[str, dict[str, Any]]:
    """Give each S3-triggered function its on-failure destination; Lambda's answer by function
    (a function the stage does not deploy is left out)."""
    deployed = _deployed(project_dir, stage)
    config = json.loads((project_dir / ".chalice" / "config.json").read_text())
    variables = {
        **config.get("environment_variables", {}),
        **config["stages"][stage].get("environment_variables", {}),
    }
    answers = {}
    for name, setting in FAILURE_DESTINATIONS.items():
        function = deployed.get(name)
        if function is None:
            continue
        _, _, _, region, account, _ = function["lambda_arn"].split(":", 5)
        queue = f"arn:aws:sqs:{region}:{account}:{variables[setting]}"
        answers[name] = session.client("lambda").put_function_event_invoke_config(
            FunctionName=function["lambda_arn"],
            MaximumRetryAttempts=IMPORT_RETRIES,
            DestinationConfig={"OnFailure": {"Destination": queue}},
        )
    return answers


def deploy(
    stage: str,
    project_dir: Path = PROJECT_ROOT,
    chalice_args: tuple[str, ...] = (),
    *,
    bytecode: bool = True,
) -> int:
    """Check the stage, deploy it with Chalice and set what Chalice cannot; an exit code."""
    import boto3  # noqa: PLC0415

    problems = check_stage(project_dir, stage)
    if problems:
        raise StageError("\n".join(problems))
    session = boto3.session.Session()
    if bytecode:
        chalice_compiled.install()
    prepare(project_dir, stage, session)
    argv = ["--project-dir", str(project_dir), "deploy", "--stage", stage, *chalice_args]
    with chalice_wiring():
        code = run_chalice(argv)
    if code:
        return code
    finish(project_dir, stage, session)
    return 0


def run_chalice(argv: list[str]) -> int:
    """Chalice's CLI in this process (so that the wrapped calls apply); its exit code. `app` is
    imported afresh, as a new `chalice` process would, so its event sources are the stage's."""
    from chalice.cli import main as chalice_main  # noqa: PLC0415

    saved, loaded = sys.argv, sys.modules.pop("app", None)
    environ, path = dict(os.environ), list(sys.path)  # Chalice sets the stage's variables
    sys.argv = ["chalice", *argv]
    try:
        code = chalice_main()
    except SystemExit as done:
        code = done.code
    finally:
        sys.argv = saved
        sys.path[:] = path
        os.environ.clear()
        os.environ.update(environ)
        sys.modules.pop("app", None)
        if loaded is not None:
            sys.modules["app"] = loaded
    return int(code or 0)
