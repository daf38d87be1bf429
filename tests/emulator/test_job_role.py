"""Import and batch jobs read and write S3 as the job's `roleArn`, as Personalize does: with
moto's IAM authorization on, a role whose policy allows reading the bucket imports, and a role
without it fails with S3's AccessDenied as the job's failureReason."""

from __future__ import annotations

import json
from collections.abc import Callable

import boto3
import pytest
from moto.core.authorization import enable_iam_authentication

from chalicelib import aws
from tests.emulator_support import BUCKET, INTERACTIONS_SCHEMA, REGION, Emulated, shop_csv

# On AWS the trust names personalize.amazonaws.com; the emulator assumes the role with its own
# credentials (here the admin user's), which stand in for the service principal.
TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::123456789012:user/admin"},
            "Action": "sts:AssumeRole",
        }
    ],
}
READ_BUCKET = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": ["s3:GetObject", "s3:ListBucket"],
            "Resource": [f"arn:aws:s3:::{BUCKET}", f"arn:aws:s3:::{BUCKET}/*"],
        }
    ],
}
EVERYTHING = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
}


def role(iam: object, name: str, policy: dict | None) -> str:
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(TRUST))["Role"]["Arn"]
    if policy is not None:
        iam.put_role_policy(RoleName=name, PolicyName="s3", PolicyDocument=json.dumps(policy))
    return str(arn)


def test_the_job_reads_s3_as_its_role(
    start_emulator: Callable[..., Emulated], monkeypatch: pytest.MonkeyPatch
) -> None:
    iam = boto3.client("iam", region_name=REGION)
    iam.create_user(UserName="admin")
    iam.put_user_policy(UserName="admin", PolicyName="all", PolicyDocument=json.dumps(EVERYTHING))
    key = iam.create_access_key(UserName="admin")["AccessKey"]
    reader = role(iam, "personalize-reader", READ_BUCKET)
    stranger = role(iam, "personalize-stranger", None)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key["AccessKeyId"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", key["SecretAccessKey"])
    aws.reset()
    emulated = start_emulator()
    c = emulated.control
    group = emulated.group()
    dataset = emulated.dataset(group, "Interactions", INTERACTIONS_SCHEMA)
    emulated.s3.put_object(Bucket=BUCKET, Key="history.csv", Body=shop_csv().encode())

    def run(name: str, role_arn: str) -> dict:
        arn = c.create_dataset_import_job(
            jobName=name,
            datasetArn=dataset,
            dataSource={"dataLocation": f"s3://{BUCKET}/history.csv"},
            roleArn=role_arn,
        )["datasetImportJobArn"]
        return emulated.active("dataset_import_job", arn)

    with enable_iam_authentication():
        refused = run("as-stranger", stranger)
        allowed = run("as-reader", reader)
    assert refused["status"] == "CREATE FAILED"
    assert refused["failureReason"].startswith("Cannot read s3://")  # the role was assumed
    assert "AccessDenied" in refused["failureReason"]
    assert allowed["status"] == "ACTIVE", allowed.get("failureReason")
