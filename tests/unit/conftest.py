"""Fixtures shared by the unit tests of the AWS-facing modules."""

from tests.ingest_support import fake_events, queues

__all__ = ["fake_events", "queues"]
