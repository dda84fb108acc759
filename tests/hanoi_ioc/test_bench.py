"""``hanoi-ioc bench --smoke``: the report's structure and the consistency of its figures.

Speed is never asserted (docs/performance.md): the figures must exist, be positive where
they measure something, agree with each other (percentiles ordered, decisions after commits,
every published reading stored and decided, every probe alert and fan-out delivery seen),
and the JSON, the table and the plots must be written.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.db, pytest.mark.mqtt, pytest.mark.slow]


def _ordered(figures: dict[str, Any]) -> None:
    assert figures["n"] > 0
    assert 0 < figures["p50"] <= figures["p95"] <= figures["p99"] <= figures["max"]


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], str, Path]:
    out = tmp_path_factory.mktemp("bench")
    done = subprocess.run(
        [sys.executable, "-m", "hanoi_ioc", "bench", "--smoke", "--json", str(out / "r.json"),
         "--plots", str(out / "plots")],
        capture_output=True, text=True, timeout=300, check=False,
        env=os.environ | {"LOG_LEVEL": "WARNING"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "[bench" in done.stderr  # progress is shown on stderr
    return json.loads((out / "r.json").read_text()), done.stdout, out / "plots"


def test_report_has_every_section_and_the_machine(smoke: tuple[dict[str, Any], str, Path]) -> None:
    report, _, _ = smoke
    for key in ("machine", "options", "bases", "pipeline", "sustained", "memory_mb", "engine",
                "fanout", "skipped", "elapsed_s"):  # fmt: skip
        assert key in report
    assert report["preset"] == "smoke"
    assert report["skipped"] == []
    assert report["machine"]["nproc"] > 0
    assert report["machine"]["cpu_model"]


def test_bases_are_measured(smoke: tuple[dict[str, Any], str, Path]) -> None:
    broker, copy = smoke[0]["bases"]["broker"], smoke[0]["bases"]["copy"]
    assert 0 < broker["received"] <= broker["published"]
    assert broker["messages_s"] > 0
    assert broker["readings_s"] == pytest.approx(8 * broker["messages_s"], rel=0.01)
    assert copy["rows"] > 0
    assert copy["rows_s"] > 0


def test_every_published_reading_is_stored_and_decided(
    smoke: tuple[dict[str, Any], str, Path],
) -> None:
    report = smoke[0]
    assert [s["offered"] for s in report["pipeline"]] == report["options"]["loads"]
    for step in report["pipeline"]:
        load, alerts = step["load"], step["alerts"]
        assert load["acked"] == load["sent"] > 0
        # nothing lost, nothing invented: the load's readings and the probes' three each
        assert step["stored"] == load["readings"] + 3 * alerts["fired"]
        assert step["decided"] == step["stored"]
        assert step["undecided"] == 0
        assert step["stored_rate"] > 0
        assert step["decided_rate"] > 0
        _ordered(step["publish_to_commit_ms"])
        _ordered(step["publish_to_decision_ms"])
        # the probes' own readings, timed apart: three per probe
        assert step["probe_publish_to_commit_ms"]["n"] == 3 * alerts["fired"]
        assert step["probe_publish_to_decision_ms"]["n"] == 3 * alerts["fired"]
        _ordered(step["probe_publish_to_commit_ms"])
        # a reading is decided after it is committed
        assert step["publish_to_decision_ms"]["p50"] >= step["publish_to_commit_ms"]["p50"]
        assert alerts["fired"] > 0
        assert alerts["alerts_seen"] == alerts["fired"]
        _ordered(alerts["publish_to_alert_ws_ms"])
        assert all(v >= 0 for v in step["cpu_pct"].values())
        # the machine's share: other work and the hypervisor's steal, never per reading
        assert {"other", "stolen"} <= step["cpu_pct"].keys()
        assert not {"other", "stolen"} & step["cpu_us_per_reading"].keys()
    sustained = report["sustained"]
    assert 0 < sustained["readings_s"] <= sustained["ceiling_readings_s"]
    assert sustained["vs_broker"] > 0
    assert sustained["vs_copy"] > 0


def test_memory_engine_and_fan_out(smoke: tuple[dict[str, Any], str, Path]) -> None:
    report = smoke[0]
    for service in ("ingest", "processing", "api", "broker"):
        assert report["memory_mb"][service] > 0
    (engine,) = report["engine"]
    assert engine["sensors"] == 800
    assert engine["batches_timed"] > 0
    assert engine["us_per_reading"] > 0
    assert engine["peak_rss_mb"] >= engine["base_rss_mb"] > 0
    (fan,) = report["fanout"]
    assert fan["delivered"] == fan["clients"] * fan["events"]
    assert fan["lost"] == 0
    _ordered(fan["delivery_ms"])
    assert fan["to_all_clients_ms"]["n"] == fan["events"]


def test_table_and_plots_are_written(smoke: tuple[dict[str, Any], str, Path]) -> None:
    _, table, plots = smoke
    for heading in ("## Bases", "## Pipeline", "## Peak memory", "## Processing engine",
                    "## WebSocket fan-out", "sustained end to end"):  # fmt: skip
        assert heading in table
    for name in ("latency_vs_load.png", "throughput_vs_load.png", "scaling.png"):
        assert (plots / name).stat().st_size > 1000
