"""The `local` provider: the embedded engine and its SQLite store (development, demos, tests and
small shops). `LocalProvider` holds its three roles; `served.ServedVersion` is the public face of
what it serves."""

from chalicelib.providers.local.provider import LocalProvider

__all__ = ["LocalProvider"]
