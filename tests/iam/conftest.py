"""The IAM tests' fixture: the `dev` stage's stack in moto and its functions' policies."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.iam_support import REGION, Deployed, deployed_stage


@pytest.fixture
def deployed(monkeypatch: pytest.MonkeyPatch) -> Iterator[Deployed]:
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(key, value)
    with deployed_stage("dev") as stage:
        yield stage
