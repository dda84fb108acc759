"""Exceptions of the database layer."""

__all__ = ["DatabaseError", "StorageError"]


class DatabaseError(Exception):
    """Base class of every error raised by :mod:`db`."""


class StorageError(DatabaseError):
    """The database refused or lost a write, or its schema is not what we expect.

    The stream shell retries a batch whose handler raises it (with backoff).
    """
