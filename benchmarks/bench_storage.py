"""Storage on a month of simulated city data: plain PostgreSQL against TimescaleDB, same run.

Run::

    HANOI_BENCH_TIMESCALE_URL=postgresql://postgres@127.0.0.1:5440/postgres \
    .venv/bin/python benchmarks/bench_storage.py [--days 30] [--stations 76] [--runs 3]

Both URLs are administrative: the run creates a fresh database on each server
(``hanoi_bench_<strategy>_<hex>``), migrates it with our own migrations forced to that
strategy (:func:`db.upgrade`) and drops it at the end (``--keep`` keeps it). The plain one
defaults to the local server on 5432; without a TimescaleDB URL (``--timescale-url`` or
``HANOI_BENCH_TIMESCALE_URL``) only plain PostgreSQL is measured and the run says so.

Data: the simulator's own fleet (:func:`simulators.fleet.hanoi_fleet`, the 76 stations and
330 sensors ``hanoi-ioc up`` runs; ``--stations N`` keeps the first N) with its signal models
(weather, air, water, rain, flood, traffic) at each sensor's reporting interval (60 s; the lake
buoys 300 s), ending now, day by day in numpy, written with binary ``COPY`` straight into
``readings`` (no MQTT and not the ingest path: ``bench_ingest.py`` measures that). The same
rows go to both databases. Then, on each:

1. **aggregates**: the rollups / continuous aggregates materialised over the whole month
   (what the policies would have done as the month went by), timed;
2. **size on disk**: ``readings`` with its indexes and every partition or chunk, and each
   aggregate; on TimescaleDB before and after the columnstore policy's job, which is timed;
3. **queries**: every Grafana panel query that reads readings (``grafana/dashboards``, macros
   expanded as Grafana does, template variables resolved by their own SQL with "All"
   selected) over the dashboards' default range and 24 h (``--ranges``), and ``/api/history``
   (:func:`ops_api.history.fetch_history`) on each of its plans; one warm-up, then
   ``--runs`` runs each, alternating the two databases; median and p95 (nearest rank);
4. **upkeep**: one upkeep round after a minute of new readings (plain:
   ``hanoi_refresh_rollups()``; TimescaleDB: the two aggregate policy jobs), the retention
   job, and dropping the oldest day.

The background scheduler's jobs are paused in the bench database so that nothing runs
behind the measurements; each policy job is run by hand (``CALL run_job``) where it is timed.
Times are wall-clock on a shared machine; the ratio column (TimescaleDB / plain) is the
figure to read.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import re
import statistics
import sys
import time
import uuid
import zlib
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final, Literal
from urllib.parse import urlsplit, urlunsplit

import numpy as np
import numpy.typing as npt
import psycopg

REPO: Final = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # the Grafana query helpers live with the tests
    sys.path.insert(0, str(REPO))

from contract import Registry, Station  # noqa: E402
from db import Conn, StrategyName, load_registry, register_stations, upgrade  # noqa: E402
from ops_api.history import fetch_history, plan_history  # noqa: E402
from ops_api.queries import SensorRow, find_sensor  # noqa: E402
from simulators.fleet import hanoi_fleet  # noqa: E402
from simulators.signals.weather import CityWeather  # noqa: E402
from simulators.stations import CityFrame, StationSim, make_station_sim  # noqa: E402
from tests.grafana.artefacts import (  # noqa: E402
    DASHBOARD_FILES,
    Json,
    Query,
    load_dashboard,
    panel_queries,
    variables,
)
from tests.grafana.grafana_sql import QueryContext, Variable, parse_interval, render  # noqa: E402

Strategy = Literal["plain", "timescale"]
STEP_S: Final = 60.0
DAY_S: Final = 86400
PG_EPOCH_S: Final = 946_684_800  # 2000-01-01 UTC, the origin of PostgreSQL's timestamps
MAX_DATA_POINTS: Final = 1000  # Grafana: about one point per pixel of a wide panel
MIN_INTERVAL: Final = timedelta(seconds=10)  # the datasource's timeInterval
HISTORY_POINTS: Final = 500  # the API's default max_points
READS_READINGS: Final = re.compile(r"\b(readings|readings_1m|readings_1h|latest_readings)\b")

# One row of PostgreSQL's binary COPY: a field count, then (length, value) per column.
ROW: Final = np.dtype(
    [
        ("nfields", ">i2"),
        ("len_time", ">i4"),
        ("time", ">i8"),
        ("len_sensor", ">i4"),
        ("sensor", ">i4"),
        ("len_value", ">i4"),
        ("value", ">f8"),
        ("len_quality", ">i4"),
        ("quality", ">i2"),
        ("len_received", ">i4"),
        ("received", ">i8"),
    ]
)
COPY_HEADER: Final = b"PGCOPY\n\xff\r\n\x00" + b"\x00" * 8
COPY_TRAILER: Final = b"\xff\xff"
COPY_SQL: Final = (
    "COPY readings (time, sensor_id, value, quality, received_at) FROM STDIN (FORMAT BINARY)"
)


# -- data --------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Sim:
    station: Station
    sim: StationSim
    rng: np.random.Generator
    keys: list[int]
    interval_s: float
    phase_s: float


class CityData:
    """The fleet's readings, one day at a time, as binary COPY buffers."""

    def __init__(self, fleet: Sequence[Station], registry: Registry, start_s: float, seed: int):
        city = hanoi_fleet()
        self._gauges = tuple(s.station_id for s in city if s.kind == "rain_gauge")
        self._start_s = start_s
        self._weather = CityWeather(self._gauges, _rng(seed, "city"), STEP_S, "seasonal")
        self._sims = []
        for st in fleet:
            interval = st.sensors[0].interval_s
            self._sims.append(
                _Sim(
                    st,
                    make_station_sim(st, _rng(seed, "signal", st.station_id), STEP_S),
                    _rng(seed, "noise", st.station_id),
                    [registry.keys[(st.station_id, s.quantity)] for s in st.sensors],
                    interval,
                    float(zlib.crc32(st.station_id.encode()) % int(interval)),
                )
            )
        self.rows = 0

    def day(self, t0: float, t1: float) -> bytes:
        """Every reading in ``[t0, t1)`` (unix seconds), as one binary COPY stream."""
        grid = t0 + STEP_S * np.arange(math.ceil((t1 - t0) / STEP_S), dtype=np.float64)
        frame = CityFrame(self._weather.frame(grid), self._start_s, STEP_S, self._gauges, ())
        parts: list[npt.NDArray[np.void]] = []
        for s in self._sims:
            first = math.ceil((t0 - s.phase_s) / s.interval_s) * s.interval_s + s.phase_s
            times = np.arange(first, t1, s.interval_s)
            if len(times) == 0:
                continue
            values, _ = s.sim.sample(s.rng, times, frame)
            for key, sensor in zip(s.keys, s.station.sensors, strict=True):
                parts.append(_rows(times, key, values[sensor.quantity]))
        # joined as bytes: np.concatenate would promote the fields to native byte order
        self.rows += sum(len(p) for p in parts)
        return b"".join([COPY_HEADER, *(p.tobytes() for p in parts), COPY_TRAILER])


