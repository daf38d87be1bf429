"""The seam between the HTTP/queue edges and a recommendation backend (`local` or `personalize`)."""

from chalicelib.providers.base import (
    BatchReport,
    FilterError,
    FilterRequest,
    ImportReport,
    Provider,
    ProviderError,
    Recommendations,
    SolutionVersionInfo,
    UnknownFilterError,
)

__all__ = [
    "BatchReport",
    "FilterError",
    "FilterRequest",
    "ImportReport",
    "Provider",
    "ProviderError",
    "Recommendations",
    "SolutionVersionInfo",
    "UnknownFilterError",
]
