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
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from moto.core.authorization import enable_iam_authentication
from moto.iam.access_control import IAMPolicy, IAMRequestBase, PermissionResult, S3IAMRequest

from chalicelib import aws, requeue

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
    monkeypatch.setattr(SQSResponse, "_determine_resource", _sqs(SQSResponse._determine_resource))
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
        request._raise_access_denied()