def _rng(seed: int, purpose: str, key: str = "") -> np.random.Generator:
    return np.random.default_rng(
        np.random.SeedSequence([seed, zlib.crc32(purpose.encode()), zlib.crc32(key.encode())])
    )


def _rows(
    times: npt.NDArray[np.float64], key: int, values: npt.NDArray[np.float64]
) -> npt.NDArray[np.void]:
    ok = np.isfinite(values)
    n = int(ok.sum())
    out = np.empty(n, dtype=ROW)
    micros = np.round((times[ok] - PG_EPOCH_S) * 1e6).astype(np.int64)
    out["nfields"] = 5
    out["len_time"] = out["len_received"] = out["len_value"] = 8
    out["len_sensor"] = 4
    out["len_quality"] = 2
    out["time"] = micros
    out["sensor"] = key
    out["value"] = values[ok]
    out["quality"] = 0
    out["received"] = micros + 1_500_000  # stored 1.5 s after the reading was taken
    return out


# -- one database ------------------------------------------------------------------------------


def _with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


@dataclass(slots=True)
class Store:
    """One benchmark database and what was measured on it."""

    strategy: Strategy
    admin_url: str
    name: str = field(default_factory=lambda: f"hanoi_bench_{uuid.uuid4().hex[:8]}")
    conn: Conn | None = None
    figures: dict[str, float] = field(default_factory=dict)
    samples: dict[str, list[float]] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return _with_database(self.admin_url, self.name)

    @property
    def c(self) -> Conn:
        if self.conn is None:
            msg = f"{self.name} is not open"
            raise RuntimeError(msg)
        return self.conn

    async def create(self) -> None:
        self.name = f"hanoi_bench_{self.strategy}_{uuid.uuid4().hex[:8]}"
        async with await psycopg.AsyncConnection.connect(self.admin_url, autocommit=True) as a:
            await a.execute(f'CREATE DATABASE "{self.name}"')
        forced: StrategyName = self.strategy
        strategy, _ = await upgrade(self.url, forced)
        if strategy != self.strategy:
            msg = f"{self.name} was migrated as {strategy}, not {self.strategy}"
            raise RuntimeError(msg)
        self.conn = await psycopg.AsyncConnection.connect(self.url, autocommit=True)
        if self.strategy == "timescale":
            await self.c.execute(
                "SELECT alter_job(job_id, scheduled => false) FROM timescaledb_information.jobs "
                "WHERE job_id >= 1000"
            )

    async def drop(self) -> None:
        if self.conn is not None:
            await self.conn.close()
        async with await psycopg.AsyncConnection.connect(self.admin_url, autocommit=True) as a:
            await a.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')

    async def timed(self, key: str, sql: str, params: Sequence[object] = ()) -> float:
        """Run one statement; record and return its wall time."""
        t0 = time.perf_counter()
        await self.c.execute(sql, params)
        took = time.perf_counter() - t0
        self.figures[key] = self.figures.get(key, 0.0) + took
        _log(f"{self.strategy}: {key} += {took:.2f} s")
        return took

    async def value(self, sql: str, params: Sequence[object] = ()) -> float:
        cur = await self.c.execute(sql, params)
        row = await cur.fetchone()
        return float(row[0]) if row and row[0] is not None else 0.0

    async def copy_day(self, day: datetime, data: bytes) -> None:
        t0 = time.perf_counter()
        if self.strategy == "plain":
            await self.c.execute("SELECT hanoi_ensure_partitions(%s, %s)", (day.date(), day.date()))
        async with self.c.cursor() as cur, cur.copy(COPY_SQL) as copy:
            await copy.write(data)
        self.figures["load_s"] = self.figures.get("load_s", 0.0) + time.perf_counter() - t0

    async def jobs(self) -> dict[str, int]:
        """Policy job ids by role: compression, retention, refresh_1m, refresh_1h, retention_1m."""
        cur = await self.c.execute(
            """SELECT j.job_id, j.proc_name, coalesce(ca.view_name, j.hypertable_name)
               FROM timescaledb_information.jobs j
               LEFT JOIN timescaledb_information.continuous_aggregates ca
                 ON ca.materialization_hypertable_name = j.hypertable_name
               WHERE j.job_id >= 1000"""
        )
        out: dict[str, int] = {}
        for job_id, proc, table in await cur.fetchall():
            role = {
                "policy_compression": "compression",
                "policy_retention": "retention",
                "policy_refresh_continuous_aggregate": "refresh",
            }.get(str(proc), str(proc))
            suffix = {"readings_1m": "_1m", "readings_1h": "_1h"}.get(str(table), "")
            out[role + suffix] = int(job_id)
        return out

    async def run_job(self, key: str, job: str) -> None:
        await self.timed(key, "CALL run_job(%s)", ((await self.jobs())[job],))


