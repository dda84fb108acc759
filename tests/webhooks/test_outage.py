"""A receiver down for "10 minutes" while the API, processing and the dispatcher restart.

Everything is real: PostgreSQL, processing deciding on readings stored the way ingest stores
them, the ops API served by uvicorn (an admin makes the subscriber, operators acknowledge and
comment over HTTP), the dispatcher, and a stdlib HTTP receiver on a local port that verifies
every signature and deduplicates on the delivery id.

How the outage is simulated, honestly: the receiver's server is shut down, so its port
refuses connections, and brought back on the same port later. Ten real minutes would make a
slow test, so the dispatcher's whole retry schedule is scaled down by :data:`SCALE` (200):
its first backoff ceiling, its cap and its maximum age are the production defaults divided
by 200, and the receiver stays down for 600 s / 200 = 3 s. The outage therefore spans as
many backoff rounds (and the same give-up margin) as ten minutes would with the production
settings; what is not scaled is the wall clock inside PostgreSQL and the restarts, which
take as long as they take.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest

from contract import Quantity
from db import StrategyName, register_stations
from processing.conditions.registry import RULES
from processing.service import ProcessingService
from processing.settings import ProcessingSettings
from tests.fixtures.feed import Sample, store
from tests.fixtures.readings import AIR, FLOOD, TEST_STATIONS
from tests.ops_api.conftest import ADMIN, OPERATOR, bearer, make_settings
from tests.ops_api.server import free_port, running_api
from tests.webhooks.receiver import Receiver
from webhooks.service import WebhookService
from webhooks.settings import WebhookSettings

pytestmark = [pytest.mark.db, pytest.mark.anyio, pytest.mark.slow]

SCALE = 200.0
OUTAGE_S = 600.0 / SCALE
KEY = "outage-test-server-key-0123456789abcdef"


def dispatcher(db_url: str, name: str) -> WebhookService:
    defaults = WebhookSettings.model_fields
    settings = WebhookSettings.model_validate(
        {
            "database_url": db_url, "instance": name, "env": "test", "secret_key": KEY,
            "retry_initial_s": float(defaults["retry_initial_s"].default) / SCALE,
            "retry_max_s": float(defaults["retry_max_s"].default) / SCALE,
            "max_age_s": float(defaults["max_age_s"].default) / SCALE,
            "poll_s": 0.05, "heartbeat_interval_s": 0.5, "upkeep_s": 0.5, "timeout_s": 2.0,
        }
    )  # fmt: skip
    return WebhookService(settings)


@asynccontextmanager
async def running(service: WebhookService | ProcessingService) -> AsyncIterator[None]:
    async with service:
        task = asyncio.create_task(service.run())
        try:
            yield
        finally:
            service.stop()
            await task


@contextmanager
def api(db_url: str) -> Iterator[str]:
    settings = make_settings(db_url, secret_key=KEY, host="127.0.0.1", port=free_port(),
                             write_burst=1000)  # fmt: skip
    with running_api(settings) as base:
        yield base


class Readings:
    """Readings one minute apart in measurement time, stored as ingest stores them."""

    def __init__(self, db_url: str, strategy: StrategyName) -> None:
        self.db_url, self.strategy = db_url, strategy
        self.at = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)

    async def add(self, depth_cm: float, pm25: float) -> None:
        self.at += timedelta(minutes=1)
        samples: list[Sample] = [
            (FLOOD.station_id, Quantity.WATER_DEPTH, depth_cm, self.at),
            (AIR.station_id, Quantity.PM25, pm25, self.at),
            (AIR.station_id, Quantity.NO2, 40.0, self.at),
        ]
        await store(self.db_url, samples, self.strategy)


async def scalar(db_url: str, sql: str) -> Any:
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        row = await (await conn.execute(sql)).fetchone()
    assert row is not None
    return row[0]


async def until(check: Any, timeout_s: float = 30.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not await check():
            await asyncio.sleep(0.05)


async def alert_id(db_url: str, rule: str) -> int:
    return int(await scalar(db_url, f"SELECT alert_id FROM alerts WHERE rule = '{rule}'"))


async def test_a_receiver_down_ten_minutes_gets_every_event_once_in_order(
    db_url: str, storage_strategy: StrategyName
) -> None:
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        await register_stations(conn, TEST_STATIONS)
    receiver = Receiver().start()
    proc = ProcessingSettings.model_validate(
        {"database_url": db_url, "feed_poll_s": 0.05, "clear_after_samples": 2}
    )
    readings = Readings(db_url, storage_strategy)

    # An admin makes the department's subscriber through the API; the secret is shown once.
    with api(db_url) as base:
        async with httpx.AsyncClient(base_url=base) as http:
            made = await http.post(
                "/api/admin/subscribers", headers=bearer(ADMIN),
                json={"name": "so-tnmt", "url": receiver.url, "domains": ["flood", "air"]},
            )  # fmt: skip
    assert made.status_code == 201, made.text
    receiver.secret = made.json()["secret"]

    # Receiver up: the flood is raised and delivered.
    first = dispatcher(db_url, "a")
    async with running(first):
        async with running(ProcessingService(proc)):
            for depth in (1.0, 4.0, 12.0, 21.0):
                await readings.add(depth, 30.0)
            await until(lambda: _accepted(receiver, 1))
            # The receiver goes down; the flood worsens and PM2.5 rises while it is away.
            receiver.stop()
            down_at, seen = time.monotonic(), len(receiver.requests)
            for depth, pm25 in ((34.0, 160.0), (36.0, 170.0)):
                await readings.add(depth, pm25)
        # processing has stopped; operators act through the API, which then stops too
        flood_id = await alert_id(db_url, "flood_depth")
        with api(db_url) as base:
            async with httpx.AsyncClient(base_url=base, headers=bearer(OPERATOR)) as http:
                ack = await http.post(f"/api/alerts/{flood_id}/acknowledge",
                                      json={"note": "Đội ứng cứu đã được điều đến"})  # fmt: skip
                assert ack.status_code == 200, ack.text
    # The dispatcher was restarted too (its first instance stopped above).
    second = dispatcher(db_url, "b")
    async with running(second):
        async with running(ProcessingService(proc)):
            for depth, pm25 in ((26.0, 260.0), (5.0, 265.0), (2.0, 30.0), (1.0, 20.0)):
                await readings.add(depth, pm25)
            await until(lambda: _cleared(db_url))
        with api(db_url) as base:
            async with httpx.AsyncClient(base_url=base, headers=bearer(OPERATOR)) as http:
                note = {"note": "Nước đã rút, đường thông / water receded, road open"}
                comment = await http.post(f"/api/alerts/{flood_id}/comment", json=note)
                assert comment.status_code == 200, comment.text
        # still inside the outage: every attempt so far was refused, and counted
        assert len(receiver.requests) == seen, "the receiver was down"
        await asyncio.sleep(max(0.0, OUTAGE_S - (time.monotonic() - down_at)))
        retried = await scalar(db_url, "SELECT max(attempts) FROM webhook_outbox")
        assert retried >= 3, "the outage spanned several backoff rounds"

        # The receiver is back on the same port: everything arrives.
        receiver.start()
        await until(lambda: _settled(db_url))

    expected = await _expected(db_url)
    statuses = await scalar(db_url, "SELECT array_agg(DISTINCT status) FROM webhook_outbox")
    assert set(statuses) <= {"delivered", "withheld"}
    # the single-sample PM2.5 alert is internal (the hourly VN_AQI alert is the public one):
    # queued for the subscriber's domain, withheld, never sent
    withheld = await scalar(
        db_url, "SELECT array_agg(DISTINCT rule) FROM webhook_outbox WHERE status = 'withheld'"
    )
    assert withheld == ["pm25_high"]
    assert not RULES["pm25_high"].public
    assert all(r.verified for r in receiver.requests), "every request carried a valid signature"
    ok = Counter(r.delivery_id for r in receiver.requests if r.answered == 200)
    assert set(ok.values()) == {1}, "once per delivery id"
    got = receiver.first_arrivals
    assert sorted(d["event"]["event_id"] for d in got) == sorted(expected)
    assert {d["delivery_id"] for d in got} == set(ok)
    per_alert: dict[int, list[int]] = {}
    for doc in got:
        per_alert.setdefault(doc["alert"]["alert_id"], []).append(doc["event"]["event_id"])
    assert all(ids == sorted(ids) for ids in per_alert.values()), per_alert
    flood = [d for d in got if d["alert"]["rule"] == "flood_depth"]
    actions = [d["event"]["action"] for d in flood]
    assert actions[0] == "raised"
    assert {"updated", "acknowledged", "cleared", "commented"} <= set(actions)
    assert flood[-1]["event"]["note"].startswith("Nước đã rút")
    assert not any(d["alert"]["rule"] == "pm25_high" for d in got)


async def _accepted(receiver: Receiver, n: int) -> bool:
    return len(receiver.accepted) >= n


async def _cleared(db_url: str) -> bool:
    state = await scalar(db_url, "SELECT min(state) FROM alerts WHERE rule = 'flood_depth'")
    return bool(state == "cleared")


async def _settled(db_url: str) -> bool:
    pending = await scalar(db_url, "SELECT count(*) FROM webhook_outbox WHERE status = 'pending'")
    return bool(pending == 0)


async def _expected(db_url: str) -> list[int]:
    """Every event of a public hazard in the subscriber's domains, from the audit trail."""
    public = [name for name, spec in RULES.items() if spec.public]
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        cur = await conn.execute(
            "SELECT e.event_id FROM alert_events e JOIN alerts a USING (alert_id) "
            "WHERE a.category = 'event' AND a.domain IN ('flood', 'air') AND a.rule = ANY (%s)",
            (public,),
        )
        return [int(r[0]) for r in await cur.fetchall()]
