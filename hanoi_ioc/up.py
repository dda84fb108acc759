"""``hanoi-ioc up``: the whole system on one machine, with embedded defaults.

Uses ``DATABASE_URL`` / ``MQTT_URL`` when set; otherwise starts a project-managed PostgreSQL
(``.hanoi/pg``) and Mosquitto (``.hanoi/mqtt``). Then it migrates the schema (with the
``STORAGE_STRATEGY`` asked for, if any), registers the simulated Hanoi fleet, and runs every
service as its own process — ingest, processing, the ops API and the simulator — with logs
under ``.hanoi/logs``. Ctrl-C stops everything in order: the simulator first, then the
services (each flushes, commits and acks), then the embedded servers.

The embedded broker authenticates as production does (docs/security.md): ``up`` issues, in
its credential store (``.hanoi/credentials``, or ``HANOI_CREDENTIALS_DIR``), a user for each
service, one for each station of the fleet and one for the simulator's truth channel, and
hands every process the file holding its own password. With an external ``MQTT_URL`` the
credentials are the operator's business, unless ``HANOI_CREDENTIALS_DIR`` names that
broker's store: then ``up`` issues its users there too and signals the broker to reload.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, TextIO

import psycopg

from contract import DEFAULT_ROOT
from db import StrategyName, register_stations, upgrade
from hanoi_ioc.credentials import CredentialStore
from hanoi_ioc.embedded import EmbeddedBroker, EmbeddedPostgres, free_port, wait_for_port

__all__ = ["UpOptions", "run_up"]

logger = logging.getLogger(__name__)

_DEFAULT_PG_PORT: Final = 55432
_DEFAULT_MQTT_PORT: Final = 18830


@dataclass(frozen=True, slots=True)
class UpOptions:
    """Options of ``hanoi-ioc up``."""

    home: Path = Path(".hanoi")
    api_port: int = 8000
    scenario: str = "demo"
    speed: str = "60"
    seed: int = 7
    ready_timeout_s: float | None = None  # exit after proving readiness (smoke test / CI)
    extra_env: dict[str, str] = field(default_factory=dict)


def _port_or_free(port: int) -> int:
    import socket

    with socket.socket() as sock:
        return port if sock.connect_ex(("127.0.0.1", port)) != 0 else free_port()


def _say(out: TextIO, text: str) -> None:
    out.write(text + "\n")
    out.flush()


async def _register_fleet(database_url: str) -> int:
    from simulators.fleet import hanoi_fleet

    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        return await register_stations(conn, hanoi_fleet())


def _issue_users(store: CredentialStore) -> dict[str, str]:
    """Users for the services, the fleet and the truth channel; the children's environment."""
    from simulators.fleet import hanoi_fleet

    ingest = store.issue_service("ingest", os.environ.get("INGEST_INSTANCE", "0"))
    store.sync_registry(hanoi_fleet(), keep_secrets=True, revoke=False)
    store.issue_operational("simulator")
    return {
        "INGEST_MQTT_PASSWORD_FILE": str(store.secret_file(ingest)),
        "SIM_CREDENTIALS_DIR": str(store.secrets_dir),
    }


def _spawn(name: str, args: list[str], env: dict[str, str], logs: Path) -> subprocess.Popen[bytes]:
    log = (logs / f"{name}.log").open("ab")
    with log:
        return subprocess.Popen(
            [sys.executable, "-m", *args], env=env, stdout=log, stderr=subprocess.STDOUT
        )


def _get_json(url: str, token: str | None = None) -> object:
    request = urllib.request.Request(url)  # noqa: S310 - our own local API
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
        return json.loads(response.read())


async def _prove_ready(database_url: str, api: str, timeout_s: float, out: TextIO) -> bool:
    """Wait for readings in the database and an alert over REST and WebSocket."""
    import websockets

    started = time.monotonic()
    deadline = started + timeout_s
    readings = 0
    while time.monotonic() < deadline and readings == 0:
        async with await psycopg.AsyncConnection.connect(database_url) as conn:
            cur = await conn.execute("SELECT count(*) FROM readings")
            row = await cur.fetchone()
            readings = int(row[0]) if row else 0
        await asyncio.sleep(0.5)
    _say(out, f"  readings in the database: {readings} after {time.monotonic() - started:.1f} s")
    ws_url = api.replace("http://", "ws://") + "/ws"
    try:
        async with asyncio.timeout(max(1.0, deadline - time.monotonic())):
            async with websockets.connect(ws_url) as ws:
                await ws.send(json.dumps({"type": "subscribe", "channel": "alerts",
                                          "resume_from": 0}))  # fmt: skip
                while True:
                    message = json.loads(await ws.recv())
                    if message.get("type") == "ping":  # the API drops clients that never answer
                        await ws.send(json.dumps({"type": "pong", "id": message.get("id")}))
                    if message.get("type") == "alert_event":
                        break
    except (TimeoutError, OSError) as exc:
        _say(out, f"  no alert over WebSocket within {timeout_s:.0f} s: {exc!r}")
        return False
    _say(out, f"  alert over WebSocket after {time.monotonic() - started:.1f} s")
    listing = _get_json(f"{api}/api/alerts")
    alerts = listing.get("alerts", []) if isinstance(listing, dict) else []
    count = len(alerts) if isinstance(alerts, list) else 0
    _say(out, f"  alerts listed by REST: {count}")
    return readings > 0 and count > 0


