"""A scenario run stopped and started again goes on where it stopped (the resume file).

Offline: the resume file's round trip, what makes it start afresh, and the generator resumed
at a mark giving exactly the rest of the stream (faults included). End to end: the demo
scenario, accelerated, is played through a real broker into ingest and the database,
stopped (SIGTERM) in the middle of its six past hours and started again: the second run
goes on from the mark on the same anchor, so the readings stored form one unbroken series,
nothing of the first run is published again (ingest counts no duplicates beyond the mark),
and the downpour is told once.
"""

import asyncio
import itertools
import json
import os
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from db import register_stations
from ingest.service import IngestService
from ingest.settings import IngestSettings
from simulators.faults import FaultRates
from simulators.fleet import hanoi_fleet, select_stations
from simulators.generator import generate
from simulators.resume import ResumePoint, RunIdentity, load_point, save_point
from simulators.scenario import load_scenario
from simulators.stream import OutgoingKind
from simulators.truth import read_truth_file
from tests.fixtures.mqtt import Broker

T0 = datetime(2025, 9, 30, tzinfo=UTC)
RUN = RunIdentity("demo", 3, "hanoi/v1", ("fd-*",))


def test_a_resume_point_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "state" / "sim.json"
    point = ResumePoint(RUN, T0, T0 + timedelta(hours=2, seconds=7))
    save_point(path, point)
    assert load_point(path, RUN) == point
    assert not path.with_name("sim.json.tmp").exists()  # written atomically


@pytest.mark.parametrize(
    "other",
    [
        RunIdentity("storm-2025-09-30", 3, "hanoi/v1", ("fd-*",)),
        RunIdentity("demo", 4, "hanoi/v1", ("fd-*",)),
        RunIdentity("demo", 3, "test/v1", ("fd-*",)),
        RunIdentity("demo", 3, "hanoi/v1", ()),
    ],
)
def test_another_run_starts_afresh(tmp_path: Path, other: RunIdentity) -> None:
    path = tmp_path / "sim.json"
    save_point(path, ResumePoint(RUN, T0, T0 + timedelta(hours=1)))
    assert load_point(path, other) is None


@pytest.mark.parametrize(
    "text",
    ["", "{not json", "[]", '{"scenario": "demo"}',
     '{"version": 1, "scenario": "demo", "seed": 3, "topic_root": "hanoi/v1", '
     '"stations": ["fd-*"], "start": "2025-09-30T00:00:00", "reached": "2025-09-30T01:00:00"}',
     '{"version": 2, "scenario": "demo", "seed": 3, "topic_root": "hanoi/v1", '
     '"stations": ["fd-*"], "start": "2025-09-30T00:00:00+00:00", '
     '"reached": "2025-09-30T01:00:00+00:00"}'],
)  # fmt: skip
def test_an_unreadable_file_starts_afresh(tmp_path: Path, text: str) -> None:
    path = tmp_path / "sim.json"
    path.write_text(text)
    assert load_point(path, RUN) is None
    assert load_point(tmp_path / "missing.json", RUN) is None


FAULTY = FaultRates(
    spike_rate=0.01, dropout_rate=0.02, duplicate_rate=0.02, out_of_order_rate=0.05,
    malformed_rate=0.2, offline_per_day=12.0, clock_skew_per_day=6.0,
)  # fmt: skip


@pytest.mark.parametrize("mark_minutes", [0, 1, 97, 185])
def test_the_generator_resumed_at_a_mark_gives_exactly_the_rest_of_the_stream(
    mark_minutes: int,
) -> None:
    fleet = select_stations(hanoi_fleet(), ["fd-thai-ha", "rg-o-cho-dua", "aq-hoan-kiem"])
    scenario = load_scenario("demo", hanoi_fleet())
    end = T0 + timedelta(hours=4)
    mark = T0 + timedelta(minutes=mark_minutes, seconds=17)
    whole = list(generate(scenario, fleet, T0, end, 5, faults=FAULTY))
    rest = list(generate(scenario, fleet, T0, end, 5, faults=FAULTY, resume_at=mark))
    assert rest == [item for item in whole if item.sim_time >= mark]  # the same bytes
    assert {item.kind for item in rest} >= {OutgoingKind.TELEMETRY, OutgoingKind.TRUTH}


# -- end to end ----------------------------------------------------------------------------

STATIONS = "fd-thai-ha,rg-o-cho-dua"


async def _query(db_url: str, sql: str) -> list[tuple[object, ...]]:
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        cur = await conn.execute(sql)
        return list(await cur.fetchall())


