"""The database writer: one transaction per batch, idempotent, acks after commit.

Per batch, in one transaction: the rows go by binary COPY straight into ``readings`` inside
a savepoint. Only when that hits the unique key (a redelivery after a crash or reconnect:
the batch holds readings already stored) is the savepoint rolled back and the batch written
the idempotent way — COPY into a per-connection temporary staging table, then
``INSERT … SELECT … ON CONFLICT DO NOTHING`` — so a redelivered message stores nothing twice
either way; for a while after a conflict batches go the staging way directly, since more of
the redelivery is likely to follow. The ``latest`` table is upserted by measurement time from
each sensor's newest row of the batch, the written time range is logged for rollups, and
quarantine and device-status rows are added, all in the same transaction, so an
acknowledgement covers every effect of its message.

Errors are told apart (:func:`db.translate`): a database that is down, slow or locked
raises :class:`~db.StorageError` (the batch is retried as it is); a database that refuses
the rows themselves raises :class:`~db.RefusedError`, and the stream shell splits the batch
until the refused messages stand alone and quarantines them. A row outside every partition
is first taken for a partition that went missing: the partitions are checked again and the
batch tried once more before it counts as refused.

A device status is recorded in arrival order: the current state of a station is its
last accepted status by arrival (``station_state``), whatever time the device claims.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Final

import psycopg
from psycopg_pool import AsyncConnectionPool

from db import Conn, DatabaseError, Strategy, add_quarantine, feed, translate
from stream.batcher import Batch
from stream.quarantine import QuarantinePolicy, quarantine_records
from stream.validate import SENSOR_KEY, TIME, VALUE, Row

__all__ = ["WriteResult", "Writer", "configure_connection", "stale_stations"]

logger = logging.getLogger(__name__)

_STAGING: Final = """
CREATE TEMP TABLE IF NOT EXISTS ingest_staging (
    time timestamptz, sensor_id integer, value double precision, quality smallint,
    received_at timestamptz
) ON COMMIT DELETE ROWS"""
_COPY: Final = "COPY ingest_staging FROM STDIN (FORMAT BINARY)"
_COPY_DIRECT: Final = (
    "COPY readings (time, sensor_id, value, quality, received_at) FROM STDIN (FORMAT BINARY)"
)
_STAGED_AFTER_CONFLICT_S: Final = 30.0
"""After a batch met stored readings, write batches the staging way this long."""
_COPY_TYPES: Final = ["timestamptz", "int4", "float8", "int2", "timestamptz"]
_INSERT: Final = """
INSERT INTO readings SELECT * FROM ingest_staging ON CONFLICT DO NOTHING
RETURNING time, sensor_id, value"""
_LATEST: Final = """
INSERT INTO latest (sensor_id, time, value, quality, received_at)
SELECT DISTINCT ON (sensor_id) sensor_id, time, value, quality, received_at
FROM ingest_staging ORDER BY sensor_id, time DESC
ON CONFLICT (sensor_id) DO UPDATE SET
    time = excluded.time, value = excluded.value, quality = excluded.quality,
    received_at = excluded.received_at
WHERE latest.time < excluded.time"""
_STATUS: Final = """
INSERT INTO sensor_status (station_id, at, state, reason, received_at)
SELECT %(station)s, %(at)s, %(state)s, %(reason)s, %(received)s
WHERE NOT EXISTS (SELECT 1 FROM station_state
                  WHERE station_id = %(station)s AND state = %(state)s)
ON CONFLICT DO NOTHING"""
_RESUMED: Final = """
INSERT INTO sensor_status (station_id, at, state, reason)
SELECT station_id, now(), 'online', 'data resumed / dữ liệu trở lại'
FROM station_state WHERE state = 'stale' AND station_id = ANY(%s)
ON CONFLICT DO NOTHING"""


async def configure_connection(conn: psycopg.AsyncConnection[object]) -> None:
    """Pool hook: create the session's staging table once per connection."""
    await conn.execute(_STAGING)
    await conn.commit()


@dataclass(frozen=True, slots=True)
class WriteResult:
    """What one committed batch did."""

    stored: int
    duplicates: int
    quarantined: int
    status_changes: int
    commit_s: float


_Stored = tuple[list[datetime], list[int], list[float]]
"""Readings newly stored by a batch: times, sensor keys, values (the feed's columns)."""