async def run_up(options: UpOptions, out: TextIO = sys.stdout) -> int:
    """Start everything, print where to look, and run until interrupted."""
    home = options.home.resolve()
    logs = home / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        database_url = os.environ.get("DATABASE_URL")
        if not database_url:
            pg = EmbeddedPostgres(home / "pg", port=_port_or_free(_DEFAULT_PG_PORT))
            stack.enter_context(pg)
            database_url = pg.url
            _say(out, f"PostgreSQL: embedded ({pg.kind}) at {database_url}")
        else:
            _say(out, "PostgreSQL: DATABASE_URL from the environment")
        mqtt_url = os.environ.get("MQTT_URL")
        protocol = os.environ.get("MQTT_PROTOCOL", "5")
        store_dir = os.environ.get("HANOI_CREDENTIALS_DIR")
        logins: dict[str, str] = {}
        if not mqtt_url:
            root = os.environ.get("TOPIC_ROOT", DEFAULT_ROOT)
            store = CredentialStore(Path(store_dir) if store_dir else home / "credentials",
                                    root=root)  # fmt: skip
            logins = _issue_users(store)
            broker = EmbeddedBroker(home / "mqtt", port=_port_or_free(_DEFAULT_MQTT_PORT),
                                    credentials=store)  # fmt: skip
            stack.enter_context(broker)
            mqtt_url, protocol = broker.url, broker.protocol
            _say(out, f"MQTT broker: embedded {broker.kind} at {mqtt_url}")
            _say(out, f"Broker users (passwords, 0600): {store.secrets_dir}")
        else:
            _say(out, "MQTT broker: MQTT_URL from the environment")
            if store_dir:
                store = CredentialStore(Path(store_dir))
                logins = _issue_users(store)
                if store.reload_broker():
                    await asyncio.sleep(1.0)
                _say(out, f"Broker users issued in {store.path}")
        forced = _forced_strategy(os.environ.get("STORAGE_STRATEGY", "auto"))
        strategy, applied = await upgrade(database_url, forced)
        _say(out, f"Storage: {strategy} (migrations applied now: {applied or 'none'})")
        _say(out, f"Registry: {await _register_fleet(database_url)} stations of the Hanoi fleet")
        env = {
            **os.environ, "DATABASE_URL": database_url, "MQTT_URL": mqtt_url,
            "MQTT_PROTOCOL": protocol, "API_PORT": str(options.api_port), "ENV": "dev",
            "PYTHONUNBUFFERED": "1", **logins, **options.extra_env,
        }  # fmt: skip
        children = {
            "ingest": _spawn("ingest", ["ingest"], env, logs),
            "processing": _spawn("processing", ["processing"], env, logs),
            "webhooks": _spawn("webhooks", ["webhooks"], env, logs),
            "api": _spawn("api", ["ops_api"], env, logs),
        }
        try:
            wait_for_port(options.api_port, 60, children["api"])
            children["simulator"] = _spawn(
                "simulator",
                ["simulators", "--scenario", options.scenario, "--speed", options.speed,
                 "--seed", str(options.seed), "--mqtt-url", mqtt_url],
                env, logs,
            )  # fmt: skip
            api = f"http://127.0.0.1:{options.api_port}"
            _say(out, "")
            _say(out, "Hanoi IOC is running / Hệ thống đang chạy:")
            _say(out, f"  Operations console / Bảng điều hành:  {api}/")
            _say(out, f"  REST API (OpenAPI docs):              {api}/docs")
            _say(out, f"  Live feed (WebSocket):                {api.replace('http', 'ws')}/ws")
            _say(out, f"  Health / metrics:                     {api}/health  {api}/metrics")
            _say(out, f"  Database (psql, Grafana):             {database_url}")
            _say(out, f"  MQTT broker (simulators, devices):    {mqtt_url}")
            _say(out, f"  Logs:                                 {logs}/*.log")
            _say(out, f"  Simulation: scenario '{options.scenario}' at speed {options.speed}")
            _say(out, "Press Ctrl-C to stop / Nhấn Ctrl-C để dừng.")
            if options.ready_timeout_s is not None:
                ok = await _prove_ready(database_url, api, options.ready_timeout_s, out)
                return 0 if ok else 1
            return await _supervise(children, out)
        finally:
            _stop(children, out)


def _forced_strategy(value: str) -> StrategyName | None:
    """``STORAGE_STRATEGY``: auto (the database's own, else the probe's), timescale or plain.

    Raises:
        ValueError: for anything else.
    """
    if value == "auto":
        return None
    if value in ("timescale", "plain"):
        return "timescale" if value == "timescale" else "plain"
    msg = f"STORAGE_STRATEGY={value!r}: expected auto, timescale or plain"
    raise ValueError(msg)


async def _supervise(children: dict[str, subprocess.Popen[bytes]], out: TextIO) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    while not stop.is_set():
        for name, proc in children.items():
            if proc.poll() is not None and name != "simulator":
                _say(out, f"{name} exited with code {proc.returncode}; see its log")
                return 1
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(1.0):
                await stop.wait()
    return 0


def _stop(children: dict[str, subprocess.Popen[bytes]], out: TextIO) -> None:
    order = ["simulator", "processing", "webhooks", "ingest", "api"]
    for name in order:
        proc = children.get(name)
        if proc is None or proc.poll() is not None:
            continue
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    _say(out, "Stopped / Đã dừng.")
