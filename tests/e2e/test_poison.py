"""A poison corpus thrown at a running ingestor and a running processing service.

Every message here once stopped, stalled or fooled a service, or is of a class that could:
times at the ends of the representable range with offsets that push them out of it, forged
or broken statuses, packs speaking for other stations or for "now", numbers past a double,
bytes that are not UTF-8, NULs, nesting, retained telemetry, a message the database refuses
(a status of a station deleted behind the registry's back) and one the processing engine
raises on. Both services must keep running, acknowledge everything, quarantine what they
refuse with its reason — then store and decide the next good message.
"""

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from contract import (
    SENML_PREFIX,
    Domain,
    Quantity,
    Reading,
    Sensor,
    Station,
    StationId,
    encode_senml,
    encode_telemetry,
)
from db import register_stations
from ingest.service import IngestService
from processing.columns import Columns
from processing.engine import EngineResult
from processing.service import ProcessingService
from processing.settings import ProcessingSettings
from tests.fixtures.mqtt import Broker
from tests.fixtures.readings import AIR, FLOOD, TEST_STATIONS, flood_sample
from tests.ingest.test_service import count, publish, settings_for, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.db, pytest.mark.mqtt, pytest.mark.anyio]

DOOMED = Station(StationId("aq-poison-gone"), Domain.AIR, "Xoá", "Ba Đình", 21.0, 105.8, "urban",
                 (Sensor(Quantity.PM25, 60.0),))  # fmt: skip
"""Registered when the services start, deleted behind their backs: its status breaks a key."""
ENGINE_POISON = 66.6
"""A PM2.5 value the test makes processing's engine raise on (a bug some input triggers)."""


def _poison(root: str, now: datetime) -> list[tuple[str, bytes]]:
    air = f"{root}/air/{AIR.station_id}/telemetry"
    status = f"{root}/air/{AIR.station_id}/status"
    flood = f"{root}/flood/{FLOOD.station_id}/telemetry"
    body = '{"station":"aq-test-hoan-kiem","time":"%s","readings":[{"quantity":"pm25","value":%s,"unit":"ug/m3"}]}'  # noqa: E501
    name = f"{SENML_PREFIX}{AIR.station_id}:pm25"
    return [
        (air, (body % ("9999-12-31T23:59:59-01:00", "12")).encode()),
        (air, (body % ("0001-01-01T00:00:00+01:00", "12")).encode()),
        (air, (body % ("9999-12-31T23:59:59.9999999Z", "12")).encode()),
        (air, (body % ("2026-01-01T00:00:00+23:59", "1" + "0" * 400)).encode()),
        (air, (body % (now.isoformat(), "1e400")).encode()),
        (air, (body % (now.isoformat(), "-0")).encode()),
        (status, b'{"state":"offline","time":"9999-12-31T23:59:59-01:00"}'),
        (status, b'{"state":"offline","time":"9999-12-31T23:00:00Z"}'),
        (status, b'{"state":"online","time":"0001-01-01T00:00:00+01:00"}'),
        (status, b'{"state":"offline","station":"fd-test-thai-ha"}'),
        (status, b'{"state":"offline","reason":"a\\u0000b\\ud83d\\ude00"}'),
        (f"{root}/water/{AIR.station_id}/status", b"offline"),
        (air, b'[{"n":"' + name.encode() + b'","u":"ug/m3","v":20,"t":-30}]'),
        (air, b'[{"n":"' + name.encode() + b'","u":"ug/m3","v":20}]'),
        (air, b'[{"bn":"' + name.encode() + b'","bt":1e300,"u":"ug/m3","v":20}]'),
        (air, encode_senml([(FLOOD.station_id, Quantity.WATER_DEPTH, 3.0, now)])),
        (flood, encode_senml([(AIR.station_id, Quantity.PM25, 3.0, now)])),
        (air, b'{"station":"\xff","time":"2026-01-01T00:00:00Z","readings":[]}'),
        (air, b"\x00" * 64),
        (air, b'{"station":' + b"[" * 20000 + b"]" * 20000 + b"}"),
        (air, b"[" * 100000),
        (f"{root}/air/{DOOMED.station_id}/status", b"online"),
        # (at its own time: processing decides on what ingest stored, once per sensor and time)
        (
            air,
            encode_telemetry(
                AIR.station_id, now + timedelta(seconds=30), [(Quantity.PM25, ENGINE_POISON)]
            ),
        ),
    ]


