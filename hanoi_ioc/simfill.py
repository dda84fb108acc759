"""A database filled with simulator data, through the real ingest and processing code.

For tests and benchmarks of the readers (the ops API, Grafana) that need realistic rows
without running the broker and the services:

The Hanoi fleet is registered, the ``demo`` scenario (a downpour flooding Thái Hà, a PM2.5
episode, a crash on Nguyễn Trãi, a sprinkling of sensor faults) is generated for the last
``hours`` hours, each message goes through ingest's validator and writer (readings, latest,
quarantine, device status) and processing's engine and alert sink (alerts, indices), with
no broker in between. Then an operator acknowledges and comments on some alerts, so every
table the API reads has realistic rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

import psycopg
from psycopg_pool import AsyncConnectionPool

from contract import Reading, now_utc
from db import Conn, load_registry, register_stations, strategy_for, upgrade
from ingest.writer import Writer, configure_connection
from processing.alerts import AlertAction
from processing.alerts.lifecycle import Lifecycle
from processing.alerts.sink import apply_commands, transition_alert
from processing.engine import Engine
from processing.store import store_indices
from simulators import generate, hanoi_fleet, load_scenario
from simulators.stream import OutgoingKind
from stream.batcher import Batch
from stream.consumer import RawMessage
from stream.validate import Outcome, Validator

__all__ = ["SimulatedData", "fill_with_simulation"]

_BATCH_MESSAGES: Final = 2000


@dataclass(frozen=True, slots=True)
class SimulatedData:
    """What was written."""

    stations: int
    messages: int
    readings: int
    alerts: int
    quarantined: int


async def _flush(
    writer: Writer, engine: Engine, pool: AsyncConnectionPool[Conn], outcomes: list[Outcome]
) -> None:
    if not outcomes:
        return
    batch = Batch(outcomes, sum(len(o.rows) for o in outcomes))
    await writer.write(batch)
    readings: list[Reading] = [r for o in outcomes for r in o.readings]
    result = engine.process(readings)
    async with pool.connection() as conn, conn.transaction():
        await apply_commands(conn, list(result.commands))
        await store_indices(conn, list(result.index_rows))


async def fill_with_simulation(db_url: str, *, hours: float = 2.0, seed: int = 7) -> SimulatedData:
    """Fill the database at ``db_url`` (migrated, empty) with ``hours`` of the demo scenario."""
    fleet = hanoi_fleet()
    # the strategy the database was built with (nothing is applied to a migrated one)
    strategy, _ = await upgrade(db_url)
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        await register_stations(conn, fleet)
        registry = await load_registry(conn)
    validator = Validator(registry)
    engine = Engine(Lifecycle())
    engine.use(registry)
    end = now_utc().replace(microsecond=0)
    start = end - timedelta(hours=hours)
    scenario = load_scenario("demo", fleet)
    pool: AsyncConnectionPool[Conn] = AsyncConnectionPool(
        db_url, min_size=1, max_size=2, configure=configure_connection, open=False
    )
    messages = 0
    async with pool:
        writer = Writer(pool, strategy_for(strategy))
        outcomes: list[Outcome] = []
        for item in generate(scenario, fleet, start, end, seed):
            if item.kind is OutgoingKind.TRUTH:
                continue
            raw = RawMessage(item.topic, item.payload, 0, 1, item.sim_time, 0)
            outcomes.append(validator.check(raw))
            messages += 1
            if len(outcomes) >= _BATCH_MESSAGES:
                await _flush(writer, engine, pool, outcomes)
                outcomes = []
        await _flush(writer, engine, pool, outcomes)
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        await _operator_actions(conn, end)
        counts = await _counts(conn)
    return SimulatedData(len(fleet), messages, *counts)


async def _operator_actions(conn: Conn, at: datetime) -> None:
    cur = await conn.execute(
        "SELECT alert_id FROM alerts WHERE state = 'raised' ORDER BY alert_id LIMIT 6"
    )
    ids = [int(row[0]) for row in await cur.fetchall()]
    for alert_id in ids[:4]:
        await transition_alert(
            conn, alert_id, AlertAction.ACKNOWLEDGED, actor="op-sim", note=f"seen {at:%H:%M}",
            can_see=_everything,
        )  # fmt: skip
    for alert_id in ids[4:]:
        await transition_alert(
            conn, alert_id, AlertAction.COMMENTED, actor="op-sim", note="Đã cử đội kiểm tra",
            can_see=_everything,
        )  # fmt: skip


def _everything(_domain: str | None) -> bool:
    return True


async def _counts(conn: Conn) -> tuple[int, int, int]:
    values = []
    for table in ("readings", "alerts", "quarantine"):
        cur = await conn.execute(f"SELECT count(*) FROM {table}")
        row = await cur.fetchone()
        values.append(int(row[0]) if row else 0)
    return values[0], values[1], values[2]