# -- measurements ------------------------------------------------------------------------------


async def sizes(store: Store, when: str) -> None:
    """Bytes on disk of readings (all partitions/chunks, with indexes) and of the aggregates."""
    f = store.figures
    if store.strategy == "plain":
        f[f"size_readings_{when}"] = await store.value(
            "SELECT sum(pg_total_relation_size(relid)) FROM pg_partition_tree('readings')"
        )
        for agg in ("1m", "1h"):
            f[f"size_readings_{agg}_{when}"] = await store.value(
                f"SELECT pg_total_relation_size('readings_{agg}_rollup')"
            )
    else:
        f[f"size_readings_{when}"] = await store.value("SELECT hypertable_size('readings')")
        for agg in ("1m", "1h"):
            f[f"size_readings_{agg}_{when}"] = await store.value(
                """SELECT hypertable_size(format('%%I.%%I', materialization_hypertable_schema,
                                                 materialization_hypertable_name)::regclass)
                   FROM timescaledb_information.continuous_aggregates WHERE view_name = %s""",
                (f"readings_{agg}",),
            )
    f[f"size_database_{when}"] = await store.value("SELECT pg_database_size(current_database())")
    _log(
        f"{store.strategy} sizes {when}: "
        + ", ".join(
            f"{k} {_mib(v)}" for k, v in f.items() if k.startswith("size_") and k.endswith(when)
        )
    )


