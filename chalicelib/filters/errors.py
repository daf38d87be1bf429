"""What a filter can do wrong, as the caller sees it: every error is a `FilterError` (a
`ValueError`) whose message says where, and whose `code` the HTTP routes answer with (400)."""

from __future__ import annotations

from collections.abc import Iterable


class FilterError(ValueError):
    """A filter expression, or the values a request gave it, are wrong; the message says where."""

    code = "invalid_filter"


class UnknownFilterError(FilterError):
    """A request named a filter the configuration does not define; the message lists those it
    does."""

    code = "unknown_filter"

    def __init__(self, name: str, known: Iterable[str] = ()) -> None:
        names = ", ".join(sorted(known)) or "none"
        super().__init__(f"no filter named {name!r} is configured (configured: {names})")
        self.name = name


class CurrentItemFilterError(FilterError):
    """A filter reading `CurrentItem.FIELD` was used for anything but related items."""

    def __init__(self) -> None:
        super().__init__(
            "this filter compares items with CurrentItem.FIELD: use it with /related-items"
        )


class MissingFilterValueError(FilterError):
    """A request did not give a value the filter needs; the message names the placeholder and
    how to give it: the HTTP routes' query parameter unless the caller says otherwise."""

    code = "missing_filter_value"

    def __init__(
        self, placeholder: str, given_as: str | None = None, several: str | None = None
    ) -> None:
        how = given_as or f"the query parameter {placeholder}"
        several = several or "repeat it or separate them with commas"
        super().__init__(
            f"the filter needs a value for ${placeholder}: give it as {how} "
            f"(several values: {several})"
        )
        self.placeholder = placeholder

    def given_as(self, how: str, several: str | None = None) -> MissingFilterValueError:
        """The same error for a caller that takes values otherwise (a command's option, a batch
        line's `filterValues`), with how it takes several when that differs."""
        return MissingFilterValueError(self.placeholder, how, several)
