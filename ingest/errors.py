"""Exceptions of the ingest package."""

from ingest.wire import PayloadError

__all__ = ["IngestError", "PayloadError", "StorageError"]


class IngestError(Exception):
    """Base class for ingest failures that are not about one payload."""


class StorageError(IngestError):
    """The database refused or lost a write, or its schema is not what we expect."""
