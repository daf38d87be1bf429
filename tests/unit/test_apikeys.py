"""API keys from RECS_API_KEYS_PARAMETER: an SSM SecureString or a Secrets Manager secret (moto),
read once per process and again after the TTL; a failed read keeps the keys read before."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from chalice.test import Client
from moto import mock_aws

from chalicelib import aws
from chalicelib.api import apikeys
from chalicelib.api.apikeys import KeySource, is_ssm, parse_keys
from chalicelib.seam import runtime
from chalicelib.settings import PROJECT_ROOT, Settings

REGION = "us-east-1"
SSM_NAME = "/braze-recs/prod/api-keys"
SECRET_NAME = "braze-recs/prod/api-keys"


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": REGION}.items():  # fmt: skip
        monkeypatch.setenv(key, value)
    with mock_aws():
        aws.reset()
        apikeys.SOURCE.forget()
        yield
    aws.reset()
    apikeys.SOURCE.forget()


def _put_ssm(value: str) -> None:
    boto3.client("ssm", region_name=REGION).put_parameter(
        Name=SSM_NAME, Value=value, Type="SecureString", Overwrite=True
    )


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_rule_that_tells_ssm_from_secrets_manager() -> None:
    assert is_ssm("/braze-recs/dev/api-keys")
    assert is_ssm("arn:aws:ssm:eu-west-1:123456789012:parameter/braze-recs/dev/api-keys")
    assert not is_ssm("braze-recs/dev/api-keys")
    assert not is_ssm("arn:aws:secretsmanager:eu-west-1:123456789012:secret:braze-recs-AbCdEf")


@pytest.mark.parametrize(
    ("value", "keys"),
    [
        ("k1, k2,,", ("k1", "k2")),
        ('["k1", "k2"]', ("k1", "k2")),
        ('{"api_keys": "k1,k2"}', ("k1", "k2")),
        ('{"api_keys": ["k1"]}', ("k1",)),
        ('{"other": "x"}', ()),
        ("", ()),
    ],
)
def test_parameter_values(value: str, keys: tuple[str, ...]) -> None:
    assert parse_keys(value) == keys


def test_ssm_secure_string_is_read_once_per_ttl(aws_env: None) -> None:
    _put_ssm("new-key,old-key")
    clock = Clock()
    reads: list[str] = []

    def read(name: str) -> tuple[str, ...]:
        reads.append(name)
        return apikeys.read_parameter(name)

    source = KeySource(read, clock)
    settings = Settings(api_keys="ignored", api_keys_parameter=SSM_NAME, api_keys_ttl=300)
    assert source.keys(settings) == ("new-key", "old-key")
    _put_ssm("newer-key")  # a rotation
    clock.now += 299
    assert source.keys(settings) == ("new-key", "old-key")  # within the TTL: no read
    clock.now += 2
    assert source.keys(settings) == ("newer-key",)  # after it: the rotation, without a deploy
    assert reads == [SSM_NAME, SSM_NAME]


def test_secrets_manager_secret_by_name(aws_env: None) -> None:
    boto3.client("secretsmanager", region_name=REGION).create_secret(
        Name=SECRET_NAME, SecretString=json.dumps({"api_keys": "sm-key-1,sm-key-2"})
    )
    settings = Settings(api_keys_parameter=SECRET_NAME)
    assert KeySource().keys(settings) == ("sm-key-1", "sm-key-2")


def test_a_failed_read_keeps_the_keys_read_before(aws_env: None) -> None:
    _put_ssm("k1")
    clock = Clock()
    source = KeySource(apikeys.read_parameter, clock)
    settings = Settings(api_keys_parameter=SSM_NAME, api_keys_ttl=60)
    assert source.keys(settings) == ("k1",)
    boto3.client("ssm", region_name=REGION).delete_parameter(Name=SSM_NAME)
    clock.now += 61
    assert source.keys(settings) == ("k1",)  # kept, and logged


def test_a_parameter_never_read_refuses_every_key(aws_env: None) -> None:
    settings = Settings(api_keys="k-env", api_keys_parameter="/braze-recs/missing/api-keys")
    assert KeySource().keys(settings) == ()  # fails closed: not the environment's keys either


def test_the_api_answers_with_the_parameter_keys(
    aws_env: None, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through the Chalice handler: the stage's development key no longer opens the API once
    a parameter is named; the parameter's key does."""
    from app import app

    _put_ssm("from-ssm")
    monkeypatch.setenv("RECS_API_KEYS_PARAMETER", SSM_NAME)
    runtime.reset()
    with Client(app, stage_name="local", project_dir=str(PROJECT_ROOT)) as client:
        path = "/recommendations?user_id=u1"
        assert client.http.get(path, headers={"x-api-key": "from-ssm"}).status_code == 200
        assert client.http.get(path, headers={"x-api-key": "dev-local-key"}).status_code == 401
    runtime.reset()
