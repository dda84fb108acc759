"""A restart never raises again what processing already decided, whatever is replayed.

A flood is decided (raised, updated, cleared) and processing stops. Then what a restart
can bring is stored: the same readings published again (duplicates: ingest stores them
once, so they never reach the feed), the same flood told again at other times inside the
decided episode (what a simulator restarted on a new anchor used to send), and a second
rise within the cooldown after the clear. The flood's forecast (the nowcast at the flood
sensor's hotspot) is decided the same way. Processing starts again, from its last snapshot
or from an older one (the whole feed replayed): no alert row and no alert event is added.
"""

import asyncio
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from contract import Quantity
from db import StrategyName, register_stations
from processing.service import ProcessingService
from processing.settings import ProcessingSettings
from tests.fixtures.feed import Sample, store
from tests.fixtures.readings import FLOOD, TEST_STATIONS

pytestmark = [pytest.mark.db, pytest.mark.anyio]

DEPTH = Quantity.WATER_DEPTH
STORY = [1.0] * 5 + [25.0, 35.0, 36.0, 37.0, 30.0] + [1.0] * 8
"""One reading a minute: a flood from minute 5, back to normal from minute 10."""


def _settings(url: str) -> ProcessingSettings:
    return ProcessingSettings.model_validate(
        {"database_url": url, "instance": "replay", "feed_poll_s": 0.05,
         "snapshot_interval_s": 0.1}
    )  # fmt: skip


def _told(t0: datetime, cms: list[float], shift_s: float = 0.0) -> list[Sample]:
    return [(FLOOD.station_id, DEPTH, cm, t0 + timedelta(minutes=i, seconds=shift_s))
            for i, cm in enumerate(cms)]  # fmt: skip


async def _rows(db_url: str, sql: str) -> list[tuple[object, ...]]:
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        cur = await conn.execute(sql)
        return list(await cur.fetchall())


async def _decide_all(db_url: str) -> ProcessingService:
    """Run processing until it has committed everything in the feed, then stop it."""
    ((head,),) = await _rows(db_url, "SELECT seq FROM feed_head")
    assert isinstance(head, int)
    service = ProcessingService(_settings(db_url))
    async with service:
        runner = asyncio.create_task(service.run())
        async with asyncio.timeout(30):
            while service.position < head:
                await asyncio.sleep(0.02)
        await service.save_state()  # the snapshot at the committed position
        service.stop()
        await runner
    return service


async def _alerts(db_url: str) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    alerts = await _rows(db_url, "SELECT alert_id, rule, state FROM alerts ORDER BY 1")
    events = await _rows(db_url, "SELECT event_id, alert_id, action FROM alert_events ORDER BY 1")
    return alerts, events


@pytest.mark.parametrize("from_snapshot", ["latest", "older"])
async def test_replayed_and_retold_readings_of_a_decided_flood_raise_nothing(
    db_url: str, storage_strategy: StrategyName, from_snapshot: str
) -> None:
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        await register_stations(conn, TEST_STATIONS)
    t0 = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=1)
    await store(db_url, _told(t0, STORY), storage_strategy)
    await _decide_all(db_url)
    decided = await _alerts(db_url)
    # the flood and its forecast, each raised and cleared
    assert sorted((r[1], r[2]) for r in decided[0]) == [("flood_depth", "cleared"),
                                                         ("flood_forecast", "cleared")]  # fmt: skip
    assert [r[2] for r in decided[1]].count("raised") == 2

    again = await store(db_url, _told(t0, STORY), storage_strategy)  # published again
    assert again.stored == 0
    retold = _told(t0, STORY[:13], shift_s=30)  # the flood told again, 30 s later
    await store(db_url, retold, storage_strategy)
    after_clear = t0 + timedelta(minutes=len(STORY) + 1)  # a rise within the cooldown
    await store(db_url, _told(after_clear, [26.0, 27.0, 1.0, 1.0, 1.0]), storage_strategy)
    if from_snapshot == "older":  # the crash came long after the last snapshot
        async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
            await conn.execute("UPDATE processing_state SET position = 0")
    second = await _decide_all(db_url)

    assert second.stats()["readings"] == 13 + 5  # the new readings were decided, once
    assert await _alerts(db_url) == decided  # and raised nothing
