"""The database writer: one transaction per batch, idempotent, acks after commit.

Per batch: rows go by binary COPY into a per-connection temporary staging table, then
``INSERT … SELECT … ON CONFLICT DO NOTHING`` into ``readings`` (so a redelivered message
stores nothing twice), the ``latest`` table is upserted by measurement time, the written
time range is logged for rollups, and quarantine and device-status rows are added — all in
the same transaction, so an acknowledgement covers every effect of its message.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

import psycopg
from psycopg_pool import AsyncConnectionPool

from ingest.batcher import Batch
from ingest.errors import StorageError
from ingest.storage import Conn, Strategy
from ingest.validate import storable

__all__ = ["WriteResult", "Writer", "configure_connection", "heartbeat", "stale_stations"]

logger = logging.getLogger(__name__)

_STAGING: Final = """
CREATE TEMP TABLE IF NOT EXISTS ingest_staging (
    time timestamptz, sensor_id integer, value double precision, quality smallint,
    received_at timestamptz
) ON COMMIT DELETE ROWS"""
_COPY: Final = "COPY ingest_staging FROM STDIN (FORMAT BINARY)"
_COPY_TYPES: Final = ["timestamptz", "int4", "float8", "int2", "timestamptz"]
_INSERT: Final = "INSERT INTO readings SELECT * FROM ingest_staging ON CONFLICT DO NOTHING"
_LATEST: Final = """
INSERT INTO latest (sensor_id, time, value, quality, received_at)
SELECT DISTINCT ON (sensor_id) sensor_id, time, value, quality, received_at
FROM ingest_staging ORDER BY sensor_id, time DESC
ON CONFLICT (sensor_id) DO UPDATE SET
    time = excluded.time, value = excluded.value, quality = excluded.quality,
    received_at = excluded.received_at
WHERE latest.time < excluded.time"""
_QUARANTINE: Final = """
INSERT INTO quarantine (received_at, topic, client_id, payload, reason, detail, station_id,
                        quantity, readings)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"""
_STATUS: Final = """
INSERT INTO sensor_status (station_id, at, state, reason)
SELECT %(station)s, %(at)s, %(state)s, %(reason)s
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


class Writer:
    """Writes batches through a connection pool.

    Args:
        pool: the pool (its connections configured with :func:`configure_connection`).
        strategy: the storage strategy in force.
    """

    def __init__(self, pool: AsyncConnectionPool[Conn], strategy: Strategy) -> None:
        self._pool = pool
        self._strategy = strategy
        self.stale: frozenset[str] = frozenset()
        """Stations last known to be stale (set by the owner from :func:`stale_stations`): a
        batch with data from one of them records that its data resumed."""

    async def write(self, batch: Batch) -> WriteResult:
        """Write one batch in one transaction.

        Raises:
            StorageError: when the database fails; nothing of the batch is committed.
        """
        started = time.perf_counter()
        rows = [row for outcome in batch.outcomes for row in outcome.rows]
        try:
            async with self._pool.connection() as conn:
                if rows:
                    first = min(r[0] for r in rows)
                    last = max(r[0] for r in rows)
                    await self._strategy.ensure_partitions(conn, first.date(), last.date())
                async with conn.transaction():
                    stored = await self._write_rows(conn, rows)
                    if rows:
                        await self._strategy.invalidate(conn, first, last)
                    quarantined = await self._write_quarantine(conn, batch)
                    changes = await self._write_status(conn, batch)
        except psycopg.Error as exc:
            msg = f"batch of {len(batch)} messages not written: {exc}"
            raise StorageError(msg) from exc
        return WriteResult(
            stored, len(rows) - stored, quarantined, changes, time.perf_counter() - started
        )

    async def _write_rows(
        self, conn: Conn, rows: list[tuple[datetime, int, float, int, datetime]]
    ) -> int:
        if not rows:
            return 0
        async with conn.cursor() as cur:
            async with cur.copy(_COPY) as copy:
                copy.set_types(_COPY_TYPES)
                for row in rows:
                    await copy.write_row(row)
            await cur.execute(_INSERT)
            stored = cur.rowcount
            await cur.execute(_LATEST)
        return stored

    async def _write_quarantine(self, conn: Conn, batch: Batch) -> int:
        params = [
            (
                o.message.received_at,
                storable(o.message.topic),
                storable(o.message.publisher),
                o.message.payload,
                q.reason,
                storable(q.detail),
                storable(q.station_id),
                storable(q.quantity),
                q.readings,
            )
            for o in batch.outcomes
            for q in o.quarantined
        ]
        if params:
            async with conn.cursor() as cur:
                await cur.executemany(_QUARANTINE, params)
        return sum(p[-1] for p in params)

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
                          "reason": reason}  # fmt: skip
                await cur.execute(_STATUS, params)
                changes += cur.rowcount
            stale = self.stale
            if stale:  # usually empty: then no query at all on the hot path
                resumed = sorted({s for o in batch.outcomes for s in o.stations if s in stale})
                if resumed:
                    await cur.execute(_RESUMED, (resumed,))
                    changes += max(cur.rowcount, 0)
        return changes


async def stale_stations(conn: Conn) -> frozenset[str]:
    """Stations whose latest status is ``stale``."""
    cur = await conn.execute("SELECT station_id FROM station_state WHERE state = 'stale'")
    return frozenset(str(r[0]) for r in await cur.fetchall())


async def heartbeat(
    pool: AsyncConnectionPool[Conn], service: str, instance: str, started_at: datetime,
    stats: dict[str, float | int | str],
) -> None:  # fmt: skip
    """Record that a service instance is alive, with its counters."""
    async with pool.connection() as conn:
        await conn.execute(
            """INSERT INTO service_heartbeats (service, instance, started_at, seen_at, stats)
               VALUES (%s, %s, %s, %s, %s)
               ON CONFLICT (service, instance) DO UPDATE SET
                 started_at = excluded.started_at, seen_at = excluded.seen_at,
                 stats = excluded.stats""",
            (service, instance, started_at, datetime.now(UTC), json.dumps(stats)),
        )
