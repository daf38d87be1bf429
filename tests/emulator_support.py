"""The Personalize emulator for tests: served by uvicorn on a free port in this process, with
moto (`mock_aws`) answering S3 and the other AWS services, and the `AWS_ENDPOINT_URL_PERSONALIZE*`
variables pointing every boto3 client at it, the project's and the test's alike."""

from __future__ import annotations

import json
import random
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from chalicelib import aws
from chalicelib.emulator import server
from chalicelib.seam import runtime

REGION = "us-east-1"
ACCOUNT = server.DEFAULT_ACCOUNT
BUCKET = "shop-data"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/personalize-s3"
USER_PERSONALIZATION = "arn:aws:personalize:::recipe/aws-user-personalization"
SERVICES = ("PERSONALIZE", "PERSONALIZE_RUNTIME", "PERSONALIZE_EVENTS")
INTERACTIONS_SCHEMA = {
    "type": "record",
    "name": "Interactions",
    "namespace": "com.amazonaws.personalize.schema",
    "fields": [
        {"name": "USER_ID", "type": "string"},
        {"name": "ITEM_ID", "type": "string"},
        {"name": "EVENT_TYPE", "type": "string"},
        {"name": "TIMESTAMP", "type": "long"},
    ],
    "version": "1.0",
}
ITEMS_SCHEMA = {
    **INTERACTIONS_SCHEMA,
    "name": "Items",
    "fields": [
        {"name": "ITEM_ID", "type": "string"},
        {"name": "CATEGORY", "type": ["null", "string"], "categorical": True},
        {"name": "PRICE", "type": ["null", "float"]},
    ],
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def shop_csv(users: int = 80, per_user: int = 25, seed: int = 1) -> str:
    """Interactions of four tastes: user u belongs to group u % 4 and mostly views and buys the
    ten items i{10g}..i{10g+9}; every fifth event is a purchase."""
    rnd = random.Random(seed)
    lines = ["USER_ID,ITEM_ID,EVENT_TYPE,TIMESTAMP"]
    for u in range(users):
        group = u % 4
        for k in range(per_user):
            liked = rnd.random() < 0.8
            item = group * 10 + rnd.randrange(10) if liked else rnd.randrange(40)
            kind = "purchase" if k % 5 == 0 else "view"
            lines.append(f"u{u},i{item},{kind},{1_700_000_000 + u * 100 + k}")
    return "\n".join(lines) + "\n"


def items_csv() -> str:
    rows = [f"i{n},{['garden', 'kitchen', 'toys', 'books'][n // 10]},{n + 0.5}" for n in range(40)]
    return "ITEM_ID,CATEGORY,PRICE\n" + "\n".join(rows) + "\n"


def wait(describe: Callable[[], dict[str, Any]], timeout: float = 120.0) -> dict[str, Any]:
    """Poll a Describe until the resource (or its latest campaign update) settles."""
    deadline = time.monotonic() + timeout
    while True:
        found = describe()
        update = found.get("latestCampaignUpdate") or {}
        status = update.get("status") if found.get("status") == "ACTIVE" else None
        status = status or found["status"]
        if status in ("ACTIVE", "CREATE FAILED"):
            return found
        assert time.monotonic() < deadline, f"still {status}"
        time.sleep(0.02)


class Emulated:
    """A running emulator and boto3 clients of the three APIs (and S3) pointed at it."""

    def __init__(self, running: server.Running, data_dir: Path) -> None:
        self.running, self.data_dir = running, data_dir
        self.control = boto3.client("personalize", region_name=REGION)
        self.runtime = boto3.client("personalize-runtime", region_name=REGION)
        self.events = boto3.client("personalize-events", region_name=REGION)
        self.s3 = boto3.client("s3", region_name=REGION)

    @property
    def url(self) -> str:
        return self.running.url

    def group(self, name: str = "shop") -> str:
        arn = self.control.create_dataset_group(name=name)["datasetGroupArn"]
        wait(lambda: self.control.describe_dataset_group(datasetGroupArn=arn)["datasetGroup"])
        return str(arn)

    def dataset(self, group: str, kind: str, schema: dict[str, Any]) -> str:
        name = f"{group.rsplit('/', 1)[1]}-{kind.lower()}"
        schema_arn = self.control.create_schema(name=name, schema=json.dumps(schema))["schemaArn"]
        arn = self.control.create_dataset(
            name=name, schemaArn=schema_arn, datasetGroupArn=group, datasetType=kind
        )["datasetArn"]
        wait(lambda: self.control.describe_dataset(datasetArn=arn)["dataset"])
        return str(arn)

    def import_csv(self, dataset: str, key: str, body: str, mode: str = "FULL") -> dict[str, Any]:
        self.s3.put_object(Bucket=BUCKET, Key=key, Body=body.encode())
        arn = self.control.create_dataset_import_job(
            jobName=f"import-{time.time_ns()}",
            datasetArn=dataset,
            dataSource={"dataLocation": f"s3://{BUCKET}/{key}"},
            roleArn=ROLE,
            importMode=mode,
        )["datasetImportJobArn"]
        return wait(
            lambda: self.control.describe_dataset_import_job(datasetImportJobArn=arn)[
                "datasetImportJob"
            ]
        )

    def solution_version(self, group: str, name: str, recipe: str = USER_PERSONALIZATION) -> str:
        arn = self.control.create_solution(name=name, datasetGroupArn=group, recipeArn=recipe)[
            "solutionArn"
        ]
        wait(lambda: self.control.describe_solution(solutionArn=arn)["solution"])
        version = self.control.create_solution_version(solutionArn=arn)["solutionVersionArn"]
        found = wait(
            lambda: self.control.describe_solution_version(solutionVersionArn=version)[
                "solutionVersion"
            ]
        )
        assert found["status"] == "ACTIVE", found.get("failureReason")
        return str(version)

    def campaign(self, name: str, version: str, **options: Any) -> str:
        arn = self.control.create_campaign(name=name, solutionVersionArn=version, **options)[
            "campaignArn"
        ]
        wait(lambda: self.control.describe_campaign(campaignArn=arn)["campaign"])
        return str(arn)

    def active(self, kind: str, arn: str) -> dict[str, Any]:
        describe = getattr(self.control, f"describe_{kind}")
        key = "".join(p.capitalize() for p in kind.split("_"))
        key = key[0].lower() + key[1:]
        return wait(lambda: describe(**{f"{key}Arn": arn})[key])


@pytest.fixture
def start_emulator(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., Emulated]]:
    """Starts emulators (`start(step_seconds=...)`, again on the same data to restart one)
    inside moto, with the bucket `BUCKET`; each is stopped at the end of the test."""
    from moto import mock_aws

    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    started: list[server.Running] = []
    data_dir = tmp_path / "emulator"

    def start(step_seconds: float = 0.0) -> Emulated:
        if started:  # a restart: nothing of the old one's may be written after this
            started[-1].stop()
            started[-1].emulator.jobs.shutdown(wait=True)
        running = server.start(
            data_dir, port=free_port(), step_seconds=step_seconds, check_replies=True
        )
        started.append(running)
        for service in SERVICES:
            monkeypatch.setenv(f"AWS_ENDPOINT_URL_{service}", running.url)
        aws.reset()
        runtime.reset()
        return Emulated(running, data_dir)

    with mock_aws():
        aws.reset()
        boto3.client("s3", region_name=REGION).create_bucket(Bucket=BUCKET)
        yield start
        for running in started:
            running.stop()
            # A job still running must not outlive moto: its S3 calls would leave the mock.
            running.emulator.jobs.shutdown(wait=True)
    aws.reset()
    runtime.reset()


@pytest.fixture
def emulated(start_emulator: Callable[..., Emulated]) -> Emulated:
    return start_emulator()
