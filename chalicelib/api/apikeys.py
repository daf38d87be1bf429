"""Where the API keys come from: `RECS_API_KEYS`, or the parameter `RECS_API_KEYS_PARAMETER` names.

`RECS_API_KEYS_PARAMETER` is read as:
- an SSM parameter when it starts with `/` or is an SSM ARN (`arn:aws:ssm:...:parameter/...`),
  e.g. `/braze-recs/prod/api-keys`, a SecureString read with decryption;
- a Secrets Manager secret otherwise (a name such as `braze-recs/prod/api-keys`, or its ARN).
Its value is the comma-separated keys, a JSON array of keys, or a JSON object whose `api_keys`
field is either (the Secrets Manager console stores key/value pairs as such an object).

The value is read once per process (a Lambda container) and again after `RECS_API_KEYS_TTL`
seconds, so a rotation needs no deployment: add the new key next to the old one, wait the TTL,
move the callers, then remove the old key. A read that fails keeps the keys last read (logged);
with none read yet every request is refused (fails closed), and the read is tried again after a
few seconds rather than on every request.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from chalicelib import aws
from chalicelib.settings import Settings

log = logging.getLogger("recs.apikeys")
RETRY_SECONDS = 5.0


def is_ssm(name: str) -> bool:
    return name.startswith("/") or (name.startswith("arn:") and ":ssm:" in name)


def parse_keys(value: str) -> tuple[str, ...]:
    """Comma-separated keys, a JSON array of them, or a JSON object with `api_keys`."""
    text = value.strip()
    found: Any = text
    if text[:1] in ("[", "{"):
        try:
            found = json.loads(text)
        except ValueError:
            found = text
        if isinstance(found, dict):
            found = found.get("api_keys", "")
    if isinstance(found, str):
        found = found.split(",")
    if not isinstance(found, list):
        return ()
    return tuple(k.strip() for k in found if isinstance(k, str) and k.strip())


def read_parameter(name: str) -> tuple[str, ...]:
    if is_ssm(name):
        reply = aws.client("ssm", fast=True).get_parameter(Name=name, WithDecryption=True)
        return parse_keys(reply["Parameter"]["Value"])
    reply = aws.client("secretsmanager", fast=True).get_secret_value(SecretId=name)
    return parse_keys(reply.get("SecretString") or "")


class KeySource:
    """The keys of the current settings, with the parameter's value cached for its TTL."""

    def __init__(
        self,
        read: Callable[[str], tuple[str, ...]] = read_parameter,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._read, self._clock = read, clock
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[float, tuple[str, ...]]] = {}

    def keys(self, settings: Settings) -> tuple[str, ...]:
        name = settings.api_keys_parameter.strip()
        if not name:
            return settings.keys
        cached = self._cache.get(name)
        if cached is not None and cached[0] > self._clock():
            return cached[1]
        with self._lock:  # one read at a time; the others wait for it rather than repeat it
            cached = self._cache.get(name)
            now = self._clock()
            if cached is not None and cached[0] > now:
                return cached[1]
            try:
                keys = self._read(name)
            except Exception as exc:  # throttled, denied, missing: keep what was read before
                kept = cached[1] if cached else ()
                log.error(
                    "API keys parameter %s unreadable (%s); %s",
                    name,
                    type(exc).__name__,
                    "keeping the keys read before" if kept else "refusing every request",
                )
                self._cache[name] = (now + RETRY_SECONDS, kept)
                return kept
            if not keys:
                log.error("API keys parameter %s holds no key: refusing every request", name)
            self._cache[name] = (now + settings.api_keys_ttl, keys)
            return keys

    def forget(self) -> None:
        with self._lock:
            self._cache.clear()


SOURCE = KeySource()


def current_keys(settings: Settings) -> tuple[str, ...]:
    return SOURCE.keys(settings)
