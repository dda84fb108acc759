"""Latency probes: publish → commit, publish → decision, publish → alert on a WebSocket.

Every reading's measurement time is its publish time (load mode and the probe stamp it as
they publish), so each latency is a time taken against the reading's own time:

- :class:`FeedWatch` polls the reading feed (every ``interval_s``): each batch ingest
  committed, with its commit time (``pg_xact_commit_timestamp``: the readings and the feed
  row are one transaction) and its readings' times; and processing's position with the
  commit time of the transaction that advanced it. publish → commit = the batch's commit
  time − the reading's time; publish → decision = the commit time of the first position at
  or past the batch − the reading's time (an upper bound by at most one poll when
  processing commits several steps between two polls).
- :class:`AlertProbe` publishes, for a fresh probe station each time (cooldown), three
  PM2.5 readings above the alert threshold 50 ms apart (threshold rules want two in a row),
  and a WebSocket client of the API times the ``raised`` event: latency = receipt − the
  alert's ``observed_at`` (the time, hence the publish time, of the reading that raised it).
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import json
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import paho.mqtt.client as mqtt
import psycopg
import websockets
from paho.mqtt.enums import CallbackAPIVersion

from contract import DEFAULT_ROOT, Quantity, encode_telemetry

__all__ = ["AlertProbe", "FeedWatch", "cancel", "percentiles"]

logger = logging.getLogger(__name__)

Floats = npt.NDArray[np.float64]
_FEED: Final = """
SELECT seq, extract(epoch FROM coalesce(pg_xact_commit_timestamp(xmin), committed_at))::float8,
       times, sensor_keys
FROM reading_feed WHERE seq > %s ORDER BY seq LIMIT 2000"""
_POSITION: Final = """
SELECT seq, extract(epoch FROM coalesce(pg_xact_commit_timestamp(xmin), updated_at))::float8
FROM feed_positions WHERE consumer = %s"""
_ALERT_VALUE: Final = 200.0
"""µg/m³ of PM2.5: past the ``pm25_high`` rule's first level (150)."""


def percentiles(values_ms: Floats | list[float]) -> dict[str, float | int]:
    """n, p50, p95, p99 and max of latencies in ms (empty: n = 0 only)."""
    data = np.asarray(values_ms, dtype=np.float64)
    if data.size == 0:
        return {"n": 0}
    p50, p95, p99 = np.percentile(data, [50, 95, 99])
    return {"n": int(data.size), "p50": round(float(p50), 1), "p95": round(float(p95), 1),
            "p99": round(float(p99), 1), "max": round(float(data.max()), 1)}  # fmt: skip


@dataclass
class _Batch:
    seq: int
    committed: float
    times: Floats
    keys: npt.NDArray[np.int32]


