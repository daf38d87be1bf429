"""Plumbing of Personalize's control plane calls: every page of a List* call, a resource found by
its name, and a Describe* call that `Setup.wait` polls."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any


def pages(
    method: Callable[..., dict[str, Any]], key: str, **params: Any
) -> Iterator[dict[str, Any]]:
    token: str | None = None
    while True:
        out = method(**params, **({"nextToken": token} if token else {}))
        yield from out.get(key, [])
        token = out.get("nextToken")
        if not token:
            return


def describing(
    method: Callable[..., dict[str, Any]], key: str, **params: Any
) -> Callable[[], dict[str, Any]]:
    """A Describe* call that gives the resource, for `Setup.wait` to poll."""

    def describe() -> dict[str, Any]:
        found: dict[str, Any] = method(**params)[key]
        return found

    return describe


def find(items: Iterator[dict[str, Any]], name: str) -> dict[str, Any] | None:
    return next((i for i in items if i.get("name") == name), None)