def _rigged(service: ProcessingService) -> None:
    """Make the real engine raise on one value, as a bug some input triggers would."""
    decide = service.engine.process

    def process(readings: Sequence[Reading], columns: Columns | None = None) -> EngineResult:
        if any(r.value == ENGINE_POISON for r in readings):
            msg = "a detector cannot take this value"
            raise FloatingPointError(msg)
        return decide(readings, columns)

    service.engine.process = process  # type: ignore[method-assign]


async def test_a_poison_corpus_stops_neither_service(
    db_url: str, mqtt_broker: Broker, topic_root: str
) -> None:
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        await register_stations(conn, (*TEST_STATIONS, DOOMED))
    ingest = IngestService(settings_for(db_url, mqtt_broker, topic_root, "psn"))
    processing = ProcessingService(ProcessingSettings(
        database_url=db_url, instance=f"psn-{topic_root.split('/')[0]}", feed_poll_s=0.05,
    ))  # fmt: skip
    now = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=20)
    poison = _poison(topic_root, now)
    retained = (f"{topic_root}/air/{AIR.station_id}/telemetry",
                encode_telemetry(AIR.station_id, now, [(Quantity.PM25, 5.0)]))  # fmt: skip
    topic = f"{topic_root}/flood/{FLOOD.station_id}/telemetry"
    depths = [2.0, 6.0, 14.0, 23.0, 31.0]
    good = [(topic, flood_sample(now + timedelta(minutes=i + 1), d)) for i, d in enumerate(depths)]
    async with ingest, processing:
        await ingest.consumer.wait_connected()
        _rigged(processing)
        async with await psycopg.AsyncConnection.connect(db_url) as conn:
            await conn.execute("DELETE FROM stations WHERE station_id = %s", (DOOMED.station_id,))
            await conn.commit()
        runs = [asyncio.create_task(s.run()) for s in (ingest, processing)]
        await asyncio.to_thread(publish, mqtt_broker, [retained], True)  # a live retained one
        await asyncio.to_thread(publish, mqtt_broker, poison)
        await asyncio.to_thread(publish, mqtt_broker, good)
        sent = len(poison) + 1 + len(good)

        async def settled() -> bool:
            for run in runs:
                assert not run.done(), run  # a service that stopped fails the test at once
            return (
                ingest.pipeline.counts["acked_messages"] >= sent
                and (await processing.lag()).readings == 0
                and processing.counts["alerts_raise"] >= 1
            )

        try:
            await wait_until(settled, timeout_s=60)
        except TimeoutError:
            raise AssertionError(f"{ingest.stats()}\n{processing.stats()}") from None
        ingest.stop()
        processing.stop()
        await asyncio.gather(*runs)
    # the good messages: stored, decided (a flood alert raised)
    assert await count(db_url, "SELECT count(*) FROM readings r JOIN sensors s USING (sensor_id) "
                       f"WHERE s.station_id = '{FLOOD.station_id}'") == len(depths)  # fmt: skip
    assert await count(db_url, "SELECT count(*) FROM alerts WHERE rule = 'flood_depth'") == 1
    c = {k: int(v) for k, v in ingest.stats().items() if isinstance(v, int | float)}
    assert c["received_records"] == c["stored"] + c["duplicates"] + c["quarantined"]
    assert c["pending_records"] == 0
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        cur = await conn.execute("SELECT service, reason, detail FROM quarantine")
        rows = await cur.fetchall()
        cur = await conn.execute("SELECT count(*) FROM station_state WHERE since > now()")
        pinned = await cur.fetchone()
        cur = await conn.execute(
            "SELECT sum(readings * copies) FROM quarantine WHERE service = 'ingest'"
        )
        kept = await cur.fetchone()
    assert kept == (c["quarantined"],)  # every refused record has its row (within the rate)
    reasons = {(str(s), str(r)) for s, r, _ in rows}
    for expected in (
        "time_out_of_range",
        "relative_time",
        "station_mismatch",
        "future_time",
        "domain_mismatch",
        "malformed_json",
        "schema",
    ):
        assert ("ingest", expected) in reasons, (expected, sorted(reasons))  # fmt: skip
    # the database refused the deleted station's status: isolated, quarantined, acknowledged
    assert ("ingest", "storage_refused") in reasons
    # the value the engine raised on: quarantined by processing, with the exception's class
    found = [d for s, r, d in rows if (s, r) == ("processing", "internal_error")]
    assert len(found) == 1, (processing.stats(), sorted(reasons))
    (detail,) = found
    assert "FloatingPointError" in str(detail)
    assert pinned == (0,)  # no status holds a station's state beyond now