class Writer:
    """Writes batches through a connection pool.

    Args:
        pool: the pool (its connections configured with :func:`configure_connection`).
        strategy: the storage strategy in force.
        policy: how much of a refused message its quarantine row keeps.
    """

    def __init__(
        self,
        pool: AsyncConnectionPool[Conn],
        strategy: Strategy,
        policy: QuarantinePolicy | None = None,
    ) -> None:
        self._pool = pool
        self._strategy = strategy
        self._policy = policy or QuarantinePolicy()
        self._staged_until = 0.0
        self.conflicts = 0
        """Batches whose direct COPY met readings already stored (then written via staging)."""
        self.stale: frozenset[str] = frozenset()
        """Stations last known to be stale (set by the owner from :func:`stale_stations`): a
        batch with data from one of them records that its data resumed."""

    async def write(self, batch: Batch) -> WriteResult:
        """Write one batch in one transaction.

        Raises:
            StorageError: when the database fails; nothing of the batch is committed.
            RefusedError: when it refuses the batch's content; nothing is committed.
        """
        try:
            return await self._write(batch)
        except psycopg.errors.CheckViolation:
            # "no partition of relation readings found for row": one went missing (a
            # retention drop, a manual detach); check them all again and try once more
            self._strategy.forget_partitions()
        except (psycopg.Error, ValueError, TypeError, OverflowError) as exc:
            raise self._refusal(batch, exc) from exc
        try:
            return await self._write(batch)
        except (psycopg.Error, ValueError, TypeError, OverflowError) as exc:
            raise self._refusal(batch, exc) from exc

    @staticmethod
    def _refusal(batch: Batch, exc: BaseException) -> DatabaseError:
        return translate(exc, f"batch of {len(batch)} messages not written: {exc}")

    async def _write(self, batch: Batch) -> WriteResult:
        started = time.perf_counter()
        rows = [row for outcome in batch.outcomes for row in outcome.rows]
        async with self._pool.connection() as conn:
            if rows:
                first = min(r[TIME] for r in rows)
                last = max(r[TIME] for r in rows)
                await self._strategy.ensure_partitions(conn, first.date(), last.date())
            async with conn.transaction():
                new = await self._write_rows(conn, rows)
                if rows:
                    await self._strategy.invalidate(conn, first, last)
                quarantined = await self._write_quarantine(conn, batch)
                changes = await self._write_status(conn, batch)
                if new:  # last: the feed's number is held until the commit
                    received = batch.outcomes[0].message.received_at
                    await feed.append(conn, received, *new)
        stored = len(new[0]) if new else 0
        return WriteResult(
            stored, len(rows) - stored, quarantined, changes, time.perf_counter() - started
        )

    async def _write_rows(self, conn: Conn, rows: list[Row]) -> _Stored | None:
        """The rows written, as columns for the feed (None: nothing new)."""
        if not rows:
            return None
        if time.monotonic() >= self._staged_until:
            try:
                async with conn.transaction():  # a savepoint: a conflict undoes only this
                    await _copy(conn, _COPY_DIRECT, rows)
            except psycopg.errors.UniqueViolation:
                self._staged_until = time.monotonic() + _STAGED_AFTER_CONFLICT_S
                self.conflicts += 1
            else:
                await self._upsert_latest(conn, newest_per_sensor(rows))
                return (
                    [r[TIME] for r in rows],
                    [r[SENSOR_KEY] for r in rows],
                    [r[VALUE] for r in rows],
                )
        async with conn.cursor() as cur:
            await _copy(conn, _COPY, rows)
            await cur.execute(_INSERT)
            inserted = await cur.fetchall()
            await cur.execute(_LATEST)
        if not inserted:
            return None
        times, keys, values = zip(*inserted, strict=True)
        return list(times), list(keys), list(values)

    async def _upsert_latest(self, conn: Conn, rows: list[Row]) -> None:
        await _copy(conn, _COPY, rows)
        async with conn.cursor() as cur:
            await cur.execute(_LATEST)

    async def _write_quarantine(self, conn: Conn, batch: Batch) -> int:
        """Sampled rows and exact counts of the batch's refusals; returns readings refused."""
        refused = [o for o in batch.outcomes if o.quarantined]
        if not refused:
            return 0
        records, counts = quarantine_records(refused, self._policy)
        await add_quarantine(conn, records, counts)
        return sum(q.readings for o in refused for q in o.quarantined)

    async def _write_status(self, conn: Conn, batch: Batch) -> int:
        changes = 0
        async with conn.cursor() as cur:
            for outcome in batch.outcomes:
                status = outcome.status
                if status is None:
                    continue
                state = "online" if status.online else "offline"
                reason = status.reason or ("last will / mất kết nối" if not status.online else None)
                params = {"station": status.station_id, "at": status.at, "state": state,
                          "reason": reason, "received": outcome.message.received_at}  # fmt: skip
                await cur.execute(_STATUS, params)
                changes += cur.rowcount
            stale = self.stale
            if stale:  # usually empty: then no query at all on the hot path
                resumed = sorted({s for o in batch.outcomes for s in o.stations if s in stale})
                if resumed:
                    await cur.execute(_RESUMED, (resumed,))
                    changes += max(cur.rowcount, 0)
        return changes


def newest_per_sensor(rows: list[Row]) -> list[Row]:
    """Each sensor's row with the latest measurement time (the last one on a tie)."""
    newest: dict[int, Row] = {}
    for row in rows:
        held = newest.get(row[SENSOR_KEY])
        if held is None or row[TIME] >= held[TIME]:
            newest[row[SENSOR_KEY]] = row
    return list(newest.values())


async def _copy(conn: Conn, statement: str, rows: list[Row]) -> None:
    async with conn.cursor() as cur, cur.copy(statement) as copy:
        copy.set_types(_COPY_TYPES)
        for row in rows:
            await copy.write_row(row)


async def stale_stations(conn: Conn) -> frozenset[str]:
    """Stations whose latest status is ``stale``."""
    cur = await conn.execute("SELECT station_id FROM station_state WHERE state = 'stale'")
    return frozenset(str(r[0]) for r in await cur.fetchall())
