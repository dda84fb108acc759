"""The webhook outbox on a real database: written with the event, filtered, claimed in order."""

from __future__ import annotations

import uuid

import psycopg
import pytest

from db import Conn
from db.webhooks import Due, Finished, claim, expire, finish, list_deliveries, prune, redeliver
from processing.alerts import AlertAction, Severity
from processing.alerts.sink import transition_alert
from tests.fixtures.readings import AIR
from tests.webhooks.helpers import (
    alert,
    cleared,
    outbox,
    raised,
    registered,
    subscribe,
    updated,
    write,
)

pytestmark = [pytest.mark.db, pytest.mark.anyio]


def action(due: Due) -> object:
    event = due.snapshot["event"]
    assert isinstance(event, dict)
    return event["action"]


URL = "https://tnmt.hanoi.example/hooks/ioc"


@pytest.fixture
async def conn(aconn: Conn) -> Conn:
    await registered(aconn)
    return aconn


async def test_rows_are_written_in_the_events_transaction_for_matching_subscribers(
    conn: Conn,
) -> None:
    flood, _ = await subscribe(conn, "flood-all", URL, domains=["flood"])
    severe, _ = await subscribe(conn, "flood-severe", URL, domains=["flood"], min_severity="severe")
    await subscribe(conn, "air-only", URL, domains=["air"])
    await subscribe(conn, "elsewhere", URL, districts=["Hoàn Kiếm"])
    await subscribe(conn, "disabled", URL, enabled=False)
    everything, _ = await subscribe(conn, "everything", URL)

    a = alert(severity=Severity.MODERATE)
    await write(conn, [raised(a)])
    await write(conn, [updated(alert(severity=Severity.SEVERE, value=34.0))])
    await write(conn, [updated(alert(severity=Severity.MODERATE, value=22.0))])
    await write(conn, [cleared(a)])
    # a sensor-health alert never leaves the operations centre
    await write(conn, [raised(alert("spike", Severity.MINOR, category="sensor_health"))])
    # an alert written in a transaction that rolls back leaves nothing behind either
    async with conn.transaction(force_rollback=True):
        await write(conn, [raised(alert("pm25_high", Severity.SEVERE, station=AIR))])
        # air-only, elsewhere (Hoàn Kiếm) and everything; not the flood subscribers
        assert len(await outbox(conn, "rule = 'pm25_high'")) == 3

    rows = await outbox(conn)
    actions = {sid: [str(r[3]) for r in rows if r[0] == sid] for sid in {r[0] for r in rows}}
    assert actions == {
        flood: ["raised", "updated", "updated", "cleared"],
        # from the event that reached its severity on: it also sees the alert drop and clear
        severe: ["updated", "updated", "cleared"],
        everything: ["raised", "updated", "updated", "cleared"],
    }
    assert {r[4] for r in rows} == {"pending"}


async def test_an_operators_transition_is_queued_too(conn: Conn) -> None:
    sid, _ = await subscribe(conn, "flood", URL, domains=["flood"])
    await write(conn, [raised(alert())])
    (alert_id,) = (await (await conn.execute("SELECT alert_id FROM alerts")).fetchone()) or ()
    await transition_alert(
        conn, int(str(alert_id)), AlertAction.ACKNOWLEDGED, actor="op-1", note="đang xử lý",
        can_see=lambda _d: True,
    )  # fmt: skip
    assert [r[3] for r in await outbox(conn)] == ["raised", "acknowledged"]
    cur = await conn.execute("SELECT snapshot FROM webhook_outbox ORDER BY event_id DESC LIMIT 1")
    row = await cur.fetchone()
    assert row is not None
    snap = row[0]
    assert snap["alert"]["state"] == "acknowledged"
    assert snap["alert"]["acknowledged_by"] == "op-1"
    assert snap["event"]["note"] == "đang xử lý"
    assert sid


async def test_an_alerts_events_are_claimed_one_at_a_time_in_order(conn: Conn) -> None:
    sid, _ = await subscribe(conn, "flood", URL)
    flood = alert()
    air = alert("pm25_high", station=AIR)
    await write(conn, [raised(flood), raised(air)])
    await write(conn, [updated(alert(severity=Severity.SEVERE))])
    await write(conn, [cleared(flood)])

    first = await claim(conn, limit=10, lease_s=60)
    assert [(d.rule, action(d)) for d in first] == [
        ("flood_depth", "raised"), ("pm25_high", "raised"),
    ]  # fmt: skip
    assert await claim(conn, limit=10, lease_s=60) == []  # leased, and the heads hold the rest
    head = first[0]
    await finish(conn, [Finished(head.delivery_id, "pending", retry_in_s=0.0, error="HTTP 503")])
    again = await claim(conn, limit=10, lease_s=60)
    assert [d.delivery_id for d in again] == [head.delivery_id]  # the same delivery, again
    assert again[0].attempts == 2
    await finish(conn, [Finished(head.delivery_id, "delivered", http_status=204)])
    nxt = await claim(conn, limit=10, lease_s=60)
    assert [action(d) for d in nxt] == ["updated"]
    await finish(conn, [Finished(nxt[0].delivery_id, "dead", error="gave up")])
    last = await claim(conn, limit=10, lease_s=60)  # a dead head lets the queue go on
    assert [action(d) for d in last] == ["cleared"]
    assert sid


