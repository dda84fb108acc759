"""WebSocket fan-out: one alert event delivered to many operators' clients.

``clients`` WebSocket clients (one asyncio process, the ``websockets`` library) authenticate
with the bench's viewer token, subscribe to ``alerts`` and answer the server's pings. Then
``events`` alert events are committed one a second (a comment on an existing alert, carrying
its commit-request time); each client notes when it receives each. Per event, the time until
*every* client had it is the fan-out time; the percentiles are over every delivery. Lost =
deliveries expected − received (after a bounded wait).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass, field
from typing import Any

import psycopg
import websockets

from hanoi_ioc.bench.probes import percentiles

__all__ = ["fan_out"]

_NOTE = "bench-fanout:"


@dataclass
class _Deliveries:
    clients: int
    subscribed: int = 0
    sent_at: dict[str, float] = field(default_factory=dict)
    received: dict[str, list[float]] = field(default_factory=dict)
    all_subscribed: asyncio.Event = field(default_factory=asyncio.Event)
    expected: int = 0
    count: int = 0
    complete: asyncio.Event = field(default_factory=asyncio.Event)

    def note(self, key: str, at: float) -> None:
        self.received.setdefault(key, []).append(at)
        self.count += 1
        if self.count >= self.expected:
            self.complete.set()


async def _client(url: str, token: str, run: _Deliveries, stop: asyncio.Event) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    async with websockets.connect(url, additional_headers=headers, max_size=2**22,
                                  open_timeout=60) as ws:  # fmt: skip
        await ws.send(json.dumps({"type": "subscribe", "channel": "alerts"}))
        while not stop.is_set():
            try:
                raw = await asyncio.wait_for(ws.recv(), timeout=0.5)
            except TimeoutError:
                continue
            now = time.time()
            message = json.loads(raw)
            kind = message.get("type")
            if kind == "ping":
                await ws.send(json.dumps({"type": "pong", "id": message.get("id")}))
            elif kind == "subscribed":
                run.subscribed += 1
                if run.subscribed >= run.clients:
                    run.all_subscribed.set()
            elif kind == "alert_event" and not message.get("replay"):
                note = str(message["event"].get("note") or "")
                if note.startswith(_NOTE):
                    run.note(note, now)


async def fan_out(ws_url: str, token: str, db_url: str, clients: int,
                  events: int) -> dict[str, Any]:  # fmt: skip
    """Connect ``clients``, deliver ``events`` alert events to all of them, and time it."""
    run, stop = _Deliveries(clients, expected=clients * events), asyncio.Event()
    tasks = []
    started = time.monotonic()
    for i in range(clients):
        tasks.append(asyncio.create_task(_client(ws_url, token, run, stop)))
        if i % 50 == 49:
            await asyncio.sleep(0.05)  # do not stampede the accept queue
    try:
        async with asyncio.timeout(120):
            await run.all_subscribed.wait()
        connect_s = round(time.monotonic() - started, 2)
        async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
            row = await (await conn.execute("SELECT min(alert_id) FROM alerts")).fetchone()
            if row is None or row[0] is None:
                return {"clients": clients, "error": "no alert to comment on"}
            for k in range(events):
                await asyncio.sleep(1.0)
                key = f"{_NOTE}{k}"
                run.sent_at[key] = time.time()
                await conn.execute(
                    "INSERT INTO alert_events (alert_id, action, actor, note) "
                    "VALUES (%s, 'commented', 'bench', %s)", (row[0], key),
                )  # fmt: skip
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(30):
                await run.complete.wait()
    finally:
        stop.set()
        for task in tasks:
            with contextlib.suppress(Exception):
                await task
    latencies = [(at - run.sent_at[key]) * 1000 for key, ats in run.received.items() for at in ats]
    to_all = [(max(ats) - run.sent_at[key]) * 1000 for key, ats in run.received.items()
              if len(ats) == clients]  # fmt: skip
    received = sum(map(len, run.received.values()))
    return {
        "clients": clients, "events": events, "delivered": received,
        "lost": clients * events - received, "connect_s": connect_s,
        "delivery_ms": percentiles(latencies), "to_all_clients_ms": percentiles(to_all),
    }  # fmt: skip
