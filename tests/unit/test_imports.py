"""S3 imports: validation, reports, one import job per object version, item table refresh."""

from __future__ import annotations

import gzip
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from chalicelib import aws
from chalicelib.config import ProjectConfig, load_config
from chalicelib.csvdata import CsvError, Validation, read_text
from chalicelib.handlers import imports as s3_handler
from chalicelib.providers.personalize import imports
from chalicelib.settings import PROJECT_ROOT, Settings
from tests.personalize_control import FakeJobs

REGION = "us-east-1"
BUCKET = "recs-imports"
TABLE = "recs-items"
GROUP = f"arn:aws:personalize:{REGION}:123456789012:dataset-group/braze-shop"
ROLE = "arn:aws:iam::123456789012:role/braze-recs-dev-personalize"
HEADER = "USER_ID,ITEM_ID,EVENT_TYPE,EVENT_VALUE,TIMESTAMP\n"


def interactions(rows: int, bad_row: int | None = None) -> str:
    lines = [HEADER]
    for n in range(1, rows + 1):
        ts = "soon" if n == bad_row else str(1_700_000_000 + n)
        lines.append(f"u{n % 97},i{n % 301},purchase,1.5,{ts}\n")
    return "".join(lines)


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, FakeJobs]]:
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(key, value)
    with mock_aws():
        aws.reset()
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=BUCKET)
        s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        boto3.client("dynamodb", region_name=REGION).create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "item_id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "item_id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        jobs = FakeJobs()
        yield s3, jobs
    aws.reset()
    assert jobs.violations == [], jobs.violations


def settings() -> Settings:
    return Settings(
        provider="personalize",
        dataset_group_arn=GROUP,
        import_role_arn=ROLE,
        import_bucket=BUCKET,
        items_table=TABLE,
    )


def config() -> ProjectConfig:
    return load_config(PROJECT_ROOT / "chalicelib" / "recs.toml")


def drop(s3: Any, key: str, body: str | bytes) -> dict[str, Any]:
    """Put an object and hand `import_s3` the notification S3 sends (key URL-encoded)."""
    data = body.encode() if isinstance(body, str) else body
    put = s3.put_object(Bucket=BUCKET, Key=key, Body=data)
    from urllib.parse import quote_plus

    return {
        "Records": [
            {
                "eventName": "ObjectCreated:Put",
                "s3": {
                    "bucket": {"name": BUCKET},
                    "object": {"key": quote_plus(key, safe="/"), "versionId": put["VersionId"]},
                },
            }
        ]
    }


def report(s3: Any, key: str) -> dict[str, Any]:
    return json.loads(s3.get_object(Bucket=BUCKET, Key=f"reports/{key}.json")["Body"].read())


def run(event: dict[str, Any]) -> imports.ImportResult:
    [result] = s3_handler.handle_s3(event, settings(), config())
    return result


def test_a_good_interactions_file_starts_one_job_full_into_an_empty_dataset(env: Any) -> None:
    """INCREMENTAL (the default) is refused into a dataset without a bulk import: the first
    import is FULL; once it has completed, the next file is INCREMENTAL."""
    s3, jobs = env
    result = run(drop(s3, "imports/interactions/2024-01.csv", interactions(1_200)))
    assert result.status == "started", result.reason
    [job] = jobs.jobs.values()
    assert job["importMode"] == "FULL"
    assert result.mode_reason == "the first bulk import into a dataset can only be FULL"
    assert job["datasetArn"].endswith(":dataset/braze-shop/INTERACTIONS")
    assert job["dataSource"]["dataLocation"] == f"s3://{BUCKET}/imports/interactions/2024-01.csv"
    assert job["roleArn"] == ROLE
    written = report(s3, "imports/interactions/2024-01.csv")
    assert (written["status"], written["rows"], written["job_arn"]) == (
        "started",
        1_200,
        result.job_arn,
    )
    jobs.complete()
    later = run(drop(s3, "imports/interactions/2024-02.csv", interactions(1_200)))
    assert (later.status, later.mode) == ("started", "INCREMENTAL")
    assert jobs.jobs[later.job_name]["importMode"] == "INCREMENTAL"


