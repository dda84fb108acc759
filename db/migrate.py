"""Schema migrations, and the capability probe that picks the storage strategy.

A capability probe at start-up picks the TimescaleDB strategy when the ``timescaledb``
extension is available and the plain PostgreSQL one otherwise (forceable by configuration);
see :mod:`db.strategies`. Readers see the same names on both: ``readings``, ``readings_1m``,
``readings_1h``, ``latest_readings``, ``station_state``, ``alerts``.

Migrations are ``schema/NNNN_name.sql`` (both strategies) or ``NNNN_name.<strategy>.sql``
(one variant per strategy under the same version). A file whose first line is
``-- hanoi:no-transaction`` runs statement by statement in autocommit mode and must be
idempotent.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import re
from dataclasses import dataclass
from importlib import resources
from typing import Final

import psycopg
from psycopg import sql

from db.errors import StorageError
from db.types import Conn, StrategyName

__all__ = ["Capabilities", "Migration", "choose_strategy", "migrations", "probe", "upgrade"]

logger = logging.getLogger(__name__)

_LOCK_KEY: Final = 0x48414E4F49  # "HANOI": one migrator at a time across services
_NAME_RE: Final = re.compile(r"^(\d{4})_([a-z0-9_]+?)(?:\.(timescale|plain))?\.sql$")
_NO_TX: Final = "-- hanoi:no-transaction"


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What the connected database offers."""

    server_version: int
    timescaledb_available: str | None
    timescaledb_installed: str | None
    timescaledb_license: str | None
    timescaledb_preloaded: bool = True

    @property
    def has_timescale(self) -> bool:
        """True when TimescaleDB (with its community features) can be used."""
        return self.timescale_missing is None

    @property
    def timescale_missing(self) -> str | None:
        """Why TimescaleDB cannot be used, in one line (None: it can)."""
        if not (self.timescaledb_installed or self.timescaledb_available):
            return "TimescaleDB is not installed on the server"
        if not self.timescaledb_preloaded:
            return (
                "TimescaleDB is installed on the server but not preloaded "
                "(add timescaledb to shared_preload_libraries and restart PostgreSQL)"
            )
        if self.timescaledb_license == "apache":
            return "TimescaleDB runs under its Apache licence (no compression or aggregates)"
        return None


@dataclass(frozen=True, slots=True)
class Migration:
    """One versioned SQL file."""

    version: int
    name: str
    strategy: StrategyName | None
    sql: str

    @property
    def checksum(self) -> str:
        """SHA-256 of the SQL text, recorded when applied."""
        return hashlib.sha256(self.sql.encode()).hexdigest()

    @property
    def transactional(self) -> bool:
        """False for files that must run in autocommit mode."""
        return not self.sql.startswith(_NO_TX)


def migrations(strategy: StrategyName) -> list[Migration]:
    """All migrations for ``strategy``, ordered by version."""
    found: dict[int, Migration] = {}
    for entry in resources.files("db.schema").iterdir():
        match = _NAME_RE.match(entry.name)
        if match is None:
            continue
        variant = match.group(3)
        if variant is not None and variant != strategy:
            continue
        version = int(match.group(1))
        if version in found:
            msg = f"two migrations for version {version}: {found[version].name}, {entry.name}"
            raise StorageError(msg)
        found[version] = Migration(
            version,
            match.group(2),
            strategy if variant else None,
            entry.read_text(encoding="utf-8"),
        )
    return [found[v] for v in sorted(found)]


async def probe(conn: Conn) -> Capabilities:
    """Ask the server what it supports."""
    cur = await conn.execute(
        """SELECT current_setting('server_version_num')::int,
                  (SELECT default_version FROM pg_available_extensions
                   WHERE name = 'timescaledb'),
                  (SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'),
                  current_setting('timescaledb.license', true),
                  current_setting('shared_preload_libraries')"""
    )
    row = await cur.fetchone()
    if row is None:  # pragma: no cover - a SELECT without FROM always returns a row
        msg = "capability probe returned nothing"
        raise StorageError(msg)
    version, available, installed, licence, preload = row
    if not isinstance(version, int):  # pragma: no cover
        msg = f"unexpected server version {version!r}"
        raise StorageError(msg)
    return Capabilities(
        version,
        str(available) if available else None,
        str(installed) if installed else None,
        str(licence) if licence else None,
        "timescaledb" in {lib.strip() for lib in str(preload or "").split(",")},
    )