async def _newest(db_url: str) -> datetime | None:
    ((newest,),) = await _query(db_url, "SELECT max(time) FROM readings")
    assert newest is None or isinstance(newest, datetime)
    return newest


def _simulate(broker: Broker, root: str, tmp: Path, run: int) -> subprocess.Popen[bytes]:
    credentials = broker.devices(select_stations(hanoi_fleet(), STATIONS.split(",")))
    env = {**os.environ, "SIM_PROGRESS_INTERVAL_S": "0.3", "LOG_LEVEL": "INFO"}
    log = (tmp / f"sim{run}.log").open("wb")
    with log:
        return subprocess.Popen(
            [sys.executable, "-m", "simulators", "--scenario", "demo", "--speed", "3600",
             "--seed", "3", "--no-faults", "--stations", STATIONS, "--mqtt-url", broker.url,
             "--credentials-dir", str(credentials), "--topic-root", root,
             "--resume-file", str(tmp / "sim.json"), "--truth-file", str(tmp / f"t{run}.jsonl")],
            env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip


async def _until(predicate: object, proc: subprocess.Popen[bytes], timeout_s: float) -> None:
    assert callable(predicate)
    async with asyncio.timeout(timeout_s):
        while not await predicate():
            assert proc.poll() is None, "the simulator ended early"
            await asyncio.sleep(0.1)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 0


def _anchor(tmp: Path) -> tuple[datetime, datetime]:
    document = json.loads((tmp / "sim.json").read_text())
    return datetime.fromisoformat(document["start"]), datetime.fromisoformat(document["reached"])


@pytest.fixture
def ingest_settings(db_url: str, mqtt_broker: Broker, topic_root: str) -> IngestSettings:
    name = f"resume-{topic_root.split('/')[0]}"
    return IngestSettings.model_validate(
        {"database_url": db_url, "topic_root": topic_root, "instance": name,
         "batch_max_age_s": 0.05, **mqtt_broker.service_settings("ingest", name)}
    )  # fmt: skip


@pytest.mark.db
@pytest.mark.mqtt
@pytest.mark.anyio
async def test_the_demo_started_again_goes_on_where_it_stopped(
    db_url: str, mqtt_broker: Broker, topic_root: str, tmp_path: Path,
    ingest_settings: IngestSettings,
) -> None:  # fmt: skip
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        await register_stations(conn, select_stations(hanoi_fleet(), STATIONS.split(",")))
    async with IngestService(ingest_settings) as ingest:
        await ingest.consumer.wait_connected()
        runner = asyncio.create_task(ingest.run())
        first = _simulate(mqtt_broker, topic_root, tmp_path, 1)

        async def started() -> bool:
            return (tmp_path / "sim.json").exists()

        await _until(started, first, 30)
        anchor, _ = _anchor(tmp_path)

        async def halfway() -> bool:
            newest = await _newest(db_url)
            return newest is not None and newest >= anchor + timedelta(hours=2)

        await _until(halfway, first, 60)
        _stop(first)
        _, mark = _anchor(tmp_path)
        assert anchor + timedelta(hours=2) <= mark < anchor + timedelta(hours=5)
        stored_first = ingest.counts["stored"]

        second = _simulate(mqtt_broker, topic_root, tmp_path, 2)

        async def caught_up() -> bool:
            newest = await _newest(db_url)
            return newest is not None and newest >= datetime.now(UTC) - timedelta(minutes=3)

        await _until(caught_up, second, 60)
        _stop(second)
        await asyncio.sleep(0.5)  # the last batch
        ingest.stop()
        await runner
    assert _anchor(tmp_path)[0] == anchor  # the same story, on the same anchor
    assert "resuming scenario demo at" in (tmp_path / "sim2.log").read_text()
    assert ingest.counts["stored"] > stored_first
    assert ingest.counts["duplicates"] <= 4  # at most what sat at the mark, sent again
    rows = await _query(
        db_url,
        "SELECT r.time FROM readings r JOIN sensors s USING (sensor_id) "
        "WHERE s.station_id = 'fd-thai-ha' ORDER BY 1",
    )
    times = [t for (t,) in rows if isinstance(t, datetime)]
    assert len(times) == len(rows)
    steps = {(b - a).total_seconds() for a, b in itertools.pairwise(times)}
    assert steps == {60.0}  # one unbroken series: no gap at the stop, nothing twice
    assert times[0] - anchor < timedelta(minutes=1)
    told = [e.kind for run in (1, 2) for e in read_truth_file(tmp_path / f"t{run}.jsonl")]
    assert told.count("heavy_rain") == 1  # the downpour, told once
