"""``hanoi-ioc evaluate`` end to end on real services: a short slice of the demo downpour.

Simulator → Mosquitto → ingest → PostgreSQL and → processing → alerts, exactly as the
command runs it, on the test session's broker and server (the command makes and drops a
database of its own there); then the report must say what happened.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import psycopg
import pytest

from hanoi_ioc.evaluate import main
from tests.fixtures.mqtt import Broker

pytestmark = [pytest.mark.e2e, pytest.mark.db, pytest.mark.mqtt, pytest.mark.slow]


def test_a_downpour_is_scored_from_the_database_and_reported(
    pg_admin_url: str, mqtt_broker: Broker, tmp_path: Path
) -> None:
    if mqtt_broker.protocol != "5":
        pytest.skip("the pipeline's processing subscription needs MQTT 5 here")
    with psycopg.connect(pg_admin_url) as conn:
        before = {r[0] for r in conn.execute("SELECT datname FROM pg_database").fetchall()}
    out = tmp_path / "report"
    stdout = io.StringIO()
    status = main(
        [
            "--scenario", "demo", "--start", "2025-06-01T00:00:00+07:00", "--duration", "50m",
            "--warmup", "2h", "--stations", "fd-thai-ha,fd-truong-chinh,rg-o-cho-dua",
            "--seed", "3", "--out", str(out), "--database-url", pg_admin_url,
            "--mqtt-url", mqtt_broker.url, "--credentials-dir", str(mqtt_broker.store.path),
            "--strict",
        ],
        stdout=stdout,
    )  # fmt: skip
    assert status == 0, stdout.getvalue()
    document = json.loads((out / "report.json").read_text(encoding="utf-8"))
    (scenario,) = document["scenarios"]
    # everything published went through ingest and processing, counted, not waited for
    counters = scenario["counters"]
    assert scenario["published_messages"] > 0
    assert counters["ingest"]["stored"] > 0
    # every stored reading decided, exactly once
    assert counters["processing"]["readings"] == counters["ingest"]["stored"]
    assert counters["processing"]["lag_readings"] == 0
    assert counters["ingest"]["pending_records"] == 0
    flood = next(k for k in scenario["kinds"] if k["kind"] == "flood")
    assert flood["labels"] >= 1
    assert flood["recall"] == 1.0
    assert flood["precision"] == 1.0
    leads = {x["station"]: x for x in scenario["flood_lead_times"]}
    assert leads["fd-thai-ha"]["verdict"] == "met"
    assert leads["fd-thai-ha"]["lead_min"] >= 10
    assert (out / "report.html").read_text(encoding="utf-8").count("<img") == len(scenario["plots"])
    for plot in scenario["plots"]:
        assert (out / plot).read_bytes()[:4] == b"\x89PNG"
    assert "target flood.lead_time" in stdout.getvalue()
    assert "Report: " in stdout.getvalue()
    with psycopg.connect(pg_admin_url) as conn:
        after = {r[0] for r in conn.execute("SELECT datname FROM pg_database").fetchall()}
    assert after == before  # the scenario's database is dropped
