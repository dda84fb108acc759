"""Ops API under load: WebSocket alert fan-out and REST latency, with same-run baselines.

Run: ``.venv/bin/python benchmarks/bench_api.py [--clients 100,1000] [--seconds 10]
[--deliveries 4000] [--readers 200]``

Everything is private to the run: a PostgreSQL in a temporary directory, filled with two
hours of the simulated city (:mod:`hanoi_ioc.simfill`: readings, alerts, indices), and the
API started as ``python -m ops_api`` (production-like settings: ``ENV=test``, tokens, h11,
the request limits) so its CPU can be read from ``/proc``. Phases:

1. **WebSocket fan-out** for each client count: that many clients (one asyncio process,
   ``websockets``) authenticate with a header, subscribe to ``alerts`` and answer pings;
   a thread inserts ``--deliveries / clients`` alert events per second for ``--seconds``
   (the same offered deliveries/s at every client count), each carrying its
   insertion time, so latency = receive time − insert time (commit, NOTIFY, the API's read,
   encoding, fan-out and the client's parse). The run ends when every delivery is in (or
   nothing more comes for 3 s). Reported: delivered messages/s (deliveries / first insert
   → last delivery), p50/p99 latency, lost deliveries, and the API process's CPU (cores).
   *Baseline*: the same clients on a bare ``websockets`` broadcast server (another process)
   sending the same message at the same rate: what the machine and the library do with no
   database, no authentication and no per-client queues.
2. **REST under concurrent readers**: ``--readers`` concurrent clients (httpx, keep-alive)
   loop over ``/api/stations``, ``/api/alerts`` and ``/api/latest`` for ``--seconds``.
   Reported: requests/s, p50/p99, and the statuses seen (503 ``overloaded`` would show up
   here). *Baseline*: the same readers on a bare Starlette app on the same uvicorn settings
   answering a static body of the same size as ``/api/stations``.

Ratios are ours / baseline, from the same run, so they travel between machines better than
the absolute figures (which depend on the machine and on what else runs on it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg
import websockets

from db import upgrade
from hanoi_ioc.bench import procstat
from hanoi_ioc.embedded import EmbeddedPostgres, free_port
from hanoi_ioc.simfill import fill_with_simulation

TOKEN = "bench-viewer-token-0000000000000001"  # noqa: S105 - a private, throwaway API


def cpu_s(pid: int) -> float:
    """CPU seconds of the server process (0 once it has gone)."""
    return procstat.cpu_s(pid) or 0.0


def pct(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@dataclass
class FanOut:
    clients: int
    delivered: int = 0
    expected: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    wall_s: float = 0.0
    server_cpu_cores: float = 0.0
    last_at: float = 0.0

    @property
    def rate(self) -> float:
        return self.delivered / self.wall_s if self.wall_s else 0.0

    def line(self, name: str) -> str:
        return (
            f"{name:<9} clients={self.clients:<5} delivered={self.delivered:>8} "
            f"({self.rate:>9.0f} msg/s) lost={self.expected - self.delivered:<6} "
            f"p50={pct(self.latencies_ms, 0.5):7.1f} ms p99={pct(self.latencies_ms, 0.99):7.1f} ms "
            f"server CPU={self.server_cpu_cores:4.2f} cores"
        )


# --- WebSocket clients ------------------------------------------------------------------------


async def ws_client(url: str, headers: dict[str, str], run: FanOut, ready: asyncio.Event,
                    counter: list[int], stop: asyncio.Event) -> None:  # fmt: skip
    async with websockets.connect(url, additional_headers=headers, max_size=2**22) as ws:
        await ws.send(json.dumps({"type": "subscribe", "channel": "alerts"}))
        counter[0] += 1
        if counter[0] == run.clients:
            ready.set()
        while not stop.is_set():
            try:
                raw = await asyncio.wait_for(ws.recv(), timeout=0.5)
            except TimeoutError:
                continue
            now = time.time()
            message = json.loads(raw)
            kind = message.get("type")
            if kind == "ping":
                await ws.send(json.dumps({"type": "pong", "id": message["id"]}))
            elif kind == "alert_event":
                note = message["event"]["note"] or ""
                if note.startswith("bench:"):
                    run.delivered += 1
                    run.last_at = now
                    run.latencies_ms.append((now - float(note[6:])) * 1000)
            elif kind == "bench":
                run.delivered += 1
                run.last_at = now
                run.latencies_ms.append((now - float(message["sent"])) * 1000)


async def connect_all(url: str, headers: dict[str, str], run: FanOut
                      ) -> tuple[list[asyncio.Task[None]], asyncio.Event]:  # fmt: skip
    ready, stop, counter = asyncio.Event(), asyncio.Event(), [0]
    tasks = []
    for i in range(run.clients):
        tasks.append(asyncio.create_task(ws_client(url, headers, run, ready, counter, stop)))
        if i % 50 == 49:
            await asyncio.sleep(0.05)  # do not stampede the accept queue
    await asyncio.wait_for(ready.wait(), timeout=120)
    await asyncio.sleep(1.0)  # subscriptions confirmed
    return tasks, stop


async def drain(run: FanOut, started_at: float, patience_s: float = 3.0) -> None:
    """Wait until every message is in (nothing new for ``patience_s``, at most a minute)."""
    deadline, seen = time.time() + 60, -1
    while run.delivered != seen and run.delivered < run.expected and time.time() < deadline:
        seen = run.delivered
        await asyncio.sleep(patience_s)
    run.wall_s = max(run.last_at - started_at, 1e-9)


def insert_events(db_url: str, alert_id: int, seconds: float, rate: float) -> int:
    """Insert paced alert events from a thread of its own (the clients' loop cannot slow it)."""
    sent = 0
    with psycopg.connect(db_url, autocommit=True) as conn:
        started = time.monotonic()
        while time.monotonic() - started < seconds:
            conn.execute(
                "INSERT INTO alert_events (alert_id, action, actor, note) "
                "VALUES (%s, 'commented', 'bench', %s)",
                (alert_id, f"bench:{time.time():.6f}"),
            )
            sent += 1
            time.sleep(max(0.0, started + sent / rate - time.monotonic()))
    return sent


async def fan_out_ours(api: str, db_url: str, pid: int, clients: int, seconds: float,
                       rate: float) -> FanOut:  # fmt: skip
    run = FanOut(clients)
    ws_url = api.replace("http://", "ws://") + "/ws"
    tasks, stop = await connect_all(ws_url, {"Authorization": f"Bearer {TOKEN}"}, run)
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        cur = await conn.execute("SELECT min(alert_id) FROM alerts")
        row = await cur.fetchone()
    alert_id = int(row[0]) if row and row[0] is not None else 1
    started_at, cpu0 = time.time(), cpu_s(pid)
    sent = await asyncio.to_thread(insert_events, db_url, alert_id, seconds, rate)
    run.expected = sent * clients
    await drain(run, started_at)
    run.server_cpu_cores = (cpu_s(pid) - cpu0) / max(time.time() - started_at, 1e-9)
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    return run


BASELINE_WS = r"""
import asyncio, json, sys, time
import websockets
from websockets.asyncio.server import broadcast, serve
clients = set()
async def handler(ws):
    clients.add(ws)
    try:
        async for raw in ws:
            pass
    finally:
        clients.discard(ws)
async def main(port, template):
    loop = asyncio.get_running_loop()
    async with serve(handler, "127.0.0.1", port, max_size=2**20):
        while line := await loop.run_in_executor(None, sys.stdin.readline):
            text = template.replace("SENT", repr(time.time()))
            broadcast(clients, text)
asyncio.run(main(int(sys.argv[1]), sys.argv[2]))
"""


def tick(proc: subprocess.Popen[bytes], seconds: float, rate: float) -> int:
    """Ask the baseline server for paced broadcasts, from a thread of its own."""
    if proc.stdin is None:
        raise RuntimeError
    sent, started = 0, time.monotonic()
    while time.monotonic() - started < seconds:
        proc.stdin.write(b"tick\n")
        proc.stdin.flush()
        sent += 1
        time.sleep(max(0.0, started + sent / rate - time.monotonic()))
    return sent


async def fan_out_baseline(clients: int, seconds: float, rate: float, size: int) -> FanOut:
    port = free_port()
    template = json.dumps({"type": "bench", "sent": "SENT", "pad": "x" * max(0, size - 40)})
    template = template.replace('"SENT"', "SENT")
    proc = subprocess.Popen(  # noqa: ASYNC220 - a server for the phase's length
        [sys.executable, "-c", BASELINE_WS, str(port), template], stdin=subprocess.PIPE
    )
    try:
        await asyncio.sleep(1.0)
        run = FanOut(clients)
        tasks, stop = await connect_all(f"ws://127.0.0.1:{port}", {}, run)
        started_at, cpu0 = time.time(), cpu_s(proc.pid)
        sent = await asyncio.to_thread(tick, proc, seconds, rate)
        run.expected = sent * clients
        await drain(run, started_at)
        run.server_cpu_cores = (cpu_s(proc.pid) - cpu0) / max(time.time() - started_at, 1e-9)
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
    return run


# --- REST readers -----------------------------------------------------------------------------


@dataclass
class Rest:
    latencies_ms: list[float] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    wall_s: float = 0.0
    server_cpu_cores: float = 0.0

    def line(self, name: str) -> str:
        n = len(self.latencies_ms)
        return (
            f"{name:<9} requests={n:<7} ({n / self.wall_s:7.0f}/s) "
            f"p50={pct(self.latencies_ms, 0.5):7.1f} ms p99={pct(self.latencies_ms, 0.99):7.1f} ms "
            f"statuses={dict(self.statuses)} server CPU={self.server_cpu_cores:4.2f} cores"
        )


async def readers(base: str, paths: Sequence[str], n: int, seconds: float, pid: int) -> Rest:
    result = Rest()
    limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30, headers=headers) as c:
        stop_at = time.monotonic() + seconds

        async def reader(i: int) -> None:
            k = i
            while time.monotonic() < stop_at:
                t0 = time.perf_counter()
                try:
                    reply = await c.get(paths[k % len(paths)])
                except httpx.HTTPError as exc:  # e.g. a keep-alive closed as it was reused
                    result.statuses[type(exc).__name__] += 1
                    continue
                result.latencies_ms.append((time.perf_counter() - t0) * 1000)
                result.statuses[str(reply.status_code)] += 1
                k += 1

        cpu0, t = cpu_s(pid), time.monotonic()
        await asyncio.gather(*(reader(i) for i in range(n)))
        result.wall_s = time.monotonic() - t
        result.server_cpu_cores = (cpu_s(pid) - cpu0) / result.wall_s
    return result


