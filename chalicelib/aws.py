"""boto3 clients, made once per container and shared by every invocation.

Clients use botocore's `standard` retry mode and short timeouts, and honour the standard
`AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_<SERVICE>` variables (boto3 reads them itself), which is how
emulators and tests point the app elsewhere. Tests replace a client with `override()`.
"""

from __future__ import annotations

import threading
from typing import Any

_lock = threading.Lock()
_clients: dict[str, Any] = {}
_resources: dict[str, Any] = {}

# Personalize's runtime must answer inside Braze's ~2 s Connected Content budget; the rest may wait.
TIMEOUTS: dict[str, tuple[float, float, int]] = {
    # service: (connect timeout s, read timeout s, max attempts)
    "personalize-runtime": (0.5, 0.8, 2),
    "personalize-events": (2.0, 5.0, 3),
}
DEFAULT_TIMEOUTS = (2.0, 10.0, 3)


def client(service: str) -> Any:
    """The shared client of `service` (e.g. "sqs", "personalize-events")."""
    found = _clients.get(service)
    if found is not None:
        return found
    with _lock:
        if service not in _clients:
            import boto3  # noqa: PLC0415 - keep boto3 off the import path of the local provider
            from botocore.config import Config  # noqa: PLC0415

            connect, read, attempts = TIMEOUTS.get(service, DEFAULT_TIMEOUTS)
            config = Config(
                connect_timeout=connect,
                read_timeout=read,
                retries={"mode": "standard", "max_attempts": attempts},
            )
            _clients[service] = boto3.session.Session().client(service, config=config)
        return _clients[service]


def resource(service: str) -> Any:
    """The shared boto3 resource of `service` (DynamoDB tables)."""
    found = _resources.get(service)
    if found is not None:
        return found
    with _lock:
        if service not in _resources:
            import boto3  # noqa: PLC0415

            _resources[service] = boto3.session.Session().resource(service)
        return _resources[service]


def override(service: str, value: Any) -> None:
    """Use `value` as the client of `service` (tests: a Stubber-wrapped or moto client)."""
    with _lock:
        _clients[service] = value


def reset() -> None:
    """Forget every client and resource (tests do this between moto contexts)."""
    with _lock:
        _clients.clear()
        _resources.clear()
