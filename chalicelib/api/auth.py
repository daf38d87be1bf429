"""API-key check for every route but `/health`: header `x-api-key`, or HTTP Basic auth with the
key as password (Braze's stored Connected Content credentials send Basic auth)."""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Mapping, Sequence


def supplied_key(headers: Mapping[str, str]) -> str | None:
    key = headers.get("x-api-key")
    if key:
        return key
    scheme, _, encoded = headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic" or not encoded:
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    _user, sep, password = decoded.partition(":")
    return password if sep and password else None


def is_authorized(headers: Mapping[str, str], keys: Sequence[str]) -> bool:
    """Constant-time comparison against every configured key. No configured key: nobody passes
    (a deployed stage without keys fails closed)."""
    supplied = supplied_key(headers)
    if not supplied or not keys:
        return False
    given = supplied.encode("utf-8")
    matched = False
    for key in keys:  # no early exit: the time taken does not tell which key matched
        matched |= hmac.compare_digest(given, key.encode("utf-8"))
    return matched
