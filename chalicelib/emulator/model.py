"""A request checker for the emulator and the tests' fakes: the JSON body a client sent, walked
against the operation's input shape in botocore's service model, with the constraints botocore's
own validation skips.

botocore checks required members, types and minima only (and the `personalize-events` client of
`chalicelib.aws` checks nothing at all); the service also refuses what breaks a maximum, a pattern
or an enum. The fakes answer such a request as the service would (400 ValidationException) and
record the violation, so a test fails on a request the real service would refuse; the emulator
refuses it the same way.

Patterns are matched against the whole value, as AWS's validation reports them ("Member must
satisfy regular expression pattern"); the few Java classes Python's `re` lacks are translated.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from functools import lru_cache
from typing import Any

import botocore.session
from botocore.model import ListShape, MapShape, Shape, StructureShape

# Java's Unicode classes that appear in Personalize's models, as Python's `re` says them.
_JAVA_CLASSES = {
    r"\p{ASCII}": r"[\x00-\x7F]",  # NextToken: outside a [...] class
    r"\p{L}\p{Z}\p{N}": r"\w\s",  # tag keys and values: inside a [...] class
}


@lru_cache(maxsize=8)
def service_model(service: str) -> Any:
    return botocore.session.get_session().get_service_model(service)


@lru_cache(maxsize=256)
def _pattern(pattern: str) -> re.Pattern[str]:
    translated = pattern
    for java, python in _JAVA_CLASSES.items():
        translated = translated.replace(java, python)
    return re.compile(translated)


def check(service: str, operation: str, body: dict[str, Any]) -> list[str]:
    """Every way `body` (the request's JSON, as sent) breaks the operation's input shape."""
    shape = service_model(service).operation_model(operation).input_shape
    errors: list[str] = []
    if shape is not None:
        _walk(shape, body, operation, errors)
    return errors


def check_reply(service: str, operation: str, body: dict[str, Any]) -> list[str]:
    """Every way a reply breaks the operation's output shape (the emulator's own check that it
    says nothing the service could not)."""
    shape = service_model(service).operation_model(operation).output_shape
    errors: list[str] = _Reply()
    if shape is not None:
        _walk(shape, body, f"{operation} reply", errors)
    return list(errors)


class _Reply(list[str]):
    """Errors of a reply: patterns are not checked there, because the model's output shapes
    reuse input patterns the service's own replies do not match (a dataset import job's IAM
    `roleArn` has Personalize's ARN pattern in the model)."""


def _walk(shape: Shape, value: Any, where: str, errors: list[str]) -> None:
    kind = shape.type_name
    checker = _CHECKS.get(kind)
    if checker is None:
        raise AssertionError(f"{where}: no check for shape type {kind}")
    checker(shape, value, where, errors)


def _structure(shape: Shape, value: Any, where: str, errors: list[str]) -> None:
    assert isinstance(shape, StructureShape)
    if not isinstance(value, dict):
        errors.append(f"{where}: expected an object, got {type(value).__name__}")
        return
    wire = {}
    for name, member in shape.members.items():
        if member.serialization.get("location"):  # in the URI or a header, not the body
            continue
        wire[member.serialization.get("name", name)] = (name, member)
    for key in value:
        if key not in wire:
            errors.append(f"{where}: unknown member {key!r}")
    for required in shape.required_members:
        member = shape.members[required]
        if member.serialization.get("location"):
            continue
        if member.serialization.get("name", required) not in value:
            errors.append(f"{where}: missing required member {required!r}")
    for key, item in value.items():
        if key in wire and item is not None:
            _walk(wire[key][1], item, f"{where}.{key}", errors)


def _count(shape: Shape, size: int, where: str, errors: list[str], unit: str) -> None:
    low, high = shape.metadata.get("min"), shape.metadata.get("max")
    if low is not None and size < low:
        errors.append(f"{where}: {size} {unit}, below the minimum {low}")
    if high is not None and size > high:
        errors.append(f"{where}: {size} {unit}, above the maximum {high}")


def _list(shape: Shape, value: Any, where: str, errors: list[str]) -> None:
    assert isinstance(shape, ListShape)
    if not isinstance(value, list):
        errors.append(f"{where}: expected a list, got {type(value).__name__}")
        return
    _count(shape, len(value), where, errors, "entries")
    for n, item in enumerate(value):
        _walk(shape.member, item, f"{where}[{n}]", errors)


def _map(shape: Shape, value: Any, where: str, errors: list[str]) -> None:
    assert isinstance(shape, MapShape)
    if not isinstance(value, dict):
        errors.append(f"{where}: expected a map, got {type(value).__name__}")
        return
    _count(shape, len(value), where, errors, "entries")
    for key, item in value.items():
        _walk(shape.key, key, f"{where} key {key!r}", errors)
        _walk(shape.value, item, f"{where}[{key!r}]", errors)


def _string(shape: Shape, value: Any, where: str, errors: list[str]) -> None:
    if not isinstance(value, str):
        errors.append(f"{where}: expected a string, got {type(value).__name__}")
        return
    _count(shape, len(value), where, errors, "characters")
    enum = shape.metadata.get("enum")
    if enum and value not in enum:
        errors.append(f"{where}: {value!r} is not one of {enum}")
    pattern = shape.metadata.get("pattern")
    if pattern and not isinstance(errors, _Reply) and not _pattern(pattern).fullmatch(value):
        errors.append(f"{where}: {value[:80]!r} does not match the pattern {pattern!r}")
    if shape.serialization.get("jsonvalue"):
        try:
            json.loads(value)
        except ValueError:
            errors.append(f"{where}: not a JSON document")


def _number(shape: Shape, value: Any, where: str, errors: list[str]) -> None:
    integral = shape.type_name in ("integer", "long")
    allowed = int if integral else (int, float)
    if isinstance(value, bool) or not isinstance(value, allowed):
        errors.append(f"{where}: expected a {shape.type_name}, got {type(value).__name__}")
        return
    low, high = shape.metadata.get("min"), shape.metadata.get("max")
    if low is not None and value < low:
        errors.append(f"{where}: {value} is below the minimum {low}")
    if high is not None and value > high:
        errors.append(f"{where}: {value} is above the maximum {high}")


def _boolean(shape: Shape, value: Any, where: str, errors: list[str]) -> None:
    if not isinstance(value, bool):
        errors.append(f"{where}: expected a boolean, got {type(value).__name__}")


def _timestamp(shape: Shape, value: Any, where: str, errors: list[str]) -> None:
    # JSON protocols send epoch seconds (a number); an ISO string is accepted on the wire too.
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        errors.append(f"{where}: expected a timestamp, got {type(value).__name__}")


def _blob(shape: Shape, value: Any, where: str, errors: list[str]) -> None:
    try:
        base64.b64decode(value, validate=True)
    except (binascii.Error, TypeError, ValueError):
        errors.append(f"{where}: not base64")


_CHECKS = {
    "structure": _structure,
    "list": _list,
    "map": _map,
    "string": _string,
    "integer": _number,
    "long": _number,
    "float": _number,
    "double": _number,
    "boolean": _boolean,
    "timestamp": _timestamp,
    "blob": _blob,
}
