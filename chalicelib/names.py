"""Personalize resource names: every resource this project creates is named `<dataset group>-<part>`
(so that several stages can share one account), and each name must keep the service's rule."""

from __future__ import annotations

import re

MAX_NAME = 63
# The control plane's `Name` shape: 1-63 characters, a letter or digit first.
NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9\-_]*")


def personalize_name(*parts: str) -> str:
    """`("braze-shop", "items")` becomes `braze-shop-items`. A name that breaks the rule raises
    ValueError saying why: it is never cut, since a cut name can collide with another one."""
    name = "-".join(parts)
    if len(name) > MAX_NAME:
        raise ValueError(
            f"the Personalize name {name!r} is {len(name)} characters; the limit is {MAX_NAME}: "
            "shorten the dataset group's name or the resource's"
        )
    if not NAME.fullmatch(name):
        raise ValueError(
            f"the Personalize name {name!r} may hold only letters, digits, '-' and '_', "
            "and starts with a letter or digit"
        )
    return name