def test_a_file_arriving_while_the_first_import_runs_is_a_counted_failure(
    env: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    s3, jobs = env
    run(drop(s3, "imports/interactions/first.csv", interactions(1_200)))
    event = drop(s3, "imports/interactions/second.csv", interactions(1_200))
    with pytest.raises(s3_handler.ImportFailedError, match="1 import"):
        run(event)
    written = report(s3, "imports/interactions/second.csv")
    assert written["status"] == "error"
    assert "first import" in written["reason"] and "still running" in written["reason"]
    assert len(jobs.jobs) == 1
    metric = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (metric["ImportFailures"], metric["Dataset"]) == (1, "interactions")
    jobs.complete()  # the event, retried (or redriven from the failure queue), goes through
    assert run(event).status == "started"


def test_a_refusal_by_personalize_is_reported_counted_and_raised(env: Any) -> None:
    """Not an exception escaping before any report: the report says what Personalize said, and
    the raise makes Lambda retry the event and then keep it in the on-failure destination."""
    s3, jobs = env
    jobs.refuse = "LimitExceededException"
    event = drop(s3, "imports/users/u.csv", "USER_ID,COUNTRY\nu1,FR\n")
    with pytest.raises(s3_handler.ImportFailedError):
        run(event)
    written = report(s3, "imports/users/u.csv")
    assert written["status"] == "error"
    assert written["reason"].startswith("Personalize refused the import job: LimitExceeded")
    jobs.refuse = None
    assert run(event).status == "started"  # a retry is not taken for a duplicate


def test_an_s3_failure_is_reported_and_raised(env: Any) -> None:
    s3, _ = env
    event = drop(s3, "imports/users/gone.csv", "USER_ID,COUNTRY\nu1,FR\n")
    s3.delete_object(Bucket=BUCKET, Key="imports/users/gone.csv")
    event["Records"][0]["s3"]["object"].pop("versionId")
    with pytest.raises(s3_handler.ImportFailedError):
        run(event)
    assert report(s3, "imports/users/gone.csv")["status"] == "error"


def test_the_same_notification_twice_starts_nothing_new(env: Any) -> None:
    s3, jobs = env
    event = drop(s3, "imports/interactions/a.csv", interactions(1_000))
    assert run(event).status == "started"
    again = run(event)
    assert again.status == "duplicate"
    assert len(jobs.jobs) == 1
    # A new version of the same key is a new import.
    jobs.complete()
    assert run(drop(s3, "imports/interactions/a.csv", interactions(1_001))).status == "started"
    assert len(jobs.jobs) == 2


def test_job_names_are_safe_short_stable_and_start_with_the_dataset_group() -> None:
    key = "imports/items/été 2024/Catalogue (final) + ñ 🛒" + "x" * 80 + ".csv.gz"
    group = "g" * 41  # the longest dataset group name the configuration allows
    name = imports.job_name("items", key, "v1", group)
    assert len(name) <= 63
    assert all(c.isascii() and (c.isalnum() or c in "-_") for c in name)
    assert name == imports.job_name("items", key, "v1", group)
    assert name != imports.job_name("items", key, "v2", group)
    assert name.startswith(imports.job_prefix(group) + "-")


def test_999_interactions_are_refused_with_personalizes_minimum(env: Any) -> None:
    s3, jobs = env
    result = run(drop(s3, "imports/interactions/small.csv", interactions(999)))
    assert result.status == "rejected"
    assert "at least 1,000" in (result.reason or "")
    assert not jobs.jobs
    assert report(s3, "imports/interactions/small.csv")["status"] == "rejected"


def test_a_bad_timestamp_at_row_70001_is_reported_with_its_row(env: Any) -> None:
    s3, jobs = env
    result = run(drop(s3, "imports/interactions/big.csv", interactions(70_005, bad_row=70_001)))
    assert result.status == "rejected" and not jobs.jobs
    written = report(s3, "imports/interactions/big.csv")
    assert written["error_count"] == 1
    assert written["errors"] == [
        {"row": 70_001, "column": "TIMESTAMP", "reason": "TIMESTAMP 'soon' is not epoch seconds"}
    ]


def test_a_header_missing_a_column_is_refused(env: Any) -> None:
    s3, jobs = env
    body = "USER_ID,ITEM_ID,TIMESTAMP\n" + "u1,i1,1700000000\n" * 1_500
    result = run(drop(s3, "imports/interactions/nohead.csv", body))
    assert result.status == "rejected"
    assert result.reason == "the header lacks the column(s) EVENT_TYPE"
    assert not jobs.jobs


def test_gzip_bom_and_crlf_files_are_read_and_staged_plain(env: Any) -> None:
    s3, jobs = env
    text = interactions(1_000).replace("\n", "\r\n")
    gz = gzip.compress(("\ufeff" + text).encode())
    result = run(drop(s3, "imports/interactions/crlf.csv.gz", gz))
    assert result.status == "started", result.reason
    staged = result.data_location.removeprefix(f"s3://{BUCKET}/")
    assert staged.startswith("staged/")
    plain = s3.get_object(Bucket=BUCKET, Key=staged)["Body"].read()
    assert plain.startswith(b"USER_ID,") and plain.count(b"\n") == 1_001
    jobs.complete()
    bom = run(drop(s3, "imports/interactions/bom.csv", "\ufeff" + interactions(1_000)))
    assert bom.data_location.startswith(f"s3://{BUCKET}/staged/")


def test_an_empty_file_is_refused(env: Any) -> None:
    s3, _ = env
    result = run(drop(s3, "imports/users/empty.csv", b""))
    assert (result.status, result.reason) == ("rejected", "the file is empty")


def test_keys_with_spaces_and_unicode_are_decoded(env: Any) -> None:
    s3, jobs = env
    key = "imports/users/Kunden März 2024+ü.csv"
    result = run(drop(s3, key, "USER_ID,COUNTRY\nu1,Deutschland\nu2,Österreich\n"))
    assert result.status == "started", result.reason
    assert report(s3, key)["status"] == "started"
    [job] = jobs.jobs.values()
    assert job["dataSource"]["dataLocation"] == f"s3://{BUCKET}/{key}"


def test_an_items_file_refreshes_the_item_table_and_full_is_asked_by_the_key(env: Any) -> None:
    s3, jobs = env
    body = "ITEM_ID,NAME,PRICE,CATEGORY\ni1,Teapot,20.5,kitchen\ni2,Kite,,toys\n"
    result = run(drop(s3, "imports/items/full/catalogue.csv", body))
    assert result.status == "started" and result.items_loaded == 2
    [job] = jobs.jobs.values()
    assert job["importMode"] == "FULL"
    table = boto3.resource("dynamodb", region_name=REGION).Table(TABLE)
    item = table.get_item(Key={"item_id": "i1"})["Item"]
    assert (item["name"], float(item["price"]), item["category"]) == ("Teapot", 20.5, "kitchen")
    assert "price" not in table.get_item(Key={"item_id": "i2"})["Item"]


def test_keys_outside_the_datasets_are_ignored(env: Any) -> None:
    s3, jobs = env
    assert run(drop(s3, "imports/orders/x.csv", "a,b\n")).status == "ignored"
    assert run(drop(s3, "imports/items/readme.txt", "hello")).status == "ignored"
    assert not jobs.jobs


@pytest.mark.parametrize(
    ("dataset", "text", "message"),
    [
        ("items", "ITEM_ID,NAME,COLOUR\ni1,a,red\n", "row(s)"),
        ("items", "ITEM_ID\ni1\n", "needs at least one metadata column"),
        ("users", "USER_ID,USER_ID\nu,u\n", "twice"),
    ],
)
def test_headers_that_do_not_fit_the_schema(dataset: Any, text: str, message: str) -> None:
    with pytest.raises(CsvError) as caught:
        list(read_text(io.StringIO(text), dataset, Validation()))
    assert message in str(caught.value) or "COLOUR" in str(caught.value)


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ("u1,i1,view,1.0,1700000000,extra", "6 fields where the header has 5"),
        (",i1,view,1.0,1700000000", "USER_ID is empty"),
        ("u1," + "i" * 257 + ",view,1.0,1700000000", "ITEM_ID is over 256 chars"),
        ("u1,i1,view,lots,1700000000", "EVENT_VALUE 'lots' is not a number"),
        ("u1,i1,view,nan,1700000000", "EVENT_VALUE is not a finite number"),
        (
            "u1,i1,view,1.0,1700000000000",
            "TIMESTAMP is after 2100: milliseconds instead of seconds?",
        ),
        ("u1,i1,view,1.0,2024-01-01", "TIMESTAMP '2024-01-01' is not epoch seconds"),
    ],
)
def test_row_errors_name_the_row_and_the_reason(row: str, reason: str) -> None:
    validation = Validation()
    text = HEADER + "u1,i1,view,,1700000000\n" + row + "\n"
    rows = list(read_text(io.StringIO(text), "interactions", validation))
    assert len(rows) == 1 and rows[0][3] is None
    assert validation.errors == [f"row 2: {reason}"]


