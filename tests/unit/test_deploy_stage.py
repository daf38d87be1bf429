"""`python -m deploy sync`: a stage written from its stack's outputs (the real template's, from
moto) and the Personalize resources `setup` made (the in-memory control plane), and checked."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.stub import Stubber

from chalicelib import aws
from chalicelib.config import load_config
from chalicelib.providers.personalize import setup as aws_setup
from chalicelib.providers.personalize import training as aws_training
from chalicelib.settings import PROJECT_ROOT, Settings
from deploy import offline
from deploy import stage as deploy_stage
from deploy.__main__ import main
from tests.personalize_control import PREFIX, FakePersonalize


class Session:
    """What `sync` asks of a boto3 session: a CloudFormation client answering DescribeStacks
    with the stack's outputs (Stubber: checked against the model) and the fake Personalize."""

    def __init__(self, outputs: list[dict[str, str]], status: str = "UPDATE_COMPLETE") -> None:
        import boto3

        self.cfn = boto3.client("cloudformation", region_name="us-east-1")
        self.stub = Stubber(self.cfn)
        stack = {
            "StackName": "braze-recs-prod",
            "CreationTime": "2024-01-01T00:00:00Z",
            "StackStatus": status,
            "Outputs": outputs,
        }
        self.stub.add_response(
            "describe_stacks", {"Stacks": [stack]}, {"StackName": "braze-recs-prod"}
        )
        self.stub.activate()

    def client(self, service: str) -> Any:
        return self.cfn if service == "cloudformation" else aws.client(service)


@pytest.fixture
def outputs() -> list[dict[str, str]]:
    stack = offline.example_stack("prod")
    out = [{"OutputKey": k, "OutputValue": v, "Description": k} for k, v in stack.settings.items()]
    return out + [
        {"OutputKey": f"{k}Arn", "OutputValue": v, "Description": f"ARN of {k}"}
        for k, v in stack.arns.items()
    ]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / ".chalice").mkdir()
    (tmp_path / "chalicelib").mkdir()
    shutil.copy2(PROJECT_ROOT / ".chalice" / "config.json", tmp_path / ".chalice" / "config.json")
    shutil.copy2(PROJECT_ROOT / "chalicelib" / "recs.toml", tmp_path / "chalicelib" / "recs.toml")
    return tmp_path


@pytest.fixture
def control(aws_env: None) -> Iterator[FakePersonalize]:
    fake = FakePersonalize()
    yield fake
    assert fake.violations == [], fake.violations


def test_sync_writes_the_stack_and_the_dataset_group_into_the_stage(
    control: FakePersonalize, outputs: list[dict[str, str]], project: Path
) -> None:
    config = load_config(Settings().config)
    aws_setup.setup(config, poll_seconds=0)
    aws_training.train(Settings(), config, poll_seconds=0)  # the campaigns too
    assert deploy_stage.check_stage(project, "prod")  # nothing filled yet
    written = deploy_stage.sync("prod", "braze-recs-prod", project, Session(outputs))
    assert deploy_stage.check_stage(project, "prod") == []
    stage = json.loads((project / ".chalice" / "config.json").read_text())["stages"]["prod"]
    variables = stage["environment_variables"]
    assert variables["RECS_IMPORT_BUCKET"] == "braze-recs-prod-123456789012-us-east-1"
    assert variables["RECS_EVENTS_STREAM"] == "braze-recs-prod-events"
    assert variables["RECS_DATASET_GROUP_ARN"] == f"{PREFIX}:dataset-group/braze-shop"
    assert variables["RECS_TRACKING_ID"].startswith("tracking-")
    assert variables["RECS_RANKING_CAMPAIGN_ARN"] == f"{PREFIX}:campaign/braze-shop-rankings"
    assert "RECS_EVENT_TRACKER_ARN" not in variables  # a policy's business, not a setting
    tracker = next(iter(control.resources["tracker"]))
    policy = json.loads((project / ".chalice" / "policy-prod-ingest_sqs.json").read_text())
    [put_events] = [s for s in policy["Statement"] if s["Sid"] == "PutEvents"]
    assert put_events["Resource"] == tracker
    assert len(written) == 6  # the config and five policies


def test_sync_refuses_before_setup_and_on_a_failed_stack(
    control: FakePersonalize, outputs: list[dict[str, str]], project: Path
) -> None:
    with pytest.raises(deploy_stage.StageError, match="run `python -m chalicelib setup` first"):
        deploy_stage.sync("prod", "braze-recs-prod", project, Session(outputs))
    with pytest.raises(deploy_stage.StageError, match="ROLLBACK_COMPLETE"):
        deploy_stage.sync("prod", "braze-recs-prod", project, Session(outputs, "ROLLBACK_COMPLETE"))


def test_check_says_what_is_missing(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--stage", "dev"]) == 1
    out = capsys.readouterr().out
    assert "RECS_EVENTS_QUEUE is not set: run `python -m deploy sync --stage dev`" in out
    assert "api_handler has no policy file" in out


def test_a_stage_with_its_own_currents_bucket_lets_ingest_currents_read_that_bucket(
    project: Path,
) -> None:
    config_path = project / ".chalice" / "config.json"
    config = json.loads(config_path.read_text())
    config["stages"]["prod"]["environment_variables"]["RECS_CURRENTS_BUCKET"] = "shop-currents"
    config_path.write_text(json.dumps(config))
    stack = offline.example_stack("prod")
    deploy_stage.write_stage(project, "prod", stack, offline.example_personalize())
    policy = json.loads((project / ".chalice" / "policy-prod-ingest_currents.json").read_text())
    by_sid = {s["Sid"]: s for s in policy["Statement"]}
    assert by_sid["ReadCurrents"]["Resource"] == "arn:aws:s3:::shop-currents/currents/*"
    assert by_sid["FailureDestination"]["Resource"] == stack.arns["RECS_CURRENTS_FAILURES_QUEUE"]


def test_a_stack_from_an_older_template_is_named_for_an_update(project: Path) -> None:
    stack = offline.example_stack("prod")
    del stack.arns["RECS_CURRENTS_FAILURES_QUEUE"]
    with pytest.raises(deploy_stage.StageError, match="no output for RECS_CURRENTS_FAILURES_QUEUE"):
        deploy_stage.write_stage(project, "prod", stack, offline.example_personalize())
