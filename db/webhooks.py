"""The webhook outbox (``webhook_outbox``): claimed, finished, listed, redelivered, pruned.

Rows are written by the trigger of migration 0013, in the transaction of the alert event
they carry. The dispatcher claims (:func:`claim`) the due heads of each (subscriber, alert) queue —
an alert's event N+1 is never claimed while its event N is still pending, so a receiver sees
one alert's events in order — and leases them by moving ``next_attempt_at`` past the
attempt's time limit (a dispatcher that dies mid-attempt leaves them to be retried once the
lease ends). :func:`finish` records what each attempt came to. Several dispatchers may run:
a claim skips rows another one holds (``FOR UPDATE SKIP LOCKED``).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Literal

from psycopg.rows import class_row

from db.types import Conn

__all__ = [
    "DeliveryRecord",
    "DeliveryStatus",
    "Due",
    "Finished",
    "OutboxCounts",
    "claim",
    "expire",
    "finish",
    "get_delivery",
    "list_deliveries",
    "outbox_counts",
    "prune",
    "redeliver",
]

DeliveryStatus = Literal["pending", "delivered", "dead", "withheld"]


@dataclass(frozen=True, slots=True)
class Due:
    """A claimed delivery, with what sending it needs."""

    delivery_id: uuid.UUID
    subscriber_id: int
    event_id: int
    alert_id: int
    rule: str
    snapshot: dict[str, object]
    attempts: int
    queued_at: datetime
    url: str
    secret_salt: bytes
    secret_hash: bytes


@dataclass(frozen=True, slots=True)
class Finished:
    """What one attempt came to.

    Args:
        delivery_id: the delivery.
        status: ``delivered``, ``pending`` (retry in ``retry_in_s``), ``dead`` or
            ``withheld``.
        retry_in_s: seconds until the next attempt (``pending`` only).
        http_status: the receiver's answer, if it answered.
        error: why it failed (bounded by the caller).
    """

    delivery_id: uuid.UUID
    status: DeliveryStatus
    retry_in_s: float = 0.0
    http_status: int | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class DeliveryRecord:
    """A delivery as admins see it (never the subscriber's secret)."""

    delivery_id: uuid.UUID
    subscriber_id: int
    event_id: int
    alert_id: int
    rule: str
    action: str
    status: str
    attempts: int
    created_at: datetime
    queued_at: datetime
    next_attempt_at: datetime
    last_attempt_at: datetime | None
    last_status: int | None
    last_error: str | None
    finished_at: datetime | None


@dataclass(frozen=True, slots=True)
class OutboxCounts:
    """The outbox at a glance (for heartbeats, ``/metrics`` and ``/health``)."""

    pending: int
    delivered: int
    dead: int
    withheld: int
    oldest_pending_s: float


_CLAIM: Final = """
WITH heads AS (
    SELECT DISTINCT ON (subscriber_id, alert_id) delivery_id FROM webhook_outbox
    WHERE status = 'pending'
    ORDER BY subscriber_id, alert_id, event_id),
due AS (
    SELECT o.delivery_id FROM webhook_outbox o
    JOIN heads USING (delivery_id)
    JOIN alert_subscribers s USING (subscriber_id)
    WHERE o.status = 'pending' AND o.next_attempt_at <= now() AND s.enabled
    ORDER BY o.event_id
    LIMIT %(limit)s
    FOR UPDATE OF o SKIP LOCKED)
UPDATE webhook_outbox o
SET attempts = o.attempts + 1, last_attempt_at = now(),
    next_attempt_at = now() + make_interval(secs => %(lease_s)s),
    leased_until = now() + make_interval(secs => %(lease_s)s)
FROM due, alert_subscribers s
WHERE o.delivery_id = due.delivery_id AND s.subscriber_id = o.subscriber_id
RETURNING o.delivery_id, o.subscriber_id, o.event_id, o.alert_id, o.rule, o.snapshot,
          o.attempts, o.queued_at, s.url, s.secret_salt, s.secret_hash"""


async def claim(conn: Conn, *, limit: int, lease_s: float) -> list[Due]:
    """Lease up to ``limit`` due queue heads for ``lease_s`` (in a transaction of its own)."""
    async with conn.transaction(), conn.cursor(row_factory=class_row(Due)) as cur:
        await cur.execute(_CLAIM, {"limit": limit, "lease_s": lease_s})
        found = await cur.fetchall()
    return sorted(found, key=lambda d: d.event_id)


_FINISH: Final = """
UPDATE webhook_outbox SET
    status = %(status)s,
    next_attempt_at = CASE WHEN %(status)s = 'pending'
                           THEN now() + make_interval(secs => %(retry_in_s)s)
                           ELSE next_attempt_at END,
    last_status = %(http_status)s,
    last_error = %(error)s,
    leased_until = NULL,
    finished_at = CASE WHEN %(status)s = 'pending' THEN NULL ELSE now() END
WHERE delivery_id = %(delivery_id)s AND status = 'pending'"""
_WAKE: Final = """
UPDATE webhook_outbox SET next_attempt_at = now()
WHERE status = 'pending' AND subscriber_id = ANY (%(subscribers)s)
  AND next_attempt_at > now() AND (leased_until IS NULL OR leased_until < now())
  AND (last_status IS NULL OR last_status >= 500)
  AND delivery_id <> ALL (%(attempted)s)"""


async def finish(conn: Conn, outcomes: Sequence[Finished], *, answered: Sequence[int] = ()) -> None:
    """Record what each attempt came to (one transaction).

    Args:
        conn: the connection.
        outcomes: the attempts' outcomes.
        answered: subscribers whose receiver has just taken a delivery: their deliveries
            waiting out a backoff after no answer or a server error are due now (the
            receiver is back), not when each one's backoff ends.
    """
    if not outcomes:
        return
    params = [
        {
            "status": o.status, "retry_in_s": o.retry_in_s, "http_status": o.http_status,
            "error": o.error, "delivery_id": o.delivery_id,
        }
        for o in outcomes
    ]  # fmt: skip
    async with conn.transaction(), conn.cursor() as cur:
        await cur.executemany(_FINISH, params)
        if answered:
            attempted = [o.delivery_id for o in outcomes]  # those wait out their own backoff
            await cur.execute(_WAKE, {"subscribers": sorted(set(answered)), "attempted": attempted})


async def expire(conn: Conn, max_age_s: float) -> int:
    """Give up on pending deliveries queued longer than ``max_age_s`` ago (dead letters).

    A claim gives up on a delivery it attempts; this catches those no claim reaches (a
    subscriber disabled with deliveries still pending).
    """
    cur = await conn.execute(
        "UPDATE webhook_outbox SET status = 'dead', finished_at = now(), "
        "last_error = left('expired: ' || coalesce(last_error, 'never attempted'), 500) "
        "WHERE status = 'pending' AND queued_at < now() - make_interval(secs => %s)",
        (max_age_s,),
    )
    return cur.rowcount


async def prune(conn: Conn, *, finished_keep_s: float, dead_keep_s: float) -> int:
    """Delete delivered and withheld rows after ``finished_keep_s``, dead ones later.

    Returns:
        How many rows went (dead letters go after ``dead_keep_s``).
    """
    cur = await conn.execute(
        "DELETE FROM webhook_outbox WHERE "
        "(status IN ('delivered', 'withheld') AND finished_at < now() - make_interval(secs => %s))"
        " OR (status = 'dead' AND finished_at < now() - make_interval(secs => %s))",
        (finished_keep_s, dead_keep_s),
    )
    return cur.rowcount


async def outbox_counts(conn: Conn) -> OutboxCounts:
    """How many deliveries in each state, and how long the oldest pending one has waited."""
    cur = await conn.execute(
        "SELECT count(*) FILTER (WHERE status = 'pending'), "
        "count(*) FILTER (WHERE status = 'delivered'), count(*) FILTER (WHERE status = 'dead'), "
        "count(*) FILTER (WHERE status = 'withheld'), "
        "coalesce(extract(epoch FROM now() - min(queued_at) FILTER (WHERE status = 'pending')), 0)"
        " FROM webhook_outbox"
    )
    row = await cur.fetchone()
    assert row is not None  # noqa: S101 - an aggregate always returns a row
    pending, delivered, dead, withheld, oldest = row
    return OutboxCounts(int(pending), int(delivered), int(dead), int(withheld), float(oldest))


_RECORD: Final = (
    "delivery_id, subscriber_id, event_id, alert_id, rule, "
    "coalesce(snapshot->'event'->>'action', '') AS action, status, attempts, created_at, "
    "queued_at, next_attempt_at, last_attempt_at, last_status, last_error, finished_at"
)
_LIST: Final = f"""
SELECT {_RECORD} FROM webhook_outbox
WHERE (%(status)s::text IS NULL OR status = %(status)s)
  AND (%(subscriber)s::bigint IS NULL OR subscriber_id = %(subscriber)s)
  AND (%(alert)s::bigint IS NULL OR alert_id = %(alert)s)
ORDER BY created_at DESC, event_id DESC
LIMIT %(limit)s"""


async def list_deliveries(
    conn: Conn,
    *,
    status: DeliveryStatus | None = None,
    subscriber_id: int | None = None,
    alert_id: int | None = None,
    limit: int = 100,
) -> list[DeliveryRecord]:
    """Deliveries, newest first."""
    params = {"status": status, "subscriber": subscriber_id, "alert": alert_id, "limit": limit}
    async with conn.cursor(row_factory=class_row(DeliveryRecord)) as cur:
        await cur.execute(_LIST, params)
        return await cur.fetchall()


async def get_delivery(conn: Conn, delivery_id: uuid.UUID) -> DeliveryRecord | None:
    """One delivery."""
    async with conn.cursor(row_factory=class_row(DeliveryRecord)) as cur:
        await cur.execute(
            f"SELECT {_RECORD} FROM webhook_outbox WHERE delivery_id = %s", (delivery_id,)
        )
        return await cur.fetchone()


_REDELIVER: Final = f"""
UPDATE webhook_outbox SET status = 'pending', attempts = 0, queued_at = now(),
       next_attempt_at = now(), finished_at = NULL
WHERE status IN ('dead', 'delivered', 'pending')
  AND (%(ids)s::uuid[] IS NULL OR delivery_id = ANY (%(ids)s))
  AND (%(status)s::text IS NULL OR status = %(status)s)
  AND (%(subscriber)s::bigint IS NULL OR subscriber_id = %(subscriber)s)
RETURNING {_RECORD}"""


async def redeliver(
    conn: Conn,
    *,
    delivery_ids: Sequence[uuid.UUID] | None = None,
    status: Literal["dead", "delivered", "pending"] | None = None,
    subscriber_id: int | None = None,
) -> list[DeliveryRecord]:
    """Queue deliveries again, now, under their own delivery ids (in the caller's transaction).

    A dead or delivered one starts a new series of attempts; a pending one is attempted at
    once. Withheld deliveries (not a public rule) are never sent.

    Args:
        conn: the connection.
        delivery_ids: these deliveries (None: every one the other filters admit).
        status: only deliveries in this state (e.g. every dead letter).
        subscriber_id: only this subscriber's.
    """
    params = {
        "ids": None if delivery_ids is None else list(delivery_ids),
        "status": status,
        "subscriber": subscriber_id,
    }
    async with conn.cursor(row_factory=class_row(DeliveryRecord)) as cur:
        await cur.execute(_REDELIVER, params)
        return await cur.fetchall()
