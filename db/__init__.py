"""The database layer: every migration, the two storage strategies, registry storage.

Imports nothing of ours but :mod:`contract`. The schema lives in :mod:`db.schema` (all
migrations, whoever owns the tables: readings, registry, alerts, processing state);
:func:`db.migrate.upgrade` applies them under an advisory lock, so every service can call
it at start. :mod:`db.strategies` holds what differs between TimescaleDB and plain
PostgreSQL; :mod:`db.registry` reads and writes the station registry; :mod:`db.heartbeats`
records each service's counters; :mod:`db.quarantine` stores refused messages, bounded.
"""

from db.errors import DatabaseError, RefusedError, StorageError, translate
from db.heartbeats import Stats, heartbeat
from db.migrate import Capabilities, Migration, choose_strategy, migrations, probe, upgrade
from db.quarantine import QuarantineCount, QuarantineRecord, add_quarantine, purge_quarantine
from db.registry import (
    RegistryReader,
    load_registry,
    register_stations,
    retire_sensors,
    retire_station,
)
from db.strategies import PlainStrategy, Strategy, TimescaleStrategy, strategy_for
from db.types import Conn, Pool, StrategyName

__all__ = [
    "Capabilities",
    "Conn",
    "DatabaseError",
    "Migration",
    "PlainStrategy",
    "Pool",
    "QuarantineCount",
    "QuarantineRecord",
    "RefusedError",
    "RegistryReader",
    "Stats",
    "StorageError",
    "Strategy",
    "StrategyName",
    "TimescaleStrategy",
    "add_quarantine",
    "choose_strategy",
    "heartbeat",
    "load_registry",
    "migrations",
    "probe",
    "purge_quarantine",
    "register_stations",
    "retire_sensors",
    "retire_station",
    "strategy_for",
    "translate",
    "upgrade",
]
