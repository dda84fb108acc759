"""The private services of a bench run: PostgreSQL, Mosquitto, ingest, processing, the API.

Everything lives in one temporary directory and listens on loopback only. PostgreSQL is
durable (fsync and synchronous commit on, as in production) with ``track_commit_timestamp``
on, so the commit time of every stored batch is known. The broker runs the project's
Mosquitto configuration with authentication (docs/security.md): ingest has its service
user, the load gateways their gateway users (they publish their stations' topics), and the
bench's own clients (the raw-rate pair, the alert probe) are ``tester`` users. The services
run as processes (``python -m ingest|processing|ops_api``), as in production, so their CPU
and peak memory are read from ``/proc``.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Final, Self

import numpy as np
import numpy.typing as npt
import psycopg

from contract import Domain, Quantity, Sensor, Station, StationId
from db import load_registry, register_stations, upgrade
from hanoi_ioc.bench import procstat
from hanoi_ioc.credentials import CredentialStore, gateway_grants
from hanoi_ioc.embedded import EmbeddedBroker, EmbeddedPostgres, free_port, wait_for_port
from simulators.load import load_fleet

__all__ = ["INSTANCE", "TOKEN", "PrivateStack", "ServiceProcess", "probe_station"]

INSTANCE: Final = "bench"
"""Instance name of ingest and processing (processing's feed consumer name)."""
TOKEN: Final = "bench-viewer-token-0000000000000001"  # noqa: S105 - a private, throwaway API
PUBLISHER: Final = "hanoi-bench-pub"
SUBSCRIBER: Final = "hanoi-bench-sub"
PROBE: Final = "hanoi-bench-probe"
_READY_S: Final = 90.0


def probe_station(i: int) -> str:
    """The id of alert-probe station ``i`` (a PM2.5 sensor, not part of the load)."""
    return f"bp-{i:05d}"


@dataclass
class ServiceProcess:
    """One service process and the log it writes."""

    name: str
    proc: subprocess.Popen[bytes]
    log: Path
    cpu0: float = 0.0

    @property
    def pid(self) -> int:
        """Its process id."""
        return self.proc.pid

    def peak_rss_mb(self) -> float:
        """Peak resident memory so far (VmHWM), MB."""
        return procstat.peak_rss_mb(self.pid) or 0.0

    def cpu_s(self) -> float:
        """CPU seconds used so far."""
        return procstat.cpu_s(self.pid) or 0.0


@dataclass
class PrivateStack:
    """PostgreSQL, Mosquitto and the three services, private to one run.

    Args:
        stations: load-mode stations to register (and whose gateways get users).
        probes: alert-probe stations to register.
        ws_clients: the most WebSocket clients the API must accept.
        keep: keep the directory after :meth:`close`.
    """

    stations: int
    probes: int
    ws_clients: int = 100
    keep: bool = False
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="hanoi-bench-")))
    services: dict[str, ServiceProcess] = field(default_factory=dict)
    pg: EmbeddedPostgres | None = None
    broker: EmbeddedBroker | None = None
    store: CredentialStore | None = None
    api_port: int = 0

    # -- servers --------------------------------------------------------------------------

    def start_servers(self) -> None:
        """Start PostgreSQL (with commit timestamps) and the broker with the bench's users."""
        pg = EmbeddedPostgres(self.root / "pg", durable=True).start()
        self.pg = pg
        with psycopg.connect(pg.url, autocommit=True) as conn:
            conn.execute("ALTER SYSTEM SET track_commit_timestamp = on")
        pg.stop()
        pg.start()
        store = CredentialStore(self.root / "credentials")
        self.store = store
        store.issue_service("ingest", INSTANCE)
        for user in (PUBLISHER, SUBSCRIBER, PROBE):
            store.issue(user, "tester")
        members: dict[str, list[Station]] = defaultdict(list)
        for station in load_fleet(self.stations):
            if station.gateway is not None:
                members[station.gateway].append(station)
        for gateway, stations in members.items():
            store.issue(gateway, "gateway", gateway_grants(gateway, stations))
        self.broker = EmbeddedBroker(self.root / "mqtt", credentials=store).start()

    @property
    def database_url(self) -> str:
        """The private database."""
        if self.pg is None:
            msg = "PostgreSQL not started"
            raise RuntimeError(msg)
        return self.pg.url

    @property
    def mqtt_port(self) -> int:
        """The private broker's port."""
        if self.broker is None:
            msg = "broker not started"
            raise RuntimeError(msg)
        return self.broker.port

    def secret(self, user: str) -> str:
        """A broker user's password."""
        if self.store is None:
            msg = "no credential store"
            raise RuntimeError(msg)
        return self.store.secret(user)

    @property
    def secrets_dir(self) -> Path:
        """The broker users' password files (``<user>/password``)."""
        if self.store is None:
            msg = "no credential store"
            raise RuntimeError(msg)
        return self.store.secrets_dir

    async def prepare_database(self) -> None:
        """Migrate and register the load fleet and the probe stations."""
        await upgrade(self.database_url, "plain")
        probes = [
            Station(StationId(probe_station(i)), Domain.AIR, f"Bench probe {i}", "Cầu Giấy",
                    21.03, 105.80, "air_quality", (Sensor(Quantity.PM25, 60.0),))
            for i in range(self.probes)
        ]  # fmt: skip
        async with await psycopg.AsyncConnection.connect(self.database_url) as conn:
            await register_stations(conn, [*load_fleet(self.stations), *probes])

    async def probe_keys(self) -> npt.NDArray[np.int32]:
        """The storage keys of the probe stations' sensors."""
        async with await psycopg.AsyncConnection.connect(self.database_url) as conn:
            registry = await load_registry(conn)
        keys = [k for (station, _), k in registry.keys.items() if station.startswith("bp-")]
        return np.asarray(keys, dtype=np.int32)

    # -- services -------------------------------------------------------------------------

    def _env(self) -> dict[str, str]:
        if self.broker is None or self.store is None:
            msg = "servers not started"
            raise RuntimeError(msg)
        ingest_user = f"hanoi-ingest-{INSTANCE}"
        limit = str(self.ws_clients + 50)
        return {
            **os.environ, "DATABASE_URL": self.database_url, "MQTT_URL": self.broker.url,
            "MQTT_PROTOCOL": self.broker.protocol, "STORAGE_STRATEGY": "plain",
            "INGEST_INSTANCE": INSTANCE, "PROC_INSTANCE": INSTANCE,
            "INGEST_MQTT_PASSWORD_FILE": str(self.store.secret_file(ingest_user)),
            "INGEST_HEARTBEAT_INTERVAL_S": "1", "PROC_HEARTBEAT_INTERVAL_S": "1",
            "ENV": "test", "API_PORT": str(self.api_port),
            "API_TOKENS": json.dumps({TOKEN: {"role": "viewer", "name": "bench"}}),
            "API_PUBLIC_BASE_URL": f"http://127.0.0.1:{self.api_port}",
            "API_WS_MAX_CLIENTS": limit, "API_WS_MAX_CLIENTS_PER_TOKEN": limit,
            "API_WS_MAX_PENDING": limit, "API_MAX_CONNECTIONS": str(self.ws_clients + 500),
            # the bench's clients share the machine with the load: do not drop them as slow
            "API_WS_PONG_TIMEOUT_S": "120", "PYTHONUNBUFFERED": "1", "LOG_LEVEL": "WARNING",
        }  # fmt: skip

    def start_services(self) -> None:
        """Start ingest, processing and the API; return once each is up."""
        self.api_port = free_port()
        env = self._env()
        logs = self.root / "logs"
        logs.mkdir(exist_ok=True)
        for name, module in (("ingest", "ingest"), ("processing", "processing"),
                             ("api", "ops_api")):  # fmt: skip
            log = logs / f"{name}.log"
            with log.open("ab") as out:
                proc = subprocess.Popen(
                    [sys.executable, "-m", module], env=env, stdout=out, stderr=subprocess.STDOUT
                )
            self.services[name] = ServiceProcess(name, proc, log)
        wait_for_port(self.api_port, _READY_S, self.services["api"].proc)
        self._wait_heartbeats(("ingest", "processing"))
        self._wait_health()

    def _wait_heartbeats(self, services: tuple[str, ...]) -> None:
        deadline = time.monotonic() + _READY_S
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            while time.monotonic() < deadline:
                for name in services:
                    if self.services[name].proc.poll() is not None:
                        msg = f"{name} exited; see {self.services[name].log}"
                        raise RuntimeError(msg)
                rows = conn.execute(
                    "SELECT service FROM service_heartbeats WHERE instance = %s", (INSTANCE,)
                ).fetchall()
                if set(services) <= {str(r[0]) for r in rows}:
                    return
                time.sleep(0.2)
        msg = f"no heartbeat from {services} within {_READY_S:.0f} s"
        raise RuntimeError(msg)

    def _wait_health(self) -> None:
        deadline = time.monotonic() + _READY_S
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.api_url}/health", timeout=5):  # noqa: S310
                    return
            except urllib.error.HTTPError:
                return  # it answers (503 while something is not ready yet is an answer)
            except OSError:
                time.sleep(0.2)
        msg = f"the API does not answer /health within {_READY_S:.0f} s"
        raise RuntimeError(msg)

    @property
    def api_url(self) -> str:
        """The private API's base URL."""
        return f"http://127.0.0.1:{self.api_port}"

    def check_alive(self) -> None:
        """Raise when a service has exited (a run measures nothing without it)."""
        for service in self.services.values():
            if service.proc.poll() is not None:
                msg = (
                    f"{service.name} exited with code {service.proc.returncode}; see {service.log}"
                )
                raise RuntimeError(msg)

    def peak_memory_mb(self) -> dict[str, float]:
        """Peak resident memory of each service and of the broker, MB."""
        out = {name: round(s.peak_rss_mb(), 1) for name, s in self.services.items()}
        pid_file = self.broker.pid_file if self.broker is not None else self.root / "none"
        if pid_file.exists():
            out["broker"] = round(
                procstat.peak_rss_mb(int(pid_file.read_text().split()[0])) or 0, 1
            )
        return out

    # -- teardown -------------------------------------------------------------------------

    def close(self) -> None:
        """Stop the services, then the servers; remove the directory unless kept."""
        for name in ("processing", "ingest", "api"):
            service = self.services.get(name)
            if service is None or service.proc.poll() is not None:
                continue
            service.proc.terminate()
            try:
                service.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                service.proc.kill()
                service.proc.wait()
        if self.broker is not None:
            self.broker.stop()
        if self.pg is not None:
            self.pg.stop()
        if not self.keep:
            shutil.rmtree(self.root, ignore_errors=True)

    async def __aenter__(self) -> Self:
        await asyncio.to_thread(self.start_servers)
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        await asyncio.to_thread(self.close)
