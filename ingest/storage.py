"""Schema migrations and the two storage strategies behind one interface.

A capability probe at start-up picks :class:`TimescaleStrategy` when the ``timescaledb``
extension is available and :class:`PlainStrategy` otherwise (forceable by configuration).
Readers see the same names on both: ``readings``, ``readings_1m``, ``readings_1h``,
``latest_readings``, ``station_state``, ``alerts``.

Migrations are ``schema/NNNN_name.sql`` (both strategies) or ``NNNN_name.<strategy>.sql``
(one variant per strategy under the same version). A file whose first line is
``-- hanoi:no-transaction`` runs statement by statement in autocommit mode and must be
idempotent.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from importlib import resources
from typing import Final, Literal, Protocol

import psycopg
from psycopg import sql
from psycopg.rows import TupleRow

from ingest.errors import StorageError

__all__ = [
    "Capabilities",
    "Conn",
    "Migration",
    "PlainStrategy",
    "Strategy",
    "StrategyName",
    "TimescaleStrategy",
    "choose_strategy",
    "migrations",
    "probe",
    "strategy_for",
    "upgrade",
]

logger = logging.getLogger(__name__)

StrategyName = Literal["timescale", "plain"]
Conn = psycopg.AsyncConnection[TupleRow]
_LOCK_KEY: Final = 0x48414E4F49  # "HANOI": one migrator at a time across services
_PARTITION_LOCK_KEY: Final = 0x48414E4F50  # one partition maker at a time
_NAME_RE: Final = re.compile(r"^(\d{4})_([a-z0-9_]+?)(?:\.(timescale|plain))?\.sql$")
_NO_TX: Final = "-- hanoi:no-transaction"


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What the connected database offers."""

    server_version: int
    timescaledb_available: str | None
    timescaledb_installed: str | None
    timescaledb_license: str | None

    @property
    def has_timescale(self) -> bool:
        """True when TimescaleDB (with its community features) can be used."""
        available = self.timescaledb_installed or self.timescaledb_available
        return available is not None and self.timescaledb_license != "apache"


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
    for entry in resources.files("ingest.schema").iterdir():
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
                  current_setting('timescaledb.license', true)"""
    )
    row = await cur.fetchone()
    if row is None:  # pragma: no cover - a SELECT without FROM always returns a row
        msg = "capability probe returned nothing"
        raise StorageError(msg)
    version, available, installed, licence = row
    if not isinstance(version, int):  # pragma: no cover
        msg = f"unexpected server version {version!r}"
        raise StorageError(msg)
    return Capabilities(
        version,
        str(available) if available else None,
        str(installed) if installed else None,
        str(licence) if licence else None,
    )


def choose_strategy(caps: Capabilities, forced: StrategyName | None = None) -> StrategyName:
    """Pick the storage strategy: the forced one, else TimescaleDB when it is usable."""
    if forced == "timescale" and not caps.has_timescale:
        msg = "storage strategy 'timescale' was forced but TimescaleDB is not available"
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
            await conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))


async def _upgrade_locked(
    conn: Conn, forced: StrategyName | None
) -> tuple[StrategyName, list[int]]:
    await conn.execute(_SCHEMA_TABLE)
    cur = await conn.execute("SELECT version, strategy, checksum FROM schema_migrations")
    applied = {int(v): (str(s), str(c)) for v, s, c in await cur.fetchall()}
    caps = await probe(conn)
    recorded = {s for s, _ in applied.values() if s != "common"}
    strategy = choose_strategy(caps, forced)
    if recorded and strategy not in recorded:
        msg = f"database was built with strategy {sorted(recorded)}, not {strategy!r}"
        raise StorageError(msg)
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


class Strategy(Protocol):
    """Storage work that differs between TimescaleDB and plain PostgreSQL."""

    name: StrategyName

    async def ensure_partitions(self, conn: Conn, first: date, last: date) -> int:
        """Make sure rows between ``first`` and ``last`` (UTC days) have somewhere to go.

        Called on an idle connection, before the batch's transaction: what it makes is
        committed at once.
        """
        ...

    def forget_partitions(self) -> None:
        """Drop what is known of existing partitions (a write found one missing)."""
        ...

    async def invalidate(self, conn: Conn, lo: datetime, hi: datetime) -> None:
        """Record that rows in [lo, hi] were written, inside the writing transaction."""
        ...

    async def maintain(self, conn: Conn, retention_days: int) -> str:
        """Periodic upkeep (partitions ahead, rollups, retention); returns a summary."""
        ...


class PlainStrategy:
    """Plain PostgreSQL: partitions, rollup tables and retention done by us."""

    name: StrategyName = "plain"

    def __init__(self, *, days_ahead: int = 3, lock_timeout_s: float = 5.0) -> None:
        self._days_ahead = days_ahead
        self._lock_timeout_ms = max(1, round(lock_timeout_s * 1000))
        self._known: set[date] = set()

    async def ensure_partitions(self, conn: Conn, first: date, last: date) -> int:
        """Create missing daily partitions (cached, so the hot path costs a set lookup).

        In a transaction of its own, committed before the batch's: a new partition locks
        ``readings`` for an instant, not for the whole write, and a wait behind a long
        reader (a rollup refresh) ends after ``lock_timeout_s`` with an error the caller
        retries. Days are remembered only once their partitions are committed: a creation
        rolled back (a timeout, a cancelled write) is made again next time.

        Raises:
            psycopg.Error: the partitions could not be made (nothing is remembered).
        """
        days = {first + timedelta(days=i) for i in range((last - first).days + 1)}
        if days <= self._known:
            return 0
        idle = conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        async with conn.transaction():
            await conn.execute(sql.SQL("SET LOCAL lock_timeout = {}").format(self._lock_timeout_ms))
            # one creator at a time: two writers reaching a new day together would otherwise
            # race in CREATE TABLE IF NOT EXISTS ("relation already exists")
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_PARTITION_LOCK_KEY,))
            cur = await conn.execute("SELECT hanoi_ensure_partitions(%s, %s)", (first, last))
            row = await cur.fetchone()
        if idle:  # committed just now (inside a caller's transaction it is not yet)
            self._known |= days
        return int(row[0]) if row else 0

    def forget_partitions(self) -> None:
        """Check every day's partition again on the next write."""
        self._known.clear()

    async def invalidate(self, conn: Conn, lo: datetime, hi: datetime) -> None:
        """Log the written range so the next rollup refresh recomputes late buckets."""
        await conn.execute(
            "INSERT INTO rollup_invalidations (lo, hi) SELECT %s, %s "
            "WHERE %s < (SELECT max(watermark) FROM rollup_state)",
            (lo, hi, lo),
        )

    async def maintain(self, conn: Conn, retention_days: int) -> str:
        """Premake partitions, refresh rollups, drop partitions past retention."""
        today = datetime.now(UTC).date()
        made = await self.ensure_partitions(
            conn, today - timedelta(days=1), today + timedelta(days=self._days_ahead)
        )
        cur = await conn.execute("SELECT hanoi_refresh_rollups()")
        refreshed = await cur.fetchone()
        cur = await conn.execute(
            "SELECT hanoi_drop_partitions(%s)", (today - timedelta(days=retention_days),)
        )
        dropped = await cur.fetchone()
        if dropped and dropped[0]:
            self._known = {d for d in self._known if d >= today - timedelta(days=retention_days)}
        return (
            f"partitions made={made} rollup rows={refreshed[0] if refreshed else 0} "
            f"partitions dropped={dropped[0] if dropped else 0}"
        )


class TimescaleStrategy:
    """TimescaleDB: chunks, continuous aggregates and retention run as policies."""

    name: StrategyName = "timescale"

    async def ensure_partitions(self, conn: Conn, first: date, last: date) -> int:
        """Hypertables create chunks on demand."""
        return 0

    def forget_partitions(self) -> None:
        """Nothing is cached."""

    async def invalidate(self, conn: Conn, lo: datetime, hi: datetime) -> None:
        """Continuous aggregates keep their own invalidation log."""

    async def maintain(self, conn: Conn, retention_days: int) -> str:
        """Policies do the work inside the database; nothing to do here."""
        return "timescaledb policies"


def strategy_for(name: StrategyName) -> Strategy:
    """Instantiate the strategy called ``name``."""
    return TimescaleStrategy() if name == "timescale" else PlainStrategy()