async def materialise(store: Store, days: Sequence[datetime]) -> None:
    """The aggregates over the whole month, as the upkeep and the policies would have kept them.

    Plain PostgreSQL's rollups are refreshed one day at a time, in time order, as ingest's
    upkeep would have done it: one refresh over the whole month would leave the rollup
    tables in hash order (no correlation between bucket and position on disk), and every
    range query would then read most of the table.
    """
    if store.strategy == "plain":
        for day in [*days[1:], None]:
            until = "interval '1 minute'" if day is None else "now() - %s::timestamptz"
            await store.timed(
                "aggregates_s",
                f"SELECT hanoi_refresh_rollups({until})",
                () if day is None else (day,),
            )
        return
    for view in ("readings_1m", "readings_1h"):
        await store.timed(
            "aggregates_s",
            f"CALL refresh_continuous_aggregate('{view}', NULL, now() - interval '1 minute')",
        )


async def analyse(store: Store) -> None:
    """Fresh planner statistics after the load (autovacuum would get there later)."""
    await store.c.execute("VACUUM (ANALYZE) readings")
    if store.strategy == "plain":
        await store.c.execute("VACUUM (ANALYZE) readings_1m_rollup, readings_1h_rollup")


async def fill_latest(store: Store) -> None:
    """The latest-value table ingest keeps (the "current" panels read it)."""
    await store.c.execute(
        """INSERT INTO latest (sensor_id, time, value, quality, received_at)
           SELECT DISTINCT ON (sensor_id) sensor_id, time, value, quality, received_at
           FROM readings WHERE time > now() - interval '1 day'
           ORDER BY sensor_id, time DESC
           ON CONFLICT (sensor_id) DO UPDATE SET time = excluded.time, value = excluded.value"""
    )


@dataclass(frozen=True, slots=True)
class Probe:
    """One timed query: a dashboard panel over a range, or a history API call."""

    name: str
    run: Callable[[Store], Awaitable[int | None]]
    """Runs the query and returns the rows it returned (None: not applicable here)."""


