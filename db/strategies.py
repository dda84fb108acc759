"""The two storage strategies behind one interface: TimescaleDB and plain PostgreSQL.

What differs between them is upkeep: plain PostgreSQL gets daily range partitions made
ahead of time, rollup tables refreshed incrementally and retention by dropping partitions,
all done by us; TimescaleDB does the same with chunks, continuous aggregates and policies.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Final, Protocol

import psycopg
from psycopg import sql

from db.timescale import JobHealth, job_health, queue_refresh, refresh_queued, run_overdue_jobs
from db.types import Conn, StrategyName

__all__ = ["PlainStrategy", "Strategy", "TimescaleStrategy", "strategy_for"]

_PARTITION_LOCK_KEY: Final = 0x48414E4F50  # one partition maker at a time
ROLLUP_1M_RETENTION_DAYS: Final = 90
"""Minute buckets older than this are dropped (TimescaleDB: the ``readings_1m`` retention
policy of the same age, in ``0002_readings.timescale.sql``); hourly ones are kept."""
_PRUNE_ROWS: Final = 500_000
"""Most minute buckets dropped by one upkeep round (a bounded delete; the rest next time)."""
_PRUNE_1M: Final = """
DELETE FROM readings_1m_rollup WHERE ctid = ANY(ARRAY(
    SELECT ctid FROM readings_1m_rollup WHERE bucket < %s LIMIT %s))"""


class Strategy(Protocol):
    """Storage work that differs between TimescaleDB and plain PostgreSQL."""

    name: StrategyName

    async def ensure_partitions(self, conn: Conn, first: date, last: date) -> int:
        """Make sure rows between ``first`` and ``last`` (UTC days) have somewhere to go.

        Called on an idle connection, before the batch's transaction: what it makes is
        committed at once.
        """
        ...

    def forget_partitions(self) -> None:
        """Drop what is known of existing partitions (a write found one missing)."""
        ...

    async def invalidate(self, conn: Conn, lo: datetime, hi: datetime) -> None:
        """Record that rows in [lo, hi] were written, inside the writing transaction."""
        ...

    async def maintain(self, conn: Conn, retention_days: int) -> str:
        """Periodic upkeep (partitions ahead, rollups, retention); returns a summary."""
        ...

    def stats(self) -> dict[str, float | int | str]:
        """What the upkeep knows of the store's health (for the heartbeat)."""
        ...


class PlainStrategy:
    """Plain PostgreSQL: partitions, rollup tables and retention done by us."""

    name: StrategyName = "plain"

    def __init__(self, *, days_ahead: int = 3, lock_timeout_s: float = 5.0) -> None:
        self._days_ahead = days_ahead
        self._lock_timeout_ms = max(1, round(lock_timeout_s * 1000))
        self._known: set[date] = set()

    async def ensure_partitions(self, conn: Conn, first: date, last: date) -> int:
        """Create missing daily partitions (cached, so the hot path costs a set lookup).

        In a transaction of its own, committed before the batch's: a new partition locks
        ``readings`` for an instant, not for the whole write, and a wait behind a long
        reader (a rollup refresh) ends after ``lock_timeout_s`` with an error the caller
        retries. Days are remembered only once their partitions are committed: a creation
        rolled back (a timeout, a cancelled write) is made again next time.

        Raises:
            psycopg.Error: the partitions could not be made (nothing is remembered).
        """
        days = {first + timedelta(days=i) for i in range((last - first).days + 1)}
        if days <= self._known:
            return 0
        idle = conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        async with conn.transaction():
            await conn.execute(sql.SQL("SET LOCAL lock_timeout = {}").format(self._lock_timeout_ms))
            # one creator at a time: two writers reaching a new day together would otherwise
            # race in CREATE TABLE IF NOT EXISTS ("relation already exists")
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_PARTITION_LOCK_KEY,))
            cur = await conn.execute("SELECT hanoi_ensure_partitions(%s, %s)", (first, last))
            row = await cur.fetchone()
        if idle:  # committed just now (inside a caller's transaction it is not yet)
            self._known |= days
        return int(row[0]) if row else 0

    def forget_partitions(self) -> None:
        """Check every day's partition again on the next write."""
        self._known.clear()

    async def invalidate(self, conn: Conn, lo: datetime, hi: datetime) -> None:
        """Log the written range so the next rollup refresh recomputes late buckets."""
        await conn.execute(
            "INSERT INTO rollup_invalidations (lo, hi) SELECT %s, %s "
            "WHERE %s < (SELECT max(watermark) FROM rollup_state)",
            (lo, hi, lo),
        )

    async def maintain(self, conn: Conn, retention_days: int) -> str:
        """Premake partitions, refresh rollups, drop what is past retention.

        Partitions go after ``retention_days``, minute buckets after
        :data:`ROLLUP_1M_RETENTION_DAYS` (at most ``_PRUNE_ROWS`` a round).
        """
        today = datetime.now(UTC).date()
        made = await self.ensure_partitions(
            conn, today - timedelta(days=1), today + timedelta(days=self._days_ahead)
        )
        cur = await conn.execute("SELECT hanoi_refresh_rollups()")
        refreshed = await cur.fetchone()
        cur = await conn.execute(
            "SELECT hanoi_drop_partitions(%s)", (today - timedelta(days=retention_days),)
        )
        dropped = await cur.fetchone()
        if dropped and dropped[0]:
            self._known = {d for d in self._known if d >= today - timedelta(days=retention_days)}
        cutoff = today - timedelta(days=min(ROLLUP_1M_RETENTION_DAYS, retention_days))
        cur = await conn.execute(_PRUNE_1M, (cutoff, _PRUNE_ROWS))
        pruned = max(cur.rowcount, 0)
        return (
            f"partitions made={made} rollup rows={refreshed[0] if refreshed else 0} "
            f"partitions dropped={dropped[0] if dropped else 0} minute buckets dropped={pruned}"
        )

    def stats(self) -> dict[str, float | int | str]:
        """Partitions known to exist (rollups and retention are plain SQL: nothing to watch)."""
        return {"storage_partitions_known": len(self._known)}


