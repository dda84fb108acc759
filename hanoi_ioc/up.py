"""``hanoi-ioc up``: the whole system on one machine, with embedded defaults.

Uses ``DATABASE_URL`` / ``MQTT_URL`` when set; otherwise starts a project-managed PostgreSQL
(``.hanoi/pg``) and Mosquitto (``.hanoi/mqtt``). Then it migrates the schema (with the
``STORAGE_STRATEGY`` asked for, if any), registers the simulated Hanoi fleet, and runs every
service as its own process — ingest, processing, the ops API and the simulator — with logs
under ``.hanoi/logs``. The simulator keeps its place in ``.hanoi/simulator.json``: started
again, it goes on where it stopped instead of telling the scenario's story a second time
(a database without readings starts the story afresh).

Every child (service or embedded server) runs in a session of its own, so the SIGINT a
terminal sends its foreground process group on Ctrl-C reaches ``up`` alone, and ``up`` stops
everything in order: the simulator first, then the services (SIGTERM: each flushes, commits
and acks; killed after a timeout), then the embedded broker, last the embedded PostgreSQL.

Before starting, ``up`` makes sure the API's port is free, and once the API listens, that
``/health`` is answered by the API it started (its ``instance``): a port held by another
program is refused with a message saying how to choose another, never shown as "running".

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
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, TextIO

import psycopg

from contract import DEFAULT_ROOT
from db import StrategyName, register_stations, upgrade
from hanoi_ioc.credentials import CredentialStore
from hanoi_ioc.embedded import EmbeddedBroker, EmbeddedPostgres, free_port, wait_for_port
from ops_api.settings import DEV_TOKENS

__all__ = ["UpOptions", "foreign_answer", "port_is_free", "port_taken_text", "run_up"]

logger = logging.getLogger(__name__)

_DEFAULT_PG_PORT: Final = 55432
_DEFAULT_MQTT_PORT: Final = 18830
_STOP_ORDER: Final = ("simulator", "processing", "webhooks", "ingest", "api")
"""Which children stop first on Ctrl-C; any other child stops after these, the servers last."""
_STOP_TIMEOUT_S: Final = 20.0
_HEALTH_TIMEOUT_S: Final = 15.0
_ROLE_TEXT: Final = {
    "viewer": "xem / read",
    "operator": "xác nhận, đóng, ghi chú / acknowledge, clear, comment",
    "admin": "quản trị / administer",
}


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
    with socket.socket() as sock:
        return port if sock.connect_ex(("127.0.0.1", port)) != 0 else free_port()


def _env_port(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    return int(value) if value.strip() else default


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether ``host:port`` can be bound now (as uvicorn binds it, with SO_REUSEADDR)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def port_taken_text(port: int, why: str) -> str:
    """The bilingual refusal: the port, that nothing runs, and how to choose another port."""
    other = 8080 if port != 8080 else 8081
    return (
        f"Cổng {port} đã có chương trình khác dùng ({why}); Hanoi IOC KHÔNG chạy.\n"
        f"  Chọn cổng khác: hanoi-ioc up --api-port {other}  (hoặc API_PORT={other} make up)\n"
        f"Port {port} belongs to another program ({why}); Hanoi IOC is NOT running.\n"
        f"  Choose another port: hanoi-ioc up --api-port {other}  (or API_PORT={other} make up)"
    )


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


async def _resume_file(database_url: str, home: Path) -> Path:
    """The simulator's resume file; removed when the database holds no reading yet."""
    path = home / "simulator.json"
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        cur = await conn.execute("SELECT EXISTS (SELECT 1 FROM readings)")
        row = await cur.fetchone()
    if not (row and row[0]):
        path.unlink(missing_ok=True)
    return path


