"""Ingest throughput, publish-to-commit latency and memory, from a real broker into PostgreSQL.

Run: ``.venv/bin/python benchmarks/bench_ingest.py [--seconds 20] [--shape station|gateway|both]``

Everything is private to the run: a durable PostgreSQL (fsync and synchronous commit on,
``track_commit_timestamp`` on, so every row's commit time is known) and a Mosquitto with the
project's configuration, both in a temporary directory. 1200 synthetic air stations with 8
sensors each are registered. Per message shape:

1. **baseline**: ``ingest.writer.Writer.write`` alone on pre-built batches of the size the
   ingestor writes (COPY into staging, ``INSERT … ON CONFLICT DO NOTHING``, latest upsert),
   rows/s. This is the base of the ratio, measured in the same run.
2. **throughput**: a load generator in a separate process publishes QoS 1 flat out for
   ``--seconds``; the ingestor runs as ``python -m ingest``. Sustained readings/s = rows
   stored / (first publish → last commit), so a broker backlog drained after the publisher
   stopped counts against the figure. Lost = published (PUBACKed) − stored; must be 0.
3. **latency**: the same at a paced offered rate (``--latency-rate``, default 80 % of the
   throughput just measured, capped at the target), so the percentiles show the pipeline's
   own delay rather than the length of a backlog. Payload time = publish time; latency =
   commit timestamp − payload time, per row.

Shapes: ``station`` = one station sample per message (8 readings, plain JSON); ``gateway`` =
a SenML pack of 12 stations × 8 readings (96). Peak memory is the ingestor's VmHWM. CPU is
per process over the window; "other" is the rest of the machine's busy CPU (other jobs).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import sys
import tempfile
import time
import timeit
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import msgspec
import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion
from psycopg_pool import AsyncConnectionPool

from contract import SENML_PREFIX, Domain, Quantity, Registry, Sensor, Station, StationId
from db import Conn, load_registry, register_stations, strategy_for, upgrade
from hanoi_ioc.bench.procstat import busy_cores_s, child_pids, cpu_s, peak_rss_mb
from hanoi_ioc.embedded import EmbeddedBroker, EmbeddedPostgres
from ingest.settings import IngestSettings
from ingest.writer import Writer, configure_connection
from stream.batcher import Batch
from stream.consumer import RawMessage
from stream.validate import Outcome, Validator

ROOT = "bench/v1"
QUANTITIES = (
    Quantity.PM25, Quantity.PM10, Quantity.NO2, Quantity.SO2, Quantity.CO, Quantity.O3,
    Quantity.AIR_TEMPERATURE, Quantity.RELATIVE_HUMIDITY,
)  # fmt: skip
UNITS = ("ug/m3",) * 6 + ("Cel", "%RH")
STATIONS = 1200
PACK = 12  # stations per gateway pack: 96 readings
TARGETS = {"station": 50_000, "gateway": 150_000}


def station_id(i: int) -> str:
    return f"aq-bench-{i:04d}"


def readings_per_message(shape: str) -> int:
    return len(QUANTITIES) * (PACK if shape == "gateway" else 1)


def batch_readings(shape: str) -> int:
    """The size of the ingestor's full batches, from the same INGEST_* settings it reads."""
    settings = IngestSettings()
    per_message = readings_per_message(shape)
    in_flight = settings.write_concurrency + settings.write_queue_batches + 1  # as IngestService
    window = settings.receive_maximum // in_flight
    messages = min(window, -(-settings.batch_max_readings // per_message))
    return messages * per_message


# -- load generator (runs in its own process) ------------------------------------------------


def _stamp(us: int) -> str:
    return (
        time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(us // 1_000_000)) + f".{us % 1_000_000:06d}Z"
    )


def templates(shape: str) -> list[tuple[str, bytes, bytes]]:
    """(topic, payload before the time, payload after the time) per message source."""
    out = []
    if shape == "station":
        for i in range(STATIONS):
            body = ",".join(
                f'{{"quantity":"{q.value}","value":{20 + j}.5,"unit":"{u}"}}'
                for j, (q, u) in enumerate(zip(QUANTITIES, UNITS, strict=True))
            )
            head = f'{{"station":"{station_id(i)}","time":"'.encode()
            out.append(
                (f"{ROOT}/air/{station_id(i)}/telemetry", head, f'","readings":[{body}]}}'.encode())
            )
        return out
    for g in range(STATIONS // PACK):
        records = [
            f'{{"n":"{station_id(g * PACK + k)}:{q.value}","u":"{u}","v":{20 + j}.5}}'
            for k in range(PACK)
            for j, (q, u) in enumerate(zip(QUANTITIES, UNITS, strict=True))
        ]
        head = f'[{{"bn":"{SENML_PREFIX}","bt":'.encode()
        tail = ("}," + ",".join(records)).encode() + b"]"
        out.append((f"{ROOT}/air/gw-bench-{g:03d}/telemetry", head, tail))
    return out


def publish(
    port: int, shape: str, seconds: float, rate_msgs: float, window: int
) -> dict[str, float]:
    """Publish QoS 1 for ``seconds`` (flat out when ``rate_msgs`` is 0); wait for every PUBACK."""
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=f"bench-pub-{os.getpid()}", protocol=mqtt.MQTTv311
    )
    user, secret = os.environ["BENCH_MQTT_USER"], os.environ["BENCH_MQTT_PASSWORD_FILE"]
    client.username_pw_set(user, Path(secret).read_text().strip())
    client.max_inflight_messages_set(window)
    acked = [0]
    client.on_publish = lambda c, u, mid, rc, p: acked.__setitem__(0, acked[0] + 1)
    client.connect("127.0.0.1", port, keepalive=60)
    while not client.is_connected():
        client.loop(0.01)
    sources = templates(shape)
    last_us = [0] * len(sources)
    sent = 0
    started = time.time()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if rate_msgs and sent > (time.time() - started) * rate_msgs:
            client.loop(0.001)
            continue
        while sent - acked[0] >= window:
            client.loop(0.001)
        k = sent % len(sources)
        topic, head, tail = sources[k]
        us = max(int(time.time() * 1e6), last_us[k] + 2)
        last_us[k] = us
        stamp = _stamp(us).encode() if shape == "station" else f"{us / 1e6:.6f}".encode()
        client.publish(topic, head + stamp + tail, qos=1)
        sent += 1
        if sent % 16 == 0:
            client.loop(0)
    ended = time.time()
    limit = time.monotonic() + 120
    while acked[0] < sent and time.monotonic() < limit:
        client.loop(0.01)
    client.disconnect()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu = usage.ru_utime + usage.ru_stime
    return {"sent": sent, "acked": acked[0], "started": started, "ended": ended, "cpu_s": cpu}


# -- process accounting -----------------------------------------------------------------------


def pids_matching(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if text in (entry / "cmdline").read_bytes().decode(errors="replace"):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def postgres_pids(pg: EmbeddedPostgres) -> list[int]:
    master = int((pg.data_dir / "postmaster.pid").read_text().split()[0])
    return [master, *child_pids(master)]


@dataclass
class Cpu:
    """CPU seconds per process group over a window, sampled so short-lived processes count."""

    groups: dict[str, Callable[[], list[int]]]  # name -> the group's current pids
    seen: dict[int, tuple[str, float, float]] = field(default_factory=dict)
    busy0: float = 0.0

    def sample(self) -> None:
        for name, pids in self.groups.items():
            for pid in pids():
                used = cpu_s(pid)
                if used is None:
                    continue  # exited: keep its last sample
                first = self.seen.get(pid, (name, used if self.busy0 == 0.0 else 0.0, 0.0))[1]
                self.seen[pid] = (name, first, used)

    def begin(self) -> None:
        self.sample()
        self.busy0 = busy_cores_s()

    async def run(self) -> None:
        while True:
            await asyncio.sleep(0.25)
            self.sample()

    def end(self, wall_s: float, extra: dict[str, float]) -> dict[str, float]:
        self.sample()
        used = dict.fromkeys(self.groups, 0.0) | extra
        for name, first, last in self.seen.values():
            used[name] += last - first
        used["other"] = busy_cores_s() - self.busy0 - sum(used.values())
        return {n: round(100 * v / wall_s) for n, v in used.items()}


# -- the measurements ---------------------------------------------------------------------------


async def prepare(url: str) -> dict[tuple[str, Quantity], int]:
    await upgrade(url)
    stations = [
        Station(StationId(station_id(i)), Domain.AIR, f"Bench {i}", "Cầu Giấy", 21.0, 105.8,
                    "urban", tuple(Sensor(q, 1.0) for q in QUANTITIES))
        for i in range(STATIONS)
    ]  # fmt: skip
    async with await psycopg.AsyncConnection.connect(url) as conn:
        await register_stations(conn, stations)
        registry = await load_registry(conn)
    return dict(registry.keys)


async def truncate(url: str) -> None:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await conn.execute(
            "TRUNCATE readings, latest, quarantine, sensor_status, service_heartbeats"
        )
        await conn.execute("CHECKPOINT")


async def baseline(
    url: str, sensors: dict[tuple[str, Quantity], int], shape: str, seconds: float
) -> float:
    """Rows/s of Writer.write alone on batches shaped like the ingestor's."""
    per_message = readings_per_message(shape)
    size = batch_readings(shape)
    ids = list(sensors.values())
    now = datetime.now(UTC) - timedelta(hours=1)
    message = RawMessage("t", b"", 0, 1, now, 0)
    batches = []
    for b in range(int(seconds * 500_000 / size) + 5):  # more than can be written in `seconds`
        outcomes, rows = [], []
        for r in range(size):
            at = now + timedelta(microseconds=b * size + r)
            rows.append((at, ids[r % len(ids)], 20.5, 0, now))
            if len(rows) == per_message:
                outcomes.append(Outcome(message, tuple(rows)))
                rows = []
        batches.append(Batch(outcomes, size))
    pool: AsyncConnectionPool[Conn] = AsyncConnectionPool(
        url, min_size=1, max_size=1, configure=configure_connection, open=False
    )
    async with pool:
        writer = Writer(pool, strategy_for("plain"))
        await writer.write(batches[0])  # partitions, staging table, warm caches
        written, started = 0, time.perf_counter()
        for batch in batches[1:]:
            written += (await writer.write(batch)).stored
            if time.perf_counter() - started > seconds:
                break
        return written / (time.perf_counter() - started)


def decode_cost(sensors: dict[tuple[str, Quantity], int]) -> None:
    """CPU per reading of the ingestor's decode + validation, against msgspec's parse alone."""
    registry = Registry.of(
        [Station(StationId(station_id(i)), Domain.AIR, "b", "b", 21, 105, "u",
                 tuple(Sensor(q, 1.0) for q in QUANTITIES)) for i in range(STATIONS)],
        sensors,
    )  # fmt: skip
    validator, now = Validator(registry, root=ROOT), datetime.now(UTC)
    us = int(time.time() * 1e6)
    for shape in ("station", "gateway"):
        topic, head, tail = templates(shape)[0]
        stamp = _stamp(us) if shape == "station" else f"{us / 1e6:.6f}"
        raw = RawMessage(topic, head + stamp.encode() + tail, 1, 1, now, 1)
        n, per = 200, readings_per_message(shape)
        check, parse = partial(validator.check, raw), partial(msgspec.json.decode, raw.payload)
        full = min(timeit.repeat(check, number=n, repeat=5)) / n / per
        bare = min(timeit.repeat(parse, number=n, repeat=5)) / n / per
        print(f"[{shape}] decode + validate {full * 1e6:.2f} us/reading "
              f"(untyped msgspec parse alone {bare * 1e6:.2f})")  # fmt: skip


@dataclass
class Run:
    published: int
    stored: int
    rate: float
    p50_ms: float
    p99_ms: float
    rss_mb: float
    cpu: dict[str, float]
    stats: dict[str, object]


async def quiet(limit_cores: float = 0.3, patience_s: float = 30.0) -> float:
    """Wait (bounded) until the machine is nearly idle; returns the busy cores last seen."""
    deadline = time.monotonic() + patience_s
    while True:
        before = busy_cores_s()
        await asyncio.sleep(1.0)
        busy = busy_cores_s() - before
        if busy < limit_cores or time.monotonic() > deadline:
            return busy


@dataclass(frozen=True)
class Phase:
    shape: str
    seconds: float
    rate: float  # readings/s offered, 0 = flat out
    tmp: Path
    profile: bool = False


BENCH_USER = "hanoi-tester-bench"
"""The benchmark's publisher (a tester user: it writes every station's topic)."""


async def end_to_end(pg: EmbeddedPostgres, broker: EmbeddedBroker, phase: Phase) -> Run:
    await truncate(pg.url)
    idle = await quiet()
    if idle >= 0.3:
        print(f"  (machine still busy before the run: {idle:.2f} cores)")
    ingest_user = broker.credentials.issue_service("ingest", "bench")
    env = os.environ | {
        "DATABASE_URL": pg.url, "MQTT_URL": broker.url, "TOPIC_ROOT": ROOT,
        "INGEST_INSTANCE": "bench", "INGEST_HEARTBEAT_INTERVAL_S": "1",
        "INGEST_MQTT_PASSWORD_FILE": str(broker.credentials.secret_file(ingest_user)),
    }  # fmt: skip
    with (phase.tmp / f"ingest-{phase.shape}.log").open("ab") as log:
        ingest = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "ingest", env=env, stdout=log, stderr=log
        )
    try:
        await wait_heartbeat(pg.url)
        return await measure(pg, broker, phase, ingest.pid)
    finally:
        ingest.terminate()
        await ingest.wait()


async def measure(pg: EmbeddedPostgres, broker: EmbeddedBroker, phase: Phase, pid: int) -> Run:
    per_message = readings_per_message(phase.shape)
    publisher = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--role", "publish", "--port", str(broker.port),
        "--shape", phase.shape, "--seconds", str(phase.seconds),
        "--rate", str(phase.rate / per_message), stdout=asyncio.subprocess.PIPE,
        env=os.environ | {
            "BENCH_MQTT_USER": BENCH_USER,
            "BENCH_MQTT_PASSWORD_FILE": str(broker.credentials.secret_file(BENCH_USER)),
        },
    )  # fmt: skip
    broker_pids = pids_matching(str(broker.data_dir))
    cpu = Cpu({"ingest": lambda: [pid], "broker": lambda: broker_pids,
               "postgres": lambda: postgres_pids(pg)})  # fmt: skip
    cpu.begin()
    sampler = asyncio.create_task(cpu.run())
    spy = await profile(pid, phase) if phase.profile else None
    out, _ = await publisher.communicate()
    result = json.loads(out)
    published = int(result["acked"]) * per_message
    stored = await wait_stored(pg.url, published)
    sampler.cancel()
    if spy is not None:
        await spy.wait()
    usage = cpu.end(time.time() - result["started"], {"publisher": result["cpu_s"]})
    rss = peak_rss_mb(pid) or 0.0
    last_commit, p50, p99 = await commit_figures(pg.url)
    rate = stored / (last_commit - result["started"])
    return Run(published, stored, rate, p50, p99, rss, usage, await heartbeat(pg.url))


async def profile(pid: int, phase: Phase) -> asyncio.subprocess.Process:
    """Sample the ingestor with py-spy for the publishing time (collapsed stacks)."""
    out = phase.tmp / f"ingest-{phase.shape}-{int(phase.rate)}.txt"
    spy = Path(sys.executable).with_name("py-spy")
    return await asyncio.create_subprocess_exec(
        str(spy), "record", "-p", str(pid), "-d", str(int(phase.seconds)), "-r", "50",
        "-f", "raw", "-o", str(out), stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip


async def wait_heartbeat(url: str) -> None:
    for _ in range(300):
        if await heartbeat(url):
            return
        await asyncio.sleep(0.1)
    msg = "the ingestor did not start"
    raise RuntimeError(msg)


async def heartbeat(url: str) -> dict[str, object]:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        cur = await conn.execute("SELECT stats FROM service_heartbeats WHERE instance = 'bench'")
        row = await cur.fetchone()
    return dict(row[0]) if row else {}


async def wait_stored(url: str, expected: int, stall_s: float = 30.0) -> int:
    """Wait until ``expected`` rows are stored, or no progress for ``stall_s``.

    Polls the ingestor's heartbeat (a count(*) every fraction of a second would cost the
    database more than the ingest it measures), then counts once.
    """
    last, since = -1, time.monotonic()
    while True:
        stats = await heartbeat(url)
        done = int(str(stats.get("stored", 0))) + int(str(stats.get("duplicates", 0)))
        if done >= expected or time.monotonic() - since > stall_s:
            break
        if done != last:
            last, since = done, time.monotonic()
        await asyncio.sleep(0.5)
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        row = await (await conn.execute("SELECT count(*) FROM readings")).fetchone()
    return int(row[0]) if row else 0


async def commit_figures(url: str) -> tuple[float, float, float]:
    """Last commit (epoch s) and p50/p99 of commit time − payload time (ms), over all rows."""
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        cur = await conn.execute(
            """WITH lag AS (SELECT pg_xact_commit_timestamp(xmin) AS c, time FROM readings)
               SELECT extract(epoch FROM max(c)),
                      percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM c - time)),
                      percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM c - time))
               FROM lag"""
        )
        row = await cur.fetchone()
    if row is None or row[0] is None:
        msg = "nothing was stored"
        raise RuntimeError(msg)
    return float(row[0]), float(row[1]) * 1000, float(row[2]) * 1000


# -- main -------------------------------------------------------------------------------------


async def bench(args: argparse.Namespace) -> None:
    shapes = ["station", "gateway"] if args.shape == "both" else [args.shape]
    tmp = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    pg = EmbeddedPostgres(tmp / "pg", durable=True).start()
    broker = EmbeddedBroker(tmp / "mqtt")
    broker.credentials.issue(BENCH_USER, "tester")
    broker.credentials.issue_service("ingest", "bench")
    broker.start()
    try:
        with psycopg.connect(pg.url, autocommit=True) as conn:
            conn.execute("ALTER SYSTEM SET track_commit_timestamp = on")
        pg.stop()
        pg.start()
        sensors = await prepare(pg.url)
        print(f"machine: {os.cpu_count()} CPUs, {describe_machine()}; data in {tmp}")
        decode_cost(sensors)
        rows = []
        for shape in shapes:
            await truncate(pg.url)
            base = await baseline(pg.url, sensors, shape, args.baseline_seconds)
            size = batch_readings(shape)
            print(f"[{shape}] baseline Writer.write, {size:,}-row batches: {base:,.0f} rows/s")
            offered = args.rate if args.rate is not None else 1.5 * TARGETS[shape]
            flat = await end_to_end(
                pg, broker, Phase(shape, args.seconds, offered, tmp, args.profile)
            )
            label = f"offered {offered:,.0f}/s" if offered else "flat out"
            report(shape, label, base, flat)
            paced_rate = args.latency_rate or min(TARGETS[shape], 0.8 * flat.rate)
            paced = await end_to_end(
                pg, broker, Phase(shape, args.latency_seconds, paced_rate, tmp, args.profile)
            )
            report(shape, f"paced {paced_rate:,.0f}/s", base, paced)
            rows += [
                (shape, label, base, flat),
                (shape, f"paced {paced_rate:,.0f}/s", base, paced),
            ]
        print_table(rows)
    finally:
        broker.stop()
        pg.stop()
        if not (args.keep or args.profile):
            shutil.rmtree(tmp, ignore_errors=True)


def describe_machine() -> str:
    lines = Path("/proc/cpuinfo").read_text().splitlines()
    model = next((ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("model name")), "?")
    mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    return f"{model}, {mem_kb / 1024**2:.0f} GiB RAM"


def report(shape: str, phase: str, base: float, run: Run) -> None:
    print(f"[{shape}] {phase}: published {run.published:,} stored {run.stored:,} "
          f"rate {run.rate:,.0f}/s ratio {run.rate / base:.2f} p50 {run.p50_ms:,.0f} ms "
          f"p99 {run.p99_ms:,.0f} ms rss {run.rss_mb:.0f} MB cpu% {run.cpu} "
          f"paused={run.stats.get('mqtt_paused')} batches={run.stats.get('batches')}")  # fmt: skip


def print_table(rows: list[tuple[str, str, float, Run]]) -> None:
    head = ("shape", "phase", "baseline rows/s", "e2e readings/s", "ratio", "target", "p50 ms",
            "p99 ms", "peak RSS MB", "lost", "CPU % ingest/pub/broker/pg/other")  # fmt: skip
    print("\n| " + " | ".join(head) + " |\n|" + "---|" * len(head))
    for shape, phase, base, r in rows:
        cpu = "/".join(
            str(int(r.cpu[k])) for k in ("ingest", "publisher", "broker", "postgres", "other")
        )
        cells = (shape, phase, f"{base:,.0f}", f"{r.rate:,.0f}", f"{r.rate / base:.2f}",
                 f"{TARGETS[shape]:,}", f"{r.p50_ms:,.0f}", f"{r.p99_ms:,.0f}", f"{r.rss_mb:.0f}",
                 f"{r.published - r.stored:,}", cpu)  # fmt: skip
        print("| " + " | ".join(cells) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--shape", choices=["station", "gateway", "both"], default="both")
    parser.add_argument("--seconds", type=float, default=20.0, help="flat-out publishing time")
    parser.add_argument("--latency-seconds", type=float, default=10.0)
    parser.add_argument("--latency-rate", type=float, default=0.0, help="readings/s offered")
    parser.add_argument("--baseline-seconds", type=float, default=5.0)
    parser.add_argument(
        "--role", choices=["bench", "publish"], default="bench", help=argparse.SUPPRESS
    )
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument(
        "--rate",
        type=float,
        default=None,
        help="readings/s offered in the throughput phase (default 1.5 x target, 0 = flat out)",
    )
    parser.add_argument("--window", type=int, default=2000, help=argparse.SUPPRESS)
    parser.add_argument("--profile", action="store_true", help="py-spy the ingestor (needs py-spy)")
    parser.add_argument("--keep", action="store_true", help="keep the data directory and logs")
    args = parser.parse_args()
    if args.role == "publish":
        print(
            json.dumps(publish(args.port, args.shape, args.seconds, args.rate or 0.0, args.window))
        )
    else:
        asyncio.run(bench(args))


if __name__ == "__main__":
    main()