def _grafana_probes(end: datetime, ranges: Sequence[tuple[str, timedelta | None]]) -> list[Probe]:
    probes: list[Probe] = []
    for file in DASHBOARD_FILES:
        board = load_dashboard(file)
        time_from = str(board.get("time", {}).get("from", "now-6h"))
        default = parse_interval(time_from.removeprefix("now-"))
        for q in panel_queries(board):
            if not READS_READINGS.search(q.sql):
                continue
            for label, span in ranges:
                width = span or default
                if q.time_from:  # the panel's own relative range wins
                    width = parse_interval(q.time_from)
                    if span is not None:
                        continue  # the same query as over the default range
                name = f"{board['uid'].removeprefix('hanoi-')} / {_title(q)} [{label}]"
                probes.append(Probe(name, _panel_runner(board, q, end - width, end)))
    return probes


def _title(q: Query) -> str:
    part = q.where.split(" / ")
    return part[2] if len(part) > 2 else q.where


def _panel_runner(
    board: Json, q: Query, start: datetime, end: datetime
) -> Callable[[Store], Awaitable[int | None]]:
    floor = parse_interval(q.interval) if q.interval else MIN_INTERVAL
    interval = max(floor, (end - start) / MAX_DATA_POINTS)
    resolved: dict[str, dict[str, Variable]] = {}

    async def run(store: Store) -> int | None:
        ctx = QueryContext(start, end, interval, store.strategy == "timescale")
        if store.strategy not in resolved:
            resolved[store.strategy] = await _variables(store, board, ctx)
        if any(not v.values for v in resolved[store.strategy].values()):
            return None  # a variable with nothing to select (--stations left them out)
        cur = await store.c.execute(render(q.sql, ctx, resolved[store.strategy]))
        return len(await cur.fetchall())

    return run


async def _variables(store: Store, board: Json, ctx: QueryContext) -> dict[str, Variable]:
    out: dict[str, Variable] = {}
    for var in variables(board):
        if var["type"] == "query":
            cur = await store.c.execute(render(var["query"], ctx, out))
            names = [c.name for c in cur.description or []]
            col = names.index("__value") if "__value" in names else 0
            values = tuple(str(row[col]) for row in await cur.fetchall())
        else:
            values = tuple(v.strip() for v in str(var["query"]).split(","))
        out[var["name"]] = Variable(values, bool(var["multi"] or var["includeAll"]))
        if not values:
            break  # later variables may depend on this one
    return out


HISTORY_CASES: Final = (
    ("aq-hoan-kiem", "pm25", timedelta(hours=1)),
    ("aq-hoan-kiem", "pm25", timedelta(hours=24)),
    ("aq-hoan-kiem", "pm25", timedelta(days=7)),
    ("aq-hoan-kiem", "pm25", timedelta(days=30)),
    ("wl-buoy-trich-sai", "dissolved_oxygen", timedelta(days=7)),
)


def _history_probes(end: datetime, days: int) -> list[Probe]:
    probes = []
    for station, quantity, span in HISTORY_CASES:
        if span > timedelta(days=days):
            continue
        plan = plan_history(span.total_seconds(), HISTORY_POINTS, 60.0)
        label = f"{_span(span)}, {plan.source}{'' if plan.bucket_s else ' points'}"
        probes.append(
            Probe(
                f"/api/history {station}.{quantity} [{label}]",
                _history_runner(station, quantity, end - span, end),
            )
        )
    return probes


def _span(span: timedelta) -> str:
    hours = span.total_seconds() / 3600
    return f"{hours / 24:g} d" if hours >= 48 else f"{hours:g} h"


def _history_runner(
    station: str, quantity: str, start: datetime, end: datetime
) -> Callable[[Store], Awaitable[int | None]]:
    sensors: dict[str, SensorRow | None] = {}

    async def run(store: Store) -> int | None:
        if store.strategy not in sensors:
            sensors[store.strategy] = await find_sensor(store.c, station, quantity)
        sensor = sensors[store.strategy]
        if sensor is None:
            return None  # not in the fleet (--stations left it out)
        _, points = await fetch_history(store.c, sensor, start, end, HISTORY_POINTS)
        return len(points)

    return run