@dataclass
class FeedWatch:
    """What ingest committed and what processing decided, polled from the database."""

    url: str
    consumer: str
    interval_s: float = 0.05
    batches: list[_Batch] = field(default_factory=list)
    position_seqs: list[int] = field(default_factory=list)
    position_times: list[float] = field(default_factory=list)
    gaps: int = 0
    """Feed numbers never seen (pruned before a poll read them)."""
    probe_keys: npt.NDArray[np.int32] = field(default_factory=lambda: np.empty(0, np.int32))
    """Storage keys of the probe stations' sensors (their readings are also timed apart)."""

    async def run(self) -> None:
        """Poll until cancelled."""
        async with await psycopg.AsyncConnection.connect(self.url, autocommit=True) as conn:
            while True:
                await self.poll(conn)
                await asyncio.sleep(self.interval_s)

    async def poll(self, conn: psycopg.AsyncConnection[tuple[Any, ...]]) -> None:
        """Read new feed batches and processing's position once."""
        last = self.batches[-1].seq if self.batches else 0
        rows = await (await conn.execute(_FEED, (last,))).fetchall()
        for seq, committed, times, keys in rows:
            seq_i = int(str(seq))
            if self.batches and seq_i != last + 1:
                self.gaps += seq_i - last - 1
            times_s = np.frombuffer(bytes(times), "<f8")
            keys_a = np.frombuffer(bytes(keys), "<i4")
            self.batches.append(_Batch(seq_i, float(committed), times_s, keys_a))
            last = seq_i
        row = await (await conn.execute(_POSITION, (self.consumer,))).fetchone()
        if row is not None:
            seq_i, at = int(str(row[0])), float(str(row[1]))
            if not self.position_seqs or seq_i > self.position_seqs[-1]:
                self.position_seqs.append(seq_i)
                self.position_times.append(at)

    @property
    def position(self) -> int:
        """Processing's committed feed position, as last seen."""
        return self.position_seqs[-1] if self.position_seqs else 0

    @property
    def head(self) -> int:
        """The newest feed number seen."""
        return self.batches[-1].seq if self.batches else 0

    def undecided(self) -> int:
        """Readings committed by ingest and not yet decided by processing (as last seen)."""
        position = self.position
        return sum(b.times.size for b in reversed(self.batches) if b.seq > position)

    def window(self, start: float, end: float) -> dict[str, object]:
        """Figures of the readings whose time (publish time) is in ``[start, end)``.

        ``last_commit_after_s`` / ``last_decision_after_s``: how long after the last
        reading's publish the last one was committed / decided (the backlog's drain).
        ``probe_…``: the same latencies for the probe stations' readings only (published by
        their own client, so no load generator's queue is in them).
        """
        commit: list[Floats] = []
        decision: list[Floats] = []
        probe_commit: list[Floats] = []
        probe_decision: list[Floats] = []
        undecided = 0
        first, last = float("inf"), 0.0
        last_commit = last_decision = 0.0
        for batch in self.batches:
            inside = (batch.times >= start) & (batch.times < end)
            times = batch.times[inside]
            if not times.size:
                continue
            probes = batch.times[inside & np.isin(batch.keys, self.probe_keys)]
            first, last = min(first, float(times.min())), max(last, float(times.max()))
            commit.append(batch.committed - times)
            probe_commit.append(batch.committed - probes)
            last_commit = max(last_commit, batch.committed)
            k = bisect.bisect_left(self.position_seqs, batch.seq)
            if k == len(self.position_seqs):
                undecided += int(times.size)
                continue
            decided = self.position_times[k]
            decision.append(decided - times)
            probe_decision.append(decided - probes)
            last_decision = max(last_decision, decided)
        commit_ms = np.concatenate(commit) * 1000 if commit else np.empty(0)
        decision_ms = np.concatenate(decision) * 1000 if decision else np.empty(0)
        stored, decided_n = int(commit_ms.size), int(decision_ms.size)
        return {
            "stored": stored, "decided": decided_n, "undecided": undecided,
            "publish_s": round(last - first, 2) if stored else 0.0,
            "last_commit_after_s": round(last_commit - last, 2) if stored else None,
            "last_decision_after_s": round(last_decision - last, 2) if decided_n else None,
            "publish_to_commit_ms": percentiles(commit_ms),
            "publish_to_decision_ms": percentiles(decision_ms),
            "probe_publish_to_commit_ms": percentiles(_ms(probe_commit)),
            "probe_publish_to_decision_ms": percentiles(_ms(probe_decision)),
        }  # fmt: skip


def _ms(parts: list[Floats]) -> Floats:
    return np.concatenate(parts) * 1000 if parts else np.empty(0)


@dataclass
class _Probe:
    station: str
    published: list[float]
    observed: float | None = None
    received: float | None = None


