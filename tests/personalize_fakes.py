"""Fakes for the `personalize` provider's tests: fake credentials and region, a moto DynamoDB item
table, and `before-send` replies that go through botocore's real parsing (and so are checked
against the service model) for Personalize calls moto does not implement. Requests are checked
against the model too, maxima, patterns and enums included (`tests.service_model`)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse
from botocore.validate import ParamValidator

from chalicelib import aws
from chalicelib.providers.personalize import items_table
from chalicelib.seam import runtime
from tests.service_model import check

REGION = "us-east-1"
ACCOUNT = "123456789012"
GROUP_ARN = f"arn:aws:personalize:{REGION}:{ACCOUNT}:dataset-group/braze-shop"
CAMPAIGN_ARN = f"arn:aws:personalize:{REGION}:{ACCOUNT}:campaign/recs"
SIMS_ARN = f"arn:aws:personalize:{REGION}:{ACCOUNT}:campaign/sims"
RANKING_ARN = f"arn:aws:personalize:{REGION}:{ACCOUNT}:campaign/ranking"
TABLE = "recs-items"

SHOP = {
    "i1": {"name": "Garden hose", "price": 12.5, "category": "garden"},
    "i2": {"name": "Teapot", "price": 20, "category": "kitchen"},
    "i3": {"name": "Kite", "price": 7.25, "category": "toys", "url": "https://kites.example/3"},
    "i4": {"name": "Rake", "price": 9, "category": "garden"},
}
POPULAR = ["i2", "i4", "i1", "i3"]


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fake credentials and region, the personalize provider's settings, and fresh clients."""
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "RECS_PROVIDER": "personalize",
        "RECS_DATASET_GROUP_ARN": GROUP_ARN,
        "RECS_CAMPAIGN_ARN": CAMPAIGN_ARN,
        "RECS_SIMILAR_ITEMS_CAMPAIGN_ARN": SIMS_ARN,
        "RECS_RANKING_CAMPAIGN_ARN": RANKING_ARN,
        "RECS_ITEMS_TABLE": TABLE,
        "RECS_API_KEYS": "aws-test-key",
    }.items():
        monkeypatch.setenv(key, value)
    for key in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_PERSONALIZE_RUNTIME"):
        monkeypatch.delenv(key, raising=False)
    aws.reset()
    runtime.reset()
    yield
    aws.reset()
    runtime.reset()


@pytest.fixture
def item_table(aws_env: None) -> Iterator[str]:
    """The moto DynamoDB item table holding `SHOP` and the `POPULAR` list."""
    from moto import mock_aws

    with mock_aws():
        aws.client("dynamodb").create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "item_id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "item_id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        items_table.put_items(TABLE, SHOP.items())
        items_table.put_popular(TABLE, POPULAR)
        yield TABLE


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body


def reply(status: int, body: dict[str, Any], error: str | None = None) -> AWSResponse:
    headers = {"Content-Type": "application/x-amz-json-1.1"}
    if error:
        headers["x-amzn-ErrorType"] = error
    return AWSResponse("https://personalize.test", status, headers, _Raw(json.dumps(body).encode()))


def throttled() -> AWSResponse:
    return reply(400, {"message": "Rate exceeded"}, "ThrottlingException")


Responder = Callable[[dict[str, Any]], AWSResponse]


class FakeRuntime:
    """Answers personalize-runtime operations through `before-send`: each call's JSON body is
    recorded and handed to the queued responder for that operation."""

    def __init__(self) -> None:
        self.client = aws.client("personalize-runtime")
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.violations: list[str] = []  # requests the service would refuse
        self._queues: dict[str, list[Responder]] = {}
        # First: under moto, its own before-send handler would otherwise answer "not implemented".
        self.client.meta.events.register_first("before-send.personalize-runtime", self._send)

    def on(self, operation: str, *responders: Responder | AWSResponse) -> None:
        queue = self._queues.setdefault(operation, [])
        for r in responders:
            queue.append(r if callable(r) else (lambda _body, r=r: r))

    def _send(self, request: Any, **_: Any) -> AWSResponse:
        operation = (
            "GetPersonalizedRanking"
            if "personalize-ranking" in request.url
            else ("GetRecommendations")
        )
        body = json.loads(request.body or b"{}")
        self.calls.append((operation, body))
        problems = check("personalize-runtime", operation, body)
        if problems:
            self.violations += problems
            return reply(400, {"message": "; ".join(problems)}, "InvalidInputException")
        denied = _denied(operation, body)
        if denied:
            return reply(400, {"message": denied}, "AccessDeniedException")
        queue = self._queues.get(operation)
        assert queue, f"unexpected {operation} call"
        response = queue.pop(0)(body) if len(queue) > 1 else queue[0](body)
        if response.status_code == 200:  # a reply Personalize could give, per its model
            shape = self.client.meta.service_model.operation_model(operation).output_shape
            report = ParamValidator().validate(json.loads(response.content), shape)
            assert not report.has_errors(), report.generate_report()
        return response


def _denied(operation: str, body: dict[str, Any]) -> str | None:
    """What the calling function's policy (tests.iam_support) does not allow, if one applies."""
    from tests import iam_support

    caller = iam_support.current()
    if caller is None:
        return None
    action = f"personalize:{operation}"
    targets = [body.get("campaignArn") or body.get("recommenderArn"), body.get("filterArn")]
    for resource in filter(None, targets):
        if not caller.authorize(action, resource):
            return f"not authorized to perform {action} on {resource}"
    return None


@pytest.fixture
def personalize_runtime(aws_env: None) -> Iterator[FakeRuntime]:
    fake = FakeRuntime()
    yield fake
    assert fake.violations == [], fake.violations


def items_reply(*item_ids: str, metadata: dict[str, dict[str, str]] | None = None) -> AWSResponse:
    entries: list[dict[str, Any]] = []
    for n, item in enumerate(item_ids):
        entry: dict[str, Any] = {"itemId": item, "score": 1.0 - n / 100}
        if metadata and item in metadata:
            entry["metadata"] = metadata[item]
        entries.append(entry)
    return reply(200, {"itemList": entries, "recommendationId": "RID-1"})