async def run_probes(
    stores: Sequence[Store], probes: Sequence[Probe], runs: int, timeout_s: float
) -> None:
    """Every probe: one warm-up, then ``runs`` timed runs, the databases alternating.

    A query that runs longer than ``timeout_s`` is cancelled and counted as timed out
    (infinite), and not run again on that database.
    """
    for store in stores:
        await store.c.execute(f"SET statement_timeout = {round(timeout_s * 1000)}")
    for i, probe in enumerate(probes, 1):
        warm = [await _attempt(store, probe) for store in stores]
        if None in warm:
            continue
        for store, rows in zip(stores, warm, strict=True):
            if rows == TIMED_OUT:  # not run again: it would time out again
                store.samples[probe.name] = [math.inf]
        for _ in range(runs):
            for store in stores:
                samples = store.samples.setdefault(probe.name, [])
                if samples and math.isinf(samples[-1]):
                    continue
                t0 = time.perf_counter()
                rows = await _attempt(store, probe)
                took = time.perf_counter() - t0
                samples.append(math.inf if rows == TIMED_OUT else took)
                if rows is not None and rows >= 0:
                    store.figures[f"rows {probe.name}"] = rows
        medians = ", ".join(
            f"{s.strategy} {_secs(statistics.median(s.samples[probe.name]))}" for s in stores
        )
        _log(f"{i}/{len(probes)} {probe.name}: {medians}")


TIMED_OUT: Final = -1


async def _attempt(store: Store, probe: Probe) -> int | None:
    try:
        return await probe.run(store)
    except psycopg.errors.QueryCanceled:
        return TIMED_OUT


async def upkeep(store: Store, data: CityData, end: datetime, first_day: datetime) -> None:
    """One upkeep round after a minute of new data; the retention job; the oldest day dropped."""
    await store.copy_day(end, data.day(end.timestamp(), end.timestamp() + 60))
    if store.strategy == "plain":
        await store.timed("upkeep_refresh_s", "SELECT hanoi_refresh_rollups()")
        await store.timed(
            "retention_job_s",
            "SELECT hanoi_drop_partitions(%s::date)",
            (first_day - timedelta(days=1),),
        )
        await store.timed(
            "drop_oldest_day_s",
            "SELECT hanoi_drop_partitions(%s::date)",
            (first_day + timedelta(days=1),),
        )
        return
    await store.run_job("upkeep_refresh_s", "refresh_1m")
    await store.run_job("upkeep_refresh_s", "refresh_1h")
    await store.run_job("retention_job_s", "retention")
    await store.timed(
        "drop_oldest_day_s",
        "SELECT drop_chunks('readings', older_than => %s::timestamptz)",
        (first_day + timedelta(days=1),),
    )


# -- the run -----------------------------------------------------------------------------------


