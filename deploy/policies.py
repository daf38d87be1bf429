"""The IAM policy of each Lambda function of a stage: exactly the actions its code (and Lambda, for
its event source) calls, on that stage's resources only.

Chalice gives each function its own role when `autogen_policy` is off; `python -m deploy sync`
writes these documents to `.chalice/policy-<stage>-<function>.json` and names them per function
in `.chalice/config.json`. The resources come from the infrastructure stack's outputs and the
stage's Personalize dataset group, so no statement reaches another stage's resources.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chalicelib.providers.personalize.imports import job_prefix

APP_NAME = "braze-personalize-recs"
FUNCTIONS = ("api_handler", "ingest_sqs", "ingest_kinesis", "import_s3", "ingest_currents")


@dataclass(frozen=True)
class StageResources:
    """What one stage's functions may touch (ARNs from the stack, names from Personalize)."""

    stage: str
    region: str
    account: str
    events_queue_arn: str
    dead_letter_queue_arn: str
    import_bucket: str
    import_role_arn: str
    items_table_arn: str
    import_failures_queue_arn: str
    currents_failures_queue_arn: str
    dataset_group: str  # the Personalize dataset group's name
    tracker_arn: str  # the dataset group's event tracker (PutEvents)
    events_stream_arn: str = ""  # none when the stage has no stream
    served_table_arn: str = ""  # what was served and Currents engagements (SPEC section 11)
    currents_bucket: str = ""  # where Braze Currents writes (default: the import bucket)

    @property
    def personalize(self) -> str:
        return f"arn:aws:personalize:{self.region}:{self.account}"

    def function_name(self, function: str) -> str:
        """The Lambda function Chalice deploys (`<app>-<stage>` for the REST API)."""
        suffix = "" if function == "api_handler" else f"-{function}"
        return f"{APP_NAME}-{self.stage}{suffix}"


def _statement(sid: str, actions: list[str], resources: list[str] | str, **extra: Any) -> dict:
    return {"Sid": sid, "Effect": "Allow", "Action": actions, "Resource": resources, **extra}


def _logs(names: StageResources, function: str) -> dict[str, Any]:
    group = (
        f"arn:aws:logs:{names.region}:{names.account}:log-group:"
        f"/aws/lambda/{names.function_name(function)}"
    )
    actions = ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"]
    return _statement("OwnLogs", actions, [group, f"{group}:*"])


def _forward(names: StageResources) -> list[dict[str, Any]]:
    """PutEvents, PutUsers, PutItems (the ingest functions), and the item table they update."""
    group = names.dataset_group
    return [
        _statement("PutEvents", ["personalize:PutEvents"], names.tracker_arn),
        _statement(
            "PutUsersAndItems",
            ["personalize:PutUsers", "personalize:PutItems"],
            [
                f"{names.personalize}:dataset/{group}/USERS",
                f"{names.personalize}:dataset/{group}/ITEMS",
            ],
        ),
        _statement("ItemTableWrites", ["dynamodb:PutItem"], names.items_table_arn),
    ]


def api_handler(names: StageResources) -> list[dict[str, Any]]:
    group, stage = names.dataset_group, names.stage
    prefix = f"{names.region}:{names.account}"
    return [
        _logs(names, "api_handler"),
        _statement(
            "Recommendations",
            ["personalize:GetRecommendations", "personalize:GetPersonalizedRanking"],
            [
                f"{names.personalize}:campaign/{group}-*",
                f"{names.personalize}:recommender/{group}-*",
                f"{names.personalize}:filter/{group}-*",
            ],
        ),
        _statement(  # GET /health: the solution version the campaign serves
            "HealthModelVersion",
            ["personalize:DescribeCampaign"],
            f"{names.personalize}:campaign/{group}-*",
        ),
        _statement(  # POST /events, /users, /items only queue
            "QueueEvents", ["sqs:GetQueueUrl", "sqs:SendMessage"], names.events_queue_arn
        ),
        _statement(  # every answer's served list (recommendation id, items, campaign)
            "ServedLists", ["dynamodb:PutItem"], names.served_table_arn
        ),
        _statement(  # decoration, the fallback list, POST /items
            "ItemCatalogue",
            ["dynamodb:BatchGetItem", "dynamodb:GetItem", "dynamodb:PutItem"],
            names.items_table_arn,
        ),
        # RECS_API_KEYS_PARAMETER: an SSM SecureString parameter or a Secrets Manager secret.
        _statement(
            "ApiKeysParameter",
            ["ssm:GetParameter"],
            f"arn:aws:ssm:{prefix}:parameter/braze-recs/{stage}/api-keys",
        ),
        _statement(  # SecureString decryption with the AWS managed key, through SSM only
            "ApiKeysParameterDecrypt",
            ["kms:Decrypt"],
            f"arn:aws:kms:{prefix}:key/*",
            Condition={"StringEquals": {"kms:ViaService": f"ssm.{names.region}.amazonaws.com"}},
        ),
        _statement(
            "ApiKeysSecret",
            ["secretsmanager:GetSecretValue"],
            f"arn:aws:secretsmanager:{prefix}:secret:braze-recs/{stage}/api-keys-*",
        ),
    ]