async def test_dead_letters_are_redelivered_under_their_own_id(conn: Conn) -> None:
    sid, _ = await subscribe(conn, "flood", URL)
    await write(conn, [raised(alert())])
    (due,) = await claim(conn, limit=10, lease_s=60)
    await finish(conn, [Finished(due.delivery_id, "dead", error="gave up after 9 attempt(s)")])
    (dead,) = await list_deliveries(conn, status="dead")
    assert (dead.delivery_id, dead.attempts, dead.last_error) == (
        due.delivery_id, 1, "gave up after 9 attempt(s)",
    )  # fmt: skip
    async with conn.transaction():
        (again,) = await redeliver(conn, status="dead", subscriber_id=sid)
    assert (again.delivery_id, again.status, again.attempts) == (due.delivery_id, "pending", 0)
    (retry,) = await claim(conn, limit=10, lease_s=60)
    assert retry.delivery_id == due.delivery_id


async def test_withheld_and_unknown_ids_are_not_redelivered(conn: Conn) -> None:
    await subscribe(conn, "flood", URL)
    await write(conn, [raised(alert("traffic_incident"))])
    (due,) = await claim(conn, limit=10, lease_s=60)
    await finish(conn, [Finished(due.delivery_id, "withheld", error="not public")])
    assert await redeliver(conn, delivery_ids=[due.delivery_id]) == []
    assert await redeliver(conn, delivery_ids=[uuid.uuid4()]) == []


async def test_expiry_and_pruning_bound_the_outbox(conn: Conn) -> None:
    await subscribe(conn, "flood", URL, domains=["flood"])
    await write(conn, [raised(alert())])
    await write(conn, [updated(alert(severity=Severity.SEVERE))])
    await conn.execute("UPDATE alert_subscribers SET enabled = false")  # no round reaches them
    assert await claim(conn, limit=10, lease_s=60) == []
    await conn.execute("UPDATE webhook_outbox SET queued_at = now() - interval '2 days'")
    assert await expire(conn, 86400.0) == 2
    assert {r[4] for r in await outbox(conn)} == {"dead"}
    assert await prune(conn, finished_keep_s=3600.0, dead_keep_s=86400.0) == 0
    await conn.execute("UPDATE webhook_outbox SET finished_at = now() - interval '2 days'")
    assert await prune(conn, finished_keep_s=3600.0, dead_keep_s=86400.0) == 2
    assert await outbox(conn) == []


async def test_removing_a_subscriber_removes_its_deliveries(conn: Conn) -> None:
    sid, _ = await subscribe(conn, "flood", URL)
    await write(conn, [raised(alert())])
    await conn.execute("DELETE FROM alert_subscribers WHERE subscriber_id = %s", (sid,))
    assert await outbox(conn) == []
    with pytest.raises(psycopg.errors.ForeignKeyViolation):
        await conn.execute(
            "INSERT INTO webhook_outbox (subscriber_id, event_id, alert_id, rule, snapshot) "
            "VALUES (%s, 1, 1, 'x', '{}')",
            (sid,),
        )


async def test_a_receiver_that_answers_again_gets_its_waiting_deliveries_at_once(
    conn: Conn,
) -> None:
    sid, _ = await subscribe(conn, "everything", URL)
    await write(conn, [raised(alert()), raised(alert("pm25_high", station=AIR))])
    refused, throttled = await claim(conn, limit=10, lease_s=60)
    await finish(conn, [
        Finished(refused.delivery_id, "pending", retry_in_s=3600.0, error="ConnectError"),
        Finished(throttled.delivery_id, "pending", 3600.0, 429, "HTTP 429"),
    ])  # fmt: skip
    await write(conn, [raised(alert("heavy_rain"))])
    (fresh,) = await claim(conn, limit=10, lease_s=60)
    await finish(conn, [Finished(fresh.delivery_id, "delivered", http_status=204)], answered=[sid])
    woken = await claim(conn, limit=10, lease_s=60)
    # the one that found no receiver is due now; the one told to slow down keeps its wait
    assert [d.delivery_id for d in woken] == [refused.delivery_id]
