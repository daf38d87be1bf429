"""A stage's names, from one source: the infrastructure stack's outputs (deploy/infrastructure.yaml)
and the stage's Personalize dataset group, written into `.chalice/config.json` and the
per-function IAM policies.

Chalice applies a stage's `environment_variables` before it imports `app.py`, which names the
event sources from them; the functions read the same variables at run time. So once `sync` has
written the stack's queue, stream, bucket and table into the stage, the stage's package
subscribes exactly those, its functions use exactly those, and its policies allow exactly
those: nothing is typed twice, and nothing is guessed.

Each output of the stack says in its description which setting it fills (`RECS_EVENTS_QUEUE`)
or whose ARN it is (`ARN of RECS_EVENTS_QUEUE`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deploy.policies import FUNCTIONS, StageResources, policies

PROJECT_ROOT = Path(__file__).resolve().parent.parent
ARN_OF = "ARN of "
# What `sync` writes into a stage from the stack (the outputs' descriptions name them).
STACK_SETTINGS = (
    "RECS_EVENTS_QUEUE",
    "RECS_DEAD_LETTER_QUEUE",
    "RECS_EVENTS_STREAM",
    "RECS_IMPORT_BUCKET",
    "RECS_IMPORT_ROLE_ARN",
    "RECS_ITEMS_TABLE",
    "RECS_IMPORT_FAILURES_QUEUE",
    "RECS_CURRENTS_FAILURES_QUEUE",
    "RECS_API_KEYS_PARAMETER",
    "RECS_SERVED_TABLE",
)
# The stack's resources the policies scope by ARN (the stream is optional).
STACK_ARNS = (
    "RECS_EVENTS_QUEUE",
    "RECS_DEAD_LETTER_QUEUE",
    "RECS_ITEMS_TABLE",
    "RECS_IMPORT_FAILURES_QUEUE",
    "RECS_CURRENTS_FAILURES_QUEUE",
    "RECS_SERVED_TABLE",
)
# Settings a deployable `personalize` stage cannot do without (the stream is optional).
REQUIRED = (*(s for s in STACK_SETTINGS if s != "RECS_EVENTS_STREAM"), "RECS_DATASET_GROUP_ARN")
REQUIRED = (*REQUIRED, "RECS_TRACKING_ID")
CAMPAIGN_SETTINGS = {
    "recommendations": "RECS_CAMPAIGN_ARN",
    "related-items": "RECS_SIMILAR_ITEMS_CAMPAIGN_ARN",
    "rankings": "RECS_RANKING_CAMPAIGN_ARN",
}


class StageError(RuntimeError):
    """The stage cannot be synced or deployed; the message lists what to do."""


@dataclass
class Stack:
    """A stack's outputs, split into settings and the ARNs of those settings' resources."""

    settings: dict[str, str] = field(default_factory=dict)
    arns: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_outputs(cls, outputs: list[dict[str, str]]) -> Stack:
        stack = cls()
        for output in outputs:
            described = output.get("Description", "").strip()
            if described.startswith(ARN_OF):
                stack.arns[described.removeprefix(ARN_OF)] = output["OutputValue"]
            elif described.startswith("RECS_"):
                stack.settings[described] = output["OutputValue"]
        return stack


def stack_outputs(stack_name: str, session: Any = None) -> Stack:
    """DescribeStacks' outputs (any AWS_ENDPOINT_URL_CLOUDFORMATION applies)."""
    client = (session or _session()).client("cloudformation")
    [described] = client.describe_stacks(StackName=stack_name)["Stacks"]
    if not described["StackStatus"].endswith("_COMPLETE") or "ROLLBACK" in described["StackStatus"]:
        raise StageError(f"stack {stack_name} is {described['StackStatus']}")
    return Stack.from_outputs(described.get("Outputs", []))


def personalize_settings(config_path: Path, session: Any = None) -> dict[str, str]:
    """The dataset group, event tracker and campaigns `python -m chalicelib setup` made for the
    configuration: their ARNs and tracking id, as stage settings (a campaign not trained yet is
    left out: run `sync` again after `train`)."""
    from chalicelib.config import load_config  # noqa: PLC0415
    from chalicelib.names import personalize_name  # noqa: PLC0415

    config = load_config(config_path)
    group = config.dataset_group.name
    client = (session or _session()).client("personalize")
    groups = _all(client, "list_dataset_groups", "datasetGroups")
    found = next((g for g in groups if g["name"] == group), None)
    if found is None:
        raise StageError(
            f"no Personalize dataset group {group!r}: run `python -m chalicelib setup` first"
        )
    group_arn = found["datasetGroupArn"]
    trackers = _all(client, "list_event_trackers", "eventTrackers", datasetGroupArn=group_arn)
    if not trackers:
        raise StageError(f"dataset group {group!r} has no event tracker: run setup first")
    tracker = client.describe_event_tracker(eventTrackerArn=trackers[0]["eventTrackerArn"])
    out = {
        "RECS_DATASET_GROUP_ARN": group_arn,
        "RECS_TRACKING_ID": tracker["eventTracker"]["trackingId"],
        "RECS_EVENT_TRACKER_ARN": tracker["eventTracker"]["eventTrackerArn"],
    }
    campaigns = {c["name"]: c["campaignArn"] for c in _all(client, "list_campaigns", "campaigns")}
    for route in config.campaigns:
        arn = campaigns.get(personalize_name(group, route))
        if arn:
            out[CAMPAIGN_SETTINGS[route]] = arn
    return out