def _spawn(name: str, args: list[str], env: dict[str, str], logs: Path) -> subprocess.Popen[bytes]:
    log = (logs / f"{name}.log").open("ab")
    with log:
        # A session of its own: a terminal's Ctrl-C reaches `up` only, which stops it in order.
        return subprocess.Popen(
            [sys.executable, "-m", *args], env=env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip


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
    """Start everything, print where to look, and run until interrupted.

    Returns:
        0 after a clean stop (or a passed readiness check), 1 when a service failed, 2 when
        the API's port belongs to another program.
    """
    if not port_is_free(options.api_port):
        _say(out, port_taken_text(options.api_port, "đang lắng nghe / listening"))
        return 2
    home = options.home.resolve()
    logs = home / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        stack.callback(_say, out, "Stopped / Đã dừng.")
        database_url = os.environ.get("DATABASE_URL")
        pg_port = broker_port = None
        if not database_url:
            pg_port = _port_or_free(_env_port("HANOI_PG_PORT", _DEFAULT_PG_PORT))
            pg = EmbeddedPostgres(home / "pg", port=pg_port)
            stack.callback(_say, out, "  stopped PostgreSQL / đã dừng PostgreSQL")
            stack.enter_context(pg)
            database_url, pg_port = pg.url, pg.port
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
            broker_port = _port_or_free(_env_port("HANOI_MQTT_PORT", _DEFAULT_MQTT_PORT))
            broker = EmbeddedBroker(home / "mqtt", port=broker_port, credentials=store)
            stack.callback(_say, out, "  stopped the MQTT broker / đã dừng MQTT broker")
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
        instance = f"up-{secrets.token_hex(6)}"
        env = {
            **os.environ, "DATABASE_URL": database_url, "MQTT_URL": mqtt_url,
            "MQTT_PROTOCOL": protocol, "API_PORT": str(options.api_port), "ENV": "dev",
            "API_INSTANCE": instance, "PYTHONUNBUFFERED": "1", **logins, **options.extra_env,
        }  # fmt: skip
        children = {
            "ingest": _spawn("ingest", ["ingest"], env, logs),
            "processing": _spawn("processing", ["processing"], env, logs),
            "webhooks": _spawn("webhooks", ["webhooks"], env, logs),
            "api": _spawn("api", ["ops_api"], env, logs),
        }
        try:
            api = f"http://127.0.0.1:{options.api_port}"
            wait_for_port(options.api_port, 60, children["api"])
            why = foreign_answer(api, instance, children["api"])
            if why is not None:
                _say(out, port_taken_text(options.api_port, why))
                return 2
            resume = await _resume_file(database_url, home)
            children["simulator"] = _spawn(
                "simulator",
                ["simulators", "--scenario", options.scenario, "--speed", options.speed,
                 "--seed", str(options.seed), "--mqtt-url", mqtt_url,
                 "--resume-file", str(resume)],
                env, logs,
            )  # fmt: skip
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
            _print_tokens(out, api, database_url, dev=not os.environ.get("API_TOKENS"))
            _print_ports(out, options.api_port, pg_port, broker_port)
            _say(out, "Press Ctrl-C to stop / Nhấn Ctrl-C để dừng.")
            if options.ready_timeout_s is not None:
                ok = await _prove_ready(database_url, api, options.ready_timeout_s, out)
                return 0 if ok else 1
            return await _supervise(children, out)
        finally:
            _stop(children, out)


def foreign_answer(
    api: str, instance: str, proc: subprocess.Popen[bytes], *, timeout_s: float = _HEALTH_TIMEOUT_S
) -> str | None:
    """Why ``api`` is not answered by the API we started as ``proc`` (None: it is ours).

    Ours answers ``/health`` with ``system: hanoi-ioc`` and the ``instance`` we gave it.
    """
    deadline = time.monotonic() + timeout_s
    why = "không trả lời /health / no answer to /health"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return f"API của chúng ta đã thoát / our API exited with code {proc.returncode}"
        try:
            body = _get_json(f"{api}/health")
        except urllib.error.HTTPError as exc:  # 503 (database down) still says who answers
            try:
                body = json.loads(exc.read())
            except ValueError:
                body = None
        except (OSError, ValueError):
            body = None
        if isinstance(body, dict) and body.get("system") == "hanoi-ioc":
            if body.get("instance") == instance:
                return None
            why = "một Hanoi IOC khác / another Hanoi IOC"
        elif body is not None:
            why = "/health không phải của Hanoi IOC / its /health is not Hanoi IOC's"
        time.sleep(0.2)
    return why


def _print_tokens(out: TextIO, api: str, database_url: str, *, dev: bool) -> None:
    """The development tokens an operator needs to acknowledge (ENV=dev, no API_TOKENS)."""
    own = (
        f"    a token of your own / mã riêng: DATABASE_URL={database_url} "
        "hanoi-ioc tokens create --name <tên/name> --role operator"
    )
    if not dev:
        _say(out, "  API tokens / Mã truy cập: those of API_TOKENS (no development tokens)")
        _say(out, own)
        return
    _say(out, "  Development tokens / Mã truy cập phát triển (ENV=dev, this machine only):")
    for token, grant in DEV_TOKENS.items():
        scope = ""
        if grant.scope_domains:
            scope = f" — chỉ / only {', '.join(sorted(grant.scope_domains))}"
        _say(out, f"    {token:<13} {grant.role.value}: {_ROLE_TEXT[grant.role.value]}{scope}")
    _say(out, "    console → nút 'Mã truy cập / Token', or open "
              f"{api}/#token=dev-operator")  # fmt: skip
    _say(out, own)


def _print_ports(out: TextIO, api_port: int, pg_port: int | None, mqtt_port: int | None) -> None:
    """Which ports are used and how to choose others."""
    _say(out, "  Ports / Cổng (to change / để đổi):")
    _say(out, f"    API {api_port}: hanoi-ioc up --api-port N, or API_PORT=N make up")
    pg = f"embedded {pg_port}: HANOI_PG_PORT=N" if pg_port else "from DATABASE_URL"
    _say(out, f"    PostgreSQL {pg} (or DATABASE_URL=postgresql://… for your own server)")
    mqtt = f"embedded {mqtt_port}: HANOI_MQTT_PORT=N" if mqtt_port else "from MQTT_URL"
    _say(out, f"    MQTT {mqtt} (or MQTT_URL=mqtt://… for your own broker)")


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
    # SIGHUP too: the terminal closing reaches `up` alone now, which must not leave orphans
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
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
    """Stop the children in :data:`_STOP_ORDER`, then any other; each SIGTERM, then kill."""
    order: list[str] = [n for n in _STOP_ORDER if n in children]
    order += [n for n in children if n not in _STOP_ORDER]
    for name in order:
        proc = children[name]
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=_STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                _say(out, f"  {name} did not stop within {_STOP_TIMEOUT_S:.0f} s: killed")
                proc.kill()
                proc.wait()
        code = proc.returncode
        how = f"exit code {code}" if code >= 0 else f"on {signal.Signals(-code).name}"
        _say(out, f"  stopped {name} ({how}) / đã dừng {name}")