def ingest_sqs(names: StageResources) -> list[dict[str, Any]]:
    return [
        _logs(names, "ingest_sqs"),
        _statement(  # Lambda's polling (Receive, Delete, GetQueueAttributes) and the handler's
            "EventsQueue",
            [
                "sqs:ReceiveMessage",
                "sqs:DeleteMessage",
                "sqs:GetQueueAttributes",
                "sqs:GetQueueUrl",
                "sqs:SendMessage",
            ],
            names.events_queue_arn,
        ),
        _statement(
            "DeadLetters", ["sqs:GetQueueUrl", "sqs:SendMessage"], names.dead_letter_queue_arn
        ),
        *_forward(names),
    ]


def ingest_kinesis(names: StageResources) -> list[dict[str, Any]]:
    stream = names.events_stream_arn
    return [
        _logs(names, "ingest_kinesis"),
        _statement(  # Lambda's polling, and records written back when the queue is out
            "EventsStream",
            [
                "kinesis:DescribeStream",
                "kinesis:DescribeStreamSummary",
                "kinesis:GetRecords",
                "kinesis:GetShardIterator",
                "kinesis:ListShards",
                "kinesis:PutRecords",
            ],
            stream,
        ),
        # Lambda's Kinesis poller lists streams; ListStreams has no resource-level permission.
        _statement("ListStreams", ["kinesis:ListStreams"], "*"),
        _statement(
            "HandOn",
            ["sqs:GetQueueUrl", "sqs:SendMessage"],
            [names.events_queue_arn, names.dead_letter_queue_arn],
        ),
        *_forward(names),
    ]


def import_s3(names: StageResources) -> list[dict[str, Any]]:
    bucket = f"arn:aws:s3:::{names.import_bucket}"
    group = names.dataset_group
    return [
        _logs(names, "import_s3"),
        _statement("ReadImports", ["s3:GetObject", "s3:GetObjectVersion"], f"{bucket}/imports/*"),
        # Without ListBucket S3 answers 403, not 404, for the report a first notification
        # looks for.
        _statement("ListBucket", ["s3:ListBucket"], bucket),
        _statement("Reports", ["s3:GetObject", "s3:PutObject"], f"{bucket}/reports/*"),
        # Plain copies of gzipped or BOM files (multipart above 8 MB; the bucket's lifecycle
        # rule clears an upload that failed half-way).
        _statement("StagedCopies", ["s3:PutObject"], f"{bucket}/staged/*"),
        _statement(
            "ImportJobs",
            ["personalize:CreateDatasetImportJob"],
            [
                f"{names.personalize}:dataset-import-job/{job_prefix(group)}-*",
                f"{names.personalize}:dataset/{group}/*",
            ],
        ),
        # Is this the dataset's first import (FULL)? A List action: no resource-level scope.
        _statement("ListImportJobs", ["personalize:ListDatasetImportJobs"], "*"),
        _statement(
            "PassTheImportRole",
            ["iam:PassRole"],
            names.import_role_arn,
            Condition={"StringEquals": {"iam:PassedToService": "personalize.amazonaws.com"}},
        ),
        _statement("ItemTableLoads", ["dynamodb:BatchWriteItem"], names.items_table_arn),
        # Lambda sends an event that failed every retry to the on-failure destination with the
        # function's own role.
        _statement("FailureDestination", ["sqs:SendMessage"], names.import_failures_queue_arn),
    ]


def ingest_currents(names: StageResources) -> list[dict[str, Any]]:
    bucket = names.currents_bucket or names.import_bucket
    return [
        _logs(names, "ingest_currents"),
        _statement("ReadCurrents", ["s3:GetObject"], f"arn:aws:s3:::{bucket}/currents/*"),
        _statement(  # the served lists Content Cards join, claims (conditional puts, marked
            "ServedTable",  # done by a conditional update, released by a delete), engagements
            [
                "dynamodb:Query",
                "dynamodb:PutItem",
                "dynamodb:UpdateItem",
                "dynamodb:DeleteItem",
                "dynamodb:BatchWriteItem",
            ],
            names.served_table_arn,
        ),
        _statement("PutEvents", ["personalize:PutEvents"], names.tracker_arn),
        _statement(
            "DeadLetters", ["sqs:GetQueueUrl", "sqs:SendMessage"], names.dead_letter_queue_arn
        ),
        # Lambda sends a file's event that failed every retry here, with the function's role.
        _statement("FailureDestination", ["sqs:SendMessage"], names.currents_failures_queue_arn),
    ]


BUILDERS = {
    "api_handler": api_handler,
    "ingest_sqs": ingest_sqs,
    "ingest_kinesis": ingest_kinesis,
    "import_s3": import_s3,
    "ingest_currents": ingest_currents,
}


def policies(names: StageResources) -> dict[str, dict[str, Any]]:
    """Function name -> its policy document (no Kinesis function without a stream)."""
    wanted = [f for f in FUNCTIONS if f != "ingest_kinesis" or names.events_stream_arn]
    return {
        function: {"Version": "2012-10-17", "Statement": BUILDERS[function](names)}
        for function in wanted
    }
