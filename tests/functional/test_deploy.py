"""`python -m deploy deploy`: Chalice's own deploy of a synced stage, into moto (the stage's
stack created from deploy/infrastructure.yaml), with what Chalice cannot set: the SQS mapping
reports partial batch failures (and only then does `ingest_sqs` return them), and `import_s3`
and `ingest_currents` each keep an S3 event they failed on in their own failure queue of the stack.

Two gaps of moto are bridged, neither of this project's making: moto's S3 parses notification
filter names in lower case only (S3 takes `Prefix` as Chalice sends it), and moto's API Gateway
imports OpenAPI 3 only (Chalice sends Swagger 2), so the REST API calls are answered here.
"""

from __future__ import annotations

import json
import shutil
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from moto import mock_aws

from chalicelib.settings import PROJECT_ROOT
from deploy import offline, release
from deploy.stage import Stack, StageError, write_stage

REGION = "us-east-1"


def _lower_filter_names(params: dict[str, Any], **_: Any) -> None:
    for config in params.get("NotificationConfiguration", {}).get(
        "LambdaFunctionConfigurations", []
    ):
        for rule in config.get("Filter", {}).get("Key", {}).get("FilterRules", []):
            rule["Name"] = rule["Name"].lower()


def _rest_api(params: dict[str, Any], model: Any, **_: Any) -> Any:
    answers = {"ImportRestApi": {"id": "api0001", "name": "braze-personalize-recs"}}
    answers["CreateDeployment"] = {"id": "deployment1"}
    return AWSResponse("https://apigateway.test", 200, {}, None), answers.get(model.name, {})


@dataclass
class Stage:
    name: str
    project: Path
    stack: Stack


@pytest.fixture(params=["dev", "prod"])
def stage(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Stage]:
    """Each deployable stage, its stack created in moto."""
    name = request.param
    from chalice.awsclient import TypedAWSClient
    from chalice.deploy import packager

    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(key, value)
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy2(PROJECT_ROOT / "app.py", project / "app.py")
    shutil.copy2(PROJECT_ROOT / "requirements.txt", project / "requirements.txt")
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(PROJECT_ROOT / "chalicelib", project / "chalicelib", ignore=ignore)
    (project / ".chalice").mkdir()
    shutil.copy2(PROJECT_ROOT / ".chalice" / "config.json", project / ".chalice" / "config.json")
    monkeypatch.setattr(packager.DependencyBuilder, "build_site_packages", offline.copy_installed)
    client = TypedAWSClient._client  # noqa: SLF001 - Chalice's one client factory, bridged

    def bridged(self: Any, service: str) -> Any:
        made = client(self, service)
        if service == "s3":
            event = "provide-client-params.s3.PutBucketNotificationConfiguration"
            made.meta.events.register(event, _lower_filter_names, unique_id="lower-filters")
        if service == "apigateway":
            made.meta.events.register("before-call.apigateway", _rest_api, unique_id="rest-api")
        return made

    monkeypatch.setattr(TypedAWSClient, "_client", bridged)
    with warnings.catch_warnings(), mock_aws():
        warnings.simplefilter("ignore")
        cfn = boto3.client("cloudformation", region_name=REGION)
        cfn.create_stack(
            StackName=f"braze-recs-{name}",
            TemplateBody=offline.TEMPLATE.read_text(),
            Parameters=[{"ParameterKey": "Stage", "ParameterValue": name}],
            Capabilities=["CAPABILITY_NAMED_IAM"],
        )
        [described] = cfn.describe_stacks(StackName=f"braze-recs-{name}")["Stacks"]
        yield Stage(name, project, Stack.from_outputs(described["Outputs"]))


def test_a_stage_sync_has_not_filled_is_refused(stage: Stage) -> None:
    with pytest.raises(StageError, match="RECS_EVENTS_QUEUE is not set"):
        release.deploy(stage.name, stage.project, bytecode=False)


