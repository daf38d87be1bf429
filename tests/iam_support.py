"""A Lambda function's own IAM policy, enforced in tests: moto's IAM authorization with an IAM user
holding exactly the policy `python -m deploy sync` writes for the function, so that a call the
policy does not allow fails the test as it would fail the function.

moto checks the resource of a request only for S3 and SQS; for the others it checks the action
against "*", which a policy scoped to the stage's resources never allows. So the resource of
DynamoDB, Kinesis, SSM, Secrets Manager and SQS `GetQueueUrl` requests is resolved here, as IAM
does. Two service rules moto does not model are added: SQS authorizes its batch calls as the
single actions (`SendMessageBatch` needs `sqs:SendMessage`), and S3 answers a GetObject of a
missing key with 403 instead of 404 to a caller without `s3:ListBucket` on the bucket.
Personalize, which moto does not serve, is authorized by the fakes with `Caller.authorize`.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.core.authorization import enable_iam_authentication
from moto.iam.access_control import IAMPolicy, IAMRequestBase, PermissionResult, S3IAMRequest

from chalicelib import aws
from chalicelib.providers.personalize.ingest import requeue
from chalicelib.settings import Settings
from deploy import offline
from deploy.policies import StageResources, policies
from deploy.stage import Stack, resources

BATCH_ACTIONS = {
    "sqs:SendMessageBatch": "sqs:SendMessage",
    "sqs:DeleteMessageBatch": "sqs:DeleteMessage",
    "sqs:ChangeMessageVisibilityBatch": "sqs:ChangeMessageVisibility",
}


@dataclass
class Caller:
    """The function's policy, and every (action, resource) it was asked to allow."""

    policy: dict[str, Any]
    allowed: set[tuple[str, str]] = field(default_factory=set)
    denied: list[tuple[str, str]] = field(default_factory=list)

    def allows(self, action: str, resource: str, context: dict[str, str] | None = None) -> bool:
        result = IAMPolicy(json.dumps(self.policy)).is_action_permitted(
            action, resource, incoming_condition_values=context
        )
        return result == PermissionResult.PERMITTED

    def authorize(self, action: str, resource: str, context: dict[str, str] | None = None) -> bool:
        """Record the request; False (and a denial on record) when the policy refuses it."""
        if self.allows(action, resource, context):
            self.allowed.add((action, resource))
            return True
        self.denied.append((action, resource))
        return False

    def actions(self) -> set[str]:
        return {action for action, _ in self.allowed}


_current: list[Caller] = []


def current() -> Caller | None:
    """The caller whose policy applies now (Personalize fakes consult it), if any."""
    return _current[-1] if _current else None


def _arn(service: str, response: Any, resource: str) -> str:
    return f"arn:aws:{service}:{response.region}:{response.current_account}:{resource}"


def _dynamodb(self: Any) -> str:
    body = self.body if isinstance(self.body, dict) else json.loads(self.body or "{}")
    table = body.get("TableName") or next(iter(body.get("RequestItems") or {}), "")
    return _arn("dynamodb", self, f"table/{table}") if table else "*"


def _kinesis(self: Any) -> str:
    arn = self._get_param("StreamARN")
    name = self._get_param("StreamName")
    return arn or (_arn("kinesis", self, f"stream/{name}") if name else "*")


def _ssm(self: Any) -> str:
    name = self._get_param("Name")
    return _arn("ssm", self, f"parameter/{name.lstrip('/')}") if name else "*"


def _secretsmanager(self: Any) -> str:
    secret = self._get_param("SecretId")
    try:
        return str(self.backend.secrets[secret].arn)
    except Exception:
        return "*"


def _sqs(original: Any) -> Any:
    def determine(self: Any) -> str:
        name = self._get_param("QueueName")
        if name:  # GetQueueUrl names the queue instead of giving its URL
            return _arn("sqs", self, name)
        return str(original(self))

    return determine


def _guarded(resolve: Any) -> Any:
    def determine(self: Any) -> str:
        try:
            return str(resolve(self))
        except Exception:
            return "*"

    return determine


