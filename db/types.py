"""Connection and pool types, and the names of the storage strategies."""

from __future__ import annotations

from typing import Literal

import psycopg
from psycopg.rows import TupleRow
from psycopg_pool import AsyncConnectionPool

__all__ = ["Conn", "Pool", "StrategyName"]

Conn = psycopg.AsyncConnection[TupleRow]
"""An async connection returning tuples (typed rows are read with ``class_row``)."""
Pool = AsyncConnectionPool[Conn]
"""A pool of :data:`Conn`."""
StrategyName = Literal["timescale", "plain"]
"""How readings are stored: TimescaleDB hypertables, or plain PostgreSQL partitions."""
