"""Exceptions of the database layer, and which database errors a retry can cure."""

from __future__ import annotations

import psycopg

__all__ = ["DatabaseError", "RefusedError", "StorageError", "translate"]


class DatabaseError(Exception):
    """Base class of every error raised by :mod:`db`."""


class StorageError(DatabaseError):
    """The database refused or lost a write, or its schema is not what we expect.

    The stream shell retries a batch whose handler raises it (with backoff).
    """


class RefusedError(DatabaseError):
    """The database refused the *content* of a write: the same rows will fail again.

    The stream shell does not retry such a batch as it is: it splits it until the messages
    the database refuses are isolated, and quarantines them.
    """


def translate(exc: BaseException, message: str) -> DatabaseError:
    """The error to raise for ``exc``: :class:`RefusedError` or :class:`StorageError`.

    Refused content: a value the database will not take (SQLSTATE class 22, e.g. a
    character its encoding cannot hold) or a constraint the rows break (class 23, e.g. a
    status for a station deleted meanwhile), and a value the driver cannot even send.
    Everything else — connections, timeouts, deadlocks, disk, locks, a missing table — is
    the database's state, not the rows', and is retried: quarantining on such an error would
    throw good data away.

    >>> type(translate(psycopg.errors.ForeignKeyViolation(), "x")).__name__
    'RefusedError'
    >>> type(translate(psycopg.errors.AdminShutdown(), "x")).__name__
    'StorageError'
    """
    content = isinstance(exc, psycopg.DataError | psycopg.IntegrityError) or not isinstance(
        exc, psycopg.Error
    )
    return RefusedError(message) if content else StorageError(message)
