"""Operations alerts on real TimescaleDB: a stuck storage job raises one, its work done clears it.

Runs in the TimescaleDB storage lane (``HANOI_TEST_STORAGE=timescale``); the pure verdicts
are the doctest of :mod:`processing.conditions.operations`.
"""

import psycopg
import pytest

from db.timescale import job_health, run_overdue_jobs
from processing.service import ProcessingService
from processing.settings import ProcessingSettings

pytestmark = [pytest.mark.db, pytest.mark.anyio]


async def alerts(conn: psycopg.AsyncConnection[tuple[object, ...]]) -> list[tuple[object, ...]]:
    cur = await conn.execute(
        "SELECT dedup_key, category, severity, state, station_id FROM alerts "
        "WHERE rule = 'storage_job' ORDER BY alert_id"
    )
    return list(await cur.fetchall())


@pytest.mark.usefixtures("timescale_only")
async def test_a_stuck_storage_job_raises_an_operations_alert_and_clears_when_done(
    db_url: str,
) -> None:
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        refresh = next(j for j in await job_health(conn) if j.relation == "readings_1m")
        # nobody runs it: the scheduler is told not to, and it last succeeded long ago
        await conn.execute("SELECT alter_job(%s, scheduled => false)", (refresh.job_id,))
        await conn.execute(
            "INSERT INTO storage_job_runs (job_id, last_run_at, last_success_at, runs) "
            "VALUES (%s, now() - interval '1 hour', now() - interval '1 hour', 1)",
            (refresh.job_id,),
        )
        settings = ProcessingSettings(database_url=db_url, instance="operations")
        async with ProcessingService(settings) as service:
            await service.check_operations()
            stuck = await alerts(conn)
            await run_overdue_jobs(conn, await job_health(conn))  # the upkeep's round
            await service.check_operations()
            done = await alerts(conn)
    key = f"storage_job:{refresh.job_id}"
    assert (key, "operations", "moderate", "raised", None) in stuck
    assert (key, "operations", "moderate", "cleared", None) in done