def test_deploy_wires_the_stack_with_partial_batch_responses_and_kept_s3_events(
    stage: Stage,
) -> None:
    write_stage(stage.project, stage.name, stage.stack, offline.example_personalize())
    assert release.deploy(stage.name, stage.project, bytecode=False) == 0
    lam = boto3.client("lambda", region_name=REGION)
    mappings = {
        m["EventSourceArn"]: m for m in lam.list_event_source_mappings()["EventSourceMappings"]
    }
    arns = stage.stack.arns
    assert set(mappings) == {arns["RECS_EVENTS_QUEUE"], arns["RECS_EVENTS_STREAM"]}
    assert mappings[arns["RECS_EVENTS_QUEUE"]]["FunctionResponseTypes"] == [
        "ReportBatchItemFailures"
    ]
    functions = {f["FunctionName"]: f for f in lam.list_functions()["Functions"]}
    flags = {
        name: f.get("Environment", {}).get("Variables", {}).get("RECS_SQS_BATCH_ITEM_FAILURES")
        for name, f in functions.items()
    }
    assert flags == {
        f"braze-personalize-recs-{stage.name}": None,
        f"braze-personalize-recs-{stage.name}-ingest_sqs": "true",
        f"braze-personalize-recs-{stage.name}-ingest_kinesis": None,
        f"braze-personalize-recs-{stage.name}-import_s3": None,
        f"braze-personalize-recs-{stage.name}-ingest_currents": None,
    }
    # Each S3-triggered function keeps an event it gave up on in its own queue of the stack.
    for function, queue in (
        ("import_s3", "RECS_IMPORT_FAILURES_QUEUE"),
        ("ingest_currents", "RECS_CURRENTS_FAILURES_QUEUE"),
    ):
        invoke = lam.get_function_event_invoke_config(
            FunctionName=f"braze-personalize-recs-{stage.name}-{function}"
        )
        assert invoke["MaximumRetryAttempts"] == 2
        assert invoke["DestinationConfig"]["OnFailure"]["Destination"] == arns[queue]
    assert arns["RECS_CURRENTS_FAILURES_QUEUE"].endswith(
        f"braze-recs-{stage.name}-currents-failures"
    )
    s3 = boto3.client("s3", region_name=REGION)
    notified = s3.get_bucket_notification_configuration(
        Bucket=stage.stack.settings["RECS_IMPORT_BUCKET"]
    )["LambdaFunctionConfigurations"]
    # One bucket, two functions apart by prefix: imports/ (CSV) and currents/ (Braze Currents).
    by_function = {
        n["LambdaFunctionArn"]: [r["Value"] for r in n["Filter"]["Key"]["FilterRules"]]
        for n in notified
    }
    name = f"braze-personalize-recs-{stage.name}"
    assert by_function == {
        functions[f"{name}-import_s3"]["FunctionArn"]: ["imports/"],
        functions[f"{name}-ingest_currents"]["FunctionArn"]: ["currents/", ".avro"],
    }
    iam = boto3.client("iam", region_name=REGION)
    config = json.loads((stage.project / ".chalice" / "config.json").read_text())["stages"][
        stage.name
    ]
    for function, own in config["lambda_functions"].items():
        if "iam_policy_file" not in own:
            continue
        role = f"braze-personalize-recs-{stage.name}-{function}"
        [name] = iam.list_role_policies(RoleName=role)["PolicyNames"]
        document = iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
        written = json.loads((stage.project / ".chalice" / own["iam_policy_file"]).read_text())
        assert (json.loads(document) if isinstance(document, str) else document) == written

    # A second deploy updates the mapping and keeps reporting partial failures.
    assert release.deploy(stage.name, stage.project, bytecode=False) == 0
    [sqs] = [
        m
        for m in lam.list_event_source_mappings()["EventSourceMappings"]
        if ":sqs:" in m["EventSourceArn"]
    ]
    assert sqs["FunctionResponseTypes"] == ["ReportBatchItemFailures"]


def test_a_plain_chalice_deploy_never_turns_the_flag_on_without_the_mapping(stage: Stage) -> None:
    """`chalice deploy` without `python -m deploy`: no FunctionResponseTypes, so ingest_sqs must
    not return batchItemFailures (Lambda would delete the failed messages): no flag."""
    write_stage(stage.project, stage.name, stage.stack, offline.example_personalize())
    argv = ["--project-dir", str(stage.project), "deploy", "--stage", stage.name]
    assert release.run_chalice(argv) == 0
    lam = boto3.client("lambda", region_name=REGION)
    [sqs] = [
        m
        for m in lam.list_event_source_mappings()["EventSourceMappings"]
        if ":sqs:" in m["EventSourceArn"]
    ]
    assert not sqs.get("FunctionResponseTypes")
    function = lam.get_function(FunctionName=f"braze-personalize-recs-{stage.name}-ingest_sqs")[
        "Configuration"
    ]
    assert "RECS_SQS_BATCH_ITEM_FAILURES" not in function["Environment"]["Variables"]
