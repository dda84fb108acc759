"""TimescaleDB upkeep: aggregates refreshed behind late writes, and the policy jobs watched.

Two things TimescaleDB does not do for us (issue 18):

- **Late and backfilled readings.** The continuous-aggregate policies refresh a trailing
  window (3 hours of ``readings_1m``, 3 days of ``readings_1h``); a batch reaching further
  back is queued by the writer (:data:`POLICY_REACH`) and :func:`refresh_queued` refreshes
  the queued ranges, so charts and the history API show a backfill of any age within
  retention after one upkeep round.
- **Jobs that fail or stall.** On PostgreSQL 15.20 every job the background scheduler runs
  is recorded as failed (``cannot drop portal "" while it is being set up``) although its
  work is committed; a scheduler that is off or stuck runs nothing at all. :func:`job_health`
  reads every policy job's last status, failures and lag; :func:`run_overdue_jobs` runs a
  failing or overdue job in the foreground (``CALL run_job``), which works where the
  background worker does not. Health, metrics and an operations alert report them.

Both need statements that cannot run inside a transaction block: they run on the caller's
idle connection switched to autocommit for the duration.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

import psycopg

from db.types import Conn

__all__ = [
    "AGGREGATES",
    "POLICY_REACH",
    "JobHealth",
    "job_health",
    "queue_refresh",
    "refresh_queued",
    "run_overdue_jobs",
]

logger = logging.getLogger(__name__)

AGGREGATES: Final = (("readings_1m", timedelta(minutes=1)), ("readings_1h", timedelta(hours=1)))
"""The continuous aggregates and their bucket widths (migration 0002)."""
POLICY_REACH: Final = timedelta(hours=2, minutes=50)
"""Writes newer than this are refreshed by the policies (the shortest window, readings_1m's
3 hours, less a margin); older ones are queued for :func:`refresh_queued`."""
_REFRESH_LOCK: Final = 0x48414E4F52  # one refresher at a time across ingest instances
_OVERDUE_FACTOR: Final = 3.0
"""A job is overdue when it has not succeeded for this many of its schedule intervals."""

_JOBS: Final = """
WITH j AS (
    SELECT j.job_id, j.proc_name, j.hypertable_name, j.scheduled, j.schedule_interval,
           s.last_run_status, s.total_runs, s.total_failures, s.last_run_started_at,
           nullif(s.last_successful_finish, '-infinity') AS background_success,
           r.last_success_at AS upkeep_success, r.runs AS upkeep_runs,
           r.failures AS upkeep_failures
    FROM timescaledb_information.jobs j
    LEFT JOIN timescaledb_information.job_stats s USING (job_id)
    LEFT JOIN storage_job_runs r USING (job_id)
    WHERE j.proc_schema IN ('_timescaledb_functions', '_timescaledb_internal')
      AND j.hypertable_name IS NOT NULL)
SELECT job_id, proc_name, hypertable_name, scheduled,
       extract(epoch FROM schedule_interval)::float8, last_run_status,
       greatest(background_success, upkeep_success),
       coalesce(total_runs, 0) + coalesce(upkeep_runs, 0),
       coalesce(total_failures, 0) + coalesce(upkeep_failures, 0),
       extract(epoch FROM now() - coalesce(greatest(background_success, upkeep_success),
                                           last_run_started_at, now()))::float8
FROM j ORDER BY job_id"""
_RECORD: Final = """
INSERT INTO storage_job_runs AS r (job_id, last_run_at, last_success_at, last_error, runs,
                                   failures)
VALUES (%(job)s, now(), CASE WHEN %(error)s::text IS NULL THEN now() END, %(error)s, 1,
        CASE WHEN %(error)s::text IS NULL THEN 0 ELSE 1 END)
ON CONFLICT (job_id) DO UPDATE SET
    last_run_at = excluded.last_run_at,
    last_success_at = coalesce(excluded.last_success_at, r.last_success_at),
    last_error = excluded.last_error, runs = r.runs + 1,
    failures = r.failures + excluded.failures"""


@dataclass(frozen=True, slots=True)
class JobHealth:
    """One TimescaleDB policy job as the scheduler last left it.

    Args:
        job_id: the job.
        proc: what it runs (``policy_refresh_continuous_aggregate``, …).
        relation: the hypertable or aggregate it works on.
        scheduled: whether the background scheduler runs it.
        interval_s: its schedule interval.
        last_status: the background scheduler's last outcome: ``Success``, ``Failed`` or
            None (it never ran it).
        last_success: when it last succeeded, in the background or run by the upkeep.
        runs: runs recorded, both ways.
        failures: failed runs recorded, both ways.
        lag_s: seconds since it last succeeded (since its first run, if never; 0 if it
            never ran).
    """

    job_id: int
    proc: str
    relation: str
    scheduled: bool
    interval_s: float
    last_status: str | None
    last_success: datetime | None
    runs: int
    failures: int
    lag_s: float

    @property
    def is_failing(self) -> bool:
        """The background scheduler's last run of it failed."""
        return self.last_status == "Failed"

    @property
    def is_due(self) -> bool:
        """Its work has not been done for one interval: time for the next run."""
        return self.last_success is None or self.lag_s >= max(self.interval_s, 60.0)

    @property
    def is_overdue(self) -> bool:
        """Its work has not been done for several intervals: it is stuck."""
        return self.lag_s > _OVERDUE_FACTOR * max(self.interval_s, 60.0)


