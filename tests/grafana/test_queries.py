"""Every dashboard query, as Grafana would send it, on a real migrated PostgreSQL.

Variables are resolved the way the dashboard does (their own SQL on the same database, "All"
selected), macros are expanded by :mod:`tests.grafana.grafana_sql`, and each result is checked
for the shape Grafana needs: time-series results have a ``time`` column, ascending, with one
row per (time, series labels) and numeric values.
"""

import glob
import os
import shutil
import subprocess
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from db import StrategyName
from tests.grafana.artefacts import (
    DASHBOARD_FILES,
    DATASOURCES_YAML,
    READER_SQL,
    Json,
    Query,
    load_dashboard,
    load_yaml,
    panel_queries,
    variables,
)
from tests.grafana.grafana_sql import QueryContext, Variable, parse_interval, render
from tests.grafana.seed import SEED_FROM, SEED_TO, seed

pytestmark = pytest.mark.db

READER_PASSWORD = "reader-test-password"
# Grafana picks about one point per pixel; 1000 is a wide panel.
MAX_DATA_POINTS = 1000


def _min_interval() -> timedelta:
    ds = load_yaml(DATASOURCES_YAML)["datasources"][0]
    return parse_interval(str(ds["jsonData"]["timeInterval"]))


def _context(q: Query, *, timescaledb: bool) -> QueryContext:
    start, end = SEED_FROM, SEED_TO
    if q.time_from:  # panel relative-time override: the last N before "now" (= the range end)
        start = end - parse_interval(q.time_from)
    floor = parse_interval(q.interval) if q.interval else _min_interval()
    return QueryContext(start, end, max(floor, (end - start) / MAX_DATA_POINTS), timescaledb)


def _resolve_variables(
    conn: psycopg.Connection[tuple[object, ...]], board: Json
) -> dict[str, Variable]:
    ctx = QueryContext(SEED_FROM, SEED_TO, _min_interval())
    resolved: dict[str, Variable] = {}
    for var in variables(board):
        if var["type"] == "query":
            cur = conn.execute(render(var["query"], ctx, resolved))
            names = [c.name for c in cur.description or []]
            col = names.index("__value") if "__value" in names else 0
            values = tuple(str(row[col]) for row in cur.fetchall())
        else:
            assert var["type"] == "custom", var
            values = tuple(v.strip() for v in str(var["query"]).split(","))
        assert values, f"{board['uid']}: variable {var['name']} is empty on the seeded city"
        resolved[var["name"]] = Variable(values, bool(var["multi"] or var["includeAll"]))
    return resolved


def _epoch(value: object) -> float:
    if isinstance(value, datetime):
        return value.timestamp()
    assert isinstance(value, int | float | Decimal), f"time column holds {value!r}"
    return float(value)


def _check_time_series(q: Query, names: list[str], rows: list[tuple[object, ...]]) -> None:
    assert "time" in names, f"{q.where}: no 'time' column in {names}"
    t = names.index("time")
    times = [_epoch(r[t]) for r in rows]
    assert times == sorted(times), f"{q.where}: rows are not ordered by time"
    labels = [i for i in range(len(names)) if i != t and isinstance(rows[0][i], str)]
    keys = [(times[n], *(r[i] for i in labels)) for n, r in enumerate(rows)]
    assert len(keys) == len(set(keys)), f"{q.where}: several rows per time and series"
    for r in rows:
        for i, v in enumerate(r):
            if i != t and i not in labels:
                assert v is None or isinstance(v, int | float | Decimal), f"{q.where}: {v!r}"


def _run_board(url: str, name: str, *, timescaledb: bool = False) -> int:
    board = load_dashboard(name)
    count = 0
    with psycopg.connect(url, autocommit=True) as conn:
        resolved = _resolve_variables(conn, board)
        for q in panel_queries(board):
            sql = render(q.sql, _context(q, timescaledb=timescaledb), resolved)
            try:
                cur = conn.execute(sql)
            except psycopg.Error as exc:
                pytest.fail(f"{q.where}: {exc}\n{sql}")
            rows = cur.fetchall()
            names = [c.name for c in cur.description or []]
            assert rows, f"{q.where}: no rows on the seeded city\n{sql}"
            if q.fmt == "time_series":
                _check_time_series(q, names, rows)
            count += 1
    return count


