"""Broker credentials: who may connect, as whom, and publish or read which topics.

A :class:`CredentialStore` is a directory outside the repository (``up`` keeps one under its
home, ``.hanoi/credentials``; production keeps it wherever ``HANOI_CREDENTIALS_DIR`` says).
It holds one :class:`Identity` per broker user and writes from them, on every change, the
two files Mosquitto reads — a password file (PBKDF2-SHA512 hashes, the ``$7$`` format of
``mosquitto_passwd``) and an ACL file — then asks the broker to reload them (SIGHUP), so
credentials are issued, rotated and revoked without restarting it::

    <dir>/identities.json              every user: role, grants, password hash   (0600)
    <dir>/broker/mosquitto.passwd      what the broker authenticates against      (0600)
    <dir>/broker/mosquitto.acl         what the broker authorises                 (0600)
    <dir>/secrets/<user>/password      a password in clear, where one is kept     (0600)

Every directory is 0700. The broker's files and each user's password sit in directories of
their own so that a container can be given exactly one of them, mounted as a directory: a
rotation replaces the file (atomically, by a rename), which a single-file bind mount would
not see.

Roles and what the ACL lets them do (``<root>`` is the topic root):

- a **service** (``hanoi-<service>-<instance>``, also its MQTT client id: the broker replaces
  every client id by the user name, so nobody else can take over a service's session) reads
  telemetry and status (ingest; processing reads the database, not the broker);
- a **device** (user = station id) writes its own station's telemetry and status topics, in
  its registered domain, and nothing else;
- a **gateway** (user = the ``gateway`` attribute of the stations registered to it) writes
  those stations' topics, and SenML packs on its own topic in their domains;
- **simulator** (the ground-truth channel of the simulators), **health** (the broker's
  uptime, for health checks) and **observer** (reads everything under the root) are
  operational users; **tester** (reads and writes everything) exists for test brokers only.

Passwords are 256-bit random tokens, so the hash's iteration count (Mosquitto's default,
101) is no protection anyone relies on; the secret files are the sensitive part. A service's
secret is always kept (the service reads it at every connection attempt); a device's or
gateway's only when asked (``up`` keeps them for its simulator; production prints it once,
for the device's provisioning, and keeps the hash alone).
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import os
import secrets
import signal
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Final, Literal

import msgspec

from contract import DEFAULT_ROOT, STATION_ID_RE, Station, Topic, truth_topic

__all__ = [
    "SERVICE_READS",
    "CredentialStore",
    "CredentialsError",
    "Grant",
    "Identity",
    "Role",
    "SyncResult",
    "device_grants",
    "gateway_grants",
    "hash_password",
    "service_user",
    "verify_password",
]

Role = Literal["service", "device", "gateway", "simulator", "health", "observer", "tester"]
Access = Literal["read", "write", "readwrite"]

SERVICE_READS: Final[dict[str, tuple[Literal["telemetry", "status"], ...]]] = {
    "ingest": ("telemetry", "status"),
}
"""What each service subscribes to (and may therefore read). Only ingest reads the broker:
processing decides on what ingest stored (the reading feed), so it holds no broker user."""

_ITERATIONS: Final = 101  # Mosquitto's own default; see the module docstring
_SALT_BYTES: Final = 12
_SERVICE_RE: Final = r"^hanoi-[a-z]+-[A-Za-z0-9_-]{1,40}$"
_HEALTH_USER: Final = "hanoi-health"
_SIMULATOR_USER: Final = "hanoi-simulator"
_FILE_MODE: Final = 0o600
_DIR_MODE: Final = 0o700


class CredentialsError(Exception):
    """A credential that cannot be issued as asked (a name taken by another role …)."""


class Grant(msgspec.Struct, frozen=True):
    """One ACL line: ``topic <access> <topic>``."""

    access: Access
    topic: str


class Identity(msgspec.Struct, frozen=True):
    """One broker user."""

    name: str
    role: Role
    grants: tuple[Grant, ...]
    password_hash: str
    issued_at: datetime


class _Document(msgspec.Struct):
    root: str
    identities: dict[str, Identity] = msgspec.field(default_factory=dict)
    broker_pid_file: str | None = None


@dataclass(frozen=True, slots=True)
class SyncResult:
    """What a registry sync changed; ``passwords`` are the new ones (shown once)."""

    issued: tuple[str, ...]
    updated: tuple[str, ...]
    revoked: tuple[str, ...]
    passwords: dict[str, str]


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    """The Mosquitto 2 password-file hash of ``password`` (``$7$``: PBKDF2-HMAC-SHA512).

    >>> h = hash_password("s3cret", salt=b"0123456789ab")
    >>> h.startswith("$7$101$MDEyMzQ1Njc4OWFi$"), verify_password("s3cret", h)
    (True, True)
    """
    salt = salt if salt is not None else secrets.token_bytes(_SALT_BYTES)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, _ITERATIONS, 64)
    return f"$7${_ITERATIONS}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def verify_password(password: str, hashed: str) -> bool:
    """True when ``password`` matches a ``$7$`` hash."""
    try:
        _, kind, iterations, salt, digest = hashed.split("$")
        expected = base64.b64decode(digest)
        got = hashlib.pbkdf2_hmac(
            "sha512", password.encode(), base64.b64decode(salt), int(iterations), len(expected)
        )
    except ValueError:
        return False
    return kind == "7" and secrets.compare_digest(got, expected)


def service_user(service: str, instance: str) -> str:
    """The broker user (and client id) of a service instance: ``hanoi-<service>-<instance>``."""
    return f"hanoi-{service}-{instance}"


def _station_topics(station: Station, root: str) -> list[Grant]:
    # (root may be a filter such as "+/v1" on a test broker: no Topic, whose root is literal)
    prefix = f"{root}/{station.domain.value}/{station.station_id}"
    return [Grant("write", f"{prefix}/{kind}") for kind in ("telemetry", "status")]


def device_grants(station: Station, root: str = DEFAULT_ROOT) -> tuple[Grant, ...]:
    """A device writes its own station's telemetry and status, in its domain, and no more.

    >>> from contract import Domain, StationId
    >>> st = Station(StationId("aq-1"), Domain.AIR, "A", "B", 21.0, 105.8, "air")
    >>> [f"{g.access} {g.topic}" for g in device_grants(st)]
    ['write hanoi/v1/air/aq-1/telemetry', 'write hanoi/v1/air/aq-1/status']
    """
    return tuple(_station_topics(station, root))


def gateway_grants(
    gateway: str, stations: Sequence[Station], root: str = DEFAULT_ROOT
) -> tuple[Grant, ...]:
    """A gateway writes its stations' topics, and packs on its own topic in their domains."""
    grants: list[Grant] = []
    for domain in sorted({s.domain for s in stations}, key=lambda d: d.value):
        grants.append(Grant("write", f"{root}/{domain.value}/{gateway}/telemetry"))
    for station in sorted(stations, key=lambda s: s.station_id):
        grants.extend(_station_topics(station, root))
    return tuple(grants)