BASELINE_REST = r"""
import sys, uvicorn
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route
body = b"x" * int(sys.argv[2])
async def page(request):
    return Response(body, media_type="application/json")
app = Starlette(routes=[Route("/{path:path}", page)])
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), http="h11", log_level="warning")
"""


# --- the run ----------------------------------------------------------------------------------


def start_api(db_url: str, port: int, max_clients: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "ENV": "test",
        "DATABASE_URL": db_url,
        "API_PORT": str(port),
        "API_TOKENS": json.dumps({TOKEN: {"role": "viewer", "name": "bench"}}),
        "API_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        "API_WS_MAX_CLIENTS": str(max_clients + 10),
        "API_WS_MAX_CLIENTS_PER_TOKEN": str(max_clients + 10),
        "API_WS_MAX_PENDING": str(max_clients + 10),
        "API_MAX_CONNECTIONS": str(max_clients + 500),
        # the benchmark's own clients share the machine: do not drop them for being slow
        "API_WS_PONG_TIMEOUT_S": "120",
    }
    return subprocess.Popen([sys.executable, "-m", "ops_api", "--log-level", "warning"], env=env)


def wait_up(url: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    msg = f"nothing answers at {url}"
    raise SystemExit(msg)


async def main(args: argparse.Namespace) -> None:
    counts = [int(c) for c in args.clients.split(",")]
    with (
        tempfile.TemporaryDirectory(prefix="bench-api-") as tmp,
        EmbeddedPostgres(Path(tmp) / "pg", database="hanoi", durable=False) as pg,
    ):
        await upgrade(pg.url)
        data = await fill_with_simulation(pg.url, hours=2.0)
        print(f"database: {data}")
        port = free_port()
        api = f"http://127.0.0.1:{port}"
        proc = start_api(pg.url, port, max(counts))
        try:
            wait_up(api)
            async with httpx.AsyncClient(headers={"Authorization": f"Bearer {TOKEN}"}) as c:
                size = len((await c.get(f"{api}/api/stations")).content)
            sample = await fan_out_baseline(1, 1.0, 1.0, 900)  # warm-up of the client side
            del sample
            print(f"\n== WebSocket alert fan-out for {args.seconds:g} s ==")
            for n in counts if "ws" in args.phases else []:
                rate = args.deliveries / n  # the same offered deliveries/s at every count
                print(f"-- {n} clients, {rate:g} events/s = {args.deliveries:g} deliveries/s")
                base = await fan_out_baseline(n, args.seconds, rate, 1400)
                ours = await fan_out_ours(api, pg.url, proc.pid, n, args.seconds, rate)
                print(base.line("baseline"))
                print(ours.line("ops API"))
                print(
                    f"ratio     delivered/s {ours.rate / base.rate:5.2f}   "
                    f"p50 {pct(ours.latencies_ms, 0.5) / pct(base.latencies_ms, 0.5):5.2f}x   "
                    f"p99 {pct(ours.latencies_ms, 0.99) / pct(base.latencies_ms, 0.99):5.2f}x"
                )
            if "rest" not in args.phases:
                return
            print(f"\n== REST, {args.readers} concurrent readers for {args.seconds:g} s ==")
            bport = free_port()
            bproc = subprocess.Popen(  # noqa: ASYNC220 - a server for the run's length
                [sys.executable, "-c", BASELINE_REST, str(bport), str(size)]
            )
            try:
                wait_up(f"http://127.0.0.1:{bport}")
                base_rest = await readers(f"http://127.0.0.1:{bport}", ["/health"],
                                          args.readers, args.seconds, bproc.pid)  # fmt: skip
            finally:
                bproc.terminate()
                bproc.wait()
            paths = ["/api/stations", "/api/alerts", "/api/latest"]
            ours_rest = await readers(api, paths, args.readers, args.seconds, proc.pid)
            print(base_rest.line("baseline"))
            print(ours_rest.line("ops API"))
            p99 = pct(ours_rest.latencies_ms, 0.99) / pct(base_rest.latencies_ms, 0.99)
            ours_rps = len(ours_rest.latencies_ms) / ours_rest.wall_s
            base_rps = len(base_rest.latencies_ms) / base_rest.wall_s
            print(f"ratio     p99 {p99:5.2f}x   requests/s {ours_rps / base_rps:5.2f}")
            print(f"(/api/stations body: {size} bytes)")
        finally:
            proc.terminate()
            proc.wait(30)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", default="100,1000")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument(
        "--deliveries", type=float, default=4000.0,
        help="offered deliveries per second (events/s x clients)",
    )  # fmt: skip
    parser.add_argument("--readers", type=int, default=200)
    parser.add_argument("--phases", default="ws,rest", help="ws, rest or both")
    asyncio.run(main(parser.parse_args()))