@dataclass
class AlertProbe:
    """Alerts raised on purpose, timed from the raising reading's publish to a WebSocket.

    Args:
        ws_url: the API's ``/ws``.
        token: a viewer token.
        mqtt_port: the broker.
        user: a broker user that may publish the probe stations' telemetry.
        password: its password.
        stations: the probe station ids, each used once.
    """

    ws_url: str
    token: str
    mqtt_port: int
    user: str
    password: str
    stations: list[str]
    probes: dict[str, _Probe] = field(default_factory=dict)
    subscribed: asyncio.Event = field(default_factory=asyncio.Event)
    _client: mqtt.Client | None = None

    def connect(self) -> None:
        """Connect the probe's publisher (paho's network thread)."""
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=self.user,
                             protocol=mqtt.MQTTv311)  # fmt: skip
        client.username_pw_set(self.user, self.password)
        client.connect("127.0.0.1", self.mqtt_port, keepalive=30)
        client.loop_start()
        deadline = time.monotonic() + 10
        while not client.is_connected():
            if time.monotonic() > deadline:
                msg = "the alert probe could not connect to the broker"
                raise RuntimeError(msg)
            time.sleep(0.02)
        self._client = client

    def close(self) -> None:
        """Disconnect the publisher."""
        if self._client is not None:
            self._client.disconnect()
            self._client.loop_stop()

    async def listen(self) -> None:
        """The WebSocket client: record each probe alert's ``raised`` event (until cancelled)."""
        headers = {"Authorization": f"Bearer {self.token}"}
        async with websockets.connect(self.ws_url, additional_headers=headers,
                                      max_size=2**22) as ws:  # fmt: skip
            await ws.send(json.dumps({"type": "subscribe", "channel": "alerts"}))
            async for raw in ws:
                received = time.time()
                message = json.loads(raw)
                kind = message.get("type")
                if kind == "ping":
                    await ws.send(json.dumps({"type": "pong", "id": message.get("id")}))
                elif kind == "subscribed":
                    self.subscribed.set()
                elif kind == "alert_event" and not message.get("replay"):
                    self._note(message, received)

    def _note(self, message: dict[str, object], received: float) -> None:
        event, alert = message.get("event"), message.get("alert")
        if not isinstance(event, dict) or not isinstance(alert, dict):
            return
        probe = self.probes.get(str(alert.get("station_id")))
        if probe is None or event.get("action") != "raised" or probe.received is not None:
            return
        observed = datetime.fromisoformat(str(alert["observed_at"]))
        probe.observed = observed.timestamp()
        probe.received = received

    async def fire(self) -> bool:
        """Raise one probe alert (three readings past the threshold); False when out of stations."""
        if self._client is None or len(self.probes) >= len(self.stations):
            return False
        station = self.stations[len(self.probes)]
        probe = _Probe(station, [])
        self.probes[station] = probe
        topic = f"{DEFAULT_ROOT}/air/{station}/telemetry"
        for seq in range(3):
            now = datetime.now(UTC)
            payload = encode_telemetry(station, now, [(Quantity.PM25, _ALERT_VALUE)], seq=seq)
            self._client.publish(topic, payload, qos=1)
            probe.published.append(now.timestamp())
            await asyncio.sleep(0.05)
        return True

    async def inject(self, seconds: float, per_s: float) -> None:
        """Fire probes at ``per_s`` for ``seconds``."""
        started = time.monotonic()
        fired = 0
        while time.monotonic() - started < seconds:
            due = started + fired / per_s
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            if not await self.fire():
                return
            fired += 1

    def window(self, start: float, end: float) -> dict[str, object]:
        """Publish → alert-on-WebSocket of the probes fired in ``[start, end)``."""
        fired = [p for p in self.probes.values() if start <= p.published[0] < end]
        seen = [p for p in fired if p.received is not None and p.observed is not None]
        latencies = [((p.received or 0.0) - (p.observed or 0.0)) * 1000 for p in seen]
        return {"fired": len(fired), "alerts_seen": len(seen),
                "publish_to_alert_ws_ms": percentiles(latencies)}  # fmt: skip

    def pending(self, start: float, end: float) -> int:
        """Probes fired in the window whose alert has not been seen yet."""
        return sum(1 for p in self.probes.values()
                   if start <= p.published[0] < end and p.received is None)  # fmt: skip


async def cancel(task: asyncio.Task[None]) -> None:
    """Cancel a task and wait for it."""
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task