def choose_strategy(caps: Capabilities, forced: StrategyName | None = None) -> StrategyName:
    """Pick the storage strategy: the forced one, else TimescaleDB when it is usable."""
    if forced == "timescale" and caps.timescale_missing is not None:
        msg = f"storage strategy 'timescale' was asked for, but {caps.timescale_missing}"
        raise StorageError(msg)
    if forced is not None:
        return forced
    return "timescale" if caps.has_timescale else "plain"


_SCHEMA_TABLE: Final = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    strategy   text NOT NULL,
    checksum   text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)"""


def _statements(text: str) -> list[str]:
    """Split an autocommit migration on ``;`` at line ends (no dollar-quoted bodies there)."""
    parts = re.split(r";\s*\n", text)
    return [p.strip() for p in parts if p.strip() and not _only_comments(p)]


def _only_comments(part: str) -> bool:
    return all(not ln.strip() or ln.strip().startswith("--") for ln in part.splitlines())


async def upgrade(
    conninfo: str, forced: StrategyName | None = None
) -> tuple[StrategyName, list[int]]:
    """Apply every pending migration; safe to call from several services at once.

    Returns:
        The strategy in force and the versions applied by this call.
    """
    async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
        await conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
        try:
            return await _upgrade_locked(conn, forced)
        finally:
            # A server that closed the connection (e.g. refusing an extension) has released
            # the lock already: unlocking must not hide *why* it closed it.
            if not conn.closed:
                with contextlib.suppress(psycopg.Error):
                    await conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))


async def _upgrade_locked(
    conn: Conn, forced: StrategyName | None
) -> tuple[StrategyName, list[int]]:
    await conn.execute(_SCHEMA_TABLE)
    cur = await conn.execute("SELECT version, strategy, checksum FROM schema_migrations")
    applied = {int(v): (str(s), str(c)) for v, s, c in await cur.fetchall()}
    caps = await probe(conn)
    recorded = {s for s, _ in applied.values() if s != "common"}
    strategy = _recorded_or_chosen(recorded, caps, forced)
    if strategy == "timescale":
        await conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
    done: list[int] = []
    for mig in migrations(strategy):
        if mig.version in applied:
            if applied[mig.version][1] != mig.checksum:
                logger.warning(
                    "migration %04d_%s changed since it was applied", mig.version, mig.name
                )
            continue
        await _apply(conn, mig)
        done.append(mig.version)
        logger.info(
            "applied migration %04d_%s (%s)", mig.version, mig.name, mig.strategy or "common"
        )
    return strategy, done


def _recorded_or_chosen(
    recorded: set[str], caps: Capabilities, forced: StrategyName | None
) -> StrategyName:
    """The strategy a database was built with always wins; a new one gets the probe's choice.

    Raises:
        StorageError: the database was built for the other strategy than the one forced,
            or for TimescaleDB and the server cannot run it now.
    """
    if not recorded:
        strategy = choose_strategy(caps, forced)
        if forced is None and strategy == "plain" and caps.timescaledb_available:
            logger.warning("%s: using plain PostgreSQL", caps.timescale_missing)
        return strategy
    built: StrategyName = "timescale" if "timescale" in recorded else "plain"
    if forced is not None and forced != built:
        msg = f"this database was built with the {built!r} storage strategy, not {forced!r}"
        raise StorageError(msg)
    if built == "timescale" and caps.timescale_missing is not None:
        msg = f"this database was built with TimescaleDB, but {caps.timescale_missing}"
        raise StorageError(msg)
    return built


async def _apply(conn: Conn, mig: Migration) -> None:
    record = sql.SQL(
        "INSERT INTO schema_migrations (version, name, strategy, checksum) VALUES (%s, %s, %s, %s)"
    )
    values = (mig.version, mig.name, mig.strategy or "common", mig.checksum)
    try:
        if mig.transactional:
            async with conn.transaction():
                await conn.execute(sql.SQL(mig.sql))
                await conn.execute(record, values)
        else:
            for statement in _statements(mig.sql):
                await conn.execute(sql.SQL(statement))
            await conn.execute(record, values)
    except psycopg.Error as exc:
        msg = f"migration {mig.version:04d}_{mig.name} failed: {exc}"
        raise StorageError(msg) from exc
