"""Batch inference on Amazon Personalize: the JSON-lines input goes to S3, a
CreateBatchInferenceJob runs on one solution version (with the filter and number of results),
the command waits with progress (DescribeBatchInferenceJob) and downloads `<input name>.out`.

Lines that are not JSON objects are not uploaded (Personalize would fail on them): they are
written into the output with their `error` at their own place, found by matching the `input` that
Personalize echoes on each output line, so nothing is dropped and line N of the output answers
line N of the input. The command's default filter values are encoded as GetRecommendations'
(strings quoted, numbers bare, per the filter's expression) and written into every line that
lacks them: Personalize takes values per line.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from chalicelib import aws
from chalicelib.batchfile import read_lines
from chalicelib.config import ProjectConfig
from chalicelib.filters import FilterError, FilterRequest
from chalicelib.filters.values import PlaceholderUse, encode, scan_placeholders
from chalicelib.names import personalize_name
from chalicelib.providers.personalize import arns
from chalicelib.settings import Settings
from chalicelib.vocabulary import BatchReport, Progress, ProviderError

DONE, FAILED = "ACTIVE", "CREATE FAILED"
KEEP_ERRORS = 100
MAX_WAIT_SECONDS = 24 * 3600  # Personalize's batch jobs take minutes to hours, not days


def default_values(expression: str, values: Mapping[str, Sequence[str]]) -> dict[str, str]:
    """The command's filter values as `filterValues` entries. None is required here (a line may
    bring its own), but each must be a placeholder of the expression and of the right kind."""
    uses = scan_placeholders(expression)
    unknown = sorted(set(values) - set(uses))
    if unknown:
        raise FilterError(f"the filter has no placeholder ${unknown[0]}")
    return encode({n: PlaceholderUse(u.kind, required=False) for n, u in uses.items()}, values)


def _key(line: object) -> bytes:
    """What identifies an uploaded line in Personalize's output (its echoed `input`)."""
    text = json.dumps(line, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.blake2b(text.encode(), digest_size=12).digest()


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
    return str(found["solutionVersionArn"])


def _prepare(
    input_path: Path, staged: Path, defaults: Mapping[str, str]
) -> tuple[list[tuple[int, bytes]], list[dict[str, Any]]]:
    """Write the lines to upload; return (line number and key of each uploaded line, error
    records of the others with their line numbers)."""
    uploaded: list[tuple[int, bytes]] = []
    bad: list[dict[str, Any]] = []
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
            if defaults:
                own = line.get("filterValues")
                line["filterValues"] = {**defaults, **(own if isinstance(own, dict) else {})}
            out.write(json.dumps(line, ensure_ascii=False) + "\n")
            uploaded.append((number, _key(line)))
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
    defaults: dict[str, str] = {}
    if flt is not None:
        if flt.name not in config.filters:
            raise ValueError(f"no filter {flt.name!r} in the configuration")
        params["filterArn"] = arns.filter_arn(settings.dataset_group_arn, flt.name)
        defaults = default_values(config.filters[flt.name], flt.values)
    version_arn = solution_version_arn(settings, config, solution)

    job = personalize_name(config.dataset_group.name, "batch", time.strftime("%Y%m%dT%H%M%S"))
    staged = output_path.with_name(output_path.name + ".input")
    uploaded, bad = _prepare(input_path, staged, defaults)
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
    wait_for_job(personalize, arn, job, progress=progress, poll_seconds=poll_seconds, sleep=sleep)

    s3.download_file(bucket, f"{prefix}/output/{input_path.name}.out", str(output_path))
    return _finish(output_path, bad, uploaded)


def wait_for_job(
    personalize: Any,
    arn: str,
    job: str,
    *,
    progress: Progress | None,
    poll_seconds: float,
    sleep: Callable[[float], None],
    max_wait: float = MAX_WAIT_SECONDS,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Poll DescribeBatchInferenceJob until the job is ACTIVE; its failureReason if it fails."""
    started = clock()
    while True:
        found = personalize.describe_batch_inference_job(batchInferenceJobArn=arn)
        status = found["batchInferenceJob"]["status"]
        waited = clock() - started
        if progress:
            progress(f"{job}: {status}", int(waited), None)
        if status == DONE:
            return
        if status == FAILED:
            reason = found["batchInferenceJob"].get("failureReason", "no reason given")
            raise ProviderError(f"batch inference job {job} failed: {reason}")
        if waited > max_wait:
            raise ProviderError(
                f"batch inference job {job} is still {status} after {int(waited)} s; it goes on "
                f"in Personalize ({arn}): its output will be under the job's S3 prefix"
            )
        sleep(poll_seconds)


def _finish(
    output_path: Path, bad: list[dict[str, Any]], uploaded: list[tuple[int, bytes]]
) -> BatchReport:
    """Count Personalize's output and put the lines that could not be uploaded back in place.

    Each output line is matched with the next uploaded line by its echoed `input`; should
    Personalize ever write them in another order, the remaining bad lines go at the end.
    """
    lines = written = 0
    errors: list[str] = []
    pending = deque(bad)  # in input order
    merged = output_path.with_name(output_path.name + ".merged")
    in_order = True

    def flush(before: float) -> None:
        while pending and pending[0]["line"] < before:
            record = pending.popleft()
            number = record.pop("line")
            if len(errors) < KEEP_ERRORS:
                errors.append(f"line {number}: {record['error']}")
            out.write(json.dumps(record, ensure_ascii=False) + "\n")

    with merged.open("w", encoding="utf-8") as out:
        for number, raw in read_lines(output_path):
            record = json.loads(raw)
            if in_order and pending:
                expected = uploaded[lines] if lines < len(uploaded) else None
                if expected is not None and _key(record.get("input")) == expected[1]:
                    flush(expected[0])
                else:
                    in_order = False
            lines += 1
            if record.get("error"):
                if len(errors) < KEEP_ERRORS:
                    errors.append(f"output line {number}: {record['error']}")
            else:
                written += 1
            out.write(raw + "\n")
        flush(float("inf"))
    merged.replace(output_path)
    if lines != len(uploaded):
        errors.append(f"{len(uploaded)} lines uploaded, {lines} in Personalize's output")
    return BatchReport(lines + len(bad), written, errors)