def _all(client: Any, operation: str, key: str, **params: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for page in client.get_paginator(operation).paginate(**params):
        found += page.get(key, [])
    return found


def _session() -> Any:
    import boto3  # noqa: PLC0415

    return boto3.session.Session()


def resources(
    stage: str, stack: Stack, personalize: dict[str, str], currents_bucket: str = ""
) -> StageResources:
    """The stage's resources as the policies need them (account and region from the ARNs);
    `currents_bucket` is the stage's own RECS_CURRENTS_BUCKET, when it sets one."""
    missing = [s for s in STACK_ARNS if s not in stack.arns]
    if missing:  # a stack made by an older template: its new outputs are not there yet
        raise StageError(
            f"the stack has no output for {', '.join(missing)}: update it with "
            "`aws cloudformation deploy ... --template-file deploy/infrastructure.yaml` first"
        )
    queue = stack.arns["RECS_EVENTS_QUEUE"]  # arn:aws:sqs:REGION:ACCOUNT:NAME
    _, _, _, region, account, _ = queue.split(":", 5)
    group = personalize["RECS_DATASET_GROUP_ARN"].rpartition(":dataset-group/")[2]
    return StageResources(
        stage=stage,
        region=region,
        account=account,
        events_queue_arn=queue,
        dead_letter_queue_arn=stack.arns["RECS_DEAD_LETTER_QUEUE"],
        import_bucket=stack.settings["RECS_IMPORT_BUCKET"],
        import_role_arn=stack.settings["RECS_IMPORT_ROLE_ARN"],
        items_table_arn=stack.arns["RECS_ITEMS_TABLE"],
        import_failures_queue_arn=stack.arns["RECS_IMPORT_FAILURES_QUEUE"],
        currents_failures_queue_arn=stack.arns["RECS_CURRENTS_FAILURES_QUEUE"],
        dataset_group=group,
        tracker_arn=personalize["RECS_EVENT_TRACKER_ARN"],
        events_stream_arn=stack.arns.get("RECS_EVENTS_STREAM", ""),
        served_table_arn=stack.arns["RECS_SERVED_TABLE"],
        currents_bucket=currents_bucket,
    )


def policy_file(stage: str, function: str) -> str:
    return f"policy-{stage}-{function}.json"


def write_stage(
    project_dir: Path, stage: str, stack: Stack, personalize: dict[str, str]
) -> list[Path]:
    """Write the stage's settings into `.chalice/config.json` and each function's policy next
    to it; returns the files written."""
    chalice_dir = project_dir / ".chalice"
    config_path = chalice_dir / "config.json"
    config = json.loads(config_path.read_text())
    if stage not in config.get("stages", {}):
        raise StageError(f"no stage {stage!r} in {config_path}")
    entry = config["stages"][stage]
    variables = entry.setdefault("environment_variables", {})
    for setting in STACK_SETTINGS:
        variables[setting] = stack.settings.get(setting, "")  # no stream: no Kinesis consumer
    variables.update({k: v for k, v in personalize.items() if k != "RECS_EVENT_TRACKER_ARN"})
    currents_bucket = variables.get("RECS_CURRENTS_BUCKET", "").strip()
    documents = policies(resources(stage, stack, personalize, currents_bucket))
    entry["autogen_policy"] = False
    entry.pop("iam_policy_file", None)
    functions = entry.setdefault("lambda_functions", {})
    written = [config_path]
    for function in FUNCTIONS:
        own = functions.setdefault(function, {})
        if function in documents:
            own["iam_policy_file"] = policy_file(stage, function)
            path = chalice_dir / own["iam_policy_file"]
            path.write_text(json.dumps(documents[function], indent=2) + "\n")
            written.append(path)
        else:
            own.pop("iam_policy_file", None)
        if not own:
            functions.pop(function)
    config_path.write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n")
    return written


def check_stage(project_dir: Path, stage: str) -> list[str]:
    """What stops the stage from being packaged or deployed as its stack made it: settings
    `sync` has not written, missing policy files, and any other stage's name in this one."""
    chalice_dir = project_dir / ".chalice"
    config = json.loads((chalice_dir / "config.json").read_text())
    entry = config.get("stages", {}).get(stage)
    if entry is None:
        return [f"no stage {stage!r} in .chalice/config.json"]
    variables = {
        **config.get("environment_variables", {}),
        **entry.get("environment_variables", {}),
    }
    problems = [
        f"{setting} is not set: run `python -m deploy sync --stage {stage}`"
        for setting in REQUIRED
        if not variables.get(setting)
    ]
    if entry.get("autogen_policy", True):
        problems.append("autogen_policy must be false: each function runs under its own policy")
    functions = entry.get("lambda_functions", {})
    wanted = [f for f in FUNCTIONS if f != "ingest_kinesis" or variables.get("RECS_EVENTS_STREAM")]
    texts = [json.dumps(variables)]
    for function in wanted:
        name = functions.get(function, {}).get("iam_policy_file")
        if not name or not (chalice_dir / name).is_file():
            problems.append(f"{function} has no policy file: run `python -m deploy sync`")
        else:
            texts.append((chalice_dir / name).read_text())
    for other in config.get("stages", {}):
        if other != stage and any(
            f"braze-recs-{other}-" in t or f"braze-recs/{other}/" in t for t in texts
        ):
            problems.append(f"stage {stage!r} names resources of stage {other!r}")
    return problems


def sync(
    stage: str, stack_name: str, project_dir: Path = PROJECT_ROOT, session: Any = None
) -> list[Path]:
    """`python -m deploy sync`: the stack's outputs and the Personalize resources into the stage."""
    stack = stack_outputs(stack_name, session)
    config_path = project_dir / "chalicelib" / "recs.toml"
    config = json.loads((project_dir / ".chalice" / "config.json").read_text())
    given = (
        config.get("stages", {}).get(stage, {}).get("environment_variables", {}).get("RECS_CONFIG")
    )
    if given:
        config_path = project_dir / given
    return write_stage(project_dir, stage, stack, personalize_settings(config_path, session))
