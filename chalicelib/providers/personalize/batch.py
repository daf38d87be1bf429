"""Batch inference on Amazon Personalize: the JSON-lines input goes to S3, a
CreateBatchInferenceJob runs on one solution version (with the filter and number of results),
the command waits with progress (DescribeBatchInferenceJob) and downloads `<input name>.out`.

Lines that are not JSON objects are not uploaded (Personalize would fail on them): they are
written to the end of the output with their `error`, so nothing is dropped. The command's default
filter values are written into every line that lacks them (Personalize takes values per line).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from chalicelib import aws
from chalicelib.batchfile import read_lines, with_default_values
from chalicelib.config import ProjectConfig
from chalicelib.providers.base import BatchReport, FilterRequest, Progress, ProviderError
from chalicelib.providers.personalize import arns
from chalicelib.settings import Settings

DONE, FAILED = "ACTIVE", "CREATE FAILED"
KEEP_ERRORS = 100


def _campaign_for(settings: Settings, config: ProjectConfig, solution: str | None) -> str:
    arn_of = {
        "recommendations": settings.campaign_arn,
        "related-items": settings.similar_items_campaign_arn,
        "rankings": settings.ranking_campaign_arn,
    }
    if solution is None:
        return arn_of["recommendations"]
    for route, campaign in config.campaigns.items():
        if campaign.solution == solution and arn_of.get(route):
            return arn_of[route]
    return ""


def solution_version_arn(settings: Settings, config: ProjectConfig, solution: str | None) -> str:
    """`--solution` as a solution version ARN, else the version a campaign of that solution (or
    the recommendations campaign) serves."""
    if solution and solution.startswith("arn:"):
        return solution
    campaign = _campaign_for(settings, config, solution)
    if not campaign or ":recommender/" in campaign:
        raise ProviderError(
            "no campaign gives a solution version to use: pass --solution SOLUTION_VERSION_ARN"
        )
    found = aws.client("personalize").describe_campaign(campaignArn=campaign)["campaign"]
    return found["solutionVersionArn"]


def _prepare(
    input_path: Path, staged: Path, flt: FilterRequest | None
) -> tuple[int, list[dict[str, Any]]]:
    """Write the lines to upload; return (lines uploaded, error records of the others)."""
    uploaded, bad = 0, []
    with staged.open("w", encoding="utf-8") as out:
        for number, raw in read_lines(input_path):
            try:
                line = json.loads(raw)
            except json.JSONDecodeError as exc:
                bad.append({"input": raw.strip(), "output": None, "error": f"bad JSON: {exc}",
                            "line": number})  # fmt: skip
                continue
            if not isinstance(line, dict):
                bad.append({"input": line, "output": None,
                            "error": "a line must be a JSON object", "line": number})  # fmt: skip
                continue
            if flt is not None:
                with_default_values(line, flt.values)
            out.write(json.dumps(line, ensure_ascii=False) + "\n")
            uploaded += 1
    return uploaded, bad


def run_batch(
    settings: Settings,
    config: ProjectConfig,
    input_path: Path,
    output_path: Path,
    num_results: int,
    *,
    solution: str | None = None,
    flt: FilterRequest | None = None,
    progress: Progress | None = None,
    poll_seconds: float = 30.0,
    sleep: Callable[[float], None] = time.sleep,
) -> BatchReport:
    bucket = settings.batch_bucket or settings.import_bucket
    if not bucket or not settings.import_role_arn:
        raise ProviderError(
            "set RECS_BATCH_BUCKET (or RECS_IMPORT_BUCKET) and RECS_IMPORT_ROLE_ARN"
        )
    if not 1 <= num_results <= 500:
        raise ValueError("the number of results must be between 1 and 500")
    params: dict[str, Any] = {}
    if flt is not None:
        if flt.name not in config.filters:
            raise ValueError(f"no filter {flt.name!r} in the configuration")
        params["filterArn"] = arns.filter_arn(settings.dataset_group_arn, flt.name)
    version_arn = solution_version_arn(settings, config, solution)

    job = f"{config.dataset_group.name}-batch-{time.strftime('%Y%m%dT%H%M%S')}"[:63]
    staged = output_path.with_name(output_path.name + ".input")
    uploaded, bad = _prepare(input_path, staged, flt)
    s3 = aws.client("s3")
    prefix = f"batch/{job}"
    key = f"{prefix}/input/{input_path.name}"
    try:
        s3.upload_file(str(staged), bucket, key)
    finally:
        staged.unlink(missing_ok=True)

    personalize = aws.client("personalize")
    arn = personalize.create_batch_inference_job(
        jobName=job,
        solutionVersionArn=version_arn,
        numResults=num_results,
        jobInput={"s3DataSource": {"path": f"s3://{bucket}/{key}"}},
        jobOutput={"s3DataDestination": {"path": f"s3://{bucket}/{prefix}/output/"}},
        roleArn=settings.import_role_arn,
        **params,
    )["batchInferenceJobArn"]
    _wait(personalize, arn, job, progress=progress, poll_seconds=poll_seconds, sleep=sleep)

    s3.download_file(bucket, f"{prefix}/output/{input_path.name}.out", str(output_path))
    return _finish(output_path, bad, uploaded)


def _wait(
    personalize: Any,
    arn: str,
    job: str,
    *,
    progress: Progress | None,
    poll_seconds: float,
    sleep: Callable[[float], None],
) -> None:
    """Poll DescribeBatchInferenceJob until the job is ACTIVE; its failureReason if it fails."""
    started = time.monotonic()
    while True:
        found = personalize.describe_batch_inference_job(batchInferenceJobArn=arn)
        status = found["batchInferenceJob"]["status"]
        if progress:
            progress(f"{job}: {status}", int(time.monotonic() - started), None)
        if status == DONE:
            return
        if status == FAILED:
            reason = found["batchInferenceJob"].get("failureReason", "no reason given")
            raise ProviderError(f"batch inference job {job} failed: {reason}")
        sleep(poll_seconds)


def _finish(output_path: Path, bad: list[dict[str, Any]], uploaded: int) -> BatchReport:
    """Count Personalize's output and append the lines that could not be uploaded."""
    lines = written = 0
    errors: list[str] = []
    for number, raw in read_lines(output_path):
        lines += 1
        record = json.loads(raw)
        if record.get("error"):
            if len(errors) < KEEP_ERRORS:
                errors.append(f"output line {number}: {record['error']}")
        else:
            written += 1
    if bad:
        with output_path.open("rb") as fh:  # Personalize may leave the last line unterminated
            fh.seek(max(0, output_path.stat().st_size - 1))
            needs_newline = fh.read(1) not in (b"", b"\n")
        with output_path.open("a", encoding="utf-8") as out:
            if needs_newline:
                out.write("\n")
            for record in bad:
                number = record.pop("line")
                if len(errors) < KEEP_ERRORS:
                    errors.append(f"line {number}: {record['error']}")
                out.write(json.dumps(record, ensure_ascii=False) + "\n")
    if lines != uploaded:
        errors.append(f"{uploaded} lines uploaded, {lines} in Personalize's output")
    return BatchReport(lines + len(bad), written, errors)