@contextmanager
def acting_as(policy: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Iterator[Caller]:
    """Inside `mock_aws()`: every AWS request made until the block ends is signed with the keys
    of an IAM user whose only policy is `policy`, and authorized against it."""
    from moto.dynamodb.responses import DynamoHandler
    from moto.kinesis.responses import KinesisResponse
    from moto.s3.models import s3_backends
    from moto.secretsmanager.responses import SecretsManagerResponse
    from moto.sqs.responses import SQSResponse
    from moto.ssm.responses import SimpleSystemManagerResponse

    iam = boto3.client("iam", region_name="us-east-1")
    name = f"fn-{len(iam.list_users()['Users'])}"
    iam.create_user(UserName=name)
    iam.put_user_policy(UserName=name, PolicyName="function", PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    caller = Caller(policy)

    monkeypatch.setattr(DynamoHandler, "_determine_resource", _guarded(_dynamodb), raising=False)
    monkeypatch.setattr(KinesisResponse, "_determine_resource", _guarded(_kinesis), raising=False)
    monkeypatch.setattr(
        SimpleSystemManagerResponse, "_determine_resource", _guarded(_ssm), raising=False
    )
    monkeypatch.setattr(
        SecretsManagerResponse, "_determine_resource", _guarded(_secretsmanager), raising=False
    )
    original = SQSResponse._determine_resource  # noqa: SLF001 - moto's hook, wrapped
    monkeypatch.setattr(SQSResponse, "_determine_resource", _sqs(original))
    check = IAMRequestBase.check_action_permitted

    def check_action_permitted(self: Any, resource: str) -> None:
        self._action = BATCH_ACTIONS.get(self._action, self._action)
        try:
            check(self, resource)
        except Exception:
            caller.denied.append((self._action, resource))
            raise
        caller.allowed.add((self._action, resource))
        if isinstance(self, S3IAMRequest) and self._action in ("s3:GetObject", "s3:HeadObject"):
            _missing_key_needs_list_bucket(self, resource, caller, s3_backends)

    monkeypatch.setattr(IAMRequestBase, "check_action_permitted", check_action_permitted)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key["AccessKeyId"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", key["SecretAccessKey"])
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    aws.reset()
    requeue.forget_queue_urls()
    _current.append(caller)
    try:
        with enable_iam_authentication():
            yield caller
    finally:
        _current.pop()
        aws.reset()
        requeue.forget_queue_urls()


def _missing_key_needs_list_bucket(
    request: Any, resource: str, caller: Caller, backends: Any
) -> None:
    """S3: "If you don't have the s3:ListBucket permission, Amazon S3 returns an HTTP status code
    403 (access denied)" for a key that does not exist."""
    bucket, _, key = resource.removeprefix("arn:aws:s3:::").partition("/")
    backend = backends[request.account_id]["aws"]
    try:
        found = backend.get_object(bucket, key)
    except Exception:
        found = None
    if found is None and not caller.authorize("s3:ListBucket", f"arn:aws:s3:::{bucket}"):
        request._raise_access_denied()  # noqa: SLF001 - moto's own denial, as IAM answers


# -- a stage's stack in moto and its functions' policies (the IAM tests' fixture) -------------

REGION = "us-east-1"
# Called by Lambda for the function (its logs, its event source's polling, its on-failure
# destination), never by the function's code.
BY_LAMBDA = {
    "api_handler": {"logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"},
    "ingest_sqs": {"sqs:ReceiveMessage", "sqs:GetQueueAttributes"},
    "ingest_kinesis": {
        "kinesis:DescribeStream",
        "kinesis:DescribeStreamSummary",
        "kinesis:GetRecords",
        "kinesis:GetShardIterator",
        "kinesis:ListShards",
        "kinesis:ListStreams",
    },
    "import_s3": {"sqs:SendMessage"},  # the on-failure destination
}
LOGS = BY_LAMBDA["api_handler"]
# kms:Decrypt is SSM's own call to KMS for a SecureString, which moto does not make.
NOT_CALLED_IN_MOTO = {"kms:Decrypt"}


@dataclass
class Deployed:
    stack: Stack
    names: StageResources
    documents: dict[str, dict[str, Any]]
    settings: Settings


def without(document: dict[str, Any], sid: str) -> dict[str, Any]:
    kept = [s for s in document["Statement"] if s["Sid"] != sid]
    assert len(kept) == len(document["Statement"]) - 1, sid
    return {**document, "Statement": kept}


def granted(document: dict[str, Any]) -> set[str]:
    return {a for s in document["Statement"] for a in s["Action"]}


@contextmanager
def deployed_stage(stage: str = "dev") -> Iterator[Deployed]:
    """Inside `mock_aws()`, with fake credentials set: `stage`'s stack created from
    deploy/infrastructure.yaml, and its functions' policies as `python -m deploy sync` writes
    them."""
    with warnings.catch_warnings(), mock_aws():
        warnings.simplefilter("ignore")  # moto's CloudFormation skips the alarms
        cfn = boto3.client("cloudformation", region_name=REGION)
        cfn.create_stack(
            StackName=f"braze-recs-{stage}",
            TemplateBody=offline.TEMPLATE.read_text(),
            Parameters=[{"ParameterKey": "Stage", "ParameterValue": stage}],
            Capabilities=["CAPABILITY_NAMED_IAM"],
        )
        [described] = cfn.describe_stacks(StackName=f"braze-recs-{stage}")["Stacks"]
        stack = Stack.from_outputs(described["Outputs"])
        # What the template sets and moto's CloudFormation leaves out: the bucket's versioning
        # and the API keys secret.
        boto3.client("s3", region_name=REGION).put_bucket_versioning(
            Bucket=stack.settings["RECS_IMPORT_BUCKET"],
            VersioningConfiguration={"Status": "Enabled"},
        )
        boto3.client("secretsmanager", region_name=REGION).create_secret(
            Name=stack.settings["RECS_API_KEYS_PARAMETER"], SecretString="generated-key"
        )
        personalize = offline.example_personalize()
        names = resources(stage, stack, personalize)
        settings = Settings(
            provider="personalize",
            dataset_group_arn=personalize["RECS_DATASET_GROUP_ARN"],
            tracking_id=personalize["RECS_TRACKING_ID"],
            events_queue=stack.settings["RECS_EVENTS_QUEUE"],
            dead_letter_queue=stack.settings["RECS_DEAD_LETTER_QUEUE"],
            import_bucket=stack.settings["RECS_IMPORT_BUCKET"],
            import_role_arn=stack.settings["RECS_IMPORT_ROLE_ARN"],
            items_table=stack.settings["RECS_ITEMS_TABLE"],
            served_table=stack.settings["RECS_SERVED_TABLE"],
            currents_failures_queue=stack.settings["RECS_CURRENTS_FAILURES_QUEUE"],
            import_failures_queue=stack.settings["RECS_IMPORT_FAILURES_QUEUE"],
        )
        yield Deployed(stack, names, policies(names), settings)
