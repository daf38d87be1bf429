"""Settings: every `RECS_*` environment variable, typed and documented in one place.

Chalice copies the stage's `environment_variables` from `.chalice/config.json` into the environment,
so a stage is configured there; the CLI and tests set the same variables.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

PROJECT_ROOT = Path(__file__).resolve().parent.parent


PREFIX = "RECS_"


class Settings(BaseModel):
    """Settings of one stage. Read from `RECS_*` variables; defaults fit the `local` provider.

    Keyword arguments win over the environment, which wins over the defaults. A plain pydantic
    model rather than pydantic-settings, whose import (dotenv, CLI and cloud-secret sources)
    would be Lambda start-up spent on an env lookup that pydantic's lax string parsing covers.
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    provider: Literal["local", "personalize"] = "local"
    # Comma-separated so that a new key can be added before the old one is removed (rotation).
    api_keys: str = Field(default="", repr=False)
    # Instead of api_keys: an SSM SecureString parameter (a name starting with `/`, or its ARN)
    # or a Secrets Manager secret (any other name, or its ARN) holding the keys, read once per
    # process and again after api_keys_ttl seconds (chalicelib/api/apikeys.py).
    api_keys_parameter: str = ""
    api_keys_ttl: int = Field(default=300, ge=0, le=86_400)
    data_dir: Path = PROJECT_ROOT / ".data"
    # `train` keeps this many newest versions of each solution, and every version a campaign
    # serves or recs.toml pins; older model files (tens of MB each) are removed.
    keep_versions: int = Field(default=3, ge=1, le=1000)
    # Inside chalicelib/ so that `chalice package` ships it with the Lambda.
    config: Path = PROJECT_ROOT / "chalicelib" / "recs.toml"

    tracking_id: str = ""
    dataset_group_arn: str = ""
    campaign_arn: str = ""
    similar_items_campaign_arn: str = ""
    ranking_campaign_arn: str = ""
    events_queue: str = ""
    dead_letter_queue: str = ""
    events_stream: str = ""
    import_bucket: str = ""
    import_role_arn: str = ""
    # Where `batch` stages batch-inference input and output on AWS (default: the import bucket).
    batch_bucket: str = ""
    items_table: str = ""
    # Dataset import jobs replace (full) or add to (incremental) a dataset; a key under
    # `imports/<dataset>/full/` or named `*.full.csv` asks for full whatever this says.
    import_mode: Literal["incremental", "full"] = "incremental"
    # `import_s3`'s on-failure destination (the stack's queue, written by `deploy sync`): Lambda's
    # record of each S3 event it gave up on, which `replay-imports` reads.
    import_failures_queue: str = ""
    # Only for an SQS mapping with ReportBatchItemFailures turned on (chalice deploy does not):
    # `ingest_sqs` then returns batchItemFailures instead of raising to retry.
    sqs_batch_item_failures: bool = False

    # personalize provider: how responses are decorated, how long the container caches items and
    # the popular list, and the time a request may spend on Personalize before falling back.
    decoration: Literal["catalogue", "metadata"] = "catalogue"
    # Item columns asked from Personalize (`metadataColumns`, at most 10) when decoration=metadata.
    metadata_columns: str = "NAME,PRICE,URL,IMAGE"
    catalogue_ttl: int = Field(default=300, ge=0, le=86_400)
    # Braze waits about 2 s: Personalize gets this much, the item table and Lambda the rest.
    personalize_budget_ms: int = Field(default=1200, ge=100, le=10_000)
    # How often `train` and `batch` poll Personalize for a version or job to finish (unset: 15 s
    # and 30 s); a second or less against the emulator (`python -m chalicelib emulate`).
    personalize_poll_seconds: float | None = Field(default=None, gt=0, le=600)

    # `{id}` is the item's id; `{recommendation_id}` (optional) the answer's, so that a click on
    # the link in an email carries it back through Braze Currents (`?rid={recommendation_id}`).
    item_url_template: str = "https://shop.example/p/{id}"
    item_image_template: str = "https://shop.example/images/{id}.jpg"

    # The loop with Braze (SPEC section 11). What was served is kept for served_ttl_days: in a
    # DynamoDB table with a TTL on AWS (none set: nothing kept), in SQLite locally, where at most
    # served_max_records lists are kept.
    served_table: str = ""
    served_ttl_days: int = Field(default=30, ge=1, le=400)
    served_max_records: int = Field(default=1_000_000, ge=1000)
    # Where Braze Currents writes its Avro files (under `currents/`); default: the import bucket.
    currents_bucket: str = ""
    # A Currents record is claimed (pending) before PutEvents and marked done after; a pending
    # claim this old is taken again (its sender died before marking it). A little longer than
    # `ingest_currents`' lambda_timeout (900 s), so that no live sender loses its claim.
    currents_lease_seconds: int = Field(default=960, ge=1, le=86_400)
    # `ingest_currents`' on-failure destination (the stack's queue, written by `deploy sync`):
    # Lambda's record of each S3 event it gave up on, which `replay-currents` reads.
    currents_failures_queue: str = ""
    # A purchase of a recommended item counts for the list whose click came at most this long
    # before it (Personalize's metric attribution looks at events after the recommendation).
    attribution_window_hours: float = Field(default=24.0, gt=0, le=24 * 90)

    braze_rest_endpoint: str = ""
    braze_api_key: str = Field(default="", repr=False)
    braze_attribute: str = "recommendations"
    # `braze-push`: attributes objects per /users/track request (Braze: 75, 50 on MAU CY24-25
    # plans) and requests per second, well under Braze's 3,000 per 3 s workspace-wide limit.
    braze_batch_size: int = Field(default=75, ge=1, le=75)
    braze_requests_per_second: float = Field(default=50.0, gt=0, le=1000)

    cache_max_age: int = Field(default=300, ge=0, le=86_400)
    # Byte budget of an item-list response: Braze caches nothing over 1 MB, and a Liquid template
    # parses the whole body per recipient (chalicelib/api/budget.py says how items are fitted).
    max_response_bytes: int = Field(default=100_000, ge=1024, le=1_000_000)
    # API Gateway accepts 10 MB; nothing this API takes needs more than a few hundred KB.
    max_body_bytes: int = Field(default=512 * 1024, ge=1024)

    @model_validator(mode="before")
    @classmethod
    def _from_environment(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        env = {name[len(PREFIX) :].lower(): value for name, value in env_fingerprint()}
        return {**{k: v for k, v in env.items() if k in cls.model_fields}, **data}

    @field_validator("data_dir", "config")
    @classmethod
    def _relative_to_project(cls, value: Path) -> Path:
        return value if value.is_absolute() else PROJECT_ROOT / value

    @property
    def metadata_column_list(self) -> list[str]:
        return [c.strip() for c in self.metadata_columns.split(",") if c.strip()][:10]

    @property
    def currents_source_bucket(self) -> str:
        return self.currents_bucket or self.import_bucket

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(k.strip() for k in self.api_keys.split(",") if k.strip())


def env_fingerprint() -> tuple[tuple[str, str], ...]:
    """The `RECS_*` part of the environment: settings are rebuilt when (and only when) it changes.

    Chalice's test client swaps `os.environ` per call, so settings cannot be frozen at import time.
    """
    return tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith(PREFIX)))
