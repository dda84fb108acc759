"""The dispatcher against a real receiver: signed deliveries, dead letters and redelivery
through the admin routes and the CLI, withheld internal alerts, a changed server key."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import httpx
import pytest
from psycopg.types.json import Jsonb

from db import Conn
from hanoi_ioc.cli import main as cli_main
from processing.alerts import Severity
from tests.fixtures.proxy import TcpProxy
from tests.fixtures.readings import AIR
from tests.ops_api.conftest import ADMIN, VIEWER, bearer, make_settings
from tests.ops_api.server import free_port, running_api
from tests.webhooks.helpers import (
    KEY,
    alert,
    cleared,
    raised,
    registered,
    subscribe,
    updated,
    write,
)
from tests.webhooks.receiver import Receiver
from webhooks.service import WebhookService
from webhooks.settings import WebhookSettings

pytestmark = [pytest.mark.db, pytest.mark.anyio]


def settings(db_url: str, **extra: object) -> WebhookSettings:
    return WebhookSettings.model_validate(
        {
            "database_url": db_url, "env": "test", "secret_key": KEY.decode(), "poll_s": 0.05,
            "retry_initial_s": 0.01, "retry_max_s": 0.05, "heartbeat_interval_s": 0.2,
            **extra,
        }
    )  # fmt: skip


@asynccontextmanager
async def dispatching(s: WebhookSettings) -> AsyncIterator[WebhookService]:
    service = WebhookService(s, rng=random.Random(5))
    async with service:
        task = asyncio.create_task(service.run())
        try:
            yield service
        finally:
            service.stop()
            await task


async def until(check: Callable[[], Awaitable[bool]], timeout_s: float = 20.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not await check():
            await asyncio.sleep(0.05)


async def statuses(conn: Conn) -> list[str]:
    cur = await conn.execute("SELECT status FROM webhook_outbox ORDER BY event_id")
    return [str(r[0]) for r in await cur.fetchall()]


async def test_dead_letters_are_listed_and_redelivered_by_admins(
    aconn: Conn, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    await registered(aconn)
    receiver = Receiver(answer=500).start()
    sid, receiver.secret = await subscribe(aconn, "so-tnmt", receiver.url, domains=["flood"])
    a = alert()
    await write(aconn, [raised(a)])
    await write(aconn, [cleared(a)])
    api = make_settings(db_url, secret_key=KEY.decode(), host="127.0.0.1", port=free_port())
    async with dispatching(settings(db_url, max_attempts=3)) as service:
        await until(lambda: _all(aconn, "dead"))
        # both events were tried three times each, in order, and are dead letters now
        assert [r.answered for r in receiver.requests] == [500] * 6
        sent = [r.delivery_id for r in receiver.requests]
        ids = list(dict.fromkeys(sent))
        assert len(ids) == 2
        assert sent == [ids[0]] * 3 + [ids[1]] * 3  # the second waited for the first
        with running_api(api) as base:
            async with httpx.AsyncClient(base_url=base, headers=bearer(ADMIN)) as http:
                dead = (await http.get("/api/admin/deliveries", params={"status": "dead"})).json()
                assert len(dead) == 2
                assert {d["last_status"] for d in dead} == {500}
                assert all(d["last_error"].startswith("gave up after 3") for d in dead)
                first = min(dead, key=lambda d: d["event_id"])
                assert first["delivery_id"] == ids[0]
                receiver.answer = 204  # the receiver is fixed
                again = await http.post(f"/api/admin/deliveries/{ids[0]}/redeliver")
                assert again.status_code == 200, again.text
                assert (again.json()["status"], again.json()["attempts"]) == ("pending", 0)
                await until(lambda: _status_of(aconn, ids[0], "delivered"))
                none = await http.post("/api/admin/redeliveries", json={"subscriber_id": sid + 1})
                assert none.json() == {"count": 0, "delivery_ids": []}  # another subscriber's
                missing = await http.post(f"/api/admin/deliveries/{uuid.uuid4()}/redeliver")
                assert missing.status_code == 404
                refused = await http.get(
                    "/api/admin/deliveries", headers=bearer(VIEWER)
                )  # not an admin
                assert refused.status_code == 403
                # the dispatcher's heartbeat reaches /metrics
                metrics = (await http.get("/metrics")).text
                assert 'hanoi_webhooks_dead{instance="0"} 2' in metrics, metrics[-2000:]
                assert "hanoi_webhooks_outbox_pending" in metrics
                audit = (await http.get("/api/admin/audit", params={"kind": "delivery"})).json()
                assert [e["action"] for e in audit["items"]] == ["delivery.redeliver"]
        # the other dead letter, through the CLI (its own event loop, in a thread)
        listed = ["webhooks", "list", "--status", "dead", "--database-url", db_url]
        assert await asyncio.to_thread(cli_main, listed) == 0
        assert ids[1] in capsys.readouterr().out
        again_cli = ["webhooks", "redeliver", "--dead", "--database-url", db_url]
        assert await asyncio.to_thread(cli_main, again_cli) == 0
        assert "queued again: 1" in capsys.readouterr().out
        await until(lambda: _all(aconn, "delivered"))
        assert service.stats()["dead"] == 2
    assert list(receiver.accepted) == ids  # each once, under the same ids, in order
    assert all(r.verified for r in receiver.requests)
    assert sid


async def test_internal_alerts_are_withheld_and_a_changed_key_is_not_used(
    aconn: Conn, db_url: str
) -> None:
    await registered(aconn)
    receiver = Receiver().start()
    _, receiver.secret = await subscribe(aconn, "everything", receiver.url)
    await write(aconn, [raised(alert("traffic_incident"))])  # an 'event' that is not public
    async with dispatching(settings(db_url)):
        await until(lambda: _all(aconn, "withheld"))
    assert receiver.requests == []

    await write(aconn, [raised(alert())])
    other_key = "another-server-key-0123456789abcdefghij"
    async with dispatching(settings(db_url, secret_key=other_key)):
        await until(lambda: _attempted(aconn, 3))
    assert receiver.requests == []  # never signed with a secret the receiver does not hold
    cur = await aconn.execute("SELECT last_error FROM webhook_outbox WHERE status = 'pending'")
    row = await cur.fetchone()
    assert row is not None
    assert "API_SECRET_KEY" in str(row[0])
    async with dispatching(settings(db_url)):  # the right key again: it goes
        await until(lambda: _status_of(aconn, None, "delivered"))
    assert [r.verified for r in receiver.requests] == [True]


async def _all(conn: Conn, status: str) -> bool:
    found = await statuses(conn)
    return bool(found) and set(found) == {status}


async def _status_of(conn: Conn, delivery_id: str | None, status: str) -> bool:
    cur = await conn.execute(
        "SELECT count(*) FROM webhook_outbox WHERE status = %s "
        "AND (%s::uuid IS NULL OR delivery_id = %s::uuid)",
        (status, delivery_id, delivery_id),
    )
    row = await cur.fetchone()
    return row is not None and int(row[0]) > 0


async def _attempted(conn: Conn, n: int) -> bool:
    cur = await conn.execute("SELECT coalesce(max(attempts), 0) FROM webhook_outbox")
    row = await cur.fetchone()
    return row is not None and int(row[0]) >= n


async def test_two_dispatchers_share_the_work_in_order_without_duplicates(
    aconn: Conn, db_url: str
) -> None:
    await registered(aconn)
    receiver = Receiver().start()
    _, receiver.secrets["/all"] = await subscribe(aconn, "everything", receiver.url_at("/all"))
    _, receiver.secrets["/flood"] = await subscribe(
        aconn, "flood", receiver.url_at("/flood"), domains=["flood"]
    )
    flood, air = alert(), alert("air_quality", station=AIR)
    await write(aconn, [raised(flood), raised(air)])
    for step in range(6):
        sev = (Severity.MODERATE, Severity.SEVERE)[step % 2]
        await write(
            aconn,
            [
                updated(alert(severity=sev, value=20.0 + step)),
                updated(alert("air_quality", sev, station=AIR, value=160.0 + step)),
            ],
        )
    await write(aconn, [cleared(flood), cleared(air)])
    async with (
        dispatching(settings(db_url, batch=3, concurrency=2)),
        dispatching(settings(db_url, batch=3, concurrency=2, instance="1")),
    ):
        await until(lambda: _all(aconn, "delivered"))
    assert all(r.verified for r in receiver.requests)
    ok = Counter(r.delivery_id for r in receiver.requests)
    assert set(ok.values()) == {1}  # 16 events for one subscriber, 8 for the other, once each
    assert len(ok) == 24
    per_queue: dict[tuple[str, int], list[int]] = {}
    for r in receiver.requests:
        key = (r.path, r.body["alert"]["alert_id"])
        per_queue.setdefault(key, []).append(r.body["event"]["event_id"])
    assert all(ids == sorted(ids) for ids in per_queue.values()), per_queue


async def test_a_delivery_that_cannot_be_made_does_not_stop_the_others(
    aconn: Conn, db_url: str
) -> None:
    await registered(aconn)
    receiver = Receiver().start()
    sid, receiver.secret = await subscribe(aconn, "everything", receiver.url)
    # a row the trigger would never write: its event time is not a time
    await aconn.execute(
        "INSERT INTO webhook_outbox (subscriber_id, event_id, alert_id, rule, snapshot) "
        "VALUES (%s, 999999, 999999, 'flood_depth', %s)",
        (sid, Jsonb({"event": {"action": "raised", "at": "not a time"}, "alert": {}})),
    )
    await write(aconn, [raised(alert())])
    async with dispatching(settings(db_url)):
        await until(lambda: _status_of(aconn, None, "delivered"))
        await until(lambda: _attempted(aconn, 2))
    cur = await aconn.execute(
        "SELECT status, last_error FROM webhook_outbox WHERE event_id = 999999"
    )
    row = await cur.fetchone()
    assert row is not None
    assert row[0] == "pending"
    assert str(row[1]).startswith("internal error: ValueError")
    assert [r.body["event"]["action"] for r in receiver.requests] == ["raised"]


async def test_the_dispatcher_rides_out_a_database_outage(
    aconn: Conn, db_url: str, pg_proxy: TcpProxy
) -> None:
    await registered(aconn)
    receiver = Receiver().start()
    _, receiver.secret = await subscribe(aconn, "everything", receiver.url)
    a = alert()
    await write(aconn, [raised(a)])
    config = settings(pg_proxy.url(db_url), pool_timeout_s=1.0, reconnect_timeout_s=1.0)
    async with dispatching(config):
        await until(lambda: _accepted(receiver, 1))
        pg_proxy.cut()  # the dispatcher loses the database; alerts go on being written
        await write(aconn, [updated(alert(severity=Severity.SEVERE))])
        await write(aconn, [cleared(a)])
        await asyncio.sleep(2.0)
        assert len(receiver.requests) == 1
        pg_proxy.restore()
        await until(lambda: _all(aconn, "delivered"))
    actions = [r.body["event"]["action"] for r in receiver.requests]
    assert actions == ["raised", "updated", "cleared"]  # each once, in order


async def _accepted(receiver: Receiver, n: int) -> bool:
    return len(receiver.accepted) >= n
