"""`python -m chalicelib import DATASET PATH_OR_S3_URI`: files and S3 objects, both providers."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import pytest

from chalicelib import cli
from chalicelib.handlers import imports as s3_handler
from chalicelib.seam import runtime
from tests.unit.test_imports import (
    BUCKET,
    GROUP,
    ROLE,
    TABLE,
    config,
    env,
    interactions,
    settings,
)

__all__ = ["env"]  # the moto S3/DynamoDB + fake CreateDatasetImportJob fixture

ITEMS = "ITEM_ID,NAME,PRICE\ni1,Mug,4.5\ni2,Lamp,20\n"


@pytest.fixture(autouse=True)
def _default_config(monkeypatch: pytest.MonkeyPatch) -> None:
    # `cli.main(["--config", ...])` elsewhere in the suite leaves RECS_CONFIG set.
    monkeypatch.delenv("RECS_CONFIG", raising=False)
    runtime.reset()


def _personalize(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "RECS_PROVIDER": "personalize",
        "RECS_DATASET_GROUP_ARN": GROUP,
        "RECS_IMPORT_ROLE_ARN": ROLE,
        "RECS_IMPORT_BUCKET": BUCKET,
        "RECS_ITEMS_TABLE": TABLE,
    }.items():
        monkeypatch.setenv(name, value)
    runtime.reset()


def _printed(capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    out = capsys.readouterr().out
    return json.loads(out[out.index("{") :])


def test_a_local_file_on_personalize_is_uploaded_validated_and_imported_once(
    env: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    s3, jobs = env
    _personalize(monkeypatch)
    path = tmp_path / "history 2024.csv.gz"
    path.write_bytes(gzip.compress(interactions(1_200).encode()))

    assert cli.main(["import", "interactions", str(path), "--mode", "full"]) == 0
    printed = _printed(capsys)
    assert printed["status"] == "started" and printed["rows"] == 1_200
    [job] = jobs.jobs.values()
    assert job["importMode"] == "FULL"
    key = "imports/interactions/history 2024.csv.gz"
    version = s3.head_object(Bucket=BUCKET, Key=key)["VersionId"]
    assert printed["version"] == version
    # The bucket's own notification for that upload starts nothing more.
    notification = {"s3": {"bucket": {"name": BUCKET}, "object": {"key": quote_plus(key)}}}
    notification["s3"]["object"]["versionId"] = version
    [again] = s3_handler.handle_s3({"Records": [notification]}, settings(), config())
    assert again.status == "duplicate"
    assert len(jobs.jobs) == 1
    runtime.reset()


def test_an_s3_uri_on_personalize_must_lie_under_its_dataset(
    env: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    s3, jobs = env
    _personalize(monkeypatch)
    s3.put_object(Bucket=BUCKET, Key="imports/items/catalogue.csv", Body=ITEMS.encode())
    assert cli.main(["import", "items", f"s3://{BUCKET}/imports/items/catalogue.csv"]) == 0
    assert _printed(capsys)["items_loaded"] == 2
    assert cli.main(["import", "users", f"s3://{BUCKET}/imports/items/catalogue.csv"]) == 2
    assert "imports/users/" in capsys.readouterr().err
    assert cli.main(["import", "items", "s3://"]) == 2
    assert len(jobs.jobs) == 1
    runtime.reset()


def test_an_s3_uri_on_local_streams_into_the_local_store(
    env: Any, empty_data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    s3, jobs = env
    s3.put_object(Bucket=BUCKET, Key="drops/items.csv.gz", Body=gzip.compress(ITEMS.encode()))
    assert cli.main(["import", "items", f"s3://{BUCKET}/drops/items.csv.gz"]) == 0
    printed = _printed(capsys)
    assert printed["status"] == "imported" and printed["imported"] == 2
    assert runtime.current().serving.health()["items"] == 2
    assert not jobs.jobs  # nothing reaches Personalize from the local provider

    s3.put_object(Bucket=BUCKET, Key="drops/bad.csv", Body=b"ITEM_ID,PRICE\ni3,cheap\n")
    assert cli.main(["import", "items", f"s3://{BUCKET}/drops/bad.csv"]) == 1
    assert "PRICE 'cheap' is not a number" in json.dumps(_printed(capsys)["errors"])
    assert runtime.current().serving.health()["items"] == 2