def _service_grants(service: str, root: str) -> tuple[Grant, ...]:
    if service not in SERVICE_READS:
        msg = f"unknown service {service!r}; one of {sorted(SERVICE_READS)}"
        raise CredentialsError(msg)
    return tuple(Grant("read", Topic.filter(kind, root)) for kind in SERVICE_READS[service])


def _role_grants(role: Role, root: str) -> tuple[Grant, ...]:
    if role == "simulator":
        return (Grant("write", truth_topic(root)),)
    if role == "health":
        return (Grant("read", "$SYS/broker/uptime"),)
    if role == "observer":
        return (Grant("read", f"{root}/#"),)
    if role == "tester":
        return (Grant("readwrite", "#"), Grant("read", "$SYS/#"))
    msg = f"role {role!r} takes its grants from a service name or the registry"
    raise CredentialsError(msg)


def _write_private(path: Path, data: bytes) -> None:
    """Write a file readable by its owner only, atomically (a reader never sees half)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, _FILE_MODE)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.chmod(tmp, _FILE_MODE)
        tmp.replace(path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def _forget_secret(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    with contextlib.suppress(FileNotFoundError, OSError):
        path.parent.rmdir()


_decoder: Final = msgspec.json.Decoder(_Document)
_encoder: Final = msgspec.json.Encoder()


class CredentialStore:
    """A directory of broker credentials (see the module docstring).

    Args:
        path: the directory (created 0700 when missing).
        root: the topic root the grants are written for (only used when the store is new;
            a test broker may give a filter such as ``+/v1``).
    """

    def __init__(self, path: Path, *, root: str = DEFAULT_ROOT) -> None:
        self.path = path.resolve()
        self.path.mkdir(parents=True, exist_ok=True)
        os.chmod(self.path, _DIR_MODE)
        for sub in (self.secrets_dir, self.broker_dir):
            sub.mkdir(exist_ok=True)
            os.chmod(sub, _DIR_MODE)
        self._depth = 0
        self._lock: IO[bytes] | None = None
        self._doc = _Document(root)
        with self._changing():  # creates the files, or reads them
            pass

    def _read(self) -> _Document:
        document = self.path / "identities.json"
        if document.exists():
            return _decoder.decode(document.read_bytes())
        return self._doc

    @contextlib.contextmanager
    def _changing(self) -> Iterator[_Document]:
        """Change the store under an exclusive lock, writing every file at the end.

        Several processes may hold one store (the CLI, ``up``, tests): each change reads it
        afresh under the lock.
        """
        if self._depth == 0:
            self._lock = (self.path / ".lock").open("ab")
            fcntl.flock(self._lock, fcntl.LOCK_EX)
            self._doc = self._read()
        self._depth += 1
        try:
            yield self._doc
            if self._depth == 1:
                self._save()
        finally:
            self._depth -= 1
            if self._depth == 0 and self._lock is not None:
                fcntl.flock(self._lock, fcntl.LOCK_UN)
                self._lock.close()
                self._lock = None

    def _fresh(self) -> _Document:
        if self._depth == 0:
            self._doc = self._read()
        return self._doc

    # -- where things are -------------------------------------------------------------------

    @property
    def root(self) -> str:
        """The topic root (or filter) the grants are written for."""
        return self._fresh().root

    @property
    def secrets_dir(self) -> Path:
        """Where kept passwords are: ``<user>/password`` (a simulator's ``credentials_dir``)."""
        return self.path / "secrets"

    @property
    def broker_dir(self) -> Path:
        """What the broker reads (mount this directory, read-only, into its container)."""
        return self.path / "broker"

    @property
    def password_file(self) -> Path:
        """The broker's password file."""
        return self.broker_dir / "mosquitto.passwd"

    @property
    def acl_file(self) -> Path:
        """The broker's ACL file."""
        return self.broker_dir / "mosquitto.acl"

    @property
    def identities(self) -> dict[str, Identity]:
        """Every user, by name."""
        return dict(self._fresh().identities)

    def secret_file(self, name: str) -> Path:
        """The file a kept password of ``name`` is in (it may not exist)."""
        if not STATION_ID_RE.fullmatch(name) and not name.startswith("hanoi-"):
            msg = f"{name!r} is not a user name of ours"
            raise CredentialsError(msg)
        return self.secrets_dir / name / "password"

    def secret(self, name: str) -> str:
        """The kept password of ``name``.

        Raises:
            CredentialsError: when none is kept.
        """
        path = self.secret_file(name)
        if not path.exists():
            msg = f"no password of {name!r} is kept in {self.secrets_dir}"
            raise CredentialsError(msg)
        return path.read_text().strip()

    # -- issuing ----------------------------------------------------------------------------

    def issue(
        self,
        name: str,
        role: Role,
        grants: Sequence[Grant] | None = None,
        *,
        keep_secret: bool = True,
        rotate: bool = False,
    ) -> str | None:
        """Create (or with ``rotate``, replace the password of) one user; write the files.

        Returns:
            The new password, or None when the user existed and was not rotated (its grants
            are brought up to date).

        Raises:
            CredentialsError: when the name belongs to another role or is not a valid name.
        """
        self._check_name(name, role)
        with self._changing() as doc:
            held = doc.identities.get(name)
            if held is not None and held.role != role:
                msg = f"{name!r} is already a {held.role} user, not a {role}"
                raise CredentialsError(msg)
            grants = tuple(grants) if grants is not None else _role_grants(role, doc.root)
            if held is not None and not rotate:
                if held.grants != grants:
                    doc.identities[name] = msgspec.structs.replace(held, grants=grants)
                return None
            password = secrets.token_urlsafe(32)
            doc.identities[name] = Identity(
                name, role, grants, hash_password(password), datetime.now(UTC)
            )
            if keep_secret or role == "service":
                secret = self.secret_file(name)
                secret.parent.mkdir(mode=_DIR_MODE, exist_ok=True)
                _write_private(secret, password.encode() + b"\n")
            else:
                _forget_secret(self.secret_file(name))
            return password

    def issue_service(self, service: str, instance: str = "0", *, rotate: bool = False) -> str:
        """The user of a service instance (created when missing); returns its user name."""
        name = service_user(service, instance)
        self.issue(name, "service", _service_grants(service, self.root), rotate=rotate)
        return name

    def issue_operational(self, role: Role, name: str | None = None) -> str:
        """A ``simulator``, ``health``, ``observer`` or ``tester`` user; returns its name."""
        default = {"simulator": _SIMULATOR_USER, "health": _HEALTH_USER}
        user = name or default.get(role) or f"hanoi-{role}"
        self.issue(user, role)
        return user

    def rotate(self, name: str) -> str:
        """A new password for ``name`` (kept where the old one was kept).

        Raises:
            CredentialsError: for an unknown user.
        """
        with self._changing() as doc:
            held = doc.identities.get(name)
            if held is None:
                msg = f"no user {name!r}"
                raise CredentialsError(msg)
            kept = self.secret_file(name).exists()
            password = self.issue(name, held.role, held.grants, keep_secret=kept, rotate=True)
        assert password is not None  # noqa: S101 - rotate always issues
        return password

    def revoke(self, name: str) -> bool:
        """Remove a user (its open connection can publish nothing more after the reload)."""
        with self._changing() as doc:
            if doc.identities.pop(name, None) is None:
                return False
            _forget_secret(self.secret_file(name))
            return True

    def sync_registry(
        self, stations: Iterable[Station], *, keep_secrets: bool = False, revoke: bool = True
    ) -> SyncResult:
        """Bring devices and gateways in line with the registry.

        New ones are issued, changed grants updated, and (with ``revoke``) the users of
        stations and gateways no longer registered revoked.
        """
        with self._changing() as doc:
            wanted = self._wanted(list(stations), doc.root)
            issued, updated, passwords = [], [], {}
            for name, (role, grants) in sorted(wanted.items()):
                before = doc.identities.get(name)
                password = self.issue(name, role, grants, keep_secret=keep_secrets)
                if password is not None:
                    issued.append(name)
                    passwords[name] = password
                elif before is not None and before.grants != grants:
                    updated.append(name)
            revoked = [
                name
                for name, identity in sorted(doc.identities.items())
                if revoke and identity.role in ("device", "gateway") and name not in wanted
            ]
            for name in revoked:
                self.revoke(name)
        return SyncResult(tuple(issued), tuple(updated), tuple(revoked), passwords)

    @staticmethod
    def _wanted(stations: list[Station], root: str) -> dict[str, tuple[Role, tuple[Grant, ...]]]:
        wanted: dict[str, tuple[Role, tuple[Grant, ...]]] = {}
        by_gateway: dict[str, list[Station]] = defaultdict(list)
        for station in stations:
            wanted[station.station_id] = ("device", device_grants(station, root))
            if station.gateway is not None:
                by_gateway[station.gateway].append(station)
        for gateway, members in by_gateway.items():
            if gateway in wanted:
                msg = f"{gateway!r} is both a station and the gateway of {members[0].station_id}"
                raise CredentialsError(msg)
            wanted[gateway] = ("gateway", gateway_grants(gateway, members, root))
        return wanted

    # -- the broker -------------------------------------------------------------------------

    def use_broker_pid_file(self, pid_file: Path | None) -> None:
        """Remember which broker to ask to reload after a change."""
        with self._changing() as doc:
            doc.broker_pid_file = str(pid_file) if pid_file else None

    def reload_broker(self, pid_file: Path | None = None) -> bool:
        """Ask the broker to re-read the files (SIGHUP); False when no broker is known."""
        known = self._fresh().broker_pid_file
        where = pid_file or (Path(known) if known else None)
        if where is None or not where.exists():
            return False
        try:
            os.kill(int(where.read_text().strip()), signal.SIGHUP)
        except (ValueError, ProcessLookupError, PermissionError):
            return False
        return True

    def render_acl(self) -> str:
        """The ACL file's text (no anonymous access: no topic line before the first user)."""
        lines = ["# Written by hanoi-ioc credentials; edits are overwritten.", ""]
        for name, identity in sorted(self._fresh().identities.items()):
            lines.append(f"# {identity.role}")
            lines.append(f"user {name}")
            lines.extend(f"topic {g.access} {g.topic}" for g in identity.grants)
            lines.append("")
        return "\n".join(lines)

    def render_passwords(self) -> str:
        """The password file's text."""
        return "".join(
            f"{name}:{identity.password_hash}\n"
            for name, identity in sorted(self._fresh().identities.items())
        )

    def _save(self) -> None:
        document = msgspec.json.format(_encoder.encode(self._doc))
        _write_private(self.path / "identities.json", document)
        _write_private(self.password_file, self.render_passwords().encode())
        _write_private(self.acl_file, self.render_acl().encode())

    @staticmethod
    def _check_name(name: str, role: Role) -> None:
        if role in ("device", "gateway"):
            if not STATION_ID_RE.fullmatch(name) or name.startswith("hanoi-"):
                msg = f"{role} name {name!r} must be a station-id form not starting with hanoi-"
                raise CredentialsError(msg)
            return
        if not name.startswith("hanoi-") or not all(c.isalnum() or c in "-_" for c in name):
            msg = f"{role} user {name!r} must start with hanoi- (names of devices never do)"
            raise CredentialsError(msg)