def _pct(samples: Sequence[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def _mib(n: float) -> str:
    return f"{n / 2**20:,.1f} MiB"


def _secs(s: float) -> str:
    if math.isinf(s):
        return "timed out"
    return f"{s:,.2f} s" if s >= 1 else f"{s * 1000:,.1f} ms"


def _n(rows: int) -> str:
    return f"[{rows}]" if rows >= 0 else ""


def _ratio(a: float | None, b: float | None) -> str:
    if a is None or b is None or b == 0:
        return "–"
    return f"{a / b:.2f}"


def report(stores: Sequence[Store], args: argparse.Namespace, rows: int, gen_s: float) -> str:
    plain = next(s for s in stores if s.strategy == "plain")
    ts = next((s for s in stores if s.strategy == "timescale"), None)
    out = [
        f"# bench_storage: {args.days} days × {args.stations} stations, {rows:,} readings "
        f"(generated in {gen_s:.1f} s), {args.runs} runs per query",
        "",
        "| figure | plain PostgreSQL | TimescaleDB | TimescaleDB / plain |",
        "|---|---:|---:|---:|",
    ]

    def line(label: str, key: str, fmt: Callable[[float], str], ts_key: str | None = None) -> None:
        a = plain.figures.get(key)
        b = ts.figures.get(ts_key or key) if ts else None
        out.append(
            f"| {label} | {fmt(a) if a is not None else '–'} | "
            f"{fmt(b) if b is not None else '–'} | {_ratio(b, a)} |"
        )

    line("load (binary COPY into readings)", "load_s", _secs)
    line("aggregates materialised over the period", "aggregates_s", _secs)
    line("readings, with indexes and chunks (uncompressed)", "size_readings_loaded", _mib)
    line("readings after the columnstore policy", "size_readings_final", _mib)
    line("columnstore policy job (compress chunks > 7 days)", "compression_s", _secs)
    line("compressed chunks: before", "compressed_before", _mib)
    line("compressed chunks: after", "compressed_after", _mib)
    line("readings_1m aggregate", "size_readings_1m_loaded", _mib)
    line("readings_1h aggregate", "size_readings_1h_loaded", _mib)
    line("whole database (after compression)", "size_database_final", _mib)
    line("upkeep round after 1 min of new data (aggregate refresh)", "upkeep_refresh_s", _secs)
    line("retention job (nothing past retention)", "retention_job_s", _secs)
    line("drop the oldest day", "drop_oldest_day_s", _secs)
    out += [
        "",
        "Query times, median / p95 (nearest rank) of the timed runs; rows returned in brackets.",
        "",
        "| query | plain median | plain p95 | TimescaleDB median | TimescaleDB p95 | "
        "TimescaleDB / plain (median) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    ratios = []
    for name, samples in plain.samples.items():
        pm, pp = statistics.median(samples), _pct(samples, 0.95)
        rows_p = int(plain.figures.get(f"rows {name}", -1))
        if ts and name in ts.samples:
            tm, tp = statistics.median(ts.samples[name]), _pct(ts.samples[name], 0.95)
            rows_t = int(ts.figures.get(f"rows {name}", -1))
            if math.isfinite(tm) and math.isfinite(pm):
                ratios.append(tm / pm)
            out.append(
                f"| {name} | {_secs(pm)} {_n(rows_p)} | {_secs(pp)} | {_secs(tm)} {_n(rows_t)} | "
                f"{_secs(tp)} | {tm / pm:.2f} |"
            )
        else:
            out.append(f"| {name} | {_secs(pm)} {_n(rows_p)} | {_secs(pp)} | – | – | – |")
    if ratios:
        geo = math.exp(statistics.fmean(math.log(r) for r in ratios))
        out += ["", f"Geometric mean of the median ratios over {len(ratios)} queries: {geo:.2f}"]
    return "\n".join(out)


async def bench(args: argparse.Namespace) -> int:
    stores = [Store("plain", args.plain_url)]
    if args.timescale_url:
        stores.append(Store("timescale", args.timescale_url))
    else:
        print(
            "no TimescaleDB server (--timescale-url or HANOI_BENCH_TIMESCALE_URL): "
            "measuring plain PostgreSQL only",
            file=sys.stderr,
        )
    fleet = hanoi_fleet()[: args.stations]
    end = datetime.now(UTC).replace(second=0, microsecond=0)
    first_day = (end - timedelta(days=args.days)).replace(hour=0, minute=0)
    start = end - timedelta(days=args.days)
    try:
        for store in stores:
            await store.create()
            await register_stations(store.c, fleet)
        registry = await load_registry(stores[0].c)
        for store in stores[1:]:
            other = await load_registry(store.c)
            if other.keys != registry.keys:
                msg = "the two databases numbered the sensors differently"
                raise RuntimeError(msg)
        data = CityData(fleet, registry, start.timestamp(), args.seed)
        gen_s = 0.0
        for day_start, day_end in _days(start, end):
            t0 = time.perf_counter()
            buf = data.day(day_start.timestamp(), day_end.timestamp())
            gen_s += time.perf_counter() - t0
            for store in stores:
                await store.copy_day(day_start, buf)
            if day_start.day % 5 == 0 and day_start.hour == 0:
                _log(f"loaded up to {day_start:%Y-%m-%d}: {data.rows:,} readings")
        _log(f"loaded {data.rows:,} readings")
        for store in stores:
            await fill_latest(store)
            await materialise(store, [d for d, _ in _days(start, end)])
            await analyse(store)
            await sizes(store, "loaded")
            _log(f"{store.strategy}: aggregates and sizes done")
        for store in stores:
            if store.strategy == "timescale":
                await store.run_job("compression_s", "compression")
                await store.c.execute("ANALYZE readings")
                cur = await store.c.execute(
                    "SELECT count(*), sum(before_compression_total_bytes), "
                    "sum(after_compression_total_bytes) FROM chunk_compression_stats('readings') "
                    "WHERE compression_status = 'Compressed'"
                )
                row = await cur.fetchone()
                if row and row[0]:
                    n, before, after = int(row[0]), float(row[1]), float(row[2])
                    store.figures["compressed_chunks"] = n
                    store.figures["compressed_before"] = before
                    store.figures["compressed_after"] = after
                    _log(f"{n} chunks compressed: {_mib(before)} -> {_mib(after)}")
            await sizes(store, "final")
        probes = _grafana_probes(end, _ranges(args.ranges, args.days)) + _history_probes(
            end, args.days
        )
        _log(f"timing {len(probes)} queries × {args.runs} runs")
        await run_probes(stores, probes, args.runs, args.timeout_s)
        for store in stores:
            await upkeep(store, data, end, first_day)
        print(report(stores, args, data.rows, gen_s))
    finally:
        for store in stores:
            if args.keep:
                _log(f"kept {store.url}")
            else:
                await store.drop()
    return 0


def _ranges(text: str, days: int) -> list[tuple[str, timedelta | None]]:
    """``default,24h,7d`` -> labelled ranges (None: the dashboard's own default range)."""
    out: list[tuple[str, timedelta | None]] = []
    for item in (x.strip() for x in text.split(",") if x.strip()):
        if item == "default":
            out.append(("default range", None))
        elif parse_interval(item) <= timedelta(days=days):
            out.append((item, parse_interval(item)))
    return out


def _days(start: datetime, end: datetime) -> Iterator[tuple[datetime, datetime]]:
    day = start
    while day < end:
        nxt = min(end, (day + timedelta(days=1)).replace(hour=0, minute=0))
        yield day, nxt
        day = nxt


def _log(msg: str) -> None:
    print(f"[{datetime.now(UTC):%H:%M:%S}] {msg}", file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--days", type=int, default=30, help="days of data, ending now")
    parser.add_argument(
        "--stations", type=int, default=len(hanoi_fleet()), help="the first N stations of the fleet"
    )
    parser.add_argument("--runs", type=int, default=3, help="timed runs per query")
    parser.add_argument(
        "--ranges",
        default="default,24h",
        help="Grafana time ranges, comma-separated: default (the dashboard's), 24h, 7d, …",
    )
    parser.add_argument(
        "--timeout-s", type=float, default=10.0, help="a query running longer is cancelled"
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--plain-url",
        default=os.environ.get(
            "HANOI_BENCH_PLAIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
        help="administrative URL of a plain PostgreSQL server (HANOI_BENCH_PLAIN_URL)",
    )
    parser.add_argument(
        "--timescale-url",
        default=os.environ.get("HANOI_BENCH_TIMESCALE_URL"),
        help="administrative URL of a TimescaleDB server (HANOI_BENCH_TIMESCALE_URL)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the bench databases")
    args = parser.parse_args(argv)
    if args.days < 1 or args.stations < 1 or args.runs < 1:
        parser.error("--days, --stations and --runs must be at least 1")
    return asyncio.run(bench(args))


if __name__ == "__main__":
    sys.exit(main())
