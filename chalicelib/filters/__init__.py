"""Personalize's filter language, shared by both providers: its errors (`errors`), the request's
filter and placeholder values (`values`), and the grammar with its typed AST (`language`).

`errors` and `values` are standard library only (the `personalize` provider encodes values with
them on Lambda); `language` imports lark, so it is imported by name where an expression is
parsed (the local engine, `setup`), never through this package. The local engine evaluates the
AST in `chalicelib.engine.filters`.
"""

from chalicelib.filters.errors import (
    CurrentItemFilterError,
    FilterError,
    MissingFilterValueError,
    UnknownFilterError,
)
from chalicelib.filters.values import FilterRequest

__all__ = [
    "CurrentItemFilterError",
    "FilterError",
    "FilterRequest",
    "MissingFilterValueError",
    "UnknownFilterError",
]
