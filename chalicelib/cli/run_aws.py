"""`python -m chalicelib run-aws` (`make run-aws`): the whole AWS path of the project on one
machine, with no AWS account. Started, in order:

1. a moto server (S3, SQS, Kinesis, DynamoDB) and the Personalize emulator, each on its port;
   `AWS_ENDPOINT_URL` and `AWS_ENDPOINT_URL_PERSONALIZE*` point every client at them;
2. the stage's resources in moto: the import bucket, the events queue and its dead-letter
   queue, the events stream and the item table;
3. `setup` on the `personalize` provider (dataset group, schemas, datasets, event tracker,
   filters, solutions), then Lambda's event sources played locally (`lambda_sources`);
4. the bundled sample dropped under `imports/`: `import_s3` validates it and starts the import
   jobs, item files fill the item table;
5. `train` (a version of each solution) and `setup` again (the campaigns);
6. the API on the `personalize` provider at http://127.0.0.1:8000 (uvicorn), until Ctrl-C,
   which stops everything this command started.

Everything is kept under `--data-dir` (default `.data/aws`), emptied at each start: moto keeps
its state in memory, so the emulator's must start afresh with it.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any

from chalicelib import aws
from chalicelib.cli.lambda_sources import Sources
from chalicelib.cli.output import CommandError
from chalicelib.cli.serve import DEV_KEY, SAMPLE_DIR
from chalicelib.seam import runtime
from chalicelib.settings import PROJECT_ROOT, Settings

REGION = "us-east-1"
STAGE = {
    "RECS_PROVIDER": "personalize",
    "RECS_API_KEYS": DEV_KEY,
    "RECS_IMPORT_BUCKET": "braze-recs-local-imports",
    "RECS_IMPORT_ROLE_ARN": "arn:aws:iam::123456789012:role/braze-recs-personalize",
    "RECS_ITEMS_TABLE": "braze-recs-local-items",
    "RECS_EVENTS_QUEUE": "braze-recs-local-events",
    "RECS_DEAD_LETTER_QUEUE": "braze-recs-local-dead-letters",
    "RECS_EVENTS_STREAM": "braze-recs-local-events",
    "RECS_SERVED_TABLE": "braze-recs-local-served",
    "RECS_IMPORT_MODE": "full",
    "RECS_PERSONALIZE_POLL_SECONDS": "0.25",
}
POLL_SECONDS = 0.25
DATASETS = ("items", "users", "interactions")


def _say(started: float, text: str) -> None:
    print(f"[{time.perf_counter() - started:6.1f} s] {text}", flush=True)


def _resources() -> None:
    aws.client("s3").create_bucket(Bucket=STAGE["RECS_IMPORT_BUCKET"])
    sqs = aws.client("sqs")
    sqs.create_queue(QueueName=STAGE["RECS_DEAD_LETTER_QUEUE"])
    sqs.create_queue(QueueName=STAGE["RECS_EVENTS_QUEUE"], Attributes={"VisibilityTimeout": "30"})
    aws.client("kinesis").create_stream(StreamName=STAGE["RECS_EVENTS_STREAM"], ShardCount=1)
    aws.client("dynamodb").create_table(
        TableName=STAGE["RECS_ITEMS_TABLE"],
        KeySchema=[{"AttributeName": "item_id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "item_id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    create_served_table(aws.client("dynamodb"), STAGE["RECS_SERVED_TABLE"])


def create_served_table(client: Any, name: str) -> None:
    """The served table as deploy/infrastructure.yaml makes it (keys and TTL): what was served,
    Currents engagements and claimed Currents records."""
    client.create_table(
        TableName=name,
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    client.update_time_to_live(
        TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"}
    )


def _apply(settings: dict[str, str]) -> None:
    os.environ.update(settings)
    runtime.reset()


def _wait_for_imports(expected: int, timeout: float = 1800) -> list[dict[str, Any]]:
    """The dataset import jobs `import_s3` started, once all have finished."""
    client = aws.client("personalize")
    deadline = time.monotonic() + timeout
    while True:
        jobs = []
        for dataset in client.list_datasets(datasetGroupArn=Settings().dataset_group_arn)[
            "datasets"
        ]:
            found = client.list_dataset_import_jobs(datasetArn=dataset["datasetArn"])
            jobs += found["datasetImportJobs"]
        if len(jobs) >= expected and all(j["status"] in ("ACTIVE", "CREATE FAILED") for j in jobs):
            return jobs
        if time.monotonic() > deadline:
            raise CommandError("the sample's import jobs did not finish", 1)
        time.sleep(POLL_SECONDS)


def _first_row(path: Path) -> tuple[str, str]:
    """(user, item) of the sample's first interaction, for the curl lines."""
    with gzip.open(path, "rt", encoding="utf-8") as text:
        row = next(csv.DictReader(text))
        return str(row["USER_ID"]), str(row["ITEM_ID"])