async def job_health(conn: Conn) -> list[JobHealth]:
    """Every policy job on our hypertables and aggregates."""
    cur = await conn.execute(_JOBS)
    return [
        JobHealth(int(r[0]), str(r[1]), str(r[2]), bool(r[3]), float(r[4] or 0.0),
                  None if r[5] is None else str(r[5]), r[6], int(r[7]), int(r[8]),
                  float(r[9] or 0.0))
        for r in await cur.fetchall()
    ]  # fmt: skip


def queue_refresh(lo: datetime, hi: datetime, now: datetime | None = None) -> bool:
    """Whether a write spanning [lo, hi] reaches behind the policies' windows."""
    return lo < (now or datetime.now(UTC)) - POLICY_REACH


@contextlib.asynccontextmanager
async def _autocommit(conn: Conn) -> AsyncIterator[Conn]:
    """The connection in autocommit mode for a while.

    A transaction the caller left open (reads, on a connection that is not autocommit) is
    committed first: these statements cannot run inside one.
    """
    if conn.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS:
        await conn.commit()
    was = conn.autocommit
    await conn.set_autocommit(True)
    try:
        yield conn
    finally:
        await conn.set_autocommit(was)


async def refresh_queued(conn: Conn, *, max_ranges: int = 32) -> int:
    """Refresh the aggregates over the queued ranges; returns how many ranges were done.

    Overlapping ranges are merged and aligned to each aggregate's buckets; at most
    ``max_ranges`` merged ranges are refreshed per call (the rest waits for the next round).
    Another instance refreshing at the same time makes this call return 0.
    """
    async with _autocommit(conn):
        cur = await conn.execute("SELECT pg_try_advisory_lock(%s)", (_REFRESH_LOCK,))
        row = await cur.fetchone()
        if not (row and row[0]):
            return 0
        try:
            return await _refresh_locked(conn, max_ranges)
        finally:
            await conn.execute("SELECT pg_advisory_unlock(%s)", (_REFRESH_LOCK,))


async def _refresh_locked(conn: Conn, max_ranges: int) -> int:
    cur = await conn.execute(
        "SELECT refresh_id, lo, hi FROM aggregate_refresh_queue ORDER BY lo LIMIT %s",
        (max_ranges * 64,),
    )
    rows = await cur.fetchall()
    if not rows:
        return 0
    ranges = _merged([(r[1], r[2]) for r in rows])[:max_ranges]
    done_until = ranges[-1][1]
    for lo, hi in ranges:
        for view, width in AGGREGATES:
            start, end = _aligned(lo, hi, width)
            await conn.execute(
                "CALL refresh_continuous_aggregate(%s::regclass, %s, %s)", (view, start, end)
            )
    ids = [int(r[0]) for r in rows if r[2] <= done_until]
    await conn.execute("DELETE FROM aggregate_refresh_queue WHERE refresh_id = ANY(%s)", (ids,))
    logger.info("aggregates refreshed over %d late range(s)", len(ranges))
    return len(ranges)


def _merged(ranges: Sequence[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    """Sorted, overlapping or touching ranges merged."""
    out: list[tuple[datetime, datetime]] = []
    for lo, hi in sorted(ranges):
        if out and lo <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out


def _aligned(lo: datetime, hi: datetime, width: timedelta) -> tuple[datetime, datetime]:
    """The bucket-aligned window covering [lo, hi] (refresh works on whole buckets)."""
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    start = epoch + ((lo - epoch) // width) * width
    end = epoch + ((hi - epoch) // width + 1) * width
    return start, end


async def run_overdue_jobs(
    conn: Conn, jobs: Sequence[JobHealth], *, every: bool = False
) -> list[int]:
    """Run the due jobs the background scheduler is not doing (``every``: all of them).

    A job runs here when it is due and the scheduler failed it last time, or when it is
    overdue whatever the scheduler says (stopped, stuck); each run is recorded in
    ``storage_job_runs``, since TimescaleDB's statistics record only background runs.

    Returns:
        The ids of the jobs that ran successfully.
    """
    ran: list[int] = []
    async with _autocommit(conn):
        for job in jobs:
            if not (every or (job.is_due and job.is_failing) or job.is_overdue):
                continue
            error: str | None = None
            try:
                await conn.execute("CALL run_job(%s)", (job.job_id,))
            except psycopg.Error as exc:  # one job's failure must not stop the others
                error = str(exc)[:1000]
                logger.warning("TimescaleDB job %d (%s) failed in the foreground: %s",
                               job.job_id, job.proc, exc)  # fmt: skip
            await conn.execute(_RECORD, {"job": job.job_id, "error": error})
            if error is None:
                ran.append(job.job_id)
    if ran:
        logger.info("ran TimescaleDB job(s) %s in the foreground", ran)
    return ran
