"""``up`` keeps the simulator's place across restarts, and drops it for a new database."""

from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from db import StrategyName, register_stations
from hanoi_ioc.up import _resume_file
from tests.fixtures.feed import store
from tests.fixtures.readings import FLOOD, TEST_STATIONS

pytestmark = [pytest.mark.db, pytest.mark.anyio]


async def test_the_place_is_kept_while_the_database_holds_readings(
    db_url: str, storage_strategy: StrategyName, tmp_path: Path
) -> None:
    path = tmp_path / "simulator.json"
    path.write_text("{}")
    assert await _resume_file(db_url, tmp_path) == path
    assert not path.exists()  # a database without readings: the story starts afresh
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        await register_stations(conn, TEST_STATIONS)
    sample = (FLOOD.station_id, FLOOD.sensors[0].quantity, 1.0, datetime.now(UTC))
    await store(db_url, [sample], storage_strategy)
    path.write_text("{}")
    assert await _resume_file(db_url, tmp_path) == path
    assert path.exists()  # readings stored: the simulator goes on where it stopped