def test_invalid_utf8_is_a_clear_error() -> None:
    raw = io.BytesIO(b"USER_ID,COUNTRY\nu1,\xff\xfe\n")
    from chalicelib.csvdata import text_stream

    with pytest.raises(CsvError, match="not UTF-8"):
        list(read_text(text_stream(raw, gzipped=False), "users", Validation()))


def test_the_cli_imports_a_local_file_on_aws_like_the_s3_trigger(
    env: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from chalicelib import cli
    from chalicelib.seam import runtime

    _, jobs = env
    for key, value in {
        "RECS_PROVIDER": "personalize",
        "RECS_DATASET_GROUP_ARN": GROUP,
        "RECS_IMPORT_ROLE_ARN": ROLE,
        "RECS_IMPORT_BUCKET": BUCKET,
        "RECS_ITEMS_TABLE": TABLE,
    }.items():
        monkeypatch.setenv(key, value)
    runtime.reset()
    path = tmp_path / "users.csv"
    path.write_text("USER_ID,COUNTRY\nu1,France\n")
    try:
        assert cli.main(["import", "users", str(path), "--mode", "full"]) == 0
        out = json.loads(capsys.readouterr().out)
        assert (out["status"], out["mode"], out["source"]) == (
            "started",
            "FULL",
            f"s3://{BUCKET}/imports/users/users.csv",
        )
        [job] = jobs.jobs.values()
        assert job["dataSource"]["dataLocation"] == f"s3://{BUCKET}/imports/users/users.csv"
        assert cli.main(["import", "items", f"s3://{BUCKET}/imports/users/users.csv"]) == 2
    finally:
        runtime.reset()


def test_the_cli_refuses_a_missing_or_misnamed_local_file_before_uploading(
    env: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chalicelib import cli
    from chalicelib.seam import runtime

    s3, jobs = env
    monkeypatch.setenv("RECS_PROVIDER", "personalize")
    monkeypatch.setenv("RECS_IMPORT_BUCKET", BUCKET)
    runtime.reset()
    notes = tmp_path / "users.txt"
    notes.write_text("USER_ID,COUNTRY\nu1,France\n")
    try:
        assert cli.main(["import", "users", str(tmp_path / "missing.csv")]) == 2
        assert cli.main(["import", "users", str(notes)]) == 2
    finally:
        runtime.reset()
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET)
    assert not jobs.jobs


def test_the_aws_provider_imports_a_local_file_as_import_s3_does(env: Any, tmp_path: Path) -> None:
    from chalicelib.providers.personalize import PersonalizeProvider

    _, jobs = env
    workflow = PersonalizeProvider(settings()).workflow
    good = tmp_path / "history.csv"
    good.write_text(interactions(1_200))
    report_ = workflow.import_file("interactions", str(good), "full", None)
    assert (report_.status, report_.rows, report_.imported, report_.errors) == (
        "started", 1_200, 1_200, [],
    )  # fmt: skip
    [job] = jobs.jobs.values()
    assert job["importMode"] == "FULL"
    assert job["dataSource"]["dataLocation"] == f"s3://{BUCKET}/imports/interactions/history.csv"

    bad = tmp_path / "bad.csv"
    bad.write_text(interactions(1_200, bad_row=7))
    refused = workflow.import_file("interactions", str(bad), "incremental", None)
    assert refused.status == "rejected" and refused.imported == 0
    assert refused.errors[0] == "1 row(s) are invalid"
    assert refused.errors[1].startswith("row 7, TIMESTAMP:")
    assert len(jobs.jobs) == 1
