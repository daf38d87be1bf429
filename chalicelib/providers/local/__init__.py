"""The `local` provider: the embedded engine and its SQLite store (development, demos, tests)."""

from chalicelib.providers.local.provider import LocalProvider

__all__ = ["LocalProvider"]
