"""Quarantine storage: refused messages (sampled, bounded) and the exact counts of all of them.

A :class:`QuarantineRecord` is one refused message (or the part of it refused for one reason)
with a prefix of its payload and topic, their full sizes and the payload's SHA-256. The same
bytes on the same topic refused for the same reason are one row whose ``copies`` grows (a
redelivery, a retained message heard again, or a device repeating itself store nothing new).
A :class:`QuarantineCount` adds to the exact per-minute tally of a publisher's refusals,
whether or not a row was kept. Both are written in the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from db.types import Conn

__all__ = ["QuarantineCount", "QuarantineRecord", "add_quarantine", "purge_quarantine"]


@dataclass(frozen=True, slots=True)
class QuarantineRecord:
    """One quarantine row as written (texts already made storable by the caller)."""

    received_at: datetime
    topic: str
    topic_size: int
    client_id: str | None
    payload: bytes
    payload_size: int
    payload_sha256: bytes
    reason: str
    detail: str
    station_id: str | None
    quantity: str | None
    readings: int
    service: str = "ingest"


@dataclass(frozen=True, slots=True)
class QuarantineCount:
    """Refusals of one publisher for one reason in one minute (added to the stored tally)."""

    window_start: datetime
    publisher: str
    reason: str
    service: str
    messages: int
    readings: int
    bytes: int
    sampled: int


_INSERT: Final = """
INSERT INTO quarantine (received_at, topic, topic_size, client_id, payload, payload_size,
                        payload_sha256, reason, detail, station_id, quantity, readings, service)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (payload_sha256, md5(topic), reason, service) WHERE replayed_at IS NULL
DO UPDATE SET copies = quarantine.copies + 1, last_received_at = excluded.received_at"""

_COUNT: Final = """
INSERT INTO quarantine_counts (window_start, publisher, reason, service, messages, readings,
                               bytes, sampled)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (window_start, publisher, reason, service) DO UPDATE SET
    messages = quarantine_counts.messages + excluded.messages,
    readings = quarantine_counts.readings + excluded.readings,
    bytes = quarantine_counts.bytes + excluded.bytes,
    sampled = quarantine_counts.sampled + excluded.sampled"""


async def add_quarantine(
    conn: Conn, records: Sequence[QuarantineRecord], counts: Sequence[QuarantineCount]
) -> None:
    """Write sampled rows and add to the counts (in the caller's transaction)."""
    async with conn.cursor() as cur:
        if records:
            await cur.executemany(
                _INSERT,
                [
                    (r.received_at, r.topic, r.topic_size, r.client_id, r.payload,
                     r.payload_size, r.payload_sha256, r.reason, r.detail, r.station_id,
                     r.quantity, r.readings, r.service)
                    for r in records
                ],
            )  # fmt: skip
        if counts:
            # A fixed order: two writers adding to the same tallies never deadlock.
            ordered = sorted(counts, key=lambda c: (c.window_start, c.publisher, c.reason))
            await cur.executemany(
                _COUNT,
                [
                    (c.window_start, c.publisher, c.reason, c.service, c.messages, c.readings,
                     c.bytes, c.sampled)
                    for c in ordered
                ],
            )  # fmt: skip


async def purge_quarantine(conn: Conn, retention_days: float) -> int:
    """Drop quarantine rows and counts older than ``retention_days``; returns rows dropped."""
    cur = await conn.execute(
        "DELETE FROM quarantine WHERE received_at < now() - make_interval(secs => %s)",
        (retention_days * 86400.0,),
    )
    dropped = max(cur.rowcount, 0)
    await conn.execute(
        "DELETE FROM quarantine_counts WHERE window_start < now() - make_interval(secs => %s)",
        (retention_days * 86400.0,),
    )
    return dropped