class TimescaleStrategy:
    """TimescaleDB: chunks, continuous aggregates and retention run as policies.

    What the policies miss is done here (see :mod:`db.timescale`): aggregates are refreshed
    over the ranges late writes touched, and a failing or overdue policy job is run in the
    foreground by the upkeep.
    """

    name: StrategyName = "timescale"

    def __init__(self) -> None:
        self.jobs: list[JobHealth] = []
        self._counts: dict[str, int] = {"ranges_refreshed": 0, "jobs_run_by_upkeep": 0}

    async def ensure_partitions(self, conn: Conn, first: date, last: date) -> int:
        """Hypertables create chunks on demand."""
        return 0

    def forget_partitions(self) -> None:
        """Nothing is cached."""

    async def invalidate(self, conn: Conn, lo: datetime, hi: datetime) -> None:
        """Queue a written range the aggregate policies will not reach (a backfill)."""
        if queue_refresh(lo, hi):
            await conn.execute(
                "INSERT INTO aggregate_refresh_queue (lo, hi) VALUES (%s, %s)", (lo, hi)
            )

    async def maintain(self, conn: Conn, retention_days: int) -> str:
        """Refresh what late writes touched; run failing or overdue policy jobs ourselves."""
        refreshed = await refresh_queued(conn)
        self.jobs = await job_health(conn)
        ran = await run_overdue_jobs(conn, self.jobs)
        if ran:
            self.jobs = await job_health(conn)
        self._counts["ranges_refreshed"] += refreshed
        self._counts["jobs_run_by_upkeep"] += len(ran)
        return f"late ranges refreshed={refreshed} jobs run by upkeep={ran or 'none'}"

    def stats(self) -> dict[str, float | int | str]:
        """Job health and upkeep counters (for the heartbeat, /health and /metrics)."""
        out: dict[str, float | int | str] = {f"storage_{k}": v for k, v in self._counts.items()}
        out["storage_jobs"] = len(self.jobs)
        out["storage_jobs_failing"] = sum(j.is_failing for j in self.jobs)
        out["storage_jobs_overdue"] = sum(j.is_overdue for j in self.jobs)
        out["storage_job_failures"] = sum(j.failures for j in self.jobs)
        out["storage_job_lag_max_s"] = round(max((j.lag_s for j in self.jobs), default=0.0), 1)
        for j in self.jobs:
            out[f"storage_job_{j.job_id}_{j.proc}_status"] = j.last_status or "never_ran"
        return out


def strategy_for(name: StrategyName) -> Strategy:
    """Instantiate the strategy called ``name``."""
    return TimescaleStrategy() if name == "timescale" else PlainStrategy()
