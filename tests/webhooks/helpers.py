"""Alerts written by the one writer of alert rows, and subscribers made as admins make them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import psycopg

from contract import Station
from db import Conn, register_stations
from ops_api.subscribers import SubscriberChange, create_subscriber
from processing.alerts import Alert, Severity
from processing.alerts.lifecycle import Clear, Command, Raise, Update
from processing.alerts.model import Category
from processing.alerts.sink import apply_commands
from tests.fixtures.readings import FLOOD, TEST_STATIONS

KEY = b"webhook-test-server-key-0123456789abcdef"


async def registered(conn: Conn) -> None:
    await register_stations(conn, TEST_STATIONS)


def alert(
    rule: str = "flood_depth",
    severity: Severity = Severity.MODERATE,
    *,
    station: Station = FLOOD,
    category: Category = "event",
    value: float = 21.0,
) -> Alert:
    return Alert(
        dedup_key=f"{rule}:{station.station_id}", rule=rule, category=category,
        severity=severity, station_id=station.station_id, quantity=None,
        domain=station.domain.value, district=station.district,
        title_vi="Ngập – thử", title_en="Flooding – test", message_vi="Sâu 21 cm",
        message_en="21 cm deep", value=value, threshold=20.0, observed_at=datetime.now(UTC),
    )  # fmt: skip


def raised(a: Alert) -> Raise:
    return Raise(a, group_key=f"g:{a.dedup_key}")


def updated(a: Alert) -> Update:
    return Update(a)


def cleared(a: Alert) -> Clear:
    return Clear(a.dedup_key, 1.0, datetime.now(UTC), "back to normal")


async def write(conn: Conn, commands: Sequence[Command]) -> None:
    """Commit ``commands`` as processing does (one transaction)."""
    async with conn.transaction():
        await apply_commands(conn, list(commands))


async def subscribe(
    conn: Conn,
    name: str,
    url: str,
    *,
    domains: Sequence[str] | None = None,
    min_severity: str = "info",
    districts: Sequence[str] | None = None,
    enabled: bool = True,
) -> tuple[int, str]:
    """A subscriber's id and secret."""
    change = SubscriberChange(name, url, domains, min_severity, districts, enabled)
    made = await create_subscriber(conn, change, key=KEY, actor="test")
    assert made is not None
    secret, record = made
    return record.subscriber_id, secret


async def outbox(conn: Conn, where: str = "true") -> list[tuple[object, ...]]:
    """(subscriber, event, alert, action, status, attempts) rows, by subscriber and event."""
    cur = await conn.execute(
        "SELECT subscriber_id, event_id, alert_id, snapshot->'event'->>'action', status, attempts "
        f"FROM webhook_outbox WHERE {where} ORDER BY subscriber_id, event_id"
    )
    return list(await cur.fetchall())


async def connect(url: str) -> Conn:
    return await psycopg.AsyncConnection.connect(url, autocommit=True)
