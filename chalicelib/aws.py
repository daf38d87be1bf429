"""AWS clients, made once per container and shared by every invocation.

Clients come from one botocore session (its loaded endpoint data, service models and credentials
are shared); boto3, whose import comes on top of botocore's, is imported only for S3 (its managed
transfers).

Clients use botocore's `standard` retry mode and short timeouts, and honour the standard
`AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_<SERVICE>` variables (boto3 reads them itself), which is how
emulators and tests point the app elsewhere. Tests replace a client with `override()`.
"""

from __future__ import annotations

import threading
from typing import Any

_lock = threading.Lock()
_clients: dict[str, Any] = {}
_session: Any = None
# Services whose boto3 client adds methods the app uses (S3's upload_file, download_file, ...).
NEEDS_BOTO3 = frozenset({"s3"})

# Personalize's runtime must answer inside Braze's ~2 s Connected Content budget; the rest may wait.
TIMEOUTS: dict[str, tuple[float, float, int]] = {
    # service: (connect timeout s, read timeout s, max attempts)
    # One attempt per call: the personalize provider retries itself, only while its budget allows.
    "personalize-runtime": (0.25, 0.6, 1),
    "personalize-events": (2.0, 5.0, 3),
}
DEFAULT_TIMEOUTS = (2.0, 10.0, 3)
# Services whose every parameter is checked by `chalicelib.payloads` before a call is built (maxima
# included, which botocore never checks): botocore's second validation would cost about a third
# of the CPU of each PutEvents call (bench/ingest.py).
PREVALIDATED = frozenset({"personalize-events"})
# Reads on a request's path (item table lookups while decorating) use these instead.
FAST_TIMEOUTS: dict[str, tuple[float, float, int]] = {
    "dynamodb": (0.2, 0.3, 1),
    "personalize": (0.5, 1.0, 1),  # `GET /health`'s DescribeCampaign: a probe must not hang
    # The API keys' parameter (chalicelib.api.apikeys): a slow store must not eat Braze's 2 s.
    "ssm": (0.5, 1.0, 2),
    "secretsmanager": (0.5, 1.0, 2),
}


def client(service: str, fast: bool = False) -> Any:
    """The shared client of `service` (e.g. "sqs", "personalize-events"); `fast=True` gives the
    one with request-path timeouts (`FAST_TIMEOUTS`) where the service has them."""
    key = f"{service}:fast" if fast and service in FAST_TIMEOUTS else service
    found = _clients.get(key)
    if found is not None:
        return found
    with _lock:
        if key not in _clients:
            from botocore.config import Config  # noqa: PLC0415 - loaded on first use only

            table = FAST_TIMEOUTS if key != service else TIMEOUTS
            connect, read, attempts = table.get(service, DEFAULT_TIMEOUTS)
            config = Config(
                connect_timeout=connect,
                read_timeout=read,
                # total_max_attempts counts the first try (botocore's max_attempts: retries only).
                retries={"mode": "standard", "total_max_attempts": attempts},
                parameter_validation=service not in PREVALIDATED,
            )
            if service in NEEDS_BOTO3:
                _clients[key] = _boto3_session().client(service, config=config)
            else:
                _clients[key] = _botocore_session().create_client(service, config=config)
        return _clients[key]


def _botocore_session() -> Any:
    global _session  # noqa: PLW0603 - one per container, like the clients
    if _session is None:
        import botocore.session  # noqa: PLC0415

        _session = botocore.session.get_session()
    return _session


def _boto3_session() -> Any:
    import boto3  # noqa: PLC0415

    return boto3.session.Session(botocore_session=_botocore_session())


def override(service: str, value: Any) -> None:
    """Use `value` as the client of `service` (tests: a Stubber-wrapped or moto client)."""
    with _lock:
        _clients[service] = value


def reset() -> None:
    """Forget every client and the session (tests do this between moto contexts)."""
    global _session  # noqa: PLW0603
    with _lock:
        _clients.clear()
        _session = None
