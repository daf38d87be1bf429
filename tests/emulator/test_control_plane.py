"""The emulator's control plane through an unmodified boto3 client: the service's validation
(maxima, patterns and enums botocore skips), its exception names, statuses, paging and deletes."""

from __future__ import annotations

import json
import time

import pytest
from botocore.exceptions import ClientError

from tests.emulator_support import (
    INTERACTIONS_SCHEMA,
    ROLE,
    Emulated,
    shop_csv,
    wait,
)


def code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


def test_a_resource_goes_from_pending_through_in_progress_to_active(start_emulator) -> None:
    emulated = start_emulator(step_seconds=0.3)
    arn = emulated.control.create_dataset_group(name="shop")["datasetGroupArn"]
    seen = []
    for _ in range(200):
        status = emulated.control.describe_dataset_group(datasetGroupArn=arn)["datasetGroup"][
            "status"
        ]
        if not seen or seen[-1] != status:
            seen.append(status)
        if status == "ACTIVE":
            break
        time.sleep(0.02)
    assert seen == ["CREATE PENDING", "CREATE IN_PROGRESS", "ACTIVE"]


def test_requests_breaking_the_model_are_refused_as_the_service_does(emulated: Emulated) -> None:
    c = emulated.control
    with pytest.raises(ClientError) as bad_name:
        c.create_dataset_group(name="no spaces allowed")
    assert code(bad_name) == "ValidationException"
    assert "pattern" in str(bad_name.value)
    with pytest.raises(ClientError) as too_long:
        c.create_dataset_group(name="x" * 64)  # botocore never checks a maximum
    assert code(too_long) == "ValidationException"
    with pytest.raises(ClientError) as page:
        c.list_dataset_groups(maxResults=101)
    assert code(page) == "ValidationException"
    group = emulated.group()
    dataset = emulated.dataset(group, "Interactions", INTERACTIONS_SCHEMA)
    with pytest.raises(ClientError) as mode:
        c.create_dataset_import_job(
            jobName="j",
            datasetArn=dataset,
            dataSource={"dataLocation": "s3://shop-data/x.csv"},
            roleArn=ROLE,
            importMode="PARTIAL",  # not in the enum
        )
    assert code(mode) == "ValidationException"


def test_unknown_and_duplicate_resources_get_the_service_exceptions(emulated: Emulated) -> None:
    c = emulated.control
    group = emulated.group()
    with pytest.raises(c.exceptions.ResourceAlreadyExistsException):
        c.create_dataset_group(name="shop")
    with pytest.raises(c.exceptions.ResourceNotFoundException):
        c.describe_campaign(campaignArn=group.replace("dataset-group", "campaign"))
    with pytest.raises(c.exceptions.ResourceNotFoundException):
        c.list_datasets(datasetGroupArn=group + "-gone")
    tracker = c.create_event_tracker(name="events", datasetGroupArn=group)
    emulated.active("event_tracker", tracker["eventTrackerArn"])
    with pytest.raises(c.exceptions.ResourceAlreadyExistsException):  # one per dataset group
        c.create_event_tracker(name="events2", datasetGroupArn=group)
    with pytest.raises(c.exceptions.ResourceInUseException):
        c.delete_dataset_group(datasetGroupArn=group)
    c.delete_event_tracker(eventTrackerArn=tracker["eventTrackerArn"])
    c.delete_dataset_group(datasetGroupArn=group)
    assert c.list_dataset_groups()["datasetGroups"] == []


def test_lists_page_with_next_token_and_max_results(emulated: Emulated) -> None:
    c = emulated.control
    group = emulated.group()
    for n in range(5):
        c.create_filter(
            name=f"f{n}",
            datasetGroupArn=group,
            filterExpression=f'EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("t{n}")',
        )
    names, token, pages = [], None, 0
    while True:
        page = c.list_filters(
            datasetGroupArn=group, maxResults=2, **({"nextToken": token} if token else {})
        )
        names += [f["name"] for f in page["Filters"]]
        pages += 1
        token = page.get("nextToken")
        if not token:
            break
    assert pages == 3
    assert names == ["f4", "f3", "f2", "f1", "f0"]  # newest first
    paginated = c.get_paginator("list_filters").paginate(datasetGroupArn=group)
    assert sum(len(p["Filters"]) for p in paginated) == 5
    with pytest.raises(c.exceptions.InvalidNextTokenException):
        c.list_filters(datasetGroupArn=group, nextToken="not-a-token")


def test_filters_are_checked_at_create_with_the_service_limits(emulated: Emulated) -> None:
    c = emulated.control
    group = emulated.group()
    with pytest.raises(c.exceptions.InvalidInputException) as bad:
        c.create_filter(
            name="bad", datasetGroupArn=group, filterExpression="EXCLUDE ItemID WHERE Items.X"
        )
    assert "filter expression" in str(bad.value)
    for n in range(10):
        c.create_filter(
            name=f"f{n}",
            datasetGroupArn=group,
            filterExpression=f'EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("t{n}")',
        )
    with pytest.raises(c.exceptions.LimitExceededException):
        c.create_filter(
            name="f10",
            datasetGroupArn=group,
            filterExpression='EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("x")',
        )