@pytest.fixture
def city_url(db_url: str, storage_strategy: StrategyName) -> str:
    """A migrated database holding the seeded city."""
    seed(db_url, storage_strategy)
    return db_url


@pytest.mark.parametrize("name", DASHBOARD_FILES)
def test_every_query_runs(city_url: str, name: str) -> None:
    assert _run_board(city_url, name) == len(list(panel_queries(load_dashboard(name))))


@pytest.mark.parametrize("name", DASHBOARD_FILES)
def test_every_query_runs_with_timescaledb_macros(
    city_url: str, name: str, storage_strategy: StrategyName
) -> None:
    # $__timeGroup becomes time_bucket() with the datasource's timescaledb flag (production);
    # on plain PostgreSQL a stand-in with TimescaleDB's signature checks that the expanded
    # SQL is valid; on TimescaleDB the real function runs.
    if storage_strategy == "plain":
        with psycopg.connect(city_url, autocommit=True) as conn:
            conn.execute(
                "CREATE FUNCTION time_bucket(bucket_width interval, ts timestamptz)"
                " RETURNS timestamptz LANGUAGE sql IMMUTABLE"
                " AS $$ SELECT date_bin(bucket_width, ts, timestamptz '2000-01-03') $$"
            )
    assert _run_board(city_url, name, timescaledb=True) > 0


def _psql() -> str:
    found = shutil.which("psql") or next(
        iter(sorted(glob.glob("/usr/lib/postgresql/*/bin/psql"), reverse=True)), None
    )
    assert found, "psql (PostgreSQL client >= 15) is needed to run the Grafana role script"
    return found


def _apply_reader_script(url: str, password: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "GRAFANA_DB_PASSWORD"}
    if password is not None:
        env["GRAFANA_DB_PASSWORD"] = password
    return subprocess.run(
        [_psql(), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url, "-f", str(READER_SQL)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _as_reader(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    netloc = f"grafana_reader:{READER_PASSWORD}@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


@pytest.fixture
def reader_url(city_url: str) -> str:
    """The seeded database as Grafana's read-only role sees it."""
    done = _apply_reader_script(city_url, READER_PASSWORD)
    assert done.returncode == 0, done.stderr
    return _as_reader(city_url)


def test_grafana_reader_runs_every_query(reader_url: str) -> None:
    expected = sum(len(list(panel_queries(load_dashboard(n)))) for n in DASHBOARD_FILES)
    assert sum(_run_board(reader_url, name) for name in DASHBOARD_FILES) == expected


def test_grafana_reader_is_read_only(city_url: str, reader_url: str) -> None:
    with psycopg.connect(city_url, autocommit=True) as owner:
        # default privileges: tables created later (by the next migration) are readable too
        owner.execute("CREATE TABLE later_table (x int)")
    with psycopg.connect(reader_url, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM later_table").fetchone() == (0,)
        assert conn.execute("SHOW statement_timeout").fetchone() == ("30s",)
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            conn.execute("INSERT INTO later_table VALUES (1)")
        conn.execute("SET default_transaction_read_only = off")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("DELETE FROM alerts")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("CREATE TABLE mine (x int)")


def test_reader_script_is_idempotent_and_needs_a_password(city_url: str) -> None:
    first = _apply_reader_script(city_url, READER_PASSWORD)
    again = _apply_reader_script(city_url, READER_PASSWORD)
    assert first.returncode == again.returncode == 0, first.stderr + again.stderr
    missing = _apply_reader_script(city_url, None)
    assert missing.returncode != 0
    assert "GRAFANA_DB_PASSWORD" in missing.stderr


def test_reader_script_path_is_the_compose_mount() -> None:
    assert Path(READER_SQL).is_file()