def _first_personalized(user: str) -> bool:
    from chalicelib.api import routes  # noqa: PLC0415
    from chalicelib.api.web import Request  # noqa: PLC0415

    reply = routes.route(
        "/recommendations", Request("GET", {"x-api-key": DEV_KEY}, {"user_id": [user]})
    )
    return reply.status == 200 and reply.headers.get("X-Recommendation-Source") == "personalized"


def cmd_run_aws(args: argparse.Namespace) -> int:  # noqa: PLR0915 - one story, told in order
    from moto.server import ThreadedMotoServer  # noqa: PLC0415 - development requirements

    from chalicelib.api import server as api  # noqa: PLC0415
    from chalicelib.config import load_config  # noqa: PLC0415
    from chalicelib.emulator import server as emulator  # noqa: PLC0415
    from chalicelib.providers.personalize import training  # noqa: PLC0415

    started = time.perf_counter()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's server: no request lines
    data_dir = Path(args.data_dir).resolve()
    shutil.rmtree(data_dir, ignore_errors=True)
    moto = ThreadedMotoServer(ip_address=args.host, port=args.moto_port, verbose=False)
    moto.start()
    moto_url = f"http://{args.host}:{args.moto_port}"
    fake = {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local"}
    os.environ.update({**fake, "AWS_DEFAULT_REGION": REGION, "AWS_ENDPOINT_URL": moto_url})
    os.environ.pop("AWS_PROFILE", None)
    os.environ.pop("AWS_SESSION_TOKEN", None)
    running = emulator.start(data_dir / "emulator", args.host, args.emulator_port)
    for service in ("PERSONALIZE", "PERSONALIZE_RUNTIME", "PERSONALIZE_EVENTS"):
        os.environ[f"AWS_ENDPOINT_URL_{service}"] = running.url
    aws.reset()
    _say(started, f"moto server on {moto_url}, Personalize emulator on {running.url}")
    sources: Sources | None = None
    try:
        _resources()
        _apply(STAGE)
        report = runtime.current().workflow.setup(None, poll_seconds=POLL_SECONDS)
        _apply(report.settings)
        _say(started, f"setup: dataset group {report.settings['RECS_DATASET_GROUP_ARN']}")
        sources = Sources(
            STAGE["RECS_EVENTS_QUEUE"],
            STAGE["RECS_EVENTS_STREAM"],
            STAGE["RECS_IMPORT_BUCKET"],
            REGION,
        )
        sources.start()
        s3 = aws.client("s3")
        sample = Path(args.sample)
        for dataset in DATASETS:
            key = f"imports/{dataset}/{dataset}.csv.gz"
            s3.upload_file(str(sample / f"{dataset}.csv.gz"), STAGE["RECS_IMPORT_BUCKET"], key)
            _say(started, f"dropped s3://{STAGE['RECS_IMPORT_BUCKET']}/{key}")
        jobs = _wait_for_imports(len(DATASETS))
        failed = [j for j in jobs if j["status"] != "ACTIVE"]
        if failed:
            raise CommandError(f"a dataset import job failed: {failed}", 1)
        _say(started, f"{len(jobs)} dataset import jobs ACTIVE (import_s3 → Personalize)")
        settings = Settings()
        config = load_config(settings.config)
        for info in training.train(settings, config, None, None, poll_seconds=POLL_SECONDS):
            ndcg = info.metrics.get("normalized_discounted_cumulative_gain_at_10", 0.0)
            _say(started, f"trained {info.version_id} (NDCG@10 {ndcg:.3f})")
        _apply(runtime.current().workflow.setup(None, poll_seconds=POLL_SECONDS).settings)
        user, item = _first_row(sample / "interactions.csv.gz")
        if _first_personalized(user):
            _say(started, f"first personalized answer for user {user}")
        base = f"http://{args.host}:{args.port}"
        print(
            "\nThe AWS path, offline. Try:\n\n"
            f"  curl -H 'x-api-key: {DEV_KEY}' '{base}/recommendations?user_id={user}'\n"
            f"  curl -H 'x-api-key: {DEV_KEY}' -H 'content-type: application/json' "
            f'-d \'{{"user_id": "{user}", "session_id": "s1", "events": '
            f'[{{"event_type": "purchase", "item_id": "{item}"}}]}}\' {base}/events\n\n'
            "An event travels HTTP → SQS → ingest_sqs → PutEvents and changes that user's next "
            "recommendations. Ctrl-C stops everything.\n",
            flush=True,
        )
        api.run(args.host, args.port, 1)
    finally:
        if sources is not None:
            sources.close()
        running.stop()
        moto.stop()
    return 0


def add_command(sub: Any) -> None:
    s = sub.add_parser("run-aws", help="the whole AWS path on one machine (moto + emulator)")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8000, help="the API")
    s.add_argument("--emulator-port", type=int, default=8001)
    s.add_argument("--moto-port", type=int, default=5000)
    s.add_argument("--data-dir", default=str(PROJECT_ROOT / ".data" / "aws"))
    s.add_argument(
        "--sample", default=str(SAMPLE_DIR),
        help="a directory of interactions/items/users .csv.gz files (default: the bundled shop)",
    )  # fmt: skip
    s.set_defaults(func=cmd_run_aws)