def test_a_schema_without_the_required_fields_is_refused_for_its_dataset(
    emulated: Emulated,
) -> None:
    c = emulated.control
    group = emulated.group()
    schema = {**INTERACTIONS_SCHEMA, "fields": INTERACTIONS_SCHEMA["fields"][:2]}
    arn = c.create_schema(name="no-timestamp", schema=json.dumps(schema))["schemaArn"]
    with pytest.raises(c.exceptions.InvalidInputException) as refused:
        c.create_dataset(name="i", schemaArn=arn, datasetGroupArn=group, datasetType="Interactions")
    assert "TIMESTAMP" in str(refused.value)


def test_imports_fail_like_the_service_with_a_reason(emulated: Emulated) -> None:
    c = emulated.control
    group = emulated.group()
    dataset = emulated.dataset(group, "Interactions", INTERACTIONS_SCHEMA)
    with pytest.raises(c.exceptions.InvalidInputException) as first:
        c.create_dataset_import_job(
            jobName="incremental-first",
            datasetArn=dataset,
            dataSource={"dataLocation": "s3://shop-data/a.csv"},
            roleArn=ROLE,
            importMode="INCREMENTAL",
        )
    assert "bulk import" in str(first.value)
    broken = emulated.import_csv(dataset, "bad.csv", "USER_ID,ITEM_ID\nu1,i1\n")
    assert broken["status"] == "CREATE FAILED"
    assert "TIMESTAMP" in broken["failureReason"]
    small = emulated.import_csv(dataset, "small.csv", shop_csv(users=4, per_user=5))
    assert small["status"] == "CREATE FAILED"
    assert "at least 1000" in small["failureReason"]
    missing = c.create_dataset_import_job(
        jobName="missing",
        datasetArn=dataset,
        dataSource={"dataLocation": "s3://no-such-bucket/x.csv"},
        roleArn=ROLE,
    )["datasetImportJobArn"]
    job = wait(
        lambda: c.describe_dataset_import_job(datasetImportJobArn=missing)["datasetImportJob"]
    )
    assert job["status"] == "CREATE FAILED"
    assert "NoSuchBucket" in job["failureReason"]
    good = emulated.import_csv(dataset, "good.csv", shop_csv())
    assert good["status"] == "ACTIVE"
    jobs = c.list_dataset_import_jobs(datasetArn=dataset)["datasetImportJobs"]
    assert [j["status"] for j in jobs] == [
        "ACTIVE",
        "CREATE FAILED",
        "CREATE FAILED",
        "CREATE FAILED",
    ]


def test_training_without_enough_data_fails_with_a_reason(emulated: Emulated) -> None:
    c = emulated.control
    group = emulated.group()
    emulated.dataset(group, "Interactions", INTERACTIONS_SCHEMA)
    solution = c.create_solution(
        name="up",
        datasetGroupArn=group,
        recipeArn="arn:aws:personalize:::recipe/aws-user-personalization",
    )["solutionArn"]
    emulated.active("solution", solution)
    version = c.create_solution_version(solutionArn=solution)["solutionVersionArn"]
    found = emulated.active("solution_version", version)
    assert found["status"] == "CREATE FAILED"
    assert found["failureReason"]
    with pytest.raises(c.exceptions.ResourceInUseException):
        c.get_solution_metrics(solutionVersionArn=version)
    with pytest.raises(c.exceptions.InvalidInputException):
        c.create_solution(
            name="trending",
            datasetGroupArn=group,
            recipeArn="arn:aws:personalize:::recipe/aws-trending-now",
        )


def test_a_resource_a_restart_interrupted_is_finished_by_the_next_start(start_emulator) -> None:
    first = start_emulator(step_seconds=5.0)
    arn = first.control.create_dataset_group(name="shop")["datasetGroupArn"]
    assert first.control.describe_dataset_group(datasetGroupArn=arn)["datasetGroup"][
        "status"
    ].startswith("CREATE")
    again = start_emulator()  # stops the first: the group was still being created
    found = wait(lambda: again.control.describe_dataset_group(datasetGroupArn=arn)["datasetGroup"])
    assert found["status"] == "ACTIVE"


def test_arns_carry_the_region_the_request_was_signed_for(emulated: Emulated) -> None:
    import boto3

    ireland = boto3.client("personalize", region_name="eu-west-1")
    arn = ireland.create_dataset_group(name="dublin")["datasetGroupArn"]
    assert arn == "arn:aws:personalize:eu-west-1:123456789012:dataset-group/dublin"
    assert emulated.group().startswith("arn:aws:personalize:us-east-1:")
