"""Alert subscribers: webhook receivers (URL, filters) and their signing secrets, never stored.

A subscriber's secret is ``whsec_`` and the URL-safe base64 of
``HMAC-SHA256(API_SECRET_KEY, "hanoi-ioc/subscriber/" + secret_salt)``: the database keeps the
random 16-byte ``secret_salt`` and the secret's SHA-256 (``secret_hash``), not the secret.
The webhook dispatcher (:mod:`webhooks`) derives it with :func:`subscriber_secret` from the
row and the server key, and checks with :func:`secret_matches` that the key has not changed
since (both live in :mod:`contract.webhook`, the contract with receivers). A database dump
alone gives no secret; rotating the server key changes every subscriber's secret (rotate
each one to hand out the new value).

Every change writes an audit row in the same transaction.

>>> secret = subscriber_secret(b"k" * 32, bytes(16))
>>> secret.startswith("whsec_"), secret_matches(secret, secret_digest(secret))
(True, True)
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

import psycopg
from psycopg.rows import class_row
from pydantic import JsonValue

from contract.webhook import secret_digest, secret_matches, subscriber_secret
from db import Conn
from ops_api.audit import record_change

__all__ = [
    "SubscriberChange",
    "SubscriberRecord",
    "create_subscriber",
    "delete_subscriber",
    "get_subscriber",
    "list_subscribers",
    "rotate_subscriber_secret",
    "secret_digest",
    "secret_matches",
    "subscriber_secret",
    "update_subscriber",
]

_SALT_BYTES: Final = 16


@dataclass(frozen=True, slots=True)
class SubscriberRecord:
    """A stored subscriber."""

    subscriber_id: int
    name: str
    url: str
    domains: list[str] | None
    min_severity: str
    districts: list[str] | None
    enabled: bool
    secret_salt: bytes
    secret_hash: bytes
    secret_version: int
    created_at: datetime
    created_by: str
    updated_at: datetime
    updated_by: str


@dataclass(frozen=True, slots=True)
class SubscriberChange:
    """What an admin sets on a subscriber."""

    name: str
    url: str
    domains: Sequence[str] | None
    min_severity: str
    districts: Sequence[str] | None
    enabled: bool

    def details(self) -> dict[str, JsonValue]:
        """For the audit trail."""
        return {
            "name": self.name,
            "url": self.url,
            "domains": None if self.domains is None else list(self.domains),
            "min_severity": self.min_severity,
            "districts": None if self.districts is None else list(self.districts),
            "enabled": self.enabled,
        }


_COLUMNS: Final = (
    "subscriber_id, name, url, domains, min_severity, districts, enabled, secret_salt, "
    "secret_hash, secret_version, created_at, created_by, updated_at, updated_by"
)


async def create_subscriber(
    conn: Conn, change: SubscriberChange, *, key: bytes, actor: str
) -> tuple[str, SubscriberRecord] | None:
    """Make a subscriber; its secret (shown once) and record, or ``None`` if the name is taken."""
    salt = secrets.token_bytes(_SALT_BYTES)
    secret = subscriber_secret(key, salt)
    try:
        async with conn.transaction(), conn.cursor(row_factory=class_row(SubscriberRecord)) as cur:
            await cur.execute(
                "INSERT INTO alert_subscribers (name, url, domains, min_severity, districts, "
                "enabled, secret_salt, secret_hash, created_by, updated_by) "
                f"VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING {_COLUMNS}",
                (*_values(change), salt, secret_digest(secret), actor, actor),
            )
            record = await cur.fetchone()
            assert record is not None  # noqa: S101 - INSERT ... RETURNING gives one row
            await record_change(
                conn, actor=actor, action="subscriber.create", kind="subscriber",
                target=str(record.subscriber_id), details=change.details(),
            )  # fmt: skip
    except psycopg.errors.UniqueViolation:
        return None
    return secret, record


async def update_subscriber(
    conn: Conn, subscriber_id: int, change: SubscriberChange, *, actor: str
) -> SubscriberRecord | None:
    """Replace a subscriber's settings; ``None`` when absent.

    Raises:
        psycopg.errors.UniqueViolation: when another subscriber has the name.
    """
    async with conn.transaction(), conn.cursor(row_factory=class_row(SubscriberRecord)) as cur:
        await cur.execute(
            "UPDATE alert_subscribers SET name = %s, url = %s, domains = %s, min_severity = %s, "
            "districts = %s, enabled = %s, updated_at = now(), updated_by = %s "
            f"WHERE subscriber_id = %s RETURNING {_COLUMNS}",
            (*_values(change), actor, subscriber_id),
        )
        record = await cur.fetchone()
        if record is not None:
            await record_change(
                conn, actor=actor, action="subscriber.update", kind="subscriber",
                target=str(subscriber_id), details=change.details(),
            )  # fmt: skip
    return record


async def rotate_subscriber_secret(
    conn: Conn, subscriber_id: int, *, key: bytes, actor: str
) -> tuple[str, SubscriberRecord] | None:
    """A new secret for a subscriber (the old one stops at once); ``None`` when absent."""
    salt = secrets.token_bytes(_SALT_BYTES)
    secret = subscriber_secret(key, salt)
    async with conn.transaction(), conn.cursor(row_factory=class_row(SubscriberRecord)) as cur:
        await cur.execute(
            "UPDATE alert_subscribers SET secret_salt = %s, secret_hash = %s, "
            "secret_version = secret_version + 1, updated_at = now(), updated_by = %s "
            f"WHERE subscriber_id = %s RETURNING {_COLUMNS}",
            (salt, secret_digest(secret), actor, subscriber_id),
        )
        record = await cur.fetchone()
        if record is None:
            return None
        await record_change(
            conn, actor=actor, action="subscriber.rotate_secret", kind="subscriber",
            target=str(subscriber_id), details={"secret_version": record.secret_version},
        )  # fmt: skip
    return secret, record


async def delete_subscriber(conn: Conn, subscriber_id: int, *, actor: str) -> bool:
    """Remove a subscriber (its audit trail stays); False when absent."""
    async with conn.transaction():
        cur = await conn.execute(
            "DELETE FROM alert_subscribers WHERE subscriber_id = %s RETURNING name",
            (subscriber_id,),
        )
        row = await cur.fetchone()
        if row is None:
            return False
        await record_change(
            conn, actor=actor, action="subscriber.delete", kind="subscriber",
            target=str(subscriber_id), details={"name": str(row[0])},
        )  # fmt: skip
    return True


async def get_subscriber(conn: Conn, subscriber_id: int) -> SubscriberRecord | None:
    """One subscriber."""
    async with conn.cursor(row_factory=class_row(SubscriberRecord)) as cur:
        await cur.execute(
            f"SELECT {_COLUMNS} FROM alert_subscribers WHERE subscriber_id = %s", (subscriber_id,)
        )
        return await cur.fetchone()


async def list_subscribers(conn: Conn, *, enabled_only: bool = False) -> list[SubscriberRecord]:
    """Every subscriber (or the enabled ones), by id."""
    async with conn.cursor(row_factory=class_row(SubscriberRecord)) as cur:
        await cur.execute(
            f"SELECT {_COLUMNS} FROM alert_subscribers WHERE NOT %s OR enabled "
            "ORDER BY subscriber_id",
            (enabled_only,),
        )
        return await cur.fetchall()


def _values(change: SubscriberChange) -> tuple[object, ...]:
    return (
        change.name,
        change.url,
        None if change.domains is None else sorted(set(change.domains)),
        change.min_severity,
        None if change.districts is None else list(change.districts),
        change.enabled,
    )
