"""The seam between the HTTP/queue edges and a recommendation backend (`local` or `personalize`)."""

from chalicelib.filters import FilterError, FilterRequest, UnknownFilterError
from chalicelib.providers.base import (
    BatchReport,
    ImportReport,
    Provider,
    ProviderError,
    Recommendations,
    SolutionVersionInfo,
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
